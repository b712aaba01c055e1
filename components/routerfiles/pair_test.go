package routerfiles_test

import (
	"context"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
)

// pairSpec is the fixture's router as router index of a pair: the fixture's
// RouterInternal (10.30.0.1) and RouterExternal (192.0.2.5) become the
// virtual addresses, .2/.3 and .6/.7 the routers' own.
func pairSpec(t *testing.T, index int) routerfiles.Spec {
	t.Helper()
	s := testSpec(t, nil)
	a := func(x string) netip.Addr { return netip.MustParseAddr(x) }
	own, peer := []string{"10.30.0.2", "192.0.2.6"}, []string{"10.30.0.3", "192.0.2.7"}
	if index == 1 {
		own, peer = peer, own
	}
	s.Pair = &routerfiles.Pair{Index: index, VRID: 51,
		OwnInternal: a(own[0]), PeerInternal: a(peer[0]), OwnExternal: a(own[1]), PeerExternal: a(peer[1])}
	if err := s.CheckPair(); err != nil {
		t.Fatal(err)
	}
	return s
}

// lineIndex is the position of the line want in s, -1 when it is not a line of s.
func lineIndex(s, want string) int {
	i := strings.Index("\n"+s, "\n"+want+"\n")
	return i
}

// TestRenderPairKeepalived protects the VRRP instance's contract: both
// addresses move together, BACKUP+nopreempt on both, priorities by index,
// unicast between the own addresses, both links tracked, the notify script
// at its three transitions.
func TestRenderPairKeepalived(t *testing.T) {
	for _, tc := range []struct {
		index           int
		prio, own, peer string
	}{{0, "150", "10.30.0.2", "10.30.0.3"}, {1, "100", "10.30.0.3", "10.30.0.2"}} {
		f := routerfiles.Render(pairSpec(t, tc.index))
		for _, line := range []string{
			"\tstate BACKUP", "\tnopreempt", "\tinterface eth1", "\tvirtual_router_id 51",
			"\tpriority " + tc.prio, "\tadvert_int 1", "\tunicast_src_ip " + tc.own,
			"\tunicast_peer {\n\t\t" + tc.peer + "\n\t}",
			"\ttrack_interface {\n\t\teth0\n\t}",
			"\tvirtual_ipaddress {\n\t\t10.30.0.1/24 dev eth1\n\t\t192.0.2.5/24 dev eth0\n\t}",
			"\tgarp_master_refresh 30", "\tenable_script_security", "\tscript_user root",
			`	notify_master "/etc/sda/vrrp-notify.sh primary"`,
			`	notify_backup "/etc/sda/vrrp-notify.sh backup"`,
			`	notify_fault "/etc/sda/vrrp-notify.sh fault"`,
		} {
			if lineIndex(f.Keepalived, line) < 0 {
				t.Errorf("index %d: keepalived.conf lacks %q:\n%s", tc.index, line, f.Keepalived)
			}
		}
		if strings.Contains(f.Keepalived, "state MASTER") || strings.Count(f.Keepalived, "{") != strings.Count(f.Keepalived, "}") {
			t.Errorf("index %d: a MASTER state or unbalanced braces:\n%s", tc.index, f.Keepalived)
		}
	}
}

// TestRenderPairConntrackd protects the sync's contract: FTFW with the
// external cache, unicast UDP between the own addresses on the internal
// interface, and the routers' own addresses and VIPs ignored.
func TestRenderPairConntrackd(t *testing.T) {
	f := routerfiles.Render(pairSpec(t, 1))
	for _, line := range []string{
		"\tMode FTFW {\n\t\tDisableExternalCache Off\n\t}",
		"\t\tIPv4_address 10.30.0.3", "\t\tIPv4_Destination_Address 10.30.0.2",
		"\t\tPort 3780", "\t\tInterface eth1",
		"\tLockFile /var/lock/conntrack.lock", "\t\tPath /var/run/conntrackd.ctl",
		"\t\tAddress Ignore {\n\t\t\tIPv4_address 127.0.0.1\n\t\t\tIPv4_address 10.30.0.1\n\t\t\tIPv4_address 10.30.0.2\n\t\t\tIPv4_address 10.30.0.3\n\t\t\tIPv4_address 192.0.2.5\n\t\t\tIPv4_address 192.0.2.6\n\t\t\tIPv4_address 192.0.2.7\n\t\t}",
		"\t\t\tTCP", "\t\t\tUDP",
	} {
		if lineIndex(f.Conntrackd, line) < 0 {
			t.Errorf("conntrackd.conf lacks %q:\n%s", line, f.Conntrackd)
		}
	}
	// The notify script: on becoming master commit, flush, resync, bulk
	// send, in this order, with the configuration's path.
	last := -1
	for _, step := range []string{"conf='/etc/conntrackd/conntrackd.conf'", "\nprimary)\n", "\tctd -c ", "\tctd -f ", "\tctd -R ", "\tctd -B ", "\nbackup)\n", "\tctd -t ", "\tctd -n ", "\nfault)\n"} {
		i := strings.Index(f.VRRPNotify, step)
		if i <= last {
			t.Errorf("the notify script lacks %q after position %d:\n%s", step, last, f.VRRPNotify)
		}
		last = i
	}
	if out, err := exec.CommandContext(context.Background(), "sh", "-n", "-c", f.VRRPNotify).CombinedOutput(); err != nil {
		t.Errorf("sh -n on the notify script: %v\n%s", err, out)
	}
}

// TestRenderPairFirewall protects the pair's nftables changes: SNAT to the
// external VIP instead of masquerade, VRRP and sync accepted from the
// peer's own internal address only and dropped from anyone else, both
// before the internal side's broad accept and after the BCP 38 drop.
func TestRenderPairFirewall(t *testing.T) {
	f := routerfiles.Render(pairSpec(t, 0))
	input := f.Nftables[strings.Index(f.Nftables, "\tchain input {"):strings.Index(f.Nftables, "\tchain forward {")]
	order := []string{
		"\t\tiifname \"eth0\" ip saddr 10.30.0.0/24 drop",
		"\t\tiifname \"eth1\" ip saddr 10.30.0.3 ip daddr 10.30.0.2 ip protocol 112 accept comment \"VRRP\"",
		"\t\tiifname \"eth1\" ip saddr 10.30.0.3 ip daddr 10.30.0.2 udp dport 3780 accept comment \"conntrackd\"",
		"\t\tip protocol 112 drop comment \"VRRP\"",
		"\t\tudp dport 3780 drop comment \"conntrackd\"",
		"\t\tiifname \"eth1\" accept",
	}
	last := -1
	for _, line := range order {
		i := lineIndex(input, line)
		if i <= last {
			t.Errorf("the input chain lacks %q after position %d:\n%s", line, last, input)
		}
		last = i
	}
	if lineIndex(f.Nftables, "\t\toifname \"eth0\" ip saddr 10.30.0.0/24 snat ip to 192.0.2.5") < 0 || strings.Contains(f.Nftables, "masquerade") {
		t.Errorf("want SNAT to the external VIP and no masquerade:\n%s", f.Nftables)
	}
	// Everything else of the single router's ruleset holds: only the pair's
	// six input lines and the NAT line differ.
	single := routerfiles.Render(testSpec(t, nil)).Nftables
	for _, line := range strings.Split(single, "\n") {
		if !strings.Contains(line, "masquerade") && !strings.Contains(line, "leaves with the router") && lineIndex(f.Nftables, line) < 0 {
			t.Errorf("the pair's ruleset lost the single router's line %q", line)
		}
	}
	if lineIndex(f.Sysctl, "net.netfilter.nf_conntrack_tcp_loose = 0") < 0 || lineIndex(f.Sysctl, "net.ipv4.ip_forward = 1") < 0 {
		t.Errorf("sysctl:\n%s", f.Sysctl)
	}
}

var dhcpRangeRE = regexp.MustCompile(`(?m)^dhcp-range=([0-9.]+),([0-9.]+),`)

// TestRenderPairDHCP protects the split: each router leases its own half,
// the halves are disjoint and cover the range, both point at the VIP, and
// neither claims to be the only server.
func TestRenderPairDHCP(t *testing.T) {
	for _, r := range [][2]string{{"10.30.0.192", "10.30.0.254"}, {"10.30.0.100", "10.30.0.199"}, {"10.30.0.250", "10.30.1.5"}, {"10.30.0.10", "10.30.0.11"}} {
		var halves [2][2]netip.Addr
		for index := range 2 {
			s := pairSpec(t, index)
			s.DHCPStart, s.DHCPEnd = netip.MustParseAddr(r[0]), netip.MustParseAddr(r[1])
			if err := s.CheckPair(); err != nil {
				t.Fatal(err)
			}
			d := routerfiles.Render(s).Dnsmasq
			m := dhcpRangeRE.FindAllStringSubmatch(d, -1)
			if len(m) != 1 {
				t.Fatalf("range %v index %d: %d dhcp-range lines:\n%s", r, index, len(m), d)
			}
			halves[index] = [2]netip.Addr{netip.MustParseAddr(m[0][1]), netip.MustParseAddr(m[0][2])}
			for _, line := range []string{"bind-dynamic", "dhcp-option=option:router,10.30.0.1", "dhcp-option=option:dns-server,10.30.0.1", "dhcp-hostsdir=/etc/sda/dhcp-hosts.d"} {
				if lineIndex(d, line) < 0 {
					t.Errorf("index %d lacks %q:\n%s", index, line, d)
				}
			}
			if lineIndex(d, "bind-interfaces") >= 0 || lineIndex(d, "dhcp-authoritative") >= 0 {
				t.Errorf("index %d: bind-interfaces or dhcp-authoritative in a pair:\n%s", index, d)
			}
		}
		lo, hi := halves[0], halves[1]
		if lo[0].String() != r[0] || hi[1].String() != r[1] || lo[1].Next() != hi[0] || hi[0].Less(lo[0]) || lo[1].Less(lo[0]) || hi[1].Less(hi[0]) {
			t.Errorf("range %v split into %v and %v: want two disjoint halves that cover it", r, lo, hi)
		}
	}
}

// TestCheckPair reports every problem of a pair at once, and nothing for a
// single router or a sound pair.
func TestCheckPair(t *testing.T) {
	if err := testSpec(t, nil).CheckPair(); err != nil {
		t.Errorf("a single router: %v", err)
	}
	s := pairSpec(t, 0)
	s.Pair.Index, s.Pair.VRID = 2, 0
	s.Pair.PeerInternal = s.RouterInternal
	s.Pair.OwnExternal = netip.MustParseAddr("10.30.0.9")
	s.DHCPEnd = s.DHCPStart
	err := s.CheckPair()
	for _, want := range []string{"index 2", "VRID 0", "own external address 10.30.0.9 is not an IPv4 address in 192.0.2.0/24", "internal addresses", "cannot be split"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPair() = %v, want it to say %q", err, want)
		}
	}
}

// TestPairApplyScript protects the apply order of a pair's router: checks
// before anything is installed, the sysctl after the ruleset, conntrackd
// before keepalived, keepalived reloaded (not restarted) when changed,
// and both daemons enabled.
func TestPairApplyScript(t *testing.T) {
	f := routerfiles.Render(pairSpec(t, 0))
	if f.Digest() == routerfiles.Render(testSpec(t, nil)).Digest() || f.Digest() == routerfiles.Render(pairSpec(t, 1)).Digest() {
		t.Error("the pair's digest equals the single router's or the peer's")
	}
	l := routerfiles.DebianLayout()
	if err := f.CheckLayout(l); err != nil {
		t.Errorf("DebianLayout: %v", err)
	}
	script := routerfiles.ApplyScript(f, l)
	last := -1
	for _, step := range []string{
		`nft -c -f "$work/nftables"`,
		`keepalived --config-test -f "$work/keepalived"`,
		`sh -n "$work/vrrp-notify"`,
		`install_changed "$work/sysctl" '/etc/sysctl.d/99-sda.conf' || true`,
		"nft -f '/etc/nftables.conf'",
		"sysctl -q -p '/etc/sysctl.d/99-sda.conf'",
		`install_changed "$work/vrrp-notify" '/etc/sda/vrrp-notify.sh' || true`,
		"chmod 0755 '/etc/sda/vrrp-notify.sh'",
		`if install_changed "$work/conntrackd" '/etc/conntrackd/conntrackd.conf'; then`,
		"\tsystemctl restart conntrackd.service",
		`if install_changed "$work/keepalived" '/etc/keepalived/keepalived.conf'; then`,
		"\tif systemctl is-active --quiet keepalived.service; then systemctl reload keepalived.service; else systemctl start keepalived.service; fi",
		"systemctl enable --quiet nftables.service dnsmasq.service",
		`mkdir -p /etc/systemd/system/keepalived.service.d && printf '[Service]\nRestart=on-failure\nRestartSec=1s\n' >/etc/systemd/system/keepalived.service.d/sda.conf && systemctl daemon-reload && systemctl enable --quiet keepalived.service conntrackd.service`,
	} {
		i := lineIndex(script, step)
		if i <= last {
			t.Errorf("the apply script lacks %q after position %d", step, last)
		}
		last = i
	}
	// The simulated pct knows a pair's apply by its marker; a single
	// router's apply has none.
	if lineIndex(script, routerfiles.PairApplyMarker) < 0 || strings.Contains(routerfiles.ApplyScript(routerfiles.Render(testSpec(t, nil)), l), routerfiles.PairApplyMarker) {
		t.Errorf("the pair apply script should carry %q and the single router's not", routerfiles.PairApplyMarker)
	}
	if strings.Count(script, "sysctl -q -p") != 1 {
		t.Errorf("the sysctl file is applied %d times, want once (after the ruleset)", strings.Count(script, "sysctl -q -p"))
	}
	if out, err := exec.CommandContext(context.Background(), "sh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
	l.VRRPNotify = "/elsewhere/notify.sh"
	if err := f.CheckLayout(l); err == nil || !strings.Contains(err.Error(), "keepalived configuration") {
		t.Errorf("CheckLayout with another notify path: %v, want an error naming the keepalived configuration", err)
	}
}
