package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/sda-platform/sda/stacks"
)

// A resource's inputs are what `pulumi up` compares with its recorded
// state: a changed input is an update (or, for a VM's or the machine
// secrets' replace-on-change fields, a replacement). This test keeps every
// input of every resource of the shipped dev and prod stacks as recorded,
// with its dependencies, secretness and protection, so a restructuring of
// the code that computes them shows any change it makes. Record again
// (go test ./tests -run TestInputsUnchanged -update) only for a change that
// is meant to change what is deployed, and review the diff of
// tests/testdata/inputs-<stack>.json like a migration.
func TestInputsUnchanged(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			setStackConfig(t, stack, nil)
			m, err := run(t, stack, stacks.Program)
			if err != nil {
				t.Fatal(err)
			}
			got := recordInputs(m.res)
			file := filepath.Join("testdata", "inputs-"+stack+".json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (record with: go test ./tests -run TestInputsUnchanged -update)", err)
			}
			if string(want) == string(got) {
				return
			}
			var wantRes, gotRes map[string]json.RawMessage
			if err := json.Unmarshal(want, &wantRes); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &gotRes); err != nil {
				t.Fatal(err)
			}
			var diffs []string
			for urn, w := range wantRes {
				g, ok := gotRes[urn]
				switch {
				case !ok:
					diffs = append(diffs, "gone: "+urn)
				case string(g) != string(w):
					diffs = append(diffs, fmt.Sprintf("changed: %s\n    was: %s\n    now: %s", urn, w, g))
				}
			}
			for urn := range gotRes {
				if _, ok := wantRes[urn]; !ok {
					diffs = append(diffs, "new: "+urn)
				}
			}
			slices.Sort(diffs)
			t.Errorf("the %s stack's registered inputs changed; `pulumi up` on a deployed stack would update (or replace) these:\n  %s",
				stack, strings.Join(diffs, "\n  "))
		})
	}
}

// recordedResource is what the engine diffs of one registration.
type recordedResource struct {
	Inputs        any      `json:"inputs"`
	Deps          []string `json:"deps,omitempty"`
	Protect       bool     `json:"protect,omitempty"`
	SecretOutputs []string `json:"secretOutputs,omitempty"`
	Provider      string   `json:"provider,omitempty"`
}

// recordInputs is every registration keyed by URN, one resource per line
// so that a diff of the file reads resource by resource.
func recordInputs(res []registered) []byte {
	byURN := map[string]recordedResource{}
	var urns []string
	for _, r := range res {
		deps := slices.Clone(r.Deps)
		slices.Sort(deps)
		secrets := slices.Clone(r.SecretOutputs)
		slices.Sort(secrets)
		byURN[r.URN] = recordedResource{Inputs: plainValue(resource.NewProperty(r.Inputs)), Deps: deps,
			Protect: r.Protect, SecretOutputs: secrets, Provider: r.Provider}
		urns = append(urns, r.URN)
	}
	slices.Sort(urns)
	var b strings.Builder
	b.WriteString("{\n")
	for i, urn := range urns {
		k, _ := json.Marshal(urn)
		v, _ := json.Marshal(byURN[urn])
		b.Write(k)
		b.WriteString(": ")
		b.Write(v)
		if i < len(urns)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// plainValue is a property value as JSON can hold it, with secrets and
// unknowns marked rather than dropped.
func plainValue(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return map[string]any{"secret": plainValue(v.SecretValue().Element)}
	case v.IsComputed():
		return "<unknown>"
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return map[string]any{"output": "<unknown>", "secret": o.Secret}
		}
		return map[string]any{"output": plainValue(o.Element), "secret": o.Secret}
	case v.IsObject():
		out := map[string]any{}
		for k, e := range v.ObjectValue() {
			out[string(k)] = plainValue(e)
		}
		return out
	case v.IsArray():
		out := []any{}
		for _, e := range v.ArrayValue() {
			out = append(out, plainValue(e))
		}
		return out
	case v.IsResourceReference():
		r := v.ResourceReferenceValue()
		return map[string]any{"resource": string(r.URN)}
	case v.IsNull():
		return nil
	default:
		return v.V
	}
}
