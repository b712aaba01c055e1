package routerns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks/inputs"
)

// The pair's own external addresses; routerExt (203.0.113.2) is the
// external VIP, the plan's RouterInternal the internal one.
var pairExternal = [2]string{"203.0.113.3", "203.0.113.4"}

// pairVRID is the lab's VRRP virtual router ID.
const pairVRID = 51

// pairNet is the pair's network:
//
//	ext: br0 (203.0.113.1, .10, .100) -- x-a -- ra eth0 (203.0.113.3, VIP .2)
//	                                  -- x-b -- rb eth0 (203.0.113.4, VIP .2)
//	switch: br0 -- p-a -- ra eth1 (own internal, VIP: the plan's router address)
//	            -- p-b -- rb eth1
//	            -- p-node -- node eth0 (first control plane's address and MAC)
//
// Both routers get their files from Render with Pair index 0 and 1, applied
// by ApplyScript with a lab Layout that runs keepalived, conntrackd and
// dnsmasq as plain daemons inside the router's namespace.
type pairNet struct {
	*lab
	c             config.Config
	p             config.Plan
	ext, sw, node string
	r             [2]*pairRouter
}

// pairRouter is one router of the pair.
type pairRouter struct {
	index       int
	ns, dir     string
	own, ownExt netip.Addr
	spec        routerfiles.Spec
	layout      routerfiles.Layout
}

// buildPair builds the pair's network and applies both routers' files,
// router 0 (which becomes master) first; without conntrackd (the
// ablation), neither router starts it.
func buildPair(t *testing.T, withConntrackd bool) *pairNet {
	requireNetns(t)
	c, p := testStack(t, nil)
	l := newLab(t)
	l.addNS("ext", "switch", "node", "ra", "rb")
	n := &pairNet{lab: l, c: c, p: p, ext: l.ns("ext"), sw: l.ns("switch"), node: l.ns("node")}
	own := [2]netip.Addr{p.RouterInternal.Next(), p.RouterInternal.Next().Next()}
	for _, a := range own {
		for _, m := range p.Machines() {
			if m.Address == a || (!a.Less(p.DHCPStart) && !p.DHCPEnd.Less(a)) {
				t.Fatalf("the routers' own address %s is taken in the plan", a)
			}
		}
	}
	for i, role := range []string{"ra", "rb"} {
		n.r[i] = &pairRouter{index: i, ns: l.ns(role), dir: filepath.Join(l.dir, role),
			own: own[i], ownExt: netip.MustParseAddr(pairExternal[i])}
	}
	n.wire(t)
	for _, r := range n.r {
		n.configure(t, r, n.r[1-r.index], withConntrackd)
	}
	// Router 0 first, and router 1 once it is master: the first election
	// otherwise goes to whichever timer runs out first, which on a loaded
	// machine is not always the higher priority's. The tests want the
	// higher priority as the master that fails and comes back.
	n.applyRouter(t, n.r[0])
	if !waitFor(electionWait, func() bool { in, ex := n.holdsVIPs(n.r[0]); return in && ex }) {
		n.logs(t)
		t.Fatalf("%s alone did not become master", n.r[0].ns)
	}
	n.applyRouter(t, n.r[1])
	return n
}

// wire builds the bridges and links, and the external host's and node's
// addresses.
func (n *pairNet) wire(t *testing.T) {
	l, p := n.lab, n.p
	for _, ns := range []string{n.sw, n.ext} {
		l.ip(t, "-n", ns, "link", "add", "br0", "type", "bridge")
		l.ip(t, "-n", ns, "link", "set", "br0", "up")
	}
	for i, r := range n.r {
		side := []string{"a", "b"}[i]
		l.ip(t, "-n", r.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "x-"+side, "netns", n.ext)
		l.ip(t, "-n", n.ext, "link", "set", "x-"+side, "master", "br0", "up")
		l.ip(t, "-n", r.ns, "link", "add", "eth1", "type", "veth", "peer", "name", "p-"+side, "netns", n.sw)
		l.ip(t, "-n", n.sw, "link", "set", "p-"+side, "master", "br0", "up")
	}
	l.ip(t, "-n", n.node, "link", "add", "eth0", "type", "veth", "peer", "name", "p-node", "netns", n.sw)
	l.ip(t, "-n", n.sw, "link", "set", "p-node", "master", "br0", "up")
	cp := p.ControlPlanes[0]
	l.ip(t, "-n", n.node, "link", "set", "eth0", "address", strings.ToLower(cp.MAC))
	l.ip(t, "-n", n.node, "addr", "add", fmt.Sprintf("%s/%d", cp.Address, p.Internal.Bits()), "dev", "eth0")
	l.ip(t, "-n", n.node, "link", "set", "eth0", "up")
	l.ip(t, "-n", n.node, "route", "add", "default", "via", p.RouterInternal.String())
	for _, a := range []string{extHost, adminSrc, outsider} {
		l.ip(t, "-n", n.ext, "addr", "add", fmt.Sprintf("%s/%d", a, p.External.Bits()), "dev", "br0")
	}
	l.ip(t, "-n", n.ext, "route", "add", p.Internal.String(), "via", p.RouterExternal.String())
}

// configure gives router r its own addresses (as Proxmox would), and its
// Spec and lab Layout.
func (n *pairNet) configure(t *testing.T, r, peer *pairRouter, withConntrackd bool) {
	l, p := n.lab, n.p
	l.ip(t, "-n", r.ns, "addr", "add", fmt.Sprintf("%s/%d", r.ownExt, p.External.Bits()), "dev", "eth0")
	l.ip(t, "-n", r.ns, "addr", "add", fmt.Sprintf("%s/%d", r.own, p.Internal.Bits()), "dev", "eth1")
	l.ip(t, "-n", r.ns, "link", "set", "eth0", "up")
	l.ip(t, "-n", r.ns, "link", "set", "eth1", "up")
	l.ip(t, "-n", r.ns, "route", "add", "default", "via", p.ExternalGateway.String())

	r.layout = pairLayout(t, r.dir, withConntrackd)
	s, err := inputs.RouterFiles(n.c, p)
	if err != nil {
		t.Fatal(err)
	}
	s.HostsDir, s.DHCPHostsDir, s.NftablesHostsDir = r.layout.HostsDir, r.layout.DHCPHostsDir, r.layout.NftablesHostsDir
	s.VRRPNotify, s.ConntrackdConf = r.layout.VRRPNotify, r.layout.Conntrackd
	s.ConntrackdSocket, s.ConntrackdLockFile = filepath.Join(r.dir, "conntrackd.ctl"), filepath.Join(r.dir, "conntrackd.lock")
	s.Pair = &routerfiles.Pair{Index: r.index, VRID: pairVRID,
		OwnInternal: r.own, PeerInternal: peer.own, OwnExternal: r.ownExt, PeerExternal: peer.ownExt}
	if err := s.CheckPair(); err != nil {
		t.Fatal(err)
	}
	if err := routerfiles.Render(s).CheckLayout(r.layout); err != nil {
		t.Fatal(err)
	}
	r.spec = s
}

// pairLayout puts a router's files under dir and runs its daemons there:
// dnsmasq, conntrackd (unless the ablation leaves it out) and keepalived,
// each with pid, lock, socket and log files of its own, since the
// defaults are not per network namespace.
func pairLayout(t *testing.T, dir string, withConntrackd bool) routerfiles.Layout {
	// dnsmasq drops root and keepalived's script security refuses a path
	// others may write: every directory down to the files is 0755.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.MkdirAll(d, 0o755)
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	l := routerfiles.Layout{
		Nftables: f("etc", "nftables.conf"), Dnsmasq: f("etc", "dnsmasq.d", "sda.conf"), Sysctl: f("etc", "sysctl.d", "99-sda.conf"),
		HostsDir: f("etc", "sda", "hosts.d"), DHCPHostsDir: f("etc", "sda", "dhcp-hosts.d"), NftablesHostsDir: f("etc", "sda", "nftables.d"),
		Keepalived: f("etc", "keepalived", "keepalived.conf"), Conntrackd: f("etc", "conntrackd", "conntrackd.conf"), VRRPNotify: f("etc", "sda", "vrrp-notify.sh"),
	}
	// --no-ping: dnsmasq's check that a dynamic address is unused costs 3 s
	// per new lease and proves nothing here (the lab has no squatters).
	dnsmasq := fmt.Sprintf("dnsmasq --conf-file=%s --pid-file=%s --dhcp-leasefile=%s --log-facility=%s --log-dhcp --no-ping",
		q(l.Dnsmasq), q(f("dnsmasq.pid")), q(f("dnsmasq.leases")), q(f("dnsmasq.log")))
	l.StartDnsmasq, l.RestartDnsmasq, l.ReloadDnsmasq = daemonCommands(f("dnsmasq.pid"), dnsmasq)
	if withConntrackd {
		ctd := fmt.Sprintf("conntrackd -C %s", q(l.Conntrackd))
		l.StartConntrackd = fmt.Sprintf("%s -s >/dev/null 2>&1 || %s -d >%s 2>&1 </dev/null", ctd, ctd, q(f("conntrackd.out")))
		l.RestartConntrackd = fmt.Sprintf("%s -k >/dev/null 2>&1 || true; rm -f %s; %s -d >%s 2>&1 </dev/null", ctd, q(f("conntrackd.lock")), ctd, q(f("conntrackd.out")))
	}
	// keepalived in the foreground, in the background of the script: its
	// console log goes to a file the tests read.
	keepalived := fmt.Sprintf("{ keepalived -n -l -D -P -f %s -p %s -r %s -c %s >>%s 2>&1 </dev/null & }",
		q(l.Keepalived), q(f("keepalived.pid")), q(f("vrrp.pid")), q(f("checkers.pid")), q(f("keepalived.log")))
	l.StartKeepalived, _, _ = daemonCommands(f("keepalived.pid"), keepalived)
	l.ReloadKeepalived = fmt.Sprintf(`if %s; then kill -HUP "$p"; else %s; fi`, running(f("keepalived.pid")), keepalived)
	return l
}

// daemonCommands are the start, restart and reload (SIGHUP) commands of a
// daemon whose pid file is pidFile, as configureRouter's for dnsmasq.
func daemonCommands(pidFile, start string) (startCmd, restart, reload string) {
	running := running(pidFile)
	startCmd = fmt.Sprintf("if %s; then :; else %s; fi", running, start)
	restart = fmt.Sprintf(`if %[1]s; then kill "$p"; i=0; while %[1]s && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; fi; %[2]s`, running, start)
	reload = fmt.Sprintf(`if %s; then kill -HUP "$p"; fi`, running)
	return startCmd, restart, reload
}

// running is a shell condition: pidFile names a live process that is not
// a zombie (pid 1 may reap orphans late); it sets $p to its pid.
func running(pidFile string) string {
	return fmt.Sprintf(`{ p=$(cat %s 2>/dev/null) && [ -n "$p" ] && [ -e /proc/$p ] && ! grep -q '^State:[[:space:]]*Z' /proc/$p/status 2>/dev/null; }`, q(pidFile))
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// applyRouter runs r's apply script and every host's script in r's
// namespace, as RouterLXC runs them in the container.
func (n *pairNet) applyRouter(t *testing.T, r *pairRouter) string {
	t.Helper()
	out := n.script(t, r, routerfiles.ApplyScript(routerfiles.Render(r.spec), r.layout))
	for _, h := range r.spec.Hosts {
		out += n.script(t, r, routerfiles.HostScript(h, r.layout))
	}
	return out
}

func (n *pairNet) script(t *testing.T, r *pairRouter, script string) string {
	t.Helper()
	out, err := runInput(context.Background(), script, "ip", "netns", "exec", r.ns, "sh", "-s")
	if err != nil {
		t.Fatalf("script in %s: %v\n%s", r.ns, err, out)
	}
	return out
}

// holdsVIPs says whether r holds both virtual addresses.
func (n *pairNet) holdsVIPs(r *pairRouter) (internal, external bool) {
	in, _ := n.exec(r.ns, "ip", "-4", "-o", "addr", "show", "dev", "eth1")
	ex, _ := n.exec(r.ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	return strings.Contains(in, " "+n.p.RouterInternal.String()+"/"), strings.Contains(ex, " "+n.p.RouterExternal.String()+"/")
}

// master waits up to d for exactly one router to hold both VIPs and the
// other neither, and returns it (nil after d, with the logs in the test's).
func (n *pairNet) master(t *testing.T, d time.Duration) *pairRouter {
	t.Helper()
	var m *pairRouter
	ok := waitFor(d, func() bool {
		m = nil
		held := 0
		for _, r := range n.r {
			in, ex := n.holdsVIPs(r)
			if in && ex {
				m = r
			}
			if in || ex {
				held++
			}
		}
		return m != nil && held == 1
	})
	if !ok {
		n.logs(t)
		return nil
	}
	return m
}

// logs puts both routers' keepalived logs into the test's output.
func (n *pairNet) logs(t *testing.T) {
	t.Helper()
	for _, r := range n.r {
		t.Logf("%s keepalived.log:\n%s", r.ns, readFile(filepath.Join(r.dir, "keepalived.log")))
	}
}

// linksDown takes both of r's links down (up again with down false), as a
// host losing its NICs: the internal one first, so keepalived cannot tell
// the peer (a fault of the external link alone sends a priority 0 advert,
// and the peer takes over within its skew time, not 3 adverts).
func (n *pairNet) linksDown(t *testing.T, r *pairRouter, down bool) {
	t.Helper()
	state := map[bool]string{true: "down", false: "up"}[down]
	n.ip(t, "-n", r.ns, "link", "set", "eth1", state)
	n.ip(t, "-n", r.ns, "link", "set", "eth0", state)
}

// killKeepalived ends r's keepalived (parent and VRRP child) with SIGKILL:
// a crash, which leaves the addresses where they are.
func (n *pairNet) killKeepalived(t *testing.T, r *pairRouter) {
	t.Helper()
	var pids []int
	for _, f := range []string{"keepalived.pid", "vrrp.pid"} {
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(r.dir, f))))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pids = append(pids, pid)
	}
	// Stopped first, so that neither sees the other die: the VRRP child
	// ends gracefully (priority 0 advert, addresses removed) when its
	// parent does, and the parent would respawn a dead child.
	for _, sig := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGKILL} {
		for _, pid := range pids {
			syscall.Kill(pid, sig)
		}
	}
}

// startKeepalived starts r's keepalived again (as systemd's restart would).
func (n *pairNet) startKeepalived(t *testing.T, r *pairRouter) {
	t.Helper()
	n.script(t, r, r.layout.StartKeepalived)
}

// String names the router by its namespace ("none" for no router).
func (r *pairRouter) String() string {
	if r == nil {
		return "none"
	}
	return r.ns
}
