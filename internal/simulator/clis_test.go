package simulator

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The simulated talosctl and kubectl act like the real ones for the
// invocations SDA's scripts use, check credentials as the APIs would, and
// refuse everything else.
func TestSimulatedCLIs(t *testing.T) {
	f := newTalosFixture(t, 3, 2, true)
	dir := f.px.Store.Dir
	_, kc, err := create(t, f.talos, TokenKubeconfig, "kubeconfig", map[string]any{"node": f.cps[0], "clientConfiguration": f.cc})
	noErr(t, err)
	tc, err := getClientConfiguration(f.talos, nil, normalise(map[string]any{"clusterName": "lab", "clientConfiguration": f.cc,
		"endpoints": f.cps}).(map[string]any))
	noErr(t, err)
	files := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(files, name)
		noErr(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	kubeconfig, talosconfig := write("kubeconfig", kc["kubeconfigRaw"].(string)), write("talosconfig", tc["talosConfig"].(string))
	run := func(tool string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := RunCLI(tool, dir, args, strings.NewReader(""), &out, &errb)
		return out.String(), errb.String(), code
	}
	k := func(args ...string) (string, string, int) {
		return run("kubectl", append([]string{"--kubeconfig", kubeconfig, "--request-timeout=30s"}, args...)...)
	}
	reset := func(cfg, node string) (string, string, int) {
		return run("talosctl", "--talosconfig", cfg, "-n", node, "-e", node, "reset", "--graceful=true", "--reboot=false", "--wait=true", "--timeout=10m")
	}
	nodeOf := func(addr string) string {
		for _, n := range f.cluster().Nodes {
			if n.Address == addr {
				return n.Name
			}
		}
		t.Fatalf("no Node object with address %s", addr)
		return ""
	}

	t.Run("get nodes lists every Node object, by role with a selector", func(t *testing.T) {
		out, _, code := k("get", "nodes", "-o", "name")
		if code != 0 || strings.Count(out, "node/") != 5 {
			t.Errorf("exit %d, output %q: want 5 nodes", code, out)
		}
		out, _, _ = k("get", "nodes", "-l", "node-role.kubernetes.io/control-plane", "-o", "name")
		if strings.Count(out, "node/") != 3 {
			t.Errorf("control planes: %q", out)
		}
		out, _, _ = k("get", "nodes", "-l", "!node-role.kubernetes.io/control-plane", "-o", "name")
		if strings.Count(out, "node/") != 2 || !strings.Contains(out, "node/"+nodeOf(f.workers[0])) {
			t.Errorf("workers: %q", out)
		}
	})
	t.Run("the InternalIP jsonpath prints the address", func(t *testing.T) {
		out, _, code := k("get", "node", nodeOf(f.workers[1]), "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
		if code != 0 || out != f.workers[1] {
			t.Errorf("exit %d, %q, want %s", code, out, f.workers[1])
		}
	})
	t.Run("a reset with another cluster's talosconfig is refused", func(t *testing.T) {
		other := newTalosFixture(t, 1, 0, false)
		otc, err := getClientConfiguration(other.talos, nil, normalise(map[string]any{"clusterName": "x", "clientConfiguration": other.cc,
			"endpoints": other.cps}).(map[string]any))
		noErr(t, err)
		_, stderr, code := reset(write("other", otc["talosConfig"].(string)), f.workers[0])
		if code == 0 || !strings.Contains(stderr, "certificate signed by unknown authority") {
			t.Errorf("exit %d: %s", code, stderr)
		}
		if f.state().Machines[f.workers[0]] == nil {
			t.Error("the refused reset wiped the node")
		}
	})
	t.Run("a graceful reset of a control plane leaves etcd, wipes and halts; the Node object stays", func(t *testing.T) {
		name := nodeOf(f.cps[2])
		if _, stderr, code := reset(talosconfig, f.cps[2]); code != 0 {
			t.Fatalf("reset: %s", stderr)
		}
		st := f.state()
		if st.Machines[f.cps[2]] != nil {
			t.Error("the machine still has its configuration")
		}
		c := f.cluster()
		if slices.Contains(c.EtcdMembers, f.cps[2]) || len(c.EtcdMembers) != 2 {
			t.Errorf("etcd members %v", c.EtcdMembers)
		}
		if n := c.Nodes[name]; n == nil || !n.Cordoned {
			t.Errorf("Node %s: %+v, want it kept and cordoned", name, n)
		}
		for _, g := range st.Guests {
			if slices.Contains(g.Addresses, f.cps[2]) && g.Started {
				t.Error("the VM still runs: reset without reboot halts it")
			}
		}
	})
	t.Run("delete node removes the Node object once", func(t *testing.T) {
		name := nodeOf(f.cps[2])
		if _, stderr, code := k("delete", "node", name); code != 0 {
			t.Fatalf("delete: %s", stderr)
		}
		if f.cluster().Nodes[name] != nil {
			t.Error("Node object still there")
		}
		if _, stderr, code := k("delete", "node", name); code == 0 || !strings.Contains(stderr, "NotFound") {
			t.Errorf("second delete: exit %d %s", code, stderr)
		}
	})
	t.Run("anything else is refused, and every call is logged", func(t *testing.T) {
		for _, args := range [][]string{{"drain", "x"}, {"get", "pods", "-o", "name"}, {"get", "nodes", "-o", "wide"}} {
			if _, stderr, code := k(args...); code == 0 || !strings.Contains(stderr, "unsupported") {
				t.Errorf("kubectl %v: exit %d %s", args, code, stderr)
			}
		}
		if _, stderr, code := run("talosctl", "--talosconfig", talosconfig, "-n", f.cps[0], "-e", f.cps[0], "upgrade"); code == 0 || !strings.Contains(stderr, "supports reset, version, etcd members and etcd remove-member, got \"upgrade\"") {
			t.Errorf("talosctl upgrade: exit %d %s", code, stderr)
		}
		calls, err := ReadCalls(dir)
		noErr(t, err)
		cli := 0
		for _, c := range calls {
			if c.Provider == "cli" {
				cli++
			}
		}
		if cli < 10 {
			t.Errorf("%d CLI calls logged", cli)
		}
	})
}
