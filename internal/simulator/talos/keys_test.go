package talos_test

import (
	"testing"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/vm"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/client"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/cluster"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/imagefactory"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	_ "github.com/sda-platform/sda/internal/simulator/talos"
)

// TestKeysAreInTheProviderSchema: every property the talos rules read is
// one pulumi-talos v0.7.1 has (and the VM's disks, which a machine's boot
// image is read from, pulumi-proxmoxve's).
func TestKeysAreInTheProviderSchema(t *testing.T) {
	simtest.CheckKeys(t, "talos",
		imagefactory.SchematicArgs{}, imagefactory.Schematic{}, imagefactory.GetUrlsArgs{},
		machine.SecretsArgs{}, machine.Secrets{}, machine.ConfigurationApplyArgs{}, machine.ConfigurationApply{},
		machine.BootstrapArgs{}, machine.GetConfigurationArgs{}, machine.GetConfigurationResult{},
		client.GetConfigurationArgs{}, cluster.KubeconfigArgs{}, cluster.Kubeconfig{}, cluster.GetHealthArgs{},
		vm.VirtualMachineArgs{})
}
