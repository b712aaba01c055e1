package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// stepsOf returns the changed steps of res whose type is typ.
func stepsOf(res *automation.Result, typ string) []automation.Step {
	var out []automation.Step
	for _, s := range res.Changed() {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// assertRouterRoll checks a replacement of both routers of a pair, in
// the engine's step order: each container is deleted first (same VM ID)
// after its handover ran (the handover command's delete); its packages,
// configuration and host entries run again in the new container; and the
// second router goes only after the first serves again (its serving gate).
func assertRouterRoll(t *testing.T, res *automation.Result, first, second string) {
	t.Helper()
	at := func(op, name string) int { return stepAt(t, res, op, name) }
	for _, r := range []string{first, second} {
		gone, back := at("delete-replaced", r+"-ct"), at("create-replacement", r+"-ct")
		if handover := at("delete-replaced", r+"-handover"); handover > gone {
			t.Errorf("%s: the container was deleted (step %d) before its handover ran (step %d)", r, gone, handover)
		}
		for _, cmd := range []string{"-packages", "-config", "-host-prod-cp1", "-handover", "-serving"} {
			if i := at("create-replacement", r+cmd); i < back {
				t.Errorf("%s%s ran (step %d) before the new container existed (step %d)", r, cmd, i, back)
			}
		}
	}
	if served, gone := at("create-replacement", first+"-serving"), at("delete-replaced", second+"-ct"); gone < served {
		t.Errorf("%s was deleted (step %d) before %s served again (step %d): both routers were down together", second, gone, first, served)
	}
}

// stepAt is the position of the step op on the resource name among res's
// changes, in the engine's order; -1, and an error, when there is none.
func stepAt(t *testing.T, res *automation.Result, op, name string) int {
	t.Helper()
	steps := res.Changed()
	for i, s := range steps {
		if s.Op == op && s.Name == name {
			return i
		}
	}
	t.Errorf("no %s step for %s in:%s", op, name, describe(steps))
	return -1
}

// assertNoVMTouched fails when res did anything to a Talos VM.
func assertNoVMTouched(t *testing.T, res *automation.Result) {
	t.Helper()
	if vms := stepsOf(res, proxmox.TokenVM); len(vms) > 0 {
		t.Errorf("a VM was touched:%s", describe(vms))
	}
}

// assertNoReplacement fails when res replaced anything but a resource of
// one of the allowed types.
func assertNoReplacement(t *testing.T, res *automation.Result, allowed ...string) {
	t.Helper()
	for _, s := range res.Changed() {
		if (s.Op == "replace" || s.Op == "create-replacement" || s.Op == "delete-replaced") && !slices.Contains(allowed, s.Type) {
			t.Errorf("%s was replaced:%s", s.Name, describe([]automation.Step{s}))
		}
	}
}

// TestProdChanges takes prod through the changes the real providers make
// hard: each must do what a user means, and nothing the real system would
// refuse or a user would not want (replaced VMs or secrets, control planes
// rebooting together, Cilium reinstalled).
func TestProdChanges(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	t.Run("up", func(t *testing.T) {
		e.t = t
		e.up(ctx)
		e.assertConsistent(e.open(ctx))
	})

	t.Run("a preview that adds a worker keeps the Kubernetes provider and Cilium", func(t *testing.T) {
		e.t = t
		e.cfg.Cluster.Workers = 4
		defer func() { e.cfg.Cluster.Workers = 3 }()
		res, err := e.open(ctx).Preview(ctx)
		if err != nil {
			t.Fatalf("preview: %v", err)
		}
		assertNoReplacement(t, res)
		for _, s := range res.Changed() {
			if s.Type == kubeapi.TokenHelmRelease || s.Type == "pulumi:providers:kubernetes" {
				t.Errorf("adding a worker plans %s of %s", s.Op, s.Name)
			}
		}
		if len(stepsOf(res, proxmox.TokenVM)) != 1 {
			t.Errorf("the preview should create one VM:%s", describe(res.Changed()))
		}
	})

	t.Run("control-plane cores reboot the control planes one at a time", func(t *testing.T) {
		e.t = t
		e.writeFaults(engine.Faults{RebootTime: "1s"})
		before, _ := engine.ReadState(e.simDir)
		e.cfg.Nodes.ControlPlane.Cores++
		// The preview already says which guests reboot.
		mark := len(e.output)
		if _, err := e.open(ctx).Preview(ctx); err != nil {
			t.Fatalf("preview: %v", err)
		}
		for _, cp := range []string{"prod-cp1", "prod-cp2", "prod-cp3"} {
			if !containsLine(e.output[mark:], "warning: "+cp+" reboots: Proxmox applies cpu only with a reboot") {
				t.Errorf("the preview does not warn that %s reboots", cp)
			}
		}
		res := e.up(ctx)
		assertNoReplacement(t, res)
		assertRolledUpdate(t, res, "prod-cp1", "prod-cp2", "prod-cp3")
		after, _ := engine.ReadState(e.simDir)
		reboots := after.Reboots[len(before.Reboots):]
		if len(reboots) != 3 {
			t.Fatalf("want 3 reboots (one per control plane), got %+v", reboots)
		}
		for i, r := range reboots {
			if r.Cause != "proxmox update: cpu.cores" {
				t.Errorf("reboot of %s caused by %q", r.Name, r.Cause)
			}
			for _, o := range reboots[i+1:] {
				if r.Overlaps(o) {
					t.Errorf("%s and %s were down at the same time (%s–%s, %s–%s)", r.Name, o.Name,
						r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), o.Start.Format("15:04:05.000"), o.End.Format("15:04:05.000"))
				}
			}
		}
		e.writeFaults(engine.Faults{})
		e.assertNoChanges(ctx)
	})

	t.Run("a worker resize rolls, workerParallelism at a time, drained and Ready", func(t *testing.T) {
		e.t = t
		e.writeFaults(engine.Faults{RebootTime: "1s"})
		e.cfg.Cluster.Upgrade.WorkerParallelism = 2
		defer func() { e.cfg.Cluster.Upgrade.WorkerParallelism = 0 }()
		before, _ := engine.ReadState(e.simDir)
		mark := len(e.calls(0))
		e.cfg.Nodes.Worker.MemoryMiB += 1024
		res := e.up(ctx)
		assertNoReplacement(t, res)
		assertRolledUpdate(t, res, "prod-worker1", "prod-worker2", "prod-worker3")
		after, _ := engine.ReadState(e.simDir)
		reboots := after.Reboots[len(before.Reboots):]
		if len(reboots) != 3 {
			t.Fatalf("want 3 reboots (one per worker), got %+v", reboots)
		}
		for _, r := range reboots {
			down := 0
			for _, o := range reboots {
				if o.Start.Before(r.End) && r.Start.Before(o.End) {
					down++
				}
			}
			if down > 2 {
				t.Errorf("%d workers were down at once around %s's reboot, want at most workerParallelism 2", down, r.Name)
			}
		}
		// Each worker was cordoned (its drain) before its VM update, and
		// every node ends Ready and schedulable.
		cordons := 0
		for _, c := range e.calls(mark) {
			if c.Provider == "kube-apiserver" && c.Method == "patch" && strings.HasPrefix(c.Name, "PATCH /api/v1/nodes/prod-worker") {
				cordons++
			}
		}
		if cordons < 6 {
			t.Errorf("%d Node patches, want a cordon and an uncordon per worker (6)", cordons)
		}
		assertNoneCordoned(t, after)
		e.writeFaults(engine.Faults{})
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})

	t.Run("a patch Talos applies only with a reboot rolls over every node", func(t *testing.T) {
		e.t = t
		e.writeFaults(engine.Faults{RebootTime: "1s"})
		defer func() { e.writeFaults(engine.Faults{}) }()
		before, _ := engine.ReadState(e.simDir)
		e.cfg.Cluster.Patches = append(e.cfg.Cluster.Patches, "machine:\n  env:\n    SDA_ROLL_TEST: \"1\"\n")
		res := e.up(ctx)
		assertNoReplacement(t, res)
		after, _ := engine.ReadState(e.simDir)
		reboots := after.Reboots[len(before.Reboots):]
		assertOneAtATime(t, reboots) // default workerParallelism 1
		rebooted := names(reboots)
		slices.Sort(rebooted)
		if want := []string{"prod-cp1", "prod-cp2", "prod-cp3", "prod-worker1", "prod-worker2", "prod-worker3"}; !slices.Equal(rebooted, want) {
			t.Errorf("rebooted %v, want each node once: %v", rebooted, want)
		}
		assertNoneCordoned(t, after)
		e.assertNoChanges(ctx)
	})

	t.Run("a shrinking disk is refused before anything changes", func(t *testing.T) {
		e.t = t
		saved := e.cfg.Nodes.Worker.DiskGiB
		defer func() { e.cfg.Nodes.Worker.DiskGiB = saved }()
		e.cfg.Nodes.Worker.DiskGiB = config.WithDefaults(e.cfg).Nodes.Worker.DiskGiB - 10
		if _, err := e.open(ctx).Preview(ctx); err == nil || !strings.Contains(err.Error(), "would shrink") {
			t.Errorf("the preview should refuse the shrink: %v", err)
		}
		err := e.assertRejected(ctx, "would shrink")
		for _, want := range []string{"Node.DiskGiB", "or more"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the refusal should name %q: %v", want, err)
			}
		}
	})

	t.Run("a router disk size replaces the pair's routers one after the other, each configured again", func(t *testing.T) {
		e.t = t
		e.cfg.Router.DiskGiB += 2
		res := e.up(ctx)
		assertRouterRoll(t, res, "prod-router", "prod-router2")
		assertNoVMTouched(t, res)
		if got := countGuests(t, e.simDir, "lxc"); got != 2 {
			t.Errorf("%d containers after the replacement, want 2", got)
		}
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})

	t.Run("an extension change brings a new schematic, image and installer", func(t *testing.T) {
		e.t = t
		e.cfg.Cluster.Extensions = append(append([]string(nil), config.WithDefaults(e.cfg).Cluster.Extensions...), "siderolabs/iscsi-tools")
		want, err := talospatch.SchematicID(talospatch.SchematicYAML(e.cfg.Cluster.Extensions))
		if err != nil {
			t.Fatal(err)
		}
		// Nodes are down a second per reboot and etcd answers health
		// checks a second after a control plane boots: the roll must wait
		// for both (Talos refuses a control plane's upgrade otherwise).
		e.writeFaults(engine.Faults{RebootTime: "1s", EtcdStartTime: "1s"})
		mark := rebootCount(t, e.simDir)
		res := e.up(ctx)
		e.writeFaults(engine.Faults{})
		assertNoVMTouched(t, res)
		// The version stays; the running nodes are upgraded to the new
		// installer all the same, one at a time in the roll's order.
		order := []string{"prod-cp1", "prod-cp2", "prod-cp3", "prod-worker1", "prod-worker2", "prod-worker3"}
		rs := upgradeReboots(t, e.simDir, mark)
		if got := names(rs); !slices.Equal(got, order) {
			t.Errorf("upgrade reboots %v, want each node once in order %v", got, order)
		}
		assertOneAtATime(t, rs)
		for addr, m := range readSim(t, e.simDir).Machines {
			if m.Schematic != want || m.Version != "v1.12.0" {
				t.Errorf("%s (%s) runs %s from schematic %s, want v1.12.0 from %s", m.Hostname, addr, m.Version, m.Schematic, want)
			}
		}
		if s := stepsOf(res, talos.TokenSchematic); len(s) != 1 || s[0].Op != "update" {
			t.Errorf("the schematic should be updated in place:%s", describe(s))
		}
		if got := res.Outputs["schematicId"].Value; got != want {
			t.Errorf("schematicId output %v, want the new schematic's ID %s", got, want)
		}
		st, _ := engine.ReadState(e.simDir)
		if _, ok := st.Schematics[want]; !ok {
			t.Errorf("Image Factory was never given the new schematic %s", want)
		}
		images := 0
		for _, f := range st.Files {
			if f.ContentType == "iso" {
				images++
				if !strings.Contains(f.URL, want) {
					t.Errorf("image %s is still the old schematic's (%s)", f.ID, f.URL)
				}
			}
		}
		if images != 3 {
			t.Errorf("want one image on each of the 3 Proxmox nodes, have %d", images)
		}
		for _, obj := range st.Objects {
			if obj.Type == talos.TokenApply && !strings.Contains(fmt.Sprint(obj.Inputs["configPatches"]), "installer/"+want) {
				t.Errorf("%s does not install the new schematic's installer", obj.Name)
			}
		}
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})

	t.Run("a Talos version bump keeps the machine secrets", func(t *testing.T) {
		e.t = t
		secretsID := func() string {
			st, _ := engine.ReadState(e.simDir)
			for _, o := range st.Objects {
				if o.Type == talos.TokenSecrets {
					return o.ID
				}
			}
			return ""
		}
		id := secretsID()
		e.cfg.Cluster.TalosVersion = "v1.12.1"
		res := e.up(ctx)
		// New VMs boot the new release's image; nothing else is replaced.
		assertNoReplacement(t, res, proxmox.TokenDownload)
		if n := len(stepsOf(res, proxmox.TokenDownload)); n != 9 {
			t.Errorf("want the 3 images replaced (9 steps), got %d", n)
		}
		assertNoVMTouched(t, res)
		if s := stepsOf(res, talos.TokenSecrets); len(s) != 1 || s[0].Op != "update" {
			t.Errorf("the secrets should be updated in place:%s", describe(s))
		}
		if got := secretsID(); got != id || id == "" {
			t.Errorf("machine secrets %q became %q", id, got)
		}
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})

	t.Run("a file that changed on its server replaces nothing (overwrite is off)", func(t *testing.T) {
		e.t = t
		// The real provider's read asks the URL's size; with overwrite on, a
		// different size replaces the file on the next plan, and so, through
		// the image, nothing else, but forever (Image Factory's images are
		// rebuilt). SDA sets overwrite: false on every download.
		raw, err := os.ReadFile(filepath.Join(e.simDir, engine.WorldFile))
		if err != nil {
			t.Fatal(err)
		}
		var w engine.World
		if err := json.Unmarshal(raw, &w); err != nil {
			t.Fatal(err)
		}
		st, _ := engine.ReadState(e.simDir)
		w.URLSizes = map[string]int64{}
		for _, f := range st.Files {
			w.URLSizes[f.URL] = 987654321
		}
		if len(w.URLSizes) == 0 {
			t.Fatal("no downloaded files")
		}
		if err := engine.WriteWorld(e.simDir, w); err != nil {
			t.Fatal(err)
		}
		if _, err := e.open(ctx).Refresh(ctx); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		e.assertNoChanges(ctx)
	})

	t.Run("removing two control planes leaves etcd and Kubernetes with the declared nodes", func(t *testing.T) {
		e.t = t
		e.cfg.Cluster.ControlPlanes = 1
		mark := len(e.calls(0))
		res := e.up(ctx)
		assertNoReplacement(t, res)
		st, _ := engine.ReadState(e.simDir)
		e.assertMembers(st, []string{"prod-cp1", "prod-worker1", "prod-worker2", "prod-worker3"}, []string{"10.20.0.11"})
		e.assertRemovedBeforeDeleted(mark, "10.20.0.12", "prod-cp2-vm")
		e.assertRemovedBeforeDeleted(mark, "10.20.0.13", "prod-cp3-vm")
		if got := countGuests(t, e.simDir, "qemu"); got != 4 {
			t.Errorf("%d VMs left, want 4", got)
		}
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.Contains(l, prefix) {
			return true
		}
	}
	return false
}

// assertRolledUpdate checks that an up updated only the nodes' VMs and
// the NodeDrain before and NodeReady after each of them.
func assertRolledUpdate(t *testing.T, res *automation.Result, nodes ...string) {
	t.Helper()
	var updated, want []string
	for _, s := range res.Changed() {
		if s.Op != "update" {
			t.Errorf("a size change may only update; got %s of %s", s.Op, s.Name)
		}
		updated = append(updated, s.Name)
	}
	for _, n := range nodes {
		want = append(want, n+"-drain", n+"-ready", n+"-vm")
	}
	slices.Sort(updated)
	slices.Sort(want)
	if !slices.Equal(updated, want) {
		t.Errorf("updated %v, want %v", updated, want)
	}
}

// assertNoneCordoned checks that a roll left no Node cordoned.
func assertNoneCordoned(t *testing.T, st *engine.State) {
	t.Helper()
	for _, c := range st.Clusters {
		for _, n := range c.Nodes {
			if n.Cordoned {
				t.Errorf("%s is still cordoned", n.Name)
			}
		}
	}
}
