package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Internal network modes: how the internal bridge is one Ethernet segment
// on every Proxmox node the stack uses.
const (
	// ModeBridge is a bridge with no ports, created by SDA. It is local to
	// its Proxmox node: valid only when every guest is on one node.
	ModeBridge = "bridge"
	// ModeVLAN makes a VLAN interface of a physical uplink the bridge's only
	// port on every node, so the nodes share the segment through the switch
	// (which must carry the VLAN).
	ModeVLAN = "vlan"
	// ModeVXLAN is a Proxmox SDN VXLAN zone and VNet spanning the nodes: a
	// bridge named after the VNet on every node, tunnelled over the Proxmox
	// cluster network (UDP 4789). It costs 50 bytes of MTU.
	ModeVXLAN = "vxlan"
	// ModeExisting takes a bridge the user already connected on every node.
	ModeExisting = "existing"
)

// Modes lists the internal network modes.
var Modes = []string{ModeBridge, ModeVLAN, ModeVXLAN, ModeExisting}

// VXLANOverhead is what VXLAN over IPv4 adds to every frame: outer IPv4
// (20), UDP (8), VXLAN (8) and inner Ethernet (14) headers.
const VXLANOverhead = 50

// InternalVLAN configures ModeVLAN.
type InternalVLAN struct {
	// Uplink is the interface on every Proxmox node that carries the VLAN
	// to the switch: a NIC (eno1) or a bond (bond0).
	Uplink string `json:"uplink"`
	// ID is the VLAN tag, 1-4094.
	ID int `json:"id"`
}

// InternalVXLAN configures ModeVXLAN.
type InternalVXLAN struct {
	// Zone and VNet are the Proxmox SDN IDs (letters and digits, at most 8,
	// starting with a letter). The VNet's bridge on every node is named VNet.
	Zone string `json:"zone"`
	VNet string `json:"vnet"`
	// VNI is the VXLAN network identifier (the VNet's tag), 1-16777215.
	VNI int `json:"vni"`
	// UnderlayMTU is the MTU of the Proxmox nodes' cluster network the
	// tunnel runs over (default 1500); guests get UnderlayMTU-50.
	UnderlayMTU int `json:"underlayMtu,omitempty"`
}

// NetworkPlan is the internal network as deployed: the mode and every value
// the components, the renderer and the lab need.
type NetworkPlan struct {
	Mode string
	// Bridge is what guests attach to on every node: the configured bridge,
	// or the VNet's bridge in ModeVXLAN.
	Bridge string
	// MTU of every guest NIC on the internal network, the router's internal
	// NIC, the Talos link and the CNI.
	MTU int
	// Nodes are the Proxmox nodes the network spans (the nodes in use).
	Nodes []string
	VLAN  *VLANPlan
	VXLAN *VXLANPlan
}

// VLANPlan is ModeVLAN's part of the plan.
type VLANPlan struct {
	Uplink string
	ID     int
	// Interface is the VLAN interface on every node, the bridge's only port:
	// "<uplink>.<id>".
	Interface string
}

// VXLANPlan is ModeVXLAN's part of the plan.
type VXLANPlan struct {
	Zone        string
	VNet        string
	VNI         int
	UnderlayMTU int
	// Peers are the nodes' addresses on the Proxmox cluster network, one per
	// node in use, in Nodes' order: every node must be a peer.
	Peers []VXLANPeer
}

// VXLANPeer is one node of a VXLAN zone.
type VXLANPeer struct {
	Node    string
	Address netip.Addr
}

// Spread reports whether the network spans more than one Proxmox node.
func (n NetworkPlan) Spread() bool { return len(n.Nodes) > 1 }

// Describe is the mode in one line for plan, render and diagram output.
func (n NetworkPlan) Describe() string {
	switch n.Mode {
	case ModeVLAN:
		return fmt.Sprintf("VLAN %d on %s (port %s of bridge %s on %s), MTU %d", n.VLAN.ID, n.VLAN.Uplink, n.VLAN.Interface, n.Bridge, strings.Join(n.Nodes, ", "), n.MTU)
	case ModeVXLAN:
		var peers []string
		for _, p := range n.VXLAN.Peers {
			peers = append(peers, fmt.Sprintf("%s=%s", p.Node, p.Address))
		}
		return fmt.Sprintf("VXLAN zone %s, VNet %s (VNI %d, bridge %s), peers %s, MTU %d (underlay %d)", n.VXLAN.Zone, n.VXLAN.VNet, n.VXLAN.VNI, n.Bridge, strings.Join(peers, " "), n.MTU, n.VXLAN.UnderlayMTU)
	case ModeExisting:
		return fmt.Sprintf("existing bridge %s on %s, MTU %d", n.Bridge, strings.Join(n.Nodes, ", "), n.MTU)
	}
	return fmt.Sprintf("bridge %s on %s (no ports: local to the node), MTU %d", n.Bridge, strings.Join(n.Nodes, ", "), n.MTU)
}

// ModeOf is the effective mode: Mode when set, else what CreateBridge said
// before modes existed (false: existing; unset or true: bridge).
func (i Internal) ModeOf() string {
	if i.Mode != "" {
		return i.Mode
	}
	if !i.CreateBridgeEnabled() {
		return ModeExisting
	}
	return ModeBridge
}

var sdnIDRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// withNetworkDefaults fills the mode's defaults.
func withNetworkDefaults(c *Config) {
	in := &c.Network.Internal
	if in.ModeOf() == ModeVXLAN {
		if in.VXLAN == nil {
			in.VXLAN = &InternalVXLAN{}
		}
		x := in.VXLAN
		id := strings.ReplaceAll(strings.ToLower(c.Cluster.Name), "-", "")
		if x.Zone == "" {
			x.Zone = truncate("z"+id, 8)
		}
		if x.VNet == "" {
			x.VNet = truncate("v"+id, 8)
		}
		if x.UnderlayMTU == 0 {
			x.UnderlayMTU = 1500
		}
		if in.MTU == 0 {
			in.MTU = x.UnderlayMTU - VXLANOverhead
		}
	}
	if in.MTU == 0 {
		in.MTU = 1500
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestOnlyAllowPortlessBridgeAcrossNodes is for tests only: when true,
// validation accepts mode "bridge" (portless bridges) across several
// Proxmox nodes, which can never work, so that a test can show what happens
// to such a deployment (the engine tests run the program in their own
// process and set it there). Nothing in the product sets it.
var TestOnlyAllowPortlessBridgeAcrossNodes bool

// networkMode checks the mode against the nodes the plan uses.
func (v *validator) networkMode(c Config, p Plan) {
	in := c.Network.Internal
	mode := in.ModeOf()
	n := p.Network
	if in.Mode != "" && in.CreateBridge != nil {
		v.add("sda:network.internal.createBridge", *in.CreateBridge, "remove it: sda:network.internal.mode (%q) replaces it", in.Mode)
	}
	switch mode {
	case ModeBridge:
		if n.Spread() && !TestOnlyAllowPortlessBridgeAcrossNodes {
			v.add("sda:network.internal.mode", mode,
				"a bridge without ports is local to its Proxmox node, and this stack puts guests on %s: they would be separate segments (no gateway, no etcd, no VIP between them). Use mode %q (a VLAN of an uplink your switch carries: set vlan.uplink and vlan.id), %q (Proxmox SDN over the cluster network, no switch changes), or %q (a bridge you connected on every node yourself)",
				strings.Join(n.Nodes, ", "), ModeVLAN, ModeVXLAN, ModeExisting)
		}
	case ModeVLAN:
		if in.VLAN == nil || in.VLAN.Uplink == "" {
			v.add("sda:network.internal.vlan.uplink", "", "name the interface that carries the VLAN on every node, e.g. eno1 or bond0")
		} else if !ifaceRE.MatchString(in.VLAN.Uplink) {
			v.add("sda:network.internal.vlan.uplink", in.VLAN.Uplink, "use an interface name such as eno1 or bond0")
		} else if name := fmt.Sprintf("%s.%d", in.VLAN.Uplink, in.VLAN.ID); len(name) > 15 {
			// Linux interface names are at most 15 bytes (IFNAMSIZ-1).
			v.add("sda:network.internal.vlan.uplink", in.VLAN.Uplink, "the VLAN interface %s would be %d characters and Linux allows 15: use a shorter uplink name (an altname or a bond) or a shorter VLAN ID", name, len(name))
		}
		if in.VLAN == nil || in.VLAN.ID < 1 || in.VLAN.ID > 4094 {
			id := 0
			if in.VLAN != nil {
				id = in.VLAN.ID
			}
			v.add("sda:network.internal.vlan.id", id, "use a VLAN tag from 1 to 4094 that your switch carries to every Proxmox node")
		}
		if in.MTU > 1500 {
			v.add("sda:network.internal.mtu", in.MTU, "a VLAN keeps the uplink's MTU; above 1500 only if the uplink and the switch have jumbo frames, then set it on the uplink first")
		}
	case ModeVXLAN:
		x := in.VXLAN
		if !sdnIDRE.MatchString(x.Zone) {
			v.add("sda:network.internal.vxlan.zone", x.Zone, "use a Proxmox SDN ID: a lowercase letter, then letters and digits, 8 at most")
		}
		if !sdnIDRE.MatchString(x.VNet) {
			v.add("sda:network.internal.vxlan.vnet", x.VNet, "use a Proxmox SDN ID: a lowercase letter, then letters and digits, 8 at most")
		} else if x.VNet == in.Bridge {
			v.add("sda:network.internal.vxlan.vnet", x.VNet, "must differ from sda:network.internal.bridge: the VNet is a bridge of its own")
		}
		if x.VNI < 1 || x.VNI > 1<<24-1 {
			v.add("sda:network.internal.vxlan.vni", x.VNI, "use a VXLAN network identifier from 1 to 16777215, unique among your SDN VNets")
		}
		if x.UnderlayMTU < 1280 || x.UnderlayMTU > 9216 {
			v.add("sda:network.internal.vxlan.underlayMtu", x.UnderlayMTU, "use the MTU of the Proxmox cluster network, 1500 unless it has jumbo frames")
		} else if in.MTU > x.UnderlayMTU-VXLANOverhead {
			v.add("sda:network.internal.mtu", in.MTU, "VXLAN needs %d bytes: at most %d on a %d-byte underlay", VXLANOverhead, x.UnderlayMTU-VXLANOverhead, x.UnderlayMTU)
		}
		for i, node := range c.Proxmox.Nodes {
			if !contains(n.Nodes, node.Name) {
				continue
			}
			addr := node.ClusterAddress
			key := fmt.Sprintf("sda:proxmox.nodes[%d].clusterAddress", i)
			if addr == "" {
				addr, key = node.SSHHost, fmt.Sprintf("sda:proxmox.nodes[%d].sshHost", i)
			}
			if a, err := netip.ParseAddr(addr); err != nil || !a.Is4() {
				v.add(key, addr, "a VXLAN peer must be the node's IPv4 address on the Proxmox cluster network: set sda:proxmox.nodes[%d].clusterAddress", i)
			}
		}
	case ModeExisting:
	default:
		v.add("sda:network.internal.mode", in.Mode, "use one of %s", strings.Join(Modes, ", "))
	}
	if in.MTU < 1280 || in.MTU > 9000 {
		v.add("sda:network.internal.mtu", in.MTU, "use an MTU from 1280 to 9000")
	}
}

var ifaceRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`)

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// networkPlan derives the NetworkPlan; nodes are the Proxmox nodes in use.
func networkPlan(c Config, nodes []string) NetworkPlan {
	in := c.Network.Internal
	n := NetworkPlan{Mode: in.ModeOf(), Bridge: in.Bridge, MTU: in.MTU, Nodes: nodes}
	switch n.Mode {
	case ModeVLAN:
		if in.VLAN != nil {
			n.VLAN = &VLANPlan{Uplink: in.VLAN.Uplink, ID: in.VLAN.ID, Interface: fmt.Sprintf("%s.%d", in.VLAN.Uplink, in.VLAN.ID)}
		}
	case ModeVXLAN:
		x := in.VXLAN
		n.Bridge = x.VNet
		n.VXLAN = &VXLANPlan{Zone: x.Zone, VNet: x.VNet, VNI: x.VNI, UnderlayMTU: x.UnderlayMTU}
		for _, node := range c.Proxmox.Nodes {
			if !contains(nodes, node.Name) {
				continue
			}
			addr := node.ClusterAddress
			if addr == "" {
				addr = node.SSHHost
			}
			a, _ := netip.ParseAddr(addr)
			n.VXLAN.Peers = append(n.VXLAN.Peers, VXLANPeer{Node: node.Name, Address: a})
		}
	}
	return n
}
