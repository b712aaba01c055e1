package tests

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/stacks"
)

// update rewrites the recorded URN lists from the current code:
//
//	go test ./tests -run TestURNsUnchanged -update
//
// Do that only for a change that is meant to create or delete resources
// (a new resource, a new stack in testdata/stacks), never to make a rename
// pass: review the diff of tests/testdata/urns-*.txt like a migration.
var update = flag.Bool("update", false, "rewrite tests/testdata/urns-<stack>.txt from the current code")

// A resource's URN is its identity in a deployed stack: the stack, the
// project, the type tokens of its parents and itself, and its name. If a
// refactor changes one (a renamed resource, a new parent, another type
// token), `pulumi up` on a deployed stack deletes the old resource and
// creates a new one: a new VM, new Talos machine secrets, a new cluster.
// This test keeps every URN of the shipped dev and prod stacks as recorded;
// the engine tests (tests/engine, assertRecordedURNs) check the same lists
// against the real engine's state. The mocks do not register default
// providers; SDA's resources use explicit ones or none.
func TestURNsUnchanged(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			setStackConfig(t, stack, nil)
			m, err := run(t, stack, stacks.Program)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range m.res {
				got = append(got, r.URN)
			}
			slices.Sort(got)
			if d := duplicates(got); len(d) > 0 {
				t.Errorf("registered more than once (the engine refuses a duplicate URN):\n  %s", strings.Join(d, "\n  "))
			}
			file := filepath.Join("testdata", "urns-"+stack+".txt")
			if *update {
				if err := os.WriteFile(file, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %d URNs to %s", len(got), file)
				return
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (record the list with: go test ./tests -run TestURNsUnchanged -update)", err)
			}
			want := strings.Split(strings.TrimSpace(string(data)), "\n")
			gone, added := difference(want, got), difference(got, want)
			// A resource registered under a new URN with its recorded URN
			// as an alias is moved by the engine, not replaced.
			aliases := map[string][]string{}
			for _, r := range m.res {
				aliases[r.URN] = r.Aliases
			}
			moved := map[string]bool{}
			for _, u := range added {
				for _, a := range aliases[u] {
					if slices.Contains(gone, a) {
						t.Logf("moved by alias: %s -> %s", a, u)
						moved[u], moved[a] = true, true
					}
				}
			}
			gone = slices.DeleteFunc(gone, func(u string) bool { return moved[u] })
			added = slices.DeleteFunc(added, func(u string) bool { return moved[u] })
			if len(gone) == 0 && len(added) == 0 {
				return
			}
			var b strings.Builder
			b.WriteString("the stack's URNs changed; on a deployed " + stack + " stack, `pulumi up` would delete every resource that disappeared and create every one that appeared, i.e. replace them.\n")
			if len(gone) > 0 {
				b.WriteString("disappeared:\n  " + strings.Join(gone, "\n  ") + "\n")
			}
			if len(added) > 0 {
				b.WriteString("appeared:\n  " + strings.Join(added, "\n  ") + "\n")
			}
			b.WriteString("If a rename or re-parenting is intended, give the resource its old URN as an alias " +
				"(pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(oldName)}}), or {Parent: oldParent}, or {URN: pulumi.URN(old)}), so the engine moves it instead; this test accepts that. " +
				"If the resources really are new or gone, record the list again: go test ./tests -run TestURNsUnchanged -update")
			t.Error(b.String())
		})
	}
}

// difference is what a has and b lacks; both sorted.
func difference(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, found := slices.BinarySearch(b, s); !found {
			out = append(out, s)
		}
	}
	return out
}

func duplicates(sorted []string) []string {
	var out []string
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] && (len(out) == 0 || out[len(out)-1] != sorted[i]) {
			out = append(out, sorted[i])
		}
	}
	return out
}
