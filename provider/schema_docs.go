package main

//go:generate go run ./cmd/fielddocs

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/components/pluginapi"
)

// The schema's descriptions of properties come from the Go comments of the
// fields behind them (fielddocs_gen.go, written by `go generate` from the
// components', pluginapi's and this package's sources): infer describes a
// property only through an Annotate method, which the components' types
// cannot have without importing pulumi-go-provider. describeSchema fills
// every property description infer left empty, and each object type's
// description from its type's comment; nothing else in the schema changes.

// schemaTypes are the Go types behind each resource's (and function's)
// inputs and outputs.
var schemaTypes = map[string]struct{ in, out reflect.Type }{
	"sda:index:InternalNetwork": {reflect.TypeFor[components.InternalNetworkArgs](), reflect.TypeFor[components.InternalNetwork]()},
	"sda:index:RouterLXC":       {reflect.TypeFor[components.RouterLXCArgs](), reflect.TypeFor[components.RouterLXC]()},
	"sda:index:TalosNode":       {reflect.TypeFor[components.TalosNodeArgs](), reflect.TypeFor[components.TalosNode]()},
	"sda:index:TalosCluster":    {reflect.TypeFor[components.TalosClusterArgs](), reflect.TypeFor[components.TalosCluster]()},
	"sda:index:OverlayNetwork":  {reflect.TypeFor[components.OverlayNetworkArgs](), reflect.TypeFor[components.OverlayNetwork]()},

	pluginapi.KnownHostToken:         {reflect.TypeFor[KnownHostArgs](), reflect.TypeFor[KnownHostState]()},
	pluginapi.TalosNodeVersionToken:  {reflect.TypeFor[TalosNodeVersionArgs](), reflect.TypeFor[TalosNodeVersionState]()},
	pluginapi.KubernetesVersionToken: {reflect.TypeFor[KubernetesVersionArgs](), reflect.TypeFor[KubernetesVersionState]()},
	pluginapi.ClusterMembersToken:    {reflect.TypeFor[ClusterMembersArgs](), reflect.TypeFor[ClusterMembersState]()},
	pluginapi.NodeDrainToken:         {reflect.TypeFor[NodeRestartArgs](), reflect.TypeFor[NodeRestartState]()},
	pluginapi.NodeReadyToken:         {reflect.TypeFor[NodeRestartArgs](), reflect.TypeFor[NodeRestartState]()},

	"sda:index:overlayMachinePatch": {reflect.TypeFor[OverlayMachinePatchArgs](), reflect.TypeFor[OverlayMachinePatchResult]()},
}

// typeModules are the Go packages behind each module of the schema's
// object types (sda:<module>:<Go type name>), in the order searched.
var typeModules = map[string][]string{
	"components": {"github.com/sda-platform/sda/components"},
	"index":      {"github.com/sda-platform/sda/components/pluginapi", "main"},
	"machine":    {"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"},
}

// typeKey is a Go type's key in fieldDocs. This package's types are
// main's (a test binary gives them the import path instead).
func typeKey(t reflect.Type) string {
	pkg := t.PkgPath()
	if pkg == reflect.TypeFor[OverlayMachinePatch]().PkgPath() {
		pkg = "main"
	}
	return pkg + "." + t.Name()
}

// docOf is the comment of a property of the Go type key, or of the type
// (""), else its entry in uncommentedFields.
func docOf(key, property string) string {
	if d := fieldDocs[key][property]; d != "" {
		return d
	}
	return uncommentedFields[key][property]
}

// uncommentedFields describe fields whose sources leave them without a
// comment of their own (or one before them that names them): none today,
// every served field's Go comment is its description. Write a comment on a
// new field rather than an entry here; TestSchemaDescribed fails until one
// or the other is there, and TestUncommentedFieldsAreUncommented fails for
// an entry whose field has a comment.
var uncommentedFields = map[string]map[string]string{}

// describeProperties fills the empty descriptions of props from the Go
// type key's field comments.
func describeProperties(props map[string]schema.PropertySpec, key string) {
	for name, prop := range props {
		if prop.Description == "" {
			prop.Description = docOf(key, name)
			props[name] = prop
		}
	}
}

// describeObjectType fills an object type's descriptions from its Go
// type's comments.
func describeObjectType(token string, t *schema.ObjectTypeSpec) {
	key := objectTypeKey(token)
	if t.Description == "" {
		t.Description = docOf(key, "")
	}
	describeProperties(t.Properties, key)
}

// objectTypeKey is the Go type of an object type (sda:<module>:<Name>):
// the first package of the module's that has a commented type Name.
func objectTypeKey(token string) string {
	mod, name := tokenParts(token)
	for _, pkg := range typeModules[mod] {
		key := pkg + "." + name
		if _, ok := fieldDocs[key]; ok {
			return key
		}
		if _, ok := uncommentedFields[key]; ok {
			return key
		}
	}
	return ""
}

// tokenParts are a token's module and name (pkg:module:name).
func tokenParts(token string) (mod, name string) {
	parts := strings.SplitN(token, ":", 3)
	if len(parts) != 3 {
		return "", ""
	}
	return parts[1], parts[2]
}

// describeSchema fills spec's empty descriptions from fieldDocs.
func describeSchema(spec *schema.PackageSpec) {
	for token, r := range spec.Resources {
		if ts, ok := schemaTypes[token]; ok {
			describeProperties(r.InputProperties, typeKey(ts.in))
			describeProperties(r.Properties, typeKey(ts.out))
			spec.Resources[token] = r
		}
	}
	for token, f := range spec.Functions {
		if ts, ok := schemaTypes[token]; ok {
			if f.Inputs != nil {
				describeProperties(f.Inputs.Properties, typeKey(ts.in))
			}
			if f.Outputs != nil {
				describeProperties(f.Outputs.Properties, typeKey(ts.out))
			}
			if f.ReturnType != nil && f.ReturnType.ObjectTypeSpec != nil {
				describeProperties(f.ReturnType.ObjectTypeSpec.Properties, typeKey(ts.out))
			}
		}
	}
	for token, t := range spec.Types {
		describeObjectType(token, &t.ObjectTypeSpec)
		spec.Types[token] = t
	}
}

// withFieldDocs serves prov's schema with the descriptions filled in.
func withFieldDocs(prov p.Provider) p.Provider {
	getSchema := prov.GetSchema
	prov.GetSchema = func(ctx context.Context, req p.GetSchemaRequest) (p.GetSchemaResponse, error) {
		resp, err := getSchema(ctx, req)
		if err != nil {
			return resp, err
		}
		var spec schema.PackageSpec
		if err := json.Unmarshal([]byte(resp.Schema), &spec); err != nil {
			return resp, err
		}
		describeSchema(&spec)
		out, err := json.Marshal(spec)
		if err != nil {
			return resp, err
		}
		resp.Schema = string(out)
		return resp, nil
	}
	return prov
}
