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
	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/grammar"
)

// RouterSSH is how configuration reaches the container: SSH to the Proxmox
// host that runs it, then `pct exec` into the container. The container needs
// no SSH server and no address reachable from where Pulumi runs.
type RouterSSH struct {
	// Host is the Proxmox host's address or DNS name.
	Host string `pulumi:"host"`
	// User on the Proxmox host; it must be allowed to run pct (root).
	User string `pulumi:"user,optional"`
	// PrivateKey is optional (secret); without it the SSH agent is used.
	PrivateKey pulumi.StringInput `pulumi:"privateKey,optional" provider:"secret"`
	// HostKey pins the host's SSH key ("ssh-ed25519 AAAA…", the line of its
	// /etc/ssh/ssh_host_ed25519_key.pub; ed25519 or ECDSA): a host that
	// cannot prove it holds that key gets no script. Required unless
	// InsecureIgnoreHostKey is set.
	HostKey string `pulumi:"hostKey,optional"`
	// InsecureIgnoreHostKey connects without checking the host key: whoever
	// answers on Host receives the root scripts. Warned about on every run.
	InsecureIgnoreHostKey bool `pulumi:"insecureIgnoreHostKey,optional"`
}

// connection is the SSH connection to a Proxmox host, host-key pinned.
// field names the argument in errors (SSH, for RouterLXC).
func (s RouterSSH) connection(ctx *pulumi.Context, field string) (remote.ConnectionArgs, error) {
	conn := remote.ConnectionArgs{Host: pulumi.String(s.Host), User: pulumi.String(s.User)}
	if s.PrivateKey != nil {
		conn.PrivateKey = pulumi.ToSecret(s.PrivateKey).(pulumi.StringOutput)
	}
	switch {
	case s.HostKey != "":
		key, err := grammar.SSHHostKey(s.HostKey)
		if err != nil {
			return conn, fmt.Errorf("%s.HostKey %v", field, err)
		}
		conn.HostKey = pulumi.String(key)
	case s.InsecureIgnoreHostKey:
		if err := ctx.Log.Warn(fmt.Sprintf("%s.InsecureIgnoreHostKey: SSH to %s accepts any host key; whoever answers there receives the root scripts: pin its key in %s.HostKey", field, s.Host, field), nil); err != nil {
			return conn, err
		}
	default:
		return conn, fmt.Errorf("%s.HostKey is empty: pin the SSH host key of %s (the line of its /etc/ssh/ssh_host_ed25519_key.pub, checked on its console), or set %s.InsecureIgnoreHostKey to connect unverified", field, s.Host, field)
	}
	return conn, nil
}

// RouterLXCArgs describes the router container and what it routes. Every
// address is a string: the constructor parses them and says which field is
// wrong.
type RouterLXCArgs struct {
	// ProxmoxNode is the Proxmox node the container runs on.
	ProxmoxNode string `pulumi:"proxmoxNode"`
	// VMID is the container's ID on the Proxmox cluster.
	VMID int `pulumi:"vmId"`
	// Hostname of the container; it is also the router's own DNS name on
	// the internal network.
	Hostname string `pulumi:"hostname"`
	// Cores are the container's CPU cores.
	Cores int `pulumi:"cores"`
	// MemoryMiB is the container's memory, in MiB.
	MemoryMiB int `pulumi:"memoryMiB"`
	// DiskGiB is the size of the container's root disk, in GiB.
	DiskGiB int `pulumi:"diskGiB"`
	// Datastore holds the container's root disk.
	Datastore string `pulumi:"datastore"`
	// TemplateDatastore receives the downloaded LXC template (content vztmpl).
	TemplateDatastore string `pulumi:"templateDatastore"`
	// TemplateURL is the https:// URL of the Debian LXC template.
	TemplateURL string `pulumi:"templateUrl"`
	// TemplateChecksum is the template's SHA-256, SHA-384 or SHA-512 in hex
	// (the algorithm follows from its length); Proxmox checks it before the
	// template is used.
	TemplateChecksum string `pulumi:"templateChecksum"`

	// ExternalBridge is the bridge of the external network on the Proxmox node,
	// where the router's external NIC attaches.
	ExternalBridge string `pulumi:"externalBridge"`
	// ExternalVLAN tags the external NIC; 0 leaves it untagged.
	ExternalVLAN int `pulumi:"externalVlan,optional"`
	// ExternalAddress is "dhcp" or a CIDR such as 192.168.1.50/24.
	ExternalAddress string `pulumi:"externalAddress"`
	// ExternalGateway is the default gateway of a static ExternalAddress.
	ExternalGateway string `pulumi:"externalGateway,optional"`
	// InternalBridge is the internal network's bridge on the Proxmox node
	// (InternalNetwork's bridge), where the router's internal NIC attaches.
	InternalBridge pulumi.StringInput `pulumi:"internalBridge"`
	// InternalMTU of the internal NIC; 0 or 1500 leaves the default.
	InternalMTU int `pulumi:"internalMtu,optional"`
	// InternalAddress is the router's address in the internal network, as
	// CIDR (10.10.0.1/24): the gateway and DNS server of every host, and,
	// by its prefix, the internal network.
	InternalAddress string `pulumi:"internalAddress"`
	// UpstreamDNS are the servers the router resolves with and forwards
	// other names to, in order.
	UpstreamDNS []string `pulumi:"upstreamDns"`

	// Domain is the internal DNS domain: a host is <name>.<domain>.
	Domain string `pulumi:"domain"`
	// DHCPStart and DHCPEnd bound the dynamic DHCP range, inside the
	// internal network.
	DHCPStart string `pulumi:"dhcpStart"`
	DHCPEnd   string `pulumi:"dhcpEnd"`
	// DHCPLeaseTime of the dynamic range, in dnsmasq's syntax; default 12h.
	DHCPLeaseTime string `pulumi:"dhcpLeaseTime,optional"`
	// AdminCIDRs (external side) may reach the Talos API of every host and
	// the Kubernetes API of every control plane and of KubernetesAPIAddresses.
	AdminCIDRs []string `pulumi:"adminCidrs,optional"`
	// TalosAPICIDRs, when set, replace AdminCIDRs for the Talos API (50000):
	// a node in maintenance mode accepts an unauthenticated configuration
	// there, so narrow it to the machine that runs Pulumi (a /32).
	TalosAPICIDRs []string `pulumi:"talosApiCidrs,optional"`
	// KubernetesAPIAddresses serve the Kubernetes API without being a
	// host's own address: the control planes' shared VIP.
	KubernetesAPIAddresses []string `pulumi:"kubernetesApiAddresses,optional"`
	// Hosts are the machines on the internal network. Each gets a command
	// of its own that installs its DNS name, DHCP reservation and firewall
	// entries, and removes them when the host goes, so adding or removing a
	// host creates or deletes one command and leaves the main configuration
	// alone.
	Hosts []RouterHostArgs `pulumi:"hosts,optional"`
	// Forwards publish internal ports on the router's external address.
	Forwards []RouterForwardArgs `pulumi:"forwards,optional"`
	// Pair makes this router one of an HA pair on two Proxmox nodes:
	// InternalAddress and ExternalAddress are then the addresses the two
	// share (keepalived holds them on the master), and the container gets
	// the pair's own addresses. Unset: a single router.
	Pair *RouterPairArgs `pulumi:"pair,optional"`

	// SSH is how the configuration reaches the container: SSH to its Proxmox
	// host, then pct exec.
	SSH RouterSSH `pulumi:"ssh"`
	// ContainerAfter are resources the container waits for, before it is
	// created, updated (a restart) or replaced: a pair's second router
	// waits for the first's Serving, so the two never restart together.
	// Go programs only (not in the package schema).
	ContainerAfter []pulumi.Resource
}

// RouterHostArgs is one machine on the internal network.
type RouterHostArgs struct {
	// Name is the short hostname, a DNS label; it also names the host's
	// command.
	Name string `pulumi:"name"`
	// Address is the host's IPv4 address on the internal network.
	Address string `pulumi:"address"`
	// MAC fixes the host's DHCP lease to Address; without it the host
	// gets a DNS name and firewall entries only.
	MAC string `pulumi:"mac,optional"`
	// ControlPlane hosts serve the Kubernetes API, which AdminCIDRs may reach.
	ControlPlane bool `pulumi:"controlPlane,optional"`
}

// RouterForwardArgs publishes Target:TargetPort on the router's external
// address, port Port.
type RouterForwardArgs struct {
	// Name labels the firewall rules.
	Name string `pulumi:"name"`
	// Protocol is tcp (the default) or udp.
	Protocol string `pulumi:"protocol,optional"`
	// Port is the port on the router's external address.
	Port int `pulumi:"port"`
	// Target is an internal address.
	Target string `pulumi:"target"`
	// TargetPort defaults to Port.
	TargetPort int `pulumi:"targetPort,optional"`
	// AllowFrom limits the sources (CIDRs); empty means anyone on the
	// external side.
	AllowFrom []string `pulumi:"allowFrom,optional"`
}

// RouterPairArgs is one router of an HA pair: its place in the pair, its
// own addresses and its peer's, and the VRRP ID they share.
type RouterPairArgs struct {
	// Index is 0 for the pair's first router and 1 for its second: it picks
	// the half of the DHCP range this router serves and its VRRP priority.
	Index int `pulumi:"index"`
	// OwnInternalAddress is this router's own internal address (no prefix),
	// where VRRP and the connection-table sync run from.
	OwnInternalAddress string `pulumi:"ownInternalAddress"`
	// PeerInternalAddress is the other router's own internal address.
	PeerInternalAddress string `pulumi:"peerInternalAddress"`
	// OwnExternalAddress is this router's own external address (no prefix).
	OwnExternalAddress string `pulumi:"ownExternalAddress"`
	// PeerExternalAddress is the other router's own external address.
	PeerExternalAddress string `pulumi:"peerExternalAddress"`
	// VRID is the VRRP virtual router ID of the pair, 1 to 255.
	VRID int `pulumi:"vrid"`
}

// RouterLXC routes between the external network and the internal bridge:
// NAT, a firewall, DNS and DHCP, in a Debian LXC container.
type RouterLXC struct {
	pulumi.ResourceState

	// VMID is the container's ID on the Proxmox cluster.
	VMID pulumi.IntOutput `pulumi:"vmId"`
	// ExternalAddress is the router's external address as given ("dhcp" or a
	// CIDR).
	ExternalAddress pulumi.StringOutput `pulumi:"externalAddress"`
	// InternalAddress is the router's internal address as given, as CIDR: the
	// internal network's gateway and DNS server.
	InternalAddress pulumi.StringOutput `pulumi:"internalAddress"`
	// ConfigDigest identifies the applied configuration; it changes exactly
	// when a rendered file changes.
	ConfigDigest pulumi.StringOutput `pulumi:"configDigest"`

	// Configured is the command that applied the configuration: depend on it
	// for anything that needs the router routing.
	Configured *remote.Command
	// Serving is, for a router of a pair, the command that waits after each
	// change of the container until keepalived and dnsmasq run in it again:
	// the pair's second router waits for the first's (ContainerAfter).
	Serving *remote.Command
	// Handover is, for a router of a pair, the command whose deletion hands
	// the shared addresses to the peer; nil for a single router.
	Handover *remote.Command
	// HostEntries are the hosts' commands, by host name.
	HostEntries map[string]*remote.Command
}

// NewRouterLXCArgs are the Args of a router spec; the caller adds the
// Pulumi values (InternalBridge, SSH.PrivateKey).
func NewRouterLXCArgs(s spec.Router) *RouterLXCArgs {
	a := &RouterLXCArgs{
		ProxmoxNode: s.ProxmoxNode, VMID: s.VMID, Hostname: s.Hostname,
		Cores: s.Cores, MemoryMiB: s.MemoryMiB, DiskGiB: s.DiskGiB,
		Datastore: s.Datastore, TemplateDatastore: s.TemplateDatastore,
		TemplateURL: s.TemplateURL, TemplateChecksum: s.TemplateChecksum,
		ExternalBridge: s.ExternalBridge, ExternalVLAN: s.ExternalVLAN,
		ExternalAddress: s.ExternalAddress, ExternalGateway: s.ExternalGateway,
		InternalMTU: s.InternalMTU, InternalAddress: s.InternalAddress, UpstreamDNS: s.UpstreamDNS,
		Domain: s.Domain, DHCPStart: s.DHCPStart, DHCPEnd: s.DHCPEnd, DHCPLeaseTime: s.DHCPLeaseTime,
		AdminCIDRs: s.AdminCIDRs, TalosAPICIDRs: s.TalosAPICIDRs, KubernetesAPIAddresses: s.KubernetesAPIAddresses,
		SSH: routerSSH(s.SSH),
	}
	for _, h := range s.Hosts {
		a.Hosts = append(a.Hosts, RouterHostArgs(h))
	}
	for _, f := range s.Forwards {
		a.Forwards = append(a.Forwards, RouterForwardArgs(f))
	}
	if s.Pair != nil {
		p := RouterPairArgs(*s.Pair)
		a.Pair = &p
	}
	return a
}

// Spec is the router these Args describe, without their Pulumi values.
func (a *RouterLXCArgs) Spec() spec.Router {
	s := spec.Router{
		ProxmoxNode: a.ProxmoxNode, VMID: a.VMID, Hostname: a.Hostname,
		Cores: a.Cores, MemoryMiB: a.MemoryMiB, DiskGiB: a.DiskGiB,
		Datastore: a.Datastore, TemplateDatastore: a.TemplateDatastore,
		TemplateURL: a.TemplateURL, TemplateChecksum: a.TemplateChecksum,
		ExternalBridge: a.ExternalBridge, ExternalVLAN: a.ExternalVLAN,
		ExternalAddress: a.ExternalAddress, ExternalGateway: a.ExternalGateway,
		InternalMTU: a.InternalMTU, InternalAddress: a.InternalAddress, UpstreamDNS: a.UpstreamDNS,
		Domain: a.Domain, DHCPStart: a.DHCPStart, DHCPEnd: a.DHCPEnd, DHCPLeaseTime: a.DHCPLeaseTime,
		AdminCIDRs: a.AdminCIDRs, TalosAPICIDRs: a.TalosAPICIDRs, KubernetesAPIAddresses: a.KubernetesAPIAddresses,
		SSH: a.SSH.spec(),
	}
	for _, h := range a.Hosts {
		s.Hosts = append(s.Hosts, spec.RouterHost(h))
	}
	for _, f := range a.Forwards {
		s.Forwards = append(s.Forwards, spec.RouterForward(f))
	}
	if a.Pair != nil {
		p := spec.RouterPair(*a.Pair)
		s.Pair = &p
	}
	return s
}

// routerSSH is the connection of a spec, without a private key.
func routerSSH(s spec.SSH) RouterSSH {
	return RouterSSH{Host: s.Host, User: s.User, HostKey: s.HostKey, InsecureIgnoreHostKey: s.InsecureIgnoreHostKey}
}

// spec is the connection without its private key.
func (s RouterSSH) spec() spec.SSH {
	return spec.SSH{Host: s.Host, User: s.User, HostKey: s.HostKey, InsecureIgnoreHostKey: s.InsecureIgnoreHostKey}
}

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

// installPairPackages is installRouterPackages for a router of a pair:
// keepalived holds the shared addresses, conntrackd syncs the connection
// table, ping lets the handover tell a peer being replaced from one that
// is gone.
const installPairPackages = `set -eu
for i in $(seq 1 60); do getent hosts deb.debian.org >/dev/null && break; sleep 2; done
if ! command -v nft >/dev/null || ! command -v dnsmasq >/dev/null || ! command -v keepalived >/dev/null || ! command -v conntrackd >/dev/null || ! command -v ping >/dev/null; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nftables dnsmasq keepalived conntrackd iputils-ping
fi
systemctl enable nftables dnsmasq keepalived conntrackd >/dev/null 2>&1 || true
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
	conn, err := args.SSH.connection(ctx, "SSH")
	if err != nil {
		return nil, fmt.Errorf("RouterLXC %s: %w", name, err)
	}
	// Everything is parsed and rendered before anything is registered: a
	// wrong address fails the program, not the container half-way.
	s := args.Spec()
	filesSpec, err := s.Files()
	if err != nil {
		return nil, fmt.Errorf("RouterLXC %s: %w", name, err)
	}
	comp := &RouterLXC{HostEntries: map[string]*remote.Command{}}
	if err := ctx.RegisterComponentResource(RouterLXCType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)
	template, err := routerTemplate(ctx, name, s, parent)
	if err != nil {
		return nil, err
	}
	container, err := routerContainer(ctx, name, s, args.InternalBridge, template, parent,
		pulumi.DependsOn(args.ContainerAfter))
	if err != nil {
		return nil, err
	}
	files := routerfiles.Render(filesSpec)
	if err := comp.configure(ctx, name, container.VmId, conn, files, filesSpec, parent); err != nil {
		return nil, err
	}
	if filesSpec.Pair != nil {
		if err := comp.serving(ctx, name, container, conn, parent); err != nil {
			return nil, err
		}
	}
	comp.VMID = container.VmId
	comp.ExternalAddress = pulumi.String(s.ExternalAddress).ToStringOutput()
	comp.InternalAddress = pulumi.String(s.InternalAddress).ToStringOutput()
	comp.ConfigDigest = comp.Configured.Create.ApplyT(func(*string) string { return files.Digest() }).(pulumi.StringOutput)
	return comp, ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"vmId":            comp.VMID,
		"externalAddress": comp.ExternalAddress,
		"internalAddress": comp.InternalAddress,
		"configDigest":    comp.ConfigDigest,
	})
}

// routerContainer is the unprivileged Debian container with its two NICs:
// the external one (DHCP or a static address) and the internal one on the
// internal bridge.
func routerContainer(ctx *pulumi.Context, name string, s spec.Router, internalBridge pulumi.StringInput,
	template *download.File, parent, after pulumi.ResourceOption) (*ct.Container, error) {
	// In a pair these are the router's own addresses; keepalived adds the
	// shared ones on the master.
	externalAddress, internalAddress := s.ContainerAddresses()
	extIP := &ct.ContainerInitializationIpConfigIpv4Args{Address: pulumi.String(externalAddress)}
	if s.ExternalAddress != spec.ExternalAddressDHCP && s.ExternalGateway != "" {
		extIP.Gateway = pulumi.String(s.ExternalGateway)
	}
	extNIC := &ct.ContainerNetworkInterfaceArgs{
		Name:     pulumi.String(routerfiles.ExternalInterface),
		Bridge:   pulumi.String(s.ExternalBridge),
		Firewall: pulumi.Bool(false),
	}
	if s.ExternalVLAN > 0 {
		extNIC.VlanId = pulumi.Int(s.ExternalVLAN)
	}
	intNIC := &ct.ContainerNetworkInterfaceArgs{
		Name:     pulumi.String(routerfiles.InternalInterface),
		Bridge:   internalBridge,
		Firewall: pulumi.Bool(false),
	}
	// Only a non-default MTU is set, so stacks on 1500 see no change.
	if s.InternalMTU != 0 && s.InternalMTU != 1500 {
		intNIC.Mtu = pulumi.Int(s.InternalMTU)
	}
	return ct.NewContainer(ctx, name+"-ct", &ct.ContainerArgs{
		NodeName:    pulumi.String(s.ProxmoxNode),
		VmId:        pulumi.Int(s.VMID),
		Description: pulumi.String("SDA router: NAT, firewall, DNS and DHCP for the internal network"),
		Tags:        pulumi.StringArray{pulumi.String("sda"), pulumi.String("router")},
		// Unprivileged: nftables and ip_forward act on the container's own
		// network namespace, which its root owns.
		Unprivileged: pulumi.Bool(true),
		Features:     &ct.ContainerFeaturesArgs{Nesting: pulumi.Bool(true)},
		Cpu:          &ct.ContainerCpuArgs{Cores: pulumi.Int(s.Cores)},
		Memory:       &ct.ContainerMemoryArgs{Dedicated: pulumi.Int(s.MemoryMiB), Swap: pulumi.Int(0)},
		Disk:         &ct.ContainerDiskArgs{DatastoreId: pulumi.String(s.Datastore), Size: pulumi.Int(s.DiskGiB)},
		OperatingSystem: &ct.ContainerOperatingSystemArgs{
			TemplateFileId: template.ID(),
			Type:           pulumi.String("debian"),
		},
		NetworkInterfaces: ct.ContainerNetworkInterfaceArray{extNIC, intNIC},
		Initialization: &ct.ContainerInitializationArgs{
			Hostname: pulumi.String(s.Hostname),
			IpConfigs: ct.ContainerInitializationIpConfigArray{
				&ct.ContainerInitializationIpConfigArgs{Ipv4: extIP},
				&ct.ContainerInitializationIpConfigArgs{Ipv4: &ct.ContainerInitializationIpConfigIpv4Args{
					Address: pulumi.String(internalAddress),
				}},
			},
			Dns: &ct.ContainerInitializationDnsArgs{Servers: pulumi.ToStringArray(s.UpstreamDNS)},
		},
		Started:     pulumi.Bool(true),
		StartOnBoot: pulumi.Bool(true),
	}, parent, after,
		// The VM ID is fixed, and Proxmox refuses a second guest with it: a
		// replacement (a new disk size, template or datastore: ForceNew in
		// bpg v0.69.1 container.go) must delete the old container first.
		// A single router leaves the internal network without its gateway
		// until the new one is configured (`sda plan` says so); a pair's
		// router hands the shared addresses to its peer first (Handover).
		pulumi.DeleteBeforeReplace(true))
}

// configure installs the packages, applies the rendered files and adds
// each host's entries, all with `pct exec` over SSH to the Proxmox host.
// The container's VM ID comes from the container resource, so every
// command waits for it to exist and runs again if it is ever replaced.
func (comp *RouterLXC) configure(ctx *pulumi.Context, name string, vmid pulumi.IntOutput, conn remote.ConnectionArgs,
	files routerfiles.Files, filesSpec routerfiles.Spec, parent pulumi.ResourceOption) error {
	inContainer := func(script string) pulumi.StringOutput {
		return vmid.ApplyT(func(id int) string { return pctScript(id, script) }).(pulumi.StringOutput)
	}
	// When the container is replaced (deleted first: same VM ID), every
	// command that acts in it must go with it and run again in the new one.
	// Pulumi finds the commands to delete first by asking their provider
	// whether the container's unknown new values replace them; to
	// pulumi-command v1.1.0 a changed script is an update (only triggers
	// replace), and after the replacement the script, which names the
	// same VM ID, is unchanged, so nothing would run in the new container.
	// Replacing on a changed script makes the commands dependents of the
	// replacement (pkg v3.274.1 step_generator.go applies the resource's
	// replaceOnChanges in calculateDependentReplacements). It is an option,
	// not an input: a deployed stack's commands stay as they are.
	rerun := pulumi.ReplaceOnChanges([]string{"create"})
	packages := installRouterPackages
	if filesSpec.Pair != nil {
		packages = installPairPackages
	}
	install, err := remote.NewCommand(ctx, name+"-packages", &remote.CommandArgs{
		Connection: conn,
		Create:     inContainer(packages),
	}, parent, rerun)
	if err != nil {
		return err
	}

	// The configuration script carries the rendered files, so its text
	// changes exactly when a file does: then the command is replaced and its
	// Create runs the new script in the same container (it has no Delete);
	// unchanged files change nothing.
	// The script itself writes only what differs and restarts dnsmasq only
	// when its configuration changed, so leases survive a re-apply.
	// The files list no node, so adding or removing one leaves this command
	// as it is.
	layout := routerfiles.DebianLayout()
	script := inContainer(routerfiles.ApplyScript(files, layout))
	configured, err := remote.NewCommand(ctx, name+"-config", &remote.CommandArgs{
		Connection: conn,
		Create:     script,
		Update:     script,
	}, parent, rerun, pulumi.DependsOn([]pulumi.Resource{install}))
	if err != nil {
		return err
	}
	comp.Configured = configured

	// One command per host, named after it: a new node creates its command,
	// a removed node deletes its command, whose Delete removes its entries.
	// Each runs after the main configuration, which creates the directories
	// and the firewall sets the host's files go into. A changed host (a new
	// MAC, say) replaces its command: the old entries are removed, then the
	// new ones installed.
	if filesSpec.Pair != nil {
		if err := comp.handover(ctx, name, inContainer, conn, filesSpec, parent, rerun); err != nil {
			return err
		}
	}
	for _, h := range filesSpec.Hosts {
		cmd, err := remote.NewCommand(ctx, name+"-host-"+h.Name, &remote.CommandArgs{
			Connection: conn,
			Create:     inContainer(routerfiles.HostScript(h, layout)),
			Delete:     inContainer(routerfiles.RemoveHostScript(h, layout)),
			// Delete first: the old command's Delete removes the same files
			// the new one's Create installs.
		}, parent, rerun, pulumi.DeleteBeforeReplace(true), pulumi.DependsOn([]pulumi.Resource{configured}))
		if err != nil {
			return err
		}
		comp.HostEntries[h.Name] = cmd
	}
	return nil
}

// handover registers the command whose deletion hands the pair's shared
// addresses to the peer before this router's container goes (replaced or
// deleted): routerfiles.HandoverScript. It depends on the configuration,
// so it is created once the router serves, and, depending on the
// container, it is deleted (its handover run) before the container is.
// Its Create only says it is armed.
func (comp *RouterLXC) handover(ctx *pulumi.Context, name string, inContainer func(string) pulumi.StringOutput,
	conn remote.ConnectionArgs, s routerfiles.Spec, parent, rerun pulumi.ResourceOption) error {
	script := routerfiles.HandoverScript(s, routerfiles.DebianLayout())
	cmd, err := remote.NewCommand(ctx, name+"-handover", &remote.CommandArgs{
		Connection: conn,
		Create:     inContainer("echo 'handover armed'"),
		Delete:     inContainer(script),
	}, parent, rerun, pulumi.DeleteBeforeReplace(true), pulumi.DependsOn([]pulumi.Resource{comp.Configured}))
	comp.Handover = cmd
	return err
}

// waitServing waits, in the container, until keepalived and dnsmasq run.
const waitServing = `for i in $(seq 1 150); do
  if systemctl is-active --quiet keepalived.service && systemctl is-active --quiet dnsmasq.service; then echo serving; exit 0; fi
  sleep 2
done
echo "keepalived or dnsmasq did not start within 300 s" >&2; exit 1
`

// serving registers the command that runs after every change of the
// container (its triggers are the container's size and ID) and returns
// once the router serves again.
func (comp *RouterLXC) serving(ctx *pulumi.Context, name string, container *ct.Container,
	conn remote.ConnectionArgs, parent pulumi.ResourceOption) error {
	script := container.VmId.ApplyT(func(id int) string { return pctScript(id, waitServing) }).(pulumi.StringOutput)
	cmd, err := remote.NewCommand(ctx, name+"-serving", &remote.CommandArgs{
		Connection: conn,
		Create:     script,
		Triggers:   pulumi.Array{container.ID(), container.Cpu, container.Memory, container.Disk},
	}, parent, pulumi.DependsOn([]pulumi.Resource{comp.Configured}))
	comp.Serving = cmd
	return err
}

// routerTemplate downloads the LXC template to the template datastore,
// verified by Proxmox against the template's checksum.
//
// The file name is the component's own, so a template already on the
// datastore (put there by hand or by another stack) is neither adopted nor
// deleted. The resource is named after the file: a new template is a new
// resource (and a new router, whose template it is), while a new URL or
// checksum for the same file (http becoming https, a checksum added) is
// ignored, because Proxmox would replace the file in place, which it
// refuses for a name that exists, and replace the router with it. The
// alias keeps the name routers created before this rule had.
func routerTemplate(ctx *pulumi.Context, name string, s spec.Router, parent pulumi.ResourceOption) (*download.File, error) {
	algorithm, _ := grammar.ChecksumAlgorithm(s.TemplateChecksum)
	fileName := name + "-" + path.Base(s.TemplateURL)
	return download.NewFile(ctx, name+"-template-"+path.Base(s.TemplateURL), &download.FileArgs{
		NodeName:    pulumi.String(s.ProxmoxNode),
		DatastoreId: pulumi.String(s.TemplateDatastore),
		ContentType: pulumi.String("vztmpl"),
		Url:         pulumi.String(s.TemplateURL),
		FileName:    pulumi.String(fileName),
		Overwrite:   pulumi.Bool(false),
		// A file of this name is this router's own: one a killed run
		// downloaded outside the state is replaced, not refused.
		OverwriteUnmanaged: pulumi.Bool(true),
		Checksum:           pulumi.String(s.TemplateChecksum),
		ChecksumAlgorithm:  pulumi.String(algorithm),
	}, parent,
		pulumi.IgnoreChanges([]string{"url", "checksum", "checksumAlgorithm"}),
		pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(name + "-template")}}))
}
