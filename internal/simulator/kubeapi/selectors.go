package kubeapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// ---- selectors ----

type selectorTerm struct {
	key, op string
	values  []string
}

type labelSelector []selectorTerm

// parseSelector parses a label selector: "key", "!key", "key=value",
// "key==value", "key!=value", "key in (a,b)", "key notin (a,b)", joined
// by commas (all must hold).
func parseSelector(s string) (labelSelector, error) {
	var out labelSelector
	for _, t := range splitTerms(s) {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		switch {
		case strings.HasPrefix(t, "!"):
			out = append(out, selectorTerm{key: strings.TrimSpace(t[1:]), op: "!"})
		case strings.Contains(t, "!="):
			k, v, _ := strings.Cut(t, "!=")
			out = append(out, selectorTerm{key: strings.TrimSpace(k), op: "!=", values: []string{strings.TrimSpace(v)}})
		case strings.Contains(t, "="):
			k, v, _ := strings.Cut(t, "=")
			out = append(out, selectorTerm{key: strings.TrimSpace(k), op: "=", values: []string{strings.TrimSpace(strings.TrimPrefix(v, "="))}})
		case strings.Contains(t, " in ") || strings.Contains(t, " notin "):
			op := "in"
			k, v, _ := strings.Cut(t, " in ")
			if strings.Contains(t, " notin ") {
				op = "notin"
				k, v, _ = strings.Cut(t, " notin ")
			}
			v = strings.TrimSpace(v)
			if !strings.HasPrefix(v, "(") || !strings.HasSuffix(v, ")") {
				return nil, badRequest("unable to parse requirement: %q", t)
			}
			var vals []string
			for _, x := range strings.Split(v[1:len(v)-1], ",") {
				vals = append(vals, strings.TrimSpace(x))
			}
			out = append(out, selectorTerm{key: strings.TrimSpace(k), op: op, values: vals})
		default:
			if strings.ContainsAny(t, " ()<>") {
				return nil, badRequest("unable to parse requirement: %q", t)
			}
			out = append(out, selectorTerm{key: t, op: "exists"})
		}
	}
	return out, nil
}

func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func (sel labelSelector) matches(obj map[string]any) bool {
	labels, _ := engine.Get(obj, "metadata.labels").(map[string]any)
	for _, t := range sel {
		v, has := labels[t.key]
		val := fmt.Sprint(v)
		switch t.op {
		case "exists":
			if !has {
				return false
			}
		case "!":
			if has {
				return false
			}
		case "=":
			if !has || val != t.values[0] {
				return false
			}
		case "!=":
			if has && val == t.values[0] {
				return false
			}
		case "in":
			if !has || !slices.Contains(t.values, val) {
				return false
			}
		case "notin":
			if has && slices.Contains(t.values, val) {
				return false
			}
		}
	}
	return true
}

type fieldSelector []selectorTerm

// parseFieldSelector parses "field=value", "field==value" and
// "field!=value" terms over the fields the resource supports (others:
// 400 "field label not supported").
func parseFieldSelector(s string, supported ...string) (fieldSelector, error) {
	var out fieldSelector
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		op, sep := "=", "="
		if strings.Contains(t, "!=") {
			op, sep = "!=", "!="
		}
		k, v, ok := strings.Cut(t, sep)
		if !ok {
			return nil, badRequest("invalid selector: '%s'; can't understand '%s'", s, t)
		}
		k = strings.TrimSpace(k)
		if !slices.Contains(supported, k) {
			return nil, badRequest("field label not supported: %s", k)
		}
		out = append(out, selectorTerm{key: k, op: op, values: []string{strings.TrimSpace(strings.TrimPrefix(v, "="))}})
	}
	return out, nil
}

func (sel fieldSelector) matches(obj map[string]any) bool {
	for _, t := range sel {
		v := engine.Get(obj, t.key)
		val := ""
		if v != nil {
			val = fmt.Sprint(v)
		}
		if t.key == "spec.unschedulable" && val == "" {
			val = "false"
		}
		if (val == t.values[0]) != (t.op == "=") {
			return false
		}
	}
	return true
}
