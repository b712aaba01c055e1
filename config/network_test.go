package config

import (
	"net/netip"
	"testing"
)

// The networks and the addresses SDA places in them: each break is named
// with its key, its value and the fix.
func TestNetworkProblems(t *testing.T) {
	runProblemCases(t, []problemCase{
		{"internal CIDR not a CIDR", func(c *Config) { c.Network.Internal.CIDR = "10.10.0.0/33" }, "sda:network.internal.cidr", "10.10.0.0/33", "IPv4 CIDR"},
		{"internal CIDR host bits", func(c *Config) { c.Network.Internal.CIDR = "10.10.0.5/24" }, "sda:network.internal.cidr", "10.10.0.5/24", "10.10.0.0/24"},
		{"external CIDR missing", func(c *Config) { c.Network.External.CIDR = "" }, "sda:network.external.cidr", "", "required"},
		{"overlapping CIDRs", func(c *Config) { c.Network.Internal.CIDR = "192.168.0.0/16" }, "sda:network.internal.cidr", "192.168.0.0/16", "overlap"},
		{"VIP outside internal subnet", func(c *Config) { c.Cluster.VIP = "10.99.0.10" }, "sda:cluster.vip", "10.99.0.10", "inside"},
		{"VIP on a node", func(c *Config) { c.Cluster.VIP = "10.10.0.11" }, "sda:cluster.controlPlanes", "10.10.0.11", "collides with the VIP"},
		{"VIP on the gateway", func(c *Config) { c.Cluster.VIP = "10.10.0.1" }, "sda:cluster.vip", "10.10.0.1", "collides"},
		{"VIP is broadcast", func(c *Config) { c.Cluster.VIP = "10.10.0.255" }, "sda:cluster.vip", "10.10.0.255", "broadcast"},
		{"three control planes without VIP", func(c *Config) { c.Cluster.ControlPlanes = 3 }, "sda:cluster.vip", "", "set a VIP"},
		{"more nodes than the range holds", func(c *Config) {
			c.Network.Internal.CIDR = "10.10.0.0/27"
			c.Cluster.Workers = 4
		}, "sda:network.internal.dhcpStart", "10.10.0.24", "lower the node counts"},
		{"workers past the subnet", func(c *Config) {
			c.Network.Internal.CIDR = "10.10.0.0/27"
			c.Network.Internal.DHCPStart, c.Network.Internal.DHCPEnd = "10.10.0.2", "10.10.0.9"
			c.Cluster.Workers = 12
		}, "sda:cluster.workers", "10.10.0.31", "broadcast"},
		{"DHCP range over static addresses", func(c *Config) { c.Network.Internal.DHCPStart = "10.10.0.20" }, "sda:network.internal.dhcpStart", "10.10.0.20", "static addresses"},
		{"DHCP range reversed", func(c *Config) {
			c.Network.Internal.DHCPStart, c.Network.Internal.DHCPEnd = "10.10.0.200", "10.10.0.100"
		}, "sda:network.internal.dhcpEnd", "10.10.0.100", "not be below"},
		{"router address outside external", func(c *Config) { c.Network.External.RouterAddress = "10.0.0.5" }, "sda:network.external.routerAddress", "10.0.0.5", "inside"},
		{"static router without gateway", func(c *Config) { c.Network.External.Gateway = "" }, "sda:network.external.gateway", "", "required"},
		{"same bridge both sides", func(c *Config) { c.Network.Internal.Bridge = "vmbr0" }, "sda:network.internal.bridge", "vmbr0", "must differ"},
	})
}

// Each network step refuses its own mistake, and only that one: the
// message names the key, the value and what to use instead.
func TestNetworkRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"internal network too small for the plan",
			func(c *Config) { c.Network.Internal.CIDR = "10.10.0.0/29" },
			"sda:network.internal.cidr", "10.10.0.0/29", []string{"/28 or shorter"}},
		{"external network not IPv4",
			func(c *Config) { c.Network.External.CIDR = "2001:db8::/64" },
			"sda:network.external.cidr", "2001:db8::/64", []string{"IPv4 CIDR such as 192.168.1.0/24"}},
		{"external network with host bits",
			func(c *Config) { c.Network.External.CIDR = "192.168.1.7/24" },
			"sda:network.external.cidr", "192.168.1.7/24", []string{"the network address, 192.168.1.0/24"}},
		{"external bridge not a Proxmox bridge",
			func(c *Config) { c.Network.External.Bridge = "eth0" },
			"sda:network.external.bridge", "eth0", []string{"vmbr0"}},
		{"internal bridge not a Proxmox bridge",
			func(c *Config) { c.Network.Internal.Bridge = "br-lan" },
			"sda:network.internal.bridge", "br-lan", []string{"vmbr1"}},
		{"internal domain not a domain",
			func(c *Config) { c.Network.Internal.Domain = "-lab-" },
			"sda:network.internal.domain", "-lab-", []string{"DNS domain"}},
		{"external VLAN out of range",
			func(c *Config) { c.Network.External.VLAN = 4095 },
			"sda:network.external.vlan", "4095", []string{"1 to 4094"}},
		{"router address not an address",
			func(c *Config) { c.Network.External.RouterAddress = "router" },
			"sda:network.external.routerAddress", "router", []string{`"dhcp" or an IPv4 address`}},
		{"router address on the external broadcast address",
			func(c *Config) { c.Network.External.RouterAddress = "192.168.1.255" },
			"sda:network.external.routerAddress", "192.168.1.255", []string{"network or broadcast address of 192.168.1.0/24"}},
		{"gateway outside the external network",
			func(c *Config) { c.Network.External.Gateway = "10.0.0.1" },
			"sda:network.external.gateway", "10.0.0.1", []string{"inside sda:network.external.cidr (192.168.1.0/24)"}},
		{"gateway on the router's address",
			func(c *Config) { c.Network.External.Gateway = "192.168.1.50" },
			"sda:network.external.gateway", "192.168.1.50", []string{"differ from sda:network.external.routerAddress"}},
		{"gateway not an address",
			func(c *Config) { c.Network.External.Gateway = "gw" },
			"sda:network.external.gateway", "gw", []string{"IPv4 address"}},
		{"VIP not an address",
			func(c *Config) { c.Cluster.VIP = "vip" },
			"sda:cluster.vip", "vip", []string{"IPv4 address inside sda:network.internal.cidr"}},
		{"DHCP start not an address",
			func(c *Config) { c.Network.Internal.DHCPStart = "10.10.0.x" },
			"sda:network.internal.dhcpStart", "10.10.0.x", []string{"IPv4 address"}},
		{"DHCP end outside the internal network",
			func(c *Config) { c.Network.Internal.DHCPEnd = "10.10.1.5" },
			"sda:network.internal.dhcpEnd", "10.10.1.5", []string{"host address inside 10.10.0.0/24"}},
		{"no DNS server",
			func(c *Config) { c.Network.DNSServers = []string{} },
			"sda:network.dnsServers", "[]", []string{"at least one upstream DNS server"}},
		{"DNS server not IPv4",
			func(c *Config) { c.Network.DNSServers = []string{"1.1.1.1", "2606:4700::1111"} },
			"sda:network.dnsServers[1]", "2606:4700::1111", []string{"IPv4 address"}},
	})
	// A router on DHCP needs no gateway; a static one with its gateway passes.
	c := valid()
	c.Network.External = External{CIDR: "192.168.1.0/24", RouterAddress: "dhcp"}
	if _, _, err := Resolve(c); err != nil {
		t.Errorf("router on DHCP without a gateway refused: %v", err)
	}
}

func TestKubernetesNetworkRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"internal network inside the default service range",
			func(c *Config) { c.Network.Internal.CIDR = "10.100.7.0/24" },
			"sda:cluster.serviceCidr", "10.96.0.0/12",
			[]string{"sda:network.internal.cidr (10.100.7.0/24)", "free range such as 10.0.0.0/12"}},
		{"external network inside the default pod range",
			func(c *Config) {
				c.Network.External = External{CIDR: "10.244.8.0/22", RouterAddress: "dhcp"}
			},
			"sda:cluster.podCidr", "10.244.0.0/16",
			[]string{"sda:network.external.cidr (10.244.8.0/22)", "free range such as 10.0.0.0/16"}},
		{"admin CIDR covering the pod range",
			func(c *Config) { c.Network.AdminCIDRs = []string{"10.240.0.0/12"} },
			"sda:cluster.podCidr", "10.244.0.0/16",
			[]string{"sda:network.adminCidrs[0] (10.240.0.0/12)", "free range such as 10.0.0.0/16"}},
		{"pods and services overlap",
			func(c *Config) { c.Cluster.PodCIDR, c.Cluster.ServiceCIDR = "172.20.0.0/16", "172.16.0.0/12" },
			"sda:cluster.serviceCidr", "172.16.0.0/12",
			[]string{"overlaps sda:cluster.podCidr (172.20.0.0/16)", "10.96.0.0/12"}},
		{"custom pod range free of everything, service range clashing",
			func(c *Config) { c.Cluster.PodCIDR, c.Cluster.ServiceCIDR = "100.64.0.0/16", "192.168.0.0/16" },
			"sda:cluster.serviceCidr", "192.168.0.0/16",
			[]string{"sda:network.external.cidr (192.168.1.0/24)", "10.96.0.0/16"}},
		{"pod range too small for a node's /24",
			func(c *Config) { c.Cluster.PodCIDR = "10.244.0.0/25" },
			"sda:cluster.podCidr", "10.244.0.0/25", []string{"/23 or wider"}},
		{"pod range too small for the node count",
			func(c *Config) { c.Cluster.PodCIDR, c.Cluster.Workers = "10.244.0.0/23", 4 },
			"sda:cluster.podCidr", "10.244.0.0/23", []string{"2 node /24s for 5 nodes", "/21"}},
		{"service range too large",
			func(c *Config) { c.Cluster.ServiceCIDR = "10.64.0.0/10" },
			"sda:cluster.serviceCidr", "10.64.0.0/10", []string{"at most a /12"}},
		{"service range not a network address",
			func(c *Config) { c.Cluster.ServiceCIDR = "10.96.3.0/12" },
			"sda:cluster.serviceCidr", "10.96.3.0/12", []string{"10.96.0.0/12"}},
		{"pod range not a CIDR",
			func(c *Config) { c.Cluster.PodCIDR = "pods" },
			"sda:cluster.podCidr", "pods", []string{"IPv4 CIDR"}},
	})
}

func TestFreeRange(t *testing.T) {
	for _, tc := range []struct {
		bits      int
		preferred string
		taken     []string
		want      string
	}{
		{16, "10.244.0.0/16", nil, "10.244.0.0/16"},
		{16, "10.244.0.0/16", []string{"10.0.0.0/8"}, "172.16.0.0/16"},
		{12, "10.96.0.0/12", []string{"10.96.0.0/16", "10.0.0.0/12"}, "10.16.0.0/12"},
		{8, "", []string{"10.0.0.0/8"}, "invalid Prefix"},
		{16, "10.96.0.0/12", []string{"192.168.0.0/16"}, "10.96.0.0/16"},
	} {
		var taken []netip.Prefix
		for _, s := range tc.taken {
			taken = append(taken, netip.MustParsePrefix(s))
		}
		if got := FreeRange(tc.bits, tc.preferred, taken).String(); got != tc.want {
			t.Errorf("FreeRange(/%d, %s, %v) = %s, want %s", tc.bits, tc.preferred, tc.taken, got, tc.want)
		}
	}
}
