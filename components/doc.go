// Package components is SDA's Pulumi component library: InternalNetwork,
// RouterLXC, TalosNode, TalosCluster and OverlayNetwork. Each is a
// pulumi.ComponentResource with a constructor NewX(ctx, name, args, opts...)
// that parents every child to the component and names it after the
// component, so two instances never collide. Each turns its Args into its
// spec first (components/spec) and then registers its resources in named
// steps, in the order they come up.
//
// The components import no SDA package outside components/ and grammar:
// a program that uses them needs no SDA stack configuration. The logic
// they wire up lives in pure packages beside them, each tested without
// Pulumi:
//   - spec: every component's inputs as plain Go values, their checks, and
//     what follows from them (the router's files, the patches' view of the
//     cluster); SDA's stacks build these from their configuration
//     (stacks/inputs);
//   - routerfiles: the router's nftables, dnsmasq and sysctl files, and
//     the scripts that apply them and each host's entries;
//   - talospatch: Talos machine-config patches, which of their fields need
//     a reboot, and Image Factory names (schematic ID, image, installer);
//   - overlay: the CNI's machine patch and Cilium's Helm values;
//   - sdn: the Proxmox SDN (VXLAN zone and VNet) scripts;
//   - guestchange: which VM updates reboot the VM, and which the Proxmox
//     provider would fail half way and are refused.
//
// pluginapi is the one definition of the custom resources SDA's plugin
// (provider/) serves and the components register (plugin_resources.go):
// their tokens, inputs and outputs, shared by both sides.
package components

// Type tokens of the components, as they appear in URNs.
const (
	InternalNetworkType = "sda:index:InternalNetwork"
	RouterLXCType       = "sda:index:RouterLXC"
	TalosNodeType       = "sda:index:TalosNode"
	TalosClusterType    = "sda:index:TalosCluster"
	OverlayNetworkType  = "sda:index:OverlayNetwork"
)
