package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/siderolabs/talos/pkg/machinery/config"

	"github.com/sda-platform/sda/components/pluginapi"
	"github.com/sda-platform/sda/internal/day2"
)

// KubernetesVersion is the Kubernetes release a cluster runs. TalosCluster
// registers one per cluster, before every node's configuration apply: an
// update with a new version rolls it over the running nodes in
// `talosctl upgrade-k8s`'s order through the Talos API (internal/day2
// KubernetesUpgrade), so the configuration applies that follow find every
// component already on its new image and restart nothing. Without it they
// would apply the new images on every node at once.
type KubernetesVersion struct{}

// KubernetesVersionArgs are the version and what the roll needs: each
// node's configuration as its ConfigurationApply builds it (the role's
// generated configuration and the node's patches), and the credentials.
// KubernetesVersionNode is one declared node with its own patches;
// KubernetesVersionState is what the last create or update recorded, the
// old side of the next roll (pluginapi, shared with the component that
// registers it).
type (
	KubernetesVersionArgs  = pluginapi.KubernetesVersionArgs
	KubernetesVersionNode  = pluginapi.KubernetesVersionNode
	KubernetesVersionState = pluginapi.KubernetesVersionState
)

var (
	_ infer.Annotated                                                     = (*KubernetesVersion)(nil)
	_ infer.CustomResource[KubernetesVersionArgs, KubernetesVersionState] = (*KubernetesVersion)(nil)
	_ infer.CustomCheck[KubernetesVersionArgs]                            = (*KubernetesVersion)(nil)
	_ infer.CustomDiff[KubernetesVersionArgs, KubernetesVersionState]     = (*KubernetesVersion)(nil)
	_ infer.CustomUpdate[KubernetesVersionArgs, KubernetesVersionState]   = (*KubernetesVersion)(nil)
	_ infer.CustomDelete[KubernetesVersionState]                          = (*KubernetesVersion)(nil)
)

func (r *KubernetesVersion) Annotate(a infer.Annotator) {
	a.SetToken("index", "KubernetesVersion")
	a.Describe(r, "The Kubernetes release a Talos cluster runs: a change rolls over the running nodes as talosctl upgrade-k8s does (each control-plane component over the control planes in turn, then the kubelets node by node), through the Talos API, gated on the cluster's health.")
}

// Check refuses, before anything changes (and in preview), a version change
// Kubernetes does not support (a skipped minor release, a downgrade across
// one) and a version change in the same run as a change of the nodes: the
// roll's health gates compare the running cluster with the declared one.
// The old inputs are the last run's, even when that run did not update
// this resource (the engine records a resource's new inputs either way).
func (KubernetesVersion) Check(ctx context.Context, req infer.CheckRequest) (infer.CheckResponse[KubernetesVersionArgs], error) {
	in, failures, err := infer.DefaultCheck[KubernetesVersionArgs](ctx, req.NewInputs)
	if err != nil || len(failures) > 0 || req.OldInputs.Len() == 0 {
		return infer.CheckResponse[KubernetesVersionArgs]{Inputs: in, Failures: failures}, err
	}
	old, _, err := infer.DefaultCheck[KubernetesVersionArgs](ctx, req.OldInputs)
	if err != nil || old.KubernetesVersion == "" || old.KubernetesVersion == in.KubernetesVersion {
		return infer.CheckResponse[KubernetesVersionArgs]{Inputs: in}, nil
	}
	if err := day2.CheckKubernetesPath(old.KubernetesVersion, in.KubernetesVersion); err != nil {
		failures = append(failures, p.CheckFailure{Property: "kubernetesVersion", Reason: fmt.Sprintf("TalosCluster %s: %v", in.ClusterName, err)})
	}
	if added, removed := nodeChanges(old.Nodes, in.Nodes); len(added)+len(removed) > 0 {
		failures = append(failures, p.CheckFailure{Property: "kubernetesVersion", Reason: fmt.Sprintf(
			"TalosCluster %s: kubernetesVersion changes (%s -> %s) in the same run as the nodes (adding [%s], removing [%s]): the roll checks the cluster's health against the nodes that run; change one, run up, then the other (keep kubernetesVersion %s for now)",
			in.ClusterName, old.KubernetesVersion, in.KubernetesVersion, strings.Join(added, " "), strings.Join(removed, " "), old.KubernetesVersion)})
	}
	return infer.CheckResponse[KubernetesVersionArgs]{Inputs: in, Failures: failures}, nil
}

// nodeChanges are the hostnames added and removed between two declarations.
func nodeChanges(old, now []KubernetesVersionNode) (added, removed []string) {
	has := func(list []KubernetesVersionNode, n KubernetesVersionNode) bool {
		return slices.ContainsFunc(list, func(o KubernetesVersionNode) bool { return o.Address == n.Address })
	}
	for _, n := range now {
		if !has(old, n) {
			added = append(added, n.Hostname)
		}
	}
	for _, n := range old {
		if !has(now, n) {
			removed = append(removed, n.Hostname)
		}
	}
	return added, removed
}

// Create records the version: a new cluster's nodes get it from their first
// configuration.
func (KubernetesVersion) Create(_ context.Context, req infer.CreateRequest[KubernetesVersionArgs]) (infer.CreateResponse[KubernetesVersionState], error) {
	return infer.CreateResponse[KubernetesVersionState]{ID: req.Inputs.ClusterName,
		Output: KubernetesVersionState{KubernetesVersionArgs: req.Inputs}}, nil
}

// Update rolls the image changes from the recorded configurations to the
// new ones (none when only other settings changed). A failure leaves the
// old state, so the next `up` resumes: steps whose component already runs
// its new image are skipped.
func (KubernetesVersion) Update(ctx context.Context, req infer.UpdateRequest[KubernetesVersionArgs, KubernetesVersionState]) (infer.UpdateResponse[KubernetesVersionState], error) {
	out := infer.UpdateResponse[KubernetesVersionState]{Output: KubernetesVersionState{KubernetesVersionArgs: req.Inputs}}
	if req.DryRun {
		return out, nil
	}
	roll, err := rollOf(ctx, req.State.KubernetesVersionArgs, req.Inputs)
	if err != nil {
		return infer.UpdateResponse[KubernetesVersionState]{}, fmt.Errorf("TalosCluster %s: %w", req.Inputs.ClusterName, err)
	}
	if err := roll.Roll(ctx); err != nil {
		return infer.UpdateResponse[KubernetesVersionState]{}, fmt.Errorf("TalosCluster %s: Kubernetes %s -> %s: %w",
			req.Inputs.ClusterName, req.State.KubernetesVersion, req.Inputs.KubernetesVersion, err)
	}
	// upgrade-k8s's last step: Talos renders the bootstrap manifests
	// (kube-proxy, CoreDNS, Flannel) for the new version but only ever
	// creates them.
	if req.State.KubernetesVersion != req.Inputs.KubernetesVersion {
		if err := syncManifests(ctx, req.Inputs.Talosconfig, day2.ControlPlanes(roll.Cluster)); err != nil {
			return infer.UpdateResponse[KubernetesVersionState]{}, fmt.Errorf("TalosCluster %s: Kubernetes %s -> %s: %w",
				req.Inputs.ClusterName, req.State.KubernetesVersion, req.Inputs.KubernetesVersion, err)
		}
	}
	return out, nil
}

// syncManifests applies the bootstrap manifests the control planes (their
// addresses) render now (day2.SyncManifests).
func syncManifests(ctx context.Context, talosconfig string, cps []string) error {
	cfg, err := day2.ParseTalosconfig(talosconfig)
	if err != nil {
		return err
	}
	return day2.SyncManifests(ctx, cfg, cps, func(line string) { p.GetLogger(ctx).InfoStatus(line) })
}

// rollOf pairs each declared node with its configuration as it runs (the
// recorded role configuration with the node's patches) and as declared
// now. A role with no recorded configuration (the first workers, added
// since) runs the recorded control planes' kubelet image.
func rollOf(ctx context.Context, old, now KubernetesVersionArgs) (day2.KubernetesUpgrade, error) {
	k := day2.KubernetesUpgrade{
		From: old.KubernetesVersion, To: now.KubernetesVersion,
		Talosconfig: now.Talosconfig,
		Timeout:     time.Duration(now.TimeoutSeconds) * time.Second,
		Poll:        time.Duration(now.PollSeconds) * time.Second,
		Log:         func(line string) { p.GetLogger(ctx).InfoStatus(line) },
	}
	oldCP, err := day2.MachineConfig(old.ControlPlaneConfiguration, nil)
	if err != nil {
		return k, fmt.Errorf("the recorded control-plane configuration: %w", err)
	}
	for _, n := range now.Nodes {
		node := day2.Node{Hostname: n.Hostname, Address: n.Address, ControlPlane: n.ControlPlane}
		k.Cluster = append(k.Cluster, node)
		c, err := day2.MachineConfig(roleConfig(now, n.ControlPlane), n.ConfigPatches)
		if err != nil {
			return k, fmt.Errorf("%s's configuration: %w", n.Hostname, err)
		}
		var o config.Provider
		if base := roleConfig(old, n.ControlPlane); base != "" {
			o, err = day2.MachineConfig(base, n.ConfigPatches)
		} else {
			o, err = day2.WithImages(c, map[day2.Component]string{day2.Kubelet: day2.Images(oldCP)[day2.Kubelet]})
		}
		if err != nil {
			return k, fmt.Errorf("%s's running configuration: %w", n.Hostname, err)
		}
		k.Nodes = append(k.Nodes, day2.NodeChange{Node: node, Old: o, New: c})
	}
	return k, nil
}

// roleConfig is the recorded configuration of a role.
func roleConfig(a KubernetesVersionArgs, controlPlane bool) string {
	if controlPlane {
		return a.ControlPlaneConfiguration
	}
	return a.WorkerConfiguration
}

// Diff updates on a new version and on a new configuration of a role, so
// the state keeps describing what the nodes run (the update then rolls
// only images that changed: usually none). The nodes, the credentials and
// the timeouts are only what the next roll uses: adding or removing a
// node is no change of this resource.
func (KubernetesVersion) Diff(_ context.Context, req infer.DiffRequest[KubernetesVersionArgs, KubernetesVersionState]) (infer.DiffResponse, error) {
	diff := map[string]p.PropertyDiff{}
	o, n := req.State.KubernetesVersionArgs, req.Inputs
	if o.KubernetesVersion != n.KubernetesVersion {
		diff["kubernetesVersion"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if o.ControlPlaneConfiguration != n.ControlPlaneConfiguration {
		diff["controlPlaneConfiguration"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	// A worker role appearing or going (the first worker added, the last
	// removed) is scaling.
	if o.WorkerConfiguration != n.WorkerConfiguration && o.WorkerConfiguration != "" && n.WorkerConfiguration != "" {
		diff["workerConfiguration"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	}
	if o.ClusterName != n.ClusterName {
		diff["clusterName"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	return infer.DiffResponse{HasChanges: len(diff) > 0, DetailedDiff: diff}, nil
}

// Delete forgets the version: the cluster goes with its nodes.
func (KubernetesVersion) Delete(context.Context, infer.DeleteRequest[KubernetesVersionState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, nil
}
