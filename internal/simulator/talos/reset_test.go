package talos_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"google.golang.org/grpc/codes"
)

// Reset through the API replies at once; a graceful reset of a worker
// wipes and halts it; a graceful reset of the last etcd member replies
// too, but the sequence fails (etcd refuses the leave) and the node stays
// configured, as on a real node, with the failure in the call log.
func TestTalosAPIReset(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	c := f.Client(f.ClientConfig, f.CPs[0])
	simtest.NoErr(t, c.Reset(client.WithNode(simtest.CtxTimeout(t), f.Workers[0]), true, false))
	st := f.State()
	if st.Machines[f.Workers[0]] != nil || st.Guests[8012].Started {
		t.Fatalf("worker not reset and halted: %+v", st.Guests[8012])
	}
	simtest.NoErr(t, c.Reset(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]), true, false))
	if f.State().Machines[f.CPs[0]] == nil {
		t.Fatal("the last etcd member was reset")
	}
	calls, err := engine.ReadCalls(f.Px.Store.Dir)
	simtest.NoErr(t, err)
	last := calls[len(calls)-1]
	if last.Method != "Reset" || !strings.Contains(last.Error, "reset failed: failed to leave cluster") {
		t.Fatalf("last call %+v", last)
	}
}

// A reset wipes the whole system disk (mode ALL, no partition list): with
// reboot the VM has nothing left to boot and never answers again. A
// graceful reset whose etcd leave is refused fails the sequence: the node
// reboots FatalRebootDelay later and comes back configured.
func TestTalosAPIResetSequence(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	f.Faults(engine.Faults{RebootTime: "200ms", FatalRebootDelay: "300ms"})
	c := f.Client(f.ClientConfig, f.CPs[0])
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
	cp := f.CPs[0]
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
