package components

import (
	"fmt"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/vm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

	"github.com/sda-platform/sda/stacks/config"
)

// TalosNodeArgs describes one Talos VM and the configuration applied to it.
type TalosNodeArgs struct {
	// Machine is the node's plan entry: role, hostname, Proxmox node, VM ID,
	// MAC, address and size.
	Machine config.Machine
	// PrefixLen of the internal network, Gateway the router's internal
	// address (also the DNS server), Domain the internal DNS domain.
	PrefixLen int
	Gateway   string
	Domain    string

	Datastore     string
	DiskInterface string // "scsi" or "virtio"
	CPUType       string
	// ImageFileID is the Talos nocloud image on the Proxmox node (download.File id).
	ImageFileID pulumi.StringInput
	Bridge      pulumi.StringInput
	// MTU of the NIC; 0 or 1500 leaves Proxmox's default (1500).
	MTU int

	// ClientConfiguration comes from the cluster's machine.Secrets.
	ClientConfiguration machine.ClientConfigurationInput
	// MachineConfiguration is the role's generated configuration.
	MachineConfiguration pulumi.StringInput
	// ConfigPatches are this node's own patches (talospatch.NodePatches).
	ConfigPatches pulumi.StringArrayInput
	// ApplyAfter are resources the configuration apply waits for beyond the
	// VM itself, e.g. the router (the installer image is pulled through it).
	ApplyAfter []pulumi.Resource
	// VMAfter are resources the VM waits for: the previous control plane's
	// VM, so that changes the Proxmox provider applies with a reboot
	// (cores, memory, NICs, cloud-init) reboot control planes one at a time.
	VMAfter []pulumi.Resource
}

// AgentTimeout bounds how long the Proxmox provider waits for the QEMU
// guest agent to report addresses whenever it reads a started VM with the
// agent enabled (bpg v0.69.1 proxmoxtf/resource/vm/network/network.go:240,
// default 15m). A timeout is not an error there, and SDA reads no address
// from the agent (they come from the plan), so the wait buys nothing at
// creation, where a node in Talos maintenance mode may not run the agent
// extension yet: without a bound every new VM would stall the deployment
// for 15 minutes. After a reboot, on the other hand, the wait holds the
// update until Talos is up again, so rolling reboots wait for each node;
// two minutes covers a Talos boot.
const AgentTimeout = "2m"

// TalosNode is a Proxmox VM running Talos with its machine configuration applied.
type TalosNode struct {
	pulumi.ResourceState

	Hostname pulumi.StringOutput `pulumi:"hostname"`
	Address  pulumi.StringOutput `pulumi:"address"`
	VMID     pulumi.IntOutput    `pulumi:"vmId"`
	Role     pulumi.StringOutput `pulumi:"role"`
	// MachineConfiguration is the applied configuration (secret: it embeds
	// the cluster's keys).
	MachineConfiguration pulumi.StringOutput `pulumi:"machineConfiguration"`

	// Applied is the configuration apply; bootstrap depends on it.
	Applied *machine.ConfigurationApply `pulumi:"-"`
	VM      *vm.VirtualMachine          `pulumi:"-"`
}

// NewTalosNode creates the VM and applies its machine configuration.
func NewTalosNode(ctx *pulumi.Context, name string, args *TalosNodeArgs, opts ...pulumi.ResourceOption) (*TalosNode, error) {
	if args == nil || args.Machine.Hostname == "" || !args.Machine.Address.IsValid() {
		return nil, fmt.Errorf("TalosNode %s: Machine with hostname and address is required", name)
	}
	m := args.Machine
	comp := &TalosNode{}
	if err := ctx.RegisterComponentResource(TalosNodeType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)

	diskInterface := "scsi0"
	if args.DiskInterface == config.DiskVirtIO {
		diskInterface = "virtio0"
	}
	address := m.Address.String()
	nic := &vm.VirtualMachineNetworkDeviceArgs{
		Bridge:     args.Bridge,
		MacAddress: pulumi.String(m.MAC),
		Model:      pulumi.String("virtio"),
		Firewall:   pulumi.Bool(false),
	}
	// Only a non-default MTU is set, so stacks on 1500 see no change.
	if args.MTU != 0 && args.MTU != 1500 {
		nic.Mtu = pulumi.Int(args.MTU)
	}
	machineVM, err := vm.NewVirtualMachine(ctx, name+"-vm", &vm.VirtualMachineArgs{
		NodeName:    pulumi.String(m.ProxmoxNode),
		VmId:        pulumi.Int(m.VMID),
		Name:        pulumi.String(m.Hostname),
		Description: pulumi.String(fmt.Sprintf("SDA Talos %s %s", m.Role, m.Hostname)),
		Tags:        pulumi.StringArray{pulumi.String("sda"), pulumi.String("talos"), pulumi.String(string(m.Role))},
		// Talos needs x86-64-v2; the default kvm64 lacks it.
		Cpu:    &vm.VirtualMachineCpuArgs{Cores: pulumi.Int(m.Size.Cores), Type: pulumi.String(args.CPUType)},
		Memory: &vm.VirtualMachineMemoryArgs{Dedicated: pulumi.Int(m.Size.MemoryMiB)},
		// The nocloud image carries the qemu-guest-agent extension; the agent
		// is enabled only together with it (a missing agent stalls Proxmox).
		Agent: &vm.VirtualMachineAgentArgs{Enabled: pulumi.Bool(true), Trim: pulumi.Bool(true),
			Timeout: pulumi.String(AgentTimeout)},
		OperatingSystem: &vm.VirtualMachineOperatingSystemArgs{Type: pulumi.String("l26")},
		ScsiHardware:    pulumi.String("virtio-scsi-single"),
		Disks: vm.VirtualMachineDiskArray{&vm.VirtualMachineDiskArgs{
			Interface:   pulumi.String(diskInterface),
			DatastoreId: pulumi.String(args.Datastore),
			FileId:      args.ImageFileID,
			FileFormat:  pulumi.String("raw"),
			Size:        pulumi.Int(m.Size.DiskGiB),
			Discard:     pulumi.String("on"),
			Iothread:    pulumi.Bool(true),
		}},
		BootOrders:     pulumi.StringArray{pulumi.String(diskInterface)},
		NetworkDevices: vm.VirtualMachineNetworkDeviceArray{nic},
		// Cloud-init (read by the nocloud image) gives the static address
		// from first boot, so the maintenance-mode API is where we expect it.
		Initialization: &vm.VirtualMachineInitializationArgs{
			DatastoreId: pulumi.String(args.Datastore),
			IpConfigs: vm.VirtualMachineInitializationIpConfigArray{&vm.VirtualMachineInitializationIpConfigArgs{
				Ipv4: &vm.VirtualMachineInitializationIpConfigIpv4Args{
					Address: pulumi.String(fmt.Sprintf("%s/%d", address, args.PrefixLen)),
					Gateway: pulumi.String(args.Gateway),
				},
			}},
			Dns: &vm.VirtualMachineInitializationDnsArgs{
				Servers: pulumi.StringArray{pulumi.String(args.Gateway)},
				Domain:  pulumi.String(args.Domain),
			},
		},
		OnBoot:        pulumi.Bool(true),
		Started:       pulumi.Bool(true),
		StopOnDestroy: pulumi.Bool(true),
	}, parent,
		// The boot image only seeds the disk at creation; Talos installs and
		// upgrades itself afterwards. A new image (another Talos version or
		// schematic) applies to new VMs and must not replace running ones.
		pulumi.IgnoreChanges([]string{"disks[0].fileId",
			// Any change of the agent block reboots the VM (bpg v0.69.1
			// vm.go:4899): VMs created before the timeout was set keep
			// the provider's default rather than all rebooting at once.
			"agent.timeout"}),
		pulumi.DependsOn(args.VMAfter))
	if err != nil {
		return nil, err
	}

	applyAfter := append([]pulumi.Resource{machineVM}, args.ApplyAfter...)
	applied, err := machine.NewConfigurationApply(ctx, name+"-config", &machine.ConfigurationApplyArgs{
		ClientConfiguration:       args.ClientConfiguration,
		MachineConfigurationInput: args.MachineConfiguration,
		ConfigPatches:             args.ConfigPatches,
		// Always the node's own address: the VIP is not up before bootstrap.
		Node:     pulumi.String(address),
		Endpoint: pulumi.String(address),
	}, parent, pulumi.DependsOn(applyAfter),
		pulumi.AdditionalSecretOutputs([]string{"machineConfiguration", "machineConfigurationInput"}))
	if err != nil {
		return nil, err
	}

	comp.VM = machineVM
	comp.Applied = applied
	comp.Hostname = pulumi.String(m.Hostname).ToStringOutput()
	comp.Role = pulumi.String(string(m.Role)).ToStringOutput()
	// Address and VM ID are read through the resources so that dependents
	// wait for the VM (and the configuration) to exist.
	comp.Address = pulumi.All(machineVM.ID(), applied.ID()).ApplyT(func([]any) string { return address }).(pulumi.StringOutput)
	comp.VMID = machineVM.VmId
	comp.MachineConfiguration = pulumi.ToSecret(applied.MachineConfiguration).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"hostname":             comp.Hostname,
		"address":              comp.Address,
		"vmId":                 comp.VMID,
		"role":                 comp.Role,
		"machineConfiguration": comp.MachineConfiguration,
	}); err != nil {
		return nil, err
	}
	return comp, nil
}
