package simulator_test

import (
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// The diff decides update versus replace the way the real providers do;
// scaling and patching depend on it never replacing a VM by accident.
func TestDiffReplacesWhereTheProviderDoes(t *testing.T) {
	vm := map[string]any{
		"nodeName": "pve", "vmId": 8011.0,
		"cpu":   map[string]any{"cores": 2.0},
		"disks": []any{map[string]any{"interface": "scsi0", "fileId": "local:iso/a.img", "size": 10.0}},
	}
	with := func(path string, v any) map[string]any {
		out := engine.Normalise(vm).(map[string]any)
		switch path {
		case "cpu.cores":
			out["cpu"].(map[string]any)["cores"] = v
		case "disks[0].fileId":
			out["disks"].([]any)[0].(map[string]any)["fileId"] = v
		case "disks[0].interface":
			out["disks"].([]any)[0].(map[string]any)["interface"] = v
		case "disks[0].size":
			out["disks"].([]any)[0].(map[string]any)["size"] = v
		default:
			out[path] = v
		}
		return out
	}
	kinds := map[string]*engine.Kind{}
	ks, _ := talos.Kinds()
	for _, k := range append(append(proxmox.Kinds(), ks...), clis.Kinds()...) {
		kinds[k.Token] = k
	}
	apply := map[string]any{"node": "10.0.0.11", "configPatches": []any{"a: 1"}, "machineConfigurationInput": "x"}
	cases := []struct {
		name     string
		token    string
		olds     map[string]any
		news     map[string]any
		changes  pulumirpc.DiffResponse_DiffChanges
		replaces []string
	}{
		{"identical", proxmox.TokenVM, vm, with("nodeName", "pve"), pulumirpc.DiffResponse_DIFF_NONE, nil},
		{"cores update in place", proxmox.TokenVM, vm, with("cpu.cores", 4.0), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"disk size updates in place", proxmox.TokenVM, vm, with("disks[0].size", 20.0), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"another node replaces", proxmox.TokenVM, vm, with("nodeName", "pve2"), pulumirpc.DiffResponse_DIFF_SOME, []string{"nodeName"}},
		{"another VM ID replaces", proxmox.TokenVM, vm, with("vmId", 8012.0), pulumirpc.DiffResponse_DIFF_SOME, []string{"vmId"}},
		{"another boot image replaces", proxmox.TokenVM, vm, with("disks[0].fileId", "local:iso/b.img"), pulumirpc.DiffResponse_DIFF_SOME, []string{"disks"}},
		{"unknown during preview is a change", proxmox.TokenVM, vm, with("cpu.cores", engine.UnknownMarker{}), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"another disk interface updates (then fails: disks cannot be removed)", proxmox.TokenVM, vm, with("disks[0].interface", "virtio0"), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"another node with migrate updates", proxmox.TokenVM, with("migrate", true), func() map[string]any { m := with("migrate", true); m["nodeName"] = "pve2"; return m }(),
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"container disk size replaces", proxmox.TokenContainer, map[string]any{"disk": map[string]any{"size": 4.0}}, map[string]any{"disk": map[string]any{"size": 8.0}},
			pulumirpc.DiffResponse_DIFF_SOME, []string{"disk"}},
		{"bridge on another node updates", proxmox.TokenBridge, map[string]any{"nodeName": "pve", "name": "vmbr1"}, map[string]any{"nodeName": "pve2", "name": "vmbr1"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"download decompression updates", proxmox.TokenDownload, map[string]any{"url": "https://e.test/a.img"}, map[string]any{"url": "https://e.test/a.img", "decompressionAlgorithm": "zst"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"new patch updates the apply", talos.TokenApply, apply, map[string]any{"node": "10.0.0.11", "configPatches": []any{"a: 2"}, "machineConfigurationInput": "x"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		// terraform-provider-talos v0.10.1: no RequiresReplace on the apply.
		{"another node updates the apply in place", talos.TokenApply, apply, map[string]any{"node": "10.0.0.12", "configPatches": []any{"a: 1"}, "machineConfigurationInput": "x"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		// talos_machine_secrets_resource.go:536: only a downgrade replaces.
		{"a talos upgrade updates the secrets in place", talos.TokenSecrets, map[string]any{"talosVersion": "v1.11.0"}, map[string]any{"talosVersion": "v1.12.0"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"a talos downgrade replaces the secrets", talos.TokenSecrets, map[string]any{"talosVersion": "v1.12.0"}, map[string]any{"talosVersion": "v1.11.0"},
			pulumirpc.DiffResponse_DIFF_SOME, []string{"talosVersion"}},
		{"triggers replace a command", clis.TokenRemoteCommand, map[string]any{"create": "a", "triggers": []any{"1"}}, map[string]any{"create": "a", "triggers": []any{"2"}},
			pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}},
		{"a new script updates a command", clis.TokenRemoteCommand, map[string]any{"create": "a"}, map[string]any{"create": "b"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := (*engine.Server)(nil).DiffAll(kinds[c.token], "", "", nil, c.olds, c.news)
			if got.Changes != c.changes {
				t.Errorf("changes = %v, want %v (diffs %v)", got.Changes, c.changes, got.Diffs)
			}
			if strings.Join(got.Replaces, ",") != strings.Join(c.replaces, ",") {
				t.Errorf("replaces = %v, want %v", got.Replaces, c.replaces)
			}
		})
	}
}
