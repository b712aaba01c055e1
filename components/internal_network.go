package components

import (
	"fmt"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/network"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components/sdn"
	"github.com/sda-platform/sda/components/spec"
)

// Internal network modes (InternalNetworkArgs.Mode).
const (
	// NetworkModeBridge creates a bridge without ports on every node: one
	// segment only when every guest is on one Proxmox node.
	NetworkModeBridge = spec.NetworkModeBridge
	// NetworkModeVLAN makes a VLAN interface of an uplink the only port of
	// the bridge on every node; the switch joins the nodes.
	NetworkModeVLAN = spec.NetworkModeVLAN
	// NetworkModeVXLAN creates a Proxmox SDN VXLAN zone and VNet; guests
	// attach to the VNet's bridge on every node.
	NetworkModeVXLAN = spec.NetworkModeVXLAN
	// NetworkModeExisting uses a bridge that already exists on every node.
	NetworkModeExisting = spec.NetworkModeExisting
)

// InternalNetworkArgs describes the isolated network of the Talos nodes.
type InternalNetworkArgs struct {
	// Bridge is the Linux bridge name on every Proxmox node, e.g. vmbr1. In
	// vxlan mode guests attach to the VNet's bridge instead (VXLAN.VNet).
	Bridge string `pulumi:"bridge"`
	// ProxmoxNodes are the nodes that host a machine of the stack.
	ProxmoxNodes []string `pulumi:"proxmoxNodes"`
	// Mode is one of the NetworkMode constants. Empty follows Create:
	// bridge when true, existing when false.
	Mode string `pulumi:"mode,optional"`
	// Create makes the bridge (no physical ports, no host address: only the
	// router connects it to anything). False uses an existing bridge. Only
	// read when Mode is empty.
	Create bool `pulumi:"create,optional"`
	// VLAN is required in vlan mode.
	VLAN *InternalVLANArgs `pulumi:"vlan,optional"`
	// VXLAN and SSH are required in vxlan mode.
	VXLAN *InternalVXLANArgs `pulumi:"vxlan,optional"`
	// SSH reaches one Proxmox node of the cluster, where pvesh changes the
	// cluster-wide SDN configuration.
	SSH *ProxmoxSSH `pulumi:"ssh,optional"`
}

// InternalVLANArgs is the VLAN mode's uplink and tag.
type InternalVLANArgs struct {
	// Uplink carries the VLAN to the switch on every node (eno1, bond0).
	Uplink string `pulumi:"uplink"`
	// ID is the VLAN tag, 1-4094.
	ID int `pulumi:"id"`
	// Interface is the VLAN interface's name; empty means "<uplink>.<id>".
	Interface string `pulumi:"interface,optional"`
}

// InternalVXLANArgs is the VXLAN mode's SDN zone and VNet.
type InternalVXLANArgs struct {
	// Zone and VNet are Proxmox SDN IDs (a lowercase letter, then letters
	// and digits, 8 at most); the VNet is also the bridge name on every node.
	Zone string `pulumi:"zone"`
	VNet string `pulumi:"vnet"`
	// VNI is the VXLAN network identifier, 1-16777215.
	VNI int `pulumi:"vni"`
	// Peers are every node's IPv4 address on the Proxmox cluster network.
	Peers []string `pulumi:"peers"`
	// MTU of the zone, 50 below the underlay's (1450 on 1500).
	MTU int `pulumi:"mtu"`
}

// ProxmoxSSH is an SSH connection to a Proxmox host.
type ProxmoxSSH = RouterSSH

// InternalNetwork is the isolated network, present on every Proxmox node
// the stack uses.
type InternalNetwork struct {
	pulumi.ResourceState

	// Bridge is the bridge name guests attach to.
	Bridge pulumi.StringOutput `pulumi:"bridge"`

	// SDN is the command that manages the VXLAN zone and VNet (vxlan mode).
	SDN *remote.Command

	// perNode carries each node's bridge name as an output of what creates
	// it on that node, so a guest on the node waits for its bridge.
	perNode map[string]pulumi.StringOutput
}

// NewInternalNetworkArgs are the Args of a network spec; the caller adds
// the SSH private key (SSH.PrivateKey) in vxlan mode.
func NewInternalNetworkArgs(s spec.InternalNetwork) *InternalNetworkArgs {
	a := &InternalNetworkArgs{Bridge: s.Bridge, ProxmoxNodes: s.ProxmoxNodes, Mode: s.Mode, Create: s.Create}
	if s.VLAN != nil {
		v := InternalVLANArgs(*s.VLAN)
		a.VLAN = &v
	}
	if s.VXLAN != nil {
		x := InternalVXLANArgs(*s.VXLAN)
		a.VXLAN = &x
	}
	if s.SSH != nil {
		ssh := routerSSH(*s.SSH)
		a.SSH = &ssh
	}
	return a
}

// Spec is the network these Args describe, without the SSH private key.
func (a *InternalNetworkArgs) Spec() spec.InternalNetwork {
	s := spec.InternalNetwork{Bridge: a.Bridge, ProxmoxNodes: a.ProxmoxNodes, Mode: a.Mode, Create: a.Create}
	if a.VLAN != nil {
		v := spec.VLAN(*a.VLAN)
		s.VLAN = &v
	}
	if a.VXLAN != nil {
		x := spec.VXLAN(*a.VXLAN)
		s.VXLAN = &x
	}
	if a.SSH != nil {
		ssh := a.SSH.spec()
		s.SSH = &ssh
	}
	return s
}

// NewInternalNetwork creates (or adopts by name) the internal network.
func NewInternalNetwork(ctx *pulumi.Context, name string, args *InternalNetworkArgs, opts ...pulumi.ResourceOption) (*InternalNetwork, error) {
	if args == nil || len(args.ProxmoxNodes) == 0 {
		return nil, fmt.Errorf("InternalNetwork %s: ProxmoxNodes are required", name)
	}
	s := args.Spec()
	vxlan, err := s.SDN()
	if err != nil {
		return nil, fmt.Errorf("InternalNetwork %s: %w", name, err)
	}
	var conn remote.ConnectionArgs
	if s.EffectiveMode() == NetworkModeVXLAN {
		if conn, err = args.SSH.connection(ctx, "SSH"); err != nil {
			return nil, fmt.Errorf("InternalNetwork %s: %w", name, err)
		}
	}
	comp := &InternalNetwork{perNode: map[string]pulumi.StringOutput{}}
	if err := ctx.RegisterComponentResource(InternalNetworkType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)
	switch s.EffectiveMode() {
	case NetworkModeExisting:
		for _, node := range s.ProxmoxNodes {
			comp.perNode[node] = pulumi.String(s.Bridge).ToStringOutput()
		}
	case NetworkModeBridge, NetworkModeVLAN:
		for _, node := range s.ProxmoxNodes {
			if comp.perNode[node], err = bridgeOnNode(ctx, name, node, s, parent); err != nil {
				return nil, err
			}
		}
	case NetworkModeVXLAN:
		if err := comp.sdnVNet(ctx, name, s.ProxmoxNodes, vxlan, conn, parent); err != nil {
			return nil, err
		}
	}
	comp.Bridge = comp.perNode[s.ProxmoxNodes[0]]
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{"bridge": comp.Bridge}); err != nil {
		return nil, err
	}
	return comp, nil
}

// bridgeOnNode creates the bridge on one Proxmox node, in vlan mode with
// the VLAN interface as its only port. It returns the bridge's name as an
// output of the bridge.
func bridgeOnNode(ctx *pulumi.Context, name, node string, s spec.InternalNetwork, parent pulumi.ResourceOption) (pulumi.StringOutput, error) {
	bridgeArgs := &network.NetworkBridgeArgs{
		NodeName:  pulumi.String(node),
		Name:      pulumi.String(s.Bridge),
		Autostart: pulumi.Bool(true),
		Comment:   pulumi.String("SDA internal network (isolated; routed only by the SDA router)"),
	}
	var after []pulumi.ResourceOption
	if s.EffectiveMode() == NetworkModeVLAN {
		v := s.VLAN
		iface := v.Interface
		if iface == "" {
			iface = fmt.Sprintf("%s.%d", v.Uplink, v.ID)
		}
		vlan, err := network.NewNetworkVlan(ctx, fmt.Sprintf("%s-vlan-%s", name, node), &network.NetworkVlanArgs{
			NodeName:  pulumi.String(node),
			Name:      pulumi.String(iface),
			Interface: pulumi.String(v.Uplink),
			Vlan:      pulumi.Int(v.ID),
			Autostart: pulumi.Bool(true),
			Comment:   pulumi.String(fmt.Sprintf("SDA internal network: VLAN %d of %s, port of %s", v.ID, v.Uplink, s.Bridge)),
		}, parent)
		if err != nil {
			return pulumi.StringOutput{}, err
		}
		// The bridge's only port: every node's bridge joins the
		// same VLAN on the switch, so the nodes share one segment.
		bridgeArgs.Ports = pulumi.StringArray{pulumi.String(iface)}
		bridgeArgs.Comment = pulumi.String(fmt.Sprintf("SDA internal network (VLAN %d on %s; routed only by the SDA router)", v.ID, v.Uplink))
		after = append(after, pulumi.DependsOn([]pulumi.Resource{vlan}))
	}
	// Bridge mode keeps its resource names and arguments from
	// before modes existed: deployed stacks see no change.
	br, err := network.NewNetworkBridge(ctx, fmt.Sprintf("%s-%s", name, node), bridgeArgs, append(after, parent)...)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return br.Name, nil
}

// sdnVNet creates the VXLAN zone and VNet. SDN configuration is
// cluster-wide: one command on one node creates the zone and VNet, and
// applying it makes the VNet's bridge on every node. Its scripts are
// idempotent, so a changed peer list, MTU or VNI updates in place. A new
// zone or VNet name replaces the command, the old one deleted first:
// create-first would let the old command's delete remove a VNet the new
// one kept.
func (comp *InternalNetwork) sdnVNet(ctx *pulumi.Context, name string, nodes []string, vxlan sdn.VXLAN,
	conn remote.ConnectionArgs, parent pulumi.ResourceOption) error {
	apply := sdn.ApplyScript(vxlan)
	cmd, err := remote.NewCommand(ctx, name+"-sdn", &remote.CommandArgs{
		Connection: conn,
		Create:     pulumi.String(apply),
		Update:     pulumi.String(apply),
		Delete:     pulumi.String(sdn.DeleteScript(vxlan)),
		Triggers:   pulumi.Array{pulumi.String(vxlan.Zone), pulumi.String(vxlan.VNet)},
	}, parent, pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return err
	}
	comp.SDN = cmd
	// Read through the command's ID (stable across in-place updates, so
	// a changed peer list does not show every guest as changing).
	vnet := cmd.ID().ApplyT(func(pulumi.ID) string { return vxlan.VNet }).(pulumi.StringOutput)
	for _, node := range nodes {
		comp.perNode[node] = vnet
	}
	return nil
}

// BridgeOn returns the bridge name on one Proxmox node, as an output that
// depends on what makes the bridge on that node.
func (n *InternalNetwork) BridgeOn(node string) pulumi.StringOutput {
	if b, ok := n.perNode[node]; ok {
		return b
	}
	return n.Bridge
}
