package config

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repoRoot holds the test copies of Pulumi.yaml and the shipped stack
// files (testdata/stacks), so editing the repository's stack files does not
// change what the tests expect.
const repoRoot = "../testdata/stacks"

// valid is a small, valid configuration the cases below break one way each.
func valid() Config {
	return Config{
		Cluster: Cluster{Name: "lab", ControlPlanes: 1, Workers: 2},
		Proxmox: Proxmox{Nodes: []ProxmoxNode{{Name: "pve"}}},
		Network: Network{External: External{CIDR: "192.168.1.0/24", RouterAddress: "192.168.1.50", Gateway: "192.168.1.1"}},
	}
}

func TestRepoStacksResolve(t *testing.T) {
	for _, tc := range []struct {
		stack              string
		cps, workers, pves int
		cni, vip, endpoint string
	}{
		{"dev", 1, 1, 1, "flannel", "", "https://10.10.0.11:6443"},
		{"prod", 3, 3, 3, "cilium", "10.20.0.10", "https://10.20.0.10:6443"},
	} {
		t.Run(tc.stack, func(t *testing.T) {
			c, p, err := LoadStack(repoRoot, tc.stack)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.ControlPlanes) != tc.cps || len(p.Workers) != tc.workers || len(p.ProxmoxNodesUsed()) != tc.pves {
				t.Fatalf("got %d cp, %d workers on %d Proxmox nodes", len(p.ControlPlanes), len(p.Workers), len(p.ProxmoxNodesUsed()))
			}
			if c.Cluster.CNI != tc.cni || p.KubernetesEndpoint() != tc.endpoint {
				t.Fatalf("cni %s endpoint %s", c.Cluster.CNI, p.KubernetesEndpoint())
			}
			if tc.vip != "" && p.VIP.String() != tc.vip {
				t.Fatalf("VIP %s, want %s", p.VIP, tc.vip)
			}
			// Talos endpoints are node addresses, never the VIP.
			for _, e := range p.TalosEndpoints() {
				if e == tc.vip {
					t.Fatalf("VIP %s among Talos endpoints %v", tc.vip, p.TalosEndpoints())
				}
			}
		})
	}
}

// The plan names the Proxmox nodes in use, in configuration order, each with
// its SSH host, so that nothing downstream needs the configuration for them.
func TestPlanProxmoxNodes(t *testing.T) {
	nodes := []ProxmoxNode{{Name: "pve1", SSHHost: "192.0.2.11"}, {Name: "pve2"}, {Name: "pve3", SSHHost: "pve3.lan"}, {Name: "pve4"}}
	for _, tc := range []struct {
		name         string
		cps, wks     int
		want         []NodePlan
		sshOf, want2 string
	}{
		{"router and one control plane on the first node", 1, 0,
			[]NodePlan{{Name: "pve1", SSHHost: "192.0.2.11"}}, "pve1", "192.0.2.11"},
		// Workers start on the second node; an unset sshHost is the name.
		{"one worker beside", 1, 1,
			[]NodePlan{{Name: "pve1", SSHHost: "192.0.2.11"}, {Name: "pve2", SSHHost: "pve2"}}, "pve2", "pve2"},
		{"three control planes, configuration order", 3, 0,
			[]NodePlan{{Name: "pve1", SSHHost: "192.0.2.11"}, {Name: "pve2", SSHHost: "pve2"}, {Name: "pve3", SSHHost: "pve3.lan"}}, "pve3", "pve3.lan"},
		// A node outside the plan is reached by its name.
		{"unused node", 1, 0, []NodePlan{{Name: "pve1", SSHHost: "192.0.2.11"}}, "pve4", "pve4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			c.Proxmox.Nodes = append([]ProxmoxNode{}, nodes...)
			c.Cluster.ControlPlanes, c.Cluster.Workers = tc.cps, tc.wks
			c.Cluster.VIP = "10.10.0.10"
			c.Network.Internal.Mode = ModeExisting
			c.Network.Internal.Bridge = "vmbr1"
			_, p, err := Resolve(c)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.ProxmoxNodes, tc.want) {
				t.Errorf("ProxmoxNodes = %v, want %v", p.ProxmoxNodes, tc.want)
			}
			var names []string
			for _, n := range tc.want {
				names = append(names, n.Name)
			}
			if got := p.ProxmoxNodesUsed(); !slices.Equal(got, names) || !slices.Equal(p.Network.Nodes, names) {
				t.Errorf("ProxmoxNodesUsed() = %v, network nodes %v, want %v", got, p.Network.Nodes, names)
			}
			if got := p.SSHHost(tc.sshOf); got != tc.want2 {
				t.Errorf("SSHHost(%s) = %s, want %s", tc.sshOf, got, tc.want2)
			}
		})
	}
}

func TestAddressPlanInvariants(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 9, 40} {
		c := valid()
		c.Cluster.ControlPlanes, c.Cluster.Workers, c.Cluster.VIP = 3, workers, "10.10.0.10"
		c.Proxmox.Nodes = []ProxmoxNode{{Name: "a"}, {Name: "b"}, {Name: "c"}}
		c.Network.Internal.Mode = ModeExisting
		c, p, err := Resolve(c)
		if err != nil {
			t.Fatalf("%d workers: %v", workers, err)
		}
		seen := map[netip.Addr]bool{p.RouterInternal: true, p.VIP: true}
		ids := map[int]bool{p.RouterVMID: true}
		for _, m := range p.Machines() {
			if !p.Internal.Contains(m.Address) || m.Address == p.Internal.Addr() || m.Address == lastAddr(p.Internal) {
				t.Fatalf("%s address %s is not a host of %s", m.Hostname, m.Address, p.Internal)
			}
			if seen[m.Address] || ids[m.VMID] {
				t.Fatalf("%s reuses address %s or VM ID %d", m.Hostname, m.Address, m.VMID)
			}
			if !m.Address.Less(p.DHCPStart) {
				t.Fatalf("%s address %s is inside the DHCP range from %s", m.Hostname, m.Address, p.DHCPStart)
			}
			seen[m.Address], ids[m.VMID] = true, true
		}
		// Control planes on distinct Proxmox nodes when there are enough.
		hosts := map[string]bool{}
		for _, m := range p.ControlPlanes {
			hosts[m.ProxmoxNode] = true
		}
		if len(hosts) != 3 {
			t.Fatalf("control planes share Proxmox nodes: %+v", p.ControlPlanes)
		}
		if p.DHCPStart.String() != "10.10.0.192" || p.DHCPEnd.String() != "10.10.0.254" {
			t.Fatalf("default DHCP range %s-%s", p.DHCPStart, p.DHCPEnd)
		}
		_ = c
	}
}

// Scaling workers must not move any existing machine: same address, VM ID,
// MAC and Proxmox node, or Pulumi would replace it.
func TestScalingKeepsExistingMachines(t *testing.T) {
	small, large := valid(), valid()
	small.Proxmox.Nodes = []ProxmoxNode{{Name: "a"}, {Name: "b"}}
	small.Network.Internal.Mode = ModeExisting
	large.Proxmox.Nodes, large.Network.Internal.Mode = small.Proxmox.Nodes, ModeExisting
	small.Cluster.Workers, large.Cluster.Workers = 1, 5
	_, ps, err := Resolve(small)
	if err != nil {
		t.Fatal(err)
	}
	_, pl, err := Resolve(large)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ps.Machines() {
		if got := pl.Machines()[i]; got != m {
			t.Fatalf("machine %d moved: %+v -> %+v", i, m, got)
		}
	}
}

func TestMACIsStableLocalUnicast(t *testing.T) {
	a, b := MACFor("lab", "lab-cp1"), MACFor("lab", "lab-cp2")
	if a != MACFor("lab", "lab-cp1") || a == b {
		t.Fatalf("MACs must be stable and distinct: %s %s", a, b)
	}
	if !strings.HasPrefix(a, "02:") || len(a) != 17 {
		t.Fatalf("want a locally administered unicast MAC, got %s", a)
	}
}

// problemCase breaks valid() one way and expects, among the problems, one
// with the key, the value and words of the fix.
type problemCase struct {
	name   string
	mutate func(*Config)
	key    string
	value  string
	fix    string
}

func runProblemCases(t *testing.T, cases []problemCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mutate(&c)
			_, _, err := Resolve(c)
			cerr, ok := err.(*Error)
			if !ok {
				t.Fatalf("want *config.Error, got %v", err)
			}
			for _, p := range cerr.Problems {
				if p.Key == tc.key && p.Value == tc.value && strings.Contains(p.Fix, tc.fix) {
					return
				}
			}
			t.Fatalf("no problem {%s = %q: ...%s...} in:\n%v", tc.key, tc.value, tc.fix, err)
		})
	}
}

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

// Every invalid configuration is reported with its key, value and a fix:
// the cluster, Proxmox, node and router keys (each concern's file tests its
// own: network_test.go, exposure_test.go, versions_test.go, sizes_test.go).
func TestInvalidConfigurations(t *testing.T) {
	runProblemCases(t, []problemCase{
		{"even control planes", func(c *Config) { c.Cluster.ControlPlanes = 2 }, "sda:cluster.controlPlanes", "2", "odd"},
		{"zero control planes", func(c *Config) { c.Cluster.ControlPlanes = 0 }, "sda:cluster.controlPlanes", "0", "odd"},
		{"negative workers", func(c *Config) { c.Cluster.Workers = -1 }, "sda:cluster.workers", "-1", "0 or more"},
		{"missing cluster name", func(c *Config) { c.Cluster.Name = "" }, "sda:cluster.name", "", "required"},
		{"bad cluster name", func(c *Config) { c.Cluster.Name = "My_Lab" }, "sda:cluster.name", "My_Lab", "lowercase"},
		{"rebuild of a node the stack does not have", func(c *Config) { c.Nodes.Rebuild = map[string]int{"lab-cp9": 1} }, "sda:nodes.rebuild.lab-cp9", "1", "no node of this stack: name one of lab-cp1"},
		{"negative rebuild", func(c *Config) { c.Nodes.Rebuild = map[string]int{"lab-cp1": -1} }, "sda:nodes.rebuild.lab-cp1", "-1", "0 or more"},
		{"duplicate VM ID", func(c *Config) { c.Router.VMID = 8011 }, "sda:proxmox.vmIdBase", "8000", "VM ID 8011"},
		{"duplicate hostname", func(c *Config) { c.Router.Hostname = "lab-worker1" }, "sda:router.hostname", "lab-worker1", "used by"},
		{"unknown CNI", func(c *Config) { c.Cluster.CNI = "calico" }, "sda:cluster.cni", "calico", `"flannel" or "cilium"`},
		{"empty Proxmox node list", func(c *Config) { c.Proxmox.Nodes = nil }, "sda:proxmox.nodes", "[]", "at least one"},
		{"duplicate Proxmox node", func(c *Config) { c.Proxmox.Nodes = []ProxmoxNode{{Name: "a"}, {Name: "a"}} }, "sda:proxmox.nodes[1].name", "a", "once"},
		{"disk interface", func(c *Config) { c.Nodes.DiskInterface = "ide" }, "sda:nodes.diskInterface", "ide", "/dev/sda"},
		{"CPU type without x86-64-v2", func(c *Config) { c.Nodes.CPUType = "kvm64" }, "sda:nodes.cpuType", "kvm64", "x86-64-v2"},
		{"router template over http", func(c *Config) {
			c.Router.TemplateURL = "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst"
		}, "sda:router.templateUrl", "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst", "https://"},
		{"own router template without checksum", func(c *Config) {
			c.Router.TemplateURL = "https://mirror.example/debian-12-custom_amd64.tar.zst"
		}, "sda:router.templateChecksum", "", "SHA-512"},
		{"router template checksum is MD5", func(c *Config) {
			c.Router.TemplateURL = "https://mirror.example/debian-12-custom_amd64.tar.zst"
			c.Router.TemplateChecksum = "d41d8cd98f00b204e9800998ecf8427e"
		}, "sda:router.templateChecksum", "d41d8cd98f00b204e9800998ecf8427e", "MD5 and SHA-1 are not accepted"},
		{"no guest agent extension", func(c *Config) { c.Cluster.Extensions = []string{"siderolabs/iscsi-tools"} }, "sda:cluster.extensions", "siderolabs/iscsi-tools", "qemu-guest-agent"},
	})
}

// The default router template comes with its SHA-512, so a stack that
// names no template needs no checksum; the default URL given explicitly
// gets the same checksum.
func TestDefaultRouterTemplateIsVerified(t *testing.T) {
	for _, url := range []string{"", DefaultRouterTemplateURL} {
		c := valid()
		c.Router.TemplateURL = url
		r := WithDefaults(c).Router
		if r.TemplateURL != DefaultRouterTemplateURL || r.TemplateChecksum != DefaultRouterTemplateChecksum {
			t.Errorf("templateUrl %q: defaults to %q with checksum %q", url, r.TemplateURL, r.TemplateChecksum)
		}
		if _, _, err := Resolve(c); err != nil {
			t.Errorf("templateUrl %q: %v", url, err)
		}
	}
	if !strings.HasPrefix(DefaultRouterTemplateURL, "https://") || len(DefaultRouterTemplateChecksum) != 128 {
		t.Errorf("default template %s with a %d-digit checksum: want https and a SHA-512", DefaultRouterTemplateURL, len(DefaultRouterTemplateChecksum))
	}
}

// A pinned host key must be one ed25519 or ECDSA key; every node the
// stack reaches without one is named by HostKeyProblems (not by Resolve,
// so `sda plan` still works), unless the opt-out is set, which warns.
func TestHostKeyPins(t *testing.T) {
	const ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl0b6hT3cVx1Za8zvJqZfC2rXcP8Dq9xYH5cWb5rHkD"
	c := valid()
	c.Proxmox.Nodes = []ProxmoxNode{{Name: "pve", SSHHost: "192.0.2.10"}, {Name: "spare"}}
	c.Cluster.Workers = 0 // everything on pve: spare is not used
	rc, p, err := Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	problems := HostKeyProblems(rc, p)
	if len(problems) != 1 || problems[0].Key != "sda:proxmox.nodes[0].sshHostKey" || !strings.Contains(problems[0].Fix, "sda trust --stack") ||
		!strings.Contains(problems[0].Fix, "192.0.2.10") {
		t.Errorf("unpinned used node: %v; want one problem naming nodes[0] (not the unused spare), its address and sda trust", problems)
	}

	c.Proxmox.Nodes[0].SSHHostKey = ed + " root@pve"
	rc, p, err = Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	if problems := HostKeyProblems(rc, p); len(problems) != 0 || p.SSHHostKey("pve") != ed {
		t.Errorf("pinned: problems %v, plan key %q; want none and the key without its comment", problems, p.SSHHostKey("pve"))
	}

	c.Proxmox.Nodes[0].SSHHostKey = "ssh-rsa AAAAB3NzaC1yc2E"
	_, _, err = Resolve(c)
	if err == nil || !strings.Contains(err.Error(), "sda:proxmox.nodes[0].sshHostKey") {
		t.Errorf("a malformed pin: %v; want a problem naming the key", err)
	}

	c.Proxmox.Nodes[0].SSHHostKey = ""
	c.Proxmox.InsecureIgnoreHostKeys = true
	rc, p, err = Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, w := range Warnings(rc, p) {
		warned = warned || w.Key == "sda:proxmox.insecureIgnoreHostKeys"
	}
	if problems := HostKeyProblems(rc, p); len(problems) != 0 || !warned {
		t.Errorf("opt-out: problems %v, warned %v; want no problem and a warning", problems, warned)
	}
}

// All problems are reported at once, not just the first.
func TestAllProblemsAtOnce(t *testing.T) {
	c := valid()
	c.Cluster.ControlPlanes = 2
	c.Cluster.CNI = "weave"
	c.Proxmox.Nodes = nil
	_, _, err := Resolve(c)
	cerr, ok := err.(*Error)
	if !ok || len(cerr.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"sda:cluster.controlPlanes = \"2\"", "sda:cluster.cni = \"weave\"", "sda:proxmox.nodes = \"[]\""} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message lacks %q:\n%s", want, msg)
		}
	}
}

func TestLoadRejectsUnknownFieldsAndWrongTypes(t *testing.T) {
	cases := map[string]struct {
		raw  string
		want string
	}{
		"typo":       {`{"name":"x","wrokers":3}`, `unknown field "wrokers"`},
		"wrong type": {`{"name":"x","workers":"three"}`, `"workers" must be a int`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(func(key string) (string, bool) {
				if key == "sda:cluster" {
					return tc.raw, true
				}
				return "", false
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "sda:cluster") {
				t.Fatalf("want an error naming sda:cluster and %q, got %v", tc.want, err)
			}
		})
	}
}

func TestStackFilesUnknownStack(t *testing.T) {
	_, _, err := LoadStack(repoRoot, "staging")
	if err == nil || !strings.Contains(err.Error(), `unknown stack "staging"`) {
		t.Fatalf("got %v", err)
	}
}

// The offline loader must read a stack file the way the Pulumi CLI does,
// including a pulumi-written encryptionsalt line and provider keys.
func TestStackFilesReadsWhatPulumiWrites(t *testing.T) {
	dir := t.TempDir()
	project, _ := os.ReadFile(filepath.Join(repoRoot, "Pulumi.yaml"))
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), project, 0o644); err != nil {
		t.Fatal(err)
	}
	stack := "encryptionsalt: v1:abc\nconfig:\n  proxmoxve:endpoint: https://pve:8006/\n  sda:cluster:\n    name: t\n    workers: 4\n  sda:proxmox:\n    nodes: [{name: pve}]\n  sda:network:\n    external: {cidr: 192.168.7.0/24}\n"
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.t.yaml"), []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup, err := StackFiles(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := lookup("proxmoxve:endpoint"); v != "https://pve:8006/" {
		t.Fatalf("proxmoxve:endpoint = %q", v)
	}
	raw, _ := lookup("sda:cluster")
	var cl Cluster
	if err := json.Unmarshal([]byte(raw), &cl); err != nil || cl.Workers != 4 {
		t.Fatalf("sda:cluster = %s (%v)", raw, err)
	}
	// controlPlanes unset: the missing count is an error, not a silent 0.
	_, _, err = LoadStack(dir, "t")
	if err == nil || !strings.Contains(err.Error(), "sda:cluster.controlPlanes") {
		t.Fatalf("want controlPlanes reported, got %v", err)
	}
}

func TestProviderConfigRequired(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	noenv := func(string) string { return "" }
	if got := CheckProviderConfig(none, noenv); len(got) != 3 {
		t.Fatalf("want endpoint, token and ssh problems, got %v", got)
	}
	set := func(k string) (string, bool) {
		return map[string]string{"proxmoxve:endpoint": "https://pve:8006/", "proxmoxve:apiToken": "t", "sda:sshPrivateKey": "k"}[k], true
	}
	if got := CheckProviderConfig(set, noenv); len(got) != 0 {
		t.Fatalf("complete configuration reported %v", got)
	}
	env := func(k string) string {
		return map[string]string{"PROXMOX_VE_ENDPOINT": "x", "PROXMOX_VE_API_TOKEN": "y", "SSH_AUTH_SOCK": "/tmp/a"}[k]
	}
	if got := CheckProviderConfig(none, env); len(got) != 0 {
		t.Fatalf("provider environment variables must count, got %v", got)
	}
}
