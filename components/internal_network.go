package components

import (
	"fmt"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/network"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// InternalNetworkArgs describes the isolated bridge of the Talos nodes.
type InternalNetworkArgs struct {
	// Bridge is the Linux bridge name on every Proxmox node, e.g. vmbr1.
	Bridge string
	// ProxmoxNodes are the nodes that host a machine of the stack.
	ProxmoxNodes []string
	// Create makes the bridge (no physical ports, no host address: only the
	// router connects it to anything). False uses an existing bridge.
	Create bool
}

// InternalNetwork is the isolated Proxmox bridge, present on every Proxmox
// node the stack uses.
type InternalNetwork struct {
	pulumi.ResourceState

	// Bridge is the bridge name.
	Bridge pulumi.StringOutput `pulumi:"bridge"`

	// perNode carries each node's bridge name as an output of that node's
	// bridge resource, so a VM on the node waits for its bridge.
	perNode map[string]pulumi.StringOutput
}

// NewInternalNetwork creates (or adopts by name) the internal bridge.
func NewInternalNetwork(ctx *pulumi.Context, name string, args *InternalNetworkArgs, opts ...pulumi.ResourceOption) (*InternalNetwork, error) {
	if args == nil || args.Bridge == "" || len(args.ProxmoxNodes) == 0 {
		return nil, fmt.Errorf("InternalNetwork %s: Bridge and ProxmoxNodes are required", name)
	}
	comp := &InternalNetwork{perNode: map[string]pulumi.StringOutput{}}
	if err := ctx.RegisterComponentResource(InternalNetworkType, name, comp, opts...); err != nil {
		return nil, err
	}
	for _, node := range args.ProxmoxNodes {
		if !args.Create {
			comp.perNode[node] = pulumi.String(args.Bridge).ToStringOutput()
			continue
		}
		br, err := network.NewNetworkBridge(ctx, fmt.Sprintf("%s-%s", name, node), &network.NetworkBridgeArgs{
			NodeName:  pulumi.String(node),
			Name:      pulumi.String(args.Bridge),
			Autostart: pulumi.Bool(true),
			Comment:   pulumi.String("SDA internal network (isolated; routed only by the SDA router)"),
		}, pulumi.Parent(comp))
		if err != nil {
			return nil, err
		}
		comp.perNode[node] = br.Name
	}
	comp.Bridge = comp.perNode[args.ProxmoxNodes[0]]
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{"bridge": comp.Bridge}); err != nil {
		return nil, err
	}
	return comp, nil
}

// BridgeOn returns the bridge name on one Proxmox node, as an output that
// depends on that node's bridge.
func (n *InternalNetwork) BridgeOn(node string) pulumi.StringOutput {
	if b, ok := n.perNode[node]; ok {
		return b
	}
	return n.Bridge
}
