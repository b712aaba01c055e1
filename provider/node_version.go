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

// TalosNodeVersion is the Talos version one node runs. Creating or updating
// it upgrades the node in place through the Talos API when it runs another
// version (internal/day2: health gate, upgrade preserving data, wait for the
// new version, health gate); a node that already runs it is left alone.
// TalosCluster registers one per node and chains them, control planes one
// at a time and then the workers, so the engine rolls an upgrade node by
// node; a failed node stops the roll, and the next `up` resumes with it.
type TalosNodeVersion struct{}

// TalosNodeVersionArgs are the node, its desired version, and the cluster
// the health gates check; TalosNodeVersionPeer is one declared node, as
// the health gates see it; TalosNodeVersionState adds the version the node
// reported (pluginapi, shared with the component that registers it).
type (
	TalosNodeVersionArgs  = pluginapi.TalosNodeVersionArgs
	TalosNodeVersionPeer  = pluginapi.TalosNodeVersionPeer
	TalosNodeVersionState = pluginapi.TalosNodeVersionState
)

var (
	_ infer.Annotated                                                   = (*TalosNodeVersion)(nil)
	_ infer.CustomResource[TalosNodeVersionArgs, TalosNodeVersionState] = (*TalosNodeVersion)(nil)
	_ infer.CustomDiff[TalosNodeVersionArgs, TalosNodeVersionState]     = (*TalosNodeVersion)(nil)
	_ infer.CustomUpdate[TalosNodeVersionArgs, TalosNodeVersionState]   = (*TalosNodeVersion)(nil)
	_ infer.CustomRead[TalosNodeVersionArgs, TalosNodeVersionState]     = (*TalosNodeVersion)(nil)
	_ infer.CustomDelete[TalosNodeVersionState]                         = (*TalosNodeVersion)(nil)
)

// dayNodes are declared nodes as internal/day2 takes them.
func dayNodes(ps []TalosNodeVersionPeer) []day2.Node {
	var out []day2.Node
	for _, n := range ps {
		out = append(out, day2.Node{Hostname: n.Hostname, Address: n.Address, ControlPlane: n.ControlPlane})
	}
	return out
}

func (r *TalosNodeVersion) Annotate(a infer.Annotator) {
	a.SetToken("index", "TalosNodeVersion")
	a.Describe(r, "The Talos version one node runs: a change upgrades the node in place through the Talos API (talosctl upgrade --preserve), gated on the cluster's health before and after.")
}

// upgrade is the inputs' upgrade of the node.
func upgrade(ctx context.Context, a TalosNodeVersionArgs) day2.Upgrade {
	u := day2.Upgrade{
		Node:        day2.Node{Hostname: a.Hostname, Address: a.Address, ControlPlane: a.ControlPlane},
		Version:     a.TalosVersion,
		Image:       a.InstallerImage,
		Talosconfig: a.Talosconfig,
		Timeout:     time.Duration(a.TimeoutSeconds) * time.Second,
		Poll:        time.Duration(a.PollSeconds) * time.Second,
		Log:         func(line string) { p.GetLogger(ctx).InfoStatus(line) },
	}
	u.Cluster = dayNodes(a.Cluster)
	return u
}

// converge makes the node run the inputs' version (in preview: says it
// will) and returns the state to record.
// sync is set for an update: a new node (create) runs what its image
// brought, and the cluster's manifests were created with it.
func converge(ctx context.Context, in TalosNodeVersionArgs, dryRun, sync bool) (TalosNodeVersionState, error) {
	state := TalosNodeVersionState{TalosNodeVersionArgs: in, RunningVersion: in.TalosVersion}
	if dryRun {
		return state, nil
	}
	running, err := upgrade(ctx, in).Converge(ctx)
	if err != nil {
		return TalosNodeVersionState{}, err
	}
	state.RunningVersion = running
	if sync && in.SyncManifests {
		if err := syncManifests(ctx, in.Talosconfig, day2.ControlPlanes(dayNodes(in.Cluster))); err != nil {
			return TalosNodeVersionState{}, fmt.Errorf("after upgrading %s: %w", in.Hostname, err)
		}
	}
	return state, nil
}

// Create converges a new node: one booted from the image of the desired
// version runs it already, and nothing happens.
func (TalosNodeVersion) Create(ctx context.Context, req infer.CreateRequest[TalosNodeVersionArgs]) (infer.CreateResponse[TalosNodeVersionState], error) {
	state, err := converge(ctx, req.Inputs, req.DryRun, false)
	if err != nil {
		// No ID: a failed create leaves nothing in the state.
		return infer.CreateResponse[TalosNodeVersionState]{}, err
	}
	return infer.CreateResponse[TalosNodeVersionState]{ID: req.Inputs.Hostname, Output: state}, nil
}

// Update converges the node to the new version. A failure leaves the old
// state (the old version) in place, so the next `up` tries this node again.
func (TalosNodeVersion) Update(ctx context.Context, req infer.UpdateRequest[TalosNodeVersionArgs, TalosNodeVersionState]) (infer.UpdateResponse[TalosNodeVersionState], error) {
	state, err := converge(ctx, req.Inputs, req.DryRun, true)
	if err != nil {
		return infer.UpdateResponse[TalosNodeVersionState]{}, err
	}
	return infer.UpdateResponse[TalosNodeVersionState]{Output: state}, nil
}

// Diff updates on a new version or installer and replaces on a new address
// (another machine). The cluster list, the credentials and the timeouts are
// only what the next upgrade uses: their changes alone (a node added, a
// renewed talosconfig) are no reason to touch this node, so they do not
// show as changes; the next update carries them.
func (TalosNodeVersion) Diff(_ context.Context, req infer.DiffRequest[TalosNodeVersionArgs, TalosNodeVersionState]) (infer.DiffResponse, error) {
	diff := map[string]p.PropertyDiff{}
	if req.Inputs.Address != req.State.Address {
		diff["address"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	if req.Inputs.TalosVersion != req.State.TalosVersion {
		diff["talosVersion"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if req.Inputs.InstallerImage != req.State.InstallerImage {
		diff["installerImage"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(diff) > 0, DetailedDiff: diff}, nil
}

// Read reports the version the node runs now, when it answers (a refresh
// shows a node someone upgraded or rolled back by hand).
func (TalosNodeVersion) Read(ctx context.Context, req infer.ReadRequest[TalosNodeVersionArgs, TalosNodeVersionState]) (infer.ReadResponse[TalosNodeVersionArgs, TalosNodeVersionState], error) {
	state := req.State
	if running, err := runningNow(ctx, req.State); err == nil {
		state.RunningVersion = running
	} else {
		p.GetLogger(ctx).Warningf("%s (%s): Talos version not read: %v", req.State.Hostname, req.State.Address, err)
	}
	return infer.ReadResponse[TalosNodeVersionArgs, TalosNodeVersionState]{ID: req.ID, Inputs: req.Inputs, State: state}, nil
}

// runningNow asks the node which version it runs.
func runningNow(ctx context.Context, s TalosNodeVersionState) (string, error) {
	cfg, err := day2.ParseTalosconfig(s.Talosconfig)
	if err != nil {
		return "", err
	}
	return day2.Version(ctx, cfg, s.Address)
}

// Delete forgets the node: its removal from the cluster is the membership
// step's (components/membership), and its VM goes with the VM resource.
func (TalosNodeVersion) Delete(context.Context, infer.DeleteRequest[TalosNodeVersionState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, nil
}
