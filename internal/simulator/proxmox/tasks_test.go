package proxmox_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// Proxmox creates are tasks: once accepted they finish whether or not the
// client still waits (qemu-server Qemu.pm:1626, pve-container LXC.pm:655,
// pve-storage Storage/Status.pm:911: RPCEnvironment::fork_worker). The
// simulator commits the object before it spends the task's time, so a
// cancelled call, or a plugin killed while it waits, leaves it created.

const taskTime = 2 * time.Second

// taskCase is one kind of create task: what to create first, the inputs,
// and how to find the result in the simulated state.
type taskCase struct {
	token  string
	setup  func(r rules)
	inputs map[string]any
	exists func(st *engine.State) bool
}

func taskCases() []taskCase {
	tmpl := map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "vztmpl", "url": "https://e.test/debian.tar.zst"}
	return []taskCase{
		{token: proxmox.TokenVM, inputs: ruleVM(8011, "10.0.0.11", ""),
			exists: func(st *engine.State) bool {
				g := st.Guests[8011]
				return g != nil && g.Kind == "qemu" && g.Node == "pve"
			}},
		{token: proxmox.TokenContainer,
			setup: func(r rules) { r.mustCreate(proxmox.TokenDownload, "tmpl", tmpl) },
			inputs: map[string]any{"nodeName": "pve", "vmId": 8001, "disk": map[string]any{"datastoreId": "local-lvm"},
				"initialization": map[string]any{"hostname": "router"}, "operatingSystem": map[string]any{"templateFileId": "local:vztmpl/debian.tar.zst"}},
			exists: func(st *engine.State) bool {
				g := st.Guests[8001]
				return g != nil && g.Kind == "lxc" && g.Name == "router"
			}},
		{token: proxmox.TokenDownload,
			inputs: map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "iso", "url": "https://e.test/talos.img"},
			exists: func(st *engine.State) bool {
				for _, f := range st.Files {
					if f.ID == "local:iso/talos.img" && f.Node == "pve" {
						return true
					}
				}
				return false
			}},
	}
}

func shortName(token string) string { return token[strings.LastIndex(token, ":")+1:] }

// TestCreateTaskSurvivesCancellation: a create whose call is cancelled
// while its task runs still leaves the object in the simulated Proxmox, and
// a second create of the same VM ID then fails as on a real cluster.
func TestCreateTaskSurvivesCancellation(t *testing.T) {
	for _, c := range taskCases() {
		t.Run(shortName(c.token), func(t *testing.T) {
			r := newRules(t, engine.Faults{Latency: map[string]string{c.token + "#" + proxmox.CreateTaskMethod: taskTime.String()}})
			if c.setup != nil {
				c.setup(r)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := r.px.Create(ctx, &pulumirpc.CreateRequest{Urn: urnOf(c.token, "x"), Type: c.token, Properties: pb(t, c.inputs)})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("create with its context cancelled during the task: err = %v, want the context's error", err)
			}
			if took := time.Since(start); took >= taskTime {
				t.Fatalf("the cancelled create returned after %v: it should stop waiting at the cancellation", took)
			}
			st := r.state()
			if !c.exists(st) {
				t.Fatalf("the task was accepted, so the object must exist after the cancellation; state: guests %v files %v", st.Guests, st.Files)
			}
			found := false
			for _, o := range st.Objects {
				found = found || (o.Type == c.token && o.URN == urnOf(c.token, "x"))
			}
			if !found {
				t.Fatal("the object is not recorded in the simulated state's objects")
			}
		})
	}
}

// TestCreateTaskCommittedBeforeItsWait: while the task runs, the object is
// already in state.json on disk, so a plugin killed at that moment (no
// code runs after) leaves it created; the call returns after the task.
func TestCreateTaskCommittedBeforeItsWait(t *testing.T) {
	r := newRules(t, engine.Faults{Latency: map[string]string{proxmox.TokenVM + "#" + proxmox.CreateTaskMethod: taskTime.String()}})
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		resp, err := r.px.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urnOf(proxmox.TokenVM, "vm"), Type: proxmox.TokenVM,
			Properties: pb(t, ruleVM(8011, "10.0.0.11", ""))})
		done <- result{resp.GetId(), err}
	}()
	var seenAt time.Duration
	for seenAt == 0 {
		select {
		case res := <-done:
			t.Fatalf("create returned (%v) before the guest was seen in state.json", res.err)
		case <-time.After(20 * time.Millisecond):
		}
		st, err := engine.ReadState(r.px.Store.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Guests[8011] != nil {
			seenAt = time.Since(start)
		}
	}
	if seenAt >= taskTime/2 {
		t.Fatalf("the guest reached state.json only after %v of a %v task", seenAt, taskTime)
	}
	res := <-done
	if res.err != nil || res.id != "8011" {
		t.Fatalf("create = %q, %v", res.id, res.err)
	}
	if took := time.Since(start); took < taskTime {
		t.Fatalf("create returned after %v, before its %v task ended", took, taskTime)
	}
	// What the next up meets after a killed run: the VM ID is taken.
	_, _, err := r.create(proxmox.TokenVM, "vm-again", ruleVM(8011, "10.0.0.12", ""))
	simtest.WantErr(t, err, "VM ID 8011 already exists")
}

// TestCreateCancelledBeforeAcceptance: the plain Create latency is spent
// before the request reaches Proxmox; cancelled there, nothing exists.
func TestCreateCancelledBeforeAcceptance(t *testing.T) {
	r := newRules(t, engine.Faults{Latency: map[string]string{proxmox.TokenVM + "#Create": taskTime.String()}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := r.px.Create(ctx, &pulumirpc.CreateRequest{Urn: urnOf(proxmox.TokenVM, "vm"), Type: proxmox.TokenVM, Properties: pb(t, ruleVM(8011, "10.0.0.11", ""))})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	if st := r.state(); len(st.Guests) != 0 {
		t.Fatalf("a request cancelled before Proxmox accepted it created guests %v", st.Guests)
	}
}
