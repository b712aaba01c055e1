package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// The YAML language host is looked up once, when a test needs it (TestMain
// builds the component package, pulumi-resource-sda, for every test).
var (
	packageOnce sync.Once
	packageErr  error
)

// requirePackage checks that the YAML language host is installed
// (scripts/install-pulumi.sh) and puts it on PATH.
func requirePackage(t *testing.T) {
	t.Helper()
	requireEngine(t)
	packageOnce.Do(func() {
		// scripts/install-pulumi.sh puts the host beside the CLI. Last on
		// PATH: the plugins this run built come first.
		if _, err := os.Stat(filepath.Join(filepath.Dir(pulumiBin), "pulumi-language-yaml")); err == nil {
			os.Setenv("PATH", os.Getenv("PATH")+string(os.PathListSeparator)+filepath.Dir(pulumiBin))
		}
		if _, err := exec.LookPath("pulumi-language-yaml"); err != nil {
			packageErr = fmt.Errorf("the YAML language host is neither beside %s nor on PATH: run scripts/install-pulumi.sh (%v)", pulumiBin, err)
		}
	})
	if packageErr != nil {
		t.Fatal(packageErr)
	}
}

// cli runs the pinned pulumi CLI in dir, as a user at a shell would, and
// returns its standard output.
func cli(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := cliErr(dir, env, args...)
	if err != nil {
		// Only the subcommand: the arguments may be credentials.
		t.Fatalf("pulumi %s: %v", strings.Join(args[:min(2, len(args))], " "), err)
	}
	return out
}

func cliErr(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command(pulumiBin, append([]string{"--non-interactive"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// urnTails strips "urn:pulumi:<stack>::<project>::" from each URN: what is
// left (the parent type chain, the type and the name) is what a program
// decides.
func urnTails(urns []string) []string {
	var out []string
	for _, u := range urns {
		parts := strings.SplitN(u, "::", 3)
		if len(parts) == 3 {
			out = append(out, parts[2])
		}
	}
	slices.Sort(out)
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// TestYAMLProgramUsesTheComponentPackage proves the multi-language package
// end to end. examples/yaml/Pulumi.yaml declares the dev platform from the
// sda package by its sda:index tokens, with no SDA stack configuration; the
// pinned CLI runs it with the YAML language host, and pulumi-resource-sda
// constructs each component with the same Go code the stack uses, against
// the simulated providers. It must:
//   - go up, with the cluster's nodes configured and its members healthy;
//   - register exactly the child resources the Go dev stack registers (the
//     recorded URNs, stack and project aside), so a program can move between
//     languages without a replacement;
//   - keep the kubeconfig secret in outputs and out of the state's plaintext;
//   - plan nothing on a second preview;
//   - destroy everything it created.
func TestYAMLProgramUsesTheComponentPackage(t *testing.T) {
	requirePackage(t)
	dir := t.TempDir()
	program, err := os.ReadFile(filepath.Join(repoRoot, "examples", "yaml", "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), program, 0o644); err != nil {
		t.Fatal(err)
	}
	simDir := t.TempDir()
	hostKey := newHostKey(t)
	if err := engine.WriteWorld(simDir, engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "192.168.1.10", HostKeys: []string{hostKey}})); err != nil {
		t.Fatal(err)
	}
	if err := engine.WriteFaults(simDir, engine.Faults{AgentWaitScale: agentWaitScale}); err != nil {
		t.Fatal(err)
	}
	env := []string{
		engine.StateDirEnv + "=" + simDir,
		"HOME=" + t.TempDir(), // the known_hosts the pins go to
		"PULUMI_BACKEND_URL=file://" + t.TempDir(),
		"HTTPS_PROXY=" + startTalosAPI(t, simDir),
	}
	token := "root@pam!sda=" + randomHex(16)
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\n" + randomHex(32) + "\n-----END OPENSSH PRIVATE KEY-----\n"
	cli(t, dir, env, "stack", "init", "dev")
	cli(t, dir, env, "config", "set", "proxmoxve:endpoint", "https://pve.example.test:8006/")
	cli(t, dir, env, "config", "set", "--secret", "proxmoxve:apiToken", "--", token)
	cli(t, dir, env, "config", "set", "--secret", "sshPrivateKey", "--", key)
	cli(t, dir, env, "config", "set", "sshHostKey", "--", hostKey)
	// The Proxmox provider imports VM disks over SSH with settings of its own.
	cli(t, dir, env, "config", "set", "--path", "proxmoxve:ssh.username", "root")
	cli(t, dir, env, "config", "set", "--path", "--secret", "proxmoxve:ssh.privateKey", "--", key)
	cli(t, dir, env, "config", "set", "--path", "proxmoxve:ssh.nodes[0].name", "pve")
	cli(t, dir, env, "config", "set", "--path", "proxmoxve:ssh.nodes[0].address", "192.168.1.10")

	cli(t, dir, env, "up", "--yes", "--skip-preview")

	// The cluster exists in the simulated systems: its node's configuration
	// applied, etcd with the control plane as its member, Node objects.
	st, err := engine.ReadState(simDir)
	if err != nil {
		t.Fatal(err)
	}
	var clusters []*engine.TalosCluster
	for _, c := range st.Clusters {
		clusters = append(clusters, c)
	}
	if len(clusters) != 1 || clusters[0].Name != "dev" {
		t.Fatalf("want one bootstrapped cluster named dev, got %+v", clusters)
	}
	if got := clusters[0].EtcdMembers; !slices.Equal(got, []string{"10.10.0.11"}) {
		t.Errorf("etcd members = %v, want [10.10.0.11]", got)
	}
	var nodes []string
	for name := range clusters[0].Nodes {
		nodes = append(nodes, name)
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"dev-cp1", "dev-worker1"}) {
		t.Errorf("Kubernetes nodes = %v, want [dev-cp1 dev-worker1]", nodes)
	}

	// Same children, same types, same names as the Go stack: the recorded
	// dev URNs, without the stack-level explicit provider, which belongs to
	// the SDA stack program rather than to a component.
	var export struct {
		Deployment struct {
			Resources []struct {
				URN  string `json:"urn"`
				Type string `json:"type"`
			} `json:"resources"`
		} `json:"deployment"`
	}
	raw := cli(t, dir, env, "stack", "export")
	if err := json.Unmarshal([]byte(raw), &export); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range export.Deployment.Resources {
		if r.Type == "pulumi:pulumi:Stack" || strings.HasPrefix(r.Type, "pulumi:providers:") {
			continue
		}
		got = append(got, r.URN)
	}
	var want []string
	for _, u := range readLines(t, filepath.Join(repoRoot, "tests", "testdata", "urns-dev.txt")) {
		if !strings.Contains(u, "::pulumi:providers:") {
			want = append(want, u)
		}
	}
	if g, w := urnTails(got), urnTails(want); !slices.Equal(g, w) {
		t.Errorf("the YAML program's resources differ from the Go dev stack's\n got: %s\nwant: %s",
			strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}

	// Secret outputs stay secret, and the state holds no plaintext of them.
	shown := cli(t, dir, env, "stack", "output", "--json")
	var masked map[string]any
	if err := json.Unmarshal([]byte(shown), &masked); err != nil {
		t.Fatal(err)
	}
	if masked["kubeconfig"] != "[secret]" || masked["talosconfig"] != "[secret]" {
		t.Errorf("kubeconfig and talosconfig outputs must be secret, got %v / %v", masked["kubeconfig"], masked["talosconfig"])
	}
	var plain map[string]any
	if err := json.Unmarshal([]byte(cli(t, dir, env, "stack", "output", "--json", "--show-secrets")), &plain); err != nil {
		t.Fatal(err)
	}
	kubeconfig, _ := plain["kubeconfig"].(string)
	if !strings.Contains(kubeconfig, "server: https://10.10.0.11:6443") {
		t.Fatalf("kubeconfig output does not reach the control plane:\n%s", kubeconfig)
	}
	if mid := kubeconfig[len(kubeconfig)/2-20 : len(kubeconfig)/2+20]; strings.Contains(raw, mid) {
		t.Errorf("the state holds the kubeconfig in plaintext")
	}
	if strings.Contains(raw, token) || strings.Contains(raw, strings.TrimSpace(key)) {
		t.Errorf("the state holds a configured credential in plaintext")
	}

	// A second preview plans nothing.
	if _, err := cliErr(dir, env, "preview", "--expect-no-changes"); err != nil {
		t.Errorf("a preview right after up plans changes: %v", err)
	}

	// The machine secrets are protected: destroy refuses them until the user
	// says so, as every deployment of the cluster needs them.
	if _, err := cliErr(dir, env, "destroy", "--yes", "--skip-preview"); err == nil || !strings.Contains(err.Error(), "because it is protected") {
		t.Fatalf("destroy of a protected cluster must refuse the machine secrets, got %v", err)
	}
	cli(t, dir, env, "state", "unprotect", "--all", "--yes")
	cli(t, dir, env, "destroy", "--yes", "--skip-preview")
	if left := simObjects(t, simDir); len(left) > 0 {
		t.Errorf("destroy left objects in the simulated systems:\n  %s", strings.Join(left, "\n  "))
	}
}

// TestGoProgramOutsideTheRepo proves the components serve a Go program that
// is not SDA: examples/components, a module of its own with no SDA stack
// configuration, is copied out of the repository, built against this
// checkout (a replace, as a user's go.mod would require a release), and run
// embedded (`edge up`, `edge preview`, `edge destroy`) through the
// Automation API against the simulated providers. Its cluster must come up
// with the nodes and Cilium it declares, preview idle, and go away entirely.
func TestGoProgramOutsideTheRepo(t *testing.T) {
	requireEngine(t)
	dir := t.TempDir()
	src := filepath.Join(repoRoot, "examples", "components")
	for _, name := range []string{"main.go", "go.mod", "go.sum", "Pulumi.yaml", "Pulumi.dev.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "go.mod" {
			b = []byte(strings.Replace(string(b), "=> ../..", "=> "+repoRoot, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", "edge", ".")
	build.Dir = dir
	// Not through the simulated nodes' proxy (TestMain sets it).
	build.Env = append(os.Environ(), "HTTPS_PROXY=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the program outside the repository: %v\n%s", err, out)
	}

	simDir := t.TempDir()
	hostKey := newHostKey(t)
	world := engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "pve.lan", HostKeys: []string{hostKey}})
	world.Bridges = append(world.Bridges, "vmbr9") // the example's existing bridge
	if err := engine.WriteWorld(simDir, world); err != nil {
		t.Fatal(err)
	}
	if err := engine.WriteFaults(simDir, engine.Faults{AgentWaitScale: agentWaitScale}); err != nil {
		t.Fatal(err)
	}
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\n" + randomHex(32) + "\n-----END OPENSSH PRIVATE KEY-----\n"
	env := append(os.Environ(),
		engine.StateDirEnv+"="+simDir,
		"SDA_HOME="+t.TempDir(),
		"HOME="+t.TempDir(), // the known_hosts the pins go to
		"SDA_PULUMI_BIN="+pulumiBin,
		"HTTPS_PROXY="+startTalosAPI(t, simDir),
		"PROXMOX_VE_ENDPOINT=https://pve.example.test:8006/",
		"PROXMOX_VE_API_TOKEN=root@pam!edge="+randomHex(16),
		"PROXMOX_VE_SSH_USERNAME=root",
		"PROXMOX_VE_SSH_PRIVATE_KEY="+key,
		"EDGE_SSH_HOST_KEY="+hostKey,
	)
	run := func(op string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, "edge"), op)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("edge %s: %v\n%s", op, err, stderr.String())
		}
		return stdout.String()
	}

	if out := run("up"); !strings.Contains(out, "ready: true") {
		t.Fatalf("edge up did not report a ready cluster: %q", out)
	}
	st, err := engine.ReadState(simDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Clusters) != 1 {
		t.Fatalf("want one cluster, got %d", len(st.Clusters))
	}
	for _, c := range st.Clusters {
		if c.Name != "edge" || !slices.Equal(c.EtcdMembers, []string{"10.42.0.11"}) {
			t.Errorf("cluster %q with etcd members %v, want edge with [10.42.0.11]", c.Name, c.EtcdMembers)
		}
		var nodes []string
		for name := range c.Nodes {
			nodes = append(nodes, name)
		}
		slices.Sort(nodes)
		if !slices.Equal(nodes, []string{"edge-cp1", "edge-worker1", "edge-worker2"}) {
			t.Errorf("Kubernetes nodes = %v", nodes)
		}
		if c.Releases["kube-system/cilium"] == "" {
			t.Errorf("Cilium is not installed: releases %v", c.Releases)
		}
	}
	if out := run("preview"); !strings.Contains(out, "preview: 0 to change") {
		t.Errorf("a preview after up plans changes: %q", out)
	}
	run("destroy")
	if left := simObjects(t, simDir); len(left) > 0 {
		t.Errorf("destroy left objects in the simulated systems:\n  %s", strings.Join(left, "\n  "))
	}
}
