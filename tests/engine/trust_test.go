package engine

import (
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

	// Without the pins, the impostor gets the scripts: this is what the
	// pins prevent.
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
