package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
)

// gateway is the simulation's gateway timeline of prod's internal network,
// which one router pair serves.
func (e *env) gateway() network.Gateway {
	e.t.Helper()
	e.requirePairApply()
	var gws []network.Gateway
	if err := (&engine.Store{Dir: e.simDir}).View(func(tx *engine.Tx) error {
		gws = network.GatewayTimeline(tx, time.Now())
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	if len(gws) != 1 || len(gws[0].Routers) != 2 {
		e.t.Fatalf("want one router pair (two routers that ran the pair's apply) serving the internal network, got %+v", gws)
	}
	return gws[0]
}

// requirePairApply fails the test when no router ran an apply script with
// the pair's marker (routerfiles.PairApplyMarker): without it the
// simulation cannot tell a pair's routers from two single ones.
func (e *env) requirePairApply() {
	e.t.Helper()
	if !e.pairApplied() {
		e.t.Fatal("no router ran an apply script with " + routerfiles.PairApplyMarker + ": prod's routers were not deployed as a pair")
	}
}

// pairApplied reports whether any router ran the pair's apply script.
func (e *env) pairApplied() bool {
	e.t.Helper()
	for _, ev := range readSim(e.t, e.simDir).RouterEvents {
		if ev.Kind == engine.RouterApply {
			return true
		}
	}
	return false
}

// gatewayLost lists the gaps since since that are more than a handover's:
// a priority-0 advertisement moves the addresses after the backup's skew
// time (under a second), anything else (a failover's master-down
// interval, no capable router) is the internal gateway not answering.
func gatewayLost(gw network.Gateway, since time.Time) []string {
	now := time.Now()
	var out []string
	for _, g := range gw.Gaps {
		if !g.Open && g.End.Before(since) {
			continue
		}
		if !strings.HasPrefix(g.Cause, "handover") || g.Length(now) > time.Second {
			out = append(out, g.Start.Format("15:04:05.000")+" for "+g.Length(now).String()+": "+g.Cause)
		}
	}
	return out
}

// setRouters starts or stops both routers' containers at once, as a
// Proxmox stop (or start) of both would.
func (e *env) setRouters(started bool) {
	e.t.Helper()
	kind := engine.RouterDown
	if started {
		kind = engine.RouterUp
	}
	if err := (&engine.Store{Dir: e.simDir}).Update(func(tx *engine.Tx) error {
		for _, name := range []string{"router", config.PairHostname("router")} {
			id := guestID(e.t, e.simDir, name)
			tx.State.Guests[id].Started = started
			tx.RecordRouter(engine.RouterEvent{VMID: id, Time: time.Now(), Kind: kind})
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// TestProdRouterPair: prod's two routers share the internal gateway. A
// template change replaces both containers, rolled by the handover so the
// gateway answers throughout (only the skew time of each handover); the
// ablation (both stopped together) shows the timeline does catch a lost
// gateway; with pve1 failed, the second router takes the addresses after
// keepalived's master-down interval and Pulumi reaches the nodes on pve2
// through it.
func TestProdRouterPair(t *testing.T) {
	e := newEnv(t, "prod")
	if e.cfg.Router.Pair == nil {
		e.cfg.Router.Pair = &config.RouterPair{ExternalAddresses: []string{"192.168.1.61", "192.168.1.62"}}
	}
	ctx := testContext(t)
	t.Run("up", func(t *testing.T) {
		e.t = t
		e.up(ctx)
		if gw := e.gateway(); gw.Holder() == 0 && gw.PendingAt.IsZero() {
			t.Errorf("after up no router holds or is about to hold the gateway: %+v", gw)
		}
	})
	if e.t = t; !e.pairApplied() {
		t.Skip("no router ran an apply script with " + routerfiles.PairApplyMarker + " (the wiring does not render the pair's keepalived configuration yet)")
	}
	t.Run("a template change replaces both routers with the gateway answering throughout", func(t *testing.T) {
		e.t = t
		time.Sleep(4 * time.Second) // the first master-down interval of the fresh pair
		since := time.Now()
		e.cfg.Router.TemplateURL = "https://download.proxmox.com/images/system/debian-12-standard_12.12-1_amd64.tar.zst"
		e.cfg.Router.TemplateChecksum = strings.Repeat("ab", 64)
		res := e.up(ctx)
		replaced := 0
		for _, s := range stepsOf(res, proxmox.TokenContainer) {
			if s.Op == "replace" || s.Op == "create-replacement" || s.Op == "delete-replaced" {
				replaced++
			}
		}
		if replaced < 2 {
			t.Errorf("want both router containers replaced:%s", describe(stepsOf(res, proxmox.TokenContainer)))
		}
		gw := e.gateway()
		if lost := gatewayLost(gw, since); len(lost) > 0 {
			t.Errorf("the internal gateway did not answer:\n  %s\ntimeline: %+v", strings.Join(lost, "\n  "), gw)
		}
		if gw.Holder() == 0 {
			t.Errorf("after the roll no router holds the gateway: %+v", gw)
		}
		e.assertNoChanges(ctx)
	})
	t.Run("ablation: both routers stopped together lose the gateway", func(t *testing.T) {
		e.t = t
		since := time.Now()
		e.setRouters(false)
		if lost := gatewayLost(e.gateway(), since); len(lost) != 1 {
			t.Errorf("both routers down: lost %q, want one gap", lost)
		}
		e.setRouters(true)
		time.Sleep(4 * time.Second) // back as backups, one takes over after its master-down interval
		if gw := e.gateway(); gw.Holder() == 0 {
			t.Errorf("after both came back nobody holds the gateway: %+v", gw)
		}
	})
	t.Run("pve1 failed: the second router serves pve2's nodes", func(t *testing.T) {
		// A stack of its own: the roll above must not decide this.
		f := newEnv(t, "prod")
		if f.cfg.Router.Pair == nil {
			f.cfg.Router.Pair = e.cfg.Router.Pair
		}
		f.up(ctx)
		f.pve1Failed(ctx)
	})
}

// pve1Failed cuts pve1's power (prod-router, prod-cp1, prod-worker3 stop)
// and asks an up to rebuild prod-worker1, on pve2. The second router holds
// the gateway after keepalived's master-down interval and Pulumi reaches
// pve2's nodes through it. No up can succeed: in every up
// talos:cluster/getHealth checks every control plane (Talos's "etcd to be
// healthy" wants etcd Running on prod-cp1), and the rebuild's own gate
// wants every declared node to answer and be Ready (day2.NodesReady) —
// although etcd keeps quorum with 2 of 3 members and Kubernetes serves
// with one control plane down.
func (e *env) pve1Failed(ctx context.Context) {
	t := e.t
	if err := (&engine.Store{Dir: e.simDir}).FailNode("pve1"); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	time.Sleep(4 * time.Second) // keepalived's master-down interval is 3.609 s
	gw := e.gateway()
	st := readSim(t, e.simDir)
	if h := st.Guests[gw.Holder()]; h == nil || h.Node != "pve2" {
		t.Fatalf("with pve1 failed the gateway is held by %d, want the router on pve2: %+v", gw.Holder(), gw)
	}
	for _, g := range gw.Gaps {
		if g.End.After(failed) && (g.Open || g.Length(time.Now()) > 4*time.Second) {
			t.Errorf("gap after pve1 failed longer than the master-down interval: %+v", g)
		}
	}
	if err := (&engine.Store{Dir: e.simDir}).View(func(tx *engine.Tx) error {
		if _, err := network.TalosReachable(tx, "10.20.0.21", time.Now()); err != nil {
			t.Errorf("prod-worker1 (pve2) through the second router: %v", err)
		}
		if _, err := network.TalosReachable(tx, "10.20.0.11", time.Now()); err == nil || !strings.Contains(err.Error(), "stopped") {
			t.Errorf("prod-cp1 (pve1) should be down: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Even an up that changes nothing fails: talos:cluster/getHealth, in
	// every up, checks every control plane.
	if _, err := e.open(ctx).Up(ctx); err == nil || !strings.Contains(err.Error(), "cluster health check failed") ||
		!strings.Contains(err.Error(), "10.20.0.11") {
		t.Errorf("an up with prod-cp1 down: %v; want getHealth refusing for prod-cp1 (10.20.0.11)", err)
	}
	// SDA's gates wait (sda:cluster.upgrade.timeoutSeconds, 15 minutes
	// by default) for what will not come: 20 s here.
	e.cfg.Cluster.Upgrade.TimeoutSeconds, e.cfg.Cluster.Upgrade.PollSeconds = 20, 1
	e.cfg.Nodes.Rebuild = map[string]int{"prod-worker1": 1}
	_, err := e.open(ctx).Up(ctx)
	if err == nil {
		t.Fatalf("up with prod-cp1 down succeeded; SDA's gates over every node should refuse it")
	}
	// What SDA's gate sees is prod-cp1's own silence (its VM is stopped,
	// so no ARP answer: no route to host), not a missing router.
	if msg := err.Error(); !strings.Contains(msg, "not healthy") || !strings.Contains(msg, "10.20.0.11") ||
		strings.Contains(msg, "router pair") || strings.Contains(msg, "the router") {
		t.Errorf("up with pve1 failed: want SDA's gate refusing for prod-cp1 (10.20.0.11), not a routing failure; got %v", err)
	}
}
