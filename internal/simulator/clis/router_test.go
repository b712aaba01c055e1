package clis_test

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/stacks/inputs"
)

// pairServer is a command provider on pve1 (192.0.2.11) and pve2
// (192.0.2.12), whose vmbr0 and vmbr1 are each one segment, with router
// containers 8001 on pve1 and 8002 on pve2 (own internal addresses
// 10.20.0.2 and 10.20.0.3).
func pairServer(t *testing.T) *engine.Server {
	t.Helper()
	w := engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"})
	w.Bridges = []string{"vmbr0", "vmbr1"}
	w.SharedBridges = w.Bridges
	s := simtest.NewTestServer(t, "command", w)
	simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
		for i, node := range []string{"pve1", "pve2"} {
			tx.State.Guests[8001+i] = &engine.Guest{VMID: 8001 + i, Kind: "lxc", Node: node, Started: true, Bridges: []string{"vmbr0", "vmbr1"},
				Addresses: []string{fmt.Sprintf("10.20.0.%d", 2+i)}}
		}
		return nil
	}))
	return s
}

// inContainer runs script inside container vmid on host as RouterLXC does
// (base64, pct exec … sh -s).
func inContainer(t *testing.T, s *engine.Server, host string, vmid int, script string) error {
	t.Helper()
	cmd := fmt.Sprintf("printf '%%s' '%s' | base64 -d | pct exec %d -- sh -s", base64.StdEncoding.EncodeToString([]byte(script)), vmid)
	_, _, err := simtest.Create(t, s, clis.TokenRemoteCommand, "cmd", map[string]any{"connection": map[string]any{"host": host}, "create": cmd})
	return err
}

func pairApply(priority int) string {
	return fmt.Sprintf("#!/bin/sh\n%s\ncat > /etc/keepalived/keepalived.conf <<'EOF'\nvrrp_instance sda {\n    priority %d\n    advert_int 1\n    nopreempt\n}\nEOF\nsystemctl enable --now keepalived\n",
		routerfiles.PairApplyMarker, priority)
}

// handoverScript is routerfiles.HandoverScript with its deadline and
// peer-gone time shortened to timeout and gone seconds.
func handoverScript(peer string, timeout, gone int) string {
	s := routerfiles.Spec{Internal: netip.MustParsePrefix("10.20.0.0/24"), RouterInternal: netip.MustParseAddr("10.20.0.1"),
		Pair: &routerfiles.Pair{OwnInternal: netip.MustParseAddr("10.20.0.9"), PeerInternal: netip.MustParseAddr(peer), VRID: 51}}
	script := routerfiles.HandoverScript(s, routerfiles.DebianLayout())
	script = strings.Replace(script, fmt.Sprintf("-ge %d ]", routerfiles.PeerGoneSeconds), fmt.Sprintf("-ge %d ]", gone), 1)
	return strings.Replace(script, fmt.Sprintf("+ %d ))", routerfiles.HandoverTimeoutSeconds), fmt.Sprintf("+ %d ))", timeout), 1)
}

func gateway(t *testing.T, s *engine.Server) network.Gateway {
	t.Helper()
	var gws []network.Gateway
	simtest.NoErr(t, s.Store.View(func(tx *engine.Tx) error { gws = network.GatewayTimeline(tx, time.Now()); return nil }))
	if len(gws) != 1 {
		t.Fatalf("want one router pair, got %+v", gws)
	}
	return gws[0]
}

// The pair's apply script, recognised by its marker on pct exec's stdin,
// starts keepalived in the container with the priority of the
// configuration it writes; another script changes nothing; SSH to a failed
// node's host does not connect, and nothing runs.
func TestPctRecognisesThePairApply(t *testing.T) {
	s := pairServer(t)
	simtest.NoErr(t, inContainer(t, s, "192.0.2.11", 8001, "#!/bin/sh\necho installing dnsmasq\n"))
	simtest.NoErr(t, inContainer(t, s, "192.0.2.11", 8001, pairApply(150)))
	st, _ := engine.ReadState(s.Store.Dir)
	if n := len(st.RouterEvents); n != 1 || st.RouterEvents[0].Kind != engine.RouterApply || st.RouterEvents[0].Priority != 150 ||
		strings.Join(st.RouterEvents[0].Segments, ",") != "shared:vmbr0,shared:vmbr1" {
		t.Fatalf("router events %+v: want one apply of 8001, priority 150, on both segments", st.RouterEvents)
	}
	simtest.NoErr(t, s.Store.FailNode("pve2"))
	err := inContainer(t, s, "192.0.2.12", 8002, pairApply(100))
	if err == nil || !strings.Contains(err.Error(), "ssh: dial tcp 192.0.2.12:22: connect: no route to host") {
		t.Errorf("pct on a failed node: %v, want an SSH dial error", err)
	}
	if st, _ := engine.ReadState(s.Store.Dir); len(st.RouterEvents) != 2 || st.RouterEvents[1].Kind != engine.RouterDown {
		t.Errorf("router events %+v: want 8001's apply and 8002 down, no apply", st.RouterEvents)
	}
}

// past records an apply of vmid at the given age, so the pair has a
// master without waiting for keepalived's timers.
func past(t *testing.T, s *engine.Server, vmid, priority int, age time.Duration) {
	t.Helper()
	simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
		tx.RecordRouter(engine.RouterEvent{VMID: vmid, Time: time.Now().Add(-age), Kind: engine.RouterApply, Priority: priority,
			AdvertInt: time.Second, Segments: []string{"shared:vmbr0", "shared:vmbr1"}})
		return nil
	}))
}

// The handover script: a backup leaves at once; the holder waits until its
// peer runs keepalived, then hands the addresses over (they move after
// the peer's skew time, 0.609 s at priority 100), so the timeline has only
// that handover gap.
func TestHandoverWaitsForThePeer(t *testing.T) {
	s := pairServer(t)
	past(t, s, 8001, 150, time.Minute)
	past(t, s, 8002, 100, time.Minute)
	start := time.Now()
	simtest.NoErr(t, inContainer(t, s, "192.0.2.12", 8002, handoverScript("10.20.0.2", 30, 300)))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the backup's handover took %s, want at once", d)
	}
	if h := gateway(t, s).Holder(); h != 8001 {
		t.Fatalf("holder %d after the backup left, want 8001", h)
	}
	peer := make(chan error, 1)
	go func() {
		time.Sleep(time.Second)
		peer <- inContainer(t, s, "192.0.2.12", 8002, pairApply(100))
	}()
	start = time.Now()
	simtest.NoErr(t, inContainer(t, s, "192.0.2.11", 8001, handoverScript("10.20.0.3", 30, 300)))
	simtest.NoErr(t, <-peer)
	if d := time.Since(start); d < time.Second {
		t.Errorf("the holder's handover took %s: it did not wait for its peer", d)
	}
	gw := gateway(t, s)
	if gw.Holder() != 8002 || len(gw.Gaps) != 1 || !strings.HasPrefix(gw.Gaps[0].Cause, "handover") ||
		gw.Gaps[0].Length(time.Now()) != 156*time.Second/256 {
		t.Errorf("timeline %+v: want 8002 holding after one handover gap of 0.609 s", gw)
	}
}

// A holder whose peer runs but never serves fails with the script's
// message when the script's deadline passes, and keeps the addresses; one
// whose peer answers nothing for the peer-gone time (a destroy) leaves
// without a handover, and the internal network has no gateway from then on.
func TestHandoverWithoutPeer(t *testing.T) {
	s := pairServer(t)
	past(t, s, 8001, 100, time.Minute)
	err := inContainer(t, s, "192.0.2.11", 8001, handoverScript("10.20.0.3", 2, 300))
	if err == nil || !strings.Contains(err.Error(), "handover: the peer 10.20.0.3 did not serve within 2 s; this router keeps the addresses") {
		t.Errorf("handover with a peer that never serves: %v, want the script's failure", err)
	}
	if gw := gateway(t, s); gw.Holder() != 8001 || len(gw.Gaps) != 0 {
		t.Errorf("timeline %+v: 8001 should still hold the addresses, without a gap", gw)
	}
	simtest.NoErr(t, inContainer(t, s, "192.0.2.11", 8001, handoverScript("10.20.0.9", 30, 1)))
	if gw := gateway(t, s); gw.Holder() != 0 || len(gw.Gaps) != 1 || !gw.Gaps[0].Open {
		t.Errorf("timeline %+v: after leaving without a handover nobody holds the addresses", gw)
	}
}

// Faults.HandoverTimeScale shortens the script's own waits (its peer-gone
// time and its deadline) for tests: a destroy's handover, whose peer is
// gone, returns after the scaled peer-gone time.
func TestHandoverTimeScale(t *testing.T) {
	s := pairServer(t)
	scale := 2.0 / float64(routerfiles.PeerGoneSeconds) // the peer-gone time becomes 2 s
	simtest.NoErr(t, engine.WriteFaults(s.Store.Dir, engine.Faults{HandoverTimeScale: scale}))
	past(t, s, 8001, 100, time.Minute)
	start := time.Now()
	simtest.NoErr(t, inContainer(t, s, "192.0.2.11", 8001, handoverScript("10.20.0.9", routerfiles.HandoverTimeoutSeconds, routerfiles.PeerGoneSeconds)))
	if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
		t.Errorf("the scaled handover without a peer took %s, want about 2 s", d)
	}
}

// renderedApply is the apply script SDA renders for router index of a pair
// (the inputs fixture on two Proxmox nodes), as RouterLXC runs it.
func renderedApply(t *testing.T, index int) string {
	t.Helper()
	c := inputs.RouterFixture()
	c.Proxmox.Nodes = []config.ProxmoxNode{{Name: "pve1"}, {Name: "pve2"}}
	c.Router.Pair = &config.RouterPair{ExternalAddresses: []string{"192.0.2.6", "192.0.2.7"}}
	c.Network.Internal.Mode = "existing" // one segment on both nodes
	c, p, err := config.Resolve(c)
	simtest.NoErr(t, err)
	routers, err := inputs.Routers(c, p)
	simtest.NoErr(t, err)
	spec, err := routers[index].Files()
	simtest.NoErr(t, err)
	return routerfiles.ApplyScript(routerfiles.Render(spec), routerfiles.DebianLayout())
}

// The apply script SDA renders for each router of a pair is recognised,
// and the priority of the keepalived.conf it embeds (base64) is read:
// 150 for the first router, 100 for the second. This protects the
// contract between the rendering and the simulation.
func TestPctReadsTheRenderedPairApply(t *testing.T) {
	s := pairServer(t)
	simtest.NoErr(t, inContainer(t, s, "192.0.2.11", 8001, renderedApply(t, 0)))
	simtest.NoErr(t, inContainer(t, s, "192.0.2.12", 8002, renderedApply(t, 1)))
	st, _ := engine.ReadState(s.Store.Dir)
	var prios []int
	for _, ev := range st.RouterEvents {
		if ev.Kind == engine.RouterApply && ev.AdvertInt == time.Second {
			prios = append(prios, ev.Priority)
		}
	}
	if fmt.Sprint(prios) != "[150 100]" {
		t.Errorf("priorities read from the rendered applies: %v, want [150 100]", prios)
	}
}
