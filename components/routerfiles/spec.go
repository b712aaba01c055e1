// Package routerfiles is the pure half of the RouterLXC component: from a
// stack's configuration and address plan it renders the router's nftables
// ruleset, dnsmasq configuration and sysctl file, and the POSIX shell script
// that installs and applies them. The component runs that script inside the
// container (`pct exec` over SSH to the Proxmox host); the network-namespace
// test in tests/routerns runs the very same script against real nft and
// dnsmasq. No Pulumi SDK is imported here.
package routerfiles

import (
	"fmt"
	"net/netip"

	"github.com/sda-platform/sda/stacks/config"
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

// Host is one static name in the router's DNS; with a MAC it also gets a
// fixed DHCP reservation.
type Host struct {
	Name    string
	Address netip.Addr
	// MAC is empty for hosts that take no DHCP reservation (the router).
	MAC string
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

// Spec is everything the router's files are rendered from. FromConfig builds
// it from a stack; tests may build or adjust one directly.
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

	// Hosts are the static DNS names: every node and the router.
	Hosts []Host

	// AdminCIDRs may reach TalosAPIPort on TalosAPI and KubernetesAPIPort on
	// KubernetesAPI through the router.
	AdminCIDRs    []netip.Prefix
	TalosAPI      []netip.Addr
	KubernetesAPI []netip.Addr

	Forwards []Forward
}

// FromConfig derives the router's Spec from a resolved configuration and its
// plan (config.Resolve or config.LoadStack).
func FromConfig(c config.Config, p config.Plan) (Spec, error) {
	if !p.Internal.IsValid() || !p.RouterInternal.IsValid() || c.Network.Internal.Domain == "" {
		return Spec{}, fmt.Errorf("routerfiles: the configuration is not resolved: pass the result of config.Resolve or config.LoadStack")
	}
	s := Spec{
		ExternalInterface: ExternalInterface,
		InternalInterface: InternalInterface,
		Internal:          p.Internal,
		RouterInternal:    p.RouterInternal,
		External:          p.External,
		RouterExternal:    p.RouterExternal,
		Domain:            c.Network.Internal.Domain,
		DHCPStart:         p.DHCPStart,
		DHCPEnd:           p.DHCPEnd,
		LeaseTime:         DefaultLeaseTime,
	}
	for i, d := range c.Network.DNSServers {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return Spec{}, fmt.Errorf("routerfiles: sda:network.dnsServers[%d]: %w", i, err)
		}
		s.UpstreamDNS = append(s.UpstreamDNS, a)
	}
	s.Hosts = append(s.Hosts, Host{Name: c.Router.Hostname, Address: p.RouterInternal})
	for _, m := range p.Machines() {
		s.Hosts = append(s.Hosts, Host{Name: m.Hostname, Address: m.Address, MAC: m.MAC})
		s.TalosAPI = append(s.TalosAPI, m.Address)
	}
	if p.VIP.IsValid() {
		s.KubernetesAPI = append(s.KubernetesAPI, p.VIP)
	}
	for _, m := range p.ControlPlanes {
		s.KubernetesAPI = append(s.KubernetesAPI, m.Address)
	}
	var err error
	if s.AdminCIDRs, err = parsePrefixes(c.Network.AdminCIDRs, "sda:network.adminCidrs"); err != nil {
		return Spec{}, err
	}
	for i, f := range c.Network.PortForwards {
		key := fmt.Sprintf("sda:network.portForwards[%d]", i)
		target, err := config.ForwardTarget(p, f.Target)
		if err != nil {
			return Spec{}, fmt.Errorf("routerfiles: %s.target %q: %w", key, f.Target, err)
		}
		allow, err := parsePrefixes(f.AllowFrom, key+".allowFrom")
		if err != nil {
			return Spec{}, err
		}
		s.Forwards = append(s.Forwards, Forward{
			Name: f.Name, Protocol: f.Protocol, Port: f.Port,
			Target: target, TargetPort: f.TargetPort, AllowFrom: allow,
		})
	}
	return s, nil
}

func parsePrefixes(in []string, key string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("routerfiles: %s[%d]: %w", key, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}
