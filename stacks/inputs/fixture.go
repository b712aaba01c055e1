package inputs

import "github.com/sda-platform/sda/config"

// RouterFixture is the stack the router tests render (stacks/inputs' and
// components/routerfiles'): three control planes behind a VIP, two workers,
// a static external address and three kinds of port-forward. Unresolved:
// tests adjust it, then call config.Resolve.
func RouterFixture() config.Config {
	return config.Config{
		Cluster: config.Cluster{Name: "t", ControlPlanes: 3, Workers: 2, VIP: "10.30.0.10"},
		Proxmox: config.Proxmox{Nodes: []config.ProxmoxNode{{Name: "pve"}}},
		Network: config.Network{
			External:   config.External{CIDR: "192.0.2.0/24", RouterAddress: "192.0.2.5", Gateway: "192.0.2.1"},
			Internal:   config.Internal{CIDR: "10.30.0.0/24", Domain: "t.internal"},
			DNSServers: []string{"192.0.2.54", "192.0.2.53"},
			AdminCIDRs: []string{"198.51.100.0/24"},
			PortForwards: []config.PortForward{
				{Name: "https", Port: 443, Target: "t-worker1", TargetPort: 30443},
				{Name: "syslog", Protocol: "udp", Port: 514, Target: "10.30.0.50", AllowFrom: []string{"198.51.100.7/32", "203.0.113.0/24"}},
				{Name: "kube", Port: 6443, Target: "vip", AllowFrom: []string{"198.51.100.0/24"}},
			},
		},
	}
}
