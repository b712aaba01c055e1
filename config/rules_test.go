package config

import (
	"net/netip"
	"strings"
	"testing"
)

// ruleCase breaks valid() one way and expects exactly one problem: its key,
// its value and words of its fix.
type ruleCase struct {
	name     string
	edit     func(*Config)
	key, val string
	fix      []string
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			_, _, err := Resolve(c)
			if err == nil {
				t.Fatal("accepted")
			}
			problems := err.(*Error).Problems
			if len(problems) != 1 {
				t.Fatalf("want one problem, got %d:\n%v", len(problems), err)
			}
			p := problems[0]
			if p.Key != tc.key || p.Value != tc.val {
				t.Errorf("problem %s = %q, want %s = %q", p.Key, p.Value, tc.key, tc.val)
			}
			for _, w := range tc.fix {
				if !strings.Contains(p.Fix, w) {
					t.Errorf("fix lacks %q: %s", w, p.Fix)
				}
			}
		})
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

func TestVersionRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"Kubernetes too new for Talos 1.12",
			func(c *Config) { c.Cluster.KubernetesVersion = "v1.36.2" },
			"sda:cluster.kubernetesVersion", "v1.36.2",
			[]string{"too new", "Talos v1.12.0, which supports Kubernetes 1.30 to 1.35", "v1.35.0"}},
		{"Kubernetes too old for Talos 1.12",
			func(c *Config) { c.Cluster.KubernetesVersion = "v1.27.4" },
			"sda:cluster.kubernetesVersion", "v1.27.4",
			[]string{"too old", "1.30 to 1.35", "a Talos release that supports v1.27.4: v1.4, v1.5, v1.6, v1.7, v1.8, v1.9"}},
		{"older Talos with a Kubernetes it predates",
			func(c *Config) { c.Cluster.TalosVersion, c.Cluster.KubernetesVersion = "v1.9.5", "v1.34.1" },
			"sda:cluster.kubernetesVersion", "v1.34.1",
			[]string{"too new for Talos v1.9.5, which supports Kubernetes 1.27 to 1.32", "supports v1.34.1: v1.11, v1.12"}},
		{"Talos release machinery does not know",
			func(c *Config) { c.Cluster.TalosVersion = "v1.14.0" },
			"sda:cluster.talosVersion", "v1.14.0",
			[]string{"for Talos v1.2 to v1.12 only", DefaultTalosVersion}},
		{"Talos 2.x",
			func(c *Config) { c.Cluster.TalosVersion = "v2.0.0" },
			"sda:cluster.talosVersion", "v2.0.0", []string{"v1.12"}},
	})
	// Matching pairs pass.
	for _, pair := range [][2]string{{"v1.12.1", "v1.30.0"}, {"v1.11.5", "v1.34.3"}, {"v1.10.0", "v1.33.0"}} {
		c := valid()
		c.Cluster.TalosVersion, c.Cluster.KubernetesVersion = pair[0], pair[1]
		if _, _, err := Resolve(c); err != nil {
			t.Errorf("Talos %s with Kubernetes %s refused: %v", pair[0], pair[1], err)
		}
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

func TestProviderConfigRules(t *testing.T) {
	base := map[string]string{"proxmoxve:endpoint": "https://pve:8006/", "proxmoxve:apiToken": "root@pam!sda=x", "sda:sshPrivateKey": "KEY"}
	for _, tc := range []struct {
		name  string
		set   map[string]string
		env   map[string]string
		want  []string // keys of the problems
		value string
	}{
		{"complete", nil, nil, nil, ""},
		{"token without SSH key or agent", map[string]string{"sda:sshPrivateKey": ""}, nil, []string{"sda:sshPrivateKey"}, ""},
		{"token from the environment without SSH", map[string]string{"proxmoxve:apiToken": "", "sda:sshPrivateKey": ""},
			map[string]string{"PROXMOX_VE_API_TOKEN": "t"}, []string{"sda:sshPrivateKey"}, ""},
		{"agent instead of a key", map[string]string{"sda:sshPrivateKey": ""}, map[string]string{"SSH_AUTH_SOCK": "/run/agent"}, nil, ""},
		{"provider's own ssh block", map[string]string{"proxmoxve:ssh": `{"username":"root","privateKey":"SECRET"}`}, nil,
			[]string{"proxmoxve:ssh"}, "(set)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]string{}
			for k, v := range base {
				values[k] = v
			}
			for k, v := range tc.set {
				values[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := values[k]; return v, ok }
			getenv := func(k string) string { return tc.env[k] }
			got := CheckProviderConfig(lookup, getenv)
			var keys []string
			for _, p := range got {
				keys = append(keys, p.Key)
				if strings.Contains(p.Value, "SECRET") {
					t.Errorf("%s echoes a secret: %q", p.Key, p.Value)
				}
			}
			if strings.Join(keys, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
			if tc.value != "" && got[0].Value != tc.value {
				t.Errorf("value %q, want %q", got[0].Value, tc.value)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		keys   []string
		reason string
	}{
		{"admins listed, the Talos API narrowed to the deployer", func(c *Config) {
			c.Network.AdminCIDRs, c.Network.TalosAPICIDRs = []string{"192.168.1.0/24"}, []string{"192.168.1.5/32"}
		}, nil, ""},
		{"the Talos API open to the admins' network (maintenance mode)",
			func(c *Config) { c.Network.AdminCIDRs = []string{"192.168.1.0/24"} },
			[]string{"sda:network.adminCidrs"}, "256 addresses may reach the Talos API (50000), and a node in maintenance mode"},
		{"talosApiCidrs wider than one address",
			func(c *Config) {
				c.Network.AdminCIDRs, c.Network.TalosAPICIDRs = []string{"192.168.1.0/24"}, []string{"192.168.1.4/30"}
			},
			[]string{"sda:network.talosApiCidrs"}, "4 addresses may reach the Talos API"},
		{"no admin CIDR", func(c *Config) {}, []string{"sda:network.adminCidrs"}, "unless Pulumi runs on the internal network"},
		{"admin CIDR wider than the external network",
			func(c *Config) {
				c.Network.AdminCIDRs, c.Network.TalosAPICIDRs = []string{"192.168.0.0/16"}, []string{"192.168.1.5/32"}
			},
			[]string{"sda:network.adminCidrs[0]"}, "wider than the external network 192.168.1.0/24"},
		{"port-forward on a DHCP address",
			func(c *Config) {
				c.Network.AdminCIDRs = []string{"192.168.1.0/24"}
				c.Network.TalosAPICIDRs = []string{"192.168.1.5/32"}
				c.Network.External = External{CIDR: "192.168.1.0/24", RouterAddress: "dhcp"}
				c.Network.PortForwards = []PortForward{{Name: "web", Port: 80, Target: "lab-worker1"}}
			},
			[]string{"sda:network.external.routerAddress"}, "web"},
		{"a management forward admitting more than the external network",
			func(c *Config) {
				c.Network.AdminCIDRs = []string{"192.168.1.0/24"}
				c.Network.TalosAPICIDRs = []string{"192.168.1.5/32"}
				c.Network.PortForwards = []PortForward{{Name: "api", Port: 6443, Target: "lab-cp1", AllowFrom: []string{"192.168.1.0/24", "172.16.0.0/23"}}}
			},
			[]string{"sda:network.portForwards[0].allowFrom"}, "together admit 768 addresses, more than the external network 192.168.1.0/24 holds, to the Kubernetes API"},
		{"VXLAN peers on the external network",
			func(c *Config) {
				*c = threeNodes(ModeVXLAN)
				c.Network.AdminCIDRs = []string{"192.168.1.0/24"}
				c.Network.TalosAPICIDRs = []string{"192.168.1.5/32"}
				c.Proxmox.Nodes[1].ClusterAddress = "192.168.1.12"
			},
			[]string{"sda:proxmox.nodes[].clusterAddress"}, "VXLAN peers on the external network 192.168.1.0/24: VXLAN has no authentication, so any host there can send UDP 4789 with VNI 4242"},
		{"VXLAN peers on a network of their own",
			func(c *Config) {
				*c = threeNodes(ModeVXLAN)
				c.Network.AdminCIDRs = []string{"192.168.1.0/24"}
				c.Network.TalosAPICIDRs = []string{"192.168.1.5/32"}
			},
			nil, ""},
		{"allowFrom inside the internal network",
			func(c *Config) {
				c.Network.AdminCIDRs = []string{"192.168.1.5/32"}
				c.Network.TalosAPICIDRs = []string{"192.168.1.5/32"}
				c.Network.PortForwards = []PortForward{{Name: "web", Port: 80, Target: "lab-worker1", AllowFrom: []string{"10.10.0.0/25"}}}
			},
			[]string{"sda:network.portForwards[0].allowFrom[0]"}, "external sources only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			c, p, err := Resolve(c)
			if err != nil {
				t.Fatal(err)
			}
			got := Warnings(c, p)
			var keys []string
			for _, w := range got {
				keys = append(keys, w.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tc.keys, ",") {
				t.Fatalf("warnings %v, want keys %v", got, tc.keys)
			}
			if tc.reason != "" && !strings.Contains(got[0].Reason, tc.reason) {
				t.Errorf("reason lacks %q: %s", tc.reason, got[0].Reason)
			}
		})
	}
}
