package config

import (
	"errors"
	"strings"
	"testing"
)

// threeNodes is a valid configuration whose guests land on three Proxmox
// nodes (control planes round-robin), in the given mode.
func threeNodes(mode string) Config {
	c := valid()
	c.Cluster.ControlPlanes, c.Cluster.VIP = 3, "10.10.0.10"
	c.Proxmox.Nodes = []ProxmoxNode{{Name: "pve1", SSHHost: "192.0.2.11"}, {Name: "pve2", SSHHost: "192.0.2.12"}, {Name: "pve3", SSHHost: "192.0.2.13"}}
	c.Network.Internal.Mode = mode
	switch mode {
	case ModeVLAN:
		c.Network.Internal.VLAN = &InternalVLAN{Uplink: "eno1", ID: 42}
	case ModeVXLAN:
		c.Network.Internal.VXLAN = &InternalVXLAN{VNI: 4242}
	}
	return c
}

// Each mode is refused where it cannot work, with the key, the value and
// the fix, before anything is created.
func TestNetworkModeRefusals(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*Config)
		key    string
		value  string
		fixHas []string
	}{
		{"portless bridge across nodes", func(c *Config) { *c = threeNodes(ModeBridge) },
			"sda:network.internal.mode", "bridge", []string{"pve1, pve2, pve3", `"vlan"`, `"vxlan"`, `"existing"`}},
		{"old createBridge default across nodes", func(c *Config) { *c = threeNodes(""); c.Network.Internal.Mode = "" },
			"sda:network.internal.mode", "bridge", []string{"separate segments"}},
		{"unknown mode", func(c *Config) { c.Network.Internal.Mode = "sdn" }, "sda:network.internal.mode", "sdn", []string{"bridge, vlan, vxlan, existing"}},
		{"mode and createBridge", func(c *Config) {
			f := false
			c.Network.Internal.Mode = ModeExisting
			c.Network.Internal.CreateBridge = &f
		},
			"sda:network.internal.createBridge", "false", []string{"remove it"}},
		{"vlan without uplink", func(c *Config) { *c = threeNodes(ModeVLAN); c.Network.Internal.VLAN.Uplink = "" },
			"sda:network.internal.vlan.uplink", "", []string{"eno1"}},
		{"vlan tag out of range", func(c *Config) { *c = threeNodes(ModeVLAN); c.Network.Internal.VLAN.ID = 4095 },
			"sda:network.internal.vlan.id", "4095", []string{"1 to 4094"}},
		{"vlan block missing", func(c *Config) { *c = threeNodes(ModeVLAN); c.Network.Internal.VLAN = nil },
			"sda:network.internal.vlan.id", "0", []string{"1 to 4094"}},
		{"VLAN interface name over 15 characters", func(c *Config) {
			*c = threeNodes(ModeVLAN)
			c.Network.Internal.VLAN = &InternalVLAN{Uplink: "enp129s0f1np1", ID: 120}
		},
			"sda:network.internal.vlan.uplink", "enp129s0f1np1", []string{"enp129s0f1np1.120", "17 characters", "15"}},
		{"vxlan VNI zero", func(c *Config) { *c = threeNodes(ModeVXLAN); c.Network.Internal.VXLAN.VNI = 0 },
			"sda:network.internal.vxlan.vni", "0", []string{"16777215"}},
		{"vxlan zone too long", func(c *Config) { *c = threeNodes(ModeVXLAN); c.Network.Internal.VXLAN.Zone = "production" },
			"sda:network.internal.vxlan.zone", "production", []string{"8 at most"}},
		{"vxlan MTU above the underlay's room", func(c *Config) { *c = threeNodes(ModeVXLAN); c.Network.Internal.MTU = 1500 },
			"sda:network.internal.mtu", "1500", []string{"at most 1450"}},
		{"vxlan peer is a host name", func(c *Config) { *c = threeNodes(ModeVXLAN); c.Proxmox.Nodes[1].SSHHost = "pve2.lan" },
			"sda:proxmox.nodes[1].sshHost", "pve2.lan", []string{"clusterAddress"}},
		{"vxlan peer override must be IPv4", func(c *Config) { *c = threeNodes(ModeVXLAN); c.Proxmox.Nodes[2].ClusterAddress = "fd00::3" },
			"sda:proxmox.nodes[2].clusterAddress", "fd00::3", []string{"IPv4"}},
		{"MTU below IPv6's minimum", func(c *Config) { *c = threeNodes(ModeExisting); c.Network.Internal.MTU = 1200 },
			"sda:network.internal.mtu", "1200", []string{"1280"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			_, _, err := Resolve(c)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want a configuration error, got %v", err)
			}
			for _, p := range e.Problems {
				if p.Key == tc.key && p.Value == tc.value {
					for _, want := range tc.fixHas {
						if !strings.Contains(p.Fix, want) {
							t.Errorf("fix %q should mention %q", p.Fix, want)
						}
					}
					return
				}
			}
			t.Fatalf("no problem for %s = %q in %v", tc.key, tc.value, err)
		})
	}
}

// What each mode plans: the bridge guests attach to, the MTU, and the mode's
// own values (VLAN interface, VXLAN peers in node order).
func TestNetworkModePlans(t *testing.T) {
	c0, p, err := Resolve(valid())
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Network; n.Mode != ModeBridge || n.MTU != 1500 || n.Spread() || n.Bridge != c0.Network.Internal.Bridge {
		t.Errorf("single node: %+v", n)
	}

	_, p, err = Resolve(threeNodes(ModeVLAN))
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Network; n.Mode != ModeVLAN || n.VLAN.Interface != "eno1.42" || n.MTU != 1500 || strings.Join(n.Nodes, ",") != "pve1,pve2,pve3" {
		t.Errorf("vlan: %+v %+v", n, n.VLAN)
	}

	c := threeNodes(ModeVXLAN)
	c.Proxmox.Nodes[1].ClusterAddress = "198.51.100.12"
	_, p, err = Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	n := p.Network
	if n.Mode != ModeVXLAN || n.MTU != 1450 || n.VXLAN.UnderlayMTU != 1500 || n.VXLAN.VNI != 4242 {
		t.Errorf("vxlan: %+v %+v", n, n.VXLAN)
	}
	// Named after the cluster ("lab") unless set.
	if n.VXLAN.Zone != "zlab" || n.VXLAN.VNet != "vlab" || n.Bridge != "vlab" {
		t.Errorf("vxlan names: zone %s vnet %s bridge %s", n.VXLAN.Zone, n.VXLAN.VNet, n.Bridge)
	}
	var peers []string
	for _, pe := range n.VXLAN.Peers {
		peers = append(peers, pe.Node+"="+pe.Address.String())
	}
	if got := strings.Join(peers, " "); got != "pve1=192.0.2.11 pve2=198.51.100.12 pve3=192.0.2.13" {
		t.Errorf("peers %s", got)
	}
	if d := n.Describe(); !strings.Contains(d, "VXLAN zone zlab, VNet vlab (VNI 4242") || !strings.Contains(d, "MTU 1450 (underlay 1500)") {
		t.Errorf("describe: %s", d)
	}
}
