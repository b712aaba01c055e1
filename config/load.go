package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Lookup returns the raw value of a project configuration key (such as
// "sda:cluster") as Pulumi hands it to a program: JSON for objects.
type Lookup func(key string) (string, bool)

// Load reads every section through lookup. Unknown fields are errors, so a
// typo in a stack file is reported instead of silently ignored. Defaults are
// not applied here; use Resolve.
func Load(lookup Lookup) (Config, error) {
	var c Config
	var problems []Problem
	targets := map[string]any{
		"cluster": &c.Cluster, "proxmox": &c.Proxmox, "network": &c.Network,
		"nodes": &c.Nodes, "router": &c.Router,
	}
	for _, section := range Sections {
		key := Namespace + ":" + section
		raw, ok := lookup(key)
		if !ok || strings.TrimSpace(raw) == "" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(targets[section]); err != nil {
			problems = append(problems, Problem{Key: key, Value: abbreviate(raw),
				Fix: fmt.Sprintf("%s; see the configuration reference in README.md", jsonProblem(err))})
		}
	}
	if len(problems) > 0 {
		return c, &Error{Problems: problems}
	}
	return c, nil
}

func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type)
	}
	return err.Error()
}

func abbreviate(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// StackFiles reads the project's configuration the way the Pulumi CLI does
// for the project's own namespace: defaults declared in Pulumi.yaml under
// `config:` (`value` or `default`), overridden by Pulumi.<stack>.yaml. It is
// used where no Pulumi engine runs (the offline commands and tests).
func StackFiles(projectDir, stack string) (Lookup, error) {
	values := map[string]string{}
	project, err := os.ReadFile(filepath.Join(projectDir, "Pulumi.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading the project file: %w", err)
	}
	var proj struct {
		Config map[string]yaml.Node `yaml:"config"`
	}
	if err := yaml.Unmarshal(project, &proj); err != nil {
		return nil, fmt.Errorf("Pulumi.yaml: %w", err)
	}
	for key, node := range proj.Config {
		var decl struct {
			Value   any `yaml:"value"`
			Default any `yaml:"default"`
		}
		if node.Kind == yaml.MappingNode && node.Decode(&decl) == nil {
			if v := firstNonNil(decl.Value, decl.Default); v != nil {
				if err := putJSON(values, qualify(key), v); err != nil {
					return nil, err
				}
			}
		}
	}

	stackFile := filepath.Join(projectDir, "Pulumi."+stack+".yaml")
	data, err := os.ReadFile(stackFile)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("unknown stack %q: %s does not exist (create it with `pulumi stack init %s` and set its configuration)", stack, filepath.Base(stackFile), stack)
		}
		return nil, err
	}
	var st struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(stackFile), err)
	}
	for key, v := range st.Config {
		if err := putJSON(values, qualify(key), v); err != nil {
			return nil, err
		}
	}
	return func(key string) (string, bool) {
		v, ok := values[key]
		return v, ok
	}, nil
}

func firstNonNil(vs ...any) any {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// qualify gives a bare project key its namespace, as the Pulumi CLI does.
func qualify(key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return Namespace + ":" + key
}

func putJSON(values map[string]string, key string, v any) error {
	if s, ok := v.(string); ok {
		values[key] = s
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("config key %s: %w", key, err)
	}
	values[key] = string(b)
	return nil
}

// LoadStack is StackFiles + Load + Resolve: the whole offline path from a
// project directory and a stack name to a validated configuration and plan.
func LoadStack(projectDir, stack string) (Config, Plan, error) {
	lookup, err := StackFiles(projectDir, stack)
	if err != nil {
		return Config{}, Plan{}, err
	}
	c, err := Load(lookup)
	if err != nil {
		return c, Plan{}, err
	}
	return Resolve(c)
}
