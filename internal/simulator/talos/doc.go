// Package talos stands in for Talos Linux v1.12.0 and the tools that
// drive it: the talos provider plugin (pulumi-talos v0.7.1, which bridges
// siderolabs/terraform-provider-talos v0.10.1; provider.go and one file
// per resource: schematic.go, secrets.go, machineconfig.go, apply.go,
// bootstrap.go, kubeconfig.go, health.go, reset.go), the machines'
// configuration, etcd membership (etcd.go) and the Talos API that
// talosctl and SDA's plugin speak (apid and machined's MachineService,
// talos@v1.12.0; api.go, with upgrade.go, events.go, cosi.go,
// manifests.go, staticpods.go, version.go).
//
// The simulated Talos API: Talos's MachineService over the real gRPC wire
// protocol with mutual TLS, answering for every simulated node from one
// listener, so a client built on machinery's client package talks to it as
// to real nodes. See docs/simulation.md, "The Talos API".
//
// How a client reaches it: as a real client behind an HTTP proxy does. The
// simulator's listener is an HTTP CONNECT proxy in front of every node:
// machinery's client (its default dialer honours HTTPS_PROXY, as talosctl
// does) sends "CONNECT node:50000"; the simulator answers 200, or 502 with
// the connection error Pulumi's machine would get (the data-plane rules of
// network.TalosReachable). After 200 the connection is the endpoint node's apid:
// TLS with a server certificate from its cluster's Talos OS CA, client
// certificates required and verified against that CA. So code under test
// needs no hook: the harness sets HTTPS_PROXY=http://<listen address>.
package talos
