package config

import (
	"net/netip"
	"testing"
)

// withPair is valid() on two Proxmox nodes with a router pair.
func withPair(c *Config) {
	c.Proxmox.Nodes = []ProxmoxNode{{Name: "pve1"}, {Name: "pve2"}}
	c.Network.Internal.Mode = "vxlan"
	c.Network.Internal.VXLAN = &InternalVXLAN{VNI: 4242}
	c.Proxmox.Nodes[0].ClusterAddress, c.Proxmox.Nodes[1].ClusterAddress = "172.16.100.11", "172.16.100.12"
	c.Router.Pair = &RouterPair{ExternalAddresses: []string{"192.168.1.51", "192.168.1.52"}}
}

// A pair with only its external addresses given is planned on the first
// two Proxmox nodes, with own internal addresses right after the shared
// gateway, the second router's ID after the first's and VRRP ID 51.
func TestRouterPairPlan(t *testing.T) {
	c := valid()
	withPair(&c)
	c, p, err := Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	pr := p.RouterPair
	if pr == nil {
		t.Fatal("no pair planned")
	}
	want := [2]PairRouter{
		{Hostname: "router", ProxmoxNode: "pve1", VMID: 8001, Internal: netip.MustParseAddr("10.10.0.2"), External: netip.MustParseAddr("192.168.1.51")},
		{Hostname: "router2", ProxmoxNode: "pve2", VMID: 8002, Internal: netip.MustParseAddr("10.10.0.3"), External: netip.MustParseAddr("192.168.1.52")},
	}
	if pr.Routers != want || pr.VRID != 51 {
		t.Errorf("pair = %+v (VRID %d), want %+v (VRID 51)", pr.Routers, pr.VRID, want)
	}
	if p.RouterInternal.String() != "10.10.0.1" || p.RouterExternal.String() != "192.168.1.50" || p.RouterNode != "pve1" {
		t.Errorf("shared addresses %s, %s on %s; want 10.10.0.1, 192.168.1.50 on pve1", p.RouterInternal, p.RouterExternal, p.RouterNode)
	}
	var used []string
	for _, n := range p.ProxmoxNodes {
		used = append(used, n.Name)
	}
	if len(used) != 2 || used[1] != "pve2" {
		t.Errorf("Proxmox nodes used = %v, want pve1 and pve2 (the second router's node)", used)
	}
}

// Every way to misplace or misaddress a pair is refused, naming the key,
// the value and the fix.
func TestRouterPairProblems(t *testing.T) {
	runProblemCases(t, []problemCase{
		{"pair on one Proxmox node", func(c *Config) {
			c.Router.Pair = &RouterPair{ExternalAddresses: []string{"192.168.1.51", "192.168.1.52"}}
		}, "sda:router.pair", "set", "needs two Proxmox nodes"},
		{"both routers on one node", func(c *Config) {
			withPair(c)
			c.Router.Pair.ProxmoxNodes = []string{"pve2", "pve2"}
		}, "sda:router.pair.proxmoxNodes", "[pve2 pve2]", "losing that node loses both"},
		{"unknown node", func(c *Config) {
			withPair(c)
			c.Router.Pair.ProxmoxNodes = []string{"pve1", "pve9"}
		}, "sda:router.pair.proxmoxNodes[1]", "pve9", "not in sda:proxmox.nodes"},
		{"shared address by DHCP", func(c *Config) {
			withPair(c)
			c.Network.External.RouterAddress = "dhcp"
		}, "sda:network.external.routerAddress", "dhcp", "must be static"},
		{"one external address", func(c *Config) {
			withPair(c)
			c.Router.Pair.ExternalAddresses = []string{"192.168.1.51"}
		}, "sda:router.pair.externalAddresses", "[192.168.1.51]", "list two addresses"},
		{"own address outside the external network", func(c *Config) {
			withPair(c)
			c.Router.Pair.ExternalAddresses[1] = "10.0.0.5"
		}, "sda:router.pair.externalAddresses[1]", "10.0.0.5", "inside sda:network.external.cidr"},
		{"own address is the shared one", func(c *Config) {
			withPair(c)
			c.Router.Pair.ExternalAddresses[0] = "192.168.1.50"
		}, "sda:router.pair.externalAddresses[0]", "192.168.1.50", "share"},
		{"own address is the gateway", func(c *Config) {
			withPair(c)
			c.Router.Pair.ExternalAddresses[0] = "192.168.1.1"
		}, "sda:router.pair.externalAddresses[0]", "192.168.1.1", "gateway"},
		{"both routers one address", func(c *Config) {
			withPair(c)
			c.Router.Pair.ExternalAddresses[1] = "192.168.1.51"
		}, "sda:router.pair.externalAddresses[1]", "192.168.1.51", "first router's address"},
		{"own internal address on a node", func(c *Config) {
			withPair(c)
			c.Router.Pair.InternalOffsets = []int{2, 11}
		}, "sda:cluster.controlPlanes", "10.10.0.11", "router router2's own internal address"},
		{"own internal address in the DHCP range", func(c *Config) {
			withPair(c)
			c.Router.Pair.InternalOffsets = []int{2, 200}
		}, "sda:network.internal.dhcpStart", "10.10.0.192", "10.10.0.200 (router router2's own internal address)"},
		{"VRRP ID out of range", func(c *Config) {
			withPair(c)
			c.Router.Pair.VRID = 256
		}, "sda:router.pair.vrid", "256", "1 to 255"},
		{"second router's ID taken", func(c *Config) {
			withPair(c)
			c.Router.Pair.VMID = 8011
		}, "sda:proxmox.vmIdBase", "8000", "collides with the second router"},
		{"forward to a router's own address", func(c *Config) {
			withPair(c)
			c.Network.PortForwards = []PortForward{{Name: "ssh", Port: 2222, Target: "10.10.0.3", TargetPort: 22}}
		}, "sda:network.portForwards[0].target", "10.10.0.3", "a router's own address"},
		{"a dynamic range of one address", func(c *Config) {
			withPair(c)
			c.Network.Internal.DHCPStart, c.Network.Internal.DHCPEnd = "10.10.0.200", "10.10.0.200"
		}, "sda:network.internal.dhcpEnd", "10.10.0.200", "at least two addresses"},
		{"pair on a bridge of one node", func(c *Config) {
			withPair(c)
			c.Network.Internal.Mode, c.Network.Internal.VXLAN = "bridge", nil
		}, "sda:network.internal.mode", "bridge", ""},
	})
}
