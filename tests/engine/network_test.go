package engine

import (
	"strings"
	"testing"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/engine"
)

// The internal network's modes under the real engine, on the simulated
// data plane (docs/simulation.md, "Data plane"): guests on three Proxmox
// nodes must share one segment with the router, or the deployment cannot
// reach them.

// TestProdOnPortlessBridgesFails forces prod onto a portless bridge per
// node (past validation, with the test-only switch): the control plane on
// the router's node comes up, and `up` fails at the first guest on another
// node with the network error naming it, its segment and the router's.
func TestProdOnPortlessBridgesFails(t *testing.T) {
	config.TestOnlyAllowPortlessBridgeAcrossNodes = true
	t.Cleanup(func() { config.TestOnlyAllowPortlessBridgeAcrossNodes = false })
	e := newEnv(t, "prod")
	e.cfg.Network.Internal.Mode = config.ModeBridge
	e.cfg.Network.Internal.VXLAN = nil
	// One router, on pve1: a pair's second router would join pve2's
	// bridge to the caller.
	e.cfg.Router.Pair = nil
	e.cfg.Network.Internal.MTU = 0
	ctx := testContext(t)
	_, err := e.open(ctx).Up(ctx)
	if err == nil {
		t.Fatal("up of prod on portless per-node bridges succeeded; the nodes on pve2 and pve3 cannot be reached")
	}
	msg := err.Error()
	t.Logf("up failed, as it must: %v", err)
	for _, want := range []string{"connect: no route to host", "is on segment pve", "/vmbr2; the router's internal NIC is on pve1/vmbr2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("up failed, but the error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "is on segment pve1/vmbr2;") {
		t.Errorf("a node on the router's own segment was reported unreachable:\n%s", msg)
	}
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		t.Fatal(err)
	}
	// What was reachable got configured: the first control plane, on pve1.
	cp1 := e.address(t, "prod-cp1")
	if st.Machines[cp1] == nil {
		t.Errorf("prod-cp1 (%s, on the router's node) was not configured; machines: %v", cp1, keys(st.Machines))
	}
	for addr := range st.Machines {
		if g := guestAt(st, addr); g != nil && g.Node != "pve1" {
			t.Errorf("%s on %s was configured although nothing reaches its segment", g.Name, g.Node)
		}
	}
}

// TestProdVXLAN: prod as Pulumi.prod.yaml has it (VXLAN) comes up: the SDN
// command creates zone and VNet over SSH with the simulated pvesh, the
// VNet's bridge is on all three nodes, every guest is on it, and a second
// preview is idle.
func TestProdVXLAN(t *testing.T) {
	e := newEnv(t, "prod")
	e.stackFileOnly = true
	ctx := testContext(t)
	e.up(ctx)
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SDNRunning.VNets) != 1 || len(st.SDNRunning.Zones) != 1 {
		t.Fatalf("want one applied VXLAN zone and VNet, have %+v", st.SDNRunning)
	}
	for vnet, v := range st.SDNRunning.VNets {
		z := st.SDNRunning.Zones[v.Zone]
		if z.MTU != 1450 || len(z.Peers) != 3 {
			t.Errorf("zone %s: mtu %d, peers %v; want 1450 and the three nodes", v.Zone, z.MTU, z.Peers)
		}
		e.assertAllOn(st, vnet)
	}
	assertClusterUp(t, st, 3, 3)
	e.assertNoChanges(ctx)
	t.Run("destroy removes the SDN zone and VNet", func(t *testing.T) {
		e.t = t
		if _, err := e.open(ctx).Destroy(ctx, automation.DestroyOptions{}); err != nil {
			t.Fatalf("destroy: %v", err)
		}
		st, err := engine.ReadState(e.simDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.SDN.Zones)+len(st.SDN.VNets)+len(st.SDNRunning.Zones)+len(st.SDNRunning.VNets) != 0 {
			t.Errorf("destroy left SDN configuration: edited %+v, running %+v", st.SDN, st.SDNRunning)
		}
	})
}

// TestProdVLAN: prod on VLAN 42 of eno1 (a NetworkVlan per node as the
// bridge's only port; the switch carries every VLAN) comes up.
func TestProdVLAN(t *testing.T) {
	e := newEnv(t, "prod")
	e.cfg.Network.Internal.Mode = config.ModeVLAN
	e.cfg.Network.Internal.VLAN = &config.InternalVLAN{Uplink: "eno1", ID: 42}
	e.cfg.Network.Internal.VXLAN = nil
	e.cfg.Network.Internal.MTU = 0
	ctx := testContext(t)
	e.up(ctx)
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		if v := st.VLANs[n+"/eno1.42"]; v == nil || v.Interface != "eno1" || v.VLAN != 42 {
			t.Errorf("%s: VLAN interface eno1.42 is %+v", n, v)
		}
		if p := st.BridgePorts[n+"/vmbr2"]; len(p) != 1 || p[0] != "eno1.42" {
			t.Errorf("%s: vmbr2's ports are %v, want [eno1.42]", n, p)
		}
	}
	e.assertAllOn(st, "vmbr2")
	assertClusterUp(t, st, 3, 3)
	e.assertNoChanges(ctx)
}

// TestProdExisting: prod on a bridge the user connected on every node
// (the World declares vmbr2 shared) comes up; SDA creates no bridge.
func TestProdExisting(t *testing.T) {
	e := newEnv(t, "prod")
	e.cfg.Network.Internal.Mode = config.ModeExisting
	e.cfg.Network.Internal.VXLAN = nil
	e.cfg.Network.Internal.MTU = 0
	w := engine.DefaultWorld(e.worldNodes()...)
	w.Bridges = []string{"vmbr0", "vmbr2"}
	w.SharedBridges = []string{"vmbr0", "vmbr2"}
	if err := engine.WriteWorld(e.simDir, w); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	e.up(ctx)
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Bridges) != 0 {
		t.Errorf("mode existing created bridges %v", keys(st.Bridges))
	}
	e.assertAllOn(st, "vmbr2")
	assertClusterUp(t, st, 3, 3)
	e.assertNoChanges(ctx)
}

// worldNodes are the stack's Proxmox nodes as simulated nodes.
func (e *env) worldNodes() []engine.WorldNode {
	var nodes []engine.WorldNode
	for _, n := range config.WithDefaults(e.cfg).Proxmox.Nodes {
		nodes = append(nodes, engine.WorldNode{Name: n.Name, SSHHost: n.SSHHost, ClusterAddress: n.ClusterAddress,
			HostKeys: []string{e.hostKeys[n.Name]}})
	}
	return nodes
}

// assertAllOn checks that every guest's internal NIC (the VMs' only NIC,
// the router's second) is on bridge.
func (e *env) assertAllOn(st *engine.State, bridge string) {
	e.t.Helper()
	nodes := map[string]bool{}
	for _, g := range st.Guests {
		internal := g.Bridges[len(g.Bridges)-1]
		if internal != bridge {
			e.t.Errorf("%s %s on %s: internal NIC on %s, want %s", g.Kind, g.Name, g.Node, internal, bridge)
		}
		nodes[g.Node] = true
	}
	if len(nodes) != 3 {
		e.t.Errorf("guests are on %v, want three Proxmox nodes", keys(nodes))
	}
}

// assertClusterUp checks etcd and the Kubernetes nodes of the one cluster.
func assertClusterUp(t *testing.T, st *engine.State, cps, workers int) {
	t.Helper()
	if len(st.Clusters) != 1 {
		t.Fatalf("want one bootstrapped cluster, have %d", len(st.Clusters))
	}
	for _, c := range st.Clusters {
		if len(c.EtcdMembers) != cps {
			t.Errorf("etcd members %v, want %d", c.EtcdMembers, cps)
		}
		if len(c.Nodes) != cps+workers {
			t.Errorf("Kubernetes nodes %v, want %d", keys(c.Nodes), cps+workers)
		}
	}
	for a, m := range st.Machines {
		if m.JoinBlocked != "" {
			t.Errorf("%s could not join: %s", a, m.JoinBlocked)
		}
	}
}

// address is the internal address of the VM named name, from the plan.
func (e *env) address(t *testing.T, name string) string {
	t.Helper()
	_, p, err := config.Resolve(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Machines() {
		if m.Hostname == name {
			return m.Address.String()
		}
	}
	t.Fatalf("no machine %s in the plan", name)
	return ""
}

func guestAt(st *engine.State, addr string) *engine.Guest {
	for _, g := range st.Guests {
		for _, a := range g.Addresses {
			if a == addr {
				return g
			}
		}
	}
	return nil
}
