package routerfiles_test

import (
	"encoding/base64"
	"github.com/sda-platform/sda/stacks/inputs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
)

// testConfig is a resolved stack (internal/render's router tests use the same
// one) with three control planes behind a VIP, two
// workers, a static external address and three kinds of port-forward.
func testConfig(t *testing.T, mod func(*config.Config)) (config.Config, config.Plan) {
	t.Helper()
	c := inputs.RouterFixture()
	if mod != nil {
		mod(&c)
	}
	c, p, err := config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func testSpec(t *testing.T, mod func(*config.Config)) routerfiles.Spec {
	t.Helper()
	s, err := inputs.RouterFiles(testConfig(t, mod))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRender(t *testing.T) {
	cases := []struct {
		name              string
		mod               func(*config.Config)
		nft, dnsmasq, not []string // lines that must (not) be present
	}{
		{
			name: "stack with VIP and forwards",
			nft: []string{
				"table inet sda {}",
				"delete table inet sda",
				"\t\telements = { 198.51.100.0/24 }",
				// The nodes' addresses come from their own files, included last.
				"\tset talos_api {\n\t\ttype ipv4_addr\n\t}",
				"\tset kubernetes_api {\n\t\ttype ipv4_addr\n\t\telements = { 10.30.0.10 }\n\t}",
				`include "/etc/sda/nftables.d/*.nft"`,
				"\t\ttype filter hook input priority filter; policy drop;",
				"\t\tiifname \"eth1\" accept",
				"\t\ttype filter hook forward priority filter; policy drop;",
				"\t\tiifname \"eth1\" oifname \"eth0\" ip saddr 10.30.0.0/24 accept",
				// BCP 38 in both directions, in forward before anything is
				// accepted, and on the router's own input from outside.
				"\t\ttype filter hook forward priority filter; policy drop;\n\t\t# BCP 38, before anything is accepted: only the internal network's own",
				"\t\tiifname \"eth1\" ip saddr != 10.30.0.0/24 drop\n\t\tiifname \"eth0\" ip saddr 10.30.0.0/24 drop\n\t\tct state established,related accept",
				"\t\tiifname \"lo\" accept\n\t\t# Nothing from outside may claim an internal address (BCP 38).\n\t\tiifname \"eth0\" ip saddr 10.30.0.0/24 drop",
				"\t\tiifname \"eth0\" oifname \"eth1\" ip saddr @admin ip daddr @talos_api tcp dport 50000 accept",
				"\t\tiifname \"eth0\" oifname \"eth1\" ip saddr @admin ip daddr @kubernetes_api tcp dport 6443 accept",
				"\t\tiifname \"eth0\" fib daddr type local tcp dport 443 dnat ip to 10.30.0.21:30443 comment \"https\"",
				"\t\tiifname \"eth0\" oifname \"eth1\" ct status dnat ip daddr 10.30.0.21 meta l4proto tcp ct original proto-dst 443 tcp dport 30443 accept comment \"https\"",
				"\t\tiifname \"eth0\" fib daddr type local ip saddr { 198.51.100.7/32, 203.0.113.0/24 } udp dport 514 dnat ip to 10.30.0.50:514 comment \"syslog\"",
				"\t\tiifname \"eth0\" oifname \"eth1\" ct status dnat ip saddr { 198.51.100.7/32, 203.0.113.0/24 } ip daddr 10.30.0.50 meta l4proto udp ct original proto-dst 514 udp dport 514 accept comment \"syslog\"",
				"\t\tiifname \"eth0\" fib daddr type local ip saddr { 198.51.100.0/24 } tcp dport 6443 dnat ip to 10.30.0.10:6443 comment \"kube\"",
				"\t\toifname \"eth0\" ip saddr 10.30.0.0/24 masquerade",
			},
			dnsmasq: []string{
				"interface=eth1", "except-interface=eth0", "bind-interfaces", "no-resolv", "no-hosts",
				"server=192.0.2.54", "server=192.0.2.53",
				"domain=t.internal", "local=/t.internal/", "expand-hosts",
				"dhcp-range=10.30.0.192,10.30.0.254,255.255.255.0,12h",
				"dhcp-option=option:router,10.30.0.1",
				"dhcp-option=option:dns-server,10.30.0.1",
				"host-record=router.t.internal,router,10.30.0.1",
				"hostsdir=/etc/sda/hosts.d",
				"dhcp-hostsdir=/etc/sda/dhcp-hosts.d",
			},
			// A static external address needs no DHCP-client rule; the router gets no
			// reservation; no node is named in the main files.
			not: []string{"udp sport 67 udp dport 68", "dhcp-host=", "user=", "pid-file", "dhcp-leasefile",
				"t-cp1", "t-worker", "10.30.0.11", "10.30.0.22", strings.ToLower(config.MACFor("t", "t-cp1"))},
		},
		{
			name: "DHCP external address, no admins, no forwards",
			mod: func(c *config.Config) {
				c.Network.External = config.External{CIDR: "192.0.2.0/24", RouterAddress: "dhcp"}
				c.Network.AdminCIDRs = nil
				c.Network.PortForwards = nil
			},
			nft: []string{
				"# external: eth0 (DHCP); internal: eth1 (10.30.0.1 on 10.30.0.0/24)",
				"\t\tiifname \"eth0\" udp sport 67 udp dport 68 accept",
				// The admin rules stay and match nothing: the set is empty.
				"\tset admin {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}",
				"\t\tiifname \"eth0\" oifname \"eth1\" ip saddr @admin ip daddr @talos_api tcp dport 50000 accept",
			},
			not: []string{"dnat", "198.51.100.0/24"},
		},
		{
			name: "overlapping and unmasked CIDRs are normalised",
			mod: func(c *config.Config) {
				c.Network.AdminCIDRs = []string{"198.51.100.9/32", "172.16.0.0/12", "198.51.100.0/24", "172.17.2.3/16", "198.51.100.0/24"}
				c.Network.PortForwards = []config.PortForward{{Name: "x", Port: 1, Target: "vip", AllowFrom: []string{"192.0.2.77/24", "192.0.2.8/29"}}}
			},
			nft: []string{
				"\t\telements = { 172.16.0.0/12, 198.51.100.0/24 }",
				"\t\tiifname \"eth0\" fib daddr type local ip saddr { 192.0.2.0/24 } tcp dport 1 dnat ip to 10.30.0.10:1 comment \"x\"",
			},
		},
		{
			// Maintenance mode takes a configuration from anyone who reaches
			// 50000: the Talos API gets its own, narrower source set, the
			// admins keep the Kubernetes API.
			name: "Talos API narrowed to the deployer",
			mod: func(c *config.Config) {
				c.Network.TalosAPICIDRs = []string{"198.51.100.7/32"}
			},
			nft: []string{
				"	set admin {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 198.51.100.0/24 }\n\t}",
				"	set talos_admin {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 198.51.100.7/32 }\n\t}",
				"		iifname \"eth0\" oifname \"eth1\" ip saddr @talos_admin ip daddr @talos_api tcp dport 50000 accept",
				"		iifname \"eth0\" oifname \"eth1\" ip saddr @admin ip daddr @kubernetes_api tcp dport 6443 accept",
			},
			not: []string{"ip saddr @admin ip daddr @talos_api"},
		},
		{
			name: "custom domain and DHCP range",
			mod: func(c *config.Config) {
				c.Network.Internal.Domain = "lab.example"
				c.Network.Internal.CIDR = "10.40.0.0/23"
				c.Network.Internal.DHCPStart, c.Network.Internal.DHCPEnd = "10.40.1.0", "10.40.1.99"
				c.Cluster.VIP = "10.40.0.10"
				c.Network.PortForwards = nil
			},
			dnsmasq: []string{
				"domain=lab.example", "local=/lab.example/",
				"dhcp-range=10.40.1.0,10.40.1.99,255.255.254.0,12h",
				"host-record=router.lab.example,router,10.40.0.1",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := routerfiles.Render(testSpec(t, tc.mod))
			for _, want := range tc.nft {
				if !containsLine(f.Nftables, want) {
					t.Errorf("nftables lacks %q:\n%s", want, f.Nftables)
				}
			}
			for _, want := range tc.dnsmasq {
				if !containsLine(f.Dnsmasq, want) {
					t.Errorf("dnsmasq lacks %q:\n%s", want, f.Dnsmasq)
				}
			}
			for _, unwanted := range tc.not {
				if strings.Contains(f.Nftables, unwanted) || strings.Contains(f.Dnsmasq, unwanted) {
					t.Errorf("rendered files contain %q", unwanted)
				}
			}
			if f.Sysctl != "# SDA router: forward IPv4 between the internal and external networks.\n"+
				"# Generated by SDA (components/routerfiles); do not edit: the next apply replaces it.\n"+
				"net.ipv4.ip_forward = 1\n" {
				t.Errorf("sysctl = %q", f.Sysctl)
			}
		})
	}
}

// containsLine reports whether want appears in s as whole lines.
func containsLine(s, want string) bool {
	return strings.Contains("\n"+s, "\n"+want+"\n")
}

func TestRenderIsDeterministic(t *testing.T) {
	s := testSpec(t, nil)
	want := routerfiles.Render(s)
	if again := routerfiles.Render(s); again != want {
		t.Fatal("two renders of the same spec differ")
	}
	// The same content listed in another order renders the same bytes.
	r := s
	r.Hosts = slices.Clone(s.Hosts)
	slices.Reverse(r.Hosts)
	r.Forwards = slices.Clone(s.Forwards)
	slices.Reverse(r.Forwards)
	r.KubernetesAPI = slices.Clone(s.KubernetesAPI)
	slices.Reverse(r.KubernetesAPI)
	r.Forwards[0].AllowFrom = slices.Clone(r.Forwards[0].AllowFrom)
	slices.Reverse(r.Forwards[0].AllowFrom)
	if got := routerfiles.Render(r); got != want {
		t.Errorf("reordered spec renders differently:\n%s\nwant:\n%s", got.Nftables+got.Dnsmasq, want.Nftables+want.Dnsmasq)
	}
}

func TestDigest(t *testing.T) {
	f := routerfiles.Render(testSpec(t, nil))
	d := f.Digest()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(d) {
		t.Fatalf("digest %q is not a hex SHA-256", d)
	}
	if routerfiles.Render(testSpec(t, nil)).Digest() != d {
		t.Error("equal files give different digests")
	}
	changes := map[string]func(*routerfiles.Files){
		"nftables": func(f *routerfiles.Files) { f.Nftables += "\n" },
		"dnsmasq":  func(f *routerfiles.Files) { f.Dnsmasq += "\n" },
		"sysctl":   func(f *routerfiles.Files) { f.Sysctl += "\n" },
		// Moving bytes from one file to the next must change the digest too.
		"boundary": func(f *routerfiles.Files) {
			f.Dnsmasq = f.Nftables[len(f.Nftables)-1:] + f.Dnsmasq
			f.Nftables = f.Nftables[:len(f.Nftables)-1]
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			g := f
			change(&g)
			if g.Digest() == d {
				t.Errorf("changing %s keeps the digest", name)
			}
		})
	}
}

func TestApplyScriptText(t *testing.T) {
	f := routerfiles.Render(testSpec(t, nil))
	l := routerfiles.DebianLayout()
	script := routerfiles.ApplyScript(f, l)
	for _, want := range []string{
		"#!/bin/sh",
		"set -eu",
		`	if [ -f "$2" ] && cmp -s "$1" "$2"; then`,
		`nft -c -f "$work/nftables"`,
		`dnsmasq --test --conf-file="$work/dnsmasq"`,
		`install_changed "$work/sysctl" '/etc/sysctl.d/99-sda.conf' || true`,
		"sysctl -q -p '/etc/sysctl.d/99-sda.conf'",
		`install_changed "$work/nftables" '/etc/nftables.conf' || true`,
		"nft -f '/etc/nftables.conf'",
		`if install_changed "$work/dnsmasq" '/etc/dnsmasq.d/sda.conf'; then` + "\n\tsystemctl restart dnsmasq.service\nelse\n\tsystemctl start dnsmasq.service\nfi",
		"systemctl enable --quiet nftables.service dnsmasq.service",
		`echo "applied: ` + f.Digest() + `"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	// The checks come before the first install.
	if strings.Index(script, "dnsmasq --test") > strings.Index(script, `install_changed "$work/sysctl"`) {
		t.Error("the files are installed before they are checked")
	}
	// Every file is embedded exactly.
	embedded := regexp.MustCompile(`(?s)base64 -d >"\$work/(\w+)" <<'SDA_EOF'\n(.*?)SDA_EOF\n`).FindAllStringSubmatch(script, -1)
	want := map[string]string{"nftables": f.Nftables, "dnsmasq": f.Dnsmasq, "sysctl": f.Sysctl}
	if len(embedded) != len(want) {
		t.Fatalf("%d embedded files, want %d", len(embedded), len(want))
	}
	for _, m := range embedded {
		got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(m[2], "\n", ""))
		if err != nil || string(got) != want[m[1]] {
			t.Errorf("embedded %s does not decode to the rendered file (err %v)", m[1], err)
		}
	}
	// Paths are single shell words whatever they hold.
	odd := routerfiles.ApplyScript(f, routerfiles.Layout{Nftables: "/tmp/it's here/n.conf", Dnsmasq: "/d", Sysctl: "/s"})
	if !strings.Contains(odd, `nft -f '/tmp/it'\''s here/n.conf'`) {
		t.Error("a path with a quote and a space is not quoted as one word")
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s", err, out)
		}
	}
}

// TestApplyScriptRun runs the script with stand-in nft, dnsmasq and sysctl
// commands that only log their calls: it shows the install logic (write only
// what changed, restart dnsmasq only for its own changes) without root. The
// real tools run the same script in tests/routerns.
func TestApplyScriptRun(t *testing.T) {
	for _, tool := range []string{"sh", "base64", "cmp", "mktemp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	calls := filepath.Join(dir, "calls")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"nft", "dnsmasq", "sysctl"} {
		stub := "#!/bin/sh\necho \"" + tool + " $*\" >>'" + calls + "'\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l := routerfiles.Layout{
		Nftables:         filepath.Join(dir, "etc", "nftables.conf"),
		Dnsmasq:          filepath.Join(dir, "etc", "dnsmasq.d", "sda.conf"),
		Sysctl:           filepath.Join(dir, "etc", "sysctl.d", "99-sda.conf"),
		HostsDir:         filepath.Join(dir, "etc", "sda", "hosts.d"),
		DHCPHostsDir:     filepath.Join(dir, "etc", "sda", "dhcp-hosts.d"),
		NftablesHostsDir: filepath.Join(dir, "etc", "sda", "nftables.d"),
		RestartDnsmasq:   "echo restart-dnsmasq >>'" + calls + "'",
		StartDnsmasq:     "echo start-dnsmasq >>'" + calls + "'",
	}
	run := func(f routerfiles.Files) (output string, called []string) {
		t.Helper()
		os.Remove(calls)
		// On stdin, as RouterLXC runs it: pct exec <id> -- sh -s.
		cmd := exec.Command("sh", "-s")
		cmd.Stdin = strings.NewReader(routerfiles.ApplyScript(f, l))
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("apply: %v\n%s", err, out)
		}
		log, _ := os.ReadFile(calls)
		return string(out), strings.Split(strings.TrimSpace(string(log)), "\n")
	}
	mtimes := func() []int64 {
		var out []int64
		for _, p := range []string{l.Nftables, l.Dnsmasq, l.Sysctl} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st.ModTime().UnixNano())
		}
		return out
	}

	first := routerfiles.Render(testSpec(t, nil))
	added := routerfiles.Render(testSpec(t, func(c *config.Config) {
		c.Network.PortForwards = append(c.Network.PortForwards, config.PortForward{Name: "extra", Port: 8080, Target: "t-cp1"})
	}))
	moreDNS := routerfiles.Render(testSpec(t, func(c *config.Config) { c.Network.DNSServers = []string{"192.0.2.99"} }))

	steps := []struct {
		name    string
		files   routerfiles.Files
		outputs []string
		calls   []string
	}{
		{"first apply writes everything and starts dnsmasq", first,
			[]string{"updated: " + l.Sysctl, "updated: " + l.Nftables, "updated: " + l.Dnsmasq},
			[]string{"nft -c -f", "dnsmasq --test", "sysctl -q -p " + l.Sysctl, "nft -f " + l.Nftables, "restart-dnsmasq"}},
		{"the same again writes nothing and keeps dnsmasq", first,
			[]string{"unchanged: " + l.Sysctl, "unchanged: " + l.Nftables, "unchanged: " + l.Dnsmasq},
			[]string{"nft -c -f", "dnsmasq --test", "sysctl -q -p " + l.Sysctl, "nft -f " + l.Nftables, "start-dnsmasq"}},
		{"a new forward changes the ruleset only", added,
			[]string{"unchanged: " + l.Sysctl, "updated: " + l.Nftables, "unchanged: " + l.Dnsmasq},
			[]string{"nft -c -f", "dnsmasq --test", "sysctl -q -p " + l.Sysctl, "nft -f " + l.Nftables, "start-dnsmasq"}},
		{"a new upstream server restarts dnsmasq", moreDNS,
			[]string{"unchanged: " + l.Sysctl, "updated: " + l.Nftables, "updated: " + l.Dnsmasq},
			[]string{"nft -c -f", "dnsmasq --test", "sysctl -q -p " + l.Sysctl, "nft -f " + l.Nftables, "restart-dnsmasq"}},
	}
	var before []int64
	for i, st := range steps {
		out, called := run(st.files)
		for _, want := range append(st.outputs, "applied: "+st.files.Digest()) {
			if !containsLine(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", st.name, want, out)
			}
		}
		if len(called) != len(st.calls) {
			t.Errorf("%s: calls %q, want %q", st.name, called, st.calls)
		} else {
			for j := range called {
				if !strings.HasPrefix(called[j], st.calls[j]) {
					t.Errorf("%s: call %d is %q, want %q...", st.name, j, called[j], st.calls[j])
				}
			}
		}
		for p, want := range map[string]string{l.Nftables: st.files.Nftables, l.Dnsmasq: st.files.Dnsmasq, l.Sysctl: st.files.Sysctl} {
			if got, _ := os.ReadFile(p); string(got) != want {
				t.Errorf("%s: %s does not hold the rendered file", st.name, p)
			}
		}
		// dnsmasq and the ruleset refer to the hosts' directories: they must exist.
		for _, d := range []string{l.HostsDir, l.DHCPHostsDir, l.NftablesHostsDir} {
			if info, err := os.Stat(d); err != nil || !info.IsDir() {
				t.Errorf("%s: the directory %s was not created: %v", st.name, d, err)
			}
		}
		now := mtimes()
		if i == 1 && !slices.Equal(now, before) {
			t.Errorf("%s: files were rewritten (mtimes %v -> %v)", st.name, before, now)
		}
		before = now
	}
	// No temporary file is left beside the installed ones.
	leftovers, _ := filepath.Glob(filepath.Join(dir, "etc", "*", ".*"))
	if len(leftovers) > 0 {
		t.Errorf("left behind: %v", leftovers)
	}
}

func TestTruncatedApplyScriptRunsNothing(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh is not installed")
	}
	dir := t.TempDir()
	l := routerfiles.Layout{Nftables: filepath.Join(dir, "n"), Dnsmasq: filepath.Join(dir, "d"), Sysctl: filepath.Join(dir, "s"),
		StartDnsmasq: "touch " + filepath.Join(dir, "started"), RestartDnsmasq: "touch " + filepath.Join(dir, "started")}
	script := routerfiles.ApplyScript(routerfiles.Render(testSpec(t, nil)), l)
	// Cut anywhere after the opening brace, even just before the closing one.
	for _, cut := range []int{len(script) / 3, len(script) * 2 / 3, len(script) - 3} {
		cmd := exec.Command("sh", "-s")
		cmd.Stdin = strings.NewReader(script[:cut])
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("cut at %d of %d: a truncated script succeeded:\n%s", cut, len(script), out)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Fatalf("cut at %d of %d: a truncated script changed %v", cut, len(script), entries)
		}
	}
}

func TestApplyScriptStopsOnRejectedFile(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "nft"), []byte("#!/bin/sh\necho 'nft: syntax error' >&2\nexit 1\n"), 0o755)
	l := routerfiles.Layout{Nftables: filepath.Join(dir, "n"), Dnsmasq: filepath.Join(dir, "d"), Sysctl: filepath.Join(dir, "s")}
	cmd := exec.Command("sh", "-c", routerfiles.ApplyScript(routerfiles.Render(testSpec(t, nil)), l))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "syntax error") {
		t.Fatalf("err = %v, output %q: want the check's failure", err, out)
	}
	for _, p := range []string{l.Nftables, l.Dnsmasq, l.Sysctl} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was installed although the ruleset was rejected", p)
		}
	}
}
