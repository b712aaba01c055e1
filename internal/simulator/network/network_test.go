package network_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// netFixture is a three-node simulated Proxmox (pve1..pve3, cluster
// addresses 192.0.2.11..13) with a Talos cluster's secrets and
// configurations, on which each case builds its internal network, its
// router and its VMs.
type netFixture struct {
	t                 *testing.T
	px, talos, k8s    *engine.Server
	cc                any
	cpCfg, workerCfg  string
	cps               map[string]bool
	vmid              int
	kubeconfig        string
	clusterEndpointIP string
}

func newNetFixture(t *testing.T, w engine.World, endpoint string) *netFixture {
	t.Helper()
	px := simtest.NewTestServer(t, "proxmoxve", w)
	tl, _ := simulator.New("talos", px.Store.Dir)
	k8s, _ := simulator.New("kubernetes", px.Store.Dir)
	f := &netFixture{t: t, px: px, talos: tl, k8s: k8s, cps: map[string]bool{}, vmid: 9100, clusterEndpointIP: endpoint}
	_, sec, err := simtest.Create(t, tl, talos.TokenSecrets, "secrets", map[string]any{"talosVersion": "v1.12.0"})
	simtest.NoErr(t, err)
	f.cc = sec["clientConfiguration"]
	gen := func(typ string) string {
		args := engine.Normalise(map[string]any{"clusterName": "net", "clusterEndpoint": "https://" + endpoint + ":6443", "machineType": typ,
			"machineSecrets": sec["machineSecrets"], "talosVersion": "v1.12.0", "kubernetesVersion": "v1.35.0"}).(map[string]any)
		out, err := talos.GetMachineConfiguration(tl, nil, args)
		simtest.NoErr(t, err)
		return out["machineConfiguration"].(string)
	}
	f.cpCfg, f.workerCfg = gen("controlplane"), gen("worker")
	return f
}

func threeNodes() engine.World {
	return engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"},
		engine.WorldNode{Name: "pve3", SSHHost: "192.0.2.13"})
}

func (f *netFixture) tx(fn func(tx *engine.Tx)) {
	f.t.Helper()
	simtest.NoErr(f.t, f.px.Store.Update(func(tx *engine.Tx) error { fn(tx); return nil }))
}

// bridge creates bridge name on node with ports.
func (f *netFixture) bridge(node, name string, ports ...string) {
	f.t.Helper()
	v := map[string]any{"nodeName": node, "name": name}
	if len(ports) > 0 {
		v["ports"] = ports
	}
	_, _, err := simtest.Create(f.t, f.px, proxmox.TokenBridge, "br-"+node+"-"+name, v)
	simtest.NoErr(f.t, err)
}

func (f *netFixture) vlan(node, name string) {
	f.t.Helper()
	_, _, err := simtest.Create(f.t, f.px, proxmox.TokenVLAN, "vlan-"+node+"-"+name, map[string]any{"nodeName": node, "name": name})
	simtest.NoErr(f.t, err)
}

// router places a running container with a NIC on vmbr0 and one on
// bridge, on node (internalMTU 0: unset).
func (f *netFixture) router(node, bridge string, internalMTU int) {
	f.vmid++
	id := f.vmid
	f.tx(func(tx *engine.Tx) {
		tx.State.Guests[id] = &engine.Guest{VMID: id, Kind: "lxc", Node: node, Name: "router-" + node, Started: true,
			Bridges: []string{"vmbr0", bridge}, MTUs: []int{0, internalMTU}, Addresses: []string{"192.168.1.60", "10.0.0.1"},
			NICAddresses: []string{"192.168.1.60", "10.0.0.1"}}
	})
}

// vm creates a VM on node with its NIC on bridge at addr (mtu 0: unset).
func (f *netFixture) vm(node, bridge, addr string, mtu int, cp bool) error {
	f.t.Helper()
	f.vmid++
	v := simtest.VMArgs(node, f.vmid, addr, bridge, "", 2, 2048)
	v["name"] = "vm-" + addr
	if mtu > 0 {
		v["networkDevices"].([]any)[0].(map[string]any)["mtu"] = mtu
	}
	f.cps[addr] = cp
	_, _, err := simtest.Create(f.t, f.px, proxmox.TokenVM, fmt.Sprintf("vm-%d", f.vmid), v)
	return err
}

func (f *netFixture) apply(addr string, patches ...string) error {
	f.t.Helper()
	cfg := f.workerCfg
	if f.cps[addr] {
		cfg = f.cpCfg
	}
	_, _, err := simtest.Create(f.t, f.talos, talos.TokenApply, "apply-"+addr, map[string]any{"node": addr, "clientConfiguration": f.cc,
		"machineConfigurationInput": cfg, "configPatches": patches})
	return err
}

func (f *netFixture) bootstrap(addr string) error {
	_, _, err := simtest.Create(f.t, f.talos, talos.TokenBootstrap, "bootstrap", map[string]any{"node": addr, "clientConfiguration": f.cc})
	return err
}

func (f *netFixture) health(cps, workers []string) error {
	args := engine.Normalise(map[string]any{"clientConfiguration": f.cc, "controlPlaneNodes": cps, "workerNodes": workers,
		"endpoints": cps[:1], "skipKubernetesChecks": true}).(map[string]any)
	return f.px.Store.Update(func(tx *engine.Tx) error { _, err := talos.GetHealth(f.talos, tx, args); return err })
}

// kubeAPI is the Kubernetes API as the Helm provider and kubectl reach it.
func (f *netFixture) kubeAPI() error {
	var out map[string]any
	simtest.NoErr(f.t, f.px.Store.Update(func(tx *engine.Tx) error {
		c, o, err := talos.IssueKubeconfig(tx, engine.Normalise(map[string]any{"node": firstCP(f.cps), "clientConfiguration": f.cc}).(map[string]any))
		_ = c
		out = o
		return err
	}))
	return f.px.Store.Update(func(tx *engine.Tx) error { _, err := kubeapi.ClusterOf(tx, out["kubeconfigRaw"].(string)); return err })
}

func firstCP(cps map[string]bool) string {
	best := ""
	for a, cp := range cps {
		if cp && (best == "" || a < best) {
			best = a
		}
	}
	return best
}

// sdn writes an applied VXLAN zone and VNet (what `pvesh set /cluster/sdn`
// leaves; pvesh itself is tested in TestPvesh).
func (f *netFixture) sdn(vnet string, mtu int, peers ...string) {
	f.tx(func(tx *engine.Tx) {
		tx.State.SDNRunning.Zones["zone1"] = &engine.SDNZone{Type: "vxlan", Peers: peers, MTU: mtu}
		tx.State.SDNRunning.VNets[vnet] = &engine.SDNVNet{Zone: "zone1", Tag: 4242}
		// Every node reloaded it.
		tx.State.SDNVersion++
		if tx.State.SDNNodeVersions == nil {
			tx.State.SDNNodeVersions = map[string]int{}
		}
		for _, n := range tx.World.Nodes {
			tx.State.SDNNodeVersions[n.Name] = tx.State.SDNVersion
		}
	})
}

// TestDataPlane checks the data-plane rules (docs/simulation.md, "Data
// plane"), one case per rule.
func TestDataPlane(t *testing.T) {
	all := []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"}
	cases := []struct {
		rule  string
		world func(w *engine.World)
		// build creates the network, router and VMs; it returns the error
		// the case expects from the step it names (or nil).
		build func(f *netFixture) error
		want  string
	}{
		{"a portless bridge is local: the router on pve1 does not reach a VM on pve2", nil, func(f *netFixture) error {
			f.bridge("pve1", "vmbr2")
			f.bridge("pve2", "vmbr2")
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			simtest.NoErr(f.t, f.vm("pve2", "vmbr2", "10.0.0.12", 0, true))
			simtest.NoErr(f.t, f.apply("10.0.0.11"))
			return f.apply("10.0.0.12")
		}, "dial tcp 10.0.0.12:50000: connect: no route to host (vm-10.0.0.12 is on segment pve2/vmbr2; the router's internal NIC is on pve1/vmbr2)"},
		{"a VM on the router's segment is reached through the router", nil, func(f *netFixture) error {
			f.bridge("pve1", "vmbr2")
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			return f.apply("10.0.0.11")
		}, ""},
		{"a VM on Pulumi's own segment (vmbr0) is reached directly, without a router", nil, func(f *netFixture) error {
			simtest.NoErr(f.t, f.vm("pve2", "vmbr0", "10.0.0.11", 0, true))
			return f.apply("10.0.0.11")
		}, ""},
		{"no router: the message says so", nil, func(f *netFixture) error {
			f.bridge("pve1", "vmbr2")
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			return f.apply("10.0.0.11")
		}, "no router joins it to vmbr0 (shared across nodes), where Pulumi runs"},
		{"a stopped router routes nothing", nil, func(f *netFixture) error {
			f.bridge("pve1", "vmbr2")
			f.router("pve1", "vmbr2", 0)
			f.tx(func(tx *engine.Tx) { tx.State.Guests[f.vmid].Started = false })
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			return f.apply("10.0.0.11")
		}, "the router router-pve1 is stopped"},
		{"a rebooting router routes nothing", nil, func(f *netFixture) error {
			f.bridge("pve1", "vmbr2")
			f.router("pve1", "vmbr2", 0)
			id := f.vmid
			f.tx(func(tx *engine.Tx) {
				tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: id, Kind: "lxc", Start: time.Now(), End: time.Now().Add(time.Hour)})
			})
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			return f.apply("10.0.0.11")
		}, "the router router-pve1 is rebooting"},
		{"VLAN: bridges whose port is VLAN 42 of the uplink are one segment across nodes", nil, func(f *netFixture) error {
			for _, n := range []string{"pve1", "pve2"} {
				f.vlan(n, "eno1.42")
				f.bridge(n, "vmbr2", "eno1.42")
			}
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve2", "vmbr2", "10.0.0.12", 0, true))
			return f.apply("10.0.0.12")
		}, ""},
		{"VLAN: a VLAN the switch does not carry stays on its node", func(w *engine.World) { w.SwitchVLANs = []int{10} }, func(f *netFixture) error {
			for _, n := range []string{"pve1", "pve2"} {
				f.vlan(n, "eno1.42")
				f.bridge(n, "vmbr2", "eno1.42")
			}
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve2", "vmbr2", "10.0.0.12", 0, true))
			return f.apply("10.0.0.12")
		}, "the switch does not carry VLAN 42 to eno1"},
		{"VLAN: a VLAN of an interface that is not an uplink stays on its node", nil, func(f *netFixture) error {
			for _, n := range []string{"pve1", "pve2"} {
				f.vlan(n, "eno9.42")
				f.bridge(n, "vmbr2", "eno9.42")
			}
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve2", "vmbr2", "10.0.0.12", 0, true))
			return f.apply("10.0.0.12")
		}, "no route to host"},
		{"VLAN: a port belongs to one bridge only", nil, func(f *netFixture) error {
			f.vlan("pve1", "eno1.42")
			f.bridge("pve1", "vmbr2", "eno1.42")
			_, _, err := simtest.Create(f.t, f.px, proxmox.TokenBridge, "br3", map[string]any{"nodeName": "pve1", "name": "vmbr3", "ports": []string{"eno1.42"}})
			return err
		}, "eno1.42 is already used on interface 'vmbr2'"},
		{"VXLAN: an applied VNet is one segment across the zone's peers", nil, func(f *netFixture) error {
			f.sdn("vprod", 0, all...)
			f.router("pve1", "vprod", 0)
			simtest.NoErr(f.t, f.vm("pve3", "vprod", "10.0.0.13", 1450, true))
			return f.apply("10.0.0.13")
		}, ""},
		{"VXLAN: a node that is not a peer has no VNet bridge", nil, func(f *netFixture) error {
			f.sdn("vprod", 0, all[:2]...)
			return f.vm("pve3", "vprod", "10.0.0.13", 1450, true)
		}, `bridge "vprod" does not exist on node "pve3"`},
		{"VXLAN: a VNet that is only configured (not applied) has no bridge yet", nil, func(f *netFixture) error {
			f.tx(func(tx *engine.Tx) {
				tx.State.SDN.Zones["zone1"] = &engine.SDNZone{Type: "vxlan", Peers: all}
				tx.State.SDN.VNets["vprod"] = &engine.SDNVNet{Zone: "zone1", Tag: 1}
			})
			return f.vm("pve1", "vprod", "10.0.0.11", 1450, true)
		}, `bridge "vprod" does not exist on node "pve1"`},
		{"VXLAN: a VM NIC at 1500 on a 1450 VNet fails its first apply", nil, func(f *netFixture) error {
			f.sdn("vprod", 0, all...)
			f.router("pve1", "vprod", 0)
			simtest.NoErr(f.t, f.vm("pve2", "vprod", "10.0.0.12", 0, true))
			return f.apply("10.0.0.12")
		}, "sends frames up to MTU 1500 on segment SDN VNet vprod (VXLAN zone zone1), whose MTU is 1450"},
		{"VXLAN: the zone's mtu is the segment's", nil, func(f *netFixture) error {
			f.sdn("vprod", 1400, all...)
			f.router("pve1", "vprod", 0)
			simtest.NoErr(f.t, f.vm("pve2", "vprod", "10.0.0.12", 1450, true))
			return f.apply("10.0.0.12")
		}, "whose MTU is 1400"},
		{"VXLAN: the Talos link mtu is what the guest sends", nil, func(f *netFixture) error {
			f.sdn("vprod", 0, all...)
			f.router("pve1", "vprod", 0)
			simtest.NoErr(f.t, f.vm("pve2", "vprod", "10.0.0.12", 1450, true))
			return f.apply("10.0.0.12", `machine: {network: {interfaces: [{deviceSelector: {hardwareAddr: "02:00:00:00:00:01"}, mtu: 1500}]}}`)
		}, "sends frames up to MTU 1500"},
		{"VXLAN: a router NIC above the segment's MTU drops Pulumi's frames", nil, func(f *netFixture) error {
			f.sdn("vprod", 0, all...)
			f.router("pve1", "vprod", 1500)
			simtest.NoErr(f.t, f.vm("pve2", "vprod", "10.0.0.12", 1450, true))
			return f.apply("10.0.0.12")
		}, "the router's NIC there has MTU 1500"},
		{"existing: a World bridge declared shared is one segment", func(w *engine.World) {
			w.Bridges = []string{"vmbr0", "vmbr2"}
			w.SharedBridges = []string{"vmbr0", "vmbr2"}
		}, func(f *netFixture) error {
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve3", "vmbr2", "10.0.0.13", 0, true))
			return f.apply("10.0.0.13")
		}, ""},
		{"existing: a World bridge not declared shared is local to each node", func(w *engine.World) {
			w.Bridges = []string{"vmbr0", "vmbr2"}
		}, func(f *netFixture) error {
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve3", "vmbr2", "10.0.0.13", 0, true))
			return f.apply("10.0.0.13")
		}, "vm-10.0.0.13 is on segment pve3/vmbr2; the router's internal NIC is on pve1/vmbr2"},
		{"etcd: a control plane on another segment than the members does not join (health says why)", nil, func(f *netFixture) error {
			// Two routers: Pulumi reaches both nodes, but they are two segments.
			for _, n := range []string{"pve1", "pve2"} {
				f.bridge(n, "vmbr2")
				f.router(n, "vmbr2", 0)
			}
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			simtest.NoErr(f.t, f.vm("pve2", "vmbr2", "10.0.0.12", 0, true))
			simtest.NoErr(f.t, f.apply("10.0.0.11"))
			simtest.NoErr(f.t, f.apply("10.0.0.12"))
			simtest.NoErr(f.t, f.bootstrap("10.0.0.11"))
			return f.health([]string{"10.0.0.11", "10.0.0.12"}, nil)
		}, "etcd join: dial tcp 10.0.0.11:2380: connect: no route to host (vm-10.0.0.12 is on segment pve2/vmbr2; vm-10.0.0.11 is on pve1/vmbr2)"},
		{"etcd: control planes on one VXLAN segment join", nil, func(f *netFixture) error {
			f.sdn("vprod", 0, all...)
			f.router("pve1", "vprod", 0)
			simtest.NoErr(f.t, f.vm("pve1", "vprod", "10.0.0.11", 1450, true))
			simtest.NoErr(f.t, f.vm("pve2", "vprod", "10.0.0.12", 1450, true))
			simtest.NoErr(f.t, f.vm("pve3", "vprod", "10.0.0.21", 1450, false))
			simtest.NoErr(f.t, f.apply("10.0.0.11"))
			simtest.NoErr(f.t, f.bootstrap("10.0.0.11"))
			simtest.NoErr(f.t, f.apply("10.0.0.12"))
			simtest.NoErr(f.t, f.apply("10.0.0.21"))
			return f.health([]string{"10.0.0.11", "10.0.0.12"}, []string{"10.0.0.21"})
		}, ""},
		{"VIP: a worker off the VIP holder's segment cannot register its kubelet", nil, func(f *netFixture) error {
			f.clusterEndpointIP = "10.0.0.10"
			for _, n := range []string{"pve1", "pve2"} {
				f.bridge(n, "vmbr2")
				f.router(n, "vmbr2", 0)
			}
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			simtest.NoErr(f.t, f.vm("pve2", "vmbr2", "10.0.0.21", 0, false))
			simtest.NoErr(f.t, f.apply("10.0.0.11"))
			simtest.NoErr(f.t, f.apply("10.0.0.21"))
			simtest.NoErr(f.t, f.bootstrap("10.0.0.11"))
			return f.health([]string{"10.0.0.11"}, []string{"10.0.0.21"})
		}, "kubelet: dial tcp 10.0.0.10:6443: connect: no route to host (vm-10.0.0.21 is on segment pve2/vmbr2; the VIP 10.0.0.10, held by vm-10.0.0.11, is on pve1/vmbr2)"},
		{"VIP: the Kubernetes API answers only on the holder's segment", nil, func(f *netFixture) error {
			// Pulumi reaches cp1 (pve1) through router A for the Talos
			// API; once cp1 holds the VIP, only router A's segment has it.
			f.bridge("pve1", "vmbr2")
			f.bridge("pve2", "vmbr2")
			f.router("pve1", "vmbr2", 0)
			simtest.NoErr(f.t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
			simtest.NoErr(f.t, f.apply("10.0.0.11"))
			simtest.NoErr(f.t, f.bootstrap("10.0.0.11"))
			simtest.NoErr(f.t, f.kubeAPI())
			// Move the router to pve2: the VIP is out of reach.
			f.tx(func(tx *engine.Tx) {
				for _, g := range tx.State.Guests {
					if g.Kind == "lxc" {
						g.Node = "pve2"
					}
				}
			})
			return f.kubeAPIVia()
		}, "dial tcp 10.0.0.10:6443: connect: no route to host (the VIP 10.0.0.10, held by vm-10.0.0.11, is on segment pve1/vmbr2; the router's internal NIC is on pve2/vmbr2)"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			w := threeNodes()
			if c.world != nil {
				c.world(&w)
			}
			endpoint := "10.0.0.11"
			if strings.HasPrefix(c.rule, "VIP") {
				endpoint = "10.0.0.10"
			}
			f := newNetFixture(t, w, endpoint)
			err := c.build(f)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("want success, got %v", err)
			case c.want != "" && err == nil:
				t.Errorf("want an error containing %q, got success", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Errorf("want an error containing\n  %q\ngot\n  %v", c.want, err)
			}
		})
	}
}

// kubeAPIVia checks the Kubernetes API with the kubeconfig issued before.
func (f *netFixture) kubeAPIVia() error {
	return f.px.Store.Update(func(tx *engine.Tx) error {
		for _, c := range tx.State.Clusters {
			return network.KubeAPIReachable(tx, c, time.Now())
		}
		return fmt.Errorf("no cluster")
	})
}

// The talos resources retry a node whose router is rebooting, as they
// retry a rebooting node: the await lasts until the router is back.
func TestAwaitRebootingRouter(t *testing.T) {
	f := newNetFixture(t, threeNodes(), "10.0.0.11")
	f.bridge("pve1", "vmbr2")
	f.router("pve1", "vmbr2", 0)
	simtest.NoErr(t, f.vm("pve1", "vmbr2", "10.0.0.11", 0, true))
	id := f.vmid - 1
	f.tx(func(tx *engine.Tx) {
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: id, Kind: "lxc", Start: time.Now(), End: time.Now().Add(time.Minute)})
	})
	var d time.Duration
	f.tx(func(tx *engine.Tx) {
		d = talos.AwaitNodes("node")(tx, map[string]any{"node": "10.0.0.11"}, 10*time.Minute)
	})
	if d < 50*time.Second || d > 61*time.Second {
		t.Errorf("await %v, want the router's remaining minute", d)
	}
	f.tx(func(tx *engine.Tx) {
		d = talos.AwaitNodes("node")(tx, map[string]any{"node": "10.0.0.11"}, 30*time.Second)
	})
	if d != 0 {
		t.Errorf("await %v beyond the retry window, want 0 (fail at once)", d)
	}
}
