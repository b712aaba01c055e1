package config

// Network checks: the internal and external networks, the addresses SDA
// places in them (router, VIP, nodes, DHCP range) and the Kubernetes pod and
// service networks. The internal network's mode (bridge, VLAN, VXLAN) is
// checked in network_mode.go; who may reach what from outside, in
// exposure.go.

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

var bridgeRE = regexp.MustCompile(`^vmbr\d{1,4}$`)

// network validates both networks, then the syntax of the addresses the
// plan parses and of the exposure keys; it returns whether the internal and
// external CIDRs parsed, which the plan checks need.
func (v *validator) network(c Config) (internalOK, externalOK bool) {
	nw := c.Network
	in, internalOK := v.internalCIDR(nw.Internal)
	ext, externalOK := v.externalCIDR(nw.External)
	if internalOK && externalOK && in.Overlaps(ext) {
		v.add("sda:network.internal.cidr", nw.Internal.CIDR, "must not overlap sda:network.external.cidr (%s): pick another private range such as 10.10.0.0/24", nw.External.CIDR)
		internalOK = false
	}
	v.bridges(nw)
	if !grammar.Domain(nw.Internal.Domain) {
		v.add("sda:network.internal.domain", nw.Internal.Domain, "use a DNS domain such as sda.internal")
	}
	if nw.External.VLAN < 0 || nw.External.VLAN > 4094 {
		v.add("sda:network.external.vlan", nw.External.VLAN, "use 0 (untagged) or a VLAN ID from 1 to 4094")
	}
	v.routerAddress(nw.External, ext, externalOK)
	v.gateway(nw.External, ext, externalOK)
	v.routerPair(c, ext, externalOK)
	v.internalAddressSyntax(c)
	v.dnsServers(nw.DNSServers)
	v.sourceCIDRSyntax(nw)
	v.portForwardSyntax(nw.PortForwards)
	return internalOK, externalOK
}

// internalCIDR checks sda:network.internal.cidr: an IPv4 network address
// with room for the router, the nodes and a DHCP range.
func (v *validator) internalCIDR(in Internal) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(in.CIDR)
	switch {
	case err != nil || !p.Addr().Is4():
		v.add("sda:network.internal.cidr", in.CIDR, "use an IPv4 CIDR such as 10.10.0.0/24")
	case p.Bits() > 28:
		v.add("sda:network.internal.cidr", in.CIDR, "use a prefix of /28 or shorter; /24 is typical")
	case p.Masked() != p:
		v.add("sda:network.internal.cidr", in.CIDR, "use the network address, %s", p.Masked())
	default:
		return p, true
	}
	return p, false
}

// externalCIDR checks sda:network.external.cidr: required, an IPv4 network
// address.
func (v *validator) externalCIDR(ext External) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(ext.CIDR)
	switch {
	case ext.CIDR == "":
		v.add("sda:network.external.cidr", "", "required: the CIDR of the network on %s, e.g. 192.168.1.0/24", ext.Bridge)
	case err != nil || !p.Addr().Is4():
		v.add("sda:network.external.cidr", ext.CIDR, "use an IPv4 CIDR such as 192.168.1.0/24")
	case p.Masked() != p:
		v.add("sda:network.external.cidr", ext.CIDR, "use the network address, %s", p.Masked())
	default:
		return p, true
	}
	return p, false
}

// bridges checks the Proxmox bridge names: well formed, and the internal
// one apart from the external one.
func (v *validator) bridges(nw Network) {
	if !bridgeRE.MatchString(nw.External.Bridge) {
		v.add("sda:network.external.bridge", nw.External.Bridge, "use a Proxmox bridge name such as vmbr0")
	}
	if !bridgeRE.MatchString(nw.Internal.Bridge) {
		v.add("sda:network.internal.bridge", nw.Internal.Bridge, "use a Proxmox bridge name such as vmbr1")
	} else if nw.Internal.Bridge == nw.External.Bridge {
		v.add("sda:network.internal.bridge", nw.Internal.Bridge, "must differ from sda:network.external.bridge: the internal network is isolated")
	}
}

// routerAddress checks a static router address: an IPv4 host address of
// the external network, which then needs a gateway. "dhcp" needs neither.
func (v *validator) routerAddress(ext External, cidr netip.Prefix, cidrOK bool) {
	ra := ext.RouterAddress
	if ra == "dhcp" {
		return
	}
	a, err := netip.ParseAddr(ra)
	switch {
	case err != nil || !a.Is4():
		v.add("sda:network.external.routerAddress", ra, "use \"dhcp\" or an IPv4 address inside sda:network.external.cidr")
	case cidrOK && !cidr.Contains(a):
		v.add("sda:network.external.routerAddress", ra, "must be inside sda:network.external.cidr (%s)", cidr)
	case cidrOK && (a == cidr.Addr() || a == lastAddr(cidr)):
		v.add("sda:network.external.routerAddress", ra, "must not be the network or broadcast address of %s", cidr)
	}
	if ext.Gateway == "" {
		v.add("sda:network.external.gateway", "", "required with a static router address: the external default gateway")
	}
}

// gateway checks the external default gateway, when set: an IPv4 address of
// the external network other than the router's.
func (v *validator) gateway(ext External, cidr netip.Prefix, cidrOK bool) {
	gw := ext.Gateway
	if gw == "" {
		return
	}
	a, err := netip.ParseAddr(gw)
	switch {
	case err != nil || !a.Is4():
		v.add("sda:network.external.gateway", gw, "use an IPv4 address inside sda:network.external.cidr")
	case cidrOK && !cidr.Contains(a):
		v.add("sda:network.external.gateway", gw, "must be inside sda:network.external.cidr (%s)", cidr)
	case a.String() == ext.RouterAddress:
		v.add("sda:network.external.gateway", gw, "must differ from sda:network.external.routerAddress")
	}
}

// internalAddressSyntax checks the syntax of the internal addresses the
// plan parses; their place in the network is checked by addresses and
// dhcpRange, their syntax here, so a typo is a problem, not a panic.
func (v *validator) internalAddressSyntax(c Config) {
	for _, a := range []struct{ key, value string }{
		{"sda:cluster.vip", c.Cluster.VIP},
		{"sda:network.internal.dhcpStart", c.Network.Internal.DHCPStart},
		{"sda:network.internal.dhcpEnd", c.Network.Internal.DHCPEnd},
	} {
		if ip, err := netip.ParseAddr(a.value); a.value != "" && (err != nil || !ip.Is4()) {
			v.add(a.key, a.value, "use an IPv4 address inside sda:network.internal.cidr")
		}
	}
}

// dnsServers checks the upstream DNS servers: at least one, each IPv4.
func (v *validator) dnsServers(servers []string) {
	if len(servers) == 0 {
		v.add("sda:network.dnsServers", "[]", "list at least one upstream DNS server, e.g. [1.1.1.1]")
	}
	for i, s := range servers {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
			v.add(fmt.Sprintf("sda:network.dnsServers[%d]", i), s, "use an IPv4 address")
		}
	}
}

// addressOwner is what claimed a planned internal address, and its key.
type addressOwner struct{ key, what string }

// addresses checks the plan's static internal addresses (router, VIP,
// nodes): inside the internal network, neither its network nor its
// broadcast address, and unique. It returns the addresses claimed, for
// dhcpRange.
func (v *validator) addresses(c Config, p Plan) map[netip.Addr]addressOwner {
	in := p.Internal
	first, last := in.Addr(), lastAddr(in)
	taken := map[netip.Addr]addressOwner{}
	claim := func(a netip.Addr, key, what string) {
		switch {
		case !in.Contains(a):
			v.add(key, a, "%s must be inside sda:network.internal.cidr (%s): lower the count or widen the CIDR", what, in)
			return
		case a == first || a == last:
			v.add(key, a, "%s must not be the network or broadcast address of %s", what, in)
			return
		}
		if o, dup := taken[a]; dup {
			v.add(key, a, "%s collides with %s (%s): choose another address or offset", what, o.what, o.key)
			return
		}
		taken[a] = addressOwner{key, what}
	}
	claim(p.RouterInternal, "sda:network.internal.routerOffset", "the router's internal address (the gateway)")
	if p.RouterPair != nil {
		for i, r := range p.RouterPair.Routers {
			claim(r.Internal, fmt.Sprintf("sda:router.pair.internalOffsets[%d]", i), "router "+r.Hostname+"'s own internal address")
		}
	}
	if p.VIP.IsValid() {
		claim(p.VIP, "sda:cluster.vip", "the VIP")
	} else if c.Cluster.ControlPlanes > 1 {
		v.add("sda:cluster.vip", "", "set a VIP inside %s for %d control planes, so the Kubernetes API survives the loss of one", in, c.Cluster.ControlPlanes)
	}
	for _, m := range p.ControlPlanes {
		claim(m.Address, "sda:cluster.controlPlanes", "control plane "+m.Hostname)
	}
	for _, m := range p.Workers {
		claim(m.Address, "sda:cluster.workers", "worker "+m.Hostname)
	}
	return taken
}

// dhcpRange checks the plan's DHCP range: inside the internal network,
// ordered, and disjoint from every static address.
func (v *validator) dhcpRange(p Plan, taken map[netip.Addr]addressOwner) {
	in := p.Internal
	first, last := in.Addr(), lastAddr(in)
	switch {
	case !in.Contains(p.DHCPStart) || p.DHCPStart == first || p.DHCPStart == last:
		v.add("sda:network.internal.dhcpStart", p.DHCPStart, "must be a host address inside %s", in)
	case !in.Contains(p.DHCPEnd) || p.DHCPEnd == first || p.DHCPEnd == last:
		v.add("sda:network.internal.dhcpEnd", p.DHCPEnd, "must be a host address inside %s", in)
	case p.DHCPEnd.Less(p.DHCPStart):
		v.add("sda:network.internal.dhcpEnd", p.DHCPEnd, "must not be below sda:network.internal.dhcpStart (%s)", p.DHCPStart)
	default:
		var inRange []string
		for a, o := range taken {
			if !a.Less(p.DHCPStart) && !p.DHCPEnd.Less(a) {
				inRange = append(inRange, fmt.Sprintf("%s (%s)", a, o.what))
			}
		}
		sort.Strings(inRange)
		if len(inRange) > 0 {
			v.add("sda:network.internal.dhcpStart", p.DHCPStart, "the DHCP range %s-%s holds static addresses %s: move the range above them or lower the node counts",
				p.DHCPStart, p.DHCPEnd, strings.Join(inRange, ", "))
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	return hostAt(p, hostCount(p)-1)
}

// kubernetesNetworks checks the pod and service networks: parseable,
// sized for Kubernetes, and clear of each other and of every network
// packets are routed to (the internal and external networks, the admin
// CIDRs). A clash is fixed by a free range, named in the message.
func (v *validator) kubernetesNetworks(c Config) {
	var others []namedPrefix
	if p, err := netip.ParsePrefix(c.Network.Internal.CIDR); err == nil && p.Addr().Is4() {
		others = append(others, namedPrefix{"sda:network.internal.cidr", p.Masked()})
	}
	if p, err := netip.ParsePrefix(c.Network.External.CIDR); err == nil && p.Addr().Is4() {
		others = append(others, namedPrefix{"sda:network.external.cidr", p.Masked()})
	}
	for i, s := range c.Network.AdminCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
			others = append(others, namedPrefix{fmt.Sprintf("sda:network.adminCidrs[%d]", i), p.Masked()})
		}
	}

	nodes := c.Cluster.ControlPlanes + c.Cluster.Workers
	parse := func(key, value, example string) (netip.Prefix, bool) {
		p, err := netip.ParsePrefix(value)
		switch {
		case err != nil || !p.Addr().Is4():
			v.add(key, value, "use an IPv4 CIDR such as %s", example)
		case p.Masked() != p:
			v.add(key, value, "use the network address, %s", p.Masked())
		default:
			return p, true
		}
		return netip.Prefix{}, false
	}
	pods, podsOK := parse("sda:cluster.podCidr", c.Cluster.PodCIDR, DefaultPodCIDR)
	services, servicesOK := parse("sda:cluster.serviceCidr", c.Cluster.ServiceCIDR, DefaultServiceCIDR)
	if podsOK {
		// Each node gets a /24 of the pod network (Kubernetes' default
		// node-cidr-mask-size).
		switch {
		case pods.Bits() > 23:
			v.add("sda:cluster.podCidr", c.Cluster.PodCIDR, "every node takes a /24 of the pod network: use /23 or wider, such as %s", DefaultPodCIDR)
			podsOK = false
		case nodes > 0 && 1<<(24-pods.Bits()) < nodes:
			v.add("sda:cluster.podCidr", c.Cluster.PodCIDR, "holds %d node /24s for %d nodes: widen it, e.g. to /%d", 1<<(24-pods.Bits()), nodes, 24-bitsFor(nodes))
			podsOK = false
		}
	}
	if servicesOK && services.Bits() < 12 {
		v.add("sda:cluster.serviceCidr", c.Cluster.ServiceCIDR, "Kubernetes allows at most a /12 for services: use /12 or narrower, such as %s", DefaultServiceCIDR)
		servicesOK = false
	}
	if podsOK && servicesOK && pods.Overlaps(services) {
		free := FreeRange(services.Bits(), DefaultServiceCIDR, append(prefixes(others), pods))
		v.add("sda:cluster.serviceCidr", c.Cluster.ServiceCIDR, "overlaps sda:cluster.podCidr (%s): use a free range such as %s", pods, free)
		servicesOK = false
	}
	check := func(key, value string, p netip.Prefix, def string, also []netip.Prefix) {
		var clashes []string
		for _, o := range others {
			if p.Overlaps(o.p) {
				clashes = append(clashes, fmt.Sprintf("%s (%s)", o.key, o.p))
			}
		}
		if len(clashes) == 0 {
			return
		}
		free := FreeRange(p.Bits(), def, append(prefixes(others), also...))
		v.add(key, value, "overlaps %s: Kubernetes would route those addresses inside the cluster; use a free range such as %s, or move the other network",
			strings.Join(clashes, ", "), free)
	}
	if podsOK {
		var also []netip.Prefix
		if servicesOK {
			also = append(also, services)
		}
		check("sda:cluster.podCidr", c.Cluster.PodCIDR, pods, DefaultPodCIDR, also)
	}
	if servicesOK {
		var also []netip.Prefix
		if podsOK {
			also = append(also, pods)
		}
		check("sda:cluster.serviceCidr", c.Cluster.ServiceCIDR, services, DefaultServiceCIDR, also)
	}
}

// namedPrefix is a network and the key it comes from.
type namedPrefix struct {
	key string
	p   netip.Prefix
}

func prefixes(in []namedPrefix) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range in {
		out = append(out, n.p)
	}
	return out
}

// bitsFor is the number of bits that count n things.
func bitsFor(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// FreeRange returns a private IPv4 network of the given prefix length that
// overlaps none of taken: preferred when it is free, else the first free
// one in 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16. The zero Prefix when
// there is none.
func FreeRange(bits int, preferred string, taken []netip.Prefix) netip.Prefix {
	free := func(p netip.Prefix) bool {
		for _, t := range taken {
			if p.Overlaps(t) {
				return false
			}
		}
		return true
	}
	// The preferred network's address at the wanted size, so a /16 for
	// services is suggested as 10.96.0.0/16.
	if p, err := netip.ParsePrefix(preferred); err == nil {
		if p, err = p.Addr().Prefix(bits); err == nil && free(p) {
			return p
		}
	}
	for _, space := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} {
		s := netip.MustParsePrefix(space)
		if bits < s.Bits() {
			continue
		}
		step := 1 << (32 - bits)
		for off := 0; off < hostCount(s); off += step {
			p := netip.PrefixFrom(hostAt(s, off), bits)
			if free(p) {
				return p
			}
		}
	}
	return netip.Prefix{}
}
