package talospatch

import (
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// immediateMachineKeys are the v1alpha1 `machine` fields Talos applies
// without a reboot, and immediateFeatureKeys those of `machine.features`
// (talos v1.12.0 internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go:138-193,
// CanApplyImmediate). `cluster` and `debug` apply immediately too; other
// documents than v1alpha1 are not compared there. Any other change in a
// configuration apply (mode auto) reboots the node.
var (
	immediateMachineKeys = map[string]bool{"ca": true, "acceptedCAs": true, "time": true, "certSANs": true,
		"install": true, "network": true, "sysfs": true, "sysctls": true, "logging": true, "controlPlane": true,
		"kubelet": true, "kernel": true, "registries": true, "pods": true, "seccompProfiles": true,
		"nodeAnnotations": true, "nodeLabels": true, "nodeTaints": true}
	immediateFeatureKeys = map[string]bool{"kubernetesTalosAPIAccess": true, "kubePrism": true, "hostDNS": true,
		"imageCache": true, "nodeAddressSortAlgorithm": true}
)

// RebootingPatchFields lists the fields of a Talos patch (strategic merge,
// one or more YAML documents) that Talos cannot apply without a reboot.
// Unparseable patches list nothing: validation reports them.
func RebootingPatchFields(patch string) []string {
	var out []string
	dec := yaml.NewDecoder(strings.NewReader(patch))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return out
		}
		if kind, _ := doc["kind"].(string); kind != "" {
			continue // a document of its own kind: not compared by CanApplyImmediate
		}
		for key, v := range doc {
			switch key {
			case "version", "cluster", "debug":
			case "machine":
				m, _ := v.(map[string]any)
				for mk, mv := range m {
					if mk == "features" {
						f, _ := mv.(map[string]any)
						for fk := range f {
							if !immediateFeatureKeys[fk] {
								out = append(out, "machine.features."+fk)
							}
						}
					} else if !immediateMachineKeys[mk] {
						out = append(out, "machine."+mk)
					}
				}
			default:
				out = append(out, key)
			}
		}
		sort.Strings(out)
	}
}
