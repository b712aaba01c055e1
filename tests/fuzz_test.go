package tests

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/grammar"
)

// FuzzRouterLXCArgs feeds hostile strings to every RouterLXC argument that
// reaches a shell, dnsmasq, nftables or a URL: the component never panics;
// it either refuses, naming the argument, before registering anything, or
// accepts only values its grammar allows. `go test` runs the seeds below
// and the corpus in testdata/fuzz/FuzzRouterLXCArgs; `go test -fuzz
// FuzzRouterLXCArgs ./tests` explores further.
func FuzzRouterLXCArgs(f *testing.F) {
	ok := []string{"sda.internal", "router", "dev-cp1", "12h", "https", "192.168.1.0/24",
		"https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst",
		strings.Repeat("a", 128), "pin"}
	f.Add(ok[0], ok[1], ok[2], ok[3], ok[4], ok[5], ok[6], ok[7], ok[8])
	for i, hostile := range []string{"lab.internal\ndhcp-script=/tmp/x", "r;reboot", "cp1$(id)", "12h\nport=0",
		`x" accept`, "0.0.0.0/0\n", "http://example.test/x.tar.zst", "d41d8cd98f00b204e9800998ecf8427e", "ssh-rsa AAAA\nssh-ed25519 AAAA"} {
		seed := append([]string(nil), ok...)
		seed[i] = hostile
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7], seed[8])
	}
	f.Fuzz(func(t *testing.T, domain, hostname, host0, lease, forward, allowFrom, url, checksum, hostKey string) {
		c, p := devPlan(t)
		args := routerArgs(t, c, p)
		args.Domain, args.Hostname, args.Hosts[0].Name, args.DHCPLeaseTime = domain, hostname, host0, lease
		args.Forwards = []components.RouterForwardArgs{{Name: forward, Port: 443, Target: args.Hosts[0].Address, AllowFrom: []string{allowFrom}}}
		args.TemplateURL, args.TemplateChecksum = url, checksum
		if hostKey != "pin" {
			args.SSH.HostKey = hostKey
		}
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewRouterLXC(ctx, "lab-router", args)
			return err
		})
		if err != nil && [9]string{domain, hostname, host0, lease, forward, allowFrom, url, checksum, hostKey} == [9]string(ok) {
			t.Fatalf("the valid seed was refused: %v", err)
		}
		if err != nil {
			refusedNamingArgument(t, m, err, "Domain", "Hostname", "Hosts[0].Name", "DHCPLeaseTime", "Forwards[0]", "TemplateURL", "TemplateChecksum", "SSH.HostKey")
			return
		}
		// Accepted: every value passed its grammar, so none can start a
		// new line in dnsmasq's configuration or end a shell word.
		_, keyErr := grammar.SSHHostKey(args.SSH.HostKey)
		_, sumOK := grammar.ChecksumAlgorithm(checksum)
		if !grammar.Domain(domain) || !grammar.DNSLabel(hostname) || !grammar.DNSLabel(host0) || !grammar.LeaseTime(lease) ||
			!grammar.DNSLabel(forward) || !grammar.TemplateURL(url) || !sumOK || keyErr != nil {
			t.Errorf("accepted values outside the grammar: %q %q %q %q %q %q %q %q", domain, hostname, host0, lease, forward, url, checksum, args.SSH.HostKey)
		}
	})
}

// FuzzTalosClusterArgs does the same for TalosCluster: its host names,
// addresses, MAC, Proxmox node, domain, gateway, VIP, extension,
// certificate name and host key reach Talos patches, the Image Factory
// schematic, Proxmox API paths and the membership script.
func FuzzTalosClusterArgs(f *testing.F) {
	ok := []string{"lab-cp1", "10.10.0.11", "02:00:0a:0a:00:0b", "pve", "lab.internal", "10.10.0.1", "10.10.0.10",
		"siderolabs/qemu-guest-agent", "api.lab.example", "pin"}
	f.Add(ok[0], ok[1], ok[2], ok[3], ok[4], ok[5], ok[6], ok[7], ok[8], ok[9])
	for i, hostile := range []string{"cp1;reboot", "10.10.0.11\n", "02:00", "pve/../../x", "lab.internal\nmachine: {}",
		"10.10.0.1 # x", "vip", "siderolabs/x\n    - evil/y", "api lab", "ssh-rsa AAAA"} {
		seed := append([]string(nil), ok...)
		seed[i] = hostile
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7], seed[8], seed[9])
	}
	f.Fuzz(func(t *testing.T, hostname, address, mac, proxmoxNode, domain, gateway, vip, extension, san, hostKey string) {
		if hostKey == "pin" {
			hostKey = testHostKey(t, "pve")
		}
		args := &components.TalosClusterArgs{ClusterName: "lab", TalosVersion: "v1.12.0", KubernetesVersion: "v1.35.0",
			Nodes: []components.TalosNodeSpec{{Hostname: hostname, Role: components.RoleControlPlane, Address: address, MAC: mac,
				ProxmoxNode: proxmoxNode, VMID: 8011, Cores: 2, MemoryMiB: 2048, DiskGiB: 10}},
			Extensions: []string{extension}, CertSANs: []string{san},
			Datastore: "local-lvm", ImageDatastore: "local", Bridge: pulumi.String("vmbr1"),
			Network:         components.TalosNetworkArgs{Gateway: gateway, PrefixLen: 24, Domain: domain, VIP: vip},
			ProxmoxHostKeys: []components.ProxmoxHostKeyArgs{{Node: "pve", Address: "192.168.1.10", HostKey: hostKey}},
		}
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewTalosCluster(ctx, "lab", args)
			return err
		})
		if err != nil && [9]string{hostname, address, mac, proxmoxNode, domain, gateway, vip, extension, san} == [9]string(ok[:9]) && hostKey == testHostKey(t, "pve") {
			t.Fatalf("the valid seed was refused: %v", err)
		}
		if err != nil {
			refusedNamingArgument(t, m, err, "Nodes[0]", "Network.", "Extensions[0]", "CertSANs[0]", "ProxmoxHostKeys[0]", "Proxmox node")
			return
		}
		_, keyErr := grammar.SSHHostKey(hostKey)
		if !grammar.DNSLabel(hostname) || !grammar.DNSLabel(proxmoxNode) || !grammar.Domain(domain) || keyErr != nil ||
			strings.ContainsAny(address+mac+gateway+vip+extension+san, " \n\r;'\"$`") {
			t.Errorf("accepted values outside the grammar: %q %q %q %q %q %q %q %q %q", hostname, address, mac, proxmoxNode, domain, gateway, vip, extension, san)
		}
	})
}

// FuzzInternalNetworkArgs: the VXLAN zone, VNet, peer and Proxmox node
// names go into the SDN scripts run as root on a Proxmox node.
func FuzzInternalNetworkArgs(f *testing.F) {
	f.Add("zlab", "vlab", "10.0.0.1", "a", "pin")
	for _, seed := range [][5]string{{"z;reboot", "vlab", "10.0.0.1", "a", "pin"}, {"zlab", "v$(id)", "10.0.0.1", "a", "pin"},
		{"zlab", "vlab", "10.0.0.1'; reboot; '", "a", "pin"}, {"zlab", "vlab", "10.0.0.1", "a\nb", "pin"}, {"zlab", "vlab", "10.0.0.1", "a", ""}} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4])
	}
	f.Fuzz(func(t *testing.T, zone, vnet, peer, node, hostKey string) {
		if hostKey == "pin" {
			hostKey = testHostKey(t, "a")
		}
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewInternalNetwork(ctx, "lab-net", &components.InternalNetworkArgs{
				Bridge: vnet, ProxmoxNodes: []string{node}, Mode: components.NetworkModeVXLAN,
				VXLAN: &components.InternalVXLANArgs{Zone: zone, VNet: vnet, VNI: 7, Peers: []string{peer}, MTU: 1450},
				SSH:   &components.ProxmoxSSH{Host: "10.0.0.1", HostKey: hostKey},
			})
			return err
		})
		if err != nil && zone+vnet+peer+node == "zlabvlab10.0.0.1a" && hostKey == testHostKey(t, "a") {
			t.Fatalf("the valid seed was refused: %v", err)
		}
		if err != nil {
			refusedNamingArgument(t, m, err, "zone", "vnet", "peer", "node", "SSH.HostKey")
			return
		}
		if !grammar.DNSLabel(node) || strings.ContainsAny(zone+vnet+peer, " \n\r;'\"$`") {
			t.Errorf("accepted values outside the grammar: %q %q %q %q", zone, vnet, peer, node)
		}
	})
}

// refusedNamingArgument checks a refusal: it names one of the arguments
// and nothing was registered before it.
func refusedNamingArgument(t *testing.T, m *mocks, err error, names ...string) {
	t.Helper()
	named := false
	for _, n := range names {
		named = named || strings.Contains(err.Error(), n)
	}
	if !named {
		t.Errorf("refusal names no argument: %v", err)
	}
	for _, r := range m.res {
		if r.Type != "pulumi:pulumi:Stack" {
			t.Errorf("registered %s %s before refusing", r.Type, r.Name)
		}
	}
}
