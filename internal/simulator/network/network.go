package network

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// segment is one Ethernet segment.
type segment struct {
	Key  string // identity: equal keys are one segment
	Name string // for people: "pve2/vmbr2", "VLAN 42", "SDN VNet vprod"
	MTU  int
}

// VNetOn returns the running VNet whose bridge name is bridge on node, and
// its zone, when node is a peer of the zone, is not failed (a node without
// power is no VXLAN peer) and has reloaded its network
// since SDN was first applied: a node whose every reload failed (pvesh
// only warns, SDN.pm) never made the bridge. (A node that reloaded once and
// then failed keeps its older bridges, as ifreload's last good run left
// them; the simulation does not track which VNets that run had.)
func VNetOn(tx *engine.Tx, node, bridge string) (*engine.SDNZone, bool) {
	v := tx.State.SDNRunning.VNets[bridge]
	if _, failed := tx.NodeDown(node); v == nil || tx.State.SDNNodeVersions[node] == 0 || failed {
		return nil, false
	}
	z := tx.State.SDNRunning.Zones[v.Zone]
	if z == nil {
		return nil, false
	}
	for _, n := range tx.World.Nodes {
		if n.Name == node && slices.Contains(z.Peers, tx.World.ClusterAddress(n)) {
			return z, true
		}
	}
	return nil, false
}

// SegmentOf is the segment of bridge on node.
func SegmentOf(tx *engine.Tx, node, bridge string) segment {
	local := segment{Key: node + "/" + bridge, Name: node + "/" + bridge, MTU: 1500}
	if z, ok := VNetOn(tx, node, bridge); ok {
		mtu := z.MTU
		if mtu == 0 {
			mtu = engine.DefaultVXLANMTU
		}
		return segment{Key: "sdn:" + bridge, Name: fmt.Sprintf("SDN VNet %s (VXLAN zone %s)", bridge, tx.State.SDNRunning.VNets[bridge].Zone), MTU: mtu}
	}
	if tx.State.Bridges[node+"/"+bridge] {
		for _, p := range tx.State.BridgePorts[node+"/"+bridge] {
			if v := tx.State.VLANs[node+"/"+p]; v != nil {
				if slices.Contains(tx.World.UplinksOrDefault(), v.Interface) && tx.World.SwitchCarries(v.VLAN) {
					mtu := 1500
					if v.MTU > 0 {
						mtu = v.MTU
					}
					return segment{Key: fmt.Sprintf("vlan:%d", v.VLAN), Name: fmt.Sprintf("VLAN %d", v.VLAN), MTU: mtu}
				}
				local.Name += fmt.Sprintf(" (port %s: the switch does not carry VLAN %d to %s)", p, v.VLAN, v.Interface)
			} else if slices.Contains(tx.World.UplinksOrDefault(), p) {
				return segment{Key: "uplink:" + p, Name: "the untagged network of " + p, MTU: 1500}
			}
		}
		return local
	}
	if slices.Contains(tx.World.Bridges, bridge) && slices.Contains(tx.World.SharedBridgesOrDefault(), bridge) {
		return segment{Key: "shared:" + bridge, Name: bridge + " (shared across nodes)", MTU: 1500}
	}
	return local
}

// CallerSegment is where Pulumi runs.
func CallerSegment(tx *engine.Tx) segment {
	b := tx.World.CallerBridge
	if b == "" {
		b = engine.FirstOr(tx.World.SharedBridgesOrDefault(), "vmbr0")
	}
	node := ""
	if len(tx.World.Nodes) > 0 {
		node = tx.World.Nodes[0].Name
	}
	return SegmentOf(tx, node, b)
}

// GuestSegment is the segment of the guest NIC holding address.
func GuestSegment(tx *engine.Tx, g *engine.Guest, address string) segment {
	if len(g.Bridges) == 0 {
		return segment{Key: "none", Name: "no network device", MTU: 1500}
	}
	return SegmentOf(tx, g.Node, g.Bridges[g.NICOf(address)])
}

// RouteFromCaller checks that Pulumi's machine reaches target (a segment)
// on address:port: directly, through the router of a pair that holds the
// pair's virtual addresses (vrrp.go), or, where no pair serves target,
// through a running container with a NIC on both segments. what names the
// destination for the message.
func RouteFromCaller(tx *engine.Tx, address string, port int, what string, target segment, now time.Time) error {
	caller := CallerSegment(tx)
	if caller.Key == target.Key {
		return nil
	}
	if gw, ok := pairGateway(tx, caller.Key, target.Key, now); ok {
		return routeViaPair(tx, gw, address, port, what, target, now)
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
			s := SegmentOf(tx, r.Node, b)
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
				notes = append(notes, fmt.Sprintf("the router %s has no internal NIC", r.Label()))
			} else {
				notes = append(notes, fmt.Sprintf("the router's internal NIC is on %s", strings.Join(others, ", ")))
			}
			continue
		case !r.Started:
			notes = append(notes, fmt.Sprintf("the router %s is stopped", r.Label()))
			continue
		}
		if end, down := tx.DownUntil(r.VMID, now); down {
			notes = append(notes, fmt.Sprintf("the router %s is rebooting until %s", r.Label(), end.Format(time.RFC3339Nano)))
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

func sortedIDs(m map[int]*engine.Guest) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TalosReachable is TalosUp plus the network: Pulumi's machine must reach
// the node's segment on the Talos API port.
func TalosReachable(tx *engine.Tx, address string, now time.Time) (*engine.Guest, error) {
	g, err := TalosUp(tx, address, now)
	if err != nil {
		return nil, err
	}
	if err := RouteFromCaller(tx, address, 50000, g.Label(), GuestSegment(tx, g, address), now); err != nil {
		return nil, err
	}
	return g, nil
}

// NICMTU is what the guest sends on the NIC holding address: the Talos
// link MTU of the applied configuration when it sets one for that NIC,
// else the Proxmox NIC mtu (virtio passes it to the guest), else 1500.
func NICMTU(g *engine.Guest, address string, talosMTU int) int {
	if talosMTU > 0 {
		return talosMTU
	}
	i := g.NICOf(address)
	if i < len(g.MTUs) && g.MTUs[i] > 0 {
		return g.MTUs[i]
	}
	return 1500
}

// CheckMTU refuses a guest whose NIC sends frames its segment drops.
func CheckMTU(tx *engine.Tx, g *engine.Guest, address string, talosMTU int) error {
	seg := GuestSegment(tx, g, address)
	if mtu := NICMTU(g, address, talosMTU); mtu > seg.MTU {
		return fmt.Errorf("%s (%s) sends frames up to MTU %d on segment %s, whose MTU is %d: larger frames are dropped "+
			"(the TLS handshake of the Talos API stalls); set the Proxmox NIC mtu and the Talos link mtu to %d",
			g.Label(), address, mtu, seg.Name, seg.MTU, seg.MTU)
	}
	return nil
}

// PeerReach checks that guest g (at address) reaches dest (at destAddr)
// on port: both on one segment (the internal network is one subnet; the
// router does not route between its parts).
func PeerReach(tx *engine.Tx, g *engine.Guest, address string, dest *engine.Guest, destAddr, shown string, port int) error {
	a, b := GuestSegment(tx, g, address), GuestSegment(tx, dest, destAddr)
	if a.Key == b.Key {
		return nil
	}
	what := dest.Label()
	if shown != destAddr {
		what = fmt.Sprintf("the VIP %s, held by %s,", shown, dest.Label())
	}
	return fmt.Errorf("dial tcp %s:%d: connect: no route to host (%s is on segment %s; %s is on %s)",
		shown, port, g.Label(), a.Name, what, b.Name)
}

// APIHolder is the guest answering on the cluster's Kubernetes endpoint:
// the node itself when the endpoint is a node address, else (a VIP) the
// first etcd member that is up: Talos announces the VIP from one control
// plane, by gratuitous ARP on that control plane's segment only.
func APIHolder(tx *engine.Tx, c *engine.TalosCluster, now time.Time) (*engine.Guest, string, bool, error) {
	host := EndpointHost(c.Endpoint)
	for _, g := range tx.State.Guests {
		if g.Kind == "qemu" && slices.Contains(g.Addresses, host) {
			if _, err := TalosUp(tx, host, now); err != nil {
				return nil, "", false, err
			}
			return g, host, false, nil
		}
	}
	for _, a := range c.EtcdMembers {
		if g, err := TalosUp(tx, a, now); err == nil {
			return g, a, true, nil
		}
	}
	return nil, "", true, fmt.Errorf("dial tcp %s:6443: connect: no route to host (the VIP %s is held by no control plane: no etcd member is up)", host, host)
}

// EndpointHost is the host of a cluster endpoint URL (the endpoint itself
// when it does not parse as one).
func EndpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return endpoint
	}
	return u.Hostname()
}

// KubeAPIReachable checks that Pulumi's machine reaches the Kubernetes API
// at the cluster's endpoint.
func KubeAPIReachable(tx *engine.Tx, c *engine.TalosCluster, now time.Time) error {
	host := EndpointHost(c.Endpoint)
	g, addr, vip, err := APIHolder(tx, c, now)
	if err != nil {
		return err
	}
	what := g.Label()
	if vip {
		what = fmt.Sprintf("the VIP %s, held by %s,", host, g.Label())
	}
	return RouteFromCaller(tx, host, 6443, what, GuestSegment(tx, g, addr), now)
}

// JoinBlocked says why a configured machine cannot join its cluster: a
// control plane must reach an etcd member on 2380 (peer port; clients use
// 2379), every node's kubelet the Kubernetes endpoint on 6443. Empty when
// nothing blocks it.
func JoinBlocked(tx *engine.Tx, c *engine.TalosCluster, m *engine.TalosMachine, g *engine.Guest, now time.Time) string {
	if m.Type == "controlplane" && !slices.Contains(c.EtcdMembers, m.Address) {
		var errs []string
		ok := false
		for _, a := range c.EtcdMembers {
			dest, err := TalosUp(tx, a, now)
			if err != nil {
				continue
			}
			if err := PeerReach(tx, g, m.Address, dest, a, a, 2380); err != nil {
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
	holder, addr, vip, err := APIHolder(tx, c, now)
	if err != nil {
		return "kubelet: " + err.Error()
	}
	if holder.VMID == g.VMID {
		return ""
	}
	shown := addr
	if vip {
		shown = EndpointHost(c.Endpoint)
	}
	if err := PeerReach(tx, g, m.Address, holder, addr, shown, 6443); err != nil {
		return "kubelet: " + err.Error()
	}
	return ""
}

// RouterBack reports when Pulumi's way to the guest g (at address) comes
// back, when it is blocked only by routers that are rebooting (the end of
// the last such reboot) or by a router pair whose backup is about to take
// the addresses (when it does).
func RouterBack(tx *engine.Tx, g *engine.Guest, address string, now time.Time) (time.Time, bool) {
	target := GuestSegment(tx, g, address)
	caller := CallerSegment(tx)
	if target.Key == caller.Key || RouteFromCaller(tx, address, 50000, g.Label(), target, now) == nil {
		return time.Time{}, false
	}
	if gw, ok := pairGateway(tx, caller.Key, target.Key, now); ok {
		return gw.PendingAt, !gw.PendingAt.IsZero()
	}
	var back time.Time
	found := false
	for _, r := range tx.State.Guests {
		if r.Kind != "lxc" || !r.Started {
			continue
		}
		onCaller, onTarget := false, false
		for _, b := range r.Bridges {
			switch SegmentOf(tx, r.Node, b).Key {
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

// VMAt is the VM that has address, if it can answer at all: started and
// with a system disk to boot (else the dial error Pulumi's machine gets).
func VMAt(tx *engine.Tx, address string) (*engine.Guest, error) {
	for _, g := range tx.State.Guests {
		if g.Kind == "qemu" && slices.Contains(g.Addresses, address) {
			if !g.Started {
				return nil, fmt.Errorf("dial tcp %s:50000: connect: no route to host (VM %d is stopped)", address, g.VMID)
			}
			if g.DiskWiped {
				return nil, fmt.Errorf("dial tcp %s:50000: connect: no route to host (VM %d has nothing to boot: a Talos reset wiped its whole system disk)", address, g.VMID)
			}
			return g, nil
		}
	}
	return nil, fmt.Errorf("dial tcp %s:50000: connect: no route to host (no VM of the simulated Proxmox has address %s)", address, address)
}

// TalosUp is vmAt plus reboots: a node inside a reboot interval does not
// answer on the Talos API. Whether Pulumi reaches it is TalosReachable.
func TalosUp(tx *engine.Tx, address string, now time.Time) (*engine.Guest, error) {
	g, err := VMAt(tx, address)
	if err != nil {
		return nil, err
	}
	if end, down := tx.DownUntil(g.VMID, now); down {
		return nil, fmt.Errorf("dial tcp %s:50000: connect: connection refused (VM %d is rebooting until %s)", address, g.VMID, end.Format(time.RFC3339Nano))
	}
	return g, nil
}
