package config

import (
	"net/netip"
	"strings"
	"testing"
)

// Port-forwards and source CIDRs that point at nothing or are mistyped are
// refused with their key, value and fix.
func TestExposureProblems(t *testing.T) {
	runProblemCases(t, []problemCase{
		{"port-forward to unknown host", func(c *Config) {
			c.Network.PortForwards = []PortForward{{Name: "web", Port: 80, Target: "nope"}}
		}, "sda:network.portForwards[0].target", "nope", "hostname"},
		{"port-forward to vip without vip", func(c *Config) {
			c.Network.PortForwards = []PortForward{{Name: "api", Port: 6443, Target: "vip"}}
		}, "sda:network.portForwards[0].target", "vip", "no VIP"},
		{"duplicate forwarded port", func(c *Config) {
			c.Network.PortForwards = []PortForward{{Name: "a", Port: 80, Target: "lab-worker1"}, {Name: "b", Port: 80, Target: "lab-worker2"}}
		}, "sda:network.portForwards[1].port", "80", "already forwarded"},
		{"admin CIDR", func(c *Config) { c.Network.AdminCIDRs = []string{"everyone"} }, "sda:network.adminCidrs[0]", "everyone", "IPv4 CIDR"},
	})
}

// Each port-forward field and each source CIDR is checked on its own: one
// mistake, one problem naming the field.
func TestExposureSyntaxRules(t *testing.T) {
	fwd := func(f PortForward) func(*Config) {
		return func(c *Config) { c.Network.PortForwards = append(c.Network.PortForwards, f) }
	}
	runRuleCases(t, []ruleCase{
		{"forward name not a DNS label",
			fwd(PortForward{Name: "Web Server", Port: 80, Target: "lab-worker1"}),
			"sda:network.portForwards[0].name", "Web Server", []string{"lowercase letters, digits and '-'"}},
		{"protocol neither tcp nor udp",
			fwd(PortForward{Name: "ping", Protocol: "icmp", Port: 80, Target: "lab-worker1"}),
			"sda:network.portForwards[0].protocol", "icmp", []string{`"tcp" or "udp"`}},
		{"external port out of range",
			fwd(PortForward{Name: "web", Port: 70000, TargetPort: 80, Target: "lab-worker1"}),
			"sda:network.portForwards[0].port", "70000", []string{"1 to 65535"}},
		{"target port out of range",
			fwd(PortForward{Name: "web", Port: 80, TargetPort: 65536, Target: "lab-worker1"}),
			"sda:network.portForwards[0].targetPort", "65536", []string{"1 to 65535"}},
		{"allowFrom not a CIDR",
			fwd(PortForward{Name: "web", Port: 80, Target: "lab-worker1", AllowFrom: []string{"192.168.1.0/24", "office"}}),
			"sda:network.portForwards[0].allowFrom[1]", "office", []string{"IPv4 CIDR"}},
		{"no target",
			fwd(PortForward{Name: "web", Port: 80}),
			"sda:network.portForwards[0].target", "", []string{`node hostname, "vip", or an internal IPv4 address`}},
		{"Talos API CIDR not a CIDR",
			func(c *Config) { c.Network.TalosAPICIDRs = []string{"pulumi-host"} },
			"sda:network.talosApiCidrs[0]", "pulumi-host", []string{"the machine that runs Pulumi"}},
	})
	// The same external port may be forwarded once per protocol.
	c := valid()
	c.Network.PortForwards = []PortForward{
		{Name: "dns-tcp", Protocol: "tcp", Port: 53, Target: "lab-worker1"},
		{Name: "dns-udp", Protocol: "udp", Port: 53, Target: "lab-worker1"},
	}
	if _, _, err := Resolve(c); err != nil {
		t.Errorf("tcp and udp on one port refused: %v", err)
	}
}

// ForwardTarget resolves a node's hostname to its address, "vip" to the
// VIP and an internal address to itself; anything else is an error that
// says what a target may be.
func TestForwardTarget(t *testing.T) {
	c := valid()
	c.Cluster.VIP = "10.10.0.10"
	_, p, err := Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ target, want, err string }{
		{"lab-cp1", "10.10.0.11", ""},
		{"lab-worker2", "10.10.0.22", ""},
		{"vip", "10.10.0.10", ""},
		{"10.10.0.99", "10.10.0.99", ""},
		{"10.11.0.1", "", "must be inside the internal network 10.10.0.0/24"},
		{"db", "", `not a node hostname of this stack, "vip", or an IPv4 address`},
	} {
		got, err := ForwardTarget(p, tc.target)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ForwardTarget(%q) = %v, %v; want the error %q", tc.target, got, err, tc.err)
		case tc.err == "" && (err != nil || got != netip.MustParseAddr(tc.want)):
			t.Errorf("ForwardTarget(%q) = %v, %v; want %s", tc.target, got, err, tc.want)
		}
	}
	_, noVIP, _ := Resolve(valid())
	if _, err := ForwardTarget(noVIP, "vip"); err == nil || !strings.Contains(err.Error(), "set sda:cluster.vip") {
		t.Errorf(`"vip" without a VIP: %v; want an error naming sda:cluster.vip`, err)
	}
}

func TestExposureRules(t *testing.T) {
	fwd := func(f PortForward) func(*Config) {
		return func(c *Config) { c.Network.PortForwards = append(c.Network.PortForwards, f) }
	}
	runRuleCases(t, []ruleCase{
		{"Talos API to everyone",
			fwd(PortForward{Name: "talos", Port: 50000, Target: "lab-cp1"}),
			"sda:network.portForwards[0].allowFrom", "", []string{"Talos API", "maintenance mode", "allowFrom: [192.168.1.0/24]"}},
		{"Kubernetes API on another external port",
			fwd(PortForward{Name: "api", Port: 8443, Target: "lab-cp1", TargetPort: 6443}),
			"sda:network.portForwards[0].allowFrom", "", []string{"port 6443", "Kubernetes API"}},
		{"etcd peer port with allowFrom 0.0.0.0/0",
			fwd(PortForward{Name: "etcd", Port: 2380, Target: "lab-cp1", AllowFrom: []string{"0.0.0.0/0"}}),
			"sda:network.portForwards[0].allowFrom", "0.0.0.0/0", []string{"etcd's peer API"}},
		{"etcd client port with two /1s, which together are everyone",
			fwd(PortForward{Name: "etcd", Port: 2379, Target: "lab-cp1", AllowFrom: []string{"0.0.0.0/1", "128.0.0.0/1"}}),
			"sda:network.portForwards[0].allowFrom", "0.0.0.0/1,128.0.0.0/1", []string{"etcd's client API"}},
		{"Kubernetes API with overlapping halves and a /2 that cover everyone",
			fwd(PortForward{Name: "api", Port: 6443, Target: "lab-cp1", AllowFrom: []string{"0.0.0.0/2", "0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/2"}}),
			"sda:network.portForwards[0].allowFrom", "0.0.0.0/2,0.0.0.0/1,128.0.0.0/2,192.0.0.0/2", []string{"Kubernetes API"}},
		{"kubelet of a worker",
			fwd(PortForward{Name: "kubelet", Port: 10250, Target: "lab-worker2"}),
			"sda:network.portForwards[0].allowFrom", "", []string{"kubelet"}},
		{"forward to the router's internal address",
			fwd(PortForward{Name: "web", Port: 80, Target: "10.10.0.1"}),
			"sda:network.portForwards[0].target", "10.10.0.1", []string{"router's own address"}},
		{"forward to the internal broadcast address",
			fwd(PortForward{Name: "web", Port: 80, Target: "10.10.0.255"}),
			"sda:network.portForwards[0].target", "10.10.0.255", []string{"broadcast"}},
		{"forward to the router's external address",
			fwd(PortForward{Name: "web", Port: 80, Target: "192.168.1.50"}),
			"sda:network.portForwards[0].target", "192.168.1.50", []string{"inside the internal network"}},
		{"Talos API CIDR inside the internal network",
			func(c *Config) { c.Network.TalosAPICIDRs = []string{"10.10.0.5/32"} },
			"sda:network.talosApiCidrs[0]", "10.10.0.5/32", []string{"overlaps the internal network 10.10.0.0/24"}},
		{"admin CIDR inside the internal network",
			func(c *Config) { c.Network.AdminCIDRs = []string{"10.10.0.64/26"} },
			"sda:network.adminCidrs[0]", "10.10.0.64/26", []string{"overlaps the internal network 10.10.0.0/24", "192.168.1.0/24"}},
		{"admin CIDR covering the internal network",
			func(c *Config) { c.Network.AdminCIDRs = []string{"192.168.1.0/24", "10.10.0.0/16"} },
			"sda:network.adminCidrs[1]", "10.10.0.0/16", []string{"overlaps the internal network"}},
	})
	// Management ports with a real allowFrom, and other ports without, pass.
	c := valid()
	c.Network.PortForwards = []PortForward{
		{Name: "api", Port: 6443, Target: "lab-cp1", AllowFrom: []string{"192.168.1.0/24"}},
		{Name: "https", Port: 443, Target: "lab-worker1", TargetPort: 30443},
	}
	if _, _, err := Resolve(c); err != nil {
		t.Errorf("restricted management forward refused: %v", err)
	}
}

// AddressesCovered counts each address once, however the prefixes overlap
// or are spelled: the exposure rule refuses any set that covers all 2^32.
func TestAddressesCovered(t *testing.T) {
	for _, tc := range []struct {
		prefixes []string
		want     uint64
	}{
		{nil, 0},
		{[]string{"0.0.0.0/0"}, 1 << 32},
		{[]string{"0.0.0.0/1", "128.0.0.0/1"}, 1 << 32},
		{[]string{"128.0.0.0/1", "0.0.0.0/2", "64.0.0.0/2"}, 1 << 32},
		{[]string{"0.0.0.0/1", "128.0.0.0/2"}, 3 << 30},
		{[]string{"192.168.1.0/24", "192.168.1.128/25", "192.168.1.7/32"}, 256},
		{[]string{"10.0.0.0/8", "192.168.1.0/24"}, 1<<24 + 256},
		{[]string{"255.255.255.255/32", "0.0.0.0/32"}, 2},
	} {
		if got := AddressesCovered(parsePrefixes(tc.prefixes)); got != tc.want {
			t.Errorf("%v cover %d addresses, want %d", tc.prefixes, got, tc.want)
		}
	}
}
