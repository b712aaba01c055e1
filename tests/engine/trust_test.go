package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator"
)

// TestImpostorGetsNothing: another machine answers on the Proxmox node's
// address. With the node's key pinned, `up` fails on the host key and not
// one root script reaches the impostor (no pct or pvesh runs there). The
// ablation: the same stack opted out of pinning hands the impostor every
// router script and reports the router configured.
func TestImpostorGetsNothing(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	w := simulator.DefaultWorld(e.worldNodes()...)
	for i := range w.Nodes {
		w.Nodes[i].HostKeys = []string{newHostKey(t)} // not the pinned key
	}
	if err := simulator.WriteWorld(e.simDir, w); err != nil {
		t.Fatal(err)
	}

	_, err := e.open(ctx).Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("up against an impostor: %v; want it refused on the host key", err)
	}
	if n := scriptsRun(t, e); n != 0 {
		t.Fatalf("%d root commands ran on the impostor; want none", n)
	}
	// The Proxmox provider's disk import refused it too: the pin went to
	// known_hosts first, and nothing of the impostor's was recorded.
	if !strings.Contains(err.Error(), "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Errorf("the disk import did not refuse the impostor: %v", err)
	}
	knownHosts := filepath.Join(e.home, "home", ".ssh", "known_hosts")
	data, _ := os.ReadFile(knownHosts)
	if got, want := strings.TrimSpace(string(data)), "192.168.1.10 "+e.hostKeys["pve"]; got != want {
		t.Errorf("known_hosts holds %q; want only the pinned key %q", got, want)
	}

	// Without the pins (and on a machine that never recorded the node),
	// the impostor gets the scripts: this is what the pins prevent.
	if err := os.Remove(knownHosts); err != nil {
		t.Fatal(err)
	}
	for i := range e.cfg.Proxmox.Nodes {
		e.cfg.Proxmox.Nodes[i].SSHHostKey = ""
	}
	e.cfg.Proxmox.InsecureIgnoreHostKeys = true
	e.up(ctx)
	if n := scriptsRun(t, e); n == 0 {
		t.Fatal("with host keys ignored no script reached the impostor: the first half proves nothing")
	}
}

// scriptsRun counts the pct and pvesh runs on the simulated Proxmox nodes.
func scriptsRun(t *testing.T, e *env) int {
	t.Helper()
	n := 0
	for _, c := range e.calls(0) {
		if c.Provider == "cli" && (strings.HasPrefix(c.Method, "pct ") || strings.HasPrefix(c.Method, "pvesh ")) {
			n++
		}
	}
	return n
}
