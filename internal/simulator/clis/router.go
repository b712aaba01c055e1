package clis

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
)

// PairApplyMarker is the comment line of the apply script of a router of a
// pair (routerfiles.ApplyScript with Spec.Pair set), which installs,
// enables and starts keepalived: the simulated pct recognises the script
// by it, as it recognises the handover script by routerfiles.HandoverMarker.
// The wiring on main defines the same text as routerfiles.PairApplyMarker.
const PairApplyMarker = "# sda:router-pair-apply"

// Inner scripts the simulated `pct exec VMID -- sh -s` recognises on its
// stdin; every other script is read and discarded.
const (
	innerOther = iota
	innerPairApply
	innerHandover
)

// innerKind is what the script piped into the container is.
func innerKind(script string) int {
	for _, line := range strings.Split(script, "\n") {
		switch strings.TrimSpace(line) {
		case routerfiles.HandoverMarker:
			return innerHandover
		case PairApplyMarker:
			return innerPairApply
		}
	}
	return innerOther
}

var (
	rePriority = regexp.MustCompile(`(?m)^\s*priority\s+(\d+)\s*$`)
	reAdvert   = regexp.MustCompile(`(?m)^\s*advert_int\s+(\d+)\s*$`)
	reDeadline = regexp.MustCompile(`deadline=\$\(\( \$\(date \+%s\) \+ (\d+) \)\)`)
	rePeer     = regexp.MustCompile(`(?m)\bpeer=([^;\s]+)`)
)

// pairApply records that the pair's apply script ran in container g at
// now: keepalived runs there from now on, with the priority and advert_int
// of the keepalived.conf the script writes (default 100 and 1 s,
// keepalived's own defaults), on the segments g's NICs are on.
func pairApply(tx *engine.Tx, g *engine.Guest, script string, now time.Time) {
	ev := engine.RouterEvent{VMID: g.VMID, Time: now, Kind: engine.RouterApply, Priority: 100, AdvertInt: time.Second,
		Segments: network.SegmentKeys(tx, g)}
	if m := rePriority.FindStringSubmatch(script); m != nil {
		ev.Priority, _ = strconv.Atoi(m[1])
	}
	if m := reAdvert.FindStringSubmatch(script); m != nil {
		n, _ := strconv.Atoi(m[1])
		ev.AdvertInt = time.Duration(n) * time.Second
	}
	tx.RecordRouter(ev)
}

// handoverPoll is how often the simulated handover looks at the peer again
// (the script: every 2 s).
const handoverPoll = 500 * time.Millisecond

// handover is routerfiles.HandoverScript run in container vmid: a router
// that does not hold the pair's addresses stops keepalived and succeeds at
// once; the holder waits until a peer runs keepalived, stops its own (the
// priority-0 advertisement), and returns once the peer holds the
// addresses (its skew time later); with no peer within the script's
// deadline it fails with the script's message, still holding them.
func handover(store *engine.Store, vmid int, script string) error {
	timeout := time.Duration(routerfiles.HandoverTimeoutSeconds) * time.Second
	if m := reDeadline.FindStringSubmatch(script); m != nil {
		n, _ := strconv.Atoi(m[1])
		timeout = time.Duration(n) * time.Second
	}
	peer := "the peer"
	if m := rePeer.FindStringSubmatch(script); m != nil {
		peer = m[1]
	}
	deadline := time.Now().Add(timeout)
	for {
		var done bool
		var until time.Time
		err := store.Update(func(tx *engine.Tx) error {
			done, until = handoverStep(tx, vmid, time.Now())
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			time.Sleep(time.Until(until))
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("handover: the peer %s did not serve within %d s; this router keeps the addresses", peer, int(timeout.Seconds()))
		}
		time.Sleep(min(handoverPoll, time.Until(deadline)))
	}
}

// handoverStep is one look of the handover at now: done when keepalived
// was stopped (at once for a router that does not hold the addresses; for
// the holder once a peer runs keepalived), with the time the peer takes
// over (the handover script waits for that).
func handoverStep(tx *engine.Tx, vmid int, now time.Time) (bool, time.Time) {
	gw, capable, ok := network.PairOf(tx, vmid, now)
	stop := engine.RouterEvent{VMID: vmid, Time: now, Kind: engine.RouterStop}
	if !ok || gw.Holder() != vmid {
		tx.RecordRouter(stop)
		return true, now
	}
	if !slices.ContainsFunc(capable, func(id int) bool { return id != vmid }) {
		return false, time.Time{}
	}
	tx.RecordRouter(stop)
	after, _, _ := network.PairOf(tx, vmid, now)
	return true, after.PendingAt
}
