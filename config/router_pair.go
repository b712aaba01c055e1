package config

// The router pair (sda:router.pair): two router containers on two Proxmox
// nodes that share the internal gateway and the external router address
// as VRRP virtual addresses. Its defaults, its plan and its checks.

import (
	"fmt"
	"net/netip"
	"slices"
)

// RouterPair is sda:router.pair.
type RouterPair struct {
	// ProxmoxNodes are the two routers' Proxmox nodes, which must differ:
	// default the first two of sda:proxmox.nodes.
	ProxmoxNodes []string `json:"proxmoxNodes,omitempty"`
	// ExternalAddresses are the two routers' own external addresses, inside
	// sda:network.external.cidr (required): routerAddress moves between them.
	ExternalAddresses []string `json:"externalAddresses"`
	// InternalOffsets are the two routers' own internal host offsets;
	// default routerOffset+1 and routerOffset+2.
	InternalOffsets []int `json:"internalOffsets,omitempty"`
	// VMID is the second router's container ID (default sda:router.vmId + 1).
	VMID int `json:"vmId,omitempty"`
	// VRID is the VRRP virtual router ID, 1 to 255 (default 51): unique
	// among the VRRP routers that see each other's advertisements.
	VRID int `json:"vrid,omitempty"`
}

// DefaultVRID is the pair's VRRP virtual router ID unless set.
const DefaultVRID = 51

// RouterPairPlan is the planned pair: the first router is the stack's
// router of old (its VM ID, hostname and component name), the second is new.
type RouterPairPlan struct {
	Routers [2]PairRouter
	VRID    int
}

// PairRouter is one router of the pair.
type PairRouter struct {
	Hostname    string
	ProxmoxNode string
	VMID        int
	// Internal and External are the router's own addresses; invalid when
	// the configuration does not give a parseable one (Validate says so).
	Internal netip.Addr
	External netip.Addr
}

// PairHostname is the second router's hostname: the first's with a "2".
func PairHostname(first string) string { return first + "2" }

// pairDefaults fills sda:router.pair's defaults when the pair is asked for.
func pairDefaults(c *Config) {
	pr := c.Router.Pair
	if pr == nil {
		return
	}
	if len(pr.ProxmoxNodes) == 0 && len(c.Proxmox.Nodes) >= 2 {
		pr.ProxmoxNodes = []string{c.Proxmox.Nodes[0].Name, c.Proxmox.Nodes[1].Name}
	}
	if len(pr.InternalOffsets) == 0 {
		o := c.Network.Internal.RouterOffset
		pr.InternalOffsets = []int{o + 1, o + 2}
	}
	if pr.VMID == 0 {
		pr.VMID = c.Router.VMID + 1
	}
	if pr.VRID == 0 {
		pr.VRID = DefaultVRID
	}
}

// pairPlan plans the pair from a configuration whose pair keys have the
// right lengths (checkPairShape); it tolerates bad addresses, which
// Validate names.
func pairPlan(c Config, in netip.Prefix) *RouterPairPlan {
	pr := c.Router.Pair
	p := &RouterPairPlan{VRID: pr.VRID}
	for i := range p.Routers {
		r := &p.Routers[i]
		r.Hostname = c.Router.Hostname
		r.VMID = c.Router.VMID
		if i == 1 {
			r.Hostname, r.VMID = PairHostname(c.Router.Hostname), pr.VMID
		}
		if i < len(pr.ProxmoxNodes) {
			r.ProxmoxNode = pr.ProxmoxNodes[i]
		}
		if i < len(pr.InternalOffsets) {
			r.Internal = hostAt(in, pr.InternalOffsets[i])
		}
		if i < len(pr.ExternalAddresses) {
			r.External, _ = netip.ParseAddr(pr.ExternalAddresses[i])
		}
	}
	return p
}

// routerPair checks sda:router.pair before the plan: two different
// Proxmox nodes of the stack, a static router address to share, two own
// external addresses in the external network, and a VRRP ID.
func (v *validator) routerPair(c Config, ext netip.Prefix, extOK bool) {
	// The dynamic range's size is checked with the plan (pairDHCPRange).
	pr := c.Router.Pair
	if pr == nil {
		return
	}
	if len(c.Proxmox.Nodes) < 2 {
		v.add("sda:router.pair", "set", "a router pair needs two Proxmox nodes, so that losing one keeps a router: add a second node to sda:proxmox.nodes, or remove sda:router.pair")
		return
	}
	v.pairNodes(c, pr)
	if c.Network.External.RouterAddress == "dhcp" {
		v.add("sda:network.external.routerAddress", "dhcp", "a router pair shares the router address between its two routers, so it must be static: give an address inside sda:network.external.cidr")
	}
	v.pairExternal(c, pr, ext, extOK)
	if len(pr.InternalOffsets) != 2 {
		v.add("sda:router.pair.internalOffsets", pr.InternalOffsets, "list two host offsets, one per router, such as [2, 3]")
	}
	if pr.VRID < 1 || pr.VRID > 255 {
		v.add("sda:router.pair.vrid", pr.VRID, "use a VRRP virtual router ID from 1 to 255, unique among the VRRP routers on these networks")
	}
}

// pairNodes checks the pair's placement: two different nodes of
// sda:proxmox.nodes.
func (v *validator) pairNodes(c Config, pr *RouterPair) {
	if len(pr.ProxmoxNodes) != 2 {
		v.add("sda:router.pair.proxmoxNodes", pr.ProxmoxNodes, "list two different Proxmox nodes of sda:proxmox.nodes, one per router, such as [pve1, pve2]")
		return
	}
	if pr.ProxmoxNodes[0] == pr.ProxmoxNodes[1] {
		v.add("sda:router.pair.proxmoxNodes", pr.ProxmoxNodes, "both routers are on %s, so losing that node loses both: put the second on another node of sda:proxmox.nodes", pr.ProxmoxNodes[0])
	}
	for i, n := range pr.ProxmoxNodes {
		if !slices.ContainsFunc(c.Proxmox.Nodes, func(p ProxmoxNode) bool { return p.Name == n }) {
			v.add(fmt.Sprintf("sda:router.pair.proxmoxNodes[%d]", i), n, "is not in sda:proxmox.nodes: use one of its names")
		}
	}
}

// pairExternal checks the routers' own external addresses: IPv4 hosts of
// the external network, distinct, and neither the shared router address
// nor the gateway.
func (v *validator) pairExternal(c Config, pr *RouterPair, ext netip.Prefix, extOK bool) {
	if len(pr.ExternalAddresses) != 2 {
		v.add("sda:router.pair.externalAddresses", pr.ExternalAddresses, "list two addresses inside sda:network.external.cidr, one per router, besides sda:network.external.routerAddress (which they share)")
		return
	}
	for i, s := range pr.ExternalAddresses {
		key := fmt.Sprintf("sda:router.pair.externalAddresses[%d]", i)
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || !a.Is4():
			v.add(key, s, "use an IPv4 address inside sda:network.external.cidr")
		case extOK && !ext.Contains(a):
			v.add(key, s, "must be inside sda:network.external.cidr (%s)", ext)
		case extOK && (a == ext.Addr() || a == lastAddr(ext)):
			v.add(key, s, "must not be the network or broadcast address of %s", ext)
		case s == c.Network.External.RouterAddress:
			v.add(key, s, "is sda:network.external.routerAddress, the address the two routers share: give each router an address of its own")
		case s == c.Network.External.Gateway:
			v.add(key, s, "is the external gateway (sda:network.external.gateway): choose a free address")
		case i == 1 && s == pr.ExternalAddresses[0]:
			v.add(key, s, "is the first router's address too: give each router an address of its own")
		}
	}
}

// pairDHCPRange checks that a pair's dynamic range splits in two: each
// router serves one half, so that the two never lease one address twice.
func (v *validator) pairDHCPRange(p Plan) {
	if p.RouterPair != nil && p.DHCPStart.IsValid() && !p.DHCPStart.Less(p.DHCPEnd) {
		v.add("sda:network.internal.dhcpEnd", p.DHCPEnd, "a router pair splits the dynamic range in two, one half per router: make it at least two addresses (dhcpStart %s)", p.DHCPStart)
	}
}
