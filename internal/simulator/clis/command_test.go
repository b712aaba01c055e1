package clis_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"golang.org/x/crypto/ssh"
)

// Remote commands run their scripts with sh on the Proxmox node of their
// SSH host; pct checks the container is there (and running for exec).
func TestRemoteCommandTargets(t *testing.T) {
	s := simtest.NewTestServer(t, "command", engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"}))
	err := s.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[8001] = &engine.Guest{VMID: 8001, Kind: "lxc", Node: "pve1", Started: true}
		tx.State.Guests[8003] = &engine.Guest{VMID: 8003, Kind: "lxc", Node: "pve1"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ host, script, want, stdout string }{
		{"192.0.2.11", "pct exec 8001 -- sh -c 'true'", "", ""},
		{"192.0.2.11", "printf '%s' 'ZWNobyBoaQ==' | base64 -d | pct exec 8001 -- sh -s && echo done", "", "done"},
		{"192.0.2.99", "pct exec 8001 -- true", "no route to host", ""},
		{"192.0.2.12", "pct exec 8001 -- true", "container 8001 is on node pve1, not pve2", ""},
		{"192.0.2.11", "pct exec 8002 -- true", "Configuration file 'nodes/pve1/lxc/8002.conf' does not exist", ""},
		{"192.0.2.11", "pct exec 8003 -- true", "container '8003' not running", ""},
		{"192.0.2.11", "pct start 8001", "simulated pct supports exec, push and pull", ""},
		{"192.0.2.11", "echo $SDA_SIM_NODE; hostname >/dev/null", "", "pve1"},
		{"192.0.2.11", "exit 3", "exit status 3", ""},
		{"192.0.2.11", "if pct exec 8002 -- true 2>/dev/null; then echo yes; else echo no; fi", "", "no"},
	}
	for _, c := range cases {
		_, outs, err := simtest.Create(t, s, clis.TokenRemoteCommand, "cmd", map[string]any{"connection": map[string]any{"host": c.host}, "create": c.script})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s on %s: %v", c.script, c.host, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s on %s: want %q, got %v", c.script, c.host, c.want, err)
		case c.want == "" && c.stdout != "" && outs["stdout"] != c.stdout:
			t.Errorf("%s on %s: stdout %q, want %q", c.script, c.host, outs["stdout"], c.stdout)
		}
	}
}

// A remote command checks the SSH host key as pulumi-command v1.1.0 does:
// without a pin anything is accepted; with one, only the pinned key, of
// the pinned type. A refused host gets no script: it never runs.
func TestRemoteCommandHostKey(t *testing.T) {
	node, impostor := simtest.NewHostKey(t), simtest.NewHostKey(t)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := ssh.NewPublicKey(&ecPriv.PublicKey)
	ecdsaPin := string(ssh.MarshalAuthorizedKey(ecPub))
	s := simtest.NewTestServer(t, "command", engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11", HostKeys: []string{node}}))
	marker := filepath.Join(t.TempDir(), "ran")
	for _, c := range []struct{ name, pin, want string }{
		{"no pin: any key is accepted", "", ""},
		{"the node's own key", node + " root@pve1", ""},
		{"an impostor's key is pinned", impostor, "ssh: host key mismatch"},
		{"a key type the node does not offer", ecdsaPin, "no common algorithm for host key"},
		{"a pin that is no key", "ssh-ed25519 garbage", "failed to parse host key"},
	} {
		_ = os.Remove(marker)
		conn := map[string]any{"host": "192.0.2.11"}
		if c.pin != "" {
			conn["hostKey"] = c.pin
		}
		_, _, err := simtest.Create(t, s, clis.TokenRemoteCommand, "cmd", map[string]any{"connection": conn, "create": "touch " + marker})
		_, statErr := os.Stat(marker)
		switch {
		case c.want == "" && (err != nil || statErr != nil):
			t.Errorf("%s: %v (script ran: %v); want it accepted and run", c.name, err, statErr == nil)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		case c.want != "" && statErr == nil:
			t.Errorf("%s: refused, yet the script ran", c.name)
		}
	}
}

// A delete script runs with the stored connection when the command is
// deleted, against the simulated tools.
func TestRemoteDeleteRuns(t *testing.T) {
	s := simtest.NewTestServer(t, "command", engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"}))
	id, _, err := simtest.Create(t, s, clis.TokenRemoteCommand, "sdn", map[string]any{"connection": map[string]any{"host": "192.0.2.11"},
		"create": sdnScript("192.0.2.11,192.0.2.12", 1450, 9), "delete": sdnDelete})
	simtest.NoErr(t, err)
	simtest.NoErr(t, simtest.Remove(t, s, clis.TokenRemoteCommand, "sdn", id))
	st, err := engine.ReadState(s.Store.Dir)
	simtest.NoErr(t, err)
	if len(st.SDN.Zones)+len(st.SDN.VNets)+len(st.SDNRunning.VNets) != 0 {
		t.Errorf("delete left SDN configuration: %+v / %+v", st.SDN, st.SDNRunning)
	}
}
