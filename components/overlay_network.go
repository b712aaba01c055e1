package components

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/cluster"

	"github.com/sda-platform/sda/components/overlay"
	"github.com/sda-platform/sda/stacks/config"
)

// OverlayNetworkArgs describes the Kubernetes overlay network.
type OverlayNetworkArgs struct {
	// Cluster carries the CNI choice and the Cilium settings.
	Cluster config.Cluster
	// MTU of the internal network (0: 1500); Cilium's MTU follows it.
	// Flannel needs nothing: it derives its MTU from the node's link.
	MTU int
	// Talos is the cluster to install into: its kubeconfig feeds the
	// Kubernetes provider, and its Talos health gates the installation.
	Talos *TalosCluster
}

// OverlayNetwork installs the CNI and then waits for full cluster health.
// Its other half, the machine-config patch, is MachinePatch(): hand it to
// TalosCluster (CNIPatch) before the nodes are configured.
type OverlayNetwork struct {
	pulumi.ResourceState

	CNI pulumi.StringOutput `pulumi:"cni"`
	// Ready resolves once Talos reports the whole cluster, Kubernetes
	// included, healthy with the CNI in place.
	Ready pulumi.BoolOutput `pulumi:"ready"`

	Release *helmv3.Release `pulumi:"-"`
}

// MachinePatch is the Talos patch the chosen CNI needs ("" for flannel).
func MachinePatch(c config.Cluster) string { return overlay.MachinePatch(c) }

// NewOverlayNetwork installs Cilium with Helm (flannel comes with Talos and
// needs nothing) and runs the Kubernetes health checks after it.
func NewOverlayNetwork(ctx *pulumi.Context, name string, args *OverlayNetworkArgs, opts ...pulumi.ResourceOption) (*OverlayNetwork, error) {
	if args == nil || args.Talos == nil {
		return nil, fmt.Errorf("OverlayNetwork %s: Talos cluster is required", name)
	}
	switch args.Cluster.CNI {
	case config.CNIFlannel, config.CNICilium:
	default:
		return nil, fmt.Errorf("OverlayNetwork %s: unknown CNI %q: use %q or %q", name, args.Cluster.CNI, config.CNIFlannel, config.CNICilium)
	}
	comp := &OverlayNetwork{}
	if err := ctx.RegisterComponentResource(OverlayNetworkType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)
	talos := args.Talos

	// gate is what the Kubernetes health check waits for: Talos health, and
	// with Cilium the release being deployed.
	gate := talos.TalosHealthy.ApplyT(func(bool) string { return "talos" }).(pulumi.StringOutput)
	if args.Cluster.CNI == config.CNICilium {
		// pulumi-kubernetes v4.32.0 replaces a provider whose kubeconfig is
		// unknown at preview, and every release on it with it
		// (provider/pkg/provider/provider.go:504, DiffConfig), unless its
		// clusterIdentifier is set and unchanged (:495). So the provider
		// takes the kubeconfig resource's output as it is (read through
		// the health check it was unknown in every preview that changed a
		// node), and the identifier keeps a renewed kubeconfig from
		// replacing Cilium. The wait for Talos and etcd is an explicit
		// dependency of the release instead: installing before then only
		// times out.
		k8s, err := kubernetes.NewProvider(ctx, name+"-k8s", &kubernetes.ProviderArgs{
			Kubeconfig:        pulumi.ToSecret(talos.Kubeconfig).(pulumi.StringOutput),
			ClusterIdentifier: talos.ClusterName,
			// Fail instead of silently skipping when the cluster is gone.
			DeleteUnreachable: pulumi.Bool(false),
		}, parent)
		if err != nil {
			return nil, err
		}
		afterTalosHealthy := talos.TalosHealthy.ApplyT(func(bool) []pulumi.Resource {
			return []pulumi.Resource{talos.Bootstrap}
		}).(pulumi.ResourceArrayOutput)
		values := pulumi.Map{}
		for k, v := range overlay.CiliumValuesFor(args.Cluster, args.MTU) {
			values[k] = pulumi.Any(v)
		}
		release, err := helmv3.NewRelease(ctx, name+"-cilium", &helmv3.ReleaseArgs{
			Name:           pulumi.String("cilium"),
			Chart:          pulumi.String(overlay.CiliumChart),
			Version:        pulumi.String(args.Cluster.Cilium.Version),
			RepositoryOpts: &helmv3.RepositoryOptsArgs{Repo: pulumi.String(overlay.CiliumRepo)},
			Namespace:      pulumi.String(overlay.CiliumNamespace),
			Values:         values,
			// Helm waits for the agents to become ready; until then nodes
			// stay NotReady, and failing the update beats a half install.
			Atomic:  pulumi.Bool(true),
			Timeout: pulumi.Int(900),
		}, parent, pulumi.Provider(k8s), pulumi.DependsOnInputs(afterTalosHealthy))
		if err != nil {
			return nil, err
		}
		comp.Release = release
		gate = pulumi.All(gate, release.Status.Status()).ApplyT(func([]any) string { return "cilium" }).(pulumi.StringOutput)
	}

	ready := cluster.GetHealthOutput(ctx, cluster.GetHealthOutputArgs{
		ClientConfiguration: healthClientConfig(talos.ClientConfiguration),
		ControlPlaneNodes: pulumi.All(gate, talos.ControlPlaneAddresses).ApplyT(func(v []any) []string {
			return v[1].([]string)
		}).(pulumi.StringArrayOutput),
		WorkerNodes: pulumi.All(gate, talos.WorkerAddresses).ApplyT(func(v []any) []string {
			return v[1].([]string)
		}).(pulumi.StringArrayOutput),
		Endpoints: talos.ControlPlaneAddresses,
	}, parent)

	comp.CNI = pulumi.String(args.Cluster.CNI).ToStringOutput()
	comp.Ready = ready.Id().ApplyT(func(string) bool { return true }).(pulumi.BoolOutput)
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{"cni": comp.CNI, "ready": comp.Ready}); err != nil {
		return nil, err
	}
	return comp, nil
}
