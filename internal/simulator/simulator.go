// Package simulator wires the simulated providers together: New builds
// the provider plugin cmd/pulumi-sim serves (proxmoxve, talos, kubernetes,
// command) from the engine and the subject packages, and ServeTalosAPI
// serves the Talos API with the clusters' kube-apiservers on one listener.
// The simulation itself lives in the subject packages:
//
//   - engine: the Pulumi provider plugin protocol, property values and the
//     state store (the Pulumi engine's side of a plugin);
//   - proxmox: Proxmox VE and pulumi-proxmoxve v6.18.1
//     (bpg/terraform-provider-proxmox v0.69.1);
//   - network: the data plane between guests and from Pulumi;
//   - talos: Talos v1.12.0, its API and pulumi-talos v0.7.1
//     (terraform-provider-talos v0.10.1);
//   - kubeapi: the kube-apiserver and pulumi-kubernetes v4.32.0;
//   - clis: pulumi-command v1.1.0 and the pct and pvesh its scripts run.
//
// See docs/simulation.md.
package simulator

import (
	"context"
	"fmt"
	"net"

	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// Providers lists the simulated providers and the plugin version each
// reports: the versions the SDKs in go.mod ask for.
var Providers = map[string]string{
	"proxmoxve":  "6.18.1",
	"talos":      "0.7.1",
	"kubernetes": "4.32.0",
	"command":    "1.1.0",
}

// New returns the simulated provider called name, keeping its state in dir.
func New(name, dir string) (*engine.Server, error) {
	version, ok := Providers[name]
	if !ok {
		return nil, fmt.Errorf("no simulated provider %q (have proxmoxve, talos, kubernetes, command)", name)
	}
	s := &engine.Server{Name: name, Version: version, Store: &engine.Store{Dir: dir},
		Kinds: map[string]*engine.Kind{}, Invokes: map[string]*engine.Invoke{}}
	var ks []*engine.Kind
	var is []*engine.Invoke
	switch name {
	case "proxmoxve":
		ks = proxmox.Kinds()
		s.ConfigureRule = proxmox.CheckConfig
	case "talos":
		ks, is = talos.Kinds()
	case "kubernetes":
		ks = kubeapi.Kinds()
		s.DiffConfigRule = kubeapi.DiffConfig
	case "command":
		ks = clis.Kinds()
	}
	for _, k := range ks {
		s.Kinds[k.Token] = k
	}
	for _, i := range is {
		s.Invokes[i.Token] = i
	}
	return s, nil
}

// StartTalosAPI serves the simulated Talos API of dir on a loopback port
// until ctx ends, and returns the proxy URL that reaches it: set it as
// HTTPS_PROXY in the environment of the code under test.
func StartTalosAPI(ctx context.Context, dir string) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = ServeTalosAPI(ctx, dir, lis) }()
	return "http://" + lis.Addr().String(), nil
}

// ServeTalosAPI serves the simulated Talos API of the simulation directory
// dir on lis until ctx ends.
func ServeTalosAPI(ctx context.Context, dir string, lis net.Listener) error {
	return ServeTalosAPIOf(ctx, func() string { return dir }, lis)
}

// ServeTalosAPIOf is ServeTalosAPI for a directory that changes: each call
// works on dir()'s simulation. A test process that runs one simulation after
// another keeps one listener, and so one HTTPS_PROXY: Go's HTTP proxy
// settings are read from the environment once per process.
func ServeTalosAPIOf(ctx context.Context, dir func() string, lis net.Listener) error {
	// CONNECTs to port 6443 are the clusters' kube-apiservers (kubeapi).
	return talos.ServeAPIOf(ctx, dir, lis, func(api *talos.API) talos.Colocated { return kubeapi.NewServer(api) })
}
