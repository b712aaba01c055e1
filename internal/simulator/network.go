package simulator

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
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
const defaultVXLANMTU = 1450

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

func (c SDNConfig) clone() SDNConfig {
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

// segment is one Ethernet segment.
type segment struct {
	Key  string // identity: equal keys are one segment
	Name string // for people: "pve2/vmbr2", "VLAN 42", "SDN VNet vprod"
	MTU  int
}

func (w World) clusterAddress(n WorldNode) string {
	if n.ClusterAddress != "" {
		return n.ClusterAddress
	}
	return n.SSHHost
}

func (w World) sharedBridges() []string {
	if w.SharedBridges != nil {
		return w.SharedBridges
	}
	if len(w.Bridges) > 0 {
		return w.Bridges[:1]
	}
	return nil
}

func (w World) uplinks() []string {
	if len(w.Uplinks) > 0 {
		return w.Uplinks
	}
	return []string{"eno1"}
}

func (w World) switchCarries(vlan int) bool {
	return w.SwitchVLANs == nil || slices.Contains(w.SwitchVLANs, vlan)
}

// vnetOn returns the running VNet whose bridge name is bridge on node, and
// its zone, when node is a peer of the zone and has reloaded its network
// since SDN was first applied: a node whose every reload failed (pvesh
// only warns, SDN.pm) never made the bridge. (A node that reloaded once and
// then failed keeps its older bridges, as ifreload's last good run left
// them; the simulation does not track which VNets that run had.)
func (tx *Tx) vnetOn(node, bridge string) (*SDNZone, bool) {
	v := tx.State.SDNRunning.VNets[bridge]
	if v == nil || tx.State.SDNNodeVersions[node] == 0 {
		return nil, false
	}
	z := tx.State.SDNRunning.Zones[v.Zone]
	if z == nil {
		return nil, false
	}
	for _, n := range tx.World.Nodes {
		if n.Name == node && slices.Contains(z.Peers, tx.World.clusterAddress(n)) {
			return z, true
		}
	}
	return nil, false
}

// segmentOf is the segment of bridge on node.
func (tx *Tx) segmentOf(node, bridge string) segment {
	local := segment{Key: node + "/" + bridge, Name: node + "/" + bridge, MTU: 1500}
	if z, ok := tx.vnetOn(node, bridge); ok {
		mtu := z.MTU
		if mtu == 0 {
			mtu = defaultVXLANMTU
		}
		return segment{Key: "sdn:" + bridge, Name: fmt.Sprintf("SDN VNet %s (VXLAN zone %s)", bridge, tx.State.SDNRunning.VNets[bridge].Zone), MTU: mtu}
	}
	if tx.State.Bridges[node+"/"+bridge] {
		for _, p := range tx.State.BridgePorts[node+"/"+bridge] {
			if v := tx.State.VLANs[node+"/"+p]; v != nil {
				if slices.Contains(tx.World.uplinks(), v.Interface) && tx.World.switchCarries(v.VLAN) {
					mtu := 1500
					if v.MTU > 0 {
						mtu = v.MTU
					}
					return segment{Key: fmt.Sprintf("vlan:%d", v.VLAN), Name: fmt.Sprintf("VLAN %d", v.VLAN), MTU: mtu}
				}
				local.Name += fmt.Sprintf(" (port %s: the switch does not carry VLAN %d to %s)", p, v.VLAN, v.Interface)
			} else if slices.Contains(tx.World.uplinks(), p) {
				return segment{Key: "uplink:" + p, Name: "the untagged network of " + p, MTU: 1500}
			}
		}
		return local
	}
	if slices.Contains(tx.World.Bridges, bridge) && slices.Contains(tx.World.sharedBridges(), bridge) {
		return segment{Key: "shared:" + bridge, Name: bridge + " (shared across nodes)", MTU: 1500}
	}
	return local
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// callerSegment is where Pulumi runs.
func (tx *Tx) callerSegment() segment {
	b := tx.World.CallerBridge
	if b == "" {
		b = firstOr(tx.World.sharedBridges(), "vmbr0")
	}
	node := ""
	if len(tx.World.Nodes) > 0 {
		node = tx.World.Nodes[0].Name
	}
	return tx.segmentOf(node, b)
}

// nicOf returns the index of the guest NIC that holds address.
func (g *Guest) nicOf(address string) int {
	if i := slices.Index(g.NICAddresses, address); i >= 0 && i < len(g.Bridges) {
		return i
	}
	return 0
}

// guestSegment is the segment of the guest NIC holding address.
func (tx *Tx) guestSegment(g *Guest, address string) segment {
	if len(g.Bridges) == 0 {
		return segment{Key: "none", Name: "no network device", MTU: 1500}
	}
	return tx.segmentOf(g.Node, g.Bridges[g.nicOf(address)])
}

// label names a guest for messages: its name, else its kind and ID.
func (g *Guest) label() string {
	if g.Name != "" {
		return g.Name
	}
	if g.Kind == "lxc" {
		return fmt.Sprintf("CT %d", g.VMID)
	}
	return fmt.Sprintf("VM %d", g.VMID)
}

// routeFromCaller checks that Pulumi's machine reaches target (a segment)
// on address:port: directly, or through a running container with a NIC on
// both segments. what names the destination for the message.
func (tx *Tx) routeFromCaller(address string, port int, what string, target segment, now time.Time) error {
	caller := tx.callerSegment()
	if caller.Key == target.Key {
		return nil
	}
	var notes []string
	for _, id := range sortedIDs(tx.State.Guests) {
		r := tx.State.Guests[id]
		if r.Kind != "lxc" {
			continue
		}
		onCaller := false
		var others []string
		hasTarget := -1
		for i, b := range r.Bridges {
			s := tx.segmentOf(r.Node, b)
			switch {
			case s.Key == caller.Key:
				onCaller = true
			case s.Key == target.Key:
				hasTarget = i
				others = append(others, s.Name)
			default:
				others = append(others, s.Name)
			}
		}
		if !onCaller {
			continue
		}
		switch {
		case hasTarget < 0:
			if len(others) == 0 {
				notes = append(notes, fmt.Sprintf("the router %s has no internal NIC", r.label()))
			} else {
				notes = append(notes, fmt.Sprintf("the router's internal NIC is on %s", strings.Join(others, ", ")))
			}
			continue
		case !r.Started:
			notes = append(notes, fmt.Sprintf("the router %s is stopped", r.label()))
			continue
		}
		if end, down := tx.DownUntil(r.VMID, now); down {
			notes = append(notes, fmt.Sprintf("the router %s is rebooting until %s", r.label(), end.Format(time.RFC3339Nano)))
			continue
		}
		if hasTarget < len(r.MTUs) && r.MTUs[hasTarget] > target.MTU {
			return fmt.Errorf("dial tcp %s:%d: i/o timeout (%s is on segment %s, MTU %d; the router's NIC there has MTU %d: larger frames are dropped)",
				address, port, what, target.Name, target.MTU, r.MTUs[hasTarget])
		}
		return nil
	}
	if len(notes) == 0 {
		notes = append(notes, fmt.Sprintf("no router joins it to %s, where Pulumi runs", caller.Name))
	}
	return fmt.Errorf("dial tcp %s:%d: connect: no route to host (%s is on segment %s; %s)", address, port, what, target.Name, strings.Join(notes, "; "))
}

func sortedIDs(m map[int]*Guest) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// talosReachable is talosUp plus the network: Pulumi's machine must reach
// the node's segment on the Talos API port.
func (tx *Tx) talosReachable(address string, now time.Time) (*Guest, error) {
	g, err := tx.talosUp(address, now)
	if err != nil {
		return nil, err
	}
	if err := tx.routeFromCaller(address, 50000, g.label(), tx.guestSegment(g, address), now); err != nil {
		return nil, err
	}
	return g, nil
}

// nicMTU is what the guest sends on the NIC holding address: the Talos
// link MTU of the applied configuration when it sets one for that NIC,
// else the Proxmox NIC mtu (virtio passes it to the guest), else 1500.
func (g *Guest) nicMTU(address string, talosMTU int) int {
	if talosMTU > 0 {
		return talosMTU
	}
	i := g.nicOf(address)
	if i < len(g.MTUs) && g.MTUs[i] > 0 {
		return g.MTUs[i]
	}
	return 1500
}

// checkMTU refuses a guest whose NIC sends frames its segment drops.
func (tx *Tx) checkMTU(g *Guest, address string, talosMTU int) error {
	seg := tx.guestSegment(g, address)
	if mtu := g.nicMTU(address, talosMTU); mtu > seg.MTU {
		return fmt.Errorf("%s (%s) sends frames up to MTU %d on segment %s, whose MTU is %d: larger frames are dropped "+
			"(the TLS handshake of the Talos API stalls); set the Proxmox NIC mtu and the Talos link mtu to %d",
			g.label(), address, mtu, seg.Name, seg.MTU, seg.MTU)
	}
	return nil
}

// peerReach checks that guest g (at address) reaches dest (at destAddr)
// on port: both on one segment (the internal network is one subnet; the
// router does not route between its parts).
func (tx *Tx) peerReach(g *Guest, address string, dest *Guest, destAddr, shown string, port int) error {
	a, b := tx.guestSegment(g, address), tx.guestSegment(dest, destAddr)
	if a.Key == b.Key {
		return nil
	}
	what := dest.label()
	if shown != destAddr {
		what = fmt.Sprintf("the VIP %s, held by %s,", shown, dest.label())
	}
	return fmt.Errorf("dial tcp %s:%d: connect: no route to host (%s is on segment %s; %s is on %s)",
		shown, port, g.label(), a.Name, what, b.Name)
}

// apiHolder is the guest answering on the cluster's Kubernetes endpoint:
// the node itself when the endpoint is a node address, else (a VIP) the
// first etcd member that is up: Talos announces the VIP from one control
// plane, by gratuitous ARP on that control plane's segment only.
func (tx *Tx) apiHolder(c *TalosCluster, now time.Time) (*Guest, string, bool, error) {
	host := endpointHost(c.Endpoint)
	for _, g := range tx.State.Guests {
		if g.Kind == "qemu" && slices.Contains(g.Addresses, host) {
			if _, err := tx.talosUp(host, now); err != nil {
				return nil, "", false, err
			}
			return g, host, false, nil
		}
	}
	for _, a := range c.EtcdMembers {
		if g, err := tx.talosUp(a, now); err == nil {
			return g, a, true, nil
		}
	}
	return nil, "", true, fmt.Errorf("dial tcp %s:6443: connect: no route to host (the VIP %s is held by no control plane: no etcd member is up)", host, host)
}

func endpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return endpoint
	}
	return u.Hostname()
}

// kubeAPIReachable checks that Pulumi's machine reaches the Kubernetes API
// at the cluster's endpoint.
func (tx *Tx) kubeAPIReachable(c *TalosCluster, now time.Time) error {
	host := endpointHost(c.Endpoint)
	g, addr, vip, err := tx.apiHolder(c, now)
	if err != nil {
		return err
	}
	what := g.label()
	if vip {
		what = fmt.Sprintf("the VIP %s, held by %s,", host, g.label())
	}
	return tx.routeFromCaller(host, 6443, what, tx.guestSegment(g, addr), now)
}

// joinBlocked says why a configured machine cannot join its cluster: a
// control plane must reach an etcd member on 2380 (peer port; clients use
// 2379), every node's kubelet the Kubernetes endpoint on 6443. Empty when
// nothing blocks it.
func (tx *Tx) joinBlocked(c *TalosCluster, m *TalosMachine, g *Guest, now time.Time) string {
	if m.Type == "controlplane" && !slices.Contains(c.EtcdMembers, m.Address) {
		var errs []string
		ok := false
		for _, a := range c.EtcdMembers {
			dest, err := tx.talosUp(a, now)
			if err != nil {
				continue
			}
			if err := tx.peerReach(g, m.Address, dest, a, a, 2380); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			ok = true
			break
		}
		if !ok && len(errs) > 0 {
			return "etcd join: " + errs[0]
		}
	}
	holder, addr, vip, err := tx.apiHolder(c, now)
	if err != nil {
		return "kubelet: " + err.Error()
	}
	if holder.VMID == g.VMID {
		return ""
	}
	shown := addr
	if vip {
		shown = endpointHost(c.Endpoint)
	}
	if err := tx.peerReach(g, m.Address, holder, addr, shown, 6443); err != nil {
		return "kubelet: " + err.Error()
	}
	return ""
}

// routerBack reports when Pulumi's way to the guest g (at address) comes
// back, when it is blocked only by routers that are rebooting: the end of
// the last such reboot.
func (tx *Tx) routerBack(g *Guest, address string, now time.Time) (time.Time, bool) {
	target := tx.guestSegment(g, address)
	caller := tx.callerSegment()
	if target.Key == caller.Key || tx.routeFromCaller(address, 50000, g.label(), target, now) == nil {
		return time.Time{}, false
	}
	var back time.Time
	found := false
	for _, r := range tx.State.Guests {
		if r.Kind != "lxc" || !r.Started {
			continue
		}
		onCaller, onTarget := false, false
		for _, b := range r.Bridges {
			switch tx.segmentOf(r.Node, b).Key {
			case caller.Key:
				onCaller = true
			case target.Key:
				onTarget = true
			}
		}
		if !onCaller || !onTarget {
			continue
		}
		if end, down := tx.DownUntil(r.VMID, now); down && (!found || end.Before(back)) {
			back, found = end, true
		}
	}
	return back, found
}
