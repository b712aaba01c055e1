package engine

import (
	"testing"

	"github.com/sda-platform/sda/internal/simulator/proxmox"
)

// TestProdBecomesAPair: prod deployed with one router, then given
// sda:router.pair as Pulumi.prod.yaml has it. Nothing of the deployed
// stack is replaced: the first router's container is updated in place
// (its own addresses instead of the shared ones: a restart), its packages
// and configuration run again with keepalived, and the second router is
// created only once the first serves. No VM is touched, and a second
// preview is idle.
func TestProdBecomesAPair(t *testing.T) {
	e := newEnv(t, "prod")
	pair := e.cfg.Router.Pair
	if pair == nil {
		t.Fatal("Pulumi.prod.yaml has no sda:router.pair")
	}
	e.cfg.Router.Pair = nil
	ctx := testContext(t)
	e.up(ctx)
	if got := countGuests(t, e.simDir, "lxc"); got != 1 {
		t.Fatalf("%d containers with one router, want 1", got)
	}

	e.cfg.Router.Pair = pair
	res := e.up(ctx)
	assertNoVMTouched(t, res)
	assertNoReplacement(t, res, "command:remote:Command")
	at := func(op, name string) int { return stepAt(t, res, op, name) }
	cts := stepsOf(res, proxmox.TokenContainer)
	if len(cts) != 2 || cts[0].Name != "prod-router-ct" || cts[0].Op != "update" || cts[1].Name != "prod-router2-ct" || cts[1].Op != "create" {
		t.Errorf("container steps: want an update of prod-router-ct, then a create of prod-router2-ct:%s", describe(cts))
	}
	if served, created := at("create", "prod-router-serving"), at("create", "prod-router2-ct"); created < served {
		t.Errorf("prod-router2-ct was created (step %d) before prod-router served (step %d)", created, served)
	}
	if got := countGuests(t, e.simDir, "lxc"); got != 2 {
		t.Errorf("%d containers with a pair, want 2", got)
	}
	e.assertConsistent(e.open(ctx))
	e.assertNoChanges(ctx)
}
