package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/sda-platform/sda/components/pluginapi"
	"github.com/sda-platform/sda/internal/day2"
)

// ClusterMembers is the set of nodes a Talos cluster's members must be.
// TalosCluster registers one per cluster, after the bootstrap and before
// anything checks the cluster's health: the health checks compare the
// members with the declared nodes exactly, and Pulumi deletes removed
// nodes' VMs only after the program's checks have run, so a lowered node
// count must be carried out here, as an update the checks wait for.
// Creating or updating it removes every member the stack does not declare,
// through the Talos and Kubernetes APIs (internal/day2 Membership): no
// talosctl, no kubectl, no shell on the deployer.
type ClusterMembers struct{}

// ClusterMembersArgs are the declared nodes and the credentials;
// ClusterMembersState records the declaration the cluster was made to
// match (pluginapi, shared with the component that registers it).
type (
	ClusterMembersArgs  = pluginapi.ClusterMembersArgs
	ClusterMembersState = pluginapi.ClusterMembersState
)

var (
	_ infer.Annotated                                               = (*ClusterMembers)(nil)
	_ infer.CustomResource[ClusterMembersArgs, ClusterMembersState] = (*ClusterMembers)(nil)
	_ infer.CustomDiff[ClusterMembersArgs, ClusterMembersState]     = (*ClusterMembers)(nil)
	_ infer.CustomUpdate[ClusterMembersArgs, ClusterMembersState]   = (*ClusterMembers)(nil)
	_ infer.CustomDelete[ClusterMembersState]                       = (*ClusterMembers)(nil)
)

func (r *ClusterMembers) Annotate(a infer.Annotator) {
	a.SetToken("index", "ClusterMembers")
	a.Describe(r, "The nodes a Talos cluster's members must be: every Kubernetes Node and etcd member the stack does not declare is removed through the Talos and Kubernetes APIs (graceful reset, etcd member removal by ID for a node that is gone, Node deletion), workers first, control planes one at a time, never below etcd quorum.")
}

// membership is the removal of the members a declaration drops.
func membership(ctx context.Context, a ClusterMembersArgs, previous []TalosNodeVersionPeer) day2.Membership {
	return day2.Membership{
		Declared: dayNodes(a.Nodes), Previous: dayNodes(previous),
		Talosconfig: a.Talosconfig, Kubeconfig: a.Kubeconfig,
		Timeout: time.Duration(a.TimeoutSeconds) * time.Second,
		Poll:    time.Duration(a.PollSeconds) * time.Second,
		Log:     func(line string) { p.GetLogger(ctx).InfoStatus(line) },
	}
}

// reconcile makes the cluster's members the declared nodes. In preview it
// only checks, with a short wait, that the removal keeps etcd's quorum,
// and warns when the cluster cannot be asked (the up will say why).
func reconcile(ctx context.Context, in ClusterMembersArgs, previous []TalosNodeVersionPeer, dryRun bool) (ClusterMembersState, error) {
	state := ClusterMembersState{ClusterMembersArgs: in, Removed: []string{}}
	for _, n := range in.Nodes {
		state.Members = append(state.Members, n.Hostname)
	}
	sort.Strings(state.Members)
	if dryRun {
		if in.Talosconfig == "" || in.Kubeconfig == "" || !leaves(previous, in.Nodes) {
			return state, nil
		}
		m := membership(ctx, in, previous)
		m.Timeout = time.Second
		if _, err := m.Reconcile(ctx, true); err != nil {
			if isQuorumRefusal(err) {
				return state, fmt.Errorf("TalosCluster %s: %w", in.ClusterName, err)
			}
			p.GetLogger(ctx).Warningf("TalosCluster %s: could not check the members before removing nodes: %v", in.ClusterName, err)
		}
		return state, nil
	}
	removed, err := membership(ctx, in, previous).Reconcile(ctx, false)
	if err != nil {
		return ClusterMembersState{}, fmt.Errorf("TalosCluster %s: %w", in.ClusterName, err)
	}
	if removed != nil {
		state.Removed = removed
	}
	return state, nil
}

// leaves reports whether a node of the previous declaration is not in the
// new one.
func leaves(previous, now []TalosNodeVersionPeer) bool {
	for _, o := range previous {
		if !slices.ContainsFunc(now, func(n TalosNodeVersionPeer) bool { return n.Hostname == o.Hostname }) {
			return true
		}
	}
	return false
}

func isQuorumRefusal(err error) bool {
	var q *day2.QuorumError
	return errors.As(err, &q)
}

// Create makes a new cluster's members the declared nodes: usually there
// is nothing to remove, but it waits for the Kubernetes API after the
// bootstrap.
func (ClusterMembers) Create(ctx context.Context, req infer.CreateRequest[ClusterMembersArgs]) (infer.CreateResponse[ClusterMembersState], error) {
	state, err := reconcile(ctx, req.Inputs, nil, req.DryRun)
	if err != nil {
		return infer.CreateResponse[ClusterMembersState]{}, err
	}
	return infer.CreateResponse[ClusterMembersState]{ID: req.Inputs.ClusterName, Output: state}, nil
}

// Update removes the members the new declaration drops. A failure leaves
// the old state, so the next `up` resumes with the same previous
// declaration (and the addresses it holds).
func (ClusterMembers) Update(ctx context.Context, req infer.UpdateRequest[ClusterMembersArgs, ClusterMembersState]) (infer.UpdateResponse[ClusterMembersState], error) {
	state, err := reconcile(ctx, req.Inputs, req.State.Nodes, req.DryRun)
	if err != nil {
		return infer.UpdateResponse[ClusterMembersState]{}, err
	}
	return infer.UpdateResponse[ClusterMembersState]{Output: state}, nil
}

// Diff updates when the declared nodes change (by name, address or
// role). New credentials or timeouts alone are no reason to act.
func (ClusterMembers) Diff(_ context.Context, req infer.DiffRequest[ClusterMembersArgs, ClusterMembersState]) (infer.DiffResponse, error) {
	diff := map[string]p.PropertyDiff{}
	if !slices.Equal(req.Inputs.Nodes, req.State.Nodes) {
		diff["nodes"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if req.Inputs.ClusterName != req.State.ClusterName {
		diff["clusterName"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(diff) > 0, DetailedDiff: diff}, nil
}

// Delete forgets the declaration: the cluster goes with its nodes.
func (ClusterMembers) Delete(context.Context, infer.DeleteRequest[ClusterMembersState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, nil
}
