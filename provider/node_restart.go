package main

import (
	"context"
	"fmt"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/sda-platform/sda/components/pluginapi"
	"github.com/sda-platform/sda/internal/day2"
)

// NodeDrain and NodeReady roll the restarts of Talos nodes that their VM
// updates cause (the Proxmox provider reboots a VM whose CPU, memory, NIC
// or cloud-init changes, at once and with no opt-out at the pinned
// version). TalosNode registers NodeDrain before its VM and NodeReady after
// it, with the same restartSpec: when it changes, NodeDrain's update takes
// the node's turn, gates on the cluster's health and drains the node; the
// VM update restarts it; NodeReady's update waits until it is back and
// Ready, uncordons it, gates again and gives the turn back
// (internal/day2 Restart). Creating them does nothing, so new nodes are
// created in parallel.
type NodeDrain struct{ nodeRestartHalf }

// NodeReady is NodeDrain's other half.
type NodeReady struct{ nodeRestartHalf }

// NodeRestartArgs are the node, what restarts it, and what the gates
// need; NodeRestartState is what the last run recorded (pluginapi, shared
// with the component that registers them).
type (
	NodeRestartArgs  = pluginapi.NodeRestartArgs
	NodeRestartState = pluginapi.NodeRestartState
)

var (
	_ infer.Annotated                                         = (*NodeDrain)(nil)
	_ infer.CustomResource[NodeRestartArgs, NodeRestartState] = (*NodeDrain)(nil)
	_ infer.CustomCheck[NodeRestartArgs]                      = (*NodeDrain)(nil)
	_ infer.CustomDiff[NodeRestartArgs, NodeRestartState]     = (*NodeDrain)(nil)
	_ infer.CustomUpdate[NodeRestartArgs, NodeRestartState]   = (*NodeDrain)(nil)
	_ infer.CustomDelete[NodeRestartState]                    = (*NodeDrain)(nil)

	_ infer.Annotated                                         = (*NodeReady)(nil)
	_ infer.CustomResource[NodeRestartArgs, NodeRestartState] = (*NodeReady)(nil)
	_ infer.CustomDiff[NodeRestartArgs, NodeRestartState]     = (*NodeReady)(nil)
	_ infer.CustomUpdate[NodeRestartArgs, NodeRestartState]   = (*NodeReady)(nil)
	_ infer.CustomDelete[NodeRestartState]                    = (*NodeReady)(nil)
)

func (r *NodeDrain) Annotate(a infer.Annotator) {
	a.SetToken("index", "NodeDrain")
	a.Describe(r, "Before a Talos node's VM update restarts it: waits for the node's turn (control planes one at a time, workers workerParallelism at a time), checks the cluster's health, cordons and drains the node.")
}

func (r *NodeReady) Annotate(a infer.Annotator) {
	a.SetToken("index", "NodeReady")
	a.Describe(r, "After a Talos node's VM update restarted it: waits until it is back and Ready, uncordons it, checks the cluster's health and gives the turn to the next node.")
}

// restartOf is the inputs' rolled restart of the node.
func restartOf(ctx context.Context, a NodeRestartArgs) day2.Restart {
	r := day2.Restart{
		ClusterName: a.ClusterName,
		Node:        day2.Node{Hostname: a.Hostname, Address: a.Address, ControlPlane: a.ControlPlane},
		Talosconfig: a.Talosconfig,
		Parallelism: a.WorkerParallelism,
		Timeout:     time.Duration(a.TimeoutSeconds) * time.Second,
		Poll:        time.Duration(a.PollSeconds) * time.Second,
		Log:         func(line string) { p.GetLogger(ctx).InfoStatus(line) },
	}
	r.Cluster = dayNodes(a.Cluster)
	return r
}

// restartDiff updates on a new restartSpec or rebuild only: the cluster list, the
// credentials and the timeouts are what the next restart uses.
func restartDiff(in NodeRestartArgs, state NodeRestartState) infer.DiffResponse {
	diff := map[string]p.PropertyDiff{}
	if in.RestartSpec != state.RestartSpec {
		diff["restartSpec"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if in.Rebuild != state.Rebuild {
		diff["rebuild"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(diff) > 0, DetailedDiff: diff}
}

// nodeRestartHalf is what both halves do alike: creating one does
// nothing (a new node restarts nothing), and so does deleting one.
type nodeRestartHalf struct{}

func (nodeRestartHalf) Create(_ context.Context, req infer.CreateRequest[NodeRestartArgs]) (infer.CreateResponse[NodeRestartState], error) {
	return infer.CreateResponse[NodeRestartState]{ID: req.Inputs.Hostname, Output: NodeRestartState{NodeRestartArgs: req.Inputs}}, nil
}

func (nodeRestartHalf) Diff(_ context.Context, req infer.DiffRequest[NodeRestartArgs, NodeRestartState]) (infer.DiffResponse, error) {
	return restartDiff(req.Inputs, req.State), nil
}

func (nodeRestartHalf) Delete(context.Context, infer.DeleteRequest[NodeRestartState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, nil
}

// update runs the half's step (restart, or rebuild when the rebuild
// number changed), except in preview. A failure leaves the old state: the
// next `up` runs the step again.
func update(ctx context.Context, req infer.UpdateRequest[NodeRestartArgs, NodeRestartState],
	restart, rebuild func(day2.Restart) func(context.Context) error) (infer.UpdateResponse[NodeRestartState], error) {
	if !req.DryRun {
		step := restart
		if req.Inputs.Rebuild != req.State.Rebuild {
			step = rebuild
		}
		if err := step(restartOf(ctx, req.Inputs))(ctx); err != nil {
			return infer.UpdateResponse[NodeRestartState]{}, err
		}
	}
	return infer.UpdateResponse[NodeRestartState]{Output: NodeRestartState{NodeRestartArgs: req.Inputs}}, nil
}

// Check refuses a lowered rebuild number before anything changes (also in
// preview): the VM's replacement trigger compares the numbers, so going
// back (or dropping the entry, which is 0) would rebuild the node again.
func (NodeDrain) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[NodeRestartArgs], error) {
	in, failures, err := infer.DefaultCheck[NodeRestartArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 || req.OldInputs.Len() == 0 {
		return infer.CheckResponse[NodeRestartArgs]{Inputs: in, Failures: failures}, err
	}
	old, _, err := infer.DefaultCheck[NodeRestartArgs](ctx, req.OldInputs)
	if err == nil && in.Rebuild < old.Rebuild {
		failures = append(failures, p.CheckFailure{Property: "rebuild", Reason: fmt.Sprintf(
			"sda:nodes.rebuild.%s went from %d to %d: any change of the number rebuilds %s (its VM is replaced); keep %d, or raise it to %d to rebuild it again",
			in.Hostname, old.Rebuild, in.Rebuild, in.Hostname, old.Rebuild, old.Rebuild+1)})
	}
	return infer.CheckResponse[NodeRestartArgs]{Inputs: in, Failures: failures}, nil
}

// Update drains the node before its VM update restarts it, or removes it
// from the cluster before its rebuild.
func (NodeDrain) Update(ctx context.Context, req infer.UpdateRequest[NodeRestartArgs, NodeRestartState]) (infer.UpdateResponse[NodeRestartState], error) {
	return update(ctx, req, func(r day2.Restart) func(context.Context) error { return r.Before },
		func(r day2.Restart) func(context.Context) error { return r.Leave })
}

// Update waits for the restarted (or rebuilt) node and uncordons it.
func (NodeReady) Update(ctx context.Context, req infer.UpdateRequest[NodeRestartArgs, NodeRestartState]) (infer.UpdateResponse[NodeRestartState], error) {
	return update(ctx, req, func(r day2.Restart) func(context.Context) error { return r.After },
		func(r day2.Restart) func(context.Context) error { return r.Rejoined })
}
