package render

import (
	"fmt"
	"net/netip"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
)

// RouterSpec derives the router's Spec from a resolved configuration and its
// plan (config.Resolve or config.LoadStack): what `sda render` writes and
// what the stack hands RouterLXC.
func RouterSpec(c config.Config, p config.Plan) (routerfiles.Spec, error) {
	if !p.Internal.IsValid() || !p.RouterInternal.IsValid() || c.Network.Internal.Domain == "" {
		return routerfiles.Spec{}, fmt.Errorf("router: the configuration is not resolved: pass the result of config.Resolve or config.LoadStack")
	}
	s := routerfiles.Spec{
		ExternalInterface: routerfiles.ExternalInterface,
		InternalInterface: routerfiles.InternalInterface,
		Internal:          p.Internal,
		RouterInternal:    p.RouterInternal,
		External:          p.External,
		RouterExternal:    p.RouterExternal,
		Domain:            c.Network.Internal.Domain,
		DHCPStart:         p.DHCPStart,
		DHCPEnd:           p.DHCPEnd,
		LeaseTime:         routerfiles.DefaultLeaseTime,
		RouterName:        c.Router.Hostname,
		HostsDir:          routerfiles.DefaultHostsDir,
		DHCPHostsDir:      routerfiles.DefaultDHCPHostsDir,
		NftablesHostsDir:  routerfiles.DefaultNftablesHostsDir,
	}
	for i, d := range c.Network.DNSServers {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return routerfiles.Spec{}, fmt.Errorf("router: sda:network.dnsServers[%d]: %w", i, err)
		}
		s.UpstreamDNS = append(s.UpstreamDNS, a)
	}
	for _, m := range p.Machines() {
		s.Hosts = append(s.Hosts, routerfiles.Host{
			Name: m.Hostname, Domain: s.Domain, Address: m.Address, MAC: m.MAC,
			ControlPlane: m.Role == config.RoleControlPlane,
		})
	}
	if p.VIP.IsValid() {
		s.KubernetesAPI = append(s.KubernetesAPI, p.VIP)
	}
	var err error
	if s.AdminCIDRs, err = parseRouterPrefixes(c.Network.AdminCIDRs, "sda:network.adminCidrs"); err != nil {
		return routerfiles.Spec{}, err
	}
	if s.TalosAPICIDRs, err = parseRouterPrefixes(c.Network.TalosAPICIDRs, "sda:network.talosApiCidrs"); err != nil {
		return routerfiles.Spec{}, err
	}
	for i, f := range c.Network.PortForwards {
		key := fmt.Sprintf("sda:network.portForwards[%d]", i)
		target, err := config.ForwardTarget(p, f.Target)
		if err != nil {
			return routerfiles.Spec{}, fmt.Errorf("router: %s.target %q: %w", key, f.Target, err)
		}
		allow, err := parseRouterPrefixes(f.AllowFrom, key+".allowFrom")
		if err != nil {
			return routerfiles.Spec{}, err
		}
		s.Forwards = append(s.Forwards, routerfiles.Forward{
			Name: f.Name, Protocol: f.Protocol, Port: f.Port,
			Target: target, TargetPort: f.TargetPort, AllowFrom: allow,
		})
	}
	return s, nil
}

func parseRouterPrefixes(in []string, key string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("router: %s[%d]: %w", key, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}
