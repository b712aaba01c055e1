package simtest

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// CheckKeys checks every property key declared in the package directory
// pkgDir (engine.DeclaredKeys, by the declaring file) against the real
// provider SDKs' schema: each key's path must resolve, name by name
// (`pulumi:"…"` field tags), from one of the structs reachable from roots
// (resource Args and their plain element types, resource structs and their
// outputs, function Args and Results, provider Args). A key relative to a
// list element or nested object ("fileId" of a disk) resolves from that
// element's struct; below a free-form object (a map of anything, as Helm
// values are) any name resolves. A misspelt key fails here, naming it.
func CheckKeys(t *testing.T, pkgDir string, roots ...any) {
	t.Helper()
	structs := reachable(roots)
	var checked int
	for _, k := range engine.DeclaredKeys() {
		if !strings.Contains(k.File, "/internal/simulator/"+pkgDir+"/") {
			continue
		}
		checked++
		if !resolves(structs, strings.Split(k.Path, ".")) {
			t.Errorf("property key %q (%s, declared in %s) is not in the provider SDK's schema", k.Path, k.Type, k.File)
		}
	}
	if checked == 0 {
		t.Fatalf("no property keys declared in %s", pkgDir)
	}
}

// CheckPaths checks property paths of another kind than keys (a Kind's
// Replace paths, a table of input blocks) as CheckKeys does: what names
// them in failures; "[*]" and a trailing "!" (Kind.Replace's list
// elements and block-only marks) are not part of the names.
func CheckPaths(t *testing.T, what string, paths []string, roots ...any) {
	t.Helper()
	structs := reachable(roots)
	for _, p := range paths {
		clean := strings.TrimSuffix(strings.ReplaceAll(p, "[*]", ""), "!")
		if !resolves(structs, strings.Split(clean, ".")) {
			t.Errorf("%s: property path %q is not in the provider SDK's schema", what, p)
		}
	}
}

// plain is t with pointers, slices, arrays and maps stripped and Pulumi
// Input/Output types replaced by their element types; nil when t is an
// interface (an Input that says nothing of its element).
func plain(t reflect.Type) reflect.Type {
	for range 16 {
		if t.Kind() != reflect.Interface && t.Kind() != reflect.Pointer {
			if m, ok := t.MethodByName("ElementType"); ok && m.Type.NumIn() == 1 && m.Type.NumOut() == 1 {
				et := m.Func.Call([]reflect.Value{reflect.New(t).Elem()})[0].Interface().(reflect.Type)
				if et != t {
					t = et
					continue
				}
			}
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			return t
		default:
			return nil
		}
	}
	return nil
}

// free reports whether t is a free-form object: a map of anything.
func free(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Interface
}

func tagName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("pulumi"), ",")
	return n
}

func reachable(roots []any) []reflect.Type {
	seen := map[reflect.Type]bool{}
	var out []reflect.Type
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		if t = plain(t); t == nil || seen[t] {
			return
		}
		seen[t] = true
		out = append(out, t)
		for i := range t.NumField() {
			if f := t.Field(i); tagName(f) != "" {
				visit(f.Type)
			}
		}
	}
	for _, r := range roots {
		visit(reflect.TypeOf(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func resolves(structs []reflect.Type, path []string) bool {
	for _, s := range structs {
		if resolvesFrom(s, path) {
			return true
		}
	}
	return false
}

func resolvesFrom(t reflect.Type, path []string) bool {
	for i, name := range path {
		if t == nil {
			return false
		}
		var next reflect.Type
		found := false
		for j := range t.NumField() {
			if f := t.Field(j); tagName(f) == name {
				next, found = f.Type, true
				break
			}
		}
		if !found {
			return false
		}
		if free(next) {
			return true // a free-form object (Helm values): any key below
		}
		if i < len(path)-1 {
			t = plain(next)
		}
	}
	return true
}
