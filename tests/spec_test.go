package tests

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/components/spec"
)

// fill sets every field of v (a pointer) to a value of its own: strings
// name their field, numbers count up, bools are true, slices hold one
// element, pointers point at a filled value. A field a conversion drops
// then shows as a difference.
func fill(v reflect.Value, path string, n *int) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), path, n)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), path+"."+v.Type().Field(i).Name, n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), path+"[0]", n)
	case reflect.String:
		v.SetString(path)
	case reflect.Int:
		*n++
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	default:
		panic(fmt.Sprintf("fill: %s is a %s", path, v.Kind()))
	}
}

// Every component's spec survives the trip through its Args: the Go and
// multi-language API (Args) and the pure inputs (components/spec) carry
// the same values, so what stacks/inputs builds is what the component
// deploys, field by field.
func TestSpecsRoundTripThroughArgs(t *testing.T) {
	roundTrips := map[string]func(v reflect.Value) any{
		"Router": func(v reflect.Value) any {
			return components.NewRouterLXCArgs(v.Interface().(spec.Router)).Spec()
		},
		"Cluster": func(v reflect.Value) any {
			return components.NewTalosClusterArgs(v.Interface().(spec.Cluster)).Spec()
		},
		"InternalNetwork": func(v reflect.Value) any {
			return components.NewInternalNetworkArgs(v.Interface().(spec.InternalNetwork)).Spec()
		},
		"Overlay": func(v reflect.Value) any {
			return components.NewOverlayNetworkArgs(v.Interface().(spec.Overlay)).Spec()
		},
	}
	for name, typ := range map[string]reflect.Type{
		"Router": reflect.TypeFor[spec.Router](), "Cluster": reflect.TypeFor[spec.Cluster](),
		"InternalNetwork": reflect.TypeFor[spec.InternalNetwork](), "Overlay": reflect.TypeFor[spec.Overlay](),
	} {
		v := reflect.New(typ).Elem()
		n := 0
		fill(v, name, &n)
		if got := roundTrips[name](v); !reflect.DeepEqual(got, v.Interface()) {
			t.Errorf("%s changes on its way through the Args:\n got  %+v\n want %+v", name, got, v.Interface())
		}
	}
}

// Every Args field is in the spec under the same name, except the Pulumi
// values that wire a component to others: a new Args field cannot be
// forgotten by the spec (and so by stacks/inputs and sda render).
func TestArgsFieldsAreInTheSpec(t *testing.T) {
	for _, tc := range []struct {
		args, spec reflect.Type
		wiring     []string
	}{
		{reflect.TypeFor[components.RouterLXCArgs](), reflect.TypeFor[spec.Router](), []string{"InternalBridge", "ContainerAfter"}},
		{reflect.TypeFor[components.TalosClusterArgs](), reflect.TypeFor[spec.Cluster](), []string{"Bridge", "Bridges", "ApplyAfter", "WaitFor"}},
		{reflect.TypeFor[components.InternalNetworkArgs](), reflect.TypeFor[spec.InternalNetwork](), nil},
		{reflect.TypeFor[components.OverlayNetworkArgs](), reflect.TypeFor[spec.Overlay](),
			[]string{"Kubeconfig", "ClientConfiguration", "ControlPlaneAddresses", "WorkerAddresses", "TalosHealthy"}},
		{reflect.TypeFor[components.RouterSSH](), reflect.TypeFor[spec.SSH](), []string{"PrivateKey"}},
	} {
		var args, specFields []string
		for _, f := range reflect.VisibleFields(tc.args) {
			if !slices.Contains(tc.wiring, f.Name) {
				args = append(args, f.Name)
			}
		}
		for _, f := range reflect.VisibleFields(tc.spec) {
			specFields = append(specFields, f.Name)
		}
		if !slices.Equal(args, specFields) {
			t.Errorf("%s has fields %v (its Pulumi wiring %v aside), %s has %v: keep them the same, in the same order",
				tc.args.Name(), args, tc.wiring, tc.spec.Name(), specFields)
		}
	}
}
