package proxmox_test

import (
	"maps"
	"slices"
	"testing"

	proxmoxve "github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/ct"
	pxdownload "github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	pxnetwork "github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/network"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/vm"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/imagefactory"

	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// TestKeysAreInTheProviderSchema: every property the proxmoxve rules read
// is one pulumi-proxmoxve v6.18.1 has.
func TestKeysAreInTheProviderSchema(t *testing.T) {
	simtest.CheckKeys(t, "proxmox",
		vm.VirtualMachineArgs{}, vm.VirtualMachine{}, ct.ContainerArgs{}, ct.Container{},
		pxdownload.FileArgs{}, pxdownload.File{}, pxnetwork.NetworkBridgeArgs{}, pxnetwork.NetworkVlanArgs{},
		proxmoxve.ProviderArgs{},
		// The agent rule reads the Image Factory schematic a VM's image
		// came from (talos imageFactory.Schematic's input).
		imagefactory.SchematicArgs{})
}

// TestReplacePathsAreInTheProviderSchema: the input paths that replace a
// resource, and those whose change reboots a guest, are the resource's own.
func TestReplacePathsAreInTheProviderSchema(t *testing.T) {
	roots := map[string]any{
		proxmox.TokenVM: vm.VirtualMachineArgs{}, proxmox.TokenContainer: ct.ContainerArgs{},
		proxmox.TokenDownload: pxdownload.FileArgs{}, proxmox.TokenBridge: pxnetwork.NetworkBridgeArgs{},
		proxmox.TokenVLAN: pxnetwork.NetworkVlanArgs{},
	}
	for _, k := range proxmox.Kinds() {
		root, ok := roots[k.Token]
		if !ok {
			t.Errorf("no SDK type for %s", k.Token)
			continue
		}
		simtest.CheckPaths(t, k.Token+" Replace", k.Replace, root)
	}
	simtest.CheckPaths(t, "vmRebootKeys", proxmox.VMRebootKeys, vm.VirtualMachineArgs{})
	simtest.CheckPaths(t, "containerRebootKeys", proxmox.ContainerRebootKeys, ct.ContainerArgs{})
	simtest.CheckPaths(t, "vmBlockKeys", slices.Collect(maps.Keys(proxmox.VMBlockKeys)), vm.VirtualMachineArgs{})
	simtest.CheckPaths(t, "containerBlockKeys", slices.Collect(maps.Keys(proxmox.ContainerBlockKeys)), ct.ContainerArgs{})
}
