package config

// Exposure checks: what is reachable from outside the internal network. The
// admin CIDRs and the Talos API CIDRs are sources on the external side; a
// port-forward publishes one internal address and port, and one that
// publishes a management API must say who may use it.

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/sda-platform/sda/grammar"
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

// sourceCIDRSyntax checks that every admin CIDR and Talos API CIDR is an
// IPv4 CIDR; exposure checks where they lie.
func (v *validator) sourceCIDRSyntax(nw Network) {
	for i, s := range nw.AdminCIDRs {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() {
			v.add(fmt.Sprintf("sda:network.adminCidrs[%d]", i), s, "use an IPv4 CIDR such as 192.168.1.0/24 (a single host is /32)")
		}
	}
	for i, s := range nw.TalosAPICIDRs {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() {
			v.add(fmt.Sprintf("sda:network.talosApiCidrs[%d]", i), s, "use an IPv4 CIDR: the address of the machine that runs Pulumi, such as 192.168.1.5/32")
		}
	}
}

// portForwardSyntax checks each port-forward on its own: a name, a
// protocol, ports in range, an external port forwarded once per protocol,
// IPv4 allowFrom sources and a target. Where the target is, forwardTargets
// and exposure check against the plan.
func (v *validator) portForwardSyntax(forwards []PortForward) {
	ports := map[string]string{}
	for i, f := range forwards {
		key := fmt.Sprintf("sda:network.portForwards[%d]", i)
		if !grammar.DNSLabel(f.Name) {
			v.add(key+".name", f.Name, "name each port-forward with lowercase letters, digits and '-'")
		}
		if f.Protocol != "tcp" && f.Protocol != "udp" {
			v.add(key+".protocol", f.Protocol, "use \"tcp\" or \"udp\"")
		}
		if f.Port < 1 || f.Port > 65535 {
			v.add(key+".port", f.Port, "use a port from 1 to 65535")
		}
		if f.TargetPort < 1 || f.TargetPort > 65535 {
			v.add(key+".targetPort", f.TargetPort, "use a port from 1 to 65535")
		}
		pk := fmt.Sprintf("%s/%d", f.Protocol, f.Port)
		if other, dup := ports[pk]; dup {
			v.add(key+".port", f.Port, "%s %d is already forwarded by %q: use another external port", f.Protocol, f.Port, other)
		}
		ports[pk] = f.Name
		for j, a := range f.AllowFrom {
			if p, err := netip.ParsePrefix(a); err != nil || !p.Addr().Is4() {
				v.add(fmt.Sprintf("%s.allowFrom[%d]", key, j), a, "use an IPv4 CIDR such as 192.168.1.0/24")
			}
		}
		if f.Target == "" {
			v.add(key+".target", "", "name a node hostname, \"vip\", or an internal IPv4 address")
		}
	}
}

// forwardTargets checks that every port-forward's target resolves against
// the plan (ForwardTarget).
func (v *validator) forwardTargets(c Config, p Plan) {
	for i, f := range c.Network.PortForwards {
		if _, err := ForwardTarget(p, f.Target); err != nil {
			v.add(fmt.Sprintf("sda:network.portForwards[%d].target", i), f.Target, "%v", err)
		}
	}
}

// ForwardTarget resolves a port-forward target (hostname, "vip" or an
// internal address) against the plan.
func ForwardTarget(p Plan, target string) (netip.Addr, error) {
	if target == "vip" {
		if !p.VIP.IsValid() {
			return netip.Addr{}, fmt.Errorf("no VIP is configured: set sda:cluster.vip or target a node")
		}
		return p.VIP, nil
	}
	for _, m := range p.Machines() {
		if m.Hostname == target {
			return m.Address, nil
		}
	}
	a, err := netip.ParseAddr(target)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not a node hostname of this stack, \"vip\", or an IPv4 address")
	}
	if !p.Internal.Contains(a) {
		return netip.Addr{}, fmt.Errorf("must be inside the internal network %s", p.Internal)
	}
	return a, nil
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
			switch {
			case p.RouterPair != nil && (target == p.RouterPair.Routers[0].Internal || target == p.RouterPair.Routers[1].Internal):
				v.add(key+".target", f.Target, "is a router's own address: forward to a node, \"vip\" or another internal address; the routers' own services are not published")
			}
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
