package spec

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
)

func router() Router {
	return Router{
		ProxmoxNode: "pve", VMID: 8001, Hostname: "router", Cores: 1, MemoryMiB: 256, DiskGiB: 4,
		Datastore: "local-lvm", TemplateDatastore: "local",
		TemplateURL:      "https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst",
		TemplateChecksum: strings.Repeat("ab", 64),
		ExternalBridge:   "vmbr0", ExternalAddress: "192.168.1.50/24", ExternalGateway: "192.168.1.1",
		InternalAddress: "10.10.0.1/24", UpstreamDNS: []string{"1.1.1.1"}, Domain: "lab.internal",
		DHCPStart: "10.10.0.100", DHCPEnd: "10.10.0.200",
		Hosts:    []RouterHost{{Name: "cp1", Address: "10.10.0.11", MAC: "02:00:0a:0a:00:0b", ControlPlane: true}},
		Forwards: []RouterForward{{Name: "https", Port: 443, Target: "10.10.0.11"}},
	}
}

// Files parses the router's strings into what routerfiles renders, with
// the component's defaults: the Debian layout and interfaces, a 12h
// lease, tcp and the published port for a forward that names neither.
func TestRouterFiles(t *testing.T) {
	s, err := router().Files()
	if err != nil {
		t.Fatal(err)
	}
	layout := routerfiles.DebianLayout()
	checks := []struct {
		name      string
		got, want any
	}{
		{"internal", s.Internal, netip.MustParsePrefix("10.10.0.0/24")},
		{"router internal", s.RouterInternal, netip.MustParseAddr("10.10.0.1")},
		{"external", s.External, netip.MustParsePrefix("192.168.1.0/24")},
		{"router external", s.RouterExternal, netip.MustParseAddr("192.168.1.50")},
		{"lease", s.LeaseTime, routerfiles.DefaultLeaseTime},
		{"interfaces", s.ExternalInterface + "/" + s.InternalInterface, routerfiles.ExternalInterface + "/" + routerfiles.InternalInterface},
		{"hosts dir", s.HostsDir, layout.HostsDir},
		{"host", s.Hosts[0], routerfiles.Host{Name: "cp1", Domain: "lab.internal", Address: netip.MustParseAddr("10.10.0.11"), MAC: "02:00:0a:0a:00:0b", ControlPlane: true}},
		{"forward protocol", s.Forwards[0].Protocol, "tcp"},
		{"forward target port", s.Forwards[0].TargetPort, 443},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	dhcp := router()
	dhcp.ExternalAddress = ExternalAddressDHCP
	if s, err := dhcp.Files(); err != nil || s.RouterExternal.IsValid() {
		t.Errorf("an external address by DHCP has no static address: %v, %v", s.RouterExternal, err)
	}
}

// Each bad input is refused with the field, the value and the fix.
func TestRouterFilesRefuses(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Router)
		want string
	}{
		{func(r *Router) { r.TemplateURL = "http://x/t.tar.zst" }, `TemplateURL = "http://x/t.tar.zst" is not the https:// URL`},
		{func(r *Router) { r.DHCPLeaseTime = "12 hours" }, `DHCPLeaseTime = "12 hours" is not a dnsmasq lease time`},
		{func(r *Router) { r.DHCPStart, r.DHCPEnd = "10.10.0.200", "10.10.0.100" }, "DHCPEnd 10.10.0.100 is before DHCPStart 10.10.0.200: swap them"},
		{func(r *Router) { r.Forwards[0].Target = "10.99.0.1" }, "Forwards[0].Target = 10.99.0.1 is outside the internal network 10.10.0.0/24"},
		{func(r *Router) { r.Forwards[0].Protocol = "sctp" }, `Forwards[0].Protocol = "sctp": use tcp or udp`},
		{func(r *Router) { r.AdminCIDRs = []string{"10.0.0.1"} }, `AdminCIDRs[0] = "10.0.0.1" is not an IPv4 CIDR`},
		{func(r *Router) { r.Hosts = append(r.Hosts, r.Hosts[0]) }, `host "cp1" is listed twice (Hosts[1])`},
	} {
		r := router()
		tc.mod(&r)
		if _, err := r.Files(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

func cluster() Cluster {
	return Cluster{
		ClusterName: "lab", TalosVersion: "v1.12.0", KubernetesVersion: "v1.35.0",
		Nodes: []Node{
			{Hostname: "w1", Role: RoleWorker, ProxmoxNode: "pve", VMID: 9101, MAC: "02:00:0a:0a:00:15", Address: "10.10.0.21"},
			{Hostname: "cp1", Role: RoleControlPlane, ProxmoxNode: "pve", VMID: 9001, MAC: "02:00:0a:0a:00:0b", Address: "10.10.0.11"},
		},
		Network:   Network{Gateway: "10.10.0.1", PrefixLen: 24, Domain: "lab.internal"},
		Datastore: "local-lvm", ImageDatastore: "local",
		Patches: []Patch{{Name: "mine", Content: "machine:\n  sysctls:\n    a.b: \"1\"\n"}},
	}
}

// The cluster's derived views: control planes first, the API on the
// first control plane without a VIP and on the VIP with one, the CPU
// type's default, and the patches' view carrying every input.
func TestClusterViews(t *testing.T) {
	c := cluster()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if o := c.Ordered(); o[0].Hostname != "cp1" || o[1].Hostname != "w1" {
		t.Errorf("Ordered = %v: control planes first", o)
	}
	if got := c.Endpoint(); got != "https://10.10.0.11:6443" {
		t.Errorf("Endpoint = %s without a VIP", got)
	}
	c.Network.VIP = "10.10.0.10"
	if got := c.APIAddress(); got != "10.10.0.10" {
		t.Errorf("APIAddress = %s with a VIP", got)
	}
	if got := c.EffectiveCPUType(); got != DefaultCPUType {
		t.Errorf("EffectiveCPUType = %s", got)
	}
	pc := c.PatchCluster("img:1")
	if pc.APIAddress != "10.10.0.10" || pc.InstallerImage != "img:1" || pc.SchedulableControlPlanes || pc.Gateway != "10.10.0.1" ||
		len(pc.Extra) != 1 || pc.Extra[0].Source != "mine" {
		t.Errorf("PatchCluster = %+v", pc)
	}
	if got := c.RebootingPatches(); got != "" {
		t.Errorf("a sysctl applies live, yet RebootingPatches = %q", got)
	}
}

func TestClusterValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Cluster)
		want string
	}{
		{func(c *Cluster) { c.Nodes[0].Hostname = "W1" }, `Nodes[0].Hostname = "W1" is not a DNS label`},
		{func(c *Cluster) { c.Nodes[1].Role = RoleWorker }, "at least one control-plane node is required"},
		{func(c *Cluster) { c.TalosVersion = "1.12.0" }, `TalosVersion = "1.12.0" is not a Talos release`},
		{func(c *Cluster) { c.Network.MTU = 100 }, "Network.MTU = 100: use 1280 to 9000"},
		{func(c *Cluster) { c.Extensions = []string{"qemu"} }, `Extensions[0] = "qemu" is not an Image Factory extension`},
		{func(c *Cluster) { c.Datastore = "9x" }, `Datastore = "9x"`},
	} {
		c := cluster()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// The network's mode follows Create when Mode is empty, and each mode's
// required inputs are checked.
func TestInternalNetworkModes(t *testing.T) {
	if got := (InternalNetwork{Create: true}).EffectiveMode(); got != NetworkModeBridge {
		t.Errorf("Create without Mode = %s", got)
	}
	if got := (InternalNetwork{}).EffectiveMode(); got != NetworkModeExisting {
		t.Errorf("neither = %s", got)
	}
	for _, tc := range []struct {
		n    InternalNetwork
		want string
	}{
		{InternalNetwork{Mode: NetworkModeBridge}, "Bridge is required"},
		{InternalNetwork{Mode: NetworkModeVLAN, Bridge: "vmbr1", VLAN: &VLAN{Uplink: "eno1", ID: 5000}}, "VLAN.ID (1-4094)"},
		{InternalNetwork{Mode: NetworkModeVXLAN, VXLAN: &VXLAN{Zone: "z"}}, "vxlan mode needs VXLAN and SSH.Host"},
		{InternalNetwork{Mode: "sdn"}, `Mode = "sdn"`},
	} {
		if _, err := tc.n.SDN(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.n, err, tc.want)
		}
	}
}

func TestOverlay(t *testing.T) {
	off := false
	if err := (Overlay{CNI: "cilium"}).Validate(); err == nil || !strings.Contains(err.Error(), "CiliumVersion is required") {
		t.Errorf("cilium without a version: %v", err)
	}
	if (Overlay{CNI: "cilium", KubeProxyReplacement: &off}).KubeProxyReplacementEnabled() || !(Overlay{}).KubeProxyReplacementEnabled() {
		t.Error("KubeProxyReplacement defaults to true and follows an explicit false")
	}
	if (Overlay{CNI: "flannel"}).MachinePatch() != "" || (Overlay{CNI: "cilium"}).MachinePatch() == "" {
		t.Error("only Cilium needs a machine patch")
	}
}
