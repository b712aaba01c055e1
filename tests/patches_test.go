package tests

import (
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/render"
	"github.com/sda-platform/sda/stacks"
)

// The patches TalosCluster hands to the Talos provider — each role's to
// getConfiguration, each node's own to its ConfigurationApply — are, in
// order, exactly the list `sda render` applies and validates.
func TestPatchesAreTheOnesRenderValidates(t *testing.T) {
	userPatch := `{"name":"dev","controlPlanes":1,"workers":1,"cni":"flannel",` +
		`"patches":["machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n"]}`
	for _, tc := range []struct {
		name, stack string
		override    map[string]string
	}{{"dev", "dev", nil}, {"prod", "prod", nil}, {"dev with a user patch", "dev", map[string]string{"sda:cluster": userPatch}}} {
		t.Run(tc.name, func(t *testing.T) {
			setStackConfig(t, tc.stack, tc.override)
			m, err := run(t, tc.stack, stacks.Program)
			if err != nil {
				t.Fatal(err)
			}
			c, p := loadWith(t, tc.stack, tc.override)
			image, err := render.InstallerImage(c)
			if err != nil {
				t.Fatal(err)
			}
			rolePatches := map[string][]string{}
			for _, call := range m.calls {
				if call.Token == "talos:machine/getConfiguration:getConfiguration" {
					role := call.Args["machineType"].StringValue()
					if _, seen := rolePatches[role]; seen {
						t.Errorf("two configurations generated for %s", role)
					}
					rolePatches[role] = stringList(t, call.Args["configPatches"])
				}
			}
			for _, machine := range p.Machines() {
				var sent []string
				sent = append(sent, rolePatches[string(machine.Role)]...)
				sent = append(sent, stringList(t, m.named(t, machine.Hostname+"-config").Inputs["configPatches"])...)
				var validated []string
				for _, patch := range render.Patches(c, p, machine, image) {
					validated = append(validated, patch.Content)
				}
				if !slices.Equal(sent, validated) {
					t.Errorf("%s: the provider is handed\n%q\nbut sda render validates\n%q", machine.Hostname, sent, validated)
				}
			}
			if len(c.Cluster.Patches) > 0 && !slices.Contains(rolePatches[string(config.RoleWorker)], c.Cluster.Patches[0]) {
				t.Error("the user's patch is not in the worker configuration")
			}
		})
	}
}

func stringList(t *testing.T, v resource.PropertyValue) []string {
	t.Helper()
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	if !v.IsArray() {
		t.Fatalf("configPatches is not a list: %v", v)
	}
	var out []string
	for _, e := range v.ArrayValue() {
		out = append(out, e.StringValue())
	}
	return out
}
