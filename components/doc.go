// Package components is SDA's Pulumi component library: InternalNetwork,
// RouterLXC, TalosNode, TalosCluster and OverlayNetwork. Each is a
// pulumi.ComponentResource with a constructor NewX(ctx, name, args, opts...)
// that parents every child to the component and names it after the
// component, so two instances never collide.
//
// The logic the components wire up lives in pure packages beside them:
// routerfiles (router configuration files), talospatch (Talos machine-config
// patches and Image Factory names) and overlay (CNI patch and Helm values).
package components

// Type tokens of the components, as they appear in URNs.
const (
	InternalNetworkType = "sda:index:InternalNetwork"
	RouterLXCType       = "sda:index:RouterLXC"
	TalosNodeType       = "sda:index:TalosNode"
	TalosClusterType    = "sda:index:TalosCluster"
	OverlayNetworkType  = "sda:index:OverlayNetwork"
)
