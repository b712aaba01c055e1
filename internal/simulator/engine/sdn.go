package engine

import (
	"slices"
)

// The data plane, as far as SDA's deployments depend on it: which Ethernet
// segment every guest NIC is on, and what reaches what. No packet is
// simulated (the network-namespace lab in tests/routerns moves real ones);
// the model only decides, from what exists on the simulated Proxmox
// cluster, whether a connection can be made, and says why not.
//
// A guest NIC sits on the segment of its bridge on its node:
//   - a bridge the stack created with no ports: that bridge on that node
//     only ("pve2/vmbr2");
//   - a bridge whose port is a VLAN interface (NetworkVlan) of a physical
//     uplink: the VLAN's segment, one across every node whose uplink the
//     switch carries that VLAN to (World.SwitchVLANs, default all);
//   - the bridge of a Proxmox SDN VNet (a bridge named after the VNet on
//     every node whose cluster address is a peer of its VXLAN zone, after
//     `pvesh set /cluster/sdn`): the VNet's segment, MTU the zone's;
//   - a bridge the World has (Bridges): one segment across nodes when
//     World.SharedBridges lists it (the first of Bridges by default: vmbr0,
//     the uplink's bridge, is the physical LAN), else local to the node.
//
// Pulumi (and the talosctl/kubectl its local commands run) sits on the
// segment of World.CallerBridge (default: the first shared bridge). It
// reaches a guest directly when the guest is on that segment, else only
// through a running container (the router) with one NIC on the caller's
// segment and one on the guest's.

// defaultVXLANMTU is the MTU of a Proxmox VXLAN zone without `mtu`
// (pve-network: the VNet bridge is 1450, 50 bytes below a 1500 underlay).
const DefaultVXLANMTU = 1450

// VLANIface is a Linux VLAN interface on a Proxmox node (NetworkVlan).
type VLANIface struct {
	Node      string `json:"node"`
	Name      string `json:"name"`
	Interface string `json:"interface"` // the raw device (uplink)
	VLAN      int    `json:"vlan"`
	MTU       int    `json:"mtu,omitempty"`
}

// SDNConfig is Proxmox SDN configuration: the edited one (what `pvesh
// get|create|set|delete` work on) or the running one (`pvesh set
// /cluster/sdn` copies the edited configuration there and every node
// reloads its network).
type SDNConfig struct {
	Zones map[string]*SDNZone `json:"zones,omitempty"`
	VNets map[string]*SDNVNet `json:"vnets,omitempty"`
}

// SDNZone is a VXLAN zone.
type SDNZone struct {
	Type  string   `json:"type"`
	Peers []string `json:"peers"`
	MTU   int      `json:"mtu,omitempty"`
}

// SDNVNet is a VNet of a zone; Tag is the VXLAN network identifier.
type SDNVNet struct {
	Zone string `json:"zone"`
	Tag  int    `json:"tag"`
}

func (c *SDNConfig) init() {
	if c.Zones == nil {
		c.Zones = map[string]*SDNZone{}
	}
	if c.VNets == nil {
		c.VNets = map[string]*SDNVNet{}
	}
}

func (c SDNConfig) Clone() SDNConfig {
	out := SDNConfig{Zones: map[string]*SDNZone{}, VNets: map[string]*SDNVNet{}}
	for k, z := range c.Zones {
		zz := *z
		zz.Peers = slices.Clone(z.Peers)
		out.Zones[k] = &zz
	}
	for k, v := range c.VNets {
		vv := *v
		out.VNets[k] = &vv
	}
	return out
}
