package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simworld"
	"github.com/sda-platform/sda/stacks"
)

// env is one stack under test: its own backend, work directory and
// simulated Proxmox/Talos/Kubernetes.
type env struct {
	t      *testing.T
	stack  string
	simDir string
	home   string
	cfg    config.Config
	// creds are the plaintext credentials given to the stack, by config key.
	creds map[string]string
	// stackFileOnly runs on the project's Pulumi.<stack>.yaml as it is,
	// as `sda up` does, instead of the typed cfg.
	stackFileOnly bool
	// output collects every progress line (warnings included) of every run.
	output []string
	// program replaces stacks.Program when set; extraEnv is added to the
	// engine's (and so the plugins') environment.
	program  pulumi.RunFunc
	extraEnv map[string]string
	// hostKeys are the simulated Proxmox nodes' SSH host keys by node name,
	// pinned in the stack's configuration as `sda trust` would pin them.
	hostKeys map[string]string
}

// newHostKey is a fresh ed25519 SSH host key as an authorized_keys line.
func newHostKey(t *testing.T) string {
	t.Helper()
	k, err := engine.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEnv starts a stack from the repository's Pulumi.<stack>.yaml on a
// simulated Proxmox cluster that has the stack's nodes.
func newEnv(t *testing.T, stack string) *env {
	t.Helper()
	requireEngine(t)
	lookup, err := config.StackFiles(projectDir, stack)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(lookup)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, stack: stack, simDir: t.TempDir(), home: t.TempDir(), cfg: c, hostKeys: map[string]string{},
		creds: map[string]string{
			"proxmoxve:apiToken": "root@pam!sda=" + randomHex(16),
			"sda:sshPrivateKey":  "-----BEGIN OPENSSH PRIVATE KEY-----\n" + randomHex(32) + "\n-----END OPENSSH PRIVATE KEY-----\n",
		}}
	nodes, err := simworld.Nodes(&e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		e.hostKeys[n.Name] = n.HostKeys[0]
	}
	if err := engine.WriteWorld(e.simDir, engine.DefaultWorld(nodes...)); err != nil {
		t.Fatal(err)
	}
	e.writeFaults(engine.Faults{})
	e.extraEnv = map[string]string{"HTTPS_PROXY": startTalosAPI(t, e.simDir)}
	return e
}

// startTalosAPI points the nodes' Talos API (apid), served for the whole
// run by TestMain, at simDir for the test's life, and returns the proxy URL
// that reaches it: code under test uses Talos's own client, whose dialer
// honours HTTPS_PROXY as talosctl's does, so the engine's environment gets
// HTTPS_PROXY and nothing else. One server and one URL for the run: Go
// reads proxy settings from the environment once per process, and inline
// programs (their hooks) run in this one.
func startTalosAPI(t *testing.T, simDir string) string {
	t.Helper()
	talosAPIDir.Store(simDir)
	t.Cleanup(func() { talosAPIDir.Store("") })
	return talosAPIProxy
}

// agentWaitScale shortens the Proxmox provider's waits for a guest agent
// that does not answer (components.AgentTimeout becomes 60 ms), keeping their order.
const agentWaitScale = 0.001

// handoverTimeScale shortens a router pair's handover waits: the peer-gone
// time a destroy waits (routerfiles.PeerGoneSeconds, 30 s) becomes 3 s,
// the deadline (1200 s) 2 minutes.
const handoverTimeScale = 0.1

// writeFaults sets the simulation's faults, with the agent and handover
// waits scaled.
func (e *env) writeFaults(f engine.Faults) {
	e.t.Helper()
	if f.AgentWaitScale == 0 {
		f.AgentWaitScale = agentWaitScale
	}
	if f.HandoverTimeScale == 0 {
		f.HandoverTimeScale = handoverTimeScale
	}
	if err := engine.WriteFaults(e.simDir, f); err != nil {
		e.t.Fatal(err)
	}
}

// lineLogger sends progress lines to the test log (shown with -v or on failure).
type lineLogger struct {
	t    *testing.T
	buf  bytes.Buffer
	sink *[]string
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(strings.TrimRight(line, "\n"))
		if l.sink != nil {
			*l.sink = append(*l.sink, strings.TrimRight(line, "\n"))
		}
	}
}

// open opens the stack with the env's current typed configuration.
func (e *env) open(ctx context.Context) *automation.Deployment {
	e.t.Helper()
	values := map[string]automation.ConfigValue{
		"proxmoxve:endpoint": {Value: "https://pve.example.test:8006/"},
		"proxmoxve:apiToken": {Value: e.creds["proxmoxve:apiToken"], Secret: true},
		"sda:sshPrivateKey":  {Value: e.creds["sda:sshPrivateKey"], Secret: true},
	}
	cfg := &e.cfg
	if e.stackFileOnly {
		// The stack file as it is, with the host keys pinned the way a
		// user pins them: `pulumi config set --path`.
		cfg = nil
		for i, n := range e.cfg.Proxmox.Nodes {
			if n.SSHHostKey != "" {
				values[fmt.Sprintf("sda:proxmox.nodes[%d].sshHostKey", i)] = automation.ConfigValue{Value: n.SSHHostKey, Path: true}
			}
		}
	}
	d, err := automation.Open(ctx, automation.Options{
		ProjectDir:   projectDir,
		Stack:        e.stack,
		Program:      e.programOrDefault(),
		Config:       cfg,
		ConfigValues: values,
		Home:         e.home,
		PulumiBin:    pulumiBin,
		Env:          e.env(),
		Progress:     &lineLogger{t: e.t, sink: &e.output},
	})
	if err != nil {
		e.t.Fatalf("opening stack %s: %v", e.stack, err)
	}
	return d
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// isCustom reports whether a step is a resource of a provider (not the
// stack, a component or a provider instance).
func isCustom(s automation.Step) bool {
	return s.Type != "pulumi:pulumi:Stack" && !strings.HasPrefix(s.Type, "pulumi:providers:") &&
		!strings.HasPrefix(s.Type, "sda:")
}

func describe(steps []automation.Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("\n  " + s.Op + " " + s.Name + " (" + s.Type + ")")
		if len(s.Diffs) > 0 {
			b.WriteString(" diffs=" + strings.Join(s.Diffs, ","))
		}
		if len(s.Replaces) > 0 {
			b.WriteString(" replaces=" + strings.Join(s.Replaces, ","))
		}
	}
	return b.String()
}

// deployment parses the exported state.
func deployment(t *testing.T, d *automation.Deployment) (apitype.DeploymentV3, []byte) {
	t.Helper()
	exp, err := d.Export(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var dep apitype.DeploymentV3
	if len(exp.Deployment) > 0 {
		if err := json.Unmarshal(exp.Deployment, &dep); err != nil {
			t.Fatal(err)
		}
	}
	return dep, exp.Deployment
}

// stateObjects lists "urn#id" of the simulated providers' resources in the
// state, the way the simulation keys its objects. SDA's own resources
// (sda:index:TalosNodeVersion, served by pulumi-resource-sda) are not the
// simulation's: they live in the nodes, which the simulation does model.
func stateObjects(dep apitype.DeploymentV3) []string {
	var out []string
	for _, r := range dep.Resources {
		if r.Custom && !strings.HasPrefix(string(r.Type), "pulumi:providers:") && !strings.HasPrefix(string(r.Type), "sda:") {
			out = append(out, string(r.URN)+"#"+string(r.ID))
		}
	}
	sort.Strings(out)
	return out
}

func simObjects(t *testing.T, dir string) []string {
	t.Helper()
	st, err := engine.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for key := range st.Objects {
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

// assertConsistent checks that the engine's state and the simulated systems
// hold exactly the same objects: nothing orphaned, nothing missing.
func (e *env) assertConsistent(d *automation.Deployment) {
	e.t.Helper()
	dep, _ := deployment(e.t, d)
	inState, inSim := stateObjects(dep), simObjects(e.t, e.simDir)
	if strings.Join(inState, "\n") != strings.Join(inSim, "\n") {
		e.t.Fatalf("state and simulated systems disagree\nstate:\n  %s\nsimulation:\n  %s",
			strings.Join(inState, "\n  "), strings.Join(inSim, "\n  "))
	}
	for _, r := range dep.Resources {
		if r.Custom && len(r.InitErrors) > 0 {
			e.t.Errorf("%s has init errors in the state: %v", r.URN, r.InitErrors)
		}
	}
	if len(dep.PendingOperations) > 0 {
		e.t.Fatalf("state has pending operations: %+v", dep.PendingOperations)
	}
}

// calls returns the simulation's call log from index from on.
func (e *env) calls(from int) []engine.Call {
	e.t.Helper()
	all, err := engine.ReadCalls(e.simDir)
	if err != nil {
		e.t.Fatal(err)
	}
	if from > len(all) {
		return nil
	}
	return all[from:]
}

func mutating(calls []engine.Call) []engine.Call {
	var out []engine.Call
	for _, c := range calls {
		switch c.Method {
		case "Create", "Update", "Delete":
			out = append(out, c)
		}
	}
	return out
}

// stateFile returns the bytes of the stack's checkpoint in the file backend.
func (e *env) stateFile(project string) []byte {
	e.t.Helper()
	found, err := os.ReadFile(e.statePath(project))
	if err != nil {
		e.t.Fatal(err)
	}
	return found
}

// statePath is the file of the stack's checkpoint in the file backend.
func (e *env) statePath(project string) string {
	e.t.Helper()
	var found string
	_ = filepath.Walk(filepath.Join(e.home, "state"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Base(path) == e.stack+".json" && strings.Contains(path, project) {
			found = path
		}
		return nil
	})
	if found == "" {
		e.t.Fatalf("no checkpoint for stack %s under %s", e.stack, filepath.Join(e.home, "state"))
	}
	return found
}

// assertMembers checks the one cluster's Kubernetes Node objects (by name)
// and etcd members (by address) against what the stack declares.
func (e *env) assertMembers(st *engine.State, nodes, etcd []string) {
	e.t.Helper()
	if len(st.Clusters) != 1 {
		e.t.Fatalf("want one cluster, have %d", len(st.Clusters))
	}
	for _, c := range st.Clusters {
		var names []string
		for n := range c.Nodes {
			names = append(names, n)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(nodes, ",") {
			e.t.Errorf("Kubernetes nodes %v, want %v", names, nodes)
		}
		members := append([]string(nil), c.EtcdMembers...)
		sort.Strings(members)
		if strings.Join(members, ",") != strings.Join(etcd, ",") {
			e.t.Errorf("etcd members %v, want %v", members, etcd)
		}
	}
}

// assertRemovedBeforeDeleted checks, in the call log from mark on, that
// the node at address was reset gracefully through the Talos API and its
// Node object deleted before its VM was deleted.
func (e *env) assertRemovedBeforeDeleted(mark int, address, vm string) {
	e.t.Helper()
	reset, deleteNode, deleteVM := -1, -1, -1
	for i, c := range e.calls(mark) {
		switch {
		case c.Provider == "talos-apid" && c.Method == "Reset" && c.Name == address && c.Error == "":
			reset = i
		case c.Provider == "kube-apiserver" && c.Name == "DELETE /api/v1/nodes/"+strings.TrimSuffix(vm, "-vm") && c.Error == "":
			deleteNode = i
		case c.Method == "Delete" && c.Name == vm && c.Error == "":
			deleteVM = i
		}
	}
	if reset < 0 || deleteNode < 0 || deleteVM < 0 {
		e.t.Fatalf("%s (%s): graceful reset at call %d, Node deleted at %d, VM deleted at %d: all three must happen", vm, address, reset, deleteNode, deleteVM)
	}
	if !(reset < deleteNode && deleteNode < deleteVM) {
		e.t.Errorf("%s (%s): reset at call %d, Node deleted at %d, VM deleted at %d: want that order", vm, address, reset, deleteNode, deleteVM)
	}
}

func (e *env) programOrDefault() pulumi.RunFunc {
	if e.program != nil {
		return e.program
	}
	return stacks.Program
}

// env is the engine's environment. HOME is the test's own: the Proxmox
// provider (real and simulated) reads and writes $HOME/.ssh/known_hosts,
// where SDA's KnownHost pins go, and each test's nodes have keys of their
// own.
func (e *env) env() map[string]string {
	out := map[string]string{engine.StateDirEnv: e.simDir, "HOME": filepath.Join(e.home, "home")}
	for k, v := range e.extraEnv {
		out[k] = v
	}
	return out
}

// assertRecordedURNs checks the mock tests' recorded URN list
// (tests/testdata/urns-<stack>.txt, TestURNsUnchanged) against the real
// engine's state: the mocks compute URNs themselves, so this proves they
// compute what the engine records. The stack resource and the default
// providers the engine adds are not in the list.
func (e *env) assertRecordedURNs(d *automation.Deployment) {
	e.t.Helper()
	dep, _ := deployment(e.t, d)
	var got []string
	for _, r := range dep.Resources {
		if r.Type == "pulumi:pulumi:Stack" ||
			strings.HasPrefix(string(r.Type), "pulumi:providers:") && strings.HasPrefix(r.URN.Name(), "default") {
			continue
		}
		got = append(got, string(r.URN))
	}
	sort.Strings(got)
	data, err := os.ReadFile(filepath.Join(repoRoot, "tests", "testdata", "urns-"+e.stack+".txt"))
	if err != nil {
		e.t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(string(data)), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Errorf("the engine's URNs differ from tests/testdata/urns-%s.txt\nengine:\n  %s\nrecorded:\n  %s",
			e.stack, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
