package main

import (
	"context"
	"fmt"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components"
)

// Provider serves every SDA component under its Go component's token, and
// SDA's custom resources, with a schema that describes every property by
// its Go comment (withFieldDocs).
func Provider() (p.Provider, error) {
	prov, err := undescribedProvider()
	if err != nil {
		return prov, err
	}
	return withFieldDocs(prov), nil
}

// undescribedProvider is Provider with the schema as infer builds it.
func undescribedProvider() (p.Provider, error) {
	prov, err := infer.NewProviderBuilder().
		WithNamespace("sda-platform").
		WithDisplayName("SDA").
		WithDescription("Talos Kubernetes on Proxmox VE: the SDA components (internal network, router, Talos nodes and clusters, overlay network).").
		WithKeywords("proxmox", "talos", "kubernetes", "category/infrastructure", "kind/component").
		WithLicense("Apache-2.0").
		WithComponents(
			infer.ComponentF(newInternalNetwork),
			infer.ComponentF(newRouterLXC),
			infer.ComponentF(newTalosNode),
			infer.ComponentF(newTalosCluster),
			infer.ComponentF(newOverlayNetwork),
		).
		WithResources(infer.Resource(&TalosNodeVersion{}), infer.Resource(&KubernetesVersion{}), infer.Resource(&ClusterMembers{}), infer.Resource(&NodeDrain{}), infer.Resource(&NodeReady{}), infer.Resource(&KnownHost{})).
		WithFunctions(infer.Function(&OverlayMachinePatch{})).
		// The plugin resources' nested types live in components/pluginapi
		// (shared with the components); their tokens stay sda:index:*.
		WithModuleMap(map[tokens.ModuleName]tokens.ModuleName{"pluginapi": "index"}).
		Build()
	if err != nil {
		return prov, err
	}
	// The plugin takes no configuration, but the engine hands a package's
	// default provider every stack key of its namespace, and SDA's stack
	// keys are sda:* too: a changed sda:cluster.workers would show as an
	// update of the provider. Nothing in them configures the plugin.
	prov.DiffConfig = func(context.Context, p.DiffRequest) (p.DiffResponse, error) {
		return p.DiffResponse{}, nil
	}
	return prov, nil
}

// Each component is exposed through a type of its own with the Go
// component's struct as its underlying type: the conversion is free, and the
// type carries the Annotate method that pins the token to sda:index:<Name>,
// the token the Go component registers (and that every child's URN
// contains). Without it infer would derive sda:components:<Name>.

type InternalNetwork components.InternalNetwork

func (c *InternalNetwork) Annotate(a infer.Annotator) {
	a.SetToken("index", "InternalNetwork")
	a.Describe(c, "The isolated network the cluster lives on, present on every Proxmox node the stack uses: a portless bridge, a VLAN, a Proxmox SDN VXLAN VNet or an existing bridge.")
}

func newInternalNetwork(ctx *pulumi.Context, name string, args components.InternalNetworkArgs, opts ...pulumi.ResourceOption) (*InternalNetwork, error) {
	c, err := components.NewInternalNetwork(ctx, name, &args, opts...)
	return (*InternalNetwork)(c), err
}

type RouterLXC components.RouterLXC

func (c *RouterLXC) Annotate(a infer.Annotator) {
	a.SetToken("index", "RouterLXC")
	a.Describe(c, "The router between the external network and the internal one: a Debian LXC container with NAT, a default-drop firewall (admin CIDRs reach the Talos and Kubernetes APIs), port-forwards, and dnsmasq for DNS and DHCP, configured over SSH to its Proxmox host.")
}

func newRouterLXC(ctx *pulumi.Context, name string, args components.RouterLXCArgs, opts ...pulumi.ResourceOption) (*RouterLXC, error) {
	c, err := components.NewRouterLXC(ctx, name, &args, opts...)
	return (*RouterLXC)(c), err
}

type TalosNode components.TalosNode

func (c *TalosNode) Annotate(a infer.Annotator) {
	a.SetToken("index", "TalosNode")
	a.Describe(c, "One Talos Linux VM on Proxmox VE and the machine configuration applied to it.")
}

func newTalosNode(ctx *pulumi.Context, name string, args components.TalosNodeArgs, opts ...pulumi.ResourceOption) (*TalosNode, error) {
	c, err := components.NewTalosNode(ctx, name, &args, opts...)
	return (*TalosNode)(c), err
}

type TalosCluster components.TalosCluster

func (c *TalosCluster) Annotate(a infer.Annotator) {
	a.SetToken("index", "TalosCluster")
	a.Describe(c, "A Talos Kubernetes cluster of Proxmox VMs: machine secrets, the Image Factory image, every node, the bootstrap, kubeconfig and talosconfig.")
}

func newTalosCluster(ctx *pulumi.Context, name string, args components.TalosClusterArgs, opts ...pulumi.ResourceOption) (*TalosCluster, error) {
	c, err := components.NewTalosCluster(ctx, name, &args, opts...)
	return (*TalosCluster)(c), err
}

type OverlayNetwork components.OverlayNetwork

func (c *OverlayNetwork) Annotate(a infer.Annotator) {
	a.SetToken("index", "OverlayNetwork")
	a.Describe(c, "The Kubernetes pod network: Flannel (Talos's default) or Cilium installed with Helm, then a full cluster health check.")
}

func newOverlayNetwork(ctx *pulumi.Context, name string, args components.OverlayNetworkArgs, opts ...pulumi.ResourceOption) (*OverlayNetwork, error) {
	c, err := components.NewOverlayNetwork(ctx, name, &args, opts...)
	return (*OverlayNetwork)(c), err
}

// OverlayMachinePatch is the function form of components.MachinePatch: the
// Talos patch that OverlayNetwork's CNI needs on every node, for programs
// that cannot call Go. Hand its result to TalosCluster's patches.
type OverlayMachinePatch struct{}

// OverlayMachinePatchArgs selects the CNI.
type OverlayMachinePatchArgs struct {
	// CNI is "flannel" or "cilium", as OverlayNetwork's cni.
	CNI string `pulumi:"cni"`
	// KubeProxyReplacement says Cilium replaces kube-proxy (default true,
	// OverlayNetwork's default; Cilium only).
	KubeProxyReplacement *bool `pulumi:"kubeProxyReplacement,optional"`
}

// OverlayMachinePatchResult is the patch; empty for Flannel, which needs none.
type OverlayMachinePatchResult struct {
	// Patch is the Talos machine-config patch, empty for Flannel.
	Patch string `pulumi:"patch"`
}

func (f *OverlayMachinePatch) Annotate(a infer.Annotator) {
	a.SetToken("index", "overlayMachinePatch")
	a.Describe(f, "The Talos machine-config patch the overlay's CNI needs on every node (Cilium: no Talos CNI, and no kube-proxy when Cilium replaces it; Flannel: none). Pass it to TalosCluster's patches.")
}

func (OverlayMachinePatch) Invoke(_ context.Context, req infer.FunctionRequest[OverlayMachinePatchArgs]) (infer.FunctionResponse[OverlayMachinePatchResult], error) {
	in := req.Input
	if in.CNI != "flannel" && in.CNI != "cilium" {
		return infer.FunctionResponse[OverlayMachinePatchResult]{}, fmt.Errorf("overlayMachinePatch: cni %q: use \"flannel\" or \"cilium\"", in.CNI)
	}
	// OverlayNetwork's own default: Cilium replaces kube-proxy.
	kpr := in.KubeProxyReplacement == nil || *in.KubeProxyReplacement
	return infer.FunctionResponse[OverlayMachinePatchResult]{Output: OverlayMachinePatchResult{Patch: components.MachinePatch(in.CNI, kpr)}}, nil
}
