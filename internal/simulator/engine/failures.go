package engine

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// NodeFailure is a Proxmox node that lost power at Since (State.FailedNodes):
// every guest on it stopped at once (Stopped lists those that were
// running), its API answers no proxied request, its SSH no dial, and it is
// no VXLAN peer. RestoreNode ends it.
type NodeFailure struct {
	Since   time.Time `json:"since"`
	Stopped []int     `json:"stopped,omitempty"`
}

// RouterEvent is a change in whether a router container's keepalived runs
// (State.RouterEvents), what the router pair's virtual addresses follow
// (network.VRRPHolder). Kinds:
//   - "apply": the pair's apply script ran in it (keepalived installed,
//     enabled and started); Priority, AdvertInt and Segments (the keys of
//     the segments of its NICs, read when it ran) say how and where it
//     takes part in VRRP;
//   - "stop": keepalived was stopped in it (the handover script), which
//     sends a priority-0 advertisement when it was master;
//   - "down": the container stopped running (a Proxmox stop, its node's
//     power loss);
//   - "gone": the container was deleted: a new one with its VM ID starts
//     without keepalived until the pair's apply runs in it;
//   - "up": the container started again (keepalived is enabled: it starts
//     with it).
//
// Reboots (State.Reboots) count as "down" at their start and "up" at their end.
type RouterEvent struct {
	VMID     int       `json:"vmid"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Priority int       `json:"priority,omitempty"`
	// AdvertInt is keepalived's advert_int (default 1s).
	AdvertInt time.Duration `json:"advertInt,omitempty"`
	Segments  []string      `json:"segments,omitempty"`
}

// Router event kinds.
const (
	RouterApply = "apply"
	RouterStop  = "stop"
	RouterDown  = "down"
	RouterGone  = "gone"
	RouterUp    = "up"
)

// NodeDown reports whether Proxmox node name has failed (and since when).
func (tx *Tx) NodeDown(name string) (time.Time, bool) {
	f := tx.State.FailedNodes[name]
	if f == nil {
		return time.Time{}, false
	}
	return f.Since, true
}

// RecordRouter appends a router event (only for containers: a VM runs no
// keepalived).
func (tx *Tx) RecordRouter(ev RouterEvent) {
	if g := tx.State.Guests[ev.VMID]; g != nil && g.Kind != "lxc" {
		return
	}
	tx.State.RouterEvents = append(tx.State.RouterEvents, ev)
}

// FailNode cuts the power of Proxmox node name at now: its running guests
// stop at once (containers record a "down" router event), and the node
// stays failed until RestoreNode.
func (tx *Tx) FailNode(name string, now time.Time) error {
	if !slices.ContainsFunc(tx.World.Nodes, func(n WorldNode) bool { return n.Name == name }) {
		return fmt.Errorf("no Proxmox node %q in the simulated cluster", name)
	}
	if _, down := tx.NodeDown(name); down {
		return fmt.Errorf("Proxmox node %q has already failed", name)
	}
	f := &NodeFailure{Since: now}
	for _, id := range slices.Sorted(maps.Keys(tx.State.Guests)) {
		g := tx.State.Guests[id]
		if g.Node != name || !g.Started {
			continue
		}
		g.Started = false
		f.Stopped = append(f.Stopped, id)
		if g.Kind == "lxc" {
			tx.RecordRouter(RouterEvent{VMID: id, Time: now, Kind: RouterDown})
		}
	}
	tx.State.FailedNodes[name] = f
	return nil
}

// RestoreNode powers node name on again at now: the guests its failure
// stopped start again (SDA sets onboot on its VMs and containers, and
// Proxmox starts those at boot), the routers among them as backups.
func (tx *Tx) RestoreNode(name string, now time.Time) error {
	f := tx.State.FailedNodes[name]
	if f == nil {
		return fmt.Errorf("Proxmox node %q has not failed", name)
	}
	delete(tx.State.FailedNodes, name)
	for _, id := range f.Stopped {
		if g := tx.State.Guests[id]; g != nil && g.Node == name {
			g.Started = true
			if g.Kind == "lxc" {
				tx.RecordRouter(RouterEvent{VMID: id, Time: now, Kind: RouterUp})
			}
		}
	}
	return nil
}

// FailNode and RestoreNode on a simulation directory: what a test calls
// between two engine runs, or during one.
func (s *Store) FailNode(name string) error {
	return s.Update(func(tx *Tx) error { return tx.FailNode(name, time.Now()) })
}

func (s *Store) RestoreNode(name string) error {
	return s.Update(func(tx *Tx) error { return tx.RestoreNode(name, time.Now()) })
}

// OfflineError is what a call aimed at a failed Proxmox node gets. The node
// the client talks to (proxmoxve:endpoint, assumed alive) proxies
// /nodes/<node>/… requests to the node's pveproxy (pve-http-server
// src/PVE/APIServer/AnyEvent.pm:734-880, proxy_request, AnyEvent::HTTP with
// a 30 s timeout); a connection that cannot be made comes back as AnyEvent
// HTTP's status 595 with the socket error as its reason, which clients
// report as "595 No route to host" for a powered-off node
// (canvrno/ProxmoxMCP#15, ansible-collections/community.proxmox#453). bpg
// turns a non-2xx status into "received an HTTP 595 response - Reason: …"
// (proxmox/api/client.go validateResponseCode, v0.69.1).
func OfflineError(node string) string {
	return fmt.Sprintf("received an HTTP 595 response - Reason: No route to host (simulated: Proxmox node %q is offline, failed by the test)", node)
}

// SSHDialError is what an SSH client gets from a powered-off host on its
// LAN: no ARP answer, EHOSTUNREACH.
func SSHDialError(host string) error {
	return fmt.Errorf("ssh: dial tcp %s:22: connect: no route to host (simulated: its Proxmox node is offline)", host)
}
