package talos_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosi-project/runtime/pkg/safe"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	talosruntime "github.com/siderolabs/talos/pkg/machinery/resources/runtime"
	"google.golang.org/grpc/codes"
)

const (
	schematicA = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
	schematicB = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
)

// schematicOn is the version of node's "schematic" extension ("" without
// one), read as SDA reads it: machinery's COSI client, ExtensionStatuses.
func schematicOn(t *testing.T, c *client.Client, node string) string {
	t.Helper()
	list, err := safe.StateListAll[*talosruntime.ExtensionStatus](client.WithNode(simtest.CtxTimeout(t), node), c.COSI)
	simtest.NoErr(t, err)
	id := ""
	for ext := range list.All() {
		if ext.TypedSpec().Metadata.Name == "schematic" {
			id = ext.TypedSpec().Metadata.Version
		}
	}
	return id
}

// sequenceEvents are the events of actor on node, as "kind name action"
// lines (and "error: <message>" for a failed sequence), read with
// machinery's Events stream until it has been quiet for a moment.
func sequenceEvents(t *testing.T, c *client.Client, node, actor string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(client.WithNode(context.Background(), node), 2*time.Second)
	defer cancel()
	stream, err := c.Events(ctx, client.WithTailEvents(-1), client.WithActorID(actor))
	simtest.NoErr(t, err)
	var out []string
	for {
		msg, err := stream.Recv()
		if err != nil {
			return out
		}
		ev, err := client.UnmarshalEvent(msg)
		if err != nil {
			continue // the empty first event
		}
		if ev.ActorID != actor {
			t.Errorf("event %s has actor %q, want %q", ev.ID, ev.ActorID, actor)
		}
		switch p := ev.Payload.(type) {
		case *machine.SequenceEvent:
			out = append(out, "sequence "+p.Sequence+" "+p.Action.String())
			if p.GetError() != nil {
				out = append(out, "error: "+p.GetError().GetMessage())
			}
		case *machine.PhaseEvent:
			out = append(out, "phase "+p.Phase+" "+p.Action.String())
		case *machine.TaskEvent:
			out = append(out, "task "+p.Task+" "+p.Action.String())
		}
	}
}

// A node reports its Image Factory schematic as the "schematic" extension
// (what SDA compares to decide whether an installer change is done); an
// upgrade with another schematic at the same version installs it, and the
// upgrade sequence's events carry the call's actor ID and no error.
func TestTalosAPIUpgradeSameVersionNewSchematic(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	f.Faults(engine.Faults{RebootTime: "300ms"})
	w := f.Workers[0]
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error { tx.State.Machines[w].Schematic = schematicA; return nil }))
	c := f.Client(f.Cc, f.Cps[0])
	if got := schematicOn(t, c, w); got != schematicA {
		t.Fatalf("schematic before %q, want %q", got, schematicA)
	}
	version := f.State().Machines[w].Version
	resp, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), w), "factory.talos.dev/nocloud-installer/"+schematicB+":"+version, false, false)
	simtest.NoErr(t, err)
	actor := resp.Messages[0].ActorId
	st := f.State()
	time.Sleep(time.Until(st.Reboots[len(st.Reboots)-1].End) + 50*time.Millisecond)
	if got := schematicOn(t, c, w); got != schematicB {
		t.Fatalf("after the upgrade the schematic is %q, want %q", got, schematicB)
	}
	// The buffer does not survive the reboot; the sequence's events were
	// published before it, so they are read from the record here.
	var kinds []string
	for _, e := range f.State().TalosEvents {
		if e.ActorID != actor || e.Error != "" {
			t.Errorf("event %+v: want actor %s and no error", e, actor)
		}
		kinds = append(kinds, e.Kind+" "+e.Name+" "+e.Action)
	}
	if kinds[0] != "sequence upgrade start" || kinds[len(kinds)-1] != "sequence upgrade stop" || !slices.Contains(kinds, "task cordonAndDrainNode start") {
		t.Fatalf("events %v", kinds)
	}
	// COSI is proxied one node at a time.
	_, err = safe.StateListAll[*talosruntime.ExtensionStatus](client.WithNodes(simtest.CtxTimeout(t), w, f.Cps[0]), c.COSI)
	wantCode(t, err, codes.InvalidArgument, "one-2-many proxying is not supported for COSI methods")
}

// A sequence that fails after Upgrade's reply (the installer's preflight
// refuses a host older than 1.10 for 1.12; an installer that fails) is
// published on the node's event stream with the actor ID, and the node
// reboots FatalRebootDelay later back into its old release.
func TestTalosAPIUpgradeSequenceFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		host   string
		faults []engine.FailOnce
		reason string
	}{
		{"preflight refuses a host older than UpgradeableFrom", "v1.9.5", nil, "host version 1.9.5 is too old to upgrade to Talos 1.12.1"},
		{"the installer fails", "", []engine.FailOnce{{Type: talos.TokenTalosAPI, Method: "UpgradeSequence", Ordinal: 1}}, "simulated failure injected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := simtest.NewTalosAPIFixture(t, 1, 1, true)
			f.Faults(engine.Faults{RebootTime: "200ms", FatalRebootDelay: "300ms", FailOnce: tc.faults})
			w := f.Workers[0]
			if tc.host != "" {
				simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error { tx.State.Machines[w].Version = tc.host; return nil }))
			}
			before := f.State().Machines[w].Version
			c := f.Client(f.Cc, f.Cps[0])
			resp, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), w), "ghcr.io/siderolabs/installer:v1.12.1", false, false)
			simtest.NoErr(t, err) // the reply comes before the sequence
			got := sequenceEvents(t, c, w, resp.Messages[0].ActorId)
			want := "error: " + talos.UpgradeSequenceFailure
			if len(got) < 2 || got[len(got)-1] != want || got[len(got)-2] != "sequence upgrade NOOP" {
				t.Fatalf("events %v, want the sequence's failure last (%q)", got, want)
			}
			var logged string
			calls, err := engine.ReadCalls(f.Px.Store.Dir)
			simtest.NoErr(t, err)
			for _, c := range calls {
				if c.Method == "Upgrade" {
					logged = c.Error
				}
			}
			if !strings.Contains(logged, tc.reason) {
				t.Errorf("the call log has %q, want the installer's reason %q", logged, tc.reason)
			}
			st := f.State()
			r := st.Reboots[len(st.Reboots)-1]
			if r.Cause != `fatal sequencer error in "upgrade" sequence` || r.Start.Sub(r.End) != -200*time.Millisecond {
				t.Fatalf("reboot %+v", r)
			}
			time.Sleep(time.Until(r.End) + 50*time.Millisecond)
			if v, err := simtest.VersionOf(t, c, w); err != nil || v != before {
				t.Fatalf("after the failed upgrade the node runs %q (%v), want %s", v, err, before)
			}
		})
	}
}

// etcd's service on a control plane is healthy only EtcdStartTime after
// the node booted; until then ServiceList says so and Talos refuses to
// upgrade another control plane, although the member is listed.
func TestTalosAPIEtcdHealth(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 3, 0, true)
	f.Faults(engine.Faults{EtcdStartTime: "1s"})
	now := time.Now()
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		g := tx.State.Machines[f.Cps[2]]
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: "cp3", Cause: "test", Start: now.Add(-time.Second), End: now})
		return nil
	}))
	c := f.Client(f.Cc, f.Cps[0])
	infos, err := c.ServiceInfo(client.WithNodes(simtest.CtxTimeout(t), f.Cps...), "etcd")
	simtest.NoErr(t, err)
	healthy := map[string]bool{}
	for _, info := range infos {
		healthy[info.Metadata.GetHostname()] = info.Service.GetHealth().GetHealthy()
		if info.Service.GetState() != "Running" {
			t.Errorf("%s: etcd %s", info.Metadata.GetHostname(), info.Service.GetState())
		}
	}
	if !healthy[f.Cps[0]] || !healthy[f.Cps[1]] || healthy[f.Cps[2]] || len(infos) != 3 {
		t.Fatalf("etcd healthy %v, want all but %s", healthy, f.Cps[2])
	}
	_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.Cps[1]), "ghcr.io/siderolabs/installer:v1.12.1", false, false)
	wantCode(t, err, codes.Unknown, "all members must be healthy to perform an upgrade")
	if !strings.Contains(err.Error(), "etcd is starting") {
		t.Fatalf("the refusal does not say why: %v", err)
	}
	time.Sleep(time.Until(now.Add(time.Second)) + 50*time.Millisecond)
	_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.Cps[1]), "ghcr.io/siderolabs/installer:v1.12.1", false, false)
	simtest.NoErr(t, err)
}

// A reset wipes the whole system disk (mode ALL, no partition list): with
// reboot the VM has nothing left to boot and never answers again. A
// graceful reset whose etcd leave is refused fails the sequence: the node
// reboots FatalRebootDelay later and comes back configured.
func TestTalosAPIResetSequence(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	f.Faults(engine.Faults{RebootTime: "200ms", FatalRebootDelay: "300ms"})
	c := f.Client(f.Cc, f.Cps[0])
	w := f.Workers[0]
	simtest.NoErr(t, c.Reset(client.WithNode(simtest.CtxTimeout(t), w), true, true))
	st := f.State()
	r := st.Reboots[len(st.Reboots)-1]
	if r.Cause != "talos reset" || st.Machines[w] != nil {
		t.Fatalf("reboot %+v, machine %+v", r, st.Machines[w])
	}
	time.Sleep(time.Until(r.End) + 50*time.Millisecond)
	_, err := simtest.VersionOf(t, c, w)
	wantCode(t, err, codes.Unavailable, "nothing to boot: a Talos reset wiped its whole system disk")

	// The last etcd member cannot leave: the reset fails on the node, which
	// reboots and is back, configured, afterwards.
	cp := f.Cps[0]
	resp, err := c.ResetGenericWithResponse(client.WithNode(simtest.CtxTimeout(t), cp), &machine.ResetRequest{Graceful: true, Reboot: false, Mode: machine.ResetRequest_ALL})
	simtest.NoErr(t, err)
	actor := resp.Messages[0].ActorId
	st = f.State()
	// The failure is published as the failed sequence, with the call's
	// actor ID: the only word a client gets of it.
	last := st.TalosEvents[len(st.TalosEvents)-1]
	if last.ActorID != actor || last.Name != "reset" || last.Action != "noop" ||
		!strings.Contains(last.Error, `error running phase 4 in reset sequence`) || !strings.Contains(last.Error, `task "leaveEtcd" failed: failed to leave cluster`) {
		t.Fatalf("the failed reset published %+v (actor %s)", last, actor)
	}
	// Until that reboot the node is degraded: its pods were removed and its
	// kubelet stopped before etcd refused the leave.
	cs, err := c.Containers(client.WithNode(simtest.CtxTimeout(t), cp), constants.SystemContainerdNamespace, common.ContainerDriver_CONTAINERD)
	simtest.NoErr(t, err)
	if n := len(cs.Messages[0].Containers); n != 0 {
		t.Fatalf("the kubelet still runs after the failed reset: %+v", cs.Messages[0].Containers)
	}
	r = st.Reboots[len(st.Reboots)-1]
	if r.Cause != `fatal sequencer error in "reset" sequence` || st.Machines[cp] == nil {
		t.Fatalf("after the refused leave: reboot %+v, machine %v", r, st.Machines[cp] != nil)
	}
	if d := r.Start.Sub(time.Now()); d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("the node reboots %s from now, want within the fatal reboot delay", d)
	}
	time.Sleep(time.Until(r.End) + 50*time.Millisecond)
	if _, err := simtest.VersionOf(t, c, cp); err != nil {
		t.Fatalf("the control plane is not back after its failed reset: %v", err)
	}
	cs, err = c.Containers(client.WithNode(simtest.CtxTimeout(t), cp), constants.SystemContainerdNamespace, common.ContainerDriver_CONTAINERD)
	simtest.NoErr(t, err)
	if n := len(cs.Messages[0].Containers); n != 1 {
		t.Fatalf("the kubelet is not back after the reboot: %+v", cs.Messages[0].Containers)
	}
}

// Kubeconfig is served by control planes only: an admin kubeconfig for the
// cluster's endpoint, signed by its Kubernetes CA, in a .tar.gz (what
// machinery's client unpacks); a worker refuses it.
func TestTalosAPIKubeconfig(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	c := f.Client(f.Cc, f.Cps[0])
	raw, err := c.Kubeconfig(client.WithNode(simtest.CtxTimeout(t), f.Cps[0]))
	simtest.NoErr(t, err)
	cl := f.Cluster()
	for _, want := range []string{"server: " + cl.Endpoint, "certificate-authority-data: " + talos.B64([]byte(cl.K8sCA)), "current-context: admin@" + cl.Name} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the kubeconfig lacks %q:\n%s", want, raw)
		}
	}
	_, err = c.Kubeconfig(client.WithNode(simtest.CtxTimeout(t), f.Workers[0]))
	wantCode(t, err, codes.Unimplemented, "kubeconfig is only available on control plane nodes")
}
