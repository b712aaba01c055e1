package clis_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/sdn"
	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// pveshWorld is four Proxmox nodes, pveN at 192.0.2.1N.
func pveshWorld() engine.World {
	return engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"},
		engine.WorldNode{Name: "pve3", SSHHost: "192.0.2.13"}, engine.WorldNode{Name: "pve4", SSHHost: "192.0.2.14"})
}

// sdaVXLAN is SDA's zone zprod with VNet vprod on the nodes whose
// addresses (192.0.2.1N, pveN) are the peers.
func sdaVXLAN(peers string, mtu, tag int) sdn.VXLAN {
	x := sdn.VXLAN{Zone: "zprod", VNet: "vprod", VNI: tag, Peers: strings.Split(peers, ","), MTU: mtu, ReadyTimeout: 1}
	for _, p := range x.Peers {
		x.Nodes = append(x.Nodes, "pve"+p[len(p)-1:])
	}
	if err := x.Validate(); err != nil {
		panic(err)
	}
	return x
}

// sdnScript is the product's create/update script of SDA's VXLAN zone and
// VNet (components/sdn).
func sdnScript(peers string, mtu, tag int) string { return sdn.ApplyScript(sdaVXLAN(peers, mtu, tag)) }

// sdnDelete is the product's delete script.
var sdnDelete = sdn.DeleteScript(sdaVXLAN("192.0.2.11", 1450, 1))

// runScripts runs scripts in turn as remote commands on pve1 and returns
// the first error.
func runScripts(t *testing.T, s *engine.Server, scripts ...string) error {
	t.Helper()
	for i, sc := range scripts {
		if _, _, err := simtest.Create(t, s, clis.TokenRemoteCommand, fmt.Sprintf("sdn%d", i), map[string]any{"connection": map[string]any{"host": "192.0.2.11"}, "create": sc}); err != nil {
			return err
		}
	}
	return nil
}

// runPvesh runs the simulated pvesh on node and returns what it printed.
func runPvesh(t *testing.T, s *engine.Server, node string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := clis.Pvesh(s.Store, node, args, &out)
	return out.String(), err
}

// TestPvesh checks the simulated pvesh, through remote command scripts as
// the product runs it: the SDN forms, the edited vs the applied
// configuration, and the VNet's bridge on the zone's peers only.
func TestPvesh(t *testing.T) {
	const peers3 = "192.0.2.11,192.0.2.12,192.0.2.13"
	cases := []struct {
		rule    string
		scripts []string
		want    string
		// bridges: node -> whether vprod exists there afterwards.
		bridges map[string]bool
	}{
		{"create and apply: the VNet's bridge appears on every peer, not elsewhere", []string{sdnScript(peers3, 1450, 4242)}, "",
			map[string]bool{"pve1": true, "pve2": true, "pve3": true, "pve4": false}},
		{"the script is idempotent (set on the second run)", []string{sdnScript(peers3, 1450, 4242), sdnScript(peers3, 1450, 4242)}, "",
			map[string]bool{"pve1": true}},
		{"a peer removed loses the bridge at the next apply", []string{sdnScript(peers3, 1450, 4242), sdnScript("192.0.2.11,192.0.2.12", 1450, 4242)}, "",
			map[string]bool{"pve1": true, "pve3": false}},
		{"without the apply nothing exists on the nodes", []string{"pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers " + peers3 +
			" && pvesh create /cluster/sdn/vnets --vnet vprod --zone zprod --tag 1"}, "", map[string]bool{"pve1": false}},
		{"get of a missing zone exits non-zero", []string{"pvesh get /cluster/sdn/zones/zprod"}, "sdn zone 'zprod' does not exist", nil},
		{"create of an existing zone is refused", []string{sdnScript(peers3, 1450, 1), "pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers " + peers3},
			"sdn zone 'zprod' already defined", nil},
		{"a VNet needs an existing zone", []string{"pvesh create /cluster/sdn/vnets --vnet vprod --zone nope --tag 1"}, "zone 'nope' doesn't exist", nil},
		{"a VXLAN tag belongs to one VNet", []string{sdnScript(peers3, 1450, 7), "pvesh create /cluster/sdn/vnets --vnet vother --zone zprod --tag 7"},
			"tag 7 already exists in vnet: vprod", nil},
		{"a zone a VNet uses cannot be deleted", []string{sdnScript(peers3, 1450, 7), "pvesh delete /cluster/sdn/zones/zprod"}, "vnet 'vprod' uses it", nil},
		{"the delete script removes VNet, zone and, applied, the bridges", []string{sdnScript(peers3, 1450, 7), sdnDelete}, "",
			map[string]bool{"pve1": false, "pve2": false}},
		{"a stack node that is not a peer has no VNet: the apply fails naming it", []string{sdn.ApplyScript(sdn.VXLAN{Zone: "zprod", VNet: "vprod", VNI: 7,
			Peers: []string{"192.0.2.11"}, MTU: 1450, Nodes: []string{"pve1", "pve2"}, ReadyTimeout: 1})},
			"  pve2: error (vnet is not generated. Please check the 'reload network' task log.)", map[string]bool{"pve1": true, "pve2": false}},
		{"other paths are refused", []string{"pvesh get /nodes/pve1/network"}, "simulated pvesh supports only /cluster/sdn and /nodes/N/sdn/zones/Z/content", nil},
		{"other zone types are refused", []string{"pvesh create /cluster/sdn/zones --zone z1 --type vlan --bridge vmbr0"}, "option --bridge is not simulated", nil},
		{"other options are refused", []string{sdnScript(peers3, 1450, 7), "pvesh set /cluster/sdn/vnets/vprod --alias x"}, "option --alias is not simulated", nil},
		{"other output formats are refused", []string{"pvesh get /cluster/sdn/zones --output-format yaml"}, "only --output-format json is simulated", nil},
		{"other verbs are refused", []string{"pvesh ls /cluster/sdn/zones"}, "is not simulated", nil},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			s := simtest.NewTestServer(t, "command", pveshWorld())
			err := runScripts(t, s, c.scripts...)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
			simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
				for node, want := range c.bridges {
					if got := proxmox.BridgeExists(tx, node, "vprod"); got != want {
						t.Errorf("bridge vprod on %s: exists %v, want %v", node, got, want)
					}
				}
				return nil
			}))
		})
	}
}

// TestPveshPendingListing: `--pending 1` lists every object as upstream's
// pending_config does: new, changed (the edited value under pending, the
// running one on top), deleted, and unchanged objects without a state.
func TestPveshPendingListing(t *testing.T) {
	s := simtest.NewTestServer(t, "command", pveshWorld())
	list := func(kind string) string {
		t.Helper()
		out, err := runPvesh(t, s, "pve1", "get", "/cluster/sdn/"+kind, "--pending", "1", "--output-format", "json")
		simtest.NoErr(t, err)
		return strings.TrimSpace(out)
	}
	step := func(args ...string) {
		t.Helper()
		_, err := runPvesh(t, s, "pve1", args...)
		simtest.NoErr(t, err)
	}
	expect := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	expect("nothing configured", list("zones")+list("vnets"), "[][]")
	step("create", "/cluster/sdn/zones", "--zone", "za", "--type", "vxlan", "--peers", "192.0.2.11", "--mtu", "1450")
	step("create", "/cluster/sdn/vnets", "--vnet", "va", "--zone", "za", "--tag", "5")
	expect("new zone", list("zones"), `[{"pending":{"mtu":1450,"peers":"192.0.2.11"},"state":"new","type":"vxlan","zone":"za"}]`)
	expect("new vnet", list("vnets"), `[{"pending":{"tag":5,"zone":"za"},"state":"new","type":"vnet","vnet":"va"}]`)
	step("set", "/cluster/sdn")
	expect("applied zone", list("zones"), `[{"mtu":1450,"peers":"192.0.2.11","type":"vxlan","zone":"za"}]`)
	expect("applied vnet", list("vnets"), `[{"tag":5,"type":"vnet","vnet":"va","zone":"za"}]`)
	step("set", "/cluster/sdn/zones/za", "--mtu", "1400")
	step("delete", "/cluster/sdn/vnets/va")
	expect("changed zone", list("zones"), `[{"mtu":1450,"peers":"192.0.2.11","pending":{"mtu":1400},"state":"changed","type":"vxlan","zone":"za"}]`)
	expect("deleted vnet", list("vnets"), `[{"pending":{},"state":"deleted","tag":5,"type":"vnet","vnet":"va","zone":"za"}]`)
	out, err := runPvesh(t, s, "pve1", "get", "/cluster/sdn/zones", "--pending", "maybe")
	if err == nil || !strings.Contains(err.Error(), "pending: type check ('boolean') failed") {
		t.Errorf("--pending maybe: %q, %v", out, err)
	}
}

// TestPveshApplyCommitsEveryPendingEdit: `pvesh set /cluster/sdn` applies
// what anyone edited, not only what the caller did.
func TestPveshApplyCommitsEveryPendingEdit(t *testing.T) {
	s := simtest.NewTestServer(t, "command", pveshWorld())
	simtest.NoErr(t, runScripts(t, s, "pvesh create /cluster/sdn/zones --zone zother --type vxlan --peers 192.0.2.13,192.0.2.14"+
		" && pvesh create /cluster/sdn/vnets --vnet vother --zone zother --tag 99"))
	_, err := runPvesh(t, s, "pve1", "set", "/cluster/sdn")
	simtest.NoErr(t, err)
	simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
		if tx.State.SDNRunning.VNets["vother"] == nil || tx.State.SDNRunning.Zones["zother"] == nil {
			t.Errorf("the apply left someone else's pending zone and VNet out: running %+v", tx.State.SDNRunning)
		}
		if !proxmox.BridgeExists(tx, "pve4", "vother") {
			t.Errorf("the other VNet's bridge is not on pve4")
		}
		return nil
	}))
}

// TestPveshReloadFailure: a node whose network reload fails is only
// warned about; the apply exits 0, and that node's zone content reports
// the VNet pending until a later apply reloads it.
func TestPveshReloadFailure(t *testing.T) {
	s := simtest.NewTestServer(t, "command", pveshWorld())
	simtest.NoErr(t, engine.WriteFaults(s.Store.Dir, engine.Faults{SDNReloadFails: []string{"pve2"}}))
	const setup = "pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers 192.0.2.11,192.0.2.12" +
		" && pvesh create /cluster/sdn/vnets --vnet vprod --zone zprod --tag 7 && pvesh set /cluster/sdn"
	simtest.NoErr(t, runScripts(t, s, setup))
	content := func(node string) string {
		t.Helper()
		out, err := runPvesh(t, s, node, "get", "/nodes/"+node+"/sdn/zones/zprod/content", "--output-format", "json")
		simtest.NoErr(t, err)
		return strings.TrimSpace(out)
	}
	want := map[string]string{
		"pve1": `[{"status":"available","vnet":"vprod"}]`,
		"pve2": `[{"status":"pending","statusmsg":"local sdn network configuration is not yet generated, please reload","vnet":"vprod"}]`,
	}
	for node, w := range want {
		if got := content(node); got != w {
			t.Errorf("content on %s after its reload failed:\n got %s\nwant %s", node, got, w)
		}
	}
	st, err := engine.ReadState(s.Store.Dir)
	simtest.NoErr(t, err)
	if st.NetworkReloads["pve2"] != 0 || st.NetworkReloads["pve1"] != 1 {
		t.Errorf("network reloads %v: want pve1 once, pve2 never", st.NetworkReloads)
	}
	// The data plane: the VNet's bridge exists where the reload ran only.
	simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
		if _, ok := network.VNetOn(tx, "pve1", "vprod"); !ok {
			t.Error("pve1 reloaded but has no vprod bridge")
		}
		if _, ok := network.VNetOn(tx, "pve2", "vprod"); ok {
			t.Error("pve2's reload failed, yet it has the vprod bridge")
		}
		return nil
	}))
	// The node recovers, reloads at the next apply; then fails again.
	simtest.NoErr(t, engine.WriteFaults(s.Store.Dir, engine.Faults{}))
	_, err = runPvesh(t, s, "pve1", "set", "/cluster/sdn")
	simtest.NoErr(t, err)
	if got := content("pve2"); got != want["pve1"] {
		t.Errorf("content on pve2 after a good reload: %s", got)
	}
	simtest.NoErr(t, engine.WriteFaults(s.Store.Dir, engine.Faults{SDNReloadFails: []string{"pve2"}}))
	out, err := runPvesh(t, s, "pve1", "set", "/cluster/sdn")
	simtest.NoErr(t, err)
	if !strings.Contains(out, "network reload of pve2 failed") {
		t.Errorf("the apply does not warn about pve2: %q", out)
	}
	if got := content("pve2"); !strings.Contains(got, "local sdn network configuration is too old, please reload") {
		t.Errorf("content on pve2 after a failed reload: %s", got)
	}
	if _, err := runPvesh(t, s, "pve1", "get", "/nodes/pve9/sdn/zones/zprod/content"); err == nil {
		t.Errorf("content of a node that does not exist: no error")
	}
}

// TestSDNScriptsApplySafely runs the product's scripts against the
// simulated pvesh: they refuse while someone else's SDN edit is pending,
// and the apply fails naming a node without the VNet.
func TestSDNScriptsApplySafely(t *testing.T) {
	const peers3 = "192.0.2.11,192.0.2.12,192.0.2.13"
	const foreignZone = "pvesh create /cluster/sdn/zones --zone zother --type vxlan --peers 192.0.2.14"
	t.Run("a foreign pending zone: the apply refuses and applies nothing", func(t *testing.T) {
		s := simtest.NewTestServer(t, "command", pveshWorld())
		simtest.NoErr(t, runScripts(t, s, foreignZone))
		err := runScripts(t, s, sdnScript(peers3, 1450, 7))
		if err == nil || !strings.Contains(err.Error(), "  zone zother: new\n") || !strings.Contains(err.Error(), "not changing SDN zone zprod and VNet vprod") {
			t.Fatalf("want a refusal naming zone zother, got %v", err)
		}
		st, err := engine.ReadState(s.Store.Dir)
		simtest.NoErr(t, err)
		if st.SDN.Zones["zprod"] != nil || len(st.SDNRunning.Zones) != 0 || st.SDNVersion != 0 {
			t.Errorf("the refused apply edited or applied SDN: edited %+v, running %+v", st.SDN, st.SDNRunning)
		}
	})
	t.Run("a foreign pending VNet change: the delete refuses and removes nothing", func(t *testing.T) {
		s := simtest.NewTestServer(t, "command", pveshWorld())
		simtest.NoErr(t, runScripts(t, s, sdnScript(peers3, 1450, 7),
			"pvesh create /cluster/sdn/zones --zone zother --type vxlan --peers 192.0.2.14 && pvesh create /cluster/sdn/vnets --vnet vother --zone zother --tag 8 && pvesh set /cluster/sdn",
			"pvesh set /cluster/sdn/vnets/vother --tag 9"))
		err := runScripts(t, s, sdnDelete)
		if err == nil || !strings.Contains(err.Error(), "  vnet vother (zone zother): changed\n") || !strings.Contains(err.Error(), "not removing SDN zone zprod") {
			t.Fatalf("want a refusal naming vnet vother, got %v", err)
		}
		st, err := engine.ReadState(s.Store.Dir)
		simtest.NoErr(t, err)
		if st.SDN.VNets["vprod"] == nil || st.SDNRunning.VNets["vprod"] == nil || st.SDNRunning.VNets["vother"].Tag != 8 {
			t.Errorf("the refused delete edited or applied SDN: edited %+v, running %+v", st.SDN, st.SDNRunning)
		}
	})
	t.Run("SDA's own pending zone (a run that stopped halfway) does not stop the apply", func(t *testing.T) {
		s := simtest.NewTestServer(t, "command", pveshWorld())
		simtest.NoErr(t, runScripts(t, s, "pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers 192.0.2.11", sdnScript(peers3, 1450, 7)))
	})
	t.Run("a node whose reload failed: the apply fails naming it", func(t *testing.T) {
		s := simtest.NewTestServer(t, "command", pveshWorld())
		simtest.NoErr(t, engine.WriteFaults(s.Store.Dir, engine.Faults{SDNReloadFails: []string{"pve2"}}))
		err := runScripts(t, s, sdnScript(peers3, 1450, 7))
		want := "SDA: SDN VNet vprod is not available 1 s after applying SDN on:\n  pve2: pending (local sdn network configuration is not yet generated, please reload)\n"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("want an error containing %q, got %v", want, err)
		}
		_, listed, _ := strings.Cut(err.Error(), "after applying SDN on:\n")
		listed, _, _ = strings.Cut(listed, "\nApplying SDN")
		if listed != "  pve2: pending (local sdn network configuration is not yet generated, please reload)" {
			t.Errorf("the error lists other nodes than pve2: %q", listed)
		}
		// Fixed, the next run succeeds.
		simtest.NoErr(t, engine.WriteFaults(s.Store.Dir, engine.Faults{}))
		simtest.NoErr(t, runScripts(t, s, sdnScript(peers3, 1450, 7)))
	})
}
