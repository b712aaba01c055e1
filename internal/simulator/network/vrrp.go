package network

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// The router pair's virtual addresses, as keepalived's VRRP moves them
// (docs/simulation.md, "Router pair"). A router takes part once the pair's
// apply script ran in it (engine.RouterApply) and while its keepalived
// runs: until the handover script stops it, or the container stops,
// reboots, is deleted or loses its node. keepalived (VRRPv2, its default)
// starts every instance in BACKUP (nopreempt needs state BACKUP) and a
// backup becomes master when it has heard no advertisement for the
// master-down interval, 3 × advert_int + skew, skew = (256 − priority)/256
// s (RFC 3768 §6.1, RFC 5798 §6.1; keepalived keepalived/include/vrrp.h:507-510
// VRRP_TIMER_SKEW, VRRP_MS_DOWN_TIMER): 3.609 s for priority 100 and
// advert_int 1. A master that stops sends a priority-0 advertisement
// (keepalived/vrrp/vrrp.c vrrp_restore_interface, sending VRRP_PRIO_STOP),
// on which a backup waits only its skew time (vrrp.c:2221-2224,
// ms_down_timer = VRRP_TIMER_SKEW): 0.609 s for priority 100. nopreempt: a
// router that comes back does not take the addresses from the master.
// (Read at acassen/keepalived 9cbce3e.)

// vrrpRouter is one router of a pair: its keepalived's settings and the
// spans in which its keepalived ran.
type vrrpRouter struct {
	vmid     int
	priority int
	advert   time.Duration
	alive    []span
}

// span is a time keepalived ran; open spans run at now. graceful: it ended
// with keepalived stopped (a priority-0 advertisement), not with the
// container going away.
type span struct {
	start, end time.Time
	open       bool
	graceful   bool
}

func (r *vrrpRouter) skew() time.Duration {
	return time.Duration(256-r.priority) * time.Second / 256
}

func (r *vrrpRouter) masterDown() time.Duration { return 3*r.advert + r.skew() }

// Holding is a time a router held the pair's addresses (Open: it holds them now).
type Holding struct {
	VMID       int
	Start, End time.Time
	Open       bool
}

// Gap is a time, after the pair first held its addresses, in which no
// router held them: the internal network had no gateway. Cause says why it
// lasted as long as it did.
type Gap struct {
	Start, End time.Time
	Open       bool
	Cause      string
}

// Length is how long the gap lasted (up to now for an open one).
func (g Gap) Length(now time.Time) time.Duration {
	if g.Open {
		return now.Sub(g.Start)
	}
	return g.End.Sub(g.Start)
}

// Gateway is one internal network's gateway timeline: the routers of its
// pair, who held the addresses when, and the gaps.
type Gateway struct {
	Segment  string
	Routers  []int
	Holdings []Holding
	Gaps     []Gap
	// PendingVMID takes over at PendingAt (zero: nobody is about to).
	PendingVMID int
	PendingAt   time.Time
}

// Holder is the router that holds the addresses at now (0: none).
func (g Gateway) Holder() int {
	if n := len(g.Holdings); n > 0 && g.Holdings[n-1].Open {
		return g.Holdings[n-1].VMID
	}
	return 0
}

// routerStep is one change of a router's state, from its events and reboots.
type routerStep struct {
	t    time.Time
	kind string
}

// spansOf are the spans in which router vmid's keepalived ran, up to now.
func spansOf(tx *engine.Tx, vmid int, now time.Time) []span {
	var steps []routerStep
	for _, ev := range tx.State.RouterEvents {
		if ev.VMID == vmid {
			steps = append(steps, routerStep{ev.Time, ev.Kind})
		}
	}
	for _, r := range tx.State.Reboots {
		if r.VMID == vmid {
			steps = append(steps, routerStep{r.Start, engine.RouterDown}, routerStep{r.End, engine.RouterUp})
		}
	}
	slices.SortStableFunc(steps, func(a, b routerStep) int { return a.t.Compare(b.t) })
	var out []span
	var cur *span
	applied, power, ka := false, true, false
	for _, s := range steps {
		if s.t.After(now) {
			break
		}
		switch s.kind {
		case engine.RouterApply:
			applied, power, ka = true, true, true
		case engine.RouterStop:
			ka = false
		case engine.RouterDown:
			power, ka = false, false
		case engine.RouterGone:
			applied, power, ka = false, false, false
		case engine.RouterUp:
			power, ka = true, applied
		}
		alive := applied && power && ka
		switch {
		case alive && cur == nil:
			cur = &span{start: s.t, open: true}
		case !alive && cur != nil:
			cur.end, cur.open, cur.graceful = s.t, false, s.kind == engine.RouterStop
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// pairs are the routers of every pair by internal segment key: the
// containers whose last apply event lists that segment and the caller's.
func pairs(tx *engine.Tx, callerKey string, now time.Time) map[string][]*vrrpRouter {
	last := map[int]engine.RouterEvent{}
	var order []int
	for _, ev := range tx.State.RouterEvents {
		if ev.Kind == engine.RouterApply && !ev.Time.After(now) {
			if _, seen := last[ev.VMID]; !seen {
				order = append(order, ev.VMID)
			}
			last[ev.VMID] = ev
		}
	}
	out := map[string][]*vrrpRouter{}
	for _, id := range order {
		ev := last[id]
		if !slices.Contains(ev.Segments, callerKey) {
			continue
		}
		r := &vrrpRouter{vmid: id, priority: ev.Priority, advert: ev.AdvertInt, alive: spansOf(tx, id, now)}
		if r.priority <= 0 || r.priority > 255 {
			r.priority = 100
		}
		if r.advert <= 0 {
			r.advert = time.Second
		}
		for _, seg := range ev.Segments {
			if seg != callerKey {
				out[seg] = append(out[seg], r)
			}
		}
	}
	return out
}

// takeover is the router that takes the addresses next and when.
type takeover struct {
	r     *vrrpRouter
	s     span
	at    time.Time
	cause string
}

// nextTakeover is the first router to become master after the addresses
// were lost at lost (zero: never held yet), gracefully or not.
func nextTakeover(rs []*vrrpRouter, lost time.Time, graceful bool) *takeover {
	var best *takeover
	for _, r := range rs {
		for _, s := range r.alive {
			if !lost.IsZero() && !s.open && !s.end.After(lost) {
				continue
			}
			from, wait := s.start, r.masterDown()
			cause := "no router was capable when the holder went: the next to start waited its master-down interval"
			if !lost.IsZero() && !s.start.After(lost) {
				from = lost
				cause = "failover: the backup heard no advertisement for its master-down interval (the holder went without a handover)"
				if graceful {
					wait = r.skew()
					cause = "handover: the holder's priority-0 advertisement, then the backup's skew time"
				}
			}
			at := from.Add(wait)
			if !s.open && !at.Before(s.end) {
				continue
			}
			if best == nil || at.Before(best.at) || at.Equal(best.at) && r.priority > best.r.priority {
				best = &takeover{r: r, s: s, at: at, cause: cause}
			}
		}
	}
	return best
}

// simulate plays VRRP over the routers' spans up to now.
func simulate(segment string, rs []*vrrpRouter, now time.Time) Gateway {
	g := Gateway{Segment: segment}
	for _, r := range rs {
		g.Routers = append(g.Routers, r.vmid)
	}
	var lost time.Time
	graceful := false
	for {
		next := nextTakeover(rs, lost, graceful)
		if next == nil || next.at.After(now) {
			if next != nil {
				g.PendingVMID, g.PendingAt = next.r.vmid, next.at
			}
			if !lost.IsZero() {
				cause := "no router is capable"
				if next != nil {
					cause = fmt.Sprintf("%s; CT %d takes over at %s", next.cause, next.r.vmid, next.at.Format(time.RFC3339Nano))
				}
				g.Gaps = append(g.Gaps, Gap{Start: lost, Open: true, Cause: cause})
			}
			return g
		}
		if !lost.IsZero() && next.at.After(lost) {
			g.Gaps = append(g.Gaps, Gap{Start: lost, End: next.at, Cause: next.cause})
		}
		h := Holding{VMID: next.r.vmid, Start: next.at, End: next.s.end, Open: next.s.open}
		g.Holdings = append(g.Holdings, h)
		if h.Open {
			return g
		}
		lost, graceful = next.s.end, next.s.graceful
	}
}

// GatewayTimeline is, for every internal network of a router pair, who
// held the pair's addresses when and every gap, up to now.
func GatewayTimeline(tx *engine.Tx, now time.Time) []Gateway {
	ps := pairs(tx, CallerSegment(tx).Key, now)
	var out []Gateway
	for _, seg := range slices.Sorted(maps.Keys(ps)) {
		out = append(out, simulate(seg, ps[seg], now))
	}
	return out
}

// pairGateway is the timeline of the pair that serves target from the
// caller's segment; ok is false when no pair does (a single router's
// segment: routing is as before pairs).
func pairGateway(tx *engine.Tx, callerKey, targetKey string, now time.Time) (Gateway, bool) {
	rs := pairs(tx, callerKey, now)[targetKey]
	if len(rs) == 0 {
		return Gateway{}, false
	}
	gw := simulate(targetKey, rs, now)
	if gw.Holder() == 0 && gw.PendingAt.IsZero() {
		// A router of the pair that is rebooting comes back with
		// keepalived (enabled) in BACKUP, and takes over after its
		// master-down interval when nobody else has.
		for _, r := range rs {
			if end, down := tx.DownUntil(r.vmid, now); down {
				if at := end.Add(r.masterDown()); gw.PendingAt.IsZero() || at.Before(gw.PendingAt) {
					gw.PendingVMID, gw.PendingAt = r.vmid, at
				}
			}
		}
	}
	return gw, true
}

// synRetransmit is when a TCP client sends its first SYN again: the
// initial retransmission timeout, 1 s (RFC 6298 §2.1; Linux
// TCP_TIMEOUT_INIT). A connection opened in a gap that ends sooner is only
// delayed: its second SYN goes through the new holder.
const synRetransmit = time.Second

// routeViaPair is RouteFromCaller's answer for a segment a router pair
// serves: through the router that holds the addresses, or the one that
// takes them within synRetransmit.
func routeViaPair(tx *engine.Tx, gw Gateway, address string, port int, what string, target segment, now time.Time) error {
	id := gw.Holder()
	if id == 0 && !gw.PendingAt.IsZero() && gw.PendingAt.Sub(now) <= synRetransmit {
		id = gw.PendingVMID
	}
	if id != 0 {
		r := tx.State.Guests[id]
		if r == nil {
			return fmt.Errorf("dial tcp %s:%d: connect: no route to host (the router pair's holder CT %d is gone)", address, port, id)
		}
		for i, b := range r.Bridges {
			if SegmentOf(tx, r.Node, b).Key == target.Key && i < len(r.MTUs) && r.MTUs[i] > target.MTU {
				return fmt.Errorf("dial tcp %s:%d: i/o timeout (%s is on segment %s, MTU %d; the router's NIC there has MTU %d: larger frames are dropped)",
					address, port, what, target.Name, target.MTU, r.MTUs[i])
			}
		}
		return nil
	}
	var ids []string
	for _, id := range gw.Routers {
		ids = append(ids, fmt.Sprintf("CT %d", id))
	}
	why := "no router of the pair is capable"
	if n := len(gw.Gaps); n > 0 {
		why = gw.Gaps[n-1].Cause
	} else if !gw.PendingAt.IsZero() {
		why = fmt.Sprintf("CT %d takes the addresses at %s", gw.PendingVMID, gw.PendingAt.Format(time.RFC3339Nano))
	}
	return fmt.Errorf("dial tcp %s:%d: connect: no route to host (%s is on segment %s; the router pair (%s) holds no virtual address: %s)",
		address, port, what, target.Name, strings.Join(ids, ", "), why)
}

// PairOf is the gateway timeline of the pair router vmid belongs to (by the
// segments its last pair apply saw), and which of the pair's routers run
// keepalived at now (capable of taking the addresses). ok is false when
// vmid is no router of a pair.
func PairOf(tx *engine.Tx, vmid int, now time.Time) (gw Gateway, capable []int, ok bool) {
	ps := pairs(tx, CallerSegment(tx).Key, now)
	for _, seg := range slices.Sorted(maps.Keys(ps)) {
		rs := ps[seg]
		if !slices.ContainsFunc(rs, func(r *vrrpRouter) bool { return r.vmid == vmid }) {
			continue
		}
		for _, r := range rs {
			if n := len(r.alive); n > 0 && r.alive[n-1].open {
				capable = append(capable, r.vmid)
			}
		}
		return simulate(seg, rs, now), capable, true
	}
	return Gateway{}, nil, false
}

// SegmentKeys are the keys of the segments of g's NICs, what a pair apply
// records (engine.RouterEvent.Segments).
func SegmentKeys(tx *engine.Tx, g *engine.Guest) []string {
	var out []string
	for _, b := range g.Bridges {
		out = append(out, SegmentOf(tx, g.Node, b).Key)
	}
	return out
}
