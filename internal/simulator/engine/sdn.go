package engine

import (
	"slices"
)

// DefaultVXLANMTU is the MTU of a Proxmox VXLAN zone without `mtu`
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
