package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
)

// Diagram is a Mermaid flowchart of the stack: the external network and the
// internal bridge, each Proxmox node as a subgraph with its guests (role and
// address), the router between the two networks with both addresses, the VIP
// shared by the control planes, and the overlay network joining the nodes.
// The output depends only on the configuration, so it can be committed.
func Diagram(c config.Config, p config.Plan) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	routerExternal := "DHCP"
	if p.RouterExternal.IsValid() {
		routerExternal = p.RouterExternal.String()
	}
	line("flowchart TB")
	line("  external[(\"external network %s<br/>%s\")]", c.Network.External.Bridge, p.External)
	for _, node := range p.ProxmoxNodesUsed() {
		line("  subgraph %s[\"Proxmox node %s%s\"]", mermaidID("pve", node), node, nodeNetworkLabel(p.Network, node))
		line("    direction TB")
		if pr := p.RouterPair; pr != nil {
			for i, r := range pr.Routers {
				if r.ProxmoxNode == node {
					line("    %s[\"%s · LXC %d<br/>%s %s · %s %s (own)\"]", pairRouterID(i), r.Hostname, r.VMID,
						routerfiles.ExternalInterface, r.External, routerfiles.InternalInterface, r.Internal)
				}
			}
		} else if node == p.RouterNode {
			line("    router[\"%s · LXC %d<br/>%s %s · %s %s\"]", c.Router.Hostname, p.RouterVMID,
				routerfiles.ExternalInterface, routerExternal, routerfiles.InternalInterface, p.RouterInternal)
		}
		for _, m := range p.Machines() {
			if m.ProxmoxNode == node {
				line("    %s[\"%s · VM %d<br/>%s · %s\"]", mermaidID("vm", m.Hostname), m.Hostname, m.VMID, roleLabel(m.Role), m.Address)
			}
		}
		line("  end")
	}
	line("  internal[(\"%s<br/>%s · %s<br/>%s\")]", internalLabel(p.Network), p.Internal, c.Network.Internal.Domain, modeLabel(p.Network))
	if p.VIP.IsValid() {
		line("  vip((\"VIP %s<br/>Kubernetes API :6443\"))", p.VIP)
	}
	line("  overlay{{\"%s\"}}", overlayLabel(c.Cluster))

	shared := ""
	if p.RouterPair != nil {
		shared = " (shared)"
	}
	line("  external ---|\"%s %s%s\"| router", routerfiles.ExternalInterface, routerExternal, shared)
	line("  router ---|\"%s %s%s · NAT, DNS, DHCP\"| internal", routerfiles.InternalInterface, p.RouterInternal, shared)
	if p.RouterPair != nil {
		// Both routers reach both networks; the shared addresses are on
		// whichever is master.
		line("  external ---|\"%s %s%s\"| router2", routerfiles.ExternalInterface, routerExternal, shared)
		line("  router2 ---|\"%s %s%s · NAT, DNS, DHCP\"| internal", routerfiles.InternalInterface, p.RouterInternal, shared)
		line("  router <-.->|\"VRRP %d, conntrackd sync (unicast)\"| router2", p.RouterPair.VRID)
	}
	for _, f := range c.Network.PortForwards {
		target, err := config.ForwardTarget(p, f.Target)
		if err != nil {
			continue // validated by config.Resolve; nothing to draw otherwise
		}
		// A forward is DNAT on the router's external address.
		line("  router -.->|\"forward %s %s/%d → %s:%d\"| %s", f.Name, f.Protocol, f.Port, target, f.TargetPort, forwardNode(p, target))
	}
	for _, m := range p.Machines() {
		line("  internal --- %s", mermaidID("vm", m.Hostname))
	}
	if p.VIP.IsValid() {
		for _, m := range p.ControlPlanes {
			line("  vip -.- %s", mermaidID("vm", m.Hostname))
		}
	}
	for _, m := range p.Machines() {
		line("  %s -.- overlay", mermaidID("vm", m.Hostname))
	}
	return b.String()
}

// pairRouterID is the diagram node of a pair's router i: router, router2.
func pairRouterID(i int) string {
	if i == 0 {
		return "router"
	}
	return fmt.Sprintf("router%d", i+1)
}

// internalLabel names what guests attach to.
func internalLabel(n config.NetworkPlan) string {
	switch n.Mode {
	case config.ModeVXLAN:
		return "internal VXLAN VNet " + n.Bridge
	case config.ModeExisting:
		return "internal bridge " + n.Bridge + " (existing)"
	}
	return "internal bridge " + n.Bridge
}

// modeLabel is how the segment spans the Proxmox nodes, and its MTU.
func modeLabel(n config.NetworkPlan) string {
	switch n.Mode {
	case config.ModeVLAN:
		return fmt.Sprintf("VLAN %d on uplink %s (port %s) · MTU %d", n.VLAN.ID, n.VLAN.Uplink, n.VLAN.Interface, n.MTU)
	case config.ModeVXLAN:
		var peers []string
		for _, p := range n.VXLAN.Peers {
			peers = append(peers, p.Address.String())
		}
		return fmt.Sprintf("SDN zone %s · VNI %d · MTU %d<br/>peers %s", n.VXLAN.Zone, n.VXLAN.VNI, n.MTU, strings.Join(peers, ", "))
	case config.ModeExisting:
		return fmt.Sprintf("connected by you on every node · MTU %d", n.MTU)
	}
	return fmt.Sprintf("no ports: this node only · MTU %d", n.MTU)
}

// nodeNetworkLabel is what joins one Proxmox node to the segment.
func nodeNetworkLabel(n config.NetworkPlan, node string) string {
	switch n.Mode {
	case config.ModeVLAN:
		return " · " + n.VLAN.Interface
	case config.ModeVXLAN:
		for _, p := range n.VXLAN.Peers {
			if p.Node == node {
				return " · VXLAN peer " + p.Address.String()
			}
		}
	}
	return ""
}

// forwardNode is the diagram node a port-forward lands on: the VIP, a
// machine, or (for any other internal address) the internal bridge.
func forwardNode(p config.Plan, target netip.Addr) string {
	if p.VIP.IsValid() && target == p.VIP {
		return "vip"
	}
	for _, m := range p.Machines() {
		if m.Address == target {
			return mermaidID("vm", m.Hostname)
		}
	}
	return "internal"
}

func roleLabel(r config.Role) string {
	if r == config.RoleControlPlane {
		return "control plane"
	}
	return "worker"
}

func overlayLabel(cl config.Cluster) string {
	if cl.CNI == config.CNICilium {
		if cl.Cilium.KubeProxyReplacementEnabled() {
			return fmt.Sprintf("pod overlay: Cilium %s, kube-proxy replacement", cl.Cilium.Version)
		}
		return fmt.Sprintf("pod overlay: Cilium %s", cl.Cilium.Version)
	}
	return "pod overlay: Flannel (Talos default)"
}

// mermaidID makes a node ID from a name: Mermaid IDs are safest as
// letters, digits and underscores, and the prefix keeps them apart from
// Mermaid keywords (a Proxmox node called "end" would otherwise close a
// subgraph).
func mermaidID(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteByte('_')
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
