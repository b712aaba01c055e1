package config

import (
	"strings"
	"testing"
)

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
