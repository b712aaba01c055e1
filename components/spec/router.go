package spec

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/grammar"
)

// ExternalAddressDHCP is Router.ExternalAddress for an address by DHCP.
const ExternalAddressDHCP = "dhcp"

// Router is RouterLXC's input: the container, the internal network it
// routes, its hosts and port-forwards. Every address is a string: Files
// parses them and says which field is wrong. Field documentation is on
// components.RouterLXCArgs.
type Router struct {
	ProxmoxNode            string
	VMID                   int
	Hostname               string
	Cores                  int
	MemoryMiB              int
	DiskGiB                int
	Datastore              string
	TemplateDatastore      string
	TemplateURL            string
	TemplateChecksum       string
	ExternalBridge         string
	ExternalVLAN           int
	ExternalAddress        string
	ExternalGateway        string
	InternalMTU            int
	InternalAddress        string
	UpstreamDNS            []string
	Domain                 string
	DHCPStart              string
	DHCPEnd                string
	DHCPLeaseTime          string
	AdminCIDRs             []string
	TalosAPICIDRs          []string
	KubernetesAPIAddresses []string
	Hosts                  []RouterHost
	Forwards               []RouterForward
	Pair                   *RouterPair
	SSH                    SSH
}

// RouterPair makes the router one of an HA pair
// (components.RouterPairArgs): InternalAddress and ExternalAddress are then
// the addresses the two share, and the container has these of its own.
type RouterPair struct {
	Index               int
	OwnInternalAddress  string
	PeerInternalAddress string
	OwnExternalAddress  string
	PeerExternalAddress string
	VRID                int
}

// RouterHost is one machine on the internal network
// (components.RouterHostArgs).
type RouterHost struct {
	Name         string
	Address      string
	MAC          string
	ControlPlane bool
}

// RouterForward publishes Target:TargetPort on the router's external
// address, port Port (components.RouterForwardArgs).
type RouterForward struct {
	Name       string
	Protocol   string
	Port       int
	Target     string
	TargetPort int
	AllowFrom  []string
}

// SSH is the connection to a Proxmox host without its private key, which
// is a secret Pulumi value (components.RouterSSH).
type SSH struct {
	Host                  string
	User                  string
	HostKey               string
	InsecureIgnoreHostKey bool
}

// Files parses the router's inputs into what routerfiles renders, laid
// out as on the Debian container. Every error names the field, the value
// and what to write instead.
func (r Router) Files() (routerfiles.Spec, error) {
	layout := routerfiles.DebianLayout()
	s := routerfiles.Spec{
		ExternalInterface: routerfiles.ExternalInterface,
		InternalInterface: routerfiles.InternalInterface,
		Domain:            r.Domain,
		LeaseTime:         r.DHCPLeaseTime,
		RouterName:        r.Hostname,
		HostsDir:          layout.HostsDir,
		DHCPHostsDir:      layout.DHCPHostsDir,
		NftablesHostsDir:  layout.NftablesHostsDir,
	}
	if s.LeaseTime == "" {
		s.LeaseTime = routerfiles.DefaultLeaseTime
	}
	if err := r.checkNames(s.LeaseTime); err != nil {
		return s, err
	}
	if err := r.parseNetworks(&s); err != nil {
		return s, err
	}
	if err := r.parseAccess(&s); err != nil {
		return s, err
	}
	var err error
	if s.Hosts, err = r.parseHosts(s.Internal, s.Domain); err != nil {
		return s, err
	}
	if s.Forwards, err = r.parseForwards(s.Internal); err != nil {
		return s, err
	}
	s.Pair, err = r.parsePair(s)
	return s, err
}

// ContainerAddresses are the addresses Proxmox configures on the
// container's external and internal NICs, with their prefix lengths: the
// router's own, which in a pair are not the shared ones (keepalived adds
// those to the master).
func (r Router) ContainerAddresses() (external, internal string) {
	if r.Pair == nil {
		return r.ExternalAddress, r.InternalAddress
	}
	return withBits(r.Pair.OwnExternalAddress, r.ExternalAddress), withBits(r.Pair.OwnInternalAddress, r.InternalAddress)
}

// withBits is addr with the prefix length of cidr.
func withBits(addr, cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return addr
	}
	return fmt.Sprintf("%s/%d", addr, p.Bits())
}

// parsePair parses the pair's own addresses: inside the internal and the
// external network, none of them a shared address, the peer's differing.
func (r Router) parsePair(s routerfiles.Spec) (*routerfiles.Pair, error) {
	p := r.Pair
	if p == nil {
		return nil, nil
	}
	switch {
	case p.Index != 0 && p.Index != 1:
		return nil, fmt.Errorf("Pair.Index = %d: use 0 for the pair's first router, 1 for its second", p.Index)
	case p.VRID < 1 || p.VRID > 255:
		return nil, fmt.Errorf("Pair.VRID = %d: use a VRRP virtual router ID from 1 to 255", p.VRID)
	case !s.RouterExternal.IsValid():
		return nil, fmt.Errorf("ExternalAddress = %q: a pair shares a static external address; give one such as 192.168.1.60/24", r.ExternalAddress)
	}
	out := &routerfiles.Pair{Index: p.Index, VRID: p.VRID}
	var err error
	for _, a := range []struct {
		field, value string
		in           netip.Prefix
		shared       netip.Addr
		to           *netip.Addr
	}{
		{"Pair.OwnInternalAddress", p.OwnInternalAddress, s.Internal, s.RouterInternal, &out.OwnInternal},
		{"Pair.PeerInternalAddress", p.PeerInternalAddress, s.Internal, s.RouterInternal, &out.PeerInternal},
		{"Pair.OwnExternalAddress", p.OwnExternalAddress, s.External, s.RouterExternal, &out.OwnExternal},
		{"Pair.PeerExternalAddress", p.PeerExternalAddress, s.External, s.RouterExternal, &out.PeerExternal},
	} {
		if *a.to, err = parseInternal(a.field, a.value, a.in); err != nil {
			return nil, err
		}
		if *a.to == a.shared {
			return nil, fmt.Errorf("%s = %s is the address the pair shares: give the router an address of its own", a.field, a.value)
		}
	}
	if out.OwnInternal == out.PeerInternal || out.OwnExternal == out.PeerExternal {
		return nil, fmt.Errorf("Pair: the router and its peer have the same own address (%s, %s): give each its own", p.OwnInternalAddress, p.OwnExternalAddress)
	}
	if !s.DHCPStart.Less(s.DHCPEnd) {
		return nil, fmt.Errorf("DHCPStart %s and DHCPEnd %s: a pair splits the dynamic range in two halves, one per router, so it needs at least two addresses: widen it", s.DHCPStart, s.DHCPEnd)
	}
	// What routerfiles' renderer assumes of a pair, checked once more.
	s.Pair = out
	if err := s.CheckPair(); err != nil {
		return nil, err
	}
	return out, nil
}

// checkNames checks what reaches dnsmasq's configuration, nftables
// comments and shell commands: DNS names (the same allow-list the stack
// configuration uses), never text that could start a new line; and what
// Proxmox downloads.
func (r Router) checkNames(leaseTime string) error {
	switch {
	case !grammar.Domain(r.Domain):
		return fmt.Errorf("Domain = %q is not a DNS domain: write lowercase labels joined by dots, such as lab.internal", r.Domain)
	case !grammar.DNSLabel(r.Hostname):
		return fmt.Errorf("Hostname = %q is not a DNS label: write lowercase letters, digits and inner hyphens, such as router", r.Hostname)
	case !grammar.TemplateURL(r.TemplateURL):
		return fmt.Errorf("TemplateURL = %q is not the https:// URL of an LXC template: write one such as https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst (plain http lets anyone on the path replace the router's system)", r.TemplateURL)
	}
	if _, ok := grammar.ChecksumAlgorithm(r.TemplateChecksum); !ok {
		return fmt.Errorf("TemplateChecksum = %q is not a SHA-256, SHA-384 or SHA-512 in hex: give the template's digest (pveam available on a Proxmox node lists it, or the publisher's SHA512SUMS); MD5 and SHA-1 are not accepted", r.TemplateChecksum)
	}
	if !grammar.LeaseTime(leaseTime) {
		return fmt.Errorf("DHCPLeaseTime = %q is not a dnsmasq lease time: write seconds, a number with s, m, h, d or w (such as 12h), or infinite", r.DHCPLeaseTime)
	}
	return nil
}

// parseNetworks parses the router's own addresses, its upstream DNS
// servers and the DHCP range.
func (r Router) parseNetworks(s *routerfiles.Spec) error {
	in, err := parsePrefix("InternalAddress", r.InternalAddress, "the router's internal address with its prefix length, such as 10.10.0.1/24")
	if err != nil {
		return err
	}
	s.Internal, s.RouterInternal = in.Masked(), in.Addr()
	if r.ExternalAddress != ExternalAddressDHCP {
		ext, err := parsePrefix("ExternalAddress", r.ExternalAddress, `"dhcp" or the router's external address with its prefix length, such as 192.168.1.50/24`)
		if err != nil {
			return err
		}
		s.External, s.RouterExternal = ext.Masked(), ext.Addr()
	}
	if s.UpstreamDNS, err = parseAddrs("UpstreamDNS", r.UpstreamDNS, "such as 1.1.1.1"); err != nil {
		return err
	}
	if s.DHCPStart, err = parseInternal("DHCPStart", r.DHCPStart, s.Internal); err != nil {
		return err
	}
	if s.DHCPEnd, err = parseInternal("DHCPEnd", r.DHCPEnd, s.Internal); err != nil {
		return err
	}
	if s.DHCPEnd.Less(s.DHCPStart) {
		return fmt.Errorf("DHCPEnd %s is before DHCPStart %s: swap them", s.DHCPEnd, s.DHCPStart)
	}
	return nil
}

// parseAccess parses who may reach the management APIs, and where the
// Kubernetes API is served beyond the control planes' own addresses.
func (r Router) parseAccess(s *routerfiles.Spec) error {
	for i, c := range r.AdminCIDRs {
		p, err := parsePrefix(fmt.Sprintf("AdminCIDRs[%d]", i), c, "one such as 192.168.1.0/24")
		if err != nil {
			return err
		}
		s.AdminCIDRs = append(s.AdminCIDRs, p)
	}
	for i, c := range r.TalosAPICIDRs {
		p, err := parsePrefix(fmt.Sprintf("TalosAPICIDRs[%d]", i), c, "the deployer's address, such as 192.168.1.5/32")
		if err != nil {
			return err
		}
		s.TalosAPICIDRs = append(s.TalosAPICIDRs, p)
	}
	var err error
	s.KubernetesAPI, err = parseAddrs("KubernetesAPIAddresses", r.KubernetesAPIAddresses, "the VIP, such as 10.10.0.10")
	return err
}

// parseHosts parses the hosts: unique DNS labels, internal addresses, and
// MACs for their DHCP reservations.
func (r Router) parseHosts(internal netip.Prefix, domain string) ([]routerfiles.Host, error) {
	var out []routerfiles.Host
	seen := map[string]bool{}
	for i, h := range r.Hosts {
		field := fmt.Sprintf("Hosts[%d]", i)
		if !grammar.DNSLabel(h.Name) {
			return nil, fmt.Errorf("%s.Name = %q is not a DNS label: write the host's short name in lowercase letters, digits and inner hyphens, such as lab-cp1", field, h.Name)
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("host %q is listed twice (%s): give every host its own name", h.Name, field)
		}
		seen[h.Name] = true
		a, err := parseInternal(field+".Address", h.Address, internal)
		if err != nil {
			return nil, err
		}
		if h.MAC != "" {
			if _, err := net.ParseMAC(h.MAC); err != nil {
				return nil, fmt.Errorf("%s.MAC = %q is not a MAC address: write it like 02:00:00:00:00:01, or leave it empty for no DHCP reservation", field, h.MAC)
			}
		}
		out = append(out, routerfiles.Host{Name: h.Name, Domain: domain, Address: a, MAC: h.MAC, ControlPlane: h.ControlPlane})
	}
	return out, nil
}

// parseForwards parses the port-forwards, with their defaults: tcp, and
// the published port as the target port.
func (r Router) parseForwards(internal netip.Prefix) ([]routerfiles.Forward, error) {
	var out []routerfiles.Forward
	for i, f := range r.Forwards {
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
			return nil, fmt.Errorf("%s.Name = %q is not a DNS label: it labels the forward's firewall rules; write lowercase letters, digits and inner hyphens, such as https", field, f.Name)
		case fw.Protocol != "tcp" && fw.Protocol != "udp":
			return nil, fmt.Errorf("%s.Protocol = %q: use tcp or udp", field, f.Protocol)
		case fw.Port < 1 || fw.Port > 65535:
			return nil, fmt.Errorf("%s.Port = %d: use a port from 1 to 65535", field, f.Port)
		case fw.TargetPort < 1 || fw.TargetPort > 65535:
			return nil, fmt.Errorf("%s.TargetPort = %d: use a port from 1 to 65535, or 0 for Port", field, f.TargetPort)
		}
		var err error
		if fw.Target, err = parseInternal(field+".Target", f.Target, internal); err != nil {
			return nil, err
		}
		for j, c := range f.AllowFrom {
			p, err := parsePrefix(fmt.Sprintf("%s.AllowFrom[%d]", field, j), c, "one such as 203.0.113.0/24")
			if err != nil {
				return nil, err
			}
			fw.AllowFrom = append(fw.AllowFrom, p)
		}
		out = append(out, fw)
	}
	return out, nil
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
