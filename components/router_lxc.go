package components

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"path"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/ct"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components/routerfiles"
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
	ProxmoxNode string `pulumi:"proxmoxNode"`
	VMID        int    `pulumi:"vmId"`
	// Hostname of the container; it is also the router's own DNS name on
	// the internal network.
	Hostname  string `pulumi:"hostname"`
	Cores     int    `pulumi:"cores"`
	MemoryMiB int    `pulumi:"memoryMiB"`
	DiskGiB   int    `pulumi:"diskGiB"`
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

	ExternalBridge string `pulumi:"externalBridge"`
	// ExternalVLAN tags the external NIC; 0 leaves it untagged.
	ExternalVLAN int `pulumi:"externalVlan,optional"`
	// ExternalAddress is "dhcp" or a CIDR such as 192.168.1.50/24.
	ExternalAddress string `pulumi:"externalAddress"`
	// ExternalGateway is the default gateway of a static ExternalAddress.
	ExternalGateway string             `pulumi:"externalGateway,optional"`
	InternalBridge  pulumi.StringInput `pulumi:"internalBridge"`
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

	SSH RouterSSH `pulumi:"ssh"`
}

// RouterHostArgs is one machine on the internal network.
type RouterHostArgs struct {
	// Name is the short hostname, a DNS label; it also names the host's
	// command.
	Name    string `pulumi:"name"`
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
	Port     int    `pulumi:"port"`
	// Target is an internal address.
	Target string `pulumi:"target"`
	// TargetPort defaults to Port.
	TargetPort int `pulumi:"targetPort,optional"`
	// AllowFrom limits the sources (CIDRs); empty means anyone on the
	// external side.
	AllowFrom []string `pulumi:"allowFrom,optional"`
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
	Configured *remote.Command
	// HostEntries are the hosts' commands, by host name.
	HostEntries map[string]*remote.Command
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
	conn, err := args.SSH.connection(ctx, "SSH")
	if err != nil {
		return nil, fmt.Errorf("RouterLXC %s: %w", name, err)
	}
	// Everything is parsed and rendered before anything is registered: a
	// wrong address fails the program, not the container half-way.
	layout := routerfiles.DebianLayout()
	spec, err := routerSpec(args, layout)
	if err != nil {
		return nil, fmt.Errorf("RouterLXC %s: %w", name, err)
	}
	files := routerfiles.Render(spec)
	comp := &RouterLXC{HostEntries: map[string]*remote.Command{}}
	if err := ctx.RegisterComponentResource(RouterLXCType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)

	template, err := routerTemplate(ctx, name, args, parent)
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
	applyScript := routerfiles.ApplyScript(files, layout)
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
	for _, h := range spec.Hosts {
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
	comp.ConfigDigest = configured.Create.ApplyT(func(*string) string { return files.Digest() }).(pulumi.StringOutput)
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

// routerTemplate downloads the LXC template to the template datastore,
// verified by Proxmox against args.TemplateChecksum.
//
// The file name is the component's own, so a template already on the
// datastore (put there by hand or by another stack) is neither adopted nor
// deleted. The resource is named after the file: a new template is a new
// resource (and a new router, whose template it is), while a new URL or
// checksum for the same file (http becoming https, a checksum added) is
// ignored, because Proxmox would replace the file in place, which it
// refuses for a name that exists, and replace the router with it. The
// alias keeps the name routers created before this rule had.
func routerTemplate(ctx *pulumi.Context, name string, args *RouterLXCArgs, parent pulumi.ResourceOption) (*download.File, error) {
	algorithm, _ := grammar.ChecksumAlgorithm(args.TemplateChecksum)
	fileName := name + "-" + path.Base(args.TemplateURL)
	return download.NewFile(ctx, name+"-template-"+path.Base(args.TemplateURL), &download.FileArgs{
		NodeName:    pulumi.String(args.ProxmoxNode),
		DatastoreId: pulumi.String(args.TemplateDatastore),
		ContentType: pulumi.String("vztmpl"),
		Url:         pulumi.String(args.TemplateURL),
		FileName:    pulumi.String(fileName),
		Overwrite:   pulumi.Bool(false),
		// A file of this name is this router's own: one a killed run
		// downloaded outside the state is replaced, not refused.
		OverwriteUnmanaged: pulumi.Bool(true),
		Checksum:           pulumi.String(args.TemplateChecksum),
		ChecksumAlgorithm:  pulumi.String(algorithm),
	}, parent,
		pulumi.IgnoreChanges([]string{"url", "checksum", "checksumAlgorithm"}),
		pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(name + "-template")}}))
}

// routerSpec parses args into what routerfiles renders. Every error names
// the field, the value and what to write instead.
func routerSpec(args *RouterLXCArgs, layout routerfiles.Layout) (routerfiles.Spec, error) {
	s := routerfiles.Spec{
		ExternalInterface: routerExternalNIC,
		InternalInterface: routerInternalNIC,
		Domain:            args.Domain,
		LeaseTime:         args.DHCPLeaseTime,
		RouterName:        args.Hostname,
		HostsDir:          layout.HostsDir,
		DHCPHostsDir:      layout.DHCPHostsDir,
		NftablesHostsDir:  layout.NftablesHostsDir,
	}
	if s.LeaseTime == "" {
		s.LeaseTime = routerfiles.DefaultLeaseTime
	}
	// Names reach dnsmasq's configuration, nftables comments and shell
	// commands: they must be DNS names (the same allow-list the stack
	// configuration uses), never text that could start a new line.
	if !grammar.Domain(args.Domain) {
		return s, fmt.Errorf("Domain = %q is not a DNS domain: write lowercase labels joined by dots, such as lab.internal", args.Domain)
	}
	if !grammar.DNSLabel(args.Hostname) {
		return s, fmt.Errorf("Hostname = %q is not a DNS label: write lowercase letters, digits and inner hyphens, such as router", args.Hostname)
	}
	if !grammar.TemplateURL(args.TemplateURL) {
		return s, fmt.Errorf("TemplateURL = %q is not the https:// URL of an LXC template: write one such as https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst (plain http lets anyone on the path replace the router's system)", args.TemplateURL)
	}
	if _, ok := grammar.ChecksumAlgorithm(args.TemplateChecksum); !ok {
		return s, fmt.Errorf("TemplateChecksum = %q is not a SHA-256, SHA-384 or SHA-512 in hex: give the template's digest (pveam available on a Proxmox node lists it, or the publisher's SHA512SUMS); MD5 and SHA-1 are not accepted", args.TemplateChecksum)
	}
	if !grammar.LeaseTime(s.LeaseTime) {
		return s, fmt.Errorf("DHCPLeaseTime = %q is not a dnsmasq lease time: write seconds, a number with s, m, h, d or w (such as 12h), or infinite", args.DHCPLeaseTime)
	}
	in, err := parsePrefix("InternalAddress", args.InternalAddress, "the router's internal address with its prefix length, such as 10.10.0.1/24")
	if err != nil {
		return s, err
	}
	s.Internal, s.RouterInternal = in.Masked(), in.Addr()
	if args.ExternalAddress != "dhcp" {
		ext, err := parsePrefix("ExternalAddress", args.ExternalAddress, `"dhcp" or the router's external address with its prefix length, such as 192.168.1.50/24`)
		if err != nil {
			return s, err
		}
		s.External, s.RouterExternal = ext.Masked(), ext.Addr()
	}
	if s.UpstreamDNS, err = parseAddrs("UpstreamDNS", args.UpstreamDNS, "such as 1.1.1.1"); err != nil {
		return s, err
	}
	if s.DHCPStart, err = parseInternal("DHCPStart", args.DHCPStart, s.Internal); err != nil {
		return s, err
	}
	if s.DHCPEnd, err = parseInternal("DHCPEnd", args.DHCPEnd, s.Internal); err != nil {
		return s, err
	}
	if s.DHCPEnd.Less(s.DHCPStart) {
		return s, fmt.Errorf("DHCPEnd %s is before DHCPStart %s: swap them", s.DHCPEnd, s.DHCPStart)
	}
	for i, c := range args.AdminCIDRs {
		p, err := parsePrefix(fmt.Sprintf("AdminCIDRs[%d]", i), c, "one such as 192.168.1.0/24")
		if err != nil {
			return s, err
		}
		s.AdminCIDRs = append(s.AdminCIDRs, p)
	}
	for i, c := range args.TalosAPICIDRs {
		p, err := parsePrefix(fmt.Sprintf("TalosAPICIDRs[%d]", i), c, "the deployer's address, such as 192.168.1.5/32")
		if err != nil {
			return s, err
		}
		s.TalosAPICIDRs = append(s.TalosAPICIDRs, p)
	}
	if s.KubernetesAPI, err = parseAddrs("KubernetesAPIAddresses", args.KubernetesAPIAddresses, "the VIP, such as 10.10.0.10"); err != nil {
		return s, err
	}
	seen := map[string]bool{}
	for i, h := range args.Hosts {
		field := fmt.Sprintf("Hosts[%d]", i)
		if !grammar.DNSLabel(h.Name) {
			return s, fmt.Errorf("%s.Name = %q is not a DNS label: write the host's short name in lowercase letters, digits and inner hyphens, such as lab-cp1", field, h.Name)
		}
		if seen[h.Name] {
			return s, fmt.Errorf("host %q is listed twice (%s): give every host its own name", h.Name, field)
		}
		seen[h.Name] = true
		a, err := parseInternal(field+".Address", h.Address, s.Internal)
		if err != nil {
			return s, err
		}
		if h.MAC != "" {
			if _, err := net.ParseMAC(h.MAC); err != nil {
				return s, fmt.Errorf("%s.MAC = %q is not a MAC address: write it like 02:00:00:00:00:01, or leave it empty for no DHCP reservation", field, h.MAC)
			}
		}
		s.Hosts = append(s.Hosts, routerfiles.Host{Name: h.Name, Domain: s.Domain, Address: a, MAC: h.MAC, ControlPlane: h.ControlPlane})
	}
	for i, f := range args.Forwards {
		field := fmt.Sprintf("Forwards[%d]", i)
		fw := routerfiles.Forward{Name: f.Name, Protocol: f.Protocol, Port: f.Port, TargetPort: f.TargetPort}
		if fw.Protocol == "" {
			fw.Protocol = "tcp"
		}
		if fw.TargetPort == 0 {
			fw.TargetPort = fw.Port
		}
		switch {
		case !grammar.DNSLabel(f.Name):
			return s, fmt.Errorf("%s.Name = %q is not a DNS label: it labels the forward's firewall rules; write lowercase letters, digits and inner hyphens, such as https", field, f.Name)
		case fw.Protocol != "tcp" && fw.Protocol != "udp":
			return s, fmt.Errorf("%s.Protocol = %q: use tcp or udp", field, f.Protocol)
		case fw.Port < 1 || fw.Port > 65535:
			return s, fmt.Errorf("%s.Port = %d: use a port from 1 to 65535", field, f.Port)
		case fw.TargetPort < 1 || fw.TargetPort > 65535:
			return s, fmt.Errorf("%s.TargetPort = %d: use a port from 1 to 65535, or 0 for Port", field, f.TargetPort)
		}
		if fw.Target, err = parseInternal(field+".Target", f.Target, s.Internal); err != nil {
			return s, err
		}
		for j, c := range f.AllowFrom {
			p, err := parsePrefix(fmt.Sprintf("%s.AllowFrom[%d]", field, j), c, "one such as 203.0.113.0/24")
			if err != nil {
				return s, err
			}
			fw.AllowFrom = append(fw.AllowFrom, p)
		}
		s.Forwards = append(s.Forwards, fw)
	}
	return s, nil
}

func parsePrefix(field, value, fix string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(value)
	if err != nil || !p.Addr().Is4() {
		return p, fmt.Errorf("%s = %q is not an IPv4 CIDR: write %s", field, value, fix)
	}
	return p, nil
}

func parseAddrs(field string, values []string, fix string) ([]netip.Addr, error) {
	var out []netip.Addr
	for i, v := range values {
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s[%d] = %q is not an IPv4 address: write one %s", field, i, v, fix)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseInternal parses an address that must lie in the internal network.
func parseInternal(field, value string, internal netip.Prefix) (netip.Addr, error) {
	a, err := netip.ParseAddr(value)
	if err != nil || !a.Is4() {
		return a, fmt.Errorf("%s = %q is not an IPv4 address: write one of the internal network %s, such as %s", field, value, internal, internal.Addr().Next())
	}
	if !internal.Contains(a) {
		return a, fmt.Errorf("%s = %s is outside the internal network %s (InternalAddress): use an address inside it", field, value, internal)
	}
	return a, nil
}
