package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"
)

// Ports of the cluster's management APIs. A port-forward that publishes one
// of them must say who may use it (allowFrom).
var ManagementPorts = map[int]string{
	50000: "the Talos API (a node in maintenance mode accepts an unauthenticated configuration on it)",
	50001: "Talos's trustd",
	6443:  "the Kubernetes API",
	2379:  "etcd's client API",
	2380:  "etcd's peer API",
	10250: "the kubelet API",
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

// versions checks the Talos and Kubernetes versions against what Talos's
// machinery knows: the Talos release must be one machinery has a version
// contract for, and the Kubernetes release one that Talos release supports.
// Both messages name the versions that would work.
func (v *validator) versions(c Config) {
	cl := c.Cluster
	if !versionRE.MatchString(cl.TalosVersion) || !versionRE.MatchString(cl.KubernetesVersion) {
		return // reported by cluster()
	}
	talos, err := talosVersion(cl.TalosVersion)
	if err != nil {
		v.add("sda:cluster.talosVersion", cl.TalosVersion, "not a Talos version: %v", err)
		return
	}
	k8s, err := compatibility.ParseKubernetesVersion(cl.KubernetesVersion)
	if err != nil {
		v.add("sda:cluster.kubernetesVersion", cl.KubernetesVersion, "not a Kubernetes version: %v", err)
		return
	}
	known := KnownTalosMinors()
	if err := k8s.SupportedWith(talos); err != nil && !supportsAny(talos) {
		// Refused, not warned: without compatibility data nothing vouches
		// for the Kubernetes version, and the check is what stops a cluster
		// being created with a pair that Talos refuses to run.
		v.add("sda:cluster.talosVersion", cl.TalosVersion,
			"SDA's Talos machinery has compatibility data for Talos %s to %s only, so it cannot check sda:cluster.kubernetesVersion against it: use one of those releases, such as %s (a newer Talos needs SDA built with a newer github.com/siderolabs/talos/pkg/machinery)",
			known[0], known[len(known)-1], DefaultTalosVersion)
		return
	} else if err != nil {
		lo, hi := KubernetesRange(talos)
		age := "too old"
		if !minorBelow(strings.TrimPrefix(cl.KubernetesVersion, "v"), hi) {
			age = "too new"
		}
		fix := fmt.Sprintf("%s for Talos %s, which supports Kubernetes %s to %s: use one of those, such as v%s.0", age, cl.TalosVersion, lo, hi, hi)
		if works := TalosFor(k8s); len(works) > 0 {
			fix += fmt.Sprintf(", or a Talos release that supports %s: %s", cl.KubernetesVersion, strings.Join(works, ", "))
		}
		v.add("sda:cluster.kubernetesVersion", cl.KubernetesVersion, "%s", fix)
	}
}

// minorBelow reports whether version ("1.27.4") is of a lower major.minor
// than bound ("1.35"): a refused version not below the highest supported
// minor is too new (1.35.99 is, machinery's maximum being exclusive).
func minorBelow(version, bound string) bool {
	var vMajor, vMinor, bMajor, bMinor int
	fmt.Sscanf(version, "%d.%d", &vMajor, &vMinor)
	fmt.Sscanf(bound, "%d.%d", &bMajor, &bMinor)
	return vMajor < bMajor || vMajor == bMajor && vMinor < bMinor
}

func talosVersion(v string) (*compatibility.TalosVersion, error) {
	return compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: v})
}

// probed Kubernetes minors: far wider than any Talos release supports.
const minProbeMinor, maxProbeMinor = 10, 60

func supportsAny(t *compatibility.TalosVersion) bool {
	lo, _ := KubernetesRange(t)
	return lo != ""
}

// KubernetesRange is the lowest and highest Kubernetes minor ("1.30",
// "1.35") a Talos release supports, "" when machinery does not know it.
func KubernetesRange(t *compatibility.TalosVersion) (lo, hi string) {
	for m := minProbeMinor; m <= maxProbeMinor; m++ {
		k, _ := compatibility.ParseKubernetesVersion(fmt.Sprintf("1.%d.0", m))
		if k.SupportedWith(t) == nil {
			if lo == "" {
				lo = fmt.Sprintf("1.%d", m)
			}
			hi = fmt.Sprintf("1.%d", m)
		}
	}
	return lo, hi
}

// KnownTalosMinors are the Talos minors ("v1.2" ... "v1.12") Talos's
// machinery has compatibility data for.
func KnownTalosMinors() []string {
	var out []string
	for m := 0; m <= 40; m++ {
		t, err := talosVersion(fmt.Sprintf("v1.%d.0", m))
		if err == nil && supportsAny(t) {
			out = append(out, fmt.Sprintf("v1.%d", m))
		}
	}
	return out
}

// TalosFor lists the Talos minors that support a Kubernetes version.
func TalosFor(k *compatibility.KubernetesVersion) []string {
	var out []string
	for _, minor := range KnownTalosMinors() {
		t, _ := talosVersion(minor + ".0")
		if k.SupportedWith(t) == nil {
			out = append(out, minor)
		}
	}
	return out
}

// exposure checks what the router publishes: a forward of a management API
// must be limited to allowFrom sources (and not to everyone), no forward may
// target the router itself, and admin CIDRs must lie outside the internal
// network (the router admits them only from the external side).
func (v *validator) exposure(c Config, p Plan) {
	for i, f := range c.Network.PortForwards {
		key := fmt.Sprintf("sda:network.portForwards[%d]", i)
		if what, ok := ManagementPorts[f.TargetPort]; ok {
			// By coverage, not by spelling: 0.0.0.0/1 and 128.0.0.0/1
			// together are everyone too.
			if len(f.AllowFrom) == 0 || AddressesCovered(parsePrefixes(f.AllowFrom)) == 1<<32 {
				v.add(key+".allowFrom", strings.Join(f.AllowFrom, ","), "forward %q publishes port %d, %s: list the admin networks that may use it, e.g. allowFrom: [%s]",
					f.Name, f.TargetPort, what, exampleAdmin(c))
			}
		}
		if target, err := ForwardTarget(p, f.Target); err == nil {
			switch target {
			case p.RouterInternal:
				v.add(key+".target", f.Target, "is the router's own address: forward to a node, \"vip\" or another internal address; the router's own services are not published")
			case p.Internal.Addr(), lastAddr(p.Internal):
				v.add(key+".target", f.Target, "is the network or broadcast address of %s: forward to a node or \"vip\"", p.Internal)
			}
		}
	}
	for i, s := range c.Network.TalosAPICIDRs {
		if a, err := netip.ParsePrefix(s); err == nil && a.Overlaps(p.Internal) {
			v.add(fmt.Sprintf("sda:network.talosApiCidrs[%d]", i), s, "overlaps the internal network %s: list the external address of the machine that runs Pulumi, such as %s", p.Internal, exampleAdmin(c))
		}
	}
	for i, s := range c.Network.AdminCIDRs {
		if a, err := netip.ParsePrefix(s); err == nil && a.Overlaps(p.Internal) {
			v.add(fmt.Sprintf("sda:network.adminCidrs[%d]", i), s, "overlaps the internal network %s: admin CIDRs are sources on the external side (internal hosts reach the nodes directly); use the external network of your workstation, such as %s", p.Internal, exampleAdmin(c))
		}
	}
}

// parsePrefixes parses the IPv4 prefixes among ss (others are reported by
// the syntax checks).
func parsePrefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out
}

// AddressesCovered is how many IPv4 addresses the prefixes cover together,
// overlaps counted once (1<<32: every address).
func AddressesCovered(prefixes []netip.Prefix) uint64 {
	type span struct{ first, last uint64 }
	var spans []span
	for _, p := range prefixes {
		first := uint64(ipv4Uint(p.Addr()))
		spans = append(spans, span{first, first + 1<<(32-p.Bits()) - 1})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].first < spans[j].first })
	var total, next uint64 // next: the first address not yet counted
	for _, s := range spans {
		if s.last < next {
			continue
		}
		total += s.last - max(s.first, next) + 1
		next = s.last + 1
	}
	return total
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func exampleAdmin(c Config) string {
	if c.Network.External.CIDR != "" {
		return c.Network.External.CIDR
	}
	return "192.168.1.0/24"
}
