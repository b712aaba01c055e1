package inputs

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
)

// routerTestConfig is a resolved stack (the routerfiles tests render from
// the same one) with three control planes behind a VIP, two
// workers, a static external address and three kinds of port-forward.
func routerTestConfig(t *testing.T, mod func(*config.Config)) (config.Config, config.Plan) {
	t.Helper()
	c := RouterFixture()
	if mod != nil {
		mod(&c)
	}
	c, p, err := config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func routerTestSpec(t *testing.T, mod func(*config.Config)) routerfiles.Spec {
	t.Helper()
	s, err := RouterFiles(routerTestConfig(t, mod))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func routerAddrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestRouterFiles(t *testing.T) {
	c, p := routerTestConfig(t, nil)
	s, err := RouterFiles(c, p)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"external interface", s.ExternalInterface, "eth0"},
		{"internal interface", s.InternalInterface, "eth1"},
		{"internal", s.Internal, netip.MustParsePrefix("10.30.0.0/24")},
		{"router internal", s.RouterInternal, netip.MustParseAddr("10.30.0.1")},
		{"external", s.External, netip.MustParsePrefix("192.0.2.0/24")},
		{"router external", s.RouterExternal, netip.MustParseAddr("192.0.2.5")},
		{"domain", s.Domain, "t.internal"},
		{"upstream DNS, in configured order", s.UpstreamDNS, routerAddrs("192.0.2.54", "192.0.2.53")},
		{"DHCP start", s.DHCPStart, netip.MustParseAddr("10.30.0.192")},
		{"DHCP end", s.DHCPEnd, netip.MustParseAddr("10.30.0.254")},
		{"lease time", s.LeaseTime, "12h"},
		{"router name", s.RouterName, "router"},
		{"host count: 3 control planes + 2 workers", len(s.Hosts), 5},
		{"first control plane", s.Hosts[0], routerfiles.Host{Name: "t-cp1", Domain: "t.internal", Address: netip.MustParseAddr("10.30.0.11"),
			MAC: config.MACFor("t", "t-cp1"), ControlPlane: true}},
		{"last control plane", s.Hosts[2].ControlPlane, true},
		{"first worker is no control plane", s.Hosts[3].ControlPlane, false},
		{"last worker", s.Hosts[4], routerfiles.Host{Name: "t-worker2", Domain: "t.internal", Address: netip.MustParseAddr("10.30.0.22"), MAC: config.MACFor("t", "t-worker2")}},
		{"hosts directory", s.HostsDir, "/etc/sda/hosts.d"},
		{"DHCP hosts directory", s.DHCPHostsDir, "/etc/sda/dhcp-hosts.d"},
		{"nftables hosts directory", s.NftablesHostsDir, "/etc/sda/nftables.d"},
		{"admin CIDRs", s.AdminCIDRs, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
		// Control planes are hosts: their own files add them to the set.
		{"Kubernetes API beyond the hosts: the VIP", s.KubernetesAPI, routerAddrs("10.30.0.10")},
		{"forward count", len(s.Forwards), 3},
		{"forward to a hostname", s.Forwards[0], routerfiles.Forward{Name: "https", Protocol: "tcp", Port: 443, Target: netip.MustParseAddr("10.30.0.21"), TargetPort: 30443}},
		{"forward to an address, restricted", s.Forwards[1], routerfiles.Forward{Name: "syslog", Protocol: "udp", Port: 514, Target: netip.MustParseAddr("10.30.0.50"), TargetPort: 514,
			AllowFrom: []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("203.0.113.0/24")}}},
		{"forward to the VIP", s.Forwards[2].Target, netip.MustParseAddr("10.30.0.10")},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !routerEqual(c.got, c.want) {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

func routerEqual(a, b any) bool {
	switch a := a.(type) {
	case []netip.Addr:
		return slices.Equal(a, b.([]netip.Addr))
	case []netip.Prefix:
		return slices.Equal(a, b.([]netip.Prefix))
	case routerfiles.Forward:
		bf := b.(routerfiles.Forward)
		return slices.Equal(a.AllowFrom, bf.AllowFrom) && a.Name == bf.Name && a.Protocol == bf.Protocol &&
			a.Port == bf.Port && a.Target == bf.Target && a.TargetPort == bf.TargetPort
	}
	return a == b
}

func TestRouterFilesWithoutVIPOrStaticAddress(t *testing.T) {
	s := routerTestSpec(t, func(c *config.Config) {
		c.Cluster.ControlPlanes, c.Cluster.VIP = 1, ""
		c.Network.External = config.External{CIDR: "192.0.2.0/24", RouterAddress: "dhcp"}
		c.Network.PortForwards = nil
	})
	if s.RouterExternal.IsValid() {
		t.Errorf("RouterExternal = %v, want invalid (DHCP)", s.RouterExternal)
	}
	if len(s.KubernetesAPI) != 0 {
		t.Errorf("KubernetesAPI = %v, want none: without a VIP the only control plane is the API, and its host file adds it", s.KubernetesAPI)
	}
	if len(s.Hosts) != 3 || !s.Hosts[0].ControlPlane || s.Hosts[0].Address != netip.MustParseAddr("10.30.0.11") {
		t.Errorf("hosts %+v, want the control plane 10.30.0.11 first", s.Hosts)
	}
}

func TestRouterFilesRejectsUnresolved(t *testing.T) {
	_, err := RouterFiles(config.Config{}, config.Plan{})
	if err == nil || !strings.Contains(err.Error(), "config.Resolve") {
		t.Fatalf("err = %v, want one naming config.Resolve", err)
	}
}

func TestRouterFilesOfStacks(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			c, p, err := config.LoadStack("../../testdata/stacks", stack)
			if err != nil {
				t.Fatal(err)
			}
			s, err := RouterFiles(c, p)
			if err != nil {
				t.Fatal(err)
			}
			f := routerfiles.Render(s)
			if len(s.Hosts) != len(p.Machines()) {
				t.Fatalf("%d hosts for %d machines", len(s.Hosts), len(p.Machines()))
			}
			for i, m := range p.Machines() {
				hf := routerfiles.RenderHost(s.Hosts[i])
				if want := m.Address.String() + " " + m.Hostname + "." + c.Network.Internal.Domain + " " + m.Hostname + "\n"; hf.Hosts != want {
					t.Errorf("%s hosts file %q, want %q", m.Hostname, hf.Hosts, want)
				}
				if want := strings.ToLower(m.MAC) + "," + m.Address.String() + "," + m.Hostname + "\n"; hf.DHCPHosts != want {
					t.Errorf("%s DHCP hosts file %q, want %q", m.Hostname, hf.DHCPHosts, want)
				}
				if strings.Contains(f.Dnsmasq+f.Nftables, m.Hostname) || strings.Contains(f.Dnsmasq+f.Nftables, m.Address.String()+"\n") {
					t.Errorf("the main files name %s", m.Hostname)
				}
			}
			for _, fw := range c.Network.PortForwards {
				if !strings.Contains(f.Nftables, "comment \""+fw.Name+"\"") {
					t.Errorf("no rule for port-forward %s", fw.Name)
				}
			}
		})
	}
}
