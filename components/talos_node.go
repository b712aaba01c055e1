package components

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/vm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

	"github.com/sda-platform/sda/components/guestchange"
	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/grammar"
)

// Talos machine roles (TalosNodeSpec.Role).
const (
	RoleControlPlane = spec.RoleControlPlane
	RoleWorker       = spec.RoleWorker
)

// TalosNodeSpec is one Talos VM: who it is, where it runs and its size.
type TalosNodeSpec struct {
	// Hostname is the VM's and the Talos node's name.
	Hostname string `pulumi:"hostname"`
	// Role is RoleControlPlane or RoleWorker.
	Role string `pulumi:"role"`
	// ProxmoxNode is the Proxmox node the VM runs on; VMID its ID there.
	ProxmoxNode string `pulumi:"proxmoxNode"`
	VMID        int    `pulumi:"vmId"`
	// MAC of the VM's only NIC; Talos selects the interface by it, whatever
	// the image names the NIC. Keep it fixed for the VM's life.
	MAC string `pulumi:"mac"`
	// Address is the node's static IPv4 address on the internal network.
	Address string `pulumi:"address"`
	// Cores are the VM's CPU cores.
	Cores int `pulumi:"cores"`
	// MemoryMiB is the VM's memory, in MiB.
	MemoryMiB int `pulumi:"memoryMiB"`
	// DiskGiB is the size of the VM's disk, in GiB.
	DiskGiB int `pulumi:"diskGiB"`
	// Rebuild, changed, rebuilds the node: it is removed from the cluster
	// quorum-safely (NodeDrainType), its VM and configuration are created
	// anew with the same name, ID and address, and it joins again. 0 is
	// the node as first built; raise it by one for each rebuild.
	Rebuild int `pulumi:"rebuild,optional"`
}

// TalosNetworkArgs is the internal network the nodes are on.
type TalosNetworkArgs struct {
	// Gateway is the router's internal address, also the nodes' DNS server.
	Gateway string `pulumi:"gateway"`
	// PrefixLen of the internal network, e.g. 24.
	PrefixLen int `pulumi:"prefixLen"`
	// Domain is the internal DNS search domain.
	Domain string `pulumi:"domain"`
	// VIP is the control planes' shared address for the Kubernetes API, ""
	// for none (the API is then the first control plane's address).
	VIP string `pulumi:"vip,optional"`
	// MTU of the nodes' links; 0 or 1500 leaves the default (1500).
	MTU int `pulumi:"mtu,optional"`
}

// TalosNodeArgs describes one Talos VM and the configuration applied to it.
type TalosNodeArgs struct {
	// Node is the VM: who it is, where it runs and its size.
	Node TalosNodeSpec `pulumi:"node"`
	// Network is the internal network the node is on.
	Network TalosNetworkArgs `pulumi:"network"`

	// Datastore holds the VM's disk and cloud-init drive.
	Datastore string `pulumi:"datastore"`
	// DiskInterface is "scsi" (default) or "virtio".
	DiskInterface string `pulumi:"diskInterface,optional"`
	// CPUType must offer x86-64-v2 (default "host").
	CPUType string `pulumi:"cpuType,optional"`
	// ImageFileID is the Talos nocloud image on the Proxmox node (download.File id).
	ImageFileID pulumi.StringInput `pulumi:"imageFileId"`
	// Bridge is the bridge the NIC attaches to on the node's Proxmox node.
	Bridge pulumi.StringInput `pulumi:"bridge"`

	// ClientConfiguration comes from the cluster's machine.Secrets.
	ClientConfiguration machine.ClientConfigurationInput `pulumi:"clientConfiguration" provider:"secret"`
	// MachineConfiguration is the role's generated configuration.
	MachineConfiguration pulumi.StringInput `pulumi:"machineConfiguration" provider:"secret"`
	// ConfigPatches are this node's own patches (talospatch.NodePatches).
	ConfigPatches pulumi.StringArrayInput `pulumi:"configPatches,optional"`

	// ApplyAfter are resources the configuration apply waits for beyond the
	// VM itself, e.g. the router (the installer image is pulled through it).
	// Go programs only; WaitFor is the same for every language.
	ApplyAfter []pulumi.Resource
	// WaitFor are values the configuration apply waits for: an output
	// resolves only once its resource is done, so passing RouterLXC's
	// configDigest holds the apply until the router routes.
	WaitFor pulumi.StringArrayInput `pulumi:"waitFor,optional"`
	// VMAfter are resources the VM waits for (besides its own NodeDrain).
	// Go programs only.
	VMAfter []pulumi.Resource
	// Roll, when set, rolls the restarts that this VM's updates cause:
	// the node is drained before (NodeDrainType) and waited for after
	// (NodeReadyType), taking turns with the cluster's other nodes.
	// TalosCluster sets it. Go programs only.
	Roll *TalosNodeRoll
}

// TalosNodeRoll is what rolling a node's restarts needs: the cluster it
// takes turns in, every declared node (the health gates check them all),
// and the cluster's talosconfig.
type TalosNodeRoll struct {
	ClusterName       string
	Cluster           []TalosNodeSpec
	Talosconfig       pulumi.StringInput
	WorkerParallelism int
	TimeoutSeconds    int
	PollSeconds       int
	// RebootingPatches identifies the cluster's patches that Talos applies
	// only with a reboot (talospatch.RebootingPatchFields), "" for none:
	// a change of them is a restart to roll.
	RebootingPatches string
}

// AgentTimeout bounds how long the Proxmox provider waits for the QEMU
// guest agent to report addresses whenever it reads a started VM with the
// agent enabled (bpg v0.69.1 proxmoxtf/resource/vm/network/network.go:240,
// default 15m; a timeout is not an error there). SDA reads no address from
// the agent (they come from the plan), but the wait matters twice:
//   - at creation it is pure cost: Talos in maintenance mode does not run
//     the agent extension (siderolabs/talos#11651), so every new VM waits
//     the whole timeout (every VM in parallel);
//   - after an update that reboots the VM it holds the update until Talos
//     is back far enough to run the agent (NodeReady then waits for the
//     node to be Ready).
//
// One minute covers a Talos boot to the agent on Proxmox and keeps the
// creation cost at a minute per control plane (15 per VM by default).
const AgentTimeout = "1m"

// TalosNode is a Proxmox VM running Talos with its machine configuration applied.
type TalosNode struct {
	pulumi.ResourceState

	// Hostname is the node's name.
	Hostname pulumi.StringOutput `pulumi:"hostname"`
	// Address is the node's address; it resolves once the VM exists and its
	// configuration is applied (and, in a TalosCluster, the node is Ready after
	// a restart).
	Address pulumi.StringOutput `pulumi:"address"`
	// VMID is the VM's ID on the Proxmox cluster.
	VMID pulumi.IntOutput `pulumi:"vmId"`
	// Role is controlplane or worker.
	Role pulumi.StringOutput `pulumi:"role"`
	// MachineConfiguration is the applied configuration (secret: it embeds
	// the cluster's keys).
	MachineConfiguration pulumi.StringOutput `pulumi:"machineConfiguration" provider:"secret"`

	// Applied is the configuration apply; bootstrap depends on it.
	Applied *machine.ConfigurationApply
	VM      *vm.VirtualMachine
}

// NewTalosNode creates the VM and applies its machine configuration.
func NewTalosNode(ctx *pulumi.Context, name string, args *TalosNodeArgs, opts ...pulumi.ResourceOption) (*TalosNode, error) {
	if err := args.validate(); err != nil {
		return nil, fmt.Errorf("TalosNode %s: %w", name, err)
	}
	comp := &TalosNode{}
	if err := ctx.RegisterComponentResource(TalosNodeType, name, comp, opts...); err != nil {
		return nil, err
	}
	n := &nodeBuild{ctx: ctx, name: name, args: args, comp: comp, parent: pulumi.Parent(comp)}
	for _, step := range []func() error{
		n.guard, // says which VM updates reboot, refuses those Proxmox would fail
		n.drain, // drains the node before a restart, in its turn
		n.vm,    // the VM
		n.apply, // the machine configuration
		n.ready, // waits for the node to be back and uncordoned
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return comp, n.outputs()
}

// validate checks what names the VM and reaches its configuration.
func (args *TalosNodeArgs) validate() error {
	if args == nil || args.Node.Hostname == "" || args.Node.Address == "" {
		return fmt.Errorf("Node with hostname and address is required")
	}
	m := args.Node
	if m.Role != RoleControlPlane && m.Role != RoleWorker {
		return fmt.Errorf("role %q: use %q or %q", m.Role, RoleControlPlane, RoleWorker)
	}
	if !grammar.DNSLabel(m.Hostname) {
		return fmt.Errorf("Node.Hostname = %q is not a DNS label: write lowercase letters, digits and inner hyphens, such as lab-cp1", m.Hostname)
	}
	if _, err := netip.ParseAddr(m.Address); err != nil {
		return fmt.Errorf("address %q: %w", m.Address, err)
	}
	return nil
}

// nodeBuild carries what NewTalosNode's steps hand to each other.
type nodeBuild struct {
	ctx    *pulumi.Context
	name   string
	args   *TalosNodeArgs
	comp   *TalosNode
	parent pulumi.ResourceOrInvokeOption

	vmGuard *pulumi.ResourceHook
	// roll is the NodeDrain and NodeReady inputs; nil outside a cluster.
	roll      *nodeRestartInputs
	vmAfter   []pulumi.Resource
	machineVM *vm.VirtualMachine
	applied   *machine.ConfigurationApply
	// addressAfter are the IDs the node's Address output waits for.
	addressAfter []any
}

// cpuType is the VM's CPU type, or the default.
func (args *TalosNodeArgs) cpuType() string {
	if args.CPUType == "" {
		return spec.DefaultCPUType
	}
	return args.CPUType
}

// rebuildTrigger replaces the VM and its configuration when
// Node.Rebuild is raised.
func (args *TalosNodeArgs) rebuildTrigger() pulumi.ResourceOption {
	return pulumi.ReplacementTrigger(pulumi.String(fmt.Sprintf("%s#%d", args.Node.Hostname, max(args.Node.Rebuild, 0))))
}

// guard registers the hook that runs before any update of the VM (and in
// preview): it says which changes reboot the VM and refuses those the
// Proxmox provider would fail half way. It names the Args fields.
func (n *nodeBuild) guard() error {
	m := n.args.Node
	names := guestchange.Names{"disks.size": "Node.DiskGiB", "disks.interface": "DiskInterface", "disks": "the VM's disks"}
	guard, err := n.ctx.RegisterResourceHook(n.name+"-vm-guard", func(a *pulumi.ResourceHookArgs) error {
		reboots, err := guestchange.VM(a.OldInputs.Mappable(), a.NewInputs.Mappable(), names)
		if err != nil {
			return fmt.Errorf("TalosNode %s: %w", m.Hostname, err)
		}
		if len(reboots) > 0 {
			order := "not rolled: this node is not part of a TalosCluster"
			if n.args.Roll != nil {
				order = "rolled: drained first, waited for until Ready; control planes one at a time, workers workerParallelism at a time"
			}
			_ = n.ctx.Log.Warn(fmt.Sprintf("%s reboots: Proxmox applies %s only with a reboot (%s)", m.Hostname, strings.Join(reboots, ", "), order),
				&pulumi.LogArgs{Resource: n.comp})
		}
		return nil
	}, &pulumi.ResourceHookOptions{OnDryRun: true})
	n.vmGuard = guard
	return err
}

// restartSpec is the settings whose change makes the Proxmox provider
// reboot the VM (guestchange.RebootKeys that SDA sets), and the cluster's
// patches that Talos applies only with a reboot: a new value is a restart
// that NodeDrain and NodeReady roll (the configuration apply runs between
// them, so a rebooting apply is rolled too).
func (n *nodeBuild) restartSpec() pulumi.StringOutput {
	args, m, nw := n.args, n.args.Node, n.args.Network
	return pulumi.All(args.Bridge).ApplyT(func(v []any) string {
		spec := fmt.Sprintf("cpu=%d/%s memory=%d nic=%v/%s/mtu%d ip=%s/%d gw=%s domain=%s",
			m.Cores, args.cpuType(), m.MemoryMiB, v[0], m.MAC, nw.MTU, m.Address, nw.PrefixLen, nw.Gateway, nw.Domain)
		if args.Roll != nil && args.Roll.RebootingPatches != "" {
			spec += " patches=" + args.Roll.RebootingPatches
		}
		return spec
	}).(pulumi.StringOutput)
}

// vm creates the Proxmox VM: its disk seeded from the Talos image, its
// NIC on the internal bridge, its static address by cloud-init.
func (n *nodeBuild) vm() error {
	args, m, nw := n.args, n.args.Node, n.args.Network
	diskInterface := "scsi0"
	if args.DiskInterface == "virtio" {
		diskInterface = "virtio0"
	}
	nic := &vm.VirtualMachineNetworkDeviceArgs{
		Bridge:     args.Bridge,
		MacAddress: pulumi.String(m.MAC),
		Model:      pulumi.String("virtio"),
		Firewall:   pulumi.Bool(false),
	}
	// Only a non-default MTU is set, so stacks on 1500 see no change.
	if nw.MTU != 0 && nw.MTU != 1500 {
		nic.Mtu = pulumi.Int(nw.MTU)
	}
	machineVM, err := vm.NewVirtualMachine(n.ctx, n.name+"-vm", &vm.VirtualMachineArgs{
		NodeName:    pulumi.String(m.ProxmoxNode),
		VmId:        pulumi.Int(m.VMID),
		Name:        pulumi.String(m.Hostname),
		Description: pulumi.String(fmt.Sprintf("SDA Talos %s %s", m.Role, m.Hostname)),
		Tags:        pulumi.StringArray{pulumi.String("sda"), pulumi.String("talos"), pulumi.String(m.Role)},
		// Talos needs x86-64-v2; the default kvm64 lacks it.
		Cpu:    &vm.VirtualMachineCpuArgs{Cores: pulumi.Int(m.Cores), Type: pulumi.String(args.cpuType())},
		Memory: &vm.VirtualMachineMemoryArgs{Dedicated: pulumi.Int(m.MemoryMiB)},
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
			Size:        pulumi.Int(m.DiskGiB),
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
					Address: pulumi.String(fmt.Sprintf("%s/%d", m.Address, nw.PrefixLen)),
					Gateway: pulumi.String(nw.Gateway),
				},
			}},
			Dns: &vm.VirtualMachineInitializationDnsArgs{
				Servers: pulumi.StringArray{pulumi.String(nw.Gateway)},
				Domain:  pulumi.String(nw.Domain),
			},
		},
		OnBoot:        pulumi.Bool(true),
		Started:       pulumi.Bool(true),
		StopOnDestroy: pulumi.Bool(true),
	}, n.parent,
		// The boot image only seeds the disk at creation; Talos installs and
		// upgrades itself afterwards. A new image (another Talos version or
		// schematic) applies to new VMs and must not replace running ones.
		pulumi.IgnoreChanges([]string{"disks[0].fileId",
			// Any change of the agent block reboots the VM (bpg v0.69.1
			// vm.go:4899): VMs created before the timeout was set keep
			// the provider's default rather than all rebooting at once.
			"agent.timeout"}),
		pulumi.DependsOn(n.vmAfter),
		// A raised Rebuild replaces the VM; its ID is the same, so the old
		// one goes first. (The engine records the trigger on the first run
		// and replaces only when a recorded value changes.)
		args.rebuildTrigger(), pulumi.DeleteBeforeReplace(true),
		pulumi.ResourceHooks(&pulumi.ResourceHookBinding{BeforeUpdate: []*pulumi.ResourceHook{n.vmGuard}}))
	n.machineVM = machineVM
	return err
}

// apply applies the machine configuration, always at the node's own
// address: the VIP is not up before bootstrap.
func (n *nodeBuild) apply() error {
	args := n.args
	applyAfter := append([]pulumi.Resource{n.machineVM}, args.ApplyAfter...)
	applied, err := machine.NewConfigurationApply(n.ctx, n.name+"-config", &machine.ConfigurationApplyArgs{
		ClientConfiguration:       args.ClientConfiguration,
		MachineConfigurationInput: args.MachineConfiguration,
		ConfigPatches:             args.ConfigPatches,
		Node:                      pulumi.String(args.Node.Address),
		Endpoint:                  pulumi.String(args.Node.Address),
	}, n.parent, pulumi.DependsOn(applyAfter), dependsOnValues(args.WaitFor),
		// Replaced with its VM on a rebuild: the old one (whose delete does
		// nothing on the node) goes first, as the VM's does.
		args.rebuildTrigger(), pulumi.DeleteBeforeReplace(true),
		pulumi.AdditionalSecretOutputs([]string{"machineConfiguration", "machineConfigurationInput"}))
	n.applied = applied
	return err
}

// outputs sets and registers the component's outputs. Address and VM ID
// are read through the resources so that dependents wait for the VM (and
// the configuration) to exist.
func (n *nodeBuild) outputs() error {
	comp, m := n.comp, n.args.Node
	address := m.Address
	comp.VM = n.machineVM
	comp.Applied = n.applied
	comp.Hostname = pulumi.String(m.Hostname).ToStringOutput()
	comp.Role = pulumi.String(m.Role).ToStringOutput()
	comp.Address = pulumi.All(append(n.addressAfter, n.applied.ID())...).ApplyT(func([]any) string { return address }).(pulumi.StringOutput)
	comp.VMID = n.machineVM.VmId
	comp.MachineConfiguration = pulumi.ToSecret(n.applied.MachineConfiguration).(pulumi.StringOutput)
	return n.ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"hostname":             comp.Hostname,
		"address":              comp.Address,
		"vmId":                 comp.VMID,
		"role":                 comp.Role,
		"machineConfiguration": comp.MachineConfiguration,
	})
}

// dependsOnValues makes a resource wait for the resources behind values:
// the values' dependencies become the resource's (nil: none).
func dependsOnValues(values pulumi.StringArrayInput) pulumi.ResourceOption {
	if values == nil {
		return pulumi.DependsOn(nil)
	}
	return pulumi.DependsOnInputs(values.ToStringArrayOutput().ApplyT(func([]string) []pulumi.Resource { return nil }).(pulumi.ResourceArrayOutput))
}
