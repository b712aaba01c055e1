package pluginapi

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// inputs are every XInputs type with the plain type it stands for.
var inputs = []pulumi.Input{
	KnownHostInputs{},
	TalosNodeVersionInputs{}, TalosNodeVersionPeerInputs{}, TalosNodeVersionPeerArray{},
	KubernetesVersionInputs{}, KubernetesVersionNodeInputs{}, KubernetesVersionNodeArray{},
	ClusterMembersInputs{},
	NodeRestartInputs{},
}

// elementType is the plain type an input field stands for: an input
// interface's (pulumi.StringInput: string) through its ToXOutput method, a
// concrete input's through ElementType.
func elementType(t *testing.T, typ reflect.Type) reflect.Type {
	t.Helper()
	if typ.Kind() != reflect.Interface {
		if in, ok := reflect.Zero(typ).Interface().(pulumi.Input); ok {
			return in.ElementType()
		}
		t.Fatalf("%v is no Pulumi input", typ)
	}
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if strings.HasPrefix(m.Name, "To") && strings.HasSuffix(m.Name, "Output") && m.Type.NumOut() == 1 {
			if out, ok := reflect.Zero(m.Type.Out(0)).Interface().(pulumi.Output); ok {
				return out.ElementType()
			}
		}
	}
	t.Fatalf("%v has no ToXOutput method", typ)
	return nil
}

// TestInputsMatchArgs: each XInputs has exactly XArgs' fields, each an
// input of the field's type, so what a component registers is what the
// plugin decodes, field for field.
func TestInputsMatchArgs(t *testing.T) {
	for _, in := range inputs {
		it, at := reflect.TypeOf(in), in.ElementType()
		if it.Kind() == reflect.Slice {
			if et := elementType(t, it.Elem()); et != at.Elem() {
				t.Errorf("%v holds %v, want %v", it, et, at.Elem())
			}
			continue
		}
		for i := range at.NumField() {
			af := at.Field(i)
			f, ok := it.FieldByName(af.Name)
			if !ok {
				t.Errorf("%v has no field %s: %v.%s (%s) is never registered", it, af.Name, at, af.Name, af.Tag)
				continue
			}
			if et := elementType(t, f.Type); et != af.Type {
				t.Errorf("%v.%s is an input of %v, %v.%s is %v", it, f.Name, et, at, af.Name, af.Type)
			}
		}
		for i := range it.NumField() {
			if _, ok := at.FieldByName(it.Field(i).Name); !ok {
				t.Errorf("%v.%s has no field in %v: the plugin does not take it", it, it.Field(i).Name, at)
			}
			if tag := it.Field(i).Tag; tag != "" {
				t.Errorf("%v.%s has tags (%s): the names are %v's", it, it.Field(i).Name, tag, at)
			}
		}
	}
}

// TestResourcesMatchStates: every output a component reads from a
// registered resource is a field of the plugin's state, of the same type.
func TestResourcesMatchStates(t *testing.T) {
	pairs := map[reflect.Type]reflect.Type{
		reflect.TypeFor[KnownHostResource]():         reflect.TypeFor[KnownHostState](),
		reflect.TypeFor[TalosNodeVersionResource]():  reflect.TypeFor[TalosNodeVersionState](),
		reflect.TypeFor[KubernetesVersionResource](): reflect.TypeFor[KubernetesVersionState](),
		reflect.TypeFor[ClusterMembersResource]():    reflect.TypeFor[ClusterMembersState](),
		reflect.TypeFor[NodeRestartResource]():       reflect.TypeFor[NodeRestartState](),
	}
	for rt, st := range pairs {
		tags := map[string]reflect.StructField{}
		for _, f := range reflect.VisibleFields(st) {
			if name, _, _ := strings.Cut(f.Tag.Get("pulumi"), ","); name != "" {
				tags[name] = f
			}
		}
		for i := range rt.NumField() {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("pulumi"), ",")
			if name == "" {
				continue
			}
			sf, ok := tags[name]
			if !ok {
				t.Errorf("%v.%s reads output %q, which %v lacks", rt, f.Name, name, st)
				continue
			}
			if et := reflect.Zero(f.Type).Interface().(pulumi.Output).ElementType(); et != sf.Type {
				t.Errorf("%v.%s is an output of %v, %v.%s is %v", rt, f.Name, et, st, sf.Name, sf.Type)
			}
		}
	}
}

type captureMocks struct {
	mu     sync.Mutex
	inputs map[string]resource.PropertyMap
}

func (m *captureMocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inputs[args.TypeToken] = args.Inputs
	return args.Name + "-id", args.Inputs, nil
}

func (m *captureMocks) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

// filled is an XInputs (or one of its nested inputs) with every field set.
func filled(t *testing.T, typ reflect.Type) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	if typ.Kind() == reflect.Slice {
		return reflect.Append(v, filled(t, typ.Elem()))
	}
	for i := range typ.NumField() {
		var x any
		switch ft := typ.Field(i).Type; ft {
		case reflect.TypeFor[pulumi.StringInput]():
			x = pulumi.String("x")
		case reflect.TypeFor[pulumi.IntInput]():
			x = pulumi.Int(1)
		case reflect.TypeFor[pulumi.BoolInput]():
			x = pulumi.Bool(true)
		case reflect.TypeFor[pulumi.StringArrayInput]():
			x = pulumi.StringArray{pulumi.String("x")}
		default:
			x = filled(t, ft).Interface()
		}
		v.Field(i).Set(reflect.ValueOf(x))
	}
	return v
}

// tagNames are the property names of a plain type (its pulumi tags).
func tagNames(typ reflect.Type) []string {
	var out []string
	for _, f := range reflect.VisibleFields(typ) {
		if name, _, _ := strings.Cut(f.Tag.Get("pulumi"), ","); name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestRegisteredInputsAreArgs registers each resource through the Pulumi
// SDK, as the components do, with every input set: the properties the
// engine receives are XArgs' names, nested ones too.
func TestRegisteredInputsAreArgs(t *testing.T) {
	regs := map[string]pulumi.Input{
		KnownHostToken: KnownHostInputs{}, TalosNodeVersionToken: TalosNodeVersionInputs{},
		KubernetesVersionToken: KubernetesVersionInputs{}, ClusterMembersToken: ClusterMembersInputs{},
		NodeDrainToken: NodeRestartInputs{},
	}
	mocks := &captureMocks{inputs: map[string]resource.PropertyMap{}}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		for token, in := range regs {
			var r pulumi.CustomResourceState
			if err := ctx.RegisterResource(token, "r", filled(t, reflect.TypeOf(in)).Interface().(pulumi.Input), &r); err != nil {
				return err
			}
		}
		return nil
	}, pulumi.WithMocks("p", "s", mocks))
	if err != nil {
		t.Fatal(err)
	}
	var check func(where string, got resource.PropertyMap, typ reflect.Type)
	check = func(where string, got resource.PropertyMap, typ reflect.Type) {
		var keys []string
		for k := range got {
			keys = append(keys, string(k))
		}
		slices.Sort(keys)
		if want := tagNames(typ); !slices.Equal(keys, want) {
			t.Errorf("%s registers %v, the plugin's %v takes %v", where, keys, typ, want)
		}
		for _, f := range reflect.VisibleFields(typ) {
			name, _, _ := strings.Cut(f.Tag.Get("pulumi"), ",")
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				if arr := got[resource.PropertyKey(name)]; arr.IsArray() && len(arr.ArrayValue()) == 1 {
					check(where+"."+name+"[0]", arr.ArrayValue()[0].ObjectValue(), f.Type.Elem())
				} else {
					t.Errorf("%s.%s = %v, want one object", where, name, arr)
				}
			}
		}
	}
	for token, in := range regs {
		check(token, mocks.inputs[token], in.ElementType())
	}
}
