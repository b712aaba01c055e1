package talos_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func wantCode(t *testing.T, err error, code codes.Code, sub string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(err.Error(), sub) {
		t.Fatalf("want %v containing %q, got %v (%v)", code, sub, status.Code(err), err)
	}
}

// The Talos API answers with each node's running version: the version the
// VM booted (here the installer tag of its configuration, or the default
// when it names none), per node with client.WithNodes (replies carry the
// node in metadata.hostname, as apid's one-to-many proxying adds it).
func TestTalosAPIVersion(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 2, true)
	// A worker configured for the first time with an older installer image
	// boots that version (its machine is forgotten and configured again).
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error { delete(tx.State.Machines, f.Workers[1]); return nil }))
	_, err := reapply(f.TalosFixture, f.Workers[1], nil, `machine: {install: {image: "ghcr.io/siderolabs/installer:v1.11.5"}}`)
	simtest.NoErr(t, err)
	st := f.State()
	want := st.Machines[f.CPs[0]].Version
	if want == "" {
		t.Fatal("a configured machine has no Version")
	}

	c := f.Client(f.ClientConfig, f.CPs[0])
	resp, err := c.Version(client.WithNodes(simtest.CtxTimeout(t), f.CPs[0], f.Workers[0], f.Workers[1]))
	simtest.NoErr(t, err)
	got := map[string]string{}
	for _, m := range resp.Messages {
		got[m.Metadata.GetHostname()] = m.Version.Tag
		if m.Platform.GetName() != "nocloud" || !m.Features.GetRbac() {
			t.Errorf("%s: platform %v features %v", m.Metadata.GetHostname(), m.Platform, m.Features)
		}
	}
	if got[f.CPs[0]] != want || got[f.Workers[0]] != want || got[f.Workers[1]] != "v1.11.5" {
		t.Fatalf("versions %v, want %s and v1.11.5 for %s", got, want, f.Workers[1])
	}
	// Without a node, the endpoint answers (no metadata: no proxying).
	resp, err = c.Version(simtest.CtxTimeout(t))
	simtest.NoErr(t, err)
	if len(resp.Messages) != 1 || resp.Messages[0].Metadata != nil || resp.Messages[0].Version.Tag != want {
		t.Fatalf("endpoint's own reply: %v", resp.Messages)
	}
}

// Upgrading a worker: the reply is the real ack with an actor ID; the node
// is down (Unavailable, connection refused) for the reboot time, a Reboot
// is logged, and then it reports the installer image's tag.
func TestTalosAPIUpgradeWorker(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	f.Faults(engine.Faults{RebootTime: "400ms"})
	c := f.Client(f.ClientConfig, f.CPs[0])
	w := f.Workers[0]
	image := "factory.talos.dev/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.12.1"

	_, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), w), "not a valid//reference", false, false)
	wantCode(t, err, codes.Unknown, "failed to parse image reference")

	resp, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), w), image, false, false)
	simtest.NoErr(t, err)
	if m := resp.Messages[0]; m.Ack != "Upgrade request received" || len(m.ActorId) != 36 {
		t.Fatalf("reply %v", m)
	}
	_, err = simtest.VersionOf(t, c, w)
	wantCode(t, err, codes.Unavailable, "connect: connection refused")
	st := f.State()
	if n := len(st.Reboots); n != 1 || !strings.HasPrefix(st.Reboots[0].Cause, "talos upgrade: ") || st.Reboots[0].VMID != st.Machines[w].VMID {
		t.Fatalf("reboots %+v", st.Reboots)
	}
	// The control plane did not reboot and still answers.
	if v, err := simtest.VersionOf(t, c, f.CPs[0]); err != nil || v == "v1.12.1" {
		t.Fatalf("control plane: %q %v", v, err)
	}
	time.Sleep(time.Until(st.Reboots[0].End) + 20*time.Millisecond)
	v, err := simtest.VersionOf(t, c, w)
	simtest.NoErr(t, err)
	if v != "v1.12.1" {
		t.Fatalf("after the reboot the worker runs %q, want v1.12.1", v)
	}
}

// The API is mutual TLS from the cluster's CA: a client whose talosconfig
// is of another cluster does not trust the node's certificate, and a
// client certificate of another CA is refused by the node; both at the TLS
// layer (Unavailable), before any method runs.
func TestTalosAPIWrongCA(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 0, true)
	_, sec, err := simtest.Create(t, f.Talos, talos.TokenSecrets, "other", map[string]any{"talosVersion": "v1.12.0"})
	simtest.NoErr(t, err)
	other := sec["clientConfiguration"].(map[string]any)

	_, err = f.Client(other, f.CPs[0]).Version(simtest.CtxTimeout(t))
	wantCode(t, err, codes.Unavailable, "certificate signed by unknown authority")

	// Trusts the node's CA but presents another CA's certificate.
	mixed := map[string]any{"caCertificate": engine.Str(f.ClientConfig.(map[string]any), "caCertificate"),
		"clientCertificate": other["clientCertificate"], "clientKey": other["clientKey"]}
	_, err = f.Client(mixed, f.CPs[0]).Version(simtest.CtxTimeout(t))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("want the connection refused at the TLS layer (Unavailable), got %v", err)
	}
	calls, err := engine.ReadCalls(f.Px.Store.Dir)
	simtest.NoErr(t, err)
	for _, c := range calls {
		if c.Provider == "talos-apid" {
			t.Fatalf("a method ran for a refused client: %+v", c)
		}
	}
}

// The network rules of the provider calls hold for the API: an endpoint
// that is stopped fails to dial (no route to host), an unknown address
// too, and a target the endpoint proxies to that is down is Unavailable.
func TestTalosAPIUnreachable(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[tx.State.Machines[f.Workers[0]].VMID].Started = false
		return nil
	}))
	_, err := f.Client(f.ClientConfig, f.Workers[0]).Version(simtest.CtxTimeout(t))
	wantCode(t, err, codes.Unavailable, "dial tcp "+f.Workers[0]+":50000: connect: no route to host")
	_, err = f.Client(f.ClientConfig, "10.0.0.99").Version(simtest.CtxTimeout(t))
	wantCode(t, err, codes.Unavailable, "no VM of the simulated Proxmox has address 10.0.0.99")
	c := f.Client(f.ClientConfig, f.CPs[0])
	_, err = simtest.VersionOf(t, c, f.Workers[0])
	wantCode(t, err, codes.Unavailable, "no route to host")
	// With WithNodes the failure is one node's message, the others answer.
	resp, err := c.Version(client.WithNodes(simtest.CtxTimeout(t), f.CPs[0], f.Workers[0]))
	var ne *client.NodeError
	if !errors.As(err, &ne) || ne.Node != f.Workers[0] || status.Code(ne.Err) != codes.Unavailable {
		t.Fatalf("want a NodeError for %s, got %v", f.Workers[0], err)
	}
	if resp == nil || len(resp.Messages) != 1 || resp.Messages[0].Metadata.GetHostname() != f.CPs[0] {
		t.Fatalf("the reachable node's reply: %v", resp)
	}
}

// One upgrade fails by fault (faults.json failOnce on TokenTalosAPI
// "Upgrade"), Talos-like, before it does anything; the next succeeds.
func TestTalosAPIUpgradeFault(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	f.Faults(engine.Faults{FailOnce: []engine.FailOnce{{Type: talos.TokenTalosAPI, Method: "Upgrade", Ordinal: 1}}})
	c := f.Client(f.ClientConfig, f.CPs[0])
	image := "ghcr.io/siderolabs/installer:v1.12.1"
	_, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.Workers[0]), image, false, false)
	wantCode(t, err, codes.Unknown, `error validating installer image "`+image+`": failed to pull image`)
	if st := f.State(); len(st.Reboots) != 0 || st.Machines[f.Workers[0]].Version == "v1.12.1" {
		t.Fatal("the failed upgrade changed the node")
	}
	_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.Workers[0]), image, false, false)
	simtest.NoErr(t, err)
	if v := f.State().Machines[f.Workers[0]].Version; v != "v1.12.1" {
		t.Fatalf("version %q", v)
	}
}

// A client with machinery's default dialer reaches the simulated nodes the
// way talosctl reaches nodes behind a proxy: HTTPS_PROXY names the
// simulator's listener, and the client issues HTTP CONNECT node:50000. This
// is how code under test (the upgrade provider) talks to the simulation
// with no hook of its own; an unreachable node fails the CONNECT with the
// simulated network's reason.
func TestTalosAPIThroughHTTPSProxy(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	t.Setenv("HTTPS_PROXY", "http://"+f.Addr)
	t.Setenv("NO_PROXY", "")
	v := f.ClientConfig.(map[string]any)
	cfg := clientconfig.NewConfig("lab", []string{f.CPs[0]}, talos.Unb64(engine.Str(v, "caCertificate")),
		&x509.PEMEncodedCertificateAndKey{Crt: talos.Unb64(engine.Str(v, "clientCertificate")), Key: talos.Unb64(engine.Str(v, "clientKey"))})
	c, err := client.New(context.Background(), client.WithConfig(cfg), client.WithEndpoints(f.CPs[0]))
	simtest.NoErr(t, err)
	t.Cleanup(func() { c.Close() })
	got, err := simtest.VersionOf(t, c, f.Workers[0])
	simtest.NoErr(t, err)
	if want := f.State().Machines[f.Workers[0]].Version; got != want || got == "" {
		t.Fatalf("version through the proxy = %q, want %q", got, want)
	}

	// Stop the endpoint's VM: the CONNECT is refused with the reason.
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[tx.State.Machines[f.CPs[0]].VMID].Started = false
		return nil
	}))
	c2, err := client.New(context.Background(), client.WithConfig(cfg), client.WithEndpoints(f.CPs[0]))
	simtest.NoErr(t, err)
	t.Cleanup(func() { c2.Close() })
	_, err = c2.Version(simtest.CtxTimeout(t))
	wantCode(t, err, codes.Unavailable, "dial tcp "+f.CPs[0]+":50000: connect: no route to host")
}

// containerImages are the running containers' images on node, by name
// (the static pods in k8s.io, the kubelet in system).
func containerImages(t *testing.T, c *client.Client, node string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, q := range []struct {
		ns     string
		driver common.ContainerDriver
	}{{constants.K8sContainerdNamespace, common.ContainerDriver_CRI}, {constants.SystemContainerdNamespace, common.ContainerDriver_CONTAINERD}} {
		resp, err := c.Containers(client.WithNode(simtest.CtxTimeout(t), node), q.ns, q.driver)
		simtest.NoErr(t, err)
		for _, ct := range resp.Messages[0].Containers {
			name := ct.Name
			if name == "" {
				name = ct.Id
			}
			out[name] = ct.Image
		}
	}
	return out
}

// ApplyConfiguration through the Talos API changes the node's running
// configuration as the provider's apply does: NO_REBOOT takes a new
// component image (the component restarts: it is not listed while it
// does, then runs the new image), refuses a change that needs a reboot and
// an invalid configuration without changing anything; Containers lists the
// static pods on a control plane, the kubelet everywhere.
func TestTalosAPIApplyConfiguration(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	f.Faults(engine.Faults{ComponentRestartTime: "400ms"})
	cp, w := f.CPs[0], f.Workers[0]
	c := f.Client(f.ClientConfig, cp)
	before := f.State().Machines[cp].Config
	k8s := "v" + constants.DefaultKubernetesVersion

	images := containerImages(t, c, cp)
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"} {
		if !strings.HasSuffix(images[name], ":"+k8s) {
			t.Errorf("control plane runs %s %q, want the %s image of its configuration", name, images[name], k8s)
		}
	}
	if wi := containerImages(t, c, w); len(wi) != 1 || !strings.HasSuffix(wi["kubelet"], ":"+k8s) {
		t.Errorf("the worker runs %v, want only the kubelet", wi)
	}

	apply := func(node, text string, mode machine.ApplyConfigurationRequest_Mode) (*machine.ApplyConfigurationResponse, error) {
		return c.ApplyConfiguration(client.WithNode(simtest.CtxTimeout(t), node), &machine.ApplyConfigurationRequest{Data: []byte(text), Mode: mode})
	}
	_, err := apply(cp, before+"\nmachine: {env: {http_proxy: http://proxy.lan:3128}}\n", machine.ApplyConfigurationRequest_NO_REBOOT)
	wantCode(t, err, codes.InvalidArgument, "configuration validation failed")
	_, err = apply(cp, strings.Replace(before, "machine:\n", "machine:\n    env:\n        http_proxy: http://proxy.lan:3128\n", 1), machine.ApplyConfigurationRequest_NO_REBOOT)
	wantCode(t, err, codes.InvalidArgument, "this config change can't be applied in immediate mode\ndiff: machine.env")
	_, err = apply(cp, before, machine.ApplyConfigurationRequest_TRY)
	wantCode(t, err, codes.Unimplemented, "not simulated")
	if st := f.State(); st.Machines[cp].Config != before || len(st.ComponentChanges) != 0 || len(st.Reboots) != 0 {
		t.Fatalf("refused applies changed the node: %d component changes, %d reboots", len(st.ComponentChanges), len(st.Reboots))
	}

	next := simtest.SwapTag(before, "kube-apiserver", k8s, "v1.35.9")
	resp, err := apply(cp, next, machine.ApplyConfigurationRequest_NO_REBOOT)
	simtest.NoErr(t, err)
	if m := resp.Messages[0]; m.Mode != machine.ApplyConfigurationRequest_NO_REBOOT || m.ModeDetails != "Applied configuration without a reboot" {
		t.Errorf("reply %v", m)
	}
	st := f.State()
	if len(st.ComponentChanges) != 1 || len(st.Reboots) != 0 {
		t.Fatalf("component changes %+v, reboots %+v", st.ComponentChanges, st.Reboots)
	}
	ch := st.ComponentChanges[0]
	if ch.Component != "kube-apiserver" || ch.Address != cp || !strings.HasSuffix(ch.To, ":v1.35.9") || ch.Cause != "talos-apid ApplyConfiguration" {
		t.Errorf("change %+v", ch)
	}
	if _, ok := containerImages(t, c, cp)["kube-apiserver"]; ok {
		t.Error("kube-apiserver is listed while it restarts")
	}
	time.Sleep(time.Until(ch.Ready) + 20*time.Millisecond)
	if got := containerImages(t, c, cp)["kube-apiserver"]; !strings.HasSuffix(got, ":v1.35.9") {
		t.Errorf("after its restart kube-apiserver runs %q, want v1.35.9", got)
	}
	if got := containerImages(t, c, cp)["kube-scheduler"]; !strings.HasSuffix(got, ":"+k8s) {
		t.Errorf("kube-scheduler runs %q, want it untouched", got)
	}

	_, err = c.Containers(client.WithNode(simtest.CtxTimeout(t), cp), "moby", common.ContainerDriver_CONTAINERD)
	wantCode(t, err, codes.Unimplemented, "not simulated")
}
