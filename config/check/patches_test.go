package check

import (
	"strings"
	"testing"

	"github.com/sda-platform/sda/config"
)

// stacksDir holds the test copies of the shipped stacks.
const stacksDir = "../../testdata/stacks"

// patchCases are user patches and the problems Patches reports for them,
// each as "index: words of the fix".
var patchCases = []struct {
	name    string
	patches []string
	want    []string
}{
	{"no patches", nil, nil},
	{"good patches", []string{"machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n", "cluster:\n  proxy:\n    disabled: true\n"}, nil},
	{"not YAML", []string{"machine: [unclosed\n"}, []string{"0: cannot load"}},
	{"second of three is not a mapping", []string{"machine:\n  sysctls:\n    a.b: \"1\"\n", "- just\n- a list\n", "cluster: {}\n"}, []string{"1: cannot load"}},
	{"unknown field", []string{"machine:\n  kubelett:\n    image: x\n"}, []string{"0: cannot load"}},
	{"valid alone, rejected by the validator", []string{"machine:\n  sysctls:\n    vm.max_map_count: \"1\"\n", "cluster:\n  network:\n    cni:\n      name: custom\n"}, []string{"1: on a controlplane"}},
}

// devWithPatches is the dev stack, resolved, with the given user patches.
func devWithPatches(t *testing.T, patches []string) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := config.LoadStack(stacksDir, "dev")
	if err != nil {
		t.Fatal(err)
	}
	c.Cluster.Patches = patches
	return c, p
}

// Every user patch is loaded, applied and validated by Talos's machinery;
// a problem names the patch's index and Talos's complaint.
func TestPatches(t *testing.T) {
	for _, tc := range patchCases {
		t.Run(tc.name, func(t *testing.T) {
			got := Patches(devWithPatches(t, tc.patches))
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				idx, words, _ := strings.Cut(w, ": ")
				if got[i].Key != "sda:cluster.patches["+idx+"]" || !strings.Contains(got[i].Fix, words) {
					t.Errorf("problem %v, want key index %s and %q", got[i], idx, words)
				}
			}
		})
	}
}

// A problem shows the patch on one line, cut to 60 characters, and says
// how to see what it produces.
func TestPatchProblemValue(t *testing.T) {
	long := "machine:\n  kubelett:\n    image: " + strings.Repeat("x", 80) + "\n"
	got := Patches(devWithPatches(t, []string{long}))
	if len(got) != 1 {
		t.Fatalf("problems %v, want one", got)
	}
	want := ("machine: kubelett: image: " + strings.Repeat("x", 80))[:57] + "..."
	if got[0].Value != want || !strings.HasSuffix(got[0].Fix, "fix or remove the patch (`sda render` shows the configuration it produces)") {
		t.Errorf("problem %s = %q: %s; want the value %q and the render hint", got[0].Key, got[0].Value, got[0].Fix, want)
	}
}
