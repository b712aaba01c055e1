// Package network is the simulated data plane: it stands in for the
// Ethernet that Proxmox VE's bridges, VLAN interfaces (Linux VLANs on the
// uplink, NetworkVlan of bpg/terraform-provider-proxmox v0.69.1) and SDN
// VXLAN zones (pve-network) make between the guests, and for the routes
// from the machine running Pulumi to the Talos API (port 50000), to etcd
// (2380) and to the Kubernetes API (6443). See docs/simulation.md, "Data
// plane".
//
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
// segment and one on the guest's; on a segment a router pair serves, only
// through the router that holds the pair's virtual addresses, which
// follow keepalived's VRRP timers (vrrp.go; GatewayTimeline records every
// gap).
package network
