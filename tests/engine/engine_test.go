package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// up runs up and fails the test on error, logging every step.
func (e *env) up(ctx context.Context) *automation.Result {
	e.t.Helper()
	res, err := e.open(ctx).Up(ctx)
	if err != nil {
		e.t.Fatalf("up: %v", err)
	}
	return res
}

// assertNoChanges checks that a preview right now plans nothing at all:
// no create, update, replace or delete of any resource, component or provider.
func (e *env) assertNoChanges(ctx context.Context) {
	e.t.Helper()
	res, err := e.open(ctx).Preview(ctx)
	if err != nil {
		e.t.Fatalf("preview: %v", err)
	}
	if changed := res.Changed(); len(changed) > 0 {
		e.t.Fatalf("preview right after up plans changes:%s", describe(changed))
	}
	if res.Count("same") == 0 {
		e.t.Fatalf("preview reported no resources at all: %+v", res.Changes)
	}
}

// assertSecretsEncrypted checks that no plaintext secret of the stack is in
// the engine's state: the Proxmox token, the SSH key, the Talos machine
// secrets, the kubeconfig and the talosconfig.
func (e *env) assertSecretsEncrypted(ctx context.Context, d *automation.Deployment) {
	e.t.Helper()
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		e.t.Fatal(err)
	}
	secrets := map[string]string{}
	for k, v := range e.creds {
		secrets[k] = v
	}
	for _, obj := range st.Objects {
		switch obj.Type {
		case talos.TokenSecrets:
			ms, _ := obj.Outputs["machineSecrets"].(map[string]any)
			cluster, _ := ms["cluster"].(map[string]any)
			sec, _ := ms["secrets"].(map[string]any)
			certs, _ := ms["certs"].(map[string]any)
			osCA, _ := certs["os"].(map[string]any)
			cc, _ := obj.Outputs["clientConfiguration"].(map[string]any)
			secrets["machineSecrets.cluster.secret"], _ = cluster["secret"].(string)
			secrets["machineSecrets.secrets.bootstrapToken"], _ = sec["bootstrapToken"].(string)
			secrets["machineSecrets.secrets.secretboxEncryptionSecret"], _ = sec["secretboxEncryptionSecret"].(string)
			secrets["machineSecrets.certs.os.key"], _ = osCA["key"].(string)
			secrets["clientConfiguration.clientKey"], _ = cc["clientKey"].(string)
		case talos.TokenKubeconfig:
			secrets["kubeconfigRaw"], _ = obj.Outputs["kubeconfigRaw"].(string)
			kcc, _ := obj.Outputs["kubernetesClientConfiguration"].(map[string]any)
			secrets["kubernetesClientConfiguration.clientKey"], _ = kcc["clientKey"].(string)
		}
	}
	outs, err := d.Outputs(ctx, true)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, key := range []string{"kubeconfig", "talosconfig"} {
		o, ok := outs[key]
		if !ok {
			e.t.Fatalf("stack output %q is missing (outputs: %v)", key, keys(outs))
		}
		if !o.Secret {
			e.t.Errorf("stack output %q is not marked secret", key)
		}
		secrets["output "+key], _ = o.Value.(string)
	}
	for name, v := range secrets {
		if len(v) < 16 {
			e.t.Fatalf("secret %s not found or too short to search for (%q)", name, v)
		}
	}
	// The checkpoint file itself, not `stack export`: the Automation API
	// exports with --show-secrets, so an export holds every secret in
	// plaintext by design (which also shows these probes find them).
	file := e.stateFile("sda")
	for name, v := range secrets {
		// A long secret is also caught by any 40-character slice of it.
		probe := v
		if len(probe) > 40 {
			probe = probe[len(probe)/2-20 : len(probe)/2+20]
		}
		if strings.Contains(string(file), probe) {
			e.t.Errorf("the state file holds %s in plaintext", name)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// customChanges returns the changed provider resources of a result.
func customChanges(res *automation.Result) []automation.Step {
	var out []automation.Step
	for _, s := range res.Changed() {
		if isCustom(s) {
			out = append(out, s)
		}
	}
	return out
}

// workerResources are the provider resources that exist for the given
// workers of a stack, and for them only: the VM, its configuration apply
// and the router's DNS/DHCP/firewall entry.
func workerResources(stack string, workers ...int) []string {
	var out []string
	for _, i := range workers {
		w := fmt.Sprintf("%s-worker%d", stack, i)
		out = append(out, w+"-vm", w+"-config", stack+"-router-host-"+w)
	}
	slices.Sort(out)
	return out
}

// assertOnly checks that res did nothing but op ("create" or "delete") to
// the resources of the given workers, besides running the cluster's
// membership step (an update of SDA's ClusterMembers: the declared nodes
// changed), and
// that exactly those provider resources reached the simulated providers.
// Any other update or replacement of any resource (the router's
// configuration included) fails. mark is the call log's length before the
// operation.
func (e *env) assertOnly(res *automation.Result, op string, mark int, workers ...int) {
	e.t.Helper()
	members := e.stack + "-members"
	for _, o := range []string{"replace", "create-replacement", "delete-replaced"} {
		if n := res.Count(o); n > 0 {
			e.t.Errorf("%d resources %s; scaling must not replace anything:%s", n, o, describe(res.Changed()))
		}
	}
	var steps []string
	ranMembers := false
	for _, s := range res.Changed() {
		if s.Name == members && s.Op == "update" {
			ranMembers = true
			continue
		}
		if s.Op != op {
			e.t.Errorf("scaling may only %s; got %s of %s (%s)", op, s.Op, s.Name, s.Type)
		}
		owned := false
		for _, i := range workers {
			owned = owned || strings.HasSuffix(s.Name, fmt.Sprintf("%s-worker%d", e.stack, i)) ||
				strings.Contains(s.Name, fmt.Sprintf("%s-worker%d-", e.stack, i))
		}
		if !owned {
			e.t.Errorf("scaling did %s %s (%s), which belongs to no worker in %v", s.Op, s.Name, s.Type, workers)
		}
		if isCustom(s) {
			steps = append(steps, s.Name)
		}
	}
	slices.Sort(steps)
	want := workerResources(e.stack, workers...)
	if !slices.Equal(steps, want) {
		e.t.Errorf("scaling changed %v, want exactly %v (each by %s)", steps, want, op)
	}
	var called []string
	for _, c := range mutating(e.calls(mark)) {
		if c.Method != strings.ToUpper(op[:1])+op[1:] {
			e.t.Errorf("the providers were asked to %s %s (%s)", c.Method, c.Name, c.Type)
		}
		called = append(called, c.Name)
	}
	slices.Sort(called)
	if !slices.Equal(called, want) {
		e.t.Errorf("the providers were called for %v, want exactly %v", called, want)
	}
	if !ranMembers {
		e.t.Errorf("the membership step %s did not run: the health checks would see the old members", members)
	}
}

func countGuests(t *testing.T, dir, kind string) int {
	st, err := engine.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range st.Guests {
		if g.Kind == kind {
			n++
		}
	}
	return n
}

// TestDevLifecycle takes the dev stack through its life: up, an idle
// preview, secrets in the state, scaling workers up and down, a Talos patch,
// an invalid configuration, destroy.
func TestDevLifecycle(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)

	t.Run("up", func(t *testing.T) {
		e.t = t
		res := e.up(ctx)
		if n := res.Count("create"); n == 0 {
			t.Fatalf("up created nothing:%s", describe(res.Steps))
		}
		if got := countGuests(t, e.simDir, "qemu"); got != 2 {
			t.Errorf("dev has 1 control plane and 1 worker: %d VMs exist", got)
		}
		if got := countGuests(t, e.simDir, "lxc"); got != 1 {
			t.Errorf("dev has one router container: %d exist", got)
		}
		d := e.open(ctx)
		e.assertConsistent(d)
		e.assertRecordedURNs(d)
	})
	t.Run("preview after up changes nothing", func(t *testing.T) {
		e.t = t
		e.assertNoChanges(ctx)
	})
	t.Run("state holds no plaintext secret", func(t *testing.T) {
		e.t = t
		e.assertSecretsEncrypted(ctx, e.open(ctx))
	})
	t.Run("refresh reads everything back unchanged", func(t *testing.T) {
		e.t = t
		mark := len(e.calls(0))
		res, err := e.open(ctx).Refresh(ctx)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		reads := 0
		for _, c := range e.calls(mark) {
			if c.Method == "Read" {
				reads++
			}
		}
		if want := len(simObjects(t, e.simDir)); reads != want {
			t.Errorf("refresh read %d resources from the providers, want all %d", reads, want)
		}
		for _, s := range res.Steps {
			if s.Op != "same" && s.Op != "refresh" {
				t.Errorf("refresh changed %s: %s", s.Name, s.Op)
			}
		}
		e.assertNoChanges(ctx)
	})
	t.Run("workers 1 to 3 only creates", func(t *testing.T) {
		e.t = t
		e.cfg.Cluster.Workers = 3
		mark := len(e.calls(0))
		res := e.up(ctx)
		e.assertOnly(res, "create", mark, 2, 3)
		if got := countGuests(t, e.simDir, "qemu"); got != 4 {
			t.Errorf("want 4 VMs (1 control plane, 3 workers), have %d", got)
		}
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})
	t.Run("workers 3 to 1 deletes the two highest", func(t *testing.T) {
		e.t = t
		e.cfg.Cluster.Workers = 1
		mark := len(e.calls(0))
		res := e.up(ctx)
		e.assertOnly(res, "delete", mark, 2, 3)
		st, _ := engine.ReadState(e.simDir)
		var names []string
		for _, g := range st.Guests {
			names = append(names, g.Name)
		}
		slices.Sort(names)
		if want := []string{"dev-cp1", "dev-worker1", "router"}; !reflect.DeepEqual(names, want) {
			t.Errorf("guests left: %v, want %v", names, want)
		}
		e.assertMembers(st, []string{"dev-cp1", "dev-worker1"}, []string{"10.10.0.11"})
		e.assertRemovedBeforeDeleted(mark, "10.10.0.22", "dev-worker2-vm")
		e.assertRemovedBeforeDeleted(mark, "10.10.0.23", "dev-worker3-vm")
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})
	t.Run("a Talos patch updates configuration applies in place", func(t *testing.T) {
		e.t = t
		before, _ := engine.ReadState(e.simDir)
		e.cfg.Cluster.Patches = append(e.cfg.Cluster.Patches,
			"machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n")
		res := e.up(ctx)
		changes := customChanges(res)
		if len(changes) == 0 {
			t.Fatal("a new patch changed nothing")
		}
		for _, s := range changes {
			if s.Op != "update" || s.Type != talos.TokenApply {
				t.Errorf("a patch may only update configuration applies; got %s of %s (%s)%s", s.Op, s.Name, s.Type, describe([]automation.Step{s}))
			}
		}
		after, _ := engine.ReadState(e.simDir)
		for addr, m := range after.Machines {
			if m.Applies != before.Machines[addr].Applies+1 {
				t.Errorf("node %s: %d applies before, %d after; want one more", addr, before.Machines[addr].Applies, m.Applies)
			}
			if m.VMID != before.Machines[addr].VMID || after.Guests[m.VMID] == nil {
				t.Errorf("node %s changed VM", addr)
			}
		}
		e.assertNoChanges(ctx)
	})
	t.Run("a patch Talos rejects fails with Talos's message and changes nothing", func(t *testing.T) {
		e.t = t
		saved := e.cfg.Cluster.Patches
		defer func() { e.cfg.Cluster.Patches = saved }()
		e.cfg.Cluster.Patches = append(append([]string{}, saved...), "machine:\n  notAField: true\n")
		e.assertRejected(ctx, "notAField")
	})
	t.Run("an invalid configuration fails before anything is created", func(t *testing.T) {
		e.t = t
		saved := e.cfg.Cluster.CNI
		defer func() { e.cfg.Cluster.CNI = saved }()
		e.cfg.Cluster.CNI = "weave"
		err := e.assertRejected(ctx, "sda:cluster.cni")
		for _, want := range []string{"weave", "flannel", "cilium"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error should name the value and the fix (%q): %v", want, err)
			}
		}
	})
	t.Run("destroy keeps only the protected machine secrets", func(t *testing.T) {
		e.t = t
		e.assertDestroyKeepsSecrets(ctx)
	})
}

// assertRejected runs an up that must fail with a message containing want,
// and checks that no resource was created, updated or deleted and that the
// state is unchanged.
func (e *env) assertRejected(ctx context.Context, want string) error {
	e.t.Helper()
	d := e.open(ctx)
	before, _ := deployment(e.t, d)
	mark := len(e.calls(0))
	_, err := d.Up(ctx)
	if err == nil {
		e.t.Fatal("up succeeded; it must fail")
	}
	if !strings.Contains(err.Error(), want) {
		e.t.Fatalf("the error should mention %q: %v", want, err)
	}
	if m := mutating(e.calls(mark)); len(m) > 0 {
		e.t.Errorf("the failed up still changed resources: %+v", m)
	}
	after, _ := deployment(e.t, d)
	if !reflect.DeepEqual(stateObjects(before), stateObjects(after)) {
		e.t.Errorf("the failed up changed the state:\nbefore %v\nafter  %v", stateObjects(before), stateObjects(after))
	}
	return err
}

func (e *env) assertDestroyKeepsSecrets(ctx context.Context) {
	e.t.Helper()
	d := e.open(ctx)
	res, err := d.Destroy(ctx, automation.DestroyOptions{})
	if err != nil {
		e.t.Fatalf("destroy: %v", err)
	}
	if res.Count("delete") == 0 {
		e.t.Fatalf("destroy deleted nothing:%s", describe(res.Steps))
	}
	left := simObjects(e.t, e.simDir)
	if len(left) != 1 || !strings.Contains(left[0], talos.TokenSecrets+"::") {
		e.t.Fatalf("after destroy the simulated systems should hold only the machine secrets: %v", left)
	}
	st, _ := engine.ReadState(e.simDir)
	if len(st.Guests)+len(st.Files)+len(st.Bridges) != 0 {
		e.t.Errorf("destroy left guests %v, files %v, bridges %v", st.Guests, st.Files, st.Bridges)
	}
	e.assertConsistent(d)

	// Removing the secrets is a deliberate second step (docs/engine.md).
	if _, err := d.Destroy(ctx, automation.DestroyOptions{IncludeProtected: true}); err != nil {
		e.t.Fatalf("destroy including protected resources: %v", err)
	}
	if left := simObjects(e.t, e.simDir); len(left) != 0 {
		e.t.Errorf("destroy with IncludeProtected left %v", left)
	}
	dep, _ := deployment(e.t, d)
	if objs := stateObjects(dep); len(objs) != 0 {
		e.t.Errorf("state still holds %v", objs)
	}
}

// TestProdLifecycle: the prod stack (3 control planes behind a VIP, 3
// workers on 3 Proxmox nodes, Cilium) comes up, stays idle, keeps its
// secrets encrypted and goes away.
func TestProdLifecycle(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	t.Run("up", func(t *testing.T) {
		e.t = t
		e.up(ctx)
		if got := countGuests(t, e.simDir, "qemu"); got != 6 {
			t.Errorf("prod has 3 control planes and 3 workers: %d VMs exist", got)
		}
		st, _ := engine.ReadState(e.simDir)
		if len(st.Clusters) != 1 {
			t.Fatalf("want one bootstrapped cluster, have %d", len(st.Clusters))
		}
		for _, c := range st.Clusters {
			if c.Releases["kube-system/cilium"] != "cilium" && !hasChart(c.Releases, "cilium") {
				t.Errorf("Cilium is not installed in the cluster: releases %v", c.Releases)
			}
		}
		d := e.open(ctx)
		e.assertConsistent(d)
		e.assertRecordedURNs(d)
	})
	t.Run("preview after up changes nothing", func(t *testing.T) {
		e.t = t
		e.assertNoChanges(ctx)
	})
	t.Run("state holds no plaintext secret", func(t *testing.T) {
		e.t = t
		e.assertSecretsEncrypted(ctx, e.open(ctx))
	})
	t.Run("destroy keeps only the protected machine secrets", func(t *testing.T) {
		e.t = t
		e.assertDestroyKeepsSecrets(ctx)
	})
}

func hasChart(releases map[string]string, chart string) bool {
	for _, c := range releases {
		if c == chart {
			return true
		}
	}
	return false
}

// TestFailureMidUp: a VM creation fails in the middle of prod's first up.
// The state and the simulated systems must agree afterwards, and the next up
// must finish the job without creating anything twice.
func TestFailureMidUp(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.writeFaults(engine.Faults{FailOnce: []engine.FailOnce{
		{Type: proxmox.TokenVM, Method: "Create", Ordinal: 3},
	}})
	d := e.open(ctx)
	_, err := d.Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "simulated failure") {
		t.Fatalf("up should fail with the injected failure, got %v", err)
	}
	e.assertConsistent(d)
	if got := countGuests(t, e.simDir, "qemu"); got >= 6 {
		t.Fatalf("the failed up created all %d VMs", got)
	}

	e.up(ctx)
	e.assertConsistent(e.open(ctx))
	if got := countGuests(t, e.simDir, "qemu"); got != 6 {
		t.Errorf("after the second up: %d VMs, want 6", got)
	}
	created := map[string]int{}
	for _, c := range e.calls(0) {
		if c.Method == "Create" && c.Error == "" {
			created[c.Type+" "+c.Name]++
		}
	}
	for what, n := range created {
		if n != 1 {
			t.Errorf("%s was created %d times", what, n)
		}
	}
	e.assertNoChanges(ctx)
}

// TestCancelUp: cancelling the context stops an up; the engine finishes the
// steps in flight and records them, so the next up converges.
func TestCancelUp(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	e.writeFaults(engine.Faults{Latency: map[string]string{
		proxmox.TokenVM: "3s",
	}})
	d := e.open(ctx)
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		// Cancel a second after the Talos image is downloaded: the VMs
		// (3 s each) are then being created.
		for cctx.Err() == nil {
			for _, c := range e.calls(0) {
				if c.Type == proxmox.TokenDownload && c.Method == "Create" && strings.Contains(c.Name, "image") {
					time.Sleep(time.Second)
					cancel()
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	_, err := d.Up(cctx)
	cancel()
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("up should report the cancellation, got %v", err)
	}
	e.assertConsistent(e.open(ctx))
	e.writeFaults(engine.Faults{})
	e.up(ctx)
	e.assertConsistent(e.open(ctx))
	e.assertNoChanges(ctx)
}
