package clis

import (
	"encoding/base64"
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
		case routerfiles.PairApplyMarker:
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

// reEmbedded is a file the apply script writes from base64
// (routerfiles.writeEmbedded): its name and its encoded content.
var reEmbedded = regexp.MustCompile(`(?s)base64 -d >"\$work/([^"]+)" <<'SDA_EOF'\n(.*?)SDA_EOF`)

// keepalivedConf is the text the pair's keepalived settings are read from:
// the script and every file it embeds, decoded.
func keepalivedConf(script string) string {
	texts := []string{script}
	for _, m := range reEmbedded.FindAllStringSubmatch(script, -1) {
		if b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(m[2]), "")); err == nil {
			texts = append(texts, string(b))
		}
	}
	return strings.Join(texts, "\n")
}

// pairApply records that the pair's apply script ran in container g at
// now: keepalived runs there from now on, with the priority and advert_int
// of the keepalived.conf the script writes (default 100 and 1 s,
// keepalived's own defaults), on the segments g's NICs are on.
func pairApply(tx *engine.Tx, g *engine.Guest, script string, now time.Time) {
	ev := engine.RouterEvent{VMID: g.VMID, Time: now, Kind: engine.RouterApply, Priority: 100, AdvertInt: time.Second,
		Segments: network.SegmentKeys(tx, g)}
	conf := keepalivedConf(script)
	if m := rePriority.FindStringSubmatch(conf); m != nil {
		ev.Priority, _ = strconv.Atoi(m[1])
	}
	if m := reAdvert.FindStringSubmatch(conf); m != nil {
		n, _ := strconv.Atoi(m[1])
		ev.AdvertInt = time.Duration(n) * time.Second
	}
	tx.RecordRouter(ev)
}

// handoverPoll is how often the simulated handover looks at the peer again
// (the script: every 2 s).
const handoverPoll = 500 * time.Millisecond

// handoverArgs are what the simulated handover reads from the script: its
// deadline, how long a peer may answer nothing before the master leaves
// without a handover, and the peer's own internal address.
type handoverArgs struct {
	timeout, peerGone time.Duration
	peer              string
	// seconds is the deadline as the script's message states it.
	seconds int
}

var reGone = regexp.MustCompile(`\$\(\(now - seen\)\) -ge (\d+) \]`)

func parseHandover(script string) handoverArgs {
	a := handoverArgs{timeout: time.Duration(routerfiles.HandoverTimeoutSeconds) * time.Second,
		peerGone: time.Duration(routerfiles.PeerGoneSeconds) * time.Second, peer: "the peer"}
	a.seconds = routerfiles.HandoverTimeoutSeconds
	if m := reDeadline.FindStringSubmatch(script); m != nil {
		a.seconds, _ = strconv.Atoi(m[1])
		a.timeout = time.Duration(a.seconds) * time.Second
	}
	if m := reGone.FindStringSubmatch(script); m != nil {
		n, _ := strconv.Atoi(m[1])
		a.peerGone = time.Duration(n) * time.Second
	}
	if m := rePeer.FindStringSubmatch(script); m != nil {
		a.peer = m[1]
	}
	return a
}

// handover is routerfiles.HandoverScript run in container vmid: a router
// that does not hold the pair's addresses stops keepalived and succeeds at
// once; the holder waits until a peer runs keepalived, stops its own (the
// priority-0 advertisement), and returns once the peer holds the
// addresses (its skew time later). A peer whose own address answers
// nothing (no running container has it) for the script's peer-gone time:
// the holder stops keepalived and leaves without a handover. With a peer
// that answers but never serves, it fails at the script's deadline with
// the script's message, still holding the addresses.
func handover(store *engine.Store, vmid int, script string) error {
	a := parseHandover(script)
	f, err := store.Faults()
	if err != nil {
		return err
	}
	a.timeout, a.peerGone = f.HandoverTime(a.timeout), f.HandoverTime(a.peerGone)
	start := time.Now()
	deadline, seen := start.Add(a.timeout), start
	for {
		var look handoverLook
		err := store.Update(func(tx *engine.Tx) error {
			now := time.Now()
			look = handoverStep(tx, vmid, a.peer, now)
			if look.peerAlive {
				seen = now
			}
			if !look.done && now.Sub(seen) >= a.peerGone {
				tx.RecordRouter(engine.RouterEvent{VMID: vmid, Time: now, Kind: engine.RouterStop})
				look.done = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		if look.done {
			time.Sleep(time.Until(look.until))
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("handover: the peer %s did not serve within %d s; this router keeps the addresses", a.peer, a.seconds)
		}
		time.Sleep(min(handoverPoll, time.Until(deadline)))
	}
}

// handoverLook is one look of the handover: done when keepalived was
// stopped, with the time the peer takes over (the script waits for
// that); peerAlive when a running container has the peer's address.
type handoverLook struct {
	done      bool
	until     time.Time
	peerAlive bool
}

// handoverStep is one look of the handover at now: keepalived stops at
// once in a router that does not hold the addresses, and in the holder
// once a peer runs keepalived.
func handoverStep(tx *engine.Tx, vmid int, peer string, now time.Time) handoverLook {
	gw, capable, ok := network.PairOf(tx, vmid, now)
	stop := engine.RouterEvent{VMID: vmid, Time: now, Kind: engine.RouterStop}
	if !ok || gw.Holder() != vmid {
		tx.RecordRouter(stop)
		return handoverLook{done: true, until: now}
	}
	if !slices.ContainsFunc(capable, func(id int) bool { return id != vmid }) {
		return handoverLook{peerAlive: answersPing(tx, vmid, peer, now)}
	}
	tx.RecordRouter(stop)
	after, _, _ := network.PairOf(tx, vmid, now)
	return handoverLook{done: true, until: after.PendingAt, peerAlive: true}
}

// answersPing reports whether a running container other than self has
// address addr: its NIC is configured as soon as it starts.
func answersPing(tx *engine.Tx, self int, addr string, now time.Time) bool {
	for id, g := range tx.State.Guests {
		if id == self || g.Kind != "lxc" || !g.Started || !slices.Contains(g.Addresses, addr) {
			continue
		}
		if _, down := tx.DownUntil(id, now); !down {
			return true
		}
	}
	return false
}
