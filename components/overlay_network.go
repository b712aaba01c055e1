package components

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/cluster"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

	"github.com/sda-platform/sda/components/overlay"
	"github.com/sda-platform/sda/components/spec"
)

// OverlayNetworkArgs describes the Kubernetes overlay network of a Talos
// cluster (TalosCluster's outputs fit its inputs).
type OverlayNetworkArgs struct {
	// CNI is overlay.CNIFlannel (Talos's default: nothing to install) or
	// overlay.CNICilium (installed with Helm). Either way the nodes need
	// overlay.MachinePatch as a TalosCluster patch.
	CNI string `pulumi:"cni"`
	// CiliumVersion is the Cilium Helm chart version (Cilium only).
	CiliumVersion string `pulumi:"ciliumVersion,optional"`
	// KubeProxyReplacement lets Cilium replace kube-proxy (default true;
	// Cilium only); the machine patch must say the same.
	KubeProxyReplacement *bool `pulumi:"kubeProxyReplacement,optional"`
	// MTU of the internal network (0: 1500); Cilium's MTU follows it.
	// Flannel needs nothing: it derives its MTU from the node's link.
	MTU int `pulumi:"mtu,optional"`

	// ClusterName identifies the cluster to the Kubernetes provider, so a
	// renewed kubeconfig does not replace the release.
	ClusterName string `pulumi:"clusterName"`
	// Kubeconfig (secret) reaches the cluster's Kubernetes API.
	Kubeconfig pulumi.StringInput `pulumi:"kubeconfig" provider:"secret"`
	// ClientConfiguration (secret) reaches the Talos API for the health check.
	ClientConfiguration machine.ClientConfigurationInput `pulumi:"clientConfiguration" provider:"secret"`
	// ControlPlaneAddresses and WorkerAddresses are the nodes' addresses.
	ControlPlaneAddresses pulumi.StringArrayInput `pulumi:"controlPlaneAddresses"`
	WorkerAddresses       pulumi.StringArrayInput `pulumi:"workerAddresses,optional"`
	// TalosHealthy, when given, holds the installation until Talos and etcd
	// are healthy (TalosCluster.TalosHealthy): installing before only times
	// out.
	TalosHealthy pulumi.BoolInput `pulumi:"talosHealthy,optional"`
}

// OverlayNetwork installs the CNI and then waits for full cluster health.
// Its other half, the machine-config patch, is MachinePatch(): hand it to
// TalosCluster (Patches) before the nodes are configured.
type OverlayNetwork struct {
	pulumi.ResourceState

	// CNI is the installed CNI, as given: flannel or cilium.
	CNI pulumi.StringOutput `pulumi:"cni"`
	// Ready resolves once Talos reports the whole cluster, Kubernetes
	// included, healthy with the CNI in place.
	Ready pulumi.BoolOutput `pulumi:"ready"`

	Release *helmv3.Release
}

// MachinePatch is the Talos patch the chosen CNI needs ("" for flannel),
// for TalosClusterArgs.Patches.
func MachinePatch(cni string, kubeProxyReplacement bool) string {
	return overlay.MachinePatch(cni, kubeProxyReplacement)
}

// NewOverlayNetworkArgs are the Args of an overlay spec; the caller adds
// the cluster's outputs (Kubeconfig, ClientConfiguration, the addresses,
// TalosHealthy).
func NewOverlayNetworkArgs(s spec.Overlay) *OverlayNetworkArgs {
	return &OverlayNetworkArgs{CNI: s.CNI, CiliumVersion: s.CiliumVersion, KubeProxyReplacement: s.KubeProxyReplacement,
		MTU: s.MTU, ClusterName: s.ClusterName}
}

// Spec is the overlay these Args describe, without the cluster's outputs.
func (a *OverlayNetworkArgs) Spec() spec.Overlay {
	return spec.Overlay{CNI: a.CNI, CiliumVersion: a.CiliumVersion, KubeProxyReplacement: a.KubeProxyReplacement,
		MTU: a.MTU, ClusterName: a.ClusterName}
}

// NewOverlayNetwork installs Cilium with Helm (flannel comes with Talos and
// needs nothing) and runs the Kubernetes health checks after it.
func NewOverlayNetwork(ctx *pulumi.Context, name string, args *OverlayNetworkArgs, opts ...pulumi.ResourceOption) (*OverlayNetwork, error) {
	if args == nil || args.Kubeconfig == nil || args.ClientConfiguration == nil || args.ControlPlaneAddresses == nil {
		return nil, fmt.Errorf("OverlayNetwork %s: Kubeconfig, ClientConfiguration and ControlPlaneAddresses are required", name)
	}
	s := args.Spec()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("OverlayNetwork %s: %w", name, err)
	}
	workers := args.WorkerAddresses
	if workers == nil {
		workers = pulumi.StringArray{}
	}
	comp := &OverlayNetwork{}
	if err := ctx.RegisterComponentResource(OverlayNetworkType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)

	// gate is what the Kubernetes health check waits for: Talos health, and
	// with Cilium the release being deployed.
	gate := pulumi.String("talos").ToStringOutput()
	if args.TalosHealthy != nil {
		gate = args.TalosHealthy.ToBoolOutput().ApplyT(func(bool) string { return "talos" }).(pulumi.StringOutput)
	}
	if s.CNI == overlay.CNICilium {
		release, err := installCilium(ctx, name, s, args.Kubeconfig, gate, parent)
		if err != nil {
			return nil, err
		}
		comp.Release = release
		gate = pulumi.All(gate, release.Status.Status()).ApplyT(func([]any) string { return "cilium" }).(pulumi.StringOutput)
	}

	ready := cluster.GetHealthOutput(ctx, cluster.GetHealthOutputArgs{
		ClientConfiguration: healthClientConfig(args.ClientConfiguration.ToClientConfigurationOutput()),
		ControlPlaneNodes: pulumi.All(gate, args.ControlPlaneAddresses).ApplyT(func(v []any) []string {
			return v[1].([]string)
		}).(pulumi.StringArrayOutput),
		WorkerNodes: pulumi.All(gate, workers).ApplyT(func(v []any) []string {
			return v[1].([]string)
		}).(pulumi.StringArrayOutput),
		Endpoints: args.ControlPlaneAddresses,
	}, parent)

	comp.CNI = pulumi.String(s.CNI).ToStringOutput()
	comp.Ready = ready.Id().ApplyT(func(string) bool { return true }).(pulumi.BoolOutput)
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{"cni": comp.CNI, "ready": comp.Ready}); err != nil {
		return nil, err
	}
	return comp, nil
}

// installCilium installs Cilium's Helm release once the gate (Talos and
// etcd healthy) has passed.
//
// pulumi-kubernetes v4.32.0 replaces a provider whose kubeconfig is
// unknown at preview, and every release on it with it
// (provider/pkg/provider/provider.go:504, DiffConfig), unless its
// clusterIdentifier is set and unchanged (:495). So the provider takes the
// kubeconfig resource's output as it is (read through the health check it
// was unknown in every preview that changed a node), and the identifier
// keeps a renewed kubeconfig from replacing Cilium. The wait for Talos and
// etcd is an explicit dependency of the release instead: installing before
// then only times out.
func installCilium(ctx *pulumi.Context, name string, s spec.Overlay, kubeconfig pulumi.StringInput,
	gate pulumi.StringOutput, parent pulumi.ResourceOption) (*helmv3.Release, error) {
	k8s, err := kubernetes.NewProvider(ctx, name+"-k8s", &kubernetes.ProviderArgs{
		Kubeconfig:        pulumi.ToSecret(kubeconfig).(pulumi.StringOutput),
		ClusterIdentifier: pulumi.String(s.ClusterName),
		// Fail instead of silently skipping when the cluster is gone.
		DeleteUnreachable: pulumi.Bool(false),
	}, parent)
	if err != nil {
		return nil, err
	}
	// The release waits for the gate (and through the provider's
	// kubeconfig for the cluster's bootstrap).
	afterTalosHealthy := gate.ApplyT(func(string) []pulumi.Resource { return nil }).(pulumi.ResourceArrayOutput)
	values := pulumi.Map{}
	for k, v := range overlay.CiliumValues(s.KubeProxyReplacementEnabled(), s.MTU) {
		values[k] = pulumi.Any(v)
	}
	return helmv3.NewRelease(ctx, name+"-cilium", &helmv3.ReleaseArgs{
		Name:           pulumi.String("cilium"),
		Chart:          pulumi.String(overlay.CiliumChart),
		Version:        pulumi.String(s.CiliumVersion),
		RepositoryOpts: &helmv3.RepositoryOptsArgs{Repo: pulumi.String(overlay.CiliumRepo)},
		Namespace:      pulumi.String(overlay.CiliumNamespace),
		Values:         values,
		// Helm waits for the agents to become ready; until then nodes
		// stay NotReady, and failing the update beats a half install.
		Atomic:  pulumi.Bool(true),
		Timeout: pulumi.Int(900),
	}, parent, pulumi.Provider(k8s), pulumi.DependsOnInputs(afterTalosHealthy))
}
