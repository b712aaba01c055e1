package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks/inputs"
)

// projectDir holds the test copies of Pulumi.yaml and the shipped stack
// files, so editing the repository's stack files does not change what the
// tests expect. repoDir is the repository root, whose stack files the docs
// show.
const (
	projectDir = "../../testdata/stacks"
	repoDir    = "../.."
)

// runCmd runs one offline command as the CLI does.
func runCmd(t *testing.T, name string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c, ok := offlineCommands[name]
	if !ok {
		t.Fatalf("no command %q", name)
	}
	var out, errOut bytes.Buffer
	code = c.run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func load(t *testing.T, stack string) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := Load(projectDir, stack)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// The plan shows every value an operator checks before deploying.
func TestPlanOutput(t *testing.T) {
	cases := []struct {
		stack string
		want  []string
	}{
		{"dev", []string{
			"Stack dev", "Talos v1.12.0", "Kubernetes v1.35.0", "flannel",
			"192.168.1.50/24, gateway 192.168.1.1 on vmbr0", "10.10.0.1/24 on vmbr1 (created by SDA)",
			"Internal network  bridge vmbr1 on pve (no ports: local to the node), MTU 1500",
			"none (the API is on the first control plane)", "https://10.10.0.11:6443",
			"router (LXC)  router       pve      8001",
			"dev-cp1      pve      8011", "10.10.0.11  2     2048 MiB  10 GiB",
			"dev-worker1  pve      8021", "10.10.0.21",
			"nocloud-amd64.raw.gz",
			// pve: router 1 core 256 MiB 4 GiB + two VMs of 2 cores 2048 MiB 10 GiB.
			"pve       3     5  4352 MiB  24 GiB",
		}},
		{"prod", []string{
			"Stack prod", "cilium 1.18.4 (kube-proxy replacement)",
			"192.168.1.60/24", "10.20.0.1/24 on vprod (the SDN VNet's bridge)", "prod.sda.internal",
			"Internal network  VXLAN zone zprod, VNet vprod (VNI 4242, bridge vprod), peers pve1=172.16.100.11 pve2=172.16.100.12 pve3=172.16.100.13, MTU 1450 (underlay 1500)",
			"VIP               10.20.0.10", "https://10.20.0.10:6443", "10.20.0.11, 10.20.0.12, 10.20.0.13",
			"prod-cp1      pve1     9011", "prod-cp2      pve2     9012", "prod-cp3      pve3     9013",
			"prod-worker1  pve2     9021", "prod-worker2  pve3     9022", "prod-worker3  pve1     9023",
			"8     16384 MiB  100 GiB", "router 1 of 2 (LXC)  router        pve1     9001",
			"router 2 of 2 (LXC)  router2       pve2     9002  -                  10.20.0.3",
			"Router pair       router on pve1 (own 10.20.0.2, 192.168.1.61) and router2 on pve2 (own 10.20.0.3, 192.168.1.62)",
			"kube-api  tcp/6443  -> vip (10.20.0.10):6443",
			"https     tcp/443   -> prod-worker1 (10.20.0.21):30443",
			// pve1: router (2, 512, 4) + cp1 (4, 8192, 40) + worker3 (8, 16384, 100).
			"pve1       3    14  25088 MiB  144 GiB",
			"pve2       3    14  25088 MiB  144 GiB",
			"all       8    40  74752 MiB  428 GiB",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.stack, func(t *testing.T) {
			code, out, errOut := runCmd(t, "plan", "--stack", tc.stack, "--dir", projectDir)
			if code != ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			_, p := load(t, tc.stack)
			for _, m := range p.Machines() {
				if !strings.Contains(out, m.MAC) {
					t.Errorf("plan lacks %s's MAC %s", m.Hostname, m.MAC)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("plan lacks %q\n%s", w, out)
				}
			}
		})
	}
}

// Totals count each router of the pair on its node and every VM on its own.
func TestTotals(t *testing.T) {
	in, err := inputs.Build(load(t, "prod"))
	if err != nil {
		t.Fatal(err)
	}
	got := Totals(in)
	want := []NodeTotals{
		{"pve1", 3, 2 + 4 + 8, 512 + 8192 + 16384, 4 + 40 + 100},
		{"pve2", 3, 2 + 4 + 8, 512 + 8192 + 16384, 4 + 40 + 100},
		{"pve3", 2, 4 + 8, 8192 + 16384, 40 + 100},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Totals = %+v, want %+v", got, want)
	}
}

func TestDiagram(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			code, out, errOut := runCmd(t, "diagram", "--stack", stack, "--dir", projectDir)
			if code != ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			c, p := load(t, stack)
			if !strings.HasPrefix(out, "flowchart TB\n") {
				t.Errorf("not a Mermaid flowchart: %q", out[:min(40, len(out))])
			}
			for _, node := range p.ProxmoxNodesUsed() {
				if !strings.Contains(out, `subgraph pve_`+node+`["Proxmox node `+node) {
					t.Errorf("no subgraph for Proxmox node %s", node)
				}
			}
			for _, m := range p.Machines() {
				id := mermaidID("vm", m.Hostname)
				role := map[config.Role]string{config.RoleControlPlane: "control plane", config.RoleWorker: "worker"}[m.Role]
				if !strings.Contains(out, id+`["`+m.Hostname) || !strings.Contains(out, role+" · "+m.Address.String()) {
					t.Errorf("%s missing with role and address", m.Hostname)
				}
				if !strings.Contains(out, "internal --- "+id) || !strings.Contains(out, id+" -.- overlay") {
					t.Errorf("%s not joined to the internal bridge and the overlay", m.Hostname)
				}
				// Each VM sits inside its own node's subgraph.
				sub := out[strings.Index(out, "subgraph pve_"+m.ProxmoxNode+"["):]
				sub = sub[:strings.Index(sub, "  end\n")]
				if !strings.Contains(sub, id+"[") {
					t.Errorf("%s not inside subgraph %s", m.Hostname, m.ProxmoxNode)
				}
			}
			for _, w := range []string{c.Network.External.Bridge, p.Network.Bridge, fmt.Sprintf("MTU %d", p.Network.MTU),
				p.RouterExternal.String(), p.RouterInternal.String(), "external ---|\"eth0 ", "router ---|\"eth1 ", "| internal\n"} {
				if !strings.Contains(out, w) {
					t.Errorf("diagram lacks %q", w)
				}
			}
			_, out2, _ := runCmd(t, "diagram", "--stack", stack, "--dir", projectDir)
			if out != out2 {
				t.Error("two runs gave different diagrams")
			}
		})
	}
	_, dev, _ := runCmd(t, "diagram", "--stack", "dev", "--dir", projectDir)
	_, prod, _ := runCmd(t, "diagram", "--stack", "prod", "--dir", projectDir)
	if strings.Contains(dev, "vip") || !strings.Contains(dev, "Flannel") {
		t.Error("dev has no VIP and runs flannel")
	}
	if !strings.Contains(dev, "no ports: this node only") {
		t.Error("dev diagram does not say its bridge is local to the node")
	}
	for _, w := range []string{`vip(("VIP 10.20.0.10`, "vip -.- vm_prod_cp1",
		"internal VXLAN VNet vprod", "SDN zone zprod · VNI 4242 · MTU 1450<br/>peers 172.16.100.11, 172.16.100.12, 172.16.100.13",
		`subgraph pve_pve2["Proxmox node pve2 · VXLAN peer 172.16.100.12"]`, "Cilium 1.18.4", `forward kube-api tcp/6443 → 10.20.0.10:6443"| vip`} {
		if !strings.Contains(prod, w) {
			t.Errorf("prod diagram lacks %q", w)
		}
	}
	if strings.Contains(prod, "vip -.- vm_prod_worker") {
		t.Error("the VIP is drawn on a worker")
	}
}

// render writes exactly this file set (paths relative to --out): each
// router's files under router/ (and a pair's second's under router2/).
func wantFiles(p config.Plan) []string {
	routers := []string{"router/"}
	if p.RouterPair != nil {
		routers = append(routers, "router2/")
	}
	want := []string{Marker, "talos/schematic.yaml", "network/mode.txt"}
	for _, r := range routers {
		want = append(want, r+"apply.sh", r+"etc/dnsmasq.d/sda.conf", r+"etc/nftables.conf", r+"etc/sysctl.d/99-sda.conf")
		if p.RouterPair != nil {
			want = append(want, r+"handover.sh", r+"etc/keepalived/keepalived.conf", r+"etc/conntrackd/conntrackd.conf", r+"etc/sda/vrrp-notify.sh")
		}
		for _, m := range p.Machines() {
			want = append(want, r+"etc/sda/hosts.d/"+m.Hostname, r+"etc/sda/dhcp-hosts.d/"+m.Hostname, r+"etc/sda/nftables.d/"+m.Hostname+".nft")
		}
	}
	if p.Network.VXLAN != nil {
		want = append(want, "network/sdn-apply.sh", "network/sdn-delete.sh")
	}
	for _, m := range p.Machines() {
		d := "talos/" + m.Hostname + "/"
		want = append(want, d+"machineconfig.yaml")
	}
	return want
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestRenderWritesTheFileSet(t *testing.T) {
	for _, tc := range []struct {
		stack   string
		patches []string // numbered patch files of the first control plane
	}{
		{"dev", []string{"01-kubeprism.yaml", "02-apiserver-certsans.yaml", "03-kubernetes-networks.yaml", "04-hostname.yaml", "05-install.yaml", "06-network.yaml"}},
		{"prod", []string{"01-kubeprism.yaml", "02-apiserver-certsans.yaml", "03-kubernetes-networks.yaml", "04-cni-cilium.yaml", "05-hostname.yaml", "06-install.yaml", "07-network.yaml"}},
	} {
		t.Run(tc.stack, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rendered")
			code, stdout, errOut := runCmd(t, "render", "--stack", tc.stack, "--dir", projectDir, "--out", out)
			if code != ExitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			c, p := load(t, tc.stack)
			got := listFiles(t, out)
			var nonPatch []string
			for _, f := range got {
				if !strings.Contains(f, "/patches/") {
					nonPatch = append(nonPatch, f)
				}
			}
			want := wantFiles(p)
			slices.Sort(want)
			if !slices.Equal(nonPatch, want) {
				t.Errorf("files %v, want %v", nonPatch, want)
			}
			for _, m := range p.Machines() {
				entries, err := os.ReadDir(filepath.Join(out, "talos", m.Hostname, "patches"))
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				if !slices.Equal(names, tc.patches) {
					t.Errorf("%s patches %v, want %v", m.Hostname, names, tc.patches)
				}
				cfg, err := os.ReadFile(filepath.Join(out, "talos", m.Hostname, "machineconfig.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(cfg), "hostname: "+m.Hostname) || !strings.Contains(string(cfg), "REDACTED-THROWAWAY-SECRET") {
					t.Errorf("%s machine config lacks its hostname or carries unredacted secrets", m.Hostname)
				}
			}
			nft, err := os.ReadFile(filepath.Join(out, "router/etc/nftables.conf"))
			if err != nil || !strings.Contains(string(nft), "table inet sda") {
				t.Errorf("router nftables file missing or not SDA's ruleset: %v", err)
			}
			// Every node's entries on the router, as HostScript installs them.
			for _, m := range p.Machines() {
				for file, want := range map[string]string{
					"router/etc/sda/hosts.d/" + m.Hostname:             fmt.Sprintf("%s %s.%s %s\n", m.Address, m.Hostname, c.Network.Internal.Domain, m.Hostname),
					"router/etc/sda/dhcp-hosts.d/" + m.Hostname:        fmt.Sprintf("%s,%s,%s\n", strings.ToLower(m.MAC), m.Address, m.Hostname),
					"router/etc/sda/nftables.d/" + m.Hostname + ".nft": fmt.Sprintf("add element inet sda talos_api { %s }\n", m.Address),
				} {
					if got, err := os.ReadFile(filepath.Join(out, file)); err != nil || !strings.Contains(string(got), want) {
						t.Errorf("%s holds %q (err %v), want %q", file, got, err, want)
					}
				}
			}
			if info, err := os.Stat(filepath.Join(out, "router/apply.sh")); err != nil || info.Mode().Perm()&0o100 == 0 {
				t.Errorf("apply.sh not executable: %v", err)
			}
			if !strings.Contains(stdout, "wrote ") || !strings.Contains(stdout, "talos/schematic.yaml") {
				t.Errorf("stdout does not list what was written: %q", stdout)
			}
			// No temporary directory is left beside the output.
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
				t.Errorf("left beside the output: %v", entries)
			}
		})
	}
}

// A second render replaces the first one whole: nothing of the old one stays.
func TestRenderReplacesAPreviousRender(t *testing.T) {
	out := filepath.Join(t.TempDir(), "rendered")
	if code, _, errOut := runCmd(t, "render", "--stack", "prod", "--dir", projectDir, "--out", out); code != ExitOK {
		t.Fatal(errOut)
	}
	if code, _, errOut := runCmd(t, "render", "--stack", "dev", "--dir", projectDir, "--out", out); code != ExitOK {
		t.Fatal(errOut)
	}
	_, p := load(t, "dev")
	for _, f := range listFiles(t, out) {
		if strings.Contains(f, "prod-") {
			t.Errorf("prod file %s survived the dev render", f)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "talos", p.ControlPlanes[0].Hostname, "machineconfig.yaml")); err != nil {
		t.Error(err)
	}
}

// projectWith writes a project directory whose dev stack has one change.
func projectWith(t *testing.T, edit func(stack string) string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		data, err := os.ReadFile(filepath.Join(projectDir, name))
		if err != nil {
			t.Fatal(err)
		}
		content := string(data)
		if name == "Pulumi.dev.yaml" {
			content = edit(content)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Bad input gives one clear message on stderr, a non-zero exit, and (for
// render) nothing written.
func TestErrors(t *testing.T) {
	tmp := t.TempDir()
	aFile := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(aFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	notOurs := filepath.Join(tmp, "notours")
	if err := os.MkdirAll(notOurs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notOurs, "thesis.tex"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := projectWith(t, func(s string) string { return strings.Replace(s, "controlPlanes: 1", "controlPlanes: 2", 1) })
	badPatch := projectWith(t, func(s string) string {
		return strings.Replace(s, "    cni: flannel\n", "    cni: flannel\n    patches:\n      - \"machine:\\n  instal:\\n    disk: /dev/sdb\\n\"\n", 1)
	})
	unparsable := projectWith(t, func(s string) string { return s + "  sda:nodes: [\n" })
	badOut := filepath.Join(tmp, "never")

	cases := []struct {
		name string
		cmd  string
		args []string
		code int
		want []string
		// noWrite is a path that must not exist afterwards.
		noWrite string
	}{
		{"unknown stack", "plan", []string{"--stack", "staging", "--dir", projectDir}, ExitFail,
			[]string{`unknown stack "staging"`, "Pulumi.staging.yaml does not exist"}, ""},
		{"no project here", "diagram", []string{"--stack", "dev", "--dir", tmp}, ExitFail,
			[]string{"sda diagram:", "project file"}, ""},
		{"invalid configuration", "plan", []string{"--stack", "dev", "--dir", invalid}, ExitFail,
			[]string{"sda:cluster.controlPlanes", `"2"`, "odd number"}, ""},
		{"unparsable stack file", "plan", []string{"--stack", "dev", "--dir", unparsable}, ExitFail,
			[]string{"Pulumi.dev.yaml"}, ""},
		{"missing --stack", "plan", nil, ExitUsage, []string{"--stack required"}, ""},
		{"missing --out", "render", []string{"--stack", "dev"}, ExitUsage, []string{"--out required"}, ""},
		{"unknown flag", "diagram", []string{"--stack", "dev", "--colour"}, ExitUsage, []string{"-colour"}, ""},
		{"out under a file", "render", []string{"--stack", "dev", "--dir", projectDir, "--out", filepath.Join(aFile, "out")}, ExitFail,
			[]string{"cannot write to " + filepath.Join(aFile, "out"), "not a directory", "--out"}, ""},
		{"out is a file", "render", []string{"--stack", "dev", "--dir", projectDir, "--out", aFile}, ExitFail,
			[]string{"cannot write to " + aFile, "is a file"}, ""},
		{"out holds someone else's files", "render", []string{"--stack", "dev", "--dir", projectDir, "--out", notOurs}, ExitFail,
			[]string{"not empty and was not written by sda render"}, ""},
		{"Talos rejects a user patch: nothing written", "render", []string{"--stack", "dev", "--dir", badPatch, "--out", badOut}, ExitFail,
			[]string{"machine dev-cp1", "sda:cluster.patches[0]", "instal"}, badOut},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, errOut := runCmd(t, tc.cmd, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing on failure", stdout)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if tc.code == ExitFail && strings.Count(strings.TrimSpace(errOut), "sda "+tc.cmd+":") != 1 {
				t.Errorf("want one message starting with %q, got %q", "sda "+tc.cmd+":", errOut)
			}
			if tc.noWrite != "" {
				if _, err := os.Stat(tc.noWrite); !os.IsNotExist(err) {
					t.Errorf("%s was written on failure", tc.noWrite)
				}
			}
		})
	}
	// Failures left no temporary directories and did not touch others' files.
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.Contains(e.Name(), "sda-render") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
	if data, err := os.ReadFile(filepath.Join(notOurs, "thesis.tex")); err != nil || string(data) != "precious" {
		t.Error("render touched a directory it did not write")
	}
}

// docs/plan-render-diagram.md (and the README diagrams taken from it) shows
// real output of the repository's stacks; this fails when the output or the
// shipped stacks change and the page was not regenerated. It reads the
// repository's own stack files, since those are what the page documents, but
// only while they are the shipped ones (equal to testdata/stacks): a user who
// edits Pulumi.dev.yaml for a deployment gets a skip, not a failure. CI
// (SDA_REQUIRE_DOCS=1, set by .ci/run) requires the check to run, so a
// change to the shipped stacks must also update the copies and the page.
func TestDocShowsCurrentOutput(t *testing.T) {
	for _, name := range []string{"Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"} {
		repo, err := os.ReadFile(filepath.Join(repoDir, name))
		if err != nil {
			t.Fatal(err)
		}
		shipped, err := os.ReadFile(filepath.Join(projectDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(repo) != string(shipped) {
			msg := fmt.Sprintf("the repository's %s differs from testdata/stacks/%s: the page shows the shipped stacks", name, name)
			if os.Getenv("SDA_REQUIRE_DOCS") == "1" {
				t.Fatal(msg + "; when the shipped stacks change on purpose, copy them to testdata/stacks and regenerate docs/plan-render-diagram.md")
			}
			t.Skip(msg)
		}
	}
	doc, err := os.ReadFile(filepath.Join(repoDir, "docs", "plan-render-diagram.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stack := range []string{"dev", "prod"} {
		for _, cmd := range []string{"plan", "diagram"} {
			_, out, _ := runCmd(t, cmd, "--stack", stack, "--dir", repoDir)
			if !strings.Contains(string(doc), "\n"+out+"```") {
				t.Errorf("docs/plan-render-diagram.md does not show the current `sda %s --stack %s`; regenerate it", cmd, stack)
			}
		}
	}
}

// The diagram names how each mode joins the Proxmox nodes.
func TestDiagramNetworkLabels(t *testing.T) {
	vlan := config.NetworkPlan{Mode: config.ModeVLAN, Bridge: "vmbr2", MTU: 1500, Nodes: []string{"pve1", "pve2"},
		VLAN: &config.VLANPlan{Uplink: "eno1", ID: 42, Interface: "eno1.42"}}
	existing := config.NetworkPlan{Mode: config.ModeExisting, Bridge: "vmbr9", MTU: 9000, Nodes: []string{"pve1"}}
	for _, tc := range []struct {
		name                 string
		n                    config.NetworkPlan
		internal, mode, node string
	}{
		{"vlan", vlan, "internal bridge vmbr2", "VLAN 42 on uplink eno1 (port eno1.42) · MTU 1500", " · eno1.42"},
		{"existing", existing, "internal bridge vmbr9 (existing)", "connected by you on every node · MTU 9000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := internalLabel(tc.n); got != tc.internal {
				t.Errorf("internalLabel = %q, want %q", got, tc.internal)
			}
			if got := modeLabel(tc.n); got != tc.mode {
				t.Errorf("modeLabel = %q, want %q", got, tc.mode)
			}
			if got := nodeNetworkLabel(tc.n, "pve2"); got != tc.node {
				t.Errorf("nodeNetworkLabel = %q, want %q", got, tc.node)
			}
		})
	}
}
