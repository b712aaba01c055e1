package talos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reset is machined's Reset (talos v1.12.0 v1alpha1_server.go:607-705):
// it replies with an actor ID at once and runs the reset sequence after
// (v1alpha1_sequencer.go:258-341): graceful: cordon and drain, a control
// plane leaves etcd; then wipe and halt or reboot (ResetMachine). A
// sequence that fails (etcd refuses the leave) is only logged by the node:
// the reply was sent, the node stays configured and cordoned. The
// simulation records that failure in the call log's error column.
func (a *API) Reset(ctx context.Context, in *machine.ResetRequest) (*machine.ResetResponse, error) {
	msgs, err := apiCall(ctx, a, "Reset", true, func(nc *nodeCall) (*machine.Reset, error) {
		if in.GetMode() != machine.ResetRequest_ALL || len(in.GetSystemPartitionsToWipe()) > 0 || len(in.GetUserDisksToWipe()) > 0 {
			return nil, status.Error(codes.Unimplemented, "simulation: only the default reset (mode ALL, no partition or disk list) is simulated")
		}
		actor := uuid.New().String()
		m := nc.m
		ev := func(action, errMsg string) {
			nc.tx.State.TalosEvents = append(nc.tx.State.TalosEvents, engine.TalosEvent{Address: m.Address, ID: strconv.Itoa(len(nc.tx.State.TalosEvents) + 1),
				ActorID: actor, Kind: "sequence", Name: "reset", Action: action, Time: nc.now, Error: errMsg})
		}
		ev("start", "")
		if err := ResetMachine(nc.tx, m, in.GetGraceful(), in.GetReboot(), nc.faults); err != nil {
			nc.log = fmt.Errorf("reset failed: %w", err)
			// The sequence's fourth phase, "leave" (drain, cleanup, dbus,
			// leave: v1alpha1_sequencer.go:258-341), failed; machined
			// publishes it as a failed sequence (v1alpha1_controller.go:141-156).
			ev("stop", "")
			ev("noop", `sequence failed: error running phase 4 in reset sequence: task 1/1: failed, task "leaveEtcd" failed: `+err.Error())
		}
		return &machine.Reset{ActorId: actor}, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.ResetResponse{Messages: msgs}, nil
}

// resetOnDestroy is the ConfigurationApply Delete: nothing unless
// onDestroy.reset; then a Reset (graceful by default) that wipes STATE and
// EPHEMERAL and halts the machine unless onDestroy.reboot. Graceful: the
// node is cordoned and drained and a control plane leaves etcd, which etcd
// refuses when the remaining started members would be below quorum (the
// last member cannot leave). The Node object stays behind either way.
func resetOnDestroy(s *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	v := obj.Inputs
	if reset, _ := keyOnDestroyReset.In(v).(bool); !reset {
		return nil
	}
	graceful := true
	if b, ok := keyOnDestroyGraceful.In(v).(bool); ok {
		graceful = b
	}
	reboot, _ := keyOnDestroyReboot.In(v).(bool)
	cc := keyClientConfiguration.In(v)
	faults, err := s.Store.Faults()
	if err != nil {
		return err
	}
	if err := Reset(tx, keyNode.In(v), cc, graceful, reboot, faults); err != nil {
		return fmt.Errorf("Error resetting machine: %w", err)
	}
	return nil
}

// Reset is Talos's MachineService.Reset as `talosctl reset` and the
// configuration apply's onDestroy send it: the node must be reachable from
// Pulumi's machine and accept the client's CA; then ResetMachine.
func Reset(tx *engine.Tx, node string, cc map[string]any, graceful, reboot bool, f engine.Faults) error {
	m, err := Configured(tx, node, cc)
	if err != nil {
		return err
	}
	return ResetMachine(tx, m, graceful, reboot, f)
}

// ResetMachine is Talos's reset sequence on a configured machine (talos
// v1.12.0 v1alpha1_sequencer.go:258-341): a graceful reset cordons and
// drains the node, stops its pods and kubelet, then makes a control plane
// leave etcd (refused when the remaining members would lose quorum, see
// RemoveEtcdMember). A refused leave fails the sequence: machined reboots
// the node FatalRebootDelay later (internal/app/machined/main.go:100-151),
// and it boots configured again, its STATE untouched (the wipe comes after
// the leave). Otherwise the whole system disk is wiped (mode ALL without a
// partition list: ResetMachine's default) and the machine halts, or
// reboots into nothing bootable: the boot partition went with the rest,
// so a reset VM never comes back on its own (wipedDisk). The Node object
// stays: deleting it is the Kubernetes API's business.
func ResetMachine(tx *engine.Tx, m *engine.TalosMachine, graceful, reboot bool, f engine.Faults) error {
	now := time.Now()
	node := m.Address
	g, err := network.VMAt(tx, node)
	if err != nil {
		return err
	}
	if c := tx.State.Clusters[m.ClusterID]; c != nil && graceful {
		for _, n := range c.Nodes {
			if n.Address == node {
				n.Cordoned = true
			}
		}
		if m.Type == "controlplane" && slices.Contains(c.EtcdMembers, node) {
			if err := RemoveEtcdMember(tx, c, node, now); err != nil {
				start := now.Add(f.FatalReboot())
				tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
					Cause: `fatal sequencer error in "reset" sequence`, Start: start, End: start.Add(f.RebootDuration())})
				// The phases before "leave" ran: "cleanup" removed every pod
				// and stopped the kubelet (v1alpha1_sequencer.go:258-341,
				// RemoveAllPods), until the node boots again.
				m.KubeletStoppedUntil = start.Add(f.RebootDuration())
				return fmt.Errorf("failed to leave cluster: %w", err)
			}
		}
	}
	delete(tx.State.Machines, node)
	g.TalosVersion, g.TalosSchematic, g.DiskWiped = "", "", true
	if reboot {
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
			Cause: "talos reset", Start: now, End: now.Add(f.RebootDuration())})
	} else {
		g.Started = false // halted
	}
	return nil
}
