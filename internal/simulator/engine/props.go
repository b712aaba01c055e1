package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	"google.golang.org/protobuf/types/known/structpb"
)

// Props is a resource's property bag as plain Go values (the shapes
// encoding/json produces: map[string]any, []any, string, float64, bool, nil).
// Secret wrappers are removed; Secret records which top-level keys carried a
// secret anywhere inside, so outputs can be wrapped again on the way back.
type Props struct {
	Values map[string]any
	// Secret holds the top-level keys that contained a secret value.
	Secret map[string]bool
	// Unknown holds the top-level keys that contained a value not known yet
	// (only during preview).
	Unknown map[string]bool
	// Prepared is what the kind's prepare step computed from Values before
	// the state was locked (see kind.prepare).
	Prepared any
}

// UnknownMarker stands for a value the engine does not know yet.
type UnknownMarker struct{}

func (UnknownMarker) String() string { return "<unknown>" }

// FromStruct converts the wire form of properties into Props.
func FromStruct(s *structpb.Struct) Props {
	p := Props{Values: map[string]any{}, Secret: map[string]bool{}, Unknown: map[string]bool{}}
	if s == nil {
		return p
	}
	for k, v := range s.AsMap() {
		val, secret, unknown := unwrap(v)
		p.Values[k] = val
		if secret {
			p.Secret[k] = true
		}
		if unknown {
			p.Unknown[k] = true
		}
	}
	return p
}

// unwrap strips the engine's secret wrappers and replaces unknown sentinels
// by UnknownMarker, reporting whether either was seen.
func unwrap(v any) (out any, secret, unknown bool) {
	switch t := v.(type) {
	case string:
		if sig.IsUnknown(t) {
			return UnknownMarker{}, false, true
		}
		return t, false, false
	case map[string]any:
		if t[sig.Key] == sig.Secret {
			inner, _, u := unwrap(t["value"])
			return inner, true, u
		}
		if t[sig.Key] == sig.OutputValue {
			// Output values are only sent to providers that accept them;
			// this one does not, but stay correct if one arrives.
			val, known := t["value"]
			isSecret, _ := t["secret"].(bool)
			if !known {
				return UnknownMarker{}, isSecret, true
			}
			inner, s, u := unwrap(val)
			return inner, s || isSecret, u
		}
		m := make(map[string]any, len(t))
		for k, e := range t {
			val, s, u := unwrap(e)
			m[k] = val
			secret = secret || s
			unknown = unknown || u
		}
		return m, secret, unknown
	case []any:
		a := make([]any, len(t))
		for i, e := range t {
			val, s, u := unwrap(e)
			a[i] = val
			secret = secret || s
			unknown = unknown || u
		}
		return a, secret, unknown
	default:
		return v, false, false
	}
}

// ToStruct converts values to the wire form, wrapping the given top-level
// keys as secrets.
func ToStruct(values map[string]any, secret map[string]bool) (*structpb.Struct, error) {
	m := make(map[string]any, len(values))
	for k, v := range values {
		v = Normalise(v)
		if secret[k] {
			v = map[string]any{sig.Key: sig.Secret, "value": v}
		}
		m[k] = v
	}
	return structpb.NewStruct(m)
}

// Normalise turns any JSON-able Go value into the plain shapes structpb
// accepts (ints become float64, typed slices become []any).
func Normalise(v any) any {
	switch v.(type) {
	case nil, string, float64, bool, map[string]any, []any:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, e := range m {
				out[k] = Normalise(e)
			}
			return out
		}
		if a, ok := v.([]any); ok {
			out := make([]any, len(a))
			for i, e := range a {
				out[i] = Normalise(e)
			}
			return out
		}
		return v
	case UnknownMarker:
		return sig.UnknownStringValue
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// Get walks a dotted path with optional [i] indexes ("disks[0].fileId").
func Get(values map[string]any, path string) any {
	var cur any = values
	for _, part := range splitPath(path) {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part.key]
		case []any:
			if part.index < 0 || part.index >= len(c) {
				return nil
			}
			cur = c[part.index]
		default:
			return nil
		}
	}
	return cur
}

type pathPart struct {
	key   string
	index int
}

func splitPath(path string) []pathPart {
	var parts []pathPart
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			parts = append(parts, pathPart{key: name, index: -1})
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			var i int
			fmt.Sscanf(num, "%d", &i)
			parts = append(parts, pathPart{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return parts
}

// Str, Num, List and StrList read a value at a dotted path (with [i]
// indexes) of a document that is not a property map: a Kubernetes object,
// a Talos configuration document, an element built by the simulation. The
// properties a rule reads go through Keys (keys.go), declared once and
// checked against the provider's schema.

// Str is the string at path ("" when absent or not a string).
func Str(values map[string]any, path string) string {
	s, _ := Get(values, path).(string)
	return s
}

// Num is the number at path as an int (0 when absent or not a number).
func Num(values map[string]any, path string) int {
	switch n := Get(values, path).(type) {
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

// List is the list at path (nil when absent or not a list).
func List(values map[string]any, path string) []any {
	a, _ := Get(values, path).([]any)
	return a
}

// StrList is the strings of the list at path.
func StrList(values map[string]any, path string) []string {
	var out []string
	for _, e := range List(values, path) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// ChangedPaths lists the leaf paths whose values differ between olds and
// news ("cpu.cores", "disks[0].fileId", "configPatches"). Arrays of scalars
// are compared whole; arrays of objects element by element.
func ChangedPaths(olds, news map[string]any) []string {
	var out []string
	var walk func(prefix string, a, b any)
	walk = func(prefix string, a, b any) {
		if _, unknown := b.(UnknownMarker); unknown {
			out = append(out, prefix)
			return
		}
		am, aIsMap := a.(map[string]any)
		bm, bIsMap := b.(map[string]any)
		if aIsMap && bIsMap {
			keys := map[string]bool{}
			for k := range am {
				keys[k] = true
			}
			for k := range bm {
				keys[k] = true
			}
			for k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, am[k], bm[k])
			}
			return
		}
		aa, aIsArr := a.([]any)
		ba, bIsArr := b.([]any)
		if aIsArr && bIsArr && len(aa) == len(ba) && containsObjects(aa) && containsObjects(ba) {
			for i := range aa {
				walk(fmt.Sprintf("%s[%d]", prefix, i), aa[i], ba[i])
			}
			return
		}
		if !reflect.DeepEqual(Normalise(a), Normalise(b)) {
			out = append(out, prefix)
		}
	}
	walk("", olds, news)
	sort.Strings(out)
	return out
}

func containsObjects(a []any) bool {
	for _, e := range a {
		if _, ok := e.(map[string]any); ok {
			return true
		}
	}
	return false
}

// TopKey is the top-level property of a path ("disks" for "disks[0].fileId").
func TopKey(path string) string {
	end := strings.IndexAny(path, ".[")
	if end < 0 {
		return path
	}
	return path[:end]
}

// MatchesRule reports whether a changed path falls under a replace rule.
// Rules use [*] for any index: "disks[*].fileId".
func MatchesRule(path, rule string) bool {
	pp := splitPath(path)
	rp := splitPath(strings.ReplaceAll(rule, "[*]", "[-1]"))
	if len(pp) < len(rp) {
		return false
	}
	for i, r := range rp {
		if r.key != pp[i].key {
			return false
		}
		if r.key == "" && r.index >= 0 && r.index != pp[i].index {
			return false
		}
	}
	return true
}

// ruleReplaces reports whether a changed path replaces the resource under a
// replace rule: the path falls under the rule; or the rule ends in "!" and
// names the path itself (a block added or removed); or the path is a whole
// object added or removed that holds the rule's path, and the value there
// changed ("initialization" added with an "initialization.userAccount").
func ruleReplaces(path, rule string, olds, news map[string]any) bool {
	if exact, ok := strings.CutSuffix(rule, "!"); ok {
		return path == exact
	}
	if MatchesRule(path, rule) {
		return true
	}
	if strings.Contains(rule, "[*]") || !strings.HasPrefix(rule, path+".") {
		return false
	}
	return !reflect.DeepEqual(Normalise(Get(olds, rule)), Normalise(Get(news, rule)))
}
