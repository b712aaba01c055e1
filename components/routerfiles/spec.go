// Package routerfiles is the pure half of the RouterLXC component: from a
// Spec of the router's networks, hosts and port-forwards it renders the router's nftables
// ruleset, dnsmasq configuration and sysctl file, and the POSIX shell script
// that installs and applies them; and, for every node, its own DNS, DHCP and
// firewall entries with the scripts that add and remove them. The component
// runs those scripts inside the container (`pct exec` over SSH to the
// Proxmox host); the network-namespace test in tests/routerns runs the very
// same scripts against real nft and dnsmasq. No Pulumi SDK is imported here.
package routerfiles

import (
	"net/netip"
)

// Interface names inside the router container: Proxmox names the container's
// NICs after their net0/net1 slots, and RouterLXC puts the external bridge on
// net0 and the internal bridge on net1.
const (
	ExternalInterface = "eth0"
	InternalInterface = "eth1"
)

// Ports the admin CIDRs may reach on the internal network.
const (
	TalosAPIPort      = 50000
	KubernetesAPIPort = 6443
)

// DefaultLeaseTime is the DHCP lease time of the dynamic range.
const DefaultLeaseTime = "12h"

// The directories that hold one file per node, inside the Debian router
// container. dnsmasq watches the first two (hostsdir, dhcp-hostsdir); the
// ruleset includes the files of the third. Keeping every node's entries in
// files of its own is what lets a node be added or removed without
// rewriting (or re-running) the router's main configuration.
const (
	DefaultHostsDir         = "/etc/sda/hosts.d"
	DefaultDHCPHostsDir     = "/etc/sda/dhcp-hosts.d"
	DefaultNftablesHostsDir = "/etc/sda/nftables.d"
)

// Host is one node as the router knows it: a static DNS name, a fixed DHCP
// reservation when it has a MAC, and a member of the firewall's Talos API
// set (and Kubernetes API set, for a control plane). Each host's entries
// live in files of their own (RenderHost) that HostScript installs and
// RemoveHostScript removes.
type Host struct {
	// Name is the short hostname, a DNS label; it also names the host's files.
	Name string
	// Domain is the internal domain: Name.Domain is the fully qualified name.
	Domain  string
	Address netip.Addr
	// MAC is empty for a host that takes no DHCP reservation.
	MAC string
	// ControlPlane hosts serve the Kubernetes API, which admins may reach.
	ControlPlane bool
}

// FQDN is the host's fully qualified name.
func (h Host) FQDN() string {
	if h.Domain == "" {
		return h.Name
	}
	return h.Name + "." + h.Domain
}

// Forward publishes Target:TargetPort on the router's external address.
type Forward struct {
	Name       string
	Protocol   string // "tcp" or "udp"
	Port       int
	Target     netip.Addr
	TargetPort int
	// AllowFrom limits the sources; empty means anyone on the external side.
	AllowFrom []netip.Prefix
}

// Spec is everything the router's files are rendered from. It is built
// from the router's inputs by components/spec (Router.Files), for
// RouterLXC and for `sda render` alike; tests may build or adjust one
// directly.
type Spec struct {
	ExternalInterface string
	InternalInterface string

	// Internal is the internal network and RouterInternal the router's
	// address in it: the gateway and DNS server of every node.
	Internal       netip.Prefix
	RouterInternal netip.Addr
	// External is the external network; RouterExternal is the router's
	// static address there, invalid when it takes its address by DHCP.
	// Proxmox configures both addresses; they appear in the files only as
	// documentation, since masquerade and the DNAT rules need neither.
	External       netip.Prefix
	RouterExternal netip.Addr

	Domain string
	// UpstreamDNS are the servers the router forwards other names to, in
	// the configured order.
	UpstreamDNS []netip.Addr

	DHCPStart, DHCPEnd netip.Addr
	LeaseTime          string

	// RouterName is the router's own DNS name, at RouterInternal. It is the
	// one static name in the main dnsmasq configuration.
	RouterName string
	// Hosts are the nodes. Render leaves them out of the main files, which
	// only point at the directories below: each host's entries are rendered
	// by RenderHost and installed by HostScript, so that the main files do
	// not change when nodes are added or removed.
	Hosts []Host
	// HostsDir (dnsmasq hostsdir), DHCPHostsDir (dhcp-hostsdir) and
	// NftablesHostsDir (included by the ruleset) hold the hosts' files.
	// They must be the Layout's directories of the same name; RouterLXC and
	// DebianLayout both use the Default*Dir paths.
	HostsDir         string
	DHCPHostsDir     string
	NftablesHostsDir string

	// AdminCIDRs may reach TalosAPIPort on every host and KubernetesAPIPort
	// on every control-plane host and on KubernetesAPI.
	AdminCIDRs []netip.Prefix
	// TalosAPICIDRs, when set, replace AdminCIDRs for TalosAPIPort: a node
	// in maintenance mode (first boot) accepts an unauthenticated machine
	// configuration there, so the Talos API can be narrowed to the
	// deployer while the admins keep the Kubernetes API.
	TalosAPICIDRs []netip.Prefix
	// KubernetesAPI are Kubernetes API addresses that are not a host's own:
	// the VIP.
	KubernetesAPI []netip.Addr

	Forwards []Forward

	// Pair, when set, makes this router one of two that share
	// RouterInternal and RouterExternal as VRRP virtual addresses
	// (keepalived, unicast to the peer) and sync their connection tables
	// (conntrackd), so that either can carry the internal network. Nil is
	// a single router, whose files are exactly as before pairs existed.
	Pair *Pair

	// VRRPNotify, ConntrackdConf, ConntrackdSocket and ConntrackdLockFile
	// matter in pair mode only: the notify script's path (keepalived.conf
	// runs it), conntrackd.conf's path (the notify script hands it to
	// `conntrackd -C`), and conntrackd's control socket and lock file
	// (written into conntrackd.conf). The first two must be the Layout's
	// paths of the same name (CheckLayout). Empty means the Debian
	// defaults (Default*); a lab running two routers on one machine sets
	// its own, since conntrackd's socket and lock file are not per network
	// namespace.
	VRRPNotify         string
	ConntrackdConf     string
	ConntrackdSocket   string
	ConntrackdLockFile string
}

// The pair's paths in the Debian router container: conntrack-tools'
// own defaults (Debian's conntrackd.service runs conntrackd -C
// DefaultConntrackdConf), and SDA's notify script beside the hosts' files.
const (
	DefaultVRRPNotify         = "/etc/sda/vrrp-notify.sh"
	DefaultKeepalivedConf     = "/etc/keepalived/keepalived.conf"
	DefaultConntrackdConf     = "/etc/conntrackd/conntrackd.conf"
	DefaultConntrackdSocket   = "/var/run/conntrackd.ctl"
	DefaultConntrackdLockFile = "/var/lock/conntrack.lock"
)

// ConntrackdPort is the UDP port conntrackd's sync runs on between the
// pair's internal addresses (conntrack-tools' own example port).
const ConntrackdPort = 3780

// The pair's VRRP priorities, by Pair.Index. They only decide who wins an
// election both enter at once (the first start, the end of a split brain):
// with nopreempt, a router that comes back never takes the addresses from
// a live master, whatever its priority.
var pairPriorities = [2]int{150, 100}

// Pair is what one router of an HA pair knows about itself and its peer.
// RouterInternal and RouterExternal are then the virtual addresses: the
// nodes' gateway and DNS server, and the address the internal network
// leaves with and port-forwards are published on. Each router also has
// fixed addresses of its own, which Proxmox configures on its NICs.
type Pair struct {
	// Index is 0 for the pair's first router and 1 for its second; it
	// picks the router's half of the dynamic DHCP range and its VRRP
	// priority.
	Index int
	// OwnInternal and PeerInternal are the two routers' fixed internal
	// addresses (inside Internal): VRRP and conntrackd's sync run between
	// them, so they work on every internal network mode, VXLAN included.
	OwnInternal, PeerInternal netip.Addr
	// OwnExternal and PeerExternal are the two routers' fixed external
	// addresses (inside External).
	OwnExternal, PeerExternal netip.Addr
	// VRID is the VRRP virtual router ID, 1 to 255.
	VRID int
}
