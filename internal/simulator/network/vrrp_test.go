package network_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
)

// pairWorld is two nodes whose vmbr0 (Pulumi's LAN) and vmbr1 (the
// internal network) are each one segment, with router containers 8001
// (pve1) and 8002 (pve2) on both and a VM 9001 on vmbr1.
func pairWorld(t *testing.T) *engine.Store {
	t.Helper()
	w := engine.DefaultWorld(engine.WorldNode{Name: "pve1"}, engine.WorldNode{Name: "pve2"})
	w.Bridges = []string{"vmbr0", "vmbr1"}
	w.SharedBridges = []string{"vmbr0", "vmbr1"}
	s := &engine.Store{Dir: t.TempDir()}
	if err := engine.WriteWorld(s.Dir, w); err != nil {
		t.Fatal(err)
	}
	err := s.Update(func(tx *engine.Tx) error {
		for i, node := range []string{"pve1", "pve2"} {
			tx.State.Guests[8001+i] = &engine.Guest{VMID: 8001 + i, Kind: "lxc", Node: node, Started: true, Bridges: []string{"vmbr0", "vmbr1"}}
		}
		tx.State.Guests[9001] = &engine.Guest{VMID: 9001, Kind: "qemu", Node: "pve1", Started: true, Bridges: []string{"vmbr1"}, Addresses: []string{"10.20.0.11"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// at is t0 plus d seconds.
func at(t0 time.Time, d float64) time.Time { return t0.Add(time.Duration(d * float64(time.Second))) }

// record appends router events; apply events get both segments.
func record(t *testing.T, s *engine.Store, evs ...engine.RouterEvent) {
	t.Helper()
	err := s.Update(func(tx *engine.Tx) error {
		for _, ev := range evs {
			if ev.Kind == engine.RouterApply {
				ev.Segments = []string{"shared:vmbr0", "shared:vmbr1"}
			}
			tx.RecordRouter(ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func timeline(t *testing.T, s *engine.Store, now time.Time) network.Gateway {
	t.Helper()
	var gws []network.Gateway
	_ = s.View(func(tx *engine.Tx) error { gws = network.GatewayTimeline(tx, now); return nil })
	if len(gws) != 1 || gws[0].Segment != "shared:vmbr1" {
		t.Fatalf("want one pair on shared:vmbr1, got %+v", gws)
	}
	return gws[0]
}

func routeErr(s *engine.Store, now time.Time) error {
	var err error
	_ = s.View(func(tx *engine.Tx) error {
		err = network.RouteFromCaller(tx, "10.20.0.11", 50000, "VM 9001", network.SegmentOf(tx, "pve1", "vmbr1"), now)
		return nil
	})
	return err
}

// keepalived's timers: the first master after its master-down interval
// (3 × 1 s + (256−150)/256 s for priority 150); a holder that goes without
// a handover is replaced after the backup's master-down interval (3.609 s
// at priority 100), a gap the timeline records as a failover; Pulumi's
// route to the internal network follows the holder and fails in the gap.
func TestVRRPFailoverAfterMasterDown(t *testing.T) {
	s := pairWorld(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	record(t, s,
		engine.RouterEvent{VMID: 8001, Time: t0, Kind: engine.RouterApply, Priority: 150, AdvertInt: time.Second},
		engine.RouterEvent{VMID: 8002, Time: t0, Kind: engine.RouterApply, Priority: 100, AdvertInt: time.Second},
		engine.RouterEvent{VMID: 8001, Time: at(t0, 10), Kind: engine.RouterDown})
	if err := routeErr(s, at(t0, 2)); err == nil || !strings.Contains(err.Error(), "holds no virtual address") {
		t.Errorf("before the first master-down interval: %v, want no route (nobody holds the address yet)", err)
	}
	gw := timeline(t, s, at(t0, 20))
	if len(gw.Holdings) != 2 || gw.Holdings[0].VMID != 8001 || !gw.Holdings[0].Start.Equal(at(t0, 3+106.0/256)) {
		t.Fatalf("holdings %+v: want 8001 from t0+3.414s", gw.Holdings)
	}
	want := at(t0, 10+3+156.0/256)
	if gw.Holder() != 8002 || !gw.Holdings[1].Start.Equal(want) {
		t.Errorf("holdings %+v: want 8002 from %s", gw.Holdings, want)
	}
	if len(gw.Gaps) != 1 || !gw.Gaps[0].Start.Equal(at(t0, 10)) || !gw.Gaps[0].End.Equal(want) || !strings.HasPrefix(gw.Gaps[0].Cause, "failover") {
		t.Errorf("gaps %+v: want one failover gap of 3.609 s from t0+10s", gw.Gaps)
	}
	if err := routeErr(s, at(t0, 12)); err == nil || !strings.Contains(err.Error(), "failover") {
		t.Errorf("inside the gap: %v, want no route (failover)", err)
	}
	if err := routeErr(s, at(t0, 14)); err != nil {
		t.Errorf("after the failover: %v, want the route through 8002", err)
	}
	if err := routeErr(s, at(t0, 12.7)); err != nil {
		t.Errorf("0.9 s before the takeover: %v, want the connection through (its SYN is sent again after 1 s)", err)
	}
}

// A handover (keepalived stopped on the holder: a priority-0
// advertisement) moves the addresses after the backup's skew time only
// (0.609 s at priority 100), recorded as a handover gap; nopreempt: the
// old master coming back (a start) does not take them back.
func TestVRRPHandoverAndNopreempt(t *testing.T) {
	s := pairWorld(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	record(t, s,
		engine.RouterEvent{VMID: 8001, Time: t0, Kind: engine.RouterApply, Priority: 150},
		engine.RouterEvent{VMID: 8002, Time: at(t0, 1), Kind: engine.RouterApply, Priority: 100},
		engine.RouterEvent{VMID: 8001, Time: at(t0, 10), Kind: engine.RouterStop},
		engine.RouterEvent{VMID: 8001, Time: at(t0, 11), Kind: engine.RouterDown},
		engine.RouterEvent{VMID: 8001, Time: at(t0, 12), Kind: engine.RouterUp})
	gw := timeline(t, s, at(t0, 30))
	if len(gw.Gaps) != 1 || gw.Gaps[0].Length(at(t0, 30)) != 156*time.Second/256 || !strings.HasPrefix(gw.Gaps[0].Cause, "handover") {
		t.Errorf("gaps %+v: want one handover gap of 0.609 s", gw.Gaps)
	}
	if len(gw.Holdings) != 2 || gw.Holder() != 8002 {
		t.Errorf("holdings %+v: want 8001, then 8002 still holding after 8001 came back (nopreempt)", gw.Holdings)
	}
}

// With both routers gone the gap stays open and names that no router is
// capable; a router whose apply never ran is no gateway of a pair's
// network (its segment is a pair's once any router there ran the pair's
// apply), but without any pair apply a single running router routes as
// before pairs existed.
func TestVRRPNoCapableRouter(t *testing.T) {
	s := pairWorld(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := routeErr(s, t0); err != nil {
		t.Errorf("single routers, no pair apply: %v, want the route as before pairs", err)
	}
	record(t, s,
		engine.RouterEvent{VMID: 8001, Time: t0, Kind: engine.RouterApply},
		engine.RouterEvent{VMID: 8001, Time: at(t0, 10), Kind: engine.RouterDown})
	gw := timeline(t, s, at(t0, 20))
	if len(gw.Gaps) != 1 || !gw.Gaps[0].Open || gw.Gaps[0].Cause != "no router is capable" || gw.Gaps[0].Length(at(t0, 20)) != 10*time.Second {
		t.Errorf("gaps %+v: want one open gap of 10 s, no router capable", gw.Gaps)
	}
	if err := routeErr(s, at(t0, 20)); err == nil || !strings.Contains(err.Error(), "CT 8001") {
		t.Errorf("8002 runs but never ran the pair's apply: %v, want no route naming the pair", err)
	}
	// A container deleted and created again with the same VM ID has no
	// keepalived until the pair's apply runs in it.
	record(t, s,
		engine.RouterEvent{VMID: 8001, Time: at(t0, 21), Kind: engine.RouterGone},
		engine.RouterEvent{VMID: 8001, Time: at(t0, 22), Kind: engine.RouterUp})
	if gw := timeline(t, s, at(t0, 40)); gw.Holder() != 0 || !gw.Gaps[0].Open {
		t.Errorf("timeline %+v: the recreated 8001 never ran the apply, nobody should hold the addresses", gw)
	}
	record(t, s, engine.RouterEvent{VMID: 8001, Time: at(t0, 41), Kind: engine.RouterApply})
	if gw := timeline(t, s, at(t0, 50)); gw.Holder() != 8001 {
		t.Errorf("timeline %+v: after its apply 8001 should hold the addresses", gw)
	}
}

// A failed node is no VXLAN peer: its VNet bridge leaves the VNet's
// segment (a guest there is cut off), the other peers' stay; restored, it
// is a peer again.
func TestFailedNodeLeavesTheVXLAN(t *testing.T) {
	s := pairWorld(t)
	seg := func(node string) string {
		var key string
		_ = s.View(func(tx *engine.Tx) error { key = network.SegmentOf(tx, node, "vprod").Key; return nil })
		return key
	}
	if err := s.Update(func(tx *engine.Tx) error {
		tx.State.SDNRunning.Zones["zprod"] = &engine.SDNZone{Type: "vxlan", Peers: []string{"pve1", "pve2"}}
		tx.State.SDNRunning.VNets["vprod"] = &engine.SDNVNet{Zone: "zprod", Tag: 4242}
		tx.State.SDNNodeVersions["pve1"], tx.State.SDNNodeVersions["pve2"] = 1, 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seg("pve1") != "sdn:vprod" || seg("pve2") != "sdn:vprod" {
		t.Fatalf("before the failure: pve1 %s, pve2 %s, want both on sdn:vprod", seg("pve1"), seg("pve2"))
	}
	if err := s.FailNode("pve1"); err != nil {
		t.Fatal(err)
	}
	if seg("pve1") != "pve1/vprod" || seg("pve2") != "sdn:vprod" {
		t.Errorf("pve1 failed: pve1 %s (want pve1/vprod), pve2 %s (want sdn:vprod)", seg("pve1"), seg("pve2"))
	}
	if err := s.RestoreNode("pve1"); err != nil {
		t.Fatal(err)
	}
	if seg("pve1") != "sdn:vprod" {
		t.Errorf("pve1 restored: %s, want sdn:vprod", seg("pve1"))
	}
}
