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
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
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
	c := f.Client(f.ClientConfig, f.CPs[0])
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
	_, err = safe.StateListAll[*talosruntime.ExtensionStatus](client.WithNodes(simtest.CtxTimeout(t), w, f.CPs[0]), c.COSI)
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
			c := f.Client(f.ClientConfig, f.CPs[0])
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
