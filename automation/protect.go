package automation

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
)

// protectedClosure returns the URNs of the protected resources and of
// everything they depend on (parents, dependencies, providers): what
// `pulumi destroy --exclude-protected` leaves in place. The Automation API
// has no option for that flag, so Destroy passes these as excludes.
func protectedClosure(dep apitype.UntypedDeployment) ([]string, error) {
	var d apitype.DeploymentV3
	if len(dep.Deployment) > 0 {
		if err := json.Unmarshal(dep.Deployment, &d); err != nil {
			return nil, fmt.Errorf("reading the stack's state: %w", err)
		}
	}
	byURN := map[string]apitype.ResourceV3{}
	for _, r := range d.Resources {
		byURN[string(r.URN)] = r
	}
	keep := map[string]bool{}
	var visit func(urn string)
	visit = func(urn string) {
		r, ok := byURN[urn]
		if !ok || keep[urn] {
			return
		}
		keep[urn] = true
		if r.Parent != "" {
			visit(string(r.Parent))
		}
		for _, dep := range r.Dependencies {
			visit(string(dep))
		}
		for _, deps := range r.PropertyDependencies {
			for _, dep := range deps {
				visit(string(dep))
			}
		}
		if r.Provider != "" {
			// A provider reference is "<urn>::<id>".
			visit(r.Provider[:strings.LastIndex(r.Provider, "::")])
		}
	}
	for _, r := range d.Resources {
		if r.Protect {
			visit(string(r.URN))
		}
	}
	out := make([]string, 0, len(keep))
	for urn := range keep {
		out = append(out, urn)
	}
	sort.Strings(out)
	return out, nil
}
