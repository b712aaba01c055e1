package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/stacks"
)

// TestKilledUpRecovers: `up` of dev is killed with SIGKILL, the CLI and
// every plugin, while Proxmox runs a VM's create task (a task finishes
// without its client, as fork_worker does). The next `up` is refused on the stale lock, naming
// `sda recover`; recover removes the lock and adopts each guest Proxmox
// finished as declared; the `up` after it converges with every guest
// exactly once, all of them in the state, no pending operation, and an
// idle preview.
func TestKilledUpRecovers(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	e.writeFaults(engine.Faults{Latency: map[string]string{proxmox.TokenVM + "#" + proxmox.CreateTaskMethod: "4s"}})
	d := e.open(ctx)
	var (
		mu      sync.Mutex
		killErr error
		armed   = true
	)
	e.program = func(pctx *pulumi.Context) error {
		if err := stacks.Program(pctx); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !armed || pctx.DryRun() {
			return nil
		}
		armed = false
		locks, _, err := d.Locks()
		if err != nil || len(locks) != 1 {
			killErr = err
			if err == nil {
				killErr = fmt.Errorf("want one lock during the up, have %d", len(locks))
			}
			return nil
		}
		go func() {
			// Kill the CLI once the first VM's create task runs.
			for i := 0; i < 1200; i++ {
				if st, err := engine.ReadState(e.simDir); err == nil {
					for _, g := range st.Guests {
						if g.Kind == "qemu" {
							err := killTree(locks[0].PID)
							mu.Lock()
							killErr = err
							mu.Unlock()
							return
						}
					}
				}
				time.Sleep(25 * time.Millisecond)
			}
		}()
		return nil
	}
	d = e.open(ctx)
	if _, err := d.Up(ctx); err == nil {
		t.Fatal("the up whose CLI was killed succeeded")
	}
	mu.Lock()
	if killErr != nil {
		t.Fatal(killErr)
	}
	mu.Unlock()
	time.Sleep(time.Second) // the task was Proxmox's: it is done, its client gone

	_, err := e.open(ctx).Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "sda recover --stack dev") {
		t.Fatalf("up after the kill: %v; want the stale lock explained with sda recover", err)
	}
	rep, err := e.open(ctx).Recover(ctx, automation.RecoverOptions{Guests: simGuests{e.simDir}})
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	t.Logf("recover: %+v", rep)
	if len(rep.Unlocked) != 1 || len(rep.Adopted) == 0 {
		t.Errorf("recover removed %d locks and adopted %v; want the killed run's lock removed and the VM whose create was in flight adopted", len(rep.Unlocked), rep.Adopted)
	}

	e.up(ctx)
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Guests) != 3 {
		t.Errorf("%d guests after recovering, want the router and two VMs once each", len(st.Guests))
	}
	// Every object of the simulated systems is in the state, but for what
	// the killed run made that exists only in a Pulumi state for real: the
	// machine secrets (the talos provider generates them locally,
	// talos_machine_secrets_resource.go) and commands (pulumi-command keeps
	// a command's run only in the state; its script already ran, and runs
	// again, idempotent). The simulation keeps a record of each.
	dep, _ := deployment(t, e.open(ctx))
	inState := stateObjects(dep)
	var orphans []string
	for _, o := range simObjects(t, e.simDir) {
		stateOnly := strings.Contains(o, "$talos:machine/secrets:Secrets::") || strings.Contains(o, "$command:")
		if !slices.Contains(inState, o) && !stateOnly {
			orphans = append(orphans, o)
		}
	}
	if len(orphans) > 0 || len(dep.PendingOperations) > 0 {
		t.Errorf("after recovering: objects outside the state %v, pending operations %v", orphans, dep.PendingOperations)
	}
	e.assertNoChanges(ctx)
}

// killTree sends SIGKILL to pid and to every process it started (the CLI
// and its provider plugins, one of which runs the VM's create task): what
// a power loss of the deploying machine leaves, and no plugin outlives the
// test.
func killTree(pid int) error {
	pids := []int{pid}
	for i := 0; i < len(pids); i++ {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range entries {
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...: comm may hold spaces, so read
			// after its closing parenthesis.
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) > 1 && fields[1] == strconv.Itoa(pids[i]) {
				if child, err := strconv.Atoi(e.Name()); err == nil {
					pids = append(pids, child)
				}
			}
		}
	}
	for _, p := range pids {
		if proc, err := os.FindProcess(p); err == nil {
			_ = proc.Kill()
		}
	}
	return nil
}

// simGuests lists the simulated Proxmox's guests, as recover's
// GuestLister (for real: /cluster/resources).
type simGuests struct{ dir string }

func (s simGuests) Guests(context.Context) ([]automation.Guest, error) {
	st, err := engine.ReadState(s.dir)
	if err != nil {
		return nil, err
	}
	var out []automation.Guest
	for id, g := range st.Guests {
		out = append(out, automation.Guest{VMID: id, Node: g.Node, Name: g.Name, Kind: g.Kind})
	}
	return out, nil
}
