package engine

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// A Key is one property the rules read from a property map (a resource's
// inputs or outputs, a function's arguments, a provider's configuration),
// by its path in the map as the real provider's schema names it
// ("nodeName", "cpu.cores", "machineSecrets"). Each subject package
// declares the keys its rules read once, in its keys.go, so a misspelt key
// name is a compile error where it is used, a malformed path panics
// (naming it) when the package loads, and each package's tests check
// every declared path against the real provider SDK's schema
// (simtest.CheckKeys), which fails naming a key the provider does not
// have. Reading a key gives the zero value of T when the property is
// absent or of another type, as the provider's Terraform schema default
// would (the rules decide what absent means).
type Key[T any] struct {
	path string
	get  func(values map[string]any, path string) T
}

// In is the value of k in values.
func (k Key[T]) In(values map[string]any) T { return k.get(values, k.path) }

// Present reports whether values has the property at all (null
// included), as a Go map lookup's ok does.
func (k Key[T]) Present(values map[string]any) bool {
	parent, name := values, k.path
	if i := strings.LastIndex(k.path, "."); i >= 0 {
		p, ok := Get(values, k.path[:i]).(map[string]any)
		if !ok {
			return false
		}
		parent, name = p, k.path[i+1:]
	}
	_, ok := parent[name]
	return ok
}

// Path is k's path in the property map.
func (k Key[T]) Path() string { return k.path }

// Elem is element i of a list property as an object: nil when the list
// is shorter or the element is not an object, so element keys read zero
// values from it as a path "list[i].key" would.
func Elem(list []any, i int) map[string]any {
	if i < 0 || i >= len(list) {
		return nil
	}
	m, _ := list[i].(map[string]any)
	return m
}

// DeclaredKey is a Key as declared: its path, what its value is read as,
// and the file that declared it.
type DeclaredKey struct {
	Path string
	Type string
	File string
}

var (
	declaredMu sync.Mutex
	declared   []DeclaredKey
	keyPath    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
)

// DeclaredKeys lists every Key declared so far (the declaring packages'
// variables are initialised when they are linked in).
func DeclaredKeys() []DeclaredKey {
	declaredMu.Lock()
	defer declaredMu.Unlock()
	return append([]DeclaredKey(nil), declared...)
}

func declare[T any](path, typ string, get func(map[string]any, string) T) Key[T] {
	if !keyPath.MatchString(path) {
		panic(fmt.Sprintf("simulator: property key %q is not a dotted path of names", path))
	}
	_, file, _, _ := runtime.Caller(2)
	d := DeclaredKey{Path: path, Type: typ, File: file}
	declaredMu.Lock()
	if !slices.Contains(declared, d) {
		declared = append(declared, d)
	}
	declaredMu.Unlock()
	return Key[T]{path: path, get: get}
}

// StrKey is a string property ("" when absent).
func StrKey(path string) Key[string] { return declare(path, "string", Str) }

// IntKey is a number property, as an int (0 when absent).
func IntKey(path string) Key[int] { return declare(path, "int", Num) }

// ListKey is a list property.
func ListKey(path string) Key[[]any] { return declare(path, "list", List) }

// StrListKey is a list of strings (the elements that are strings).
func StrListKey(path string) Key[[]string] { return declare(path, "[]string", StrList) }

// AnyKey is a property of any type, as the engine sent it (nil when
// absent): for rules that tell absent, false and unknown apart.
func AnyKey(path string) Key[any] { return declare(path, "any", Get) }

// MapKey is an object property (nil when absent or not an object).
func MapKey(path string) Key[map[string]any] {
	return declare(path, "object", func(v map[string]any, p string) map[string]any {
		m, _ := Get(v, p).(map[string]any)
		return m
	})
}

// BoolKey is a boolean property (false when absent).
func BoolKey(path string) Key[bool] {
	return declare(path, "bool", func(v map[string]any, p string) bool {
		b, _ := Get(v, p).(bool)
		return b
	})
}
