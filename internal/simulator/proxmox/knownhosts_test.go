package proxmox_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// The provider's own SSH client (the disk import) follows bpg v0.69.1's
// known_hosts rule (proxmox/ssh/client.go:470-530): an unknown host is
// recorded on first use, a recorded key is required from then on, and a
// host showing another key is refused as a possible MitM.
func TestProviderKnownHosts(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	file := filepath.Join(home, ".ssh", "known_hosts")
	real, impostor := simtest.NewHostKey(t), simtest.NewHostKey(t)
	r := newRules(t, engine.Faults{})
	setKeys := func(key string) {
		w, err := r.px.Store.World()
		if err != nil {
			t.Fatal(err)
		}
		w.Nodes[0].HostKeys = []string{key}
		if err := engine.WriteWorld(r.px.Store.Dir, w); err != nil {
			t.Fatal(err)
		}
	}
	img := r.talosImage()

	setKeys(real)
	r.mustCreate(proxmox.TokenVM, "vm1", ruleVM(8011, "10.0.0.11", img))
	data, _ := os.ReadFile(file)
	if got := strings.TrimSpace(string(data)); got != "192.0.2.10 "+real {
		t.Fatalf("known_hosts after the first import: %q; want the node's key recorded", got)
	}

	setKeys(impostor)
	_, _, err := r.create(proxmox.TokenVM, "vm2", ruleVM(8012, "10.0.0.12", img))
	simtest.WantErr(t, err, "REMOTE HOST IDENTIFICATION HAS CHANGED for host 192.0.2.10:22")
	if after, _ := os.ReadFile(file); string(after) != string(data) {
		t.Errorf("a refused host changed known_hosts:\n%s", after)
	}

	setKeys(real)
	r.mustCreate(proxmox.TokenVM, "vm3", ruleVM(8013, "10.0.0.13", img))
}
