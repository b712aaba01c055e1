package simulator

import (
	"fmt"
	"strings"
	"testing"
)

// sdnScript is the idempotent create/update script of a VXLAN zone and
// VNet, in the forms the product's command uses.
func sdnScript(peers string, mtu, tag int) string {
	return fmt.Sprintf(`set -eu
if pvesh get /cluster/sdn/zones/zprod >/dev/null 2>&1; then
  pvesh set /cluster/sdn/zones/zprod --peers %[1]s --mtu %[2]d
else
  pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers %[1]s --mtu %[2]d
fi
if pvesh get /cluster/sdn/vnets/vprod >/dev/null 2>&1; then
  pvesh set /cluster/sdn/vnets/vprod --zone zprod --tag %[3]d
else
  pvesh create /cluster/sdn/vnets --vnet vprod --zone zprod --tag %[3]d
fi
pvesh set /cluster/sdn
`, peers, mtu, tag)
}

const sdnDelete = `set -eu
if pvesh get /cluster/sdn/vnets/vprod >/dev/null 2>&1; then pvesh delete /cluster/sdn/vnets/vprod; fi
if pvesh get /cluster/sdn/zones/zprod >/dev/null 2>&1; then pvesh delete /cluster/sdn/zones/zprod; fi
pvesh set /cluster/sdn
`

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
		{"other paths are refused", []string{"pvesh get /nodes/pve1/network"}, "simulated pvesh supports only /cluster/sdn", nil},
		{"other zone types are refused", []string{"pvesh create /cluster/sdn/zones --zone z1 --type vlan --bridge vmbr0"}, "option --bridge is not simulated", nil},
		{"other options are refused", []string{sdnScript(peers3, 1450, 7), "pvesh set /cluster/sdn/vnets/vprod --alias x"}, "option --alias is not simulated", nil},
		{"other verbs are refused", []string{"pvesh ls /cluster/sdn/zones"}, "is not simulated", nil},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			s := newTestServer(t, "command", DefaultWorld(WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, WorldNode{Name: "pve2", SSHHost: "192.0.2.12"},
				WorldNode{Name: "pve3", SSHHost: "192.0.2.13"}, WorldNode{Name: "pve4", SSHHost: "192.0.2.14"}))
			var err error
			for i, sc := range c.scripts {
				if _, _, err = create(t, s, TokenRemoteCommand, fmt.Sprintf("sdn%d", i), map[string]any{"connection": map[string]any{"host": "192.0.2.11"}, "create": sc}); err != nil {
					break
				}
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
			noErr(t, s.Store.Update(func(tx *Tx) error {
				for node, want := range c.bridges {
					if got := tx.bridgeExists(node, "vprod"); got != want {
						t.Errorf("bridge vprod on %s: exists %v, want %v", node, got, want)
					}
				}
				return nil
			}))
		})
	}
}

// A delete script runs with the stored connection when the command is
// deleted, against the simulated tools.
func TestRemoteDeleteRuns(t *testing.T) {
	s := newTestServer(t, "command", DefaultWorld(WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, WorldNode{Name: "pve2", SSHHost: "192.0.2.12"}))
	id, _, err := create(t, s, TokenRemoteCommand, "sdn", map[string]any{"connection": map[string]any{"host": "192.0.2.11"},
		"create": sdnScript("192.0.2.11,192.0.2.12", 1450, 9), "delete": sdnDelete})
	noErr(t, err)
	noErr(t, remove(t, s, TokenRemoteCommand, "sdn", id))
	st, err := ReadState(s.Store.Dir)
	noErr(t, err)
	if len(st.SDN.Zones)+len(st.SDN.VNets)+len(st.SDNRunning.VNets) != 0 {
		t.Errorf("delete left SDN configuration: %+v / %+v", st.SDN, st.SDNRunning)
	}
}
