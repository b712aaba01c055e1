package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// readSim is the simulation's state.
func readSim(t *testing.T, simDir string) *engine.State {
	t.Helper()
	st, err := engine.ReadState(simDir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// talosAPICalls counts the calls of method to the simulated Talos API so
// far: a failOnce ordinal counts them over the simulation's life.
func (e *env) talosAPICalls(method string) int {
	n := 0
	for _, c := range e.calls(0) {
		if c.Type == talos.TokenTalosAPI && c.Method == method {
			n++
		}
	}
	return n
}

// upgradeReboots are the reboots Talos upgrades caused, from index from of
// the reboot log on, in the order they started.
func upgradeReboots(t *testing.T, simDir string, from int) []engine.Reboot {
	t.Helper()
	st := readSim(t, simDir)
	var out []engine.Reboot
	for _, r := range st.Reboots[from:] {
		if strings.HasPrefix(r.Cause, "talos upgrade") {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b engine.Reboot) int { return a.Start.Compare(b.Start) })
	return out
}

// assertOneAtATime fails when two of the reboots overlap: a roll must
// never have two of its nodes down together.
func assertOneAtATime(t *testing.T, rs []engine.Reboot) {
	t.Helper()
	for i, r := range rs {
		for _, o := range rs[i+1:] {
			if r.Overlaps(o) {
				t.Errorf("%s and %s were down at the same time", r.Name, o.Name)
			}
		}
	}
}

func rebootCount(t *testing.T, simDir string) int {
	t.Helper()
	return len(readSim(t, simDir).Reboots)
}

func names(rs []engine.Reboot) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// assertVersions checks the Talos version every configured machine runs,
// as the simulated nodes report it.
func assertVersions(t *testing.T, simDir, want string) {
	t.Helper()
	st := readSim(t, simDir)
	if len(st.Machines) == 0 {
		t.Fatal("no configured machines")
	}
	for addr, m := range st.Machines {
		if m.Version != want {
			t.Errorf("%s (%s) runs %s, want %s", m.Hostname, addr, m.Version, want)
		}
	}
}

// TestProdRollingUpgrade changes prod's talosVersion and runs up, as a user
// would, against nodes that are down for two seconds while they reboot into
// the new release. The Talos API calls go over the wire (machinery's client
// to the simulated apid, with mutual TLS from the cluster's CA). It must:
//   - upgrade every node in place, control planes first and one at a time,
//     then the workers one at a time, never two nodes down together;
//   - leave every node on the new version, report it in the talosVersions
//     output, replace no VM or secret, and preview idle afterwards;
//   - on a node whose upgrade fails, stop the roll there with the node's
//     name and Talos's message, and finish from that node on the next up,
//     without upgrading the nodes already done again.
func TestProdRollingUpgrade(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.cfg.Cluster.Upgrade.PollSeconds = 1
	order := []string{"prod-cp1", "prod-cp2", "prod-cp3", "prod-worker1", "prod-worker2", "prod-worker3"}

	t.Run("up", func(t *testing.T) {
		e.t = t
		e.up(ctx)
		assertVersions(t, e.simDir, "v1.12.0")
	})

	t.Run("a new talosVersion rolls over the nodes in order", func(t *testing.T) {
		e.t = t
		e.writeFaults(engine.Faults{RebootTime: "2s"})
		mark := rebootCount(t, e.simDir)
		e.cfg.Cluster.TalosVersion = "v1.12.1"
		res := e.up(ctx)
		// New VMs would boot the new image: the downloads are replaced;
		// nothing else is.
		assertNoReplacement(t, res, proxmox.TokenDownload)
		assertNoVMTouched(t, res)
		rs := upgradeReboots(t, e.simDir, mark)
		if got := names(rs); !slices.Equal(got, order) {
			t.Fatalf("upgrade reboots %v, want %v", got, order)
		}
		assertOneAtATime(t, rs)
		assertVersions(t, e.simDir, "v1.12.1")
		versions, _ := res.Outputs["talosVersions"].Value.(map[string]any)
		for _, n := range order {
			if versions[n] != "v1.12.1" {
				t.Errorf("talosVersions[%s] = %v, want v1.12.1 (output %v)", n, versions[n], res.Outputs["talosVersions"])
			}
		}
		e.writeFaults(engine.Faults{})
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})

	t.Run("a failed node stops the roll and the next up resumes from it", func(t *testing.T) {
		e.t = t
		// The second upgrade call of this roll (prod-cp2's) fails once, the
		// way a node that cannot pull the installer fails.
		calls := e.talosAPICalls("Upgrade")
		e.writeFaults(engine.Faults{RebootTime: "1s", FailOnce: []engine.FailOnce{
			{Type: talos.TokenTalosAPI, Method: "Upgrade", Ordinal: calls + 2}}})
		mark := rebootCount(t, e.simDir)
		e.cfg.Cluster.TalosVersion = "v1.12.2"
		_, err := e.open(ctx).Up(ctx)
		if err == nil {
			t.Fatal("up succeeded although prod-cp2's upgrade failed")
		}
		for _, want := range []string{"prod-cp2", "10.20.0.12", "failed to pull image"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
		e.assertRollResumes(ctx, mark, order, "v1.12.2")
	})

	t.Run("a failed upgrade sequence stops the roll within seconds and the next up resumes", func(t *testing.T) {
		e.t = t
		// prod-cp2's installer fails after Talos answered the Upgrade call
		// and drained the node: Talos publishes the failure on the node's
		// event stream and reboots it back into its release.
		calls := e.talosAPICalls("Upgrade")
		e.writeFaults(engine.Faults{RebootTime: "1s", FatalRebootDelay: "2s", FailOnce: []engine.FailOnce{
			{Type: talos.TokenTalosAPI, Method: "UpgradeSequence", Ordinal: calls + 2}}})
		mark := rebootCount(t, e.simDir)
		e.cfg.Cluster.TalosVersion = "v1.12.3"
		_, err := e.open(ctx).Up(ctx)
		if err == nil {
			t.Fatal("up succeeded although prod-cp2's upgrade sequence failed")
		}
		for _, want := range []string{"prod-cp2", "10.20.0.12", "upgrade sequence failed", `task "upgrade" failed: exit code 1`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
		// Stopped on the event, not after the 15-minute wait: the failure
		// came before the node's reboot back into its release ended.
		var failedAt time.Time
		for _, c := range e.calls(0) {
			if c.Type == talos.TokenTalosAPI && c.Method == "Upgrade" && c.Name == "10.20.0.12" && c.Error != "" {
				failedAt = c.Time
			}
		}
		if failedAt.IsZero() {
			t.Fatal("no failed Upgrade call of prod-cp2 in the call log")
		}
		if d := time.Since(failedAt); d > 20*time.Second {
			t.Errorf("up stopped %s after the sequence failed, want seconds", d)
		}
		e.assertRollResumes(ctx, mark, order, "v1.12.3")
	})
}

// assertRollResumes checks a roll that stopped at prod-cp2: before the
// failure only prod-cp1 was upgraded (reboots from index mark on); the next
// up replaces nothing but the images and upgrades the rest, so that over
// both ups each node was upgraded once, in order; every node then runs
// version, and with the faults cleared a preview is idle.
func (e *env) assertRollResumes(ctx context.Context, mark int, order []string, version string) {
	t := e.t
	t.Helper()
	if got := names(upgradeReboots(t, e.simDir, mark)); !slices.Equal(got, []string{"prod-cp1"}) {
		t.Errorf("before the failure, upgraded %v, want only prod-cp1", got)
	}
	res := e.up(ctx)
	assertNoReplacement(t, res, proxmox.TokenDownload)
	if got := names(upgradeReboots(t, e.simDir, mark)); !slices.Equal(got, order) {
		t.Errorf("over both ups the nodes were upgraded %v, want each once in order %v", got, order)
	}
	assertVersions(t, e.simDir, version)
	e.writeFaults(engine.Faults{})
	e.assertNoChanges(ctx)
}

// TestProdRefusedRemoval: prod-cp1 is down (its VM stopped) when the user
// lowers controlPlanes from 3 to 1. prod-cp2 would leave first, and etcd
// cannot remove a member while only one of the two others answers: Talos's
// graceful leave would fail on the node. SDA refuses before anything
// changes, in preview and in up, naming the node, the missing member and the
// fix (it asks the control planes of the previous declaration, since the
// one that stays does not answer); the simulated systems are left exactly as
// they were.
func TestProdRefusedRemoval(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.up(ctx)
	stopGuest(t, e.simDir, guestID(t, e.simDir, "prod-cp1"))
	before, _ := engine.ReadState(e.simDir)
	mark := len(e.calls(0))

	e.cfg.Cluster.ControlPlanes = 1
	want := "removing control plane prod-cp2 (10.20.0.12) would lose etcd quorum: 1 of the 2 other members answer and etcd needs 2 (not answering: prod-cp1)"
	if _, err := e.open(ctx).Preview(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("preview: want the refusal %q, got %v", want, err)
	}
	if _, err := e.open(ctx).Up(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("up: want the refusal %q, got %v", want, err)
	}
	if m := mutating(e.calls(mark)); len(m) > 0 {
		for _, c := range m {
			t.Errorf("the refused up changed %s (%s %s)", c.Name, c.Method, c.Type)
		}
	}
	after, _ := engine.ReadState(e.simDir)
	if !slices.Equal(etcdOf(before), etcdOf(after)) || len(after.Guests) != len(before.Guests) {
		t.Errorf("etcd members %v → %v, guests %d → %d", etcdOf(before), etcdOf(after), len(before.Guests), len(after.Guests))
	}
}

// TestProdRemovesADeadControlPlane: prod-cp3's VM is stopped for good and
// the user lowers controlPlanes from 3 to 1. prod-cp3 cannot leave by
// itself: the membership step removes it from etcd by its member ID through
// prod-cp1 (the Talos API's EtcdRemoveMemberByID), first, which keeps quorum; then
// prod-cp2 leaves gracefully. etcd ends with prod-cp1 alone, the Node
// objects with the declared nodes, and both VMs are gone.
func TestProdRemovesADeadControlPlane(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.up(ctx)
	stopGuest(t, e.simDir, guestID(t, e.simDir, "prod-cp3"))
	mark := len(e.calls(0))
	e.cfg.Cluster.ControlPlanes = 1
	res := e.up(ctx)
	assertNoReplacement(t, res)
	st, _ := engine.ReadState(e.simDir)
	e.assertMembers(st, []string{"prod-cp1", "prod-worker1", "prod-worker2", "prod-worker3"}, []string{"10.20.0.11"})
	var steps []string
	for _, c := range e.calls(mark) {
		if c.Provider == "talos-apid" && (c.Method == "EtcdRemoveMemberByID" || c.Method == "Reset") && c.Error == "" {
			steps = append(steps, c.Method+" "+c.Name)
		}
	}
	if want := []string{"EtcdRemoveMemberByID 10.20.0.11", "Reset 10.20.0.12"}; !slices.Equal(steps, want) {
		t.Errorf("want prod-cp3 removed by ID through prod-cp1, then prod-cp2 reset (%q); got %q", want, steps)
	}
	e.assertRemovedBeforeDeleted(mark, "10.20.0.12", "prod-cp2-vm")
	if got := countGuests(t, e.simDir, "qemu"); got != 4 {
		t.Errorf("%d VMs left, want 4", got)
	}
	e.assertConsistent(e.open(ctx))
	e.assertNoChanges(ctx)
}

func guestID(t *testing.T, simDir, name string) int {
	t.Helper()
	st := readSim(t, simDir)
	for id, g := range st.Guests {
		if g.Name == name {
			return id
		}
	}
	t.Fatalf("no guest %s", name)
	return 0
}

func etcdOf(st *engine.State) []string {
	for _, c := range st.Clusters {
		return c.EtcdMembers
	}
	return nil
}

// stopGuest stops a guest in the simulated Proxmox, as a crashed host would.
func stopGuest(t *testing.T, simDir string, vmid int) {
	t.Helper()
	if err := (&engine.Store{Dir: simDir}).Update(func(tx *engine.Tx) error {
		tx.State.Guests[vmid].Started = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestProdFiveToThree grows prod to five control planes, then lowers it to
// three: the two highest leave one at a time, each with a graceful reset
// (etcd's leave runs under the simulated quorum rule, so a leave that
// would break quorum fails the up) before its Node object and then its VM
// are deleted, and etcd ends with exactly the three declared members.
func TestProdFiveToThree(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.cfg.Cluster.ControlPlanes = 5
	e.up(ctx)
	st, _ := engine.ReadState(e.simDir)
	e.assertMembers(st, []string{"prod-cp1", "prod-cp2", "prod-cp3", "prod-cp4", "prod-cp5", "prod-worker1", "prod-worker2", "prod-worker3"},
		[]string{"10.20.0.11", "10.20.0.12", "10.20.0.13", "10.20.0.14", "10.20.0.15"})

	e.cfg.Cluster.ControlPlanes = 3
	mark := len(e.calls(0))
	res := e.up(ctx)
	assertNoReplacement(t, res)
	st, _ = engine.ReadState(e.simDir)
	e.assertMembers(st, []string{"prod-cp1", "prod-cp2", "prod-cp3", "prod-worker1", "prod-worker2", "prod-worker3"},
		[]string{"10.20.0.11", "10.20.0.12", "10.20.0.13"})
	e.assertRemovedBeforeDeleted(mark, "10.20.0.14", "prod-cp4-vm")
	e.assertRemovedBeforeDeleted(mark, "10.20.0.15", "prod-cp5-vm")
	// In order, one after the other.
	var resets []string
	for _, c := range e.calls(mark) {
		if c.Provider == "talos-apid" && c.Method == "Reset" {
			resets = append(resets, c.Name)
			// Each leave succeeded: etcd went from 5 members to 4, then 3,
			// with a quorum of the others started each time.
			if c.Error != "" {
				t.Errorf("reset of %s failed: %s", c.Name, c.Error)
			}
		}
	}
	if !slices.Equal(resets, []string{"10.20.0.14", "10.20.0.15"}) {
		t.Errorf("want cp4 then cp5 reset, got %q", resets)
	}
	e.assertConsistent(e.open(ctx))
	e.assertNoChanges(ctx)
}

// componentChanges are the image changes of Kubernetes components from
// index from of the simulation's log on.
func componentChanges(t *testing.T, simDir string, from int) []engine.ComponentChange {
	t.Helper()
	return readSim(t, simDir).ComponentChanges[from:]
}

// k8sRollOrder is upgrade-k8s's order over prod's nodes: each control-plane
// component over the control planes in turn, kube-proxy's image on the
// control planes, then the kubelets, control planes first.
func k8sRollOrder() []string {
	cps := []string{"prod-cp1", "prod-cp2", "prod-cp3"}
	var out []string
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		for _, n := range cps {
			out = append(out, c+"@"+n)
		}
	}
	for _, n := range append(cps, "prod-worker1", "prod-worker2", "prod-worker3") {
		out = append(out, "kubelet@"+n)
	}
	return out
}

func changeNames(cs []engine.ComponentChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Component+"@"+c.Hostname)
	}
	return out
}

// assertComponentImages checks that every component of every configured
// machine runs the image of Kubernetes version want, as the simulated
// nodes' running configurations name them.
func assertComponentImages(t *testing.T, simDir, want string) {
	t.Helper()
	st := readSim(t, simDir)
	for _, m := range st.Machines {
		for _, line := range strings.Split(m.Config, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "image: ") && (strings.Contains(line, "/kube-") || strings.Contains(line, "/kubelet:")) &&
				!strings.HasSuffix(line, ":"+want) {
				t.Errorf("%s runs %s, want %s", m.Hostname, line, want)
			}
		}
	}
}

// TestProdKubernetesUpgrade changes prod's kubernetesVersion by a patch
// release and runs up, against components that take 300 ms to restart on a
// new image. It must:
//   - roll the change over the running nodes through the Talos API in
//     upgrade-k8s's order (every API server, one at a time, before any
//     controller manager; the kubelets last, node by node), never two
//     components restarting at once, and leave the configuration applies
//     nothing to change;
//   - leave every component on the new release, replace nothing, and
//     preview idle afterwards;
//   - refuse, before anything changes, a version change together with a
//     change of the nodes;
//   - on a step that fails, stop the roll there naming the component and
//     node, and finish on the next up without repeating a step.
func TestProdKubernetesUpgrade(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.cfg.Cluster.Upgrade.PollSeconds = 1
	e.up(ctx)
	from := config.WithDefaults(e.cfg).Cluster.KubernetesVersion
	order := k8sRollOrder()

	t.Run("a new kubernetesVersion rolls component by component", func(t *testing.T) {
		e.t = t
		e.writeFaults(engine.Faults{ComponentRestartTime: "300ms"})
		mark := len(componentChanges(t, e.simDir, 0))
		e.cfg.Cluster.KubernetesVersion = "v1.35.1"
		res := e.up(ctx)
		assertNoReplacement(t, res)
		assertNoVMTouched(t, res)
		cs := componentChanges(t, e.simDir, mark)
		if got := changeNames(cs); !slices.Equal(got, order) {
			t.Fatalf("component changes\n %v\nwant\n %v", got, order)
		}
		for i, c := range cs {
			if c.Cause != "talos-apid ApplyConfiguration" || !strings.HasSuffix(c.From, ":"+from) || !strings.HasSuffix(c.To, ":v1.35.1") {
				t.Errorf("%s@%s: %s -> %s by %q, want %s -> v1.35.1 by the roll's ApplyConfiguration", c.Component, c.Hostname, c.From, c.To, c.Cause, from)
			}
			for _, o := range cs[i+1:] {
				if c.Overlaps(o) {
					t.Errorf("%s@%s and %s@%s restarted at the same time", c.Component, c.Hostname, o.Component, o.Hostname)
				}
			}
		}
		assertComponentImages(t, e.simDir, "v1.35.1")
		// prod runs Cilium in place of kube-proxy: CoreDNS is Talos's.
		assertManifestsSynced(t, e.simDir, "v1.35.1", "coredns")
		e.writeFaults(engine.Faults{})
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})

	t.Run("a version change with a node change is refused before anything changes", func(t *testing.T) {
		e.t = t
		mark := len(e.calls(0))
		e.cfg.Cluster.KubernetesVersion = "v1.35.2"
		e.cfg.Cluster.Workers = 2
		want := "kubernetesVersion changes (v1.35.1 -> v1.35.2) in the same run as the nodes (adding [], removing [prod-worker3])"
		if _, err := e.open(ctx).Preview(ctx); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("preview: want the refusal %q, got %v", want, err)
		}
		if m := mutating(e.calls(mark)); len(m) > 0 {
			t.Errorf("the refused preview changed %d things, first %s (%s)", len(m), m[0].Name, m[0].Method)
		}
		e.cfg.Cluster.Workers = 3
	})

	t.Run("a failed step stops the roll and the next up resumes from it", func(t *testing.T) {
		e.t = t
		applies := e.talosAPICalls("ApplyConfiguration")
		// The fourth apply of this roll: kube-controller-manager on prod-cp1.
		e.writeFaults(engine.Faults{FailOnce: []engine.FailOnce{
			{Type: talos.TokenTalosAPI, Method: "ApplyConfiguration", Ordinal: applies + 4}}})
		mark := len(componentChanges(t, e.simDir, 0))
		e.cfg.Cluster.KubernetesVersion = "v1.35.2"
		_, err := e.open(ctx).Up(ctx)
		if err == nil {
			t.Fatal("up succeeded although an apply failed")
		}
		for _, want := range []string{"kube-controller-manager on prod-cp1 (10.20.0.11)", "v1.35.1 -> v1.35.2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
		if got := changeNames(componentChanges(t, e.simDir, mark)); !slices.Equal(got, order[:3]) {
			t.Errorf("before the failure, changed %v, want %v", got, order[:3])
		}
		e.writeFaults(engine.Faults{})
		res := e.up(ctx)
		assertNoReplacement(t, res)
		if got := changeNames(componentChanges(t, e.simDir, mark)); !slices.Equal(got, order) {
			t.Errorf("over both ups the components changed\n %v\nwant each once, in order\n %v", got, order)
		}
		assertComponentImages(t, e.simDir, "v1.35.2")
		e.assertNoChanges(ctx)
	})

	t.Run("a crash-looping API server stops the roll at its node", func(t *testing.T) {
		e.t = t
		// Its container shows running between restarts; only the pod's
		// readiness tells. A short timeout keeps the wait for it short.
		e.writeFaults(engine.Faults{CrashLoops: []engine.CrashLoop{
			{Node: "prod-cp2", Component: "kube-apiserver", Image: ":v1.35.3", BackOff: "1s"}}})
		e.cfg.Cluster.Upgrade.TimeoutSeconds = 20
		mark := len(componentChanges(t, e.simDir, 0))
		e.cfg.Cluster.KubernetesVersion = "v1.35.3"
		_, err := e.open(ctx).Up(ctx)
		if err == nil {
			t.Fatal("up succeeded although prod-cp2's API server crash-loops")
		}
		for _, want := range []string{"kube-apiserver on prod-cp2 (10.20.0.12)", "is not Ready"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
		if got := changeNames(componentChanges(t, e.simDir, mark)); !slices.Equal(got, order[:2]) {
			t.Errorf("the roll changed %v, want it stopped after %v", got, order[:2])
		}
		e.writeFaults(engine.Faults{})
		e.cfg.Cluster.Upgrade.TimeoutSeconds = 0
		e.up(ctx)
		assertComponentImages(t, e.simDir, "v1.35.3")
		assertManifestsSynced(t, e.simDir, "v1.35.3", "coredns")
	})
}

// assertManifestsSynced checks that Talos's bootstrap manifests were
// applied to the cluster after the roll (as upgrade-k8s syncs them) by
// Talos's field manager: exactly the want objects of CoreDNS's Deployment
// ("coredns"), Flannel's and kube-proxy's DaemonSets, the last on the new
// version's image.
func assertManifestsSynced(t *testing.T, simDir, version string, want ...string) {
	t.Helper()
	st := readSim(t, simDir)
	objects := map[string]string{
		"apps/v1/deployments/kube-system/coredns":     "coredns",
		"apps/v1/daemonsets/kube-system/kube-flannel": "kube-flannel",
		"apps/v1/daemonsets/kube-system/kube-proxy":   "kube-proxy",
	}
	var found []string
	for _, c := range st.Clusters {
		for key, o := range c.KubeObjects {
			name, ok := objects[key]
			if !ok {
				continue
			}
			if _, ok := o.Managers["talos"]; !ok {
				t.Errorf("%s has managers %v, want talos among them", key, o.Managers)
			}
			if name == "kube-proxy" {
				image := fmt.Sprint(get(o.Object, "spec", "template", "spec", "containers", 0, "image"))
				if !strings.HasSuffix(image, ":"+version) {
					t.Errorf("kube-proxy's DaemonSet runs %s, want %s", image, version)
				}
			}
			found = append(found, name)
		}
	}
	slices.Sort(found)
	if !slices.Equal(found, want) {
		t.Errorf("synced objects %v, want %v", found, want)
	}
}

// get walks a decoded JSON object by keys and indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// TestDevKubernetesSkippedMinorRefused: dev runs Kubernetes v1.33.4 and the
// user sets v1.35.0. Kubernetes upgrades one minor release at a time (as
// upgrade-k8s allows), so preview and up refuse it before anything changes,
// naming the release to go to first. v1.34.x is refused while the nodes
// run a Talos that does not support it, and accepted once they do.
func TestDevKubernetesSkippedMinorRefused(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	e.cfg.Cluster.KubernetesVersion = "v1.33.4"
	e.up(ctx)
	mark := len(e.calls(0))
	e.cfg.Cluster.KubernetesVersion = "v1.35.0"
	want := "kubernetesVersion v1.33.4 -> v1.35.0 skips a minor release, and Kubernetes upgrades one minor release at a time: set kubernetesVersion to a v1.34.x release"
	if _, err := e.open(ctx).Preview(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("preview: want the refusal %q, got %v", want, err)
	}
	if _, err := e.open(ctx).Up(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("up: want the refusal %q, got %v", want, err)
	}
	if m := mutating(e.calls(mark)); len(m) > 0 {
		t.Errorf("the refused up changed %d things, first %s (%s %s)", len(m), m[0].Name, m[0].Method, m[0].Type)
	}
	assertComponentImages(t, e.simDir, "v1.33.4")

	// The roll also asks each node which Talos it runs: one still on an
	// older release than declared (its upgrade not done) is refused too.
	setTalosVersions(t, e.simDir, "v1.9.5")
	e.cfg.Cluster.KubernetesVersion = "v1.34.2"
	want = "runs Talos v1.9.5, which does not support Kubernetes v1.34.2"
	if _, err := e.open(ctx).Up(ctx); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "upgrade Talos first") {
		t.Fatalf("up: want the refusal %q, got %v", want, err)
	}
	assertComponentImages(t, e.simDir, "v1.33.4")

	setTalosVersions(t, e.simDir, "v1.12.0")
	e.up(ctx)
	assertComponentImages(t, e.simDir, "v1.34.2")
	// dev runs Flannel and kube-proxy: both bootstrap manifests are synced.
	assertManifestsSynced(t, e.simDir, "v1.34.2", "coredns", "kube-flannel", "kube-proxy")
}

// setTalosVersions makes every simulated node run version, as nodes would
// that someone upgraded or rolled back by hand.
func setTalosVersions(t *testing.T, simDir, version string) {
	t.Helper()
	if err := (&engine.Store{Dir: simDir}).Update(func(tx *engine.Tx) error {
		for _, m := range tx.State.Machines {
			m.Version = version
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestProdRebuildsADeadControlPlane: prod-cp1 (the bootstrap node) dies
// for good and the user asks for it to be rebuilt (sda:nodes.rebuild
// prod-cp1: 1). The up removes its etcd member by ID through a control
// plane that answers (quorum kept: two of the other two members answer),
// deletes its Node, replaces only its VM and configuration (same name, VM
// ID and address), and ends with three healthy etcd members and every
// Node back; the next preview is idle.
func TestProdRebuildsADeadControlPlane(t *testing.T) {
	e := newEnv(t, "prod")
	ctx := testContext(t)
	e.cfg.Cluster.Upgrade.PollSeconds = 1
	e.up(ctx)
	vmid := guestID(t, e.simDir, "prod-cp1")
	stopGuest(t, e.simDir, vmid)
	mark := len(e.calls(0))
	e.cfg.Nodes.Rebuild = map[string]int{"prod-cp1": 1}
	res := e.up(ctx)
	var replaced []string
	for _, s := range res.Changed() {
		switch s.Op {
		case "replace", "create-replacement", "delete-replaced":
			replaced = append(replaced, s.Name)
		case "update":
			if s.Name != "prod-cp1-drain" && s.Name != "prod-cp1-ready" {
				t.Errorf("the rebuild updated %s (%s)", s.Name, s.Type)
			}
		default:
			t.Errorf("the rebuild did %s to %s", s.Op, s.Name)
		}
	}
	slices.Sort(replaced)
	replaced = slices.Compact(replaced)
	if want := []string{"prod-cp1-config", "prod-cp1-vm"}; !slices.Equal(replaced, want) {
		t.Errorf("replaced %v, want only %v", replaced, want)
	}
	var removal []string
	for _, c := range e.calls(mark) {
		if c.Provider == "talos-apid" && (c.Method == "EtcdRemoveMemberByID" || c.Method == "Reset") && c.Error == "" {
			removal = append(removal, c.Method+" "+c.Name)
		}
	}
	if len(removal) != 1 || !strings.HasPrefix(removal[0], "EtcdRemoveMemberByID 10.20.0.1") || removal[0] == "EtcdRemoveMemberByID 10.20.0.11" {
		t.Errorf("want prod-cp1's member removed by ID through another control plane, got %q", removal)
	}
	st, _ := engine.ReadState(e.simDir)
	e.assertMembers(st, []string{"prod-cp1", "prod-cp2", "prod-cp3", "prod-worker1", "prod-worker2", "prod-worker3"},
		[]string{"10.20.0.11", "10.20.0.12", "10.20.0.13"})
	if g := st.Guests[vmid]; g == nil || g.Name != "prod-cp1" || !g.Started {
		t.Errorf("prod-cp1's VM %d is not back under its ID: %+v", vmid, g)
	}
	e.assertConsistent(e.open(ctx))
	e.assertNoChanges(ctx)

	// Dropping the entry would change the trigger back and rebuild prod-cp1
	// again: refused in preview, naming the key and the fix.
	e.cfg.Nodes.Rebuild = nil
	want := "sda:nodes.rebuild.prod-cp1 went from 1 to 0: any change of the number rebuilds prod-cp1 (its VM is replaced); keep 1"
	if _, err := e.open(ctx).Preview(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("preview with the entry dropped: want the refusal %q, got %v", want, err)
	}
}

// TestStateWithoutTriggersReplacesNothing: a stack deployed before this
// version recorded no replacement trigger on its VMs and configuration
// applies (sda:nodes.rebuild's mechanism). Its first run with this code
// must replace nothing: the engine compares a trigger only with a recorded
// one that is not null (pulumi pkg/v3 v3.274.1 step_generator.go
// shouldTriggerReplace, "Nulls mean there is no replacement trigger").
// The test removes every recorded trigger from a deployed dev stack's
// checkpoint, as the previous version left it, and previews.
func TestStateWithoutTriggersReplacesNothing(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	e.up(ctx)
	path := e.statePath("sda")
	var st map[string]any
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	removed := 0
	resources, _ := get(st, "checkpoint", "latest", "resources").([]any)
	for _, r := range resources {
		if m, ok := r.(map[string]any); ok && m["replacementTrigger"] != nil {
			delete(m, "replacementTrigger")
			removed++
		}
	}
	if removed != 4 { // dev: two VMs, two configuration applies
		t.Fatalf("removed %d recorded triggers, want the 4 of dev's VMs and configuration applies", removed)
	}
	out, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	e.assertNoChanges(ctx)
}
