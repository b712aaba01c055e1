package proxmox_test

import (
	"testing"

	proxmoxve "github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/ct"
	pxdownload "github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	pxnetwork "github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/network"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/vm"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/imagefactory"

	_ "github.com/sda-platform/sda/internal/simulator/proxmox"
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
