package talospatch

import (
	"strings"
	"testing"
)

// A patch is judged the way Talos's CanApplyImmediate judges a changed
// configuration: only the listed machine fields, machine.features fields,
// cluster and debug apply live; documents of their own kind are not compared.
func TestRebootingPatchFields(t *testing.T) {
	cases := []struct{ name, patch, want string }{
		{"sysctls apply live", "machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n", ""},
		{"cluster applies live", "cluster:\n  proxy:\n    disabled: true\n", ""},
		{"files reboot", "machine:\n  files:\n    - path: /var/x\n      content: x\n      op: create\n", "machine.files"},
		{"env and kubelet", "machine:\n  env:\n    A: b\n  kubelet:\n    extraArgs: {}\n", "machine.env"},
		{"kubePrism lives, stableHostname reboots", "machine:\n  features:\n    kubePrism:\n      enabled: true\n    stableHostname: true\n", "machine.features.stableHostname"},
		{"a document of its own kind", "apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n", ""},
		{"second document counts", "machine:\n  sysctls: {}\n---\nmachine:\n  udev:\n    rules: []\n", "machine.udev"},
		{"not YAML lists nothing", "machine: [", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := strings.Join(RebootingPatchFields(c.patch), ","); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
