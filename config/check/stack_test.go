package check

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sda-platform/sda/config"
)

const (
	// pinnedKey is a well-formed ed25519 host key.
	pinnedKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl0b6hT3cVx1Za8zvJqZfC2rXcP8Dq9xYH5cWb5rHkD"
	// badPatch loads but does not validate: Talos refuses a custom CNI.
	badPatch = "cluster:\n  network:\n    cni:\n      name: custom\n"
)

// providerProblem stands for what config.CheckProviderConfig reports.
var providerProblem = config.Problem{Key: "proxmoxve:endpoint", Value: "", Fix: "required"}

// dev is the dev stack as loaded, before Resolve, with its one Proxmox
// node's host key pinned or not.
func dev(t *testing.T, pinned bool) config.Config {
	t.Helper()
	lookup, err := config.StackFiles(stacksDir, "dev")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if pinned {
		c.Proxmox.Nodes[0].SSHHostKey = pinnedKey
	}
	return c
}

// keys lists the keys of a *config.Error's problems, failing on any other
// error.
func keys(t *testing.T, err error) []string {
	t.Helper()
	var invalid *config.Error
	if !errors.As(err, &invalid) {
		t.Fatalf("want a *config.Error, got %v", err)
	}
	var out []string
	for _, p := range invalid.Problems {
		out = append(out, p.Key)
	}
	return out
}

// A stack that passes every check comes back resolved, with its plan and
// its warnings: what config.Resolve and config.Warnings give.
func TestStackPasses(t *testing.T) {
	c := dev(t, false)
	c.Proxmox.InsecureIgnoreHostKeys = true // passes the pins, and warns
	c.Cluster.Patches = []string{"machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n"}
	gotC, gotP, warnings, err := Stack(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantC, wantP, _ := config.Resolve(c)
	if !reflect.DeepEqual(gotC, wantC) || !reflect.DeepEqual(gotP, wantP) {
		t.Errorf("Stack's configuration or plan differs from Resolve's")
	}
	if want := config.Warnings(wantC, wantP); !reflect.DeepEqual(warnings, want) || len(warnings) == 0 ||
		warnings[0].Key != "sda:proxmox.insecureIgnoreHostKeys" {
		t.Errorf("warnings %v, want %v, the opt-out first", warnings, want)
	}
	if gotC.Router.Hostname != "router" || len(gotP.ControlPlanes) != 1 {
		t.Errorf("not resolved: router %q, %d control planes", gotC.Router.Hostname, len(gotP.ControlPlanes))
	}
}

// The configuration's problems come first and the caller's after them, in
// one error; nothing else is checked, no plan and no warnings are given,
// and the configuration comes back with its defaults. Without caller
// problems the error is Resolve's.
func TestStackConfigurationProblems(t *testing.T) {
	c := dev(t, false)
	c.Cluster.ControlPlanes, c.Cluster.CNI = 2, "weave"
	c.Cluster.Patches = []string{badPatch}
	gotC, gotP, warnings, err := Stack(c, Options{Problems: []config.Problem{providerProblem}})
	if got, want := keys(t, err), []string{"sda:cluster.controlPlanes", "sda:cluster.cni", "proxmoxve:endpoint"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %v, want %v", got, want)
	}
	if len(gotP.Machines()) != 0 || warnings != nil || gotC.Router.Hostname != "router" {
		t.Errorf("plan %d machines, warnings %v, router %q: want no plan, no warnings and the defaults", len(gotP.Machines()), warnings, gotC.Router.Hostname)
	}

	_, _, _, err = Stack(c, Options{})
	_, _, resolveErr := config.Resolve(c)
	if err == nil || err.Error() != resolveErr.Error() {
		t.Errorf("Stack: %v\nwant Resolve's: %v", err, resolveErr)
	}
}

// The caller's problems stop the sequence even when the configuration
// resolves: the host keys and the patches are not checked (the program
// reports the provider settings alone then).
func TestStackCallerProblemsAlone(t *testing.T) {
	c := dev(t, false)
	c.Cluster.Patches = []string{badPatch}
	_, _, _, err := Stack(c, Options{Problems: []config.Problem{providerProblem}})
	if got := keys(t, err); !reflect.DeepEqual(got, []string{"proxmoxve:endpoint"}) {
		t.Errorf("problems %v, want the caller's only", got)
	}
}

// A resolved stack with an unpinned host key and a bad patch is refused
// with both, the pin first, and with its plan.
func TestStackPinsAndPatches(t *testing.T) {
	c := dev(t, false)
	c.Cluster.Patches = []string{badPatch}
	_, plan, warnings, err := Stack(c, Options{})
	if got, want := keys(t, err), []string{"sda:proxmox.nodes[0].sshHostKey", "sda:cluster.patches[0]"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problems %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), "sda trust --stack") || !strings.Contains(err.Error(), "on a controlplane") {
		t.Errorf("error lacks the pin's or the patch's fix: %v", err)
	}
	if len(plan.Machines()) != 2 || warnings != nil {
		t.Errorf("plan %d machines, warnings %v: want the plan and no warnings", len(plan.Machines()), warnings)
	}
}

// AllowUnpinnedHostKeys passes an unpinned stack (`sda plan`) but still
// checks the patches; SkipPatches passes a bad patch but still checks the
// pins.
func TestStackOptions(t *testing.T) {
	unpinned := dev(t, false)
	if _, _, _, err := Stack(unpinned, Options{AllowUnpinnedHostKeys: true}); err != nil {
		t.Errorf("AllowUnpinnedHostKeys: %v", err)
	}
	unpinned.Cluster.Patches = []string{badPatch}
	_, _, _, err := Stack(unpinned, Options{AllowUnpinnedHostKeys: true})
	if got := keys(t, err); !reflect.DeepEqual(got, []string{"sda:cluster.patches[0]"}) {
		t.Errorf("AllowUnpinnedHostKeys with a bad patch: %v, want the patch only", got)
	}
	_, _, _, err = Stack(unpinned, Options{SkipPatches: true})
	if got := keys(t, err); !reflect.DeepEqual(got, []string{"sda:proxmox.nodes[0].sshHostKey"}) {
		t.Errorf("SkipPatches, unpinned: %v, want the pin only", got)
	}
	pinned := dev(t, true)
	pinned.Cluster.Patches = []string{badPatch}
	if _, _, _, err := Stack(pinned, Options{SkipPatches: true}); err != nil {
		t.Errorf("SkipPatches, pinned: %v", err)
	}
}
