package tests

import (
	"encoding/base64"
	"github.com/sda-platform/sda/stacks/inputs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/components/sdn"
	"github.com/sda-platform/sda/config"
)

func devPlan(t *testing.T) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := config.LoadStack(repoRoot, "dev")
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func TestInternalNetworkAlone(t *testing.T) {
	cases := []struct {
		name    string
		create  bool
		bridges int
	}{{"creates a bridge per Proxmox node", true, 3}, {"adopts an existing bridge", false, 0}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var bridge string
			m, err := run(t, "unit", func(ctx *pulumi.Context) error {
				n, err := components.NewInternalNetwork(ctx, "lab-net", &components.InternalNetworkArgs{
					Bridge: "vmbr7", ProxmoxNodes: []string{"a", "b", "c"}, Create: tc.create,
				})
				if err != nil {
					return err
				}
				res, err := internals.UnsafeAwaitOutput(ctx.Context(), n.BridgeOn("b"))
				bridge, _ = res.Value.(string)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			got := m.ofType("proxmoxve:Network/networkBridge:NetworkBridge")
			if len(got) != tc.bridges {
				t.Fatalf("%d bridges, want %d", len(got), tc.bridges)
			}
			for _, b := range got {
				if b.Inputs["name"].StringValue() != "vmbr7" || b.Inputs.HasValue("ports") || b.Inputs.HasValue("address") {
					t.Errorf("bridge %s must be vmbr7 with no ports and no host address: %v", b.Name, b.Inputs)
				}
			}
			if bridge != "vmbr7" {
				t.Fatalf("BridgeOn(b) = %q", bridge)
			}
		})
	}
}

// The multi-node modes: a VLAN port under every node's bridge, or one SDN
// command whose VNet is the bridge everywhere.
func TestInternalNetworkModes(t *testing.T) {
	t.Run("vlan", func(t *testing.T) {
		var bridge string
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			n, err := components.NewInternalNetwork(ctx, "lab-net", &components.InternalNetworkArgs{
				Bridge: "vmbr7", ProxmoxNodes: []string{"a", "b"}, Mode: components.NetworkModeVLAN,
				VLAN: &components.InternalVLANArgs{Uplink: "eno1", ID: 42},
			})
			if err != nil {
				return err
			}
			res, err := internals.UnsafeAwaitOutput(ctx.Context(), n.BridgeOn("b"))
			bridge, _ = res.Value.(string)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(m.ofType("proxmoxve:Network/networkVlan:NetworkVlan")); got != 2 {
			t.Fatalf("%d VLAN interfaces, want one per node (2)", got)
		}
		for _, node := range []string{"a", "b"} {
			vlan := m.named(t, "lab-net-vlan-"+node)
			for key, want := range map[string]string{"nodeName": node, "name": "eno1.42", "interface": "eno1"} {
				if got := vlan.Inputs[resource.PropertyKey(key)]; !got.IsString() || got.StringValue() != want {
					t.Errorf("%s %s = %v, want %s", vlan.Name, key, got, want)
				}
			}
			if got := vlan.Inputs["vlan"]; !got.IsNumber() || got.NumberValue() != 42 {
				t.Errorf("%s vlan = %v, want 42", vlan.Name, got)
			}
			br := m.named(t, "lab-net-"+node)
			ports := br.Inputs["ports"]
			if !ports.IsArray() || len(ports.ArrayValue()) != 1 || ports.ArrayValue()[0].StringValue() != "eno1.42" {
				t.Errorf("%s ports = %v, want [eno1.42]", br.Name, ports)
			}
			if !slices.Contains(br.Deps, vlan.URN) {
				t.Errorf("%s does not wait for its VLAN interface", br.Name)
			}
		}
		if bridge != "vmbr7" {
			t.Fatalf("BridgeOn(b) = %q", bridge)
		}
	})
	t.Run("vxlan", func(t *testing.T) {
		x := sdn.VXLAN{Zone: "zlab", VNet: "vlab", VNI: 7, Peers: []string{"10.0.0.1", "10.0.0.2"}, MTU: 1450, Nodes: []string{"a", "b"}}
		var bridge string
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			n, err := components.NewInternalNetwork(ctx, "lab-net", &components.InternalNetworkArgs{
				Bridge: "vlab", ProxmoxNodes: []string{"a", "b"}, Mode: components.NetworkModeVXLAN,
				VXLAN: &components.InternalVXLANArgs{Zone: x.Zone, VNet: x.VNet, VNI: x.VNI, Peers: x.Peers, MTU: x.MTU},
				SSH:   &components.ProxmoxSSH{Host: "10.0.0.1", User: "root", HostKey: testHostKey(t, "a")},
			})
			if err != nil {
				return err
			}
			res, err := internals.UnsafeAwaitOutput(ctx.Context(), n.BridgeOn("b"))
			bridge, _ = res.Value.(string)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(m.ofType("proxmoxve:Network/networkBridge:NetworkBridge")); got != 0 {
			t.Errorf("%d bridges created, want none (SDN makes the VNet's)", got)
		}
		cmd := m.named(t, "lab-net-sdn")
		for key, want := range map[string]string{"create": sdn.ApplyScript(x), "update": sdn.ApplyScript(x), "delete": sdn.DeleteScript(x)} {
			if got := cmd.Inputs[resource.PropertyKey(key)]; !got.IsString() || got.StringValue() != want {
				t.Errorf("sdn %s = %v, want\n%s", key, got, want)
			}
		}
		if host := connectionOf(cmd)["host"]; host.StringValue() != "10.0.0.1" {
			t.Errorf("sdn runs on %v, want 10.0.0.1", host)
		}
		if bridge != "vlab" {
			t.Fatalf("BridgeOn(b) = %q, want the VNet vlab", bridge)
		}
	})
	t.Run("vxlan refuses values unsafe in a script", func(t *testing.T) {
		_, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewInternalNetwork(ctx, "lab-net", &components.InternalNetworkArgs{
				ProxmoxNodes: []string{"a"}, Mode: components.NetworkModeVXLAN,
				VXLAN: &components.InternalVXLANArgs{Zone: "z;rm", VNet: "vlab", VNI: 7, Peers: []string{"10.0.0.1"}, MTU: 1450},
				SSH:   &components.ProxmoxSSH{Host: "10.0.0.1", HostKey: testHostKey(t, "a")},
			})
			return err
		})
		if err == nil || !strings.Contains(err.Error(), `zone "z;rm" is not an SDN ID`) {
			t.Fatalf("err = %v", err)
		}
	})
}

// routerArgs are the router's Args as SDA's stack builds them
// (stacks/inputs, then components.NewRouterLXCArgs), on test wiring: the
// component must render exactly what `sda render` renders from the same
// configuration (inputs.RouterFiles).
func routerArgs(t *testing.T, c config.Config, p config.Plan) *components.RouterLXCArgs {
	t.Helper()
	r, err := inputs.Router(c, p)
	if err != nil {
		t.Fatal(err)
	}
	args := components.NewRouterLXCArgs(r)
	args.VMID = 8001
	args.InternalBridge = pulumi.String("vmbr1")
	args.SSH = components.RouterSSH{Host: "192.168.1.10", User: "root", HostKey: testHostKey(t, "pve")}
	return args
}

// The router's configuration travels inside the command as base64 and is
// exactly what routerfiles renders; the container does not see the files,
// so a configuration change never touches (or recreates) the container.
func TestRouterLXCAlone(t *testing.T) {
	c, p := devPlan(t)
	spec, err := inputs.RouterFiles(c, p)
	if err != nil {
		t.Fatal(err)
	}
	files := routerfiles.Render(spec)
	registerWith := func(c config.Config, p config.Plan) *mocks {
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewRouterLXC(ctx, "lab-router", routerArgs(t, c, p))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := registerWith(c, p)

	// The template is fetched over https and checked by Proxmox against
	// its SHA-512; its resource is named after the file and keeps the name
	// routers created before had as an alias, so a deployed router's
	// template moves instead of being downloaded again.
	tmpl := m.named(t, "lab-router-template-debian-12-standard_12.7-1_amd64.tar.zst")
	if tmpl.Inputs["contentType"].StringValue() != "vztmpl" || tmpl.Inputs["url"].StringValue() != config.DefaultRouterTemplateURL ||
		tmpl.Inputs["checksum"].StringValue() != config.DefaultRouterTemplateChecksum || tmpl.Inputs["checksumAlgorithm"].StringValue() != "sha512" ||
		!tmpl.Inputs["overwriteUnmanaged"].BoolValue() {
		t.Errorf("template download: %v", tmpl.Inputs)
	}
	if want := "urn:pulumi:unit::sda::sda:index:RouterLXC$proxmoxve:Download/file:File::lab-router-template"; !slices.Contains(tmpl.Aliases, want) {
		t.Errorf("template aliases %v: want %s", tmpl.Aliases, want)
	}
	ct := m.named(t, "lab-router-ct")
	nics := ct.Inputs["networkInterfaces"].ArrayValue()
	if len(nics) != 2 || nics[0].ObjectValue()["bridge"].StringValue() != "vmbr0" || nics[1].ObjectValue()["bridge"].StringValue() != "vmbr1" {
		t.Fatalf("NICs: %v", nics)
	}
	ips := ct.Inputs["initialization"].ObjectValue()["ipConfigs"].ArrayValue()
	ext, in := ips[0].ObjectValue()["ipv4"].ObjectValue(), ips[1].ObjectValue()["ipv4"].ObjectValue()
	if ext["address"].StringValue() != "192.168.1.50/24" || ext["gateway"].StringValue() != "192.168.1.1" || in["address"].StringValue() != "10.10.0.1/24" {
		t.Fatalf("addresses: ext %v int %v", ext, in)
	}
	if in.HasValue("gateway") {
		t.Error("the internal NIC must not carry a default gateway")
	}

	script := decodePct(t, m.named(t, "lab-router-config").Inputs["create"].StringValue(), 8001)
	if want := routerfiles.ApplyScript(files, routerfiles.DebianLayout()); script != want {
		t.Errorf("the container runs a script other than routerfiles.ApplyScript of the rendered files:\n%.300s", script)
	}
	if !strings.Contains(ct.Inputs["initialization"].ObjectValue()["hostname"].StringValue(), "router") {
		t.Errorf("hostname: %v", ct.Inputs["initialization"])
	}
	if update := m.named(t, "lab-router-config").Inputs["update"].StringValue(); update != m.named(t, "lab-router-config").Inputs["create"].StringValue() {
		t.Error("a changed configuration must re-run the same script in place (update), not replace")
	}

	// Every node has a command of its own, after the main configuration,
	// that adds its entries and, deleted, removes them.
	cmds := m.ofType("command:remote:Command")
	if want := 2 + len(spec.Hosts); len(cmds) != want || len(spec.Hosts) != len(p.Machines()) {
		t.Fatalf("%d commands for %d hosts, want %d: packages, configuration, one per node", len(cmds), len(spec.Hosts), want)
	}
	checkHostCommands(t, m, "lab-router", 8001, spec.Hosts)

	// A changed port-forward changes the script only.
	c.Network.PortForwards = append(c.Network.PortForwards, config.PortForward{Name: "web", Protocol: "tcp", Port: 8080, Target: "dev-worker1", TargetPort: 80})
	m2 := registerWith(c, p)
	if m2.named(t, "lab-router-ct").Inputs.DeepEquals(ct.Inputs) == false {
		t.Error("container inputs changed with the router configuration")
	}
	if m2.named(t, "lab-router-config").Inputs["create"].StringValue() == m.named(t, "lab-router-config").Inputs["create"].StringValue() {
		t.Error("the apply script did not change with the configuration")
	}

	// Two more workers add their two commands and change nothing else.
	c.Cluster.Workers += 2
	c3, p3, err := config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	spec3, err := inputs.RouterFiles(c3, p3)
	if err != nil {
		t.Fatal(err)
	}
	m3 := registerWith(c3, p3)
	if got, want := len(m3.ofType("command:remote:Command")), len(m2.ofType("command:remote:Command"))+2; got != want {
		t.Errorf("%d commands with two more workers, want %d", got, want)
	}
	for _, r := range m2.res {
		if !m3.named(t, r.Name).Inputs.DeepEquals(r.Inputs) {
			t.Errorf("%s changed with two more workers", r.Name)
		}
	}
	checkHostCommands(t, m3, "lab-router", 8001, spec3.Hosts)
}

// checkHostCommands checks the router's command of every host: its name and
// parent, that it runs after the main configuration, and that Create and
// Delete run exactly HostScript and RemoveHostScript in the container.
func checkHostCommands(t *testing.T, m *mocks, router string, vmid int, hosts []routerfiles.Host) {
	t.Helper()
	comp, configured := m.named(t, router), m.named(t, router+"-config")
	for _, h := range hosts {
		cmd := m.named(t, router+"-host-"+h.Name)
		if cmd.Type != "command:remote:Command" || cmd.Parent != comp.URN {
			t.Errorf("%s: a %s under %s, want a command under %s", cmd.Name, cmd.Type, cmd.Parent, comp.URN)
		}
		if !slices.Contains(cmd.Deps, configured.URN) {
			t.Errorf("%s does not wait for %s (deps %v)", cmd.Name, configured.Name, cmd.Deps)
		}
		if got := decodePct(t, cmd.Inputs["create"].StringValue(), vmid); got != routerfiles.HostScript(h, routerfiles.DebianLayout()) {
			t.Errorf("%s creates with a script other than HostScript:\n%.300s", cmd.Name, got)
		}
		if got := decodePct(t, cmd.Inputs["delete"].StringValue(), vmid); got != routerfiles.RemoveHostScript(h, routerfiles.DebianLayout()) {
			t.Errorf("%s deletes with a script other than RemoveHostScript:\n%.300s", cmd.Name, got)
		}
	}
}

// A forward's protocol defaults to tcp and its target port to its port.
func TestRouterLXCForwardDefaults(t *testing.T) {
	c, p := devPlan(t)
	script := func(fw components.RouterForwardArgs) string {
		args := routerArgs(t, c, p)
		args.Forwards = []components.RouterForwardArgs{fw}
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewRouterLXC(ctx, "lab-router", args)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m.named(t, "lab-router-config").Inputs["create"].StringValue()
	}
	short := script(components.RouterForwardArgs{Name: "https", Port: 443, Target: "10.10.0.21"})
	if full := script(components.RouterForwardArgs{Name: "https", Protocol: "tcp", Port: 443, Target: "10.10.0.21", TargetPort: 443}); short != full {
		t.Error("a forward without protocol and target port renders otherwise than tcp to the same port")
	}
	if udp := script(components.RouterForwardArgs{Name: "https", Protocol: "udp", Port: 443, Target: "10.10.0.21"}); udp == short {
		t.Error("the protocol does not reach the rendered files")
	}
}

// Args the component cannot use are refused before anything is registered,
// with a message naming the field, the value and the fix.
func TestRouterLXCRefusesBadArgs(t *testing.T) {
	c, p := devPlan(t)
	with := func(mod func(a *components.RouterLXCArgs)) *components.RouterLXCArgs {
		a := routerArgs(t, c, p)
		mod(a)
		return a
	}
	for _, tc := range []struct {
		name string
		args *components.RouterLXCArgs
		want string
	}{
		{"a host twice", with(func(a *components.RouterLXCArgs) { a.Hosts = append(a.Hosts, a.Hosts[0]) }),
			`host "dev-cp1" is listed twice (Hosts[2]): give every host its own name`},
		{"internal address without prefix", with(func(a *components.RouterLXCArgs) { a.InternalAddress = "10.10.0.1" }),
			`InternalAddress = "10.10.0.1" is not an IPv4 CIDR: write the router's internal address with its prefix length, such as 10.10.0.1/24`},
		{"external address neither dhcp nor CIDR", with(func(a *components.RouterLXCArgs) { a.ExternalAddress = "DHCP" }),
			`ExternalAddress = "DHCP" is not an IPv4 CIDR: write "dhcp" or`},
		{"host outside the internal network", with(func(a *components.RouterLXCArgs) { a.Hosts[1].Address = "10.99.0.5" }),
			`Hosts[1].Address = 10.99.0.5 is outside the internal network 10.10.0.0/24 (InternalAddress): use an address inside it`},
		{"host address not an address", with(func(a *components.RouterLXCArgs) { a.Hosts[0].Address = "dev-cp1" }),
			`Hosts[0].Address = "dev-cp1" is not an IPv4 address: write one of the internal network 10.10.0.0/24, such as 10.10.0.1`},
		{"bad MAC", with(func(a *components.RouterLXCArgs) { a.Hosts[0].MAC = "02:00" }),
			`Hosts[0].MAC = "02:00" is not a MAC address`},
		{"no domain", with(func(a *components.RouterLXCArgs) { a.Domain = "" }), `Domain = "" is not a DNS domain`},
		// A newline would start a dnsmasq line of its own (dhcp-script=
		// runs a program as root); dnsmasq --test accepts it.
		{"domain with a newline", with(func(a *components.RouterLXCArgs) { a.Domain = "lab.internal\ndhcp-script=/tmp/x" }),
			`Domain = "lab.internal\ndhcp-script=/tmp/x" is not a DNS domain: write lowercase labels joined by dots`},
		{"host name with a ';'", with(func(a *components.RouterLXCArgs) { a.Hosts[0].Name = "dev-cp1;reboot" }),
			`Hosts[0].Name = "dev-cp1;reboot" is not a DNS label`},
		{"router host name with a space", with(func(a *components.RouterLXCArgs) { a.Hostname = "my router" }),
			`Hostname = "my router" is not a DNS label`},
		{"lease time with a newline", with(func(a *components.RouterLXCArgs) { a.DHCPLeaseTime = "12h\nport=0" }),
			`DHCPLeaseTime = "12h\nport=0" is not a dnsmasq lease time`},
		{"forward name with a quote", with(func(a *components.RouterLXCArgs) {
			a.Forwards = []components.RouterForwardArgs{{Name: `x" accept`, Port: 443, Target: "10.10.0.21"}}
		}), `Forwards[0].Name = "x\" accept" is not a DNS label`},
		{"DHCP range reversed", with(func(a *components.RouterLXCArgs) { a.DHCPStart, a.DHCPEnd = a.DHCPEnd, a.DHCPStart }),
			`DHCPEnd 10.10.0.192 is before DHCPStart 10.10.0.254: swap them`},
		{"upstream DNS by name", with(func(a *components.RouterLXCArgs) { a.UpstreamDNS = []string{"dns.google"} }),
			`UpstreamDNS[0] = "dns.google" is not an IPv4 address`},
		{"admin CIDR without prefix", with(func(a *components.RouterLXCArgs) { a.AdminCIDRs = []string{"192.168.1.7"} }),
			`AdminCIDRs[0] = "192.168.1.7" is not an IPv4 CIDR: write one such as 192.168.1.0/24`},
		{"forward protocol", with(func(a *components.RouterLXCArgs) {
			a.Forwards = []components.RouterForwardArgs{{Name: "x", Protocol: "sctp", Port: 1, Target: "10.10.0.21"}}
		}), `Forwards[0].Protocol = "sctp": use tcp or udp`},
		{"forward target outside", with(func(a *components.RouterLXCArgs) {
			a.Forwards = []components.RouterForwardArgs{{Name: "x", Port: 443, Target: "192.168.1.20"}}
		}), `Forwards[0].Target = 192.168.1.20 is outside the internal network`},
		{"forward allowFrom", with(func(a *components.RouterLXCArgs) {
			a.Forwards = []components.RouterForwardArgs{{Name: "x", Port: 443, Target: "10.10.0.21", AllowFrom: []string{"anyone"}}}
		}), `Forwards[0].AllowFrom[0] = "anyone" is not an IPv4 CIDR`},
		// Whoever answers on the host's address would get the root scripts.
		{"no host key", with(func(a *components.RouterLXCArgs) { a.SSH.HostKey = "" }),
			`SSH.HostKey is empty: pin the SSH host key of 192.168.1.10`},
		{"an RSA host key", with(func(a *components.RouterLXCArgs) {
			a.SSH.HostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"
		}), `SSH.HostKey is not an SSH public key`},
		{"template over http", with(func(a *components.RouterLXCArgs) {
			a.TemplateURL = "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst"
		}), `TemplateURL = "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst" is not the https:// URL`},
		{"template without checksum", with(func(a *components.RouterLXCArgs) { a.TemplateChecksum = "" }),
			`TemplateChecksum = "" is not a SHA-256, SHA-384 or SHA-512`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := run(t, "unit", func(ctx *pulumi.Context) error {
				_, err := components.NewRouterLXC(ctx, "lab-router", tc.args)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %s", err, tc.want)
			}
			for _, r := range m.res {
				if r.Type != "pulumi:pulumi:Stack" {
					t.Errorf("registered %s %s", r.Type, r.Name)
				}
			}
		})
	}
}

var pctRE = regexp.MustCompile(`^printf '%s' '([A-Za-z0-9+/=]+)' \| base64 -d \| pct exec (\d+) -- sh -s$`)

// decodePct checks the host-side command shape and returns the script that
// runs inside the container.
func decodePct(t *testing.T, cmd string, vmid int) string {
	t.Helper()
	m := pctRE.FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("not a pct exec command: %.120s", cmd)
	}
	if m[2] != strconv.Itoa(vmid) {
		t.Fatalf("pct exec targets %s, want %d", m[2], vmid)
	}
	b, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTalosNodeAlone(t *testing.T) {
	c, p := devPlan(t)
	for _, tc := range []struct{ disk, iface string }{{"scsi", "scsi0"}, {"virtio", "virtio0"}} {
		t.Run(tc.disk, func(t *testing.T) {
			w := p.Workers[0]
			m, err := run(t, "unit", func(ctx *pulumi.Context) error {
				_, err := components.NewTalosNode(ctx, "lab-worker1", &components.TalosNodeArgs{
					Node: components.TalosNodeSpec{Hostname: w.Hostname, Role: string(w.Role), ProxmoxNode: w.ProxmoxNode, VMID: w.VMID,
						MAC: w.MAC, Address: w.Address.String(), Cores: w.Size.Cores, MemoryMiB: w.Size.MemoryMiB, DiskGiB: w.Size.DiskGiB},
					Network:   components.TalosNetworkArgs{PrefixLen: 24, Gateway: "10.10.0.1", Domain: "sda.internal"},
					Datastore: "local-lvm", DiskInterface: tc.disk, CPUType: c.Nodes.CPUType,
					ImageFileID: pulumi.String("local:iso/talos.img"), Bridge: pulumi.String("vmbr1"),
					ClientConfiguration: machine.ClientConfigurationArgs{
						CaCertificate: pulumi.String("ca"), ClientCertificate: pulumi.String("crt"), ClientKey: pulumi.String("key"),
					},
					MachineConfiguration: pulumi.String("machine: {}"),
					ConfigPatches:        pulumi.StringArray{pulumi.String("machine:\n  network:\n    hostname: x\n")},
				})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			vm := m.named(t, "lab-worker1-vm").Inputs
			disk := vm["disks"].ArrayValue()[0].ObjectValue()
			if disk["interface"].StringValue() != tc.iface || disk["fileId"].StringValue() != "local:iso/talos.img" {
				t.Errorf("disk: %v", disk)
			}
			nic := vm["networkDevices"].ArrayValue()[0].ObjectValue()
			if nic["macAddress"].StringValue() != w.MAC || nic["bridge"].StringValue() != "vmbr1" {
				t.Errorf("nic: %v", nic)
			}
			ip := vm["initialization"].ObjectValue()["ipConfigs"].ArrayValue()[0].ObjectValue()["ipv4"].ObjectValue()
			if ip["address"].StringValue() != w.Address.String()+"/24" || ip["gateway"].StringValue() != "10.10.0.1" {
				t.Errorf("cloud-init address: %v", ip)
			}
			if vm["cpu"].ObjectValue()["type"].StringValue() != "host" || !vm["agent"].ObjectValue()["enabled"].BoolValue() {
				t.Errorf("cpu/agent: %v %v", vm["cpu"], vm["agent"])
			}
			if int(vm["vmId"].NumberValue()) != w.VMID {
				t.Errorf("vmId %v, want %d", vm["vmId"], w.VMID)
			}
			apply := m.named(t, "lab-worker1-config").Inputs
			if apply["node"].StringValue() != w.Address.String() || apply["endpoint"].StringValue() != w.Address.String() {
				t.Errorf("configuration apply must target the node's own address: %v", apply)
			}
		})
	}
}

// TalosNode and TalosCluster refuse host names and cluster names that are
// not DNS labels (the stack configuration's allow-list), before registering
// anything: a ';' in a hostname would otherwise reach the membership script.
func TestTalosComponentsRefuseHostileNames(t *testing.T) {
	cp := components.TalosNodeSpec{Hostname: "lab-cp1", Role: components.RoleControlPlane, Address: "10.10.0.11",
		MAC: "02:00:0a:0a:00:0b", ProxmoxNode: "pve", VMID: 8011}
	// cluster is a complete TalosCluster with one argument changed.
	cluster := func(change func(a *components.TalosClusterArgs)) func(ctx *pulumi.Context) error {
		return func(ctx *pulumi.Context) error {
			a := &components.TalosClusterArgs{ClusterName: "lab", TalosVersion: "v1.12.0", KubernetesVersion: "v1.35.0",
				Nodes: []components.TalosNodeSpec{cp}, Datastore: "local-lvm", ImageDatastore: "local", Bridge: pulumi.String("vmbr1"),
				Network: components.TalosNetworkArgs{Gateway: "10.10.0.1", PrefixLen: 24, Domain: "lab.internal"}}
			change(a)
			_, err := components.NewTalosCluster(ctx, "lab", a)
			return err
		}
	}
	for _, tc := range []struct {
		name string
		new  func(ctx *pulumi.Context) error
		want string
	}{
		{"node hostname with a ';'", func(ctx *pulumi.Context) error {
			n := cp
			n.Hostname = "lab-cp1;reboot"
			_, err := components.NewTalosNode(ctx, "lab-cp1", &components.TalosNodeArgs{Node: n})
			return err
		}, `Node.Hostname = "lab-cp1;reboot" is not a DNS label`},
		{"cluster node hostname with a newline", func(ctx *pulumi.Context) error {
			n := cp
			n.Hostname = "lab-cp1\nreboot"
			_, err := components.NewTalosCluster(ctx, "lab", &components.TalosClusterArgs{ClusterName: "lab",
				TalosVersion: "v1.12.0", KubernetesVersion: "v1.35.0", Nodes: []components.TalosNodeSpec{n}})
			return err
		}, `Nodes[0].Hostname = "lab-cp1\nreboot" is not a DNS label`},
		{"cluster node address not IPv4", func(ctx *pulumi.Context) error {
			n := cp
			n.Address = "10.10.0.11; reboot"
			_, err := components.NewTalosCluster(ctx, "lab", &components.TalosClusterArgs{ClusterName: "lab",
				TalosVersion: "v1.12.0", KubernetesVersion: "v1.35.0", Nodes: []components.TalosNodeSpec{n}})
			return err
		}, `Nodes[0].Address = "10.10.0.11; reboot" is not an IPv4 address`},
		{"cluster name with upper case", func(ctx *pulumi.Context) error {
			_, err := components.NewTalosCluster(ctx, "lab", &components.TalosClusterArgs{ClusterName: "Lab",
				TalosVersion: "v1.12.0", KubernetesVersion: "v1.35.0", Nodes: []components.TalosNodeSpec{cp}})
			return err
		}, `ClusterName = "Lab" is not a DNS label`},
		// Values that reach Talos patches, the schematic or Proxmox paths.
		{"domain with a newline", cluster(func(a *components.TalosClusterArgs) { a.Network.Domain = "lab.internal\nmachine: {}" }),
			`Network.Domain = "lab.internal\nmachine: {}" is not a DNS domain`},
		{"gateway not an address", cluster(func(a *components.TalosClusterArgs) { a.Network.Gateway = "10.10.0.1 # x" }),
			`Network.Gateway = "10.10.0.1 # x" is not an IPv4 address`},
		{"VIP not an address", cluster(func(a *components.TalosClusterArgs) { a.Network.VIP = "vip" }),
			`Network.VIP = "vip" is not an IPv4 address`},
		{"extension with a newline", cluster(func(a *components.TalosClusterArgs) {
			a.Extensions = []string{"siderolabs/qemu-guest-agent\n    - evil/x"}
		}), `Extensions[0] = "siderolabs/qemu-guest-agent\n    - evil/x" is not an Image Factory extension`},
		{"certificate name with a space", cluster(func(a *components.TalosClusterArgs) { a.CertSANs = []string{"api lab"} }),
			`CertSANs[0] = "api lab" is neither an IP address nor a DNS name`},
		{"Talos version not a release", cluster(func(a *components.TalosClusterArgs) { a.TalosVersion = "latest" }),
			`TalosVersion = "latest" is not a Talos release`},
		{"MAC not a MAC", cluster(func(a *components.TalosClusterArgs) { a.Nodes[0].MAC = "02:00" }),
			`Nodes[0].MAC = "02:00" is not a MAC address`},
		{"Proxmox node with a slash", cluster(func(a *components.TalosClusterArgs) { a.Nodes[0].ProxmoxNode = "pve/../x" }),
			`Nodes[0].ProxmoxNode = "pve/../x" is not a Proxmox node name`},
		{"datastore with a slash", cluster(func(a *components.TalosClusterArgs) { a.Datastore = "local/x" }),
			`Datastore = "local/x"`},
		{"an RSA host key", cluster(func(a *components.TalosClusterArgs) {
			a.ProxmoxHostKeys = []components.ProxmoxHostKeyArgs{{Node: "pve", Address: "192.168.1.10", HostKey: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"}}
		}), `ProxmoxHostKeys[0].HostKey`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := run(t, "unit", tc.new)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %s", err, tc.want)
			}
			for _, r := range m.res {
				if r.Type != "pulumi:pulumi:Stack" {
					t.Errorf("registered %s %s", r.Type, r.Name)
				}
			}
		})
	}
}
