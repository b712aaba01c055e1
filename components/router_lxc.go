package components

import (
	"encoding/base64"
	"fmt"
	"path"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/ct"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components/routerfiles"
)

// RouterSSH is how configuration reaches the container: SSH to the Proxmox
// host that runs it, then `pct exec` into the container. The container needs
// no SSH server and no address reachable from where Pulumi runs.
type RouterSSH struct {
	Host string
	User string
	// PrivateKey is optional (secret); without it the SSH agent is used.
	PrivateKey pulumi.StringInput
}

// RouterLXCArgs describes the router container.
type RouterLXCArgs struct {
	ProxmoxNode string
	VMID        int
	Hostname    string
	Cores       int
	MemoryMiB   int
	DiskGiB     int
	// Datastore holds the container's root disk.
	Datastore string
	// TemplateDatastore receives the downloaded LXC template (content vztmpl).
	TemplateDatastore string
	TemplateURL       string
	TemplateChecksum  string

	ExternalBridge string
	ExternalVLAN   int
	// ExternalAddress is "dhcp" or a CIDR such as 192.168.1.50/24.
	ExternalAddress string
	ExternalGateway string
	InternalBridge  pulumi.StringInput
	// InternalMTU of the internal NIC; 0 or 1500 leaves the default.
	InternalMTU int
	// InternalAddress is the gateway address of the internal network, as CIDR.
	InternalAddress string
	// UpstreamDNS is what the container itself resolves with.
	UpstreamDNS []string

	// Files is the rendered configuration (routerfiles.Render). It must
	// point at routerfiles.DebianLayout's host directories, as the files of
	// a Spec with the Default*Dir paths do.
	Files routerfiles.Files
	// Hosts are the nodes (Spec.Hosts). Each gets a command of its own that
	// installs its DNS name, DHCP reservation and firewall entries, and
	// removes them when the host goes, so adding or removing a node creates
	// or deletes one command and leaves the main configuration alone.
	Hosts []routerfiles.Host
	SSH   RouterSSH
}

// RouterLXC routes between the external network and the internal bridge:
// NAT, a firewall, DNS and DHCP, in a Debian LXC container.
type RouterLXC struct {
	pulumi.ResourceState

	VMID            pulumi.IntOutput    `pulumi:"vmId"`
	ExternalAddress pulumi.StringOutput `pulumi:"externalAddress"`
	InternalAddress pulumi.StringOutput `pulumi:"internalAddress"`
	// ConfigDigest identifies the applied configuration; it changes exactly
	// when a rendered file changes.
	ConfigDigest pulumi.StringOutput `pulumi:"configDigest"`

	// Configured is the command that applied the configuration: depend on it
	// for anything that needs the router routing.
	Configured *remote.Command `pulumi:"-"`
	// HostEntries are the hosts' commands, by host name.
	HostEntries map[string]*remote.Command `pulumi:"-"`
}

// routerInterfaces are the container's NIC names; routerfiles renders rules
// for the same names.
const (
	routerExternalNIC = "eth0"
	routerInternalNIC = "eth1"
)

// installRouterPackages runs once per container. The standard Debian
// template has neither nftables nor dnsmasq; the container reaches the
// mirrors through its external NIC.
const installRouterPackages = `set -eu
for i in $(seq 1 60); do getent hosts deb.debian.org >/dev/null && break; sleep 2; done
if ! command -v nft >/dev/null || ! command -v dnsmasq >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nftables dnsmasq
fi
systemctl enable nftables dnsmasq >/dev/null 2>&1 || true
`

// pctScript is the host-side command that runs script inside container
// vmid. base64 keeps the script intact whatever quotes it contains.
func pctScript(vmid int, script string) string {
	return fmt.Sprintf("printf '%%s' '%s' | base64 -d | pct exec %d -- sh -s",
		base64.StdEncoding.EncodeToString([]byte(script)), vmid)
}

// NewRouterLXC creates the container, applies its configuration and adds
// every host's entries.
func NewRouterLXC(ctx *pulumi.Context, name string, args *RouterLXCArgs, opts ...pulumi.ResourceOption) (*RouterLXC, error) {
	if args == nil || args.ProxmoxNode == "" || args.VMID == 0 || args.SSH.Host == "" {
		return nil, fmt.Errorf("RouterLXC %s: ProxmoxNode, VMID and SSH.Host are required", name)
	}
	layout := routerfiles.DebianLayout()
	// A mismatch would install hosts where neither dnsmasq nor the ruleset
	// looks: refuse it before anything is registered.
	if err := args.Files.CheckLayout(layout); err != nil {
		return nil, fmt.Errorf("RouterLXC %s: %w", name, err)
	}
	seen := map[string]bool{}
	for _, h := range args.Hosts {
		if seen[h.Name] {
			return nil, fmt.Errorf("RouterLXC %s: host %q is listed twice", name, h.Name)
		}
		seen[h.Name] = true
	}
	comp := &RouterLXC{HostEntries: map[string]*remote.Command{}}
	if err := ctx.RegisterComponentResource(RouterLXCType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)

	templateArgs := &download.FileArgs{
		NodeName:    pulumi.String(args.ProxmoxNode),
		DatastoreId: pulumi.String(args.TemplateDatastore),
		ContentType: pulumi.String("vztmpl"),
		Url:         pulumi.String(args.TemplateURL),
		// A file name of our own: a template already on the datastore (put
		// there by hand or by another stack) is neither adopted nor deleted.
		FileName:  pulumi.String(name + "-" + path.Base(args.TemplateURL)),
		Overwrite: pulumi.Bool(false),
	}
	if args.TemplateChecksum != "" {
		templateArgs.Checksum = pulumi.String(args.TemplateChecksum)
		templateArgs.ChecksumAlgorithm = pulumi.String("sha256")
	}
	template, err := download.NewFile(ctx, name+"-template", templateArgs, parent)
	if err != nil {
		return nil, err
	}

	extIP := &ct.ContainerInitializationIpConfigIpv4Args{Address: pulumi.String(args.ExternalAddress)}
	if args.ExternalAddress != "dhcp" && args.ExternalGateway != "" {
		extIP.Gateway = pulumi.String(args.ExternalGateway)
	}
	extNIC := &ct.ContainerNetworkInterfaceArgs{
		Name:     pulumi.String(routerExternalNIC),
		Bridge:   pulumi.String(args.ExternalBridge),
		Firewall: pulumi.Bool(false),
	}
	if args.ExternalVLAN > 0 {
		extNIC.VlanId = pulumi.Int(args.ExternalVLAN)
	}
	intNIC := &ct.ContainerNetworkInterfaceArgs{
		Name:     pulumi.String(routerInternalNIC),
		Bridge:   args.InternalBridge,
		Firewall: pulumi.Bool(false),
	}
	// Only a non-default MTU is set, so stacks on 1500 see no change.
	if args.InternalMTU != 0 && args.InternalMTU != 1500 {
		intNIC.Mtu = pulumi.Int(args.InternalMTU)
	}
	container, err := ct.NewContainer(ctx, name+"-ct", &ct.ContainerArgs{
		NodeName:    pulumi.String(args.ProxmoxNode),
		VmId:        pulumi.Int(args.VMID),
		Description: pulumi.String("SDA router: NAT, firewall, DNS and DHCP for the internal network"),
		Tags:        pulumi.StringArray{pulumi.String("sda"), pulumi.String("router")},
		// Unprivileged: nftables and ip_forward act on the container's own
		// network namespace, which its root owns.
		Unprivileged: pulumi.Bool(true),
		Features:     &ct.ContainerFeaturesArgs{Nesting: pulumi.Bool(true)},
		Cpu:          &ct.ContainerCpuArgs{Cores: pulumi.Int(args.Cores)},
		Memory:       &ct.ContainerMemoryArgs{Dedicated: pulumi.Int(args.MemoryMiB), Swap: pulumi.Int(0)},
		Disk:         &ct.ContainerDiskArgs{DatastoreId: pulumi.String(args.Datastore), Size: pulumi.Int(args.DiskGiB)},
		OperatingSystem: &ct.ContainerOperatingSystemArgs{
			TemplateFileId: template.ID(),
			Type:           pulumi.String("debian"),
		},
		NetworkInterfaces: ct.ContainerNetworkInterfaceArray{
			extNIC,
			intNIC,
		},
		Initialization: &ct.ContainerInitializationArgs{
			Hostname: pulumi.String(args.Hostname),
			IpConfigs: ct.ContainerInitializationIpConfigArray{
				&ct.ContainerInitializationIpConfigArgs{Ipv4: extIP},
				&ct.ContainerInitializationIpConfigArgs{Ipv4: &ct.ContainerInitializationIpConfigIpv4Args{
					Address: pulumi.String(args.InternalAddress),
				}},
			},
			Dns: &ct.ContainerInitializationDnsArgs{Servers: pulumi.ToStringArray(args.UpstreamDNS)},
		},
		Started:     pulumi.Bool(true),
		StartOnBoot: pulumi.Bool(true),
	}, parent,
		// The VM ID is fixed, and Proxmox refuses a second guest with it: a
		// replacement (a new disk size, template or datastore: ForceNew in
		// bpg v0.69.1 container.go) must delete the old container first.
		// The internal network is without its gateway until the new one
		// is configured; `sda plan` says so.
		pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, err
	}

	conn := remote.ConnectionArgs{Host: pulumi.String(args.SSH.Host), User: pulumi.String(args.SSH.User)}
	if args.SSH.PrivateKey != nil {
		conn.PrivateKey = pulumi.ToSecret(args.SSH.PrivateKey).(pulumi.StringOutput)
	}
	// The container's VM ID comes from the container resource, so both
	// commands wait for it to exist and run again if it is ever replaced.
	vmid := container.VmId

	install, err := remote.NewCommand(ctx, name+"-packages", &remote.CommandArgs{
		Connection: conn,
		Create: vmid.ApplyT(func(id int) string {
			return pctScript(id, installRouterPackages)
		}).(pulumi.StringOutput),
	}, parent)
	if err != nil {
		return nil, err
	}

	// The configuration script carries the rendered files, so its text
	// changes exactly when a file does: then the command's update runs it
	// again in place (the container stays); unchanged files change nothing.
	// The script itself writes only what differs and restarts dnsmasq only
	// when its configuration changed, so leases survive a re-apply.
	// The files list no node, so adding or removing one leaves this command
	// as it is.
	applyScript := routerfiles.ApplyScript(args.Files, layout)
	script := vmid.ApplyT(func(id int) string { return pctScript(id, applyScript) }).(pulumi.StringOutput)
	configured, err := remote.NewCommand(ctx, name+"-config", &remote.CommandArgs{
		Connection: conn,
		Create:     script,
		Update:     script,
	}, parent, pulumi.DependsOn([]pulumi.Resource{install}))
	if err != nil {
		return nil, err
	}

	// One command per host, named after it: a new node creates its command,
	// a removed node deletes its command, whose Delete removes its entries.
	// Each runs after the main configuration, which creates the directories
	// and the firewall sets the host's files go into. A changed host (a new
	// MAC, say) runs Create again in place; the script is idempotent.
	for _, h := range args.Hosts {
		add, remove := routerfiles.HostScript(h, layout), routerfiles.RemoveHostScript(h, layout)
		cmd, err := remote.NewCommand(ctx, name+"-host-"+h.Name, &remote.CommandArgs{
			Connection: conn,
			Create:     vmid.ApplyT(func(id int) string { return pctScript(id, add) }).(pulumi.StringOutput),
			Delete:     vmid.ApplyT(func(id int) string { return pctScript(id, remove) }).(pulumi.StringOutput),
		}, parent, pulumi.DependsOn([]pulumi.Resource{configured}))
		if err != nil {
			return nil, err
		}
		comp.HostEntries[h.Name] = cmd
	}

	comp.Configured = configured
	comp.VMID = vmid
	comp.ExternalAddress = pulumi.String(args.ExternalAddress).ToStringOutput()
	comp.InternalAddress = pulumi.String(args.InternalAddress).ToStringOutput()
	comp.ConfigDigest = configured.Create.ApplyT(func(*string) string { return args.Files.Digest() }).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"vmId":            comp.VMID,
		"externalAddress": comp.ExternalAddress,
		"internalAddress": comp.InternalAddress,
		"configDigest":    comp.ConfigDigest,
	}); err != nil {
		return nil, err
	}
	return comp, nil
}
