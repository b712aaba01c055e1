package main

import (
	"context"
	"os"
	"reflect"
	"sort"
	"testing"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"

	"github.com/sda-platform/sda/components/pluginapi"
	"github.com/sda-platform/sda/provider/internal/fielddocs"
)

func servedSchema(t *testing.T, build func() (p.Provider, error)) schema.PackageSpec {
	t.Helper()
	prov, err := build()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := p.GetSchema(context.Background(), Name, Version, prov)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestFieldDocsCurrent: fielddocs_gen.go holds the Go comments as the
// sources have them now. Regenerate with `go generate` in provider/.
func TestFieldDocsCurrent(t *testing.T) {
	docs, err := fielddocs.Read(".")
	if err != nil {
		t.Fatal(err)
	}
	want, err := docs.Source("main", "fieldDocs", fielddocs.Generator)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("fielddocs_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("fielddocs_gen.go is stale: the fields' Go comments changed; run `go generate` in provider/")
	}
}

// TestSchemaDescribed: every property the plugin serves (each resource's
// and component's inputs and outputs, each function's, each object type's)
// and every object type has a description, so TypeScript, Python and YAML
// users see the Go comments.
func TestSchemaDescribed(t *testing.T) {
	spec := servedSchema(t, Provider)
	var missing []string
	props := func(where string, ps map[string]schema.PropertySpec) {
		for name, prop := range ps {
			if prop.Description == "" {
				missing = append(missing, where+"."+name)
			}
		}
	}
	for token, r := range spec.Resources {
		if r.Description == "" {
			missing = append(missing, token)
		}
		props(token+" input", r.InputProperties)
		props(token+" output", r.Properties)
	}
	for token, f := range spec.Functions {
		if f.Description == "" {
			missing = append(missing, token)
		}
		if f.Inputs != nil {
			props(token+" input", f.Inputs.Properties)
		}
		if f.Outputs != nil {
			props(token+" output", f.Outputs.Properties)
		}
		if f.ReturnType != nil && f.ReturnType.ObjectTypeSpec != nil {
			props(token+" output", f.ReturnType.ObjectTypeSpec.Properties)
		}
	}
	for token, typ := range spec.Types {
		if typ.Description == "" {
			missing = append(missing, token)
		}
		props(token, typ.Properties)
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s has no description: comment its Go field (then `go generate` in provider/)", m)
	}
	for token := range schemaTypes {
		_, r := spec.Resources[token]
		_, f := spec.Functions[token]
		if !r && !f {
			t.Errorf("schemaTypes names %s, which the schema does not serve", token)
		}
	}
}

// stripDescriptions clears every description in v (a schema spec value).
func stripDescriptions(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			stripDescriptions(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if v.Type().Field(i).Name == "Description" && f.Kind() == reflect.String {
				f.SetString("")
			} else if f.CanSet() {
				stripDescriptions(f)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			stripDescriptions(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			stripDescriptions(e)
			v.SetMapIndex(k, e)
		}
	}
}

// TestSchemaOnlyDescribed: the descriptions are all the schema gains;
// tokens, properties, types and everything else are infer's.
func TestSchemaOnlyDescribed(t *testing.T) {
	described, bare := servedSchema(t, Provider), servedSchema(t, undescribedProvider)
	stripDescriptions(reflect.ValueOf(&described))
	stripDescriptions(reflect.ValueOf(&bare))
	if !reflect.DeepEqual(described, bare) {
		t.Errorf("filling the descriptions changed more than descriptions")
	}
}

// TestUncommentedFieldsAreUncommented: an entry of uncommentedFields is a
// property the schema serves whose Go field has no comment.
func TestUncommentedFieldsAreUncommented(t *testing.T) {
	spec := servedSchema(t, undescribedProvider)
	served := map[string]map[string]bool{}
	add := func(key string, ps map[string]schema.PropertySpec) {
		if served[key] == nil {
			served[key] = map[string]bool{}
		}
		for name := range ps {
			served[key][name] = true
		}
	}
	for token, ts := range schemaTypes {
		if r, ok := spec.Resources[token]; ok {
			add(typeKey(ts.in), r.InputProperties)
			add(typeKey(ts.out), r.Properties)
		}
		if f, ok := spec.Functions[token]; ok {
			if f.Inputs != nil {
				add(typeKey(ts.in), f.Inputs.Properties)
			}
			if f.ReturnType != nil && f.ReturnType.ObjectTypeSpec != nil {
				add(typeKey(ts.out), f.ReturnType.ObjectTypeSpec.Properties)
			}
		}
	}
	for token, typ := range spec.Types {
		add(objectTypeKey(token), typ.Properties)
	}
	for key, fields := range uncommentedFields {
		for name := range fields {
			if d := fieldDocs[key][name]; d != "" {
				t.Errorf("%s %s now has a Go comment (%q): remove it from uncommentedFields", key, name, d)
			}
			if !served[key][name] {
				t.Errorf("uncommentedFields describes %s %s, which the schema does not serve", key, name)
			}
		}
	}
}

// TestResourceTokens: the plugin serves each custom resource under the
// token the components register (pluginapi).
func TestResourceTokens(t *testing.T) {
	spec := servedSchema(t, undescribedProvider)
	for _, token := range []string{pluginapi.KnownHostToken, pluginapi.TalosNodeVersionToken, pluginapi.KubernetesVersionToken,
		pluginapi.ClusterMembersToken, pluginapi.NodeDrainToken, pluginapi.NodeReadyToken} {
		if r, ok := spec.Resources[token]; !ok || r.IsComponent {
			t.Errorf("the plugin serves no custom resource %s", token)
		}
	}
}
