package spec

import (
	"fmt"

	"github.com/sda-platform/sda/components/sdn"
)

// Internal network modes (InternalNetwork.Mode).
const (
	// NetworkModeBridge creates a bridge without ports on every node: one
	// segment only when every guest is on one Proxmox node.
	NetworkModeBridge = "bridge"
	// NetworkModeVLAN makes a VLAN interface of an uplink the only port of
	// the bridge on every node; the switch joins the nodes.
	NetworkModeVLAN = "vlan"
	// NetworkModeVXLAN creates a Proxmox SDN VXLAN zone and VNet; guests
	// attach to the VNet's bridge on every node.
	NetworkModeVXLAN = "vxlan"
	// NetworkModeExisting uses a bridge that already exists on every node.
	NetworkModeExisting = "existing"
)

// InternalNetwork is InternalNetwork's input. Field documentation is on
// components.InternalNetworkArgs.
type InternalNetwork struct {
	Bridge       string
	ProxmoxNodes []string
	Mode         string
	Create       bool
	VLAN         *VLAN
	VXLAN        *VXLAN
	SSH          *SSH
}

// VLAN is the VLAN mode's uplink and tag (components.InternalVLANArgs).
type VLAN struct {
	Uplink    string
	ID        int
	Interface string
}

// VXLAN is the VXLAN mode's SDN zone and VNet
// (components.InternalVXLANArgs).
type VXLAN struct {
	Zone  string
	VNet  string
	VNI   int
	Peers []string
	MTU   int
}

// EffectiveMode is Mode, or what Create says when Mode is empty: bridge
// when true, existing when false.
func (n InternalNetwork) EffectiveMode() string {
	switch {
	case n.Mode != "":
		return n.Mode
	case n.Create:
		return NetworkModeBridge
	default:
		return NetworkModeExisting
	}
}

// SDN is the VXLAN zone and VNet of vxlan mode, checked; the zero VXLAN
// in the other modes, whose inputs it checks instead.
func (n InternalNetwork) SDN() (sdn.VXLAN, error) {
	switch n.EffectiveMode() {
	case NetworkModeBridge, NetworkModeExisting:
		if n.Bridge == "" {
			return sdn.VXLAN{}, fmt.Errorf("Bridge is required")
		}
	case NetworkModeVLAN:
		if n.Bridge == "" || n.VLAN == nil || n.VLAN.Uplink == "" || n.VLAN.ID < 1 || n.VLAN.ID > 4094 {
			return sdn.VXLAN{}, fmt.Errorf("vlan mode needs Bridge, VLAN.Uplink and VLAN.ID (1-4094)")
		}
	case NetworkModeVXLAN:
		if n.VXLAN == nil || n.SSH == nil || n.SSH.Host == "" {
			return sdn.VXLAN{}, fmt.Errorf("vxlan mode needs VXLAN and SSH.Host")
		}
		x := n.VXLAN
		vxlan := sdn.VXLAN{Zone: x.Zone, VNet: x.VNet, VNI: x.VNI, Peers: x.Peers, MTU: x.MTU, Nodes: n.ProxmoxNodes}
		return vxlan, vxlan.Validate()
	default:
		return sdn.VXLAN{}, fmt.Errorf("Mode = %q: use %q, %q, %q or %q", n.Mode, NetworkModeBridge, NetworkModeVLAN, NetworkModeVXLAN, NetworkModeExisting)
	}
	return sdn.VXLAN{}, nil
}
