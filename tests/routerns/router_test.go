package routerns

import (
	"context"
	"fmt"
	"github.com/sda-platform/sda/stacks/inputs"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/config"
)

// The external side of the test network, in TEST-NET-3: these addresses
// exist only inside the test's namespaces.
const (
	extCIDR   = "203.0.113.0/24"
	extHost   = "203.0.113.1"    // the external gateway, the upstream DNS address, the NAT observer
	routerExt = "203.0.113.2"    // the router's static external address
	adminCIDR = "203.0.113.8/29" // sda:network.adminCidrs
	adminSrc  = "203.0.113.10"   // an admin, the machine that runs Pulumi: inside adminCIDR, the only sda:network.talosApiCidrs
	colleague = "203.0.113.11"   // another admin: inside adminCIDR, not in talosApiCidrs
	outsider  = "203.0.113.100"  // anyone else
	dhcpMAC   = "02:00:00:00:53:01"

	observerPort = 7000 // where the external host sees who connects
	blockedWait  = "1500ms"
	openWait     = "5s"
)

// testStack is the repository's dev stack (its real stack files, through
// config.LoadStack) with only what the test network needs changed: the
// external network and router address, an upstream DNS server and admin
// CIDR inside it, and two port-forwards to the first control plane, one of
// them restricted. mod changes more before the configuration is resolved.
func testStack(t *testing.T, mod func(*config.Config)) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := config.LoadStack(stacksDir(t), "dev")
	if err != nil {
		t.Fatal(err)
	}
	node := p.ControlPlanes[0].Hostname
	c.Network.External.CIDR = extCIDR
	c.Network.External.RouterAddress = routerExt
	c.Network.External.Gateway = extHost
	c.Network.DNSServers = []string{extHost}
	c.Network.AdminCIDRs = []string{adminCIDR}
	c.Network.TalosAPICIDRs = []string{adminSrc + "/32"}
	c.Network.PortForwards = []config.PortForward{
		{Name: "web", Port: 8443, Target: node, TargetPort: 30443},
		{Name: "restricted", Port: 2222, Target: node, TargetPort: 30022, AllowFrom: []string{adminSrc + "/32"}},
	}
	if mod != nil {
		mod(&c)
	}
	c, p, err = config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// testNet is the network:
//
//	ext (203.0.113.1, .10, .100) --veth-- router eth0 (203.0.113.2)
//	                                      router eth1 (plan's router address) --veth-- br0 in "switch"
//	                                      node eth0 (first control plane's address and MAC) -- br0
//	                                      dhcp eth0 (no address: asks DHCP) -- br0
//
// The switch namespace plays the internal Proxmox bridge.
type testNet struct {
	*lab
	ext, router, node, dhcp string
	layout                  routerfiles.Layout
	pidFile, leaseFile      string
}

func buildNet(t *testing.T, p config.Plan) *testNet {
	l := newLab(t)
	l.addNS("ext", "router", "switch", "node", "dhcp")
	n := &testNet{lab: l, ext: l.ns("ext"), router: l.ns("router"), node: l.ns("node"), dhcp: l.ns("dhcp")}
	sw := l.ns("switch")

	l.ip(t, "-n", sw, "link", "add", "br0", "type", "bridge")
	l.ip(t, "-n", sw, "link", "set", "br0", "up")
	l.ip(t, "-n", n.router, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", n.ext)
	for _, end := range []struct{ ns, dev, port string }{
		{n.router, "eth1", "p-router"}, {n.node, "eth0", "p-node"}, {n.dhcp, "eth0", "p-dhcp"},
	} {
		l.ip(t, "-n", end.ns, "link", "add", end.dev, "type", "veth", "peer", "name", end.port, "netns", sw)
		l.ip(t, "-n", sw, "link", "set", end.port, "master", "br0", "up")
	}

	// The static host is the first control plane, as Talos configures it.
	cp := p.ControlPlanes[0]
	l.ip(t, "-n", n.node, "link", "set", "eth0", "address", strings.ToLower(cp.MAC))
	l.ip(t, "-n", n.node, "addr", "add", fmt.Sprintf("%s/%d", cp.Address, p.Internal.Bits()), "dev", "eth0")
	if p.KubernetesAPIAddress() != cp.Address { // the VIP, held by a control plane
		l.ip(t, "-n", n.node, "addr", "add", fmt.Sprintf("%s/%d", p.KubernetesAPIAddress(), p.Internal.Bits()), "dev", "eth0")
	}
	l.ip(t, "-n", n.node, "link", "set", "eth0", "up")
	l.ip(t, "-n", n.node, "route", "add", "default", "via", p.RouterInternal.String())

	l.ip(t, "-n", n.dhcp, "link", "set", "eth0", "address", dhcpMAC)
	l.ip(t, "-n", n.dhcp, "link", "set", "eth0", "up")

	n.configureRouter(t, p)
	return n
}

// configureRouter gives the external host its addresses and route, the
// router's eth0 (external) and eth1 (internal) their addresses, MTU and
// default route, as Proxmox configures them from the container's net0 and
// net1, and sets the layout of the router's files in the test's directory.
// The veth pairs ext/eth0--router/eth0 and router/eth1--(the internal
// bridge) must exist.
func (n *testNet) configureRouter(t *testing.T, p config.Plan) {
	t.Helper()
	l := n.lab
	extBits := p.External.Bits()
	for _, a := range []string{extHost, adminSrc, colleague, outsider} {
		l.ip(t, "-n", n.ext, "addr", "add", fmt.Sprintf("%s/%d", a, extBits), "dev", "eth0")
	}
	l.ip(t, "-n", n.ext, "link", "set", "eth0", "up")
	// Admins route the internal network through the router.
	l.ip(t, "-n", n.ext, "route", "add", p.Internal.String(), "via", p.RouterExternal.String())

	l.ip(t, "-n", n.router, "addr", "add", fmt.Sprintf("%s/%d", p.RouterExternal, extBits), "dev", "eth0")
	l.ip(t, "-n", n.router, "addr", "add", fmt.Sprintf("%s/%d", p.RouterInternal, p.Internal.Bits()), "dev", "eth1")
	if p.Network.MTU != 0 {
		l.ip(t, "-n", n.router, "link", "set", "eth1", "mtu", fmt.Sprint(p.Network.MTU))
	}
	l.ip(t, "-n", n.router, "link", "set", "eth0", "up")
	l.ip(t, "-n", n.router, "link", "set", "eth1", "up")
	l.ip(t, "-n", n.router, "route", "add", "default", "via", p.ExternalGateway.String())

	// The router's files go to the test's directory; dnsmasq runs as a
	// daemon with its pid and lease files there.
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	n.pidFile = filepath.Join(l.dir, "dnsmasq.pid")
	n.leaseFile = filepath.Join(l.dir, "dnsmasq.leases")
	n.layout = routerfiles.Layout{
		Nftables:         filepath.Join(l.dir, "etc", "nftables.conf"),
		Dnsmasq:          filepath.Join(l.dir, "etc", "dnsmasq.d", "sda.conf"),
		Sysctl:           filepath.Join(l.dir, "etc", "sysctl.d", "99-sda.conf"),
		HostsDir:         filepath.Join(l.dir, "etc", "sda", "hosts.d"),
		DHCPHostsDir:     filepath.Join(l.dir, "etc", "sda", "dhcp-hosts.d"),
		NftablesHostsDir: filepath.Join(l.dir, "etc", "sda", "nftables.d"),
	}
	// dnsmasq reads the hosts' directories after it has dropped root (to
	// nobody): like /etc in the container, the path must be world-readable.
	for _, d := range []string{l.dir, filepath.Dir(l.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	daemon := fmt.Sprintf("dnsmasq --conf-file=%s --pid-file=%s --dhcp-leasefile=%s --log-facility=%s --log-dhcp --log-queries",
		q(n.layout.Dnsmasq), q(n.pidFile), q(n.leaseFile), q(filepath.Join(l.dir, "dnsmasq.log")))
	// running: the pid file names a live process that is not a zombie (pid 1
	// may reap orphans late).
	running := fmt.Sprintf(`{ p=$(cat %s 2>/dev/null) && [ -n "$p" ] && [ -e /proc/$p ] && ! grep -q '^State:[[:space:]]*Z' /proc/$p/status 2>/dev/null; }`, q(n.pidFile))
	n.layout.StartDnsmasq = fmt.Sprintf("if %s; then :; else %s; fi", running, daemon)
	n.layout.RestartDnsmasq = fmt.Sprintf(`if %[1]s; then kill "$p"; i=0; while %[1]s && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; fi; %[2]s`, running, daemon)
	n.layout.ReloadDnsmasq = fmt.Sprintf(`if %s; then kill -HUP "$p"; fi`, running)
}

// spec is the router's Spec for c, with the hosts' directories in the
// test's directory (the layout's).
func (n *testNet) spec(t *testing.T, c config.Config, p config.Plan) routerfiles.Spec {
	t.Helper()
	s, err := inputs.RouterFiles(c, p)
	if err != nil {
		t.Fatal(err)
	}
	s.HostsDir, s.DHCPHostsDir, s.NftablesHostsDir = n.layout.HostsDir, n.layout.DHCPHostsDir, n.layout.NftablesHostsDir
	if err := routerfiles.Render(s).CheckLayout(n.layout); err != nil {
		t.Fatal(err)
	}
	return s
}

// apply renders c for the router exactly as RouterLXC does and runs what
// RouterLXC runs: the apply script, then every host's script. It returns
// the scripts' output.
func (n *testNet) apply(t *testing.T, c config.Config, p config.Plan) string {
	t.Helper()
	s := n.spec(t, c, p)
	out := n.script(t, routerfiles.ApplyScript(routerfiles.Render(s), n.layout))
	for _, h := range s.Hosts {
		out += n.script(t, routerfiles.HostScript(h, n.layout))
	}
	return out
}

// script runs a script in the router namespace the way RouterLXC runs it in
// the container (pct exec <id> -- sh -s, the script on stdin) and returns
// its output.
func (n *testNet) script(t *testing.T, script string) string {
	t.Helper()
	out, err := runInput(context.Background(), script, "ip", "netns", "exec", n.router, "sh", "-s")
	if err != nil {
		t.Fatalf("script in %s: %v\n%s", n.router, err, out)
	}
	return out
}

// dial connects from ns (from src, or "-" for the default source) to dst and
// returns "peer=<the source the server saw>", "timeout" or "refused".
func (n *testNet) dial(t testing.TB, ns, src, dst, wait string) string {
	t.Helper()
	return n.helper(t, ns, "dial", src, dst, wait)
}

// lookup asks server for the A records of name from ns.
func (n *testNet) lookup(t testing.TB, ns, src, server, name, wait string) string {
	t.Helper()
	return n.helper(t, ns, "lookup", src, server, name, wait)
}

// udhcpc runs busybox's DHCP client in ns and returns what it was offered
// (nil when nothing), with the client's output. The client keeps the lease.
func (n *testNet) udhcpc(t testing.TB, ns string, tries int) (map[string]string, string) {
	t.Helper()
	script, result := n.udhcpcScript(t, ns)
	out, _ := n.exec(ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", fmt.Sprint(tries), "-T", "1", "-s", script)
	return readLease(result), out
}

// udhcpcReleasing is udhcpc, except that the client gives the lease back
// before it returns. (busybox's -q ends without the release -R asks for;
// -R releases when the client is ended by a signal.)
func (n *testNet) udhcpcReleasing(t testing.TB, ns string, tries int) (map[string]string, string) {
	t.Helper()
	script, result := n.udhcpcScript(t, ns)
	var out strings.Builder
	cmd := exec.Command("ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-R", "-n", "-t", fmt.Sprint(tries), "-T", "1", "-s", script)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(cmdTimeout)
	for lease := readLease(result); lease == nil; lease = readLease(result) {
		select {
		case <-exited: // no lease: the client gave up
			return nil, out.String()
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			t.Fatalf("udhcpc in %s: no lease and no exit after %v:\n%s", ns, cmdTimeout, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGTERM) // `ip netns exec` runs the client in its own process
	select {
	case <-exited:
	case <-time.After(cmdTimeout):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("udhcpc in %s did not end on SIGTERM:\n%s", ns, out.String())
	}
	return readLease(result), out.String()
}

// udhcpcScript writes the client's script, which records a bound lease in
// the result file (removed here first).
func (n *testNet) udhcpcScript(t testing.TB, ns string) (script, result string) {
	t.Helper()
	script = filepath.Join(n.dir, "udhcpc-"+ns+".sh")
	result = script + ".lease"
	os.Remove(result)
	body := "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n" +
		"printf 'ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\ndomain=%s\\nlease=%s\\nserverid=%s\\n' " +
		"\"$ip\" \"$mask\" \"$router\" \"$dns\" \"$domain\" \"$lease\" \"$serverid\" >'" + result + ".new' && mv '" + result + ".new' '" + result + "'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, result
}

// readLease parses the result file; nil when there is none.
func readLease(result string) map[string]string {
	data, err := os.ReadFile(result)
	if err != nil {
		return nil
	}
	lease := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		lease[k] = strings.TrimSpace(v)
	}
	return lease
}

// routerState is what an identical re-apply must leave as it is.
type routerState struct {
	ruleset, dnsmasqPID, leases string
	// mtimes of every file under the router's etc: the main files and the hosts'.
	mtimes map[string]time.Time
}

func (n *testNet) state(t *testing.T) routerState {
	t.Helper()
	s := routerState{ruleset: n.must(t, n.router, "nft", "list", "table", "inet", routerfiles.TableName), mtimes: map[string]time.Time{}}
	pid, _ := os.ReadFile(n.pidFile)
	leases, _ := os.ReadFile(n.leaseFile)
	s.dnsmasqPID, s.leases = strings.TrimSpace(string(pid)), string(leases)
	err := filepath.WalkDir(filepath.Join(n.dir, "etc"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			s.mtimes[p] = info.ModTime()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{n.layout.Nftables, n.layout.Dnsmasq, n.layout.Sysctl} {
		if _, ok := s.mtimes[p]; !ok {
			t.Fatalf("%s is missing", p)
		}
	}
	return s
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains("\n"+out, "\n"+l+"\n") {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

func TestRouter(t *testing.T) {
	requireNetns(t) // before anything else can fail
	c, p := testStack(t, nil)
	n := buildNet(t, p)
	cp := p.ControlPlanes[0]
	nodeAddr := cp.Address.String()
	at := func(a any, port int) string { return fmt.Sprintf("%v:%d", a, port) }

	// Someone else's table, which applying must leave alone.
	n.must(t, n.router, "nft", "add table inet other; add set inet other keep { type ipv4_addr; elements = { 192.0.2.1 } }")
	hostForwarding, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")

	out := n.apply(t, c, p)
	wantLines(t, out, "updated: "+n.layout.Sysctl, "updated: "+n.layout.Nftables, "updated: "+n.layout.Dnsmasq)
	for _, m := range p.Machines() {
		wantLines(t, out, "updated: "+filepath.Join(n.layout.HostsDir, m.Hostname), "updated: "+filepath.Join(n.layout.DHCPHostsDir, m.Hostname),
			fmt.Sprintf("host applied: %s %s", m.Hostname, m.Address))
	}

	t.Run("forwarding is on in the router only", func(t *testing.T) {
		if got := strings.TrimSpace(n.must(t, n.router, "sysctl", "-n", "net.ipv4.ip_forward")); got != "1" {
			t.Errorf("router net.ipv4.ip_forward = %s, want 1", got)
		}
		if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(hostForwarding) {
			t.Errorf("the host's ip_forward changed from %q to %q", hostForwarding, now)
		}
	})

	n.serve(t, n.node, "0.0.0.0:50000", "0.0.0.0:6443", "0.0.0.0:22", "0.0.0.0:30443", "0.0.0.0:30022", "0.0.0.0:30090")
	n.serve(t, n.ext, at("0.0.0.0", observerPort))

	lease, dhcpOut := n.udhcpc(t, n.dhcp, 5)
	if lease == nil {
		t.Fatalf("the DHCP client got no lease:\n%s\ndnsmasq log:\n%s", dhcpOut, readFile(filepath.Join(n.dir, "dnsmasq.log")))
	}
	leased, err := netip.ParseAddr(lease["ip"])
	if err != nil {
		t.Fatalf("lease %v: %v", lease, err)
	}
	t.Run("DHCP gives an address in the range, the router as gateway and DNS", func(t *testing.T) {
		if leased.Less(p.DHCPStart) || p.DHCPEnd.Less(leased) {
			t.Errorf("leased %s, outside %s-%s", leased, p.DHCPStart, p.DHCPEnd)
		}
		for key, want := range map[string]string{
			"router": p.RouterInternal.String(), "dns": p.RouterInternal.String(),
			"mask": fmt.Sprint(p.Internal.Bits()), "domain": c.Network.Internal.Domain,
		} {
			if lease[key] != want {
				t.Errorf("lease %s = %q, want %q", key, lease[key], want)
			}
		}
		if leases := readFile(n.leaseFile); !strings.Contains(leases, dhcpMAC+" "+leased.String()) {
			t.Errorf("dnsmasq's lease file lacks %s %s:\n%s", dhcpMAC, leased, leases)
		}
	})
	n.ip(t, "-n", n.dhcp, "addr", "add", leased.String()+"/"+lease["mask"], "dev", "eth0")
	n.ip(t, "-n", n.dhcp, "route", "add", "default", "via", lease["router"])

	t.Run("node names resolve through the router", func(t *testing.T) {
		dns := lease["dns"]
		names := map[string]string{
			cp.Hostname + ".": nodeAddr,
			c.Router.Hostname + "." + c.Network.Internal.Domain + ".": p.RouterInternal.String(),
		}
		for _, m := range p.Machines() {
			names[m.Hostname+"."+c.Network.Internal.Domain+"."] = m.Address.String()
		}
		for name, want := range names {
			if got := n.lookup(t, n.dhcp, "-", dns, name, openWait); got != "a="+want {
				t.Errorf("%s from the DHCP host: %s, want a=%s", name, got, want)
			}
		}
		if got := n.lookup(t, n.node, "-", p.RouterInternal.String(), cp.Hostname+".", openWait); got != "a="+nodeAddr {
			t.Errorf("%s from the node: %s, want a=%s", cp.Hostname, got, nodeAddr)
		}
	})

	t.Run("the internal side leaves with the router's address", func(t *testing.T) {
		for _, ns := range []string{n.node, n.dhcp} {
			if got := n.dial(t, ns, "-", at(extHost, observerPort), openWait); got != "peer="+routerExt {
				t.Errorf("from %s the external host saw %q, want peer=%s", ns, got, routerExt)
			}
		}
	})

	t.Run("from outside", func(t *testing.T) {
		cases := []struct{ name, src, dst, want string }{
			{"admin to the Talos API of a node", adminSrc, at(nodeAddr, 50000), "peer=" + adminSrc},
			{"admin to the Kubernetes API", adminSrc, at(p.KubernetesAPIAddress(), 6443), "peer=" + adminSrc},
			{"admin to another port of a node", adminSrc, at(nodeAddr, 22), "timeout"},
			// Maintenance mode takes a configuration from anyone on 50000:
			// only the deployer reaches it; the other admins get 6443.
			{"another admin to the Kubernetes API", colleague, at(p.KubernetesAPIAddress(), 6443), "peer=" + colleague},
			{"another admin to the Talos API", colleague, at(nodeAddr, 50000), "timeout"},
			{"outsider to the Talos API", outsider, at(nodeAddr, 50000), "timeout"},
			{"outsider to the Kubernetes API", outsider, at(p.KubernetesAPIAddress(), 6443), "timeout"},
			{"outsider to a forward's target port, directly", outsider, at(nodeAddr, 30443), "timeout"},
			{"port-forward open to anyone", outsider, at(routerExt, 8443), "peer=" + outsider},
			{"restricted port-forward from its allowed source", adminSrc, at(routerExt, 2222), "peer=" + adminSrc},
			{"restricted port-forward from another source", outsider, at(routerExt, 2222), "timeout"},
			{"a port not published yet", outsider, at(routerExt, 9090), "timeout"},
			{"the router's own ssh port", outsider, at(routerExt, 22), "timeout"},
			{"DNS over TCP on the external address", adminSrc, at(routerExt, 53), "timeout"},
			{"DNS over TCP on the internal address, routed from outside", adminSrc, at(p.RouterInternal, 53), "timeout"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				wait := openWait
				if tc.want == "timeout" {
					wait = blockedWait
				}
				if got := n.dial(t, n.ext, tc.src, tc.dst, wait); got != tc.want {
					t.Errorf("%s -> %s: %s, want %s", tc.src, tc.dst, got, tc.want)
				}
			})
		}
		t.Run("ping to the router answers", func(t *testing.T) {
			t.Parallel()
			if out, err := n.exec(n.ext, "busybox", "ping", "-c", "1", "-W", "3", routerExt); err != nil {
				t.Errorf("ping %s: %v\n%s", routerExt, err, out)
			}
		})
		t.Run("ping to a node does not", func(t *testing.T) {
			t.Parallel()
			if out, err := n.exec(n.ext, "busybox", "ping", "-c", "1", "-W", "2", nodeAddr); err == nil {
				t.Errorf("ping %s from outside answered:\n%s", nodeAddr, out)
			}
		})
	})

	t.Run("no DNS or DHCP on the external side", func(t *testing.T) {
		for _, server := range []string{routerExt, p.RouterInternal.String()} {
			if got := n.lookup(t, n.ext, adminSrc, server, cp.Hostname+".", "2s"); got != "timeout" {
				t.Errorf("DNS query to %s from outside: %s, want timeout", server, got)
			}
		}
		if offer, out := n.udhcpc(t, n.ext, 3); offer != nil {
			t.Errorf("a DHCP client outside was offered %v:\n%s", offer, out)
		}
		// dnsmasq itself listens only inside, whatever the firewall does.
		for _, line := range strings.Split(strings.TrimSpace(n.must(t, n.router, "ss", "-H", "-lnptu")), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || !strings.Contains(line, `"dnsmasq"`) {
				continue
			}
			local := f[4]
			i := strings.LastIndex(local, ":")
			addr, port := strings.Trim(local[:i], "[]"), local[i+1:]
			inside := addr == p.RouterInternal.String() || addr == "127.0.0.1" || addr == "::1" || strings.HasSuffix(addr, "%eth1")
			if (port == "53" || port == "67") && !inside {
				t.Errorf("dnsmasq listens on %s", local)
			}
		}
	})

	t.Run("an identical re-apply changes nothing", func(t *testing.T) {
		before := n.state(t)
		out := n.apply(t, c, p)
		wantLines(t, out, "unchanged: "+n.layout.Sysctl, "unchanged: "+n.layout.Nftables, "unchanged: "+n.layout.Dnsmasq)
		for _, m := range p.Machines() {
			wantLines(t, out, "unchanged: "+filepath.Join(n.layout.HostsDir, m.Hostname), "unchanged: "+filepath.Join(n.layout.DHCPHostsDir, m.Hostname),
				"unchanged: "+filepath.Join(n.layout.NftablesHostsDir, m.Hostname+".nft"))
		}
		after := n.state(t)
		if after.ruleset != before.ruleset {
			t.Errorf("the ruleset changed:\n%s\nwas:\n%s", after.ruleset, before.ruleset)
		}
		if after.dnsmasqPID != before.dnsmasqPID || after.dnsmasqPID == "" {
			t.Errorf("dnsmasq pid %q -> %q: it was restarted", before.dnsmasqPID, after.dnsmasqPID)
		}
		if !maps.Equal(after.mtimes, before.mtimes) {
			t.Errorf("files were rewritten: %v -> %v", before.mtimes, after.mtimes)
		}
		if len(after.mtimes) != 3+3*len(p.Machines()) {
			t.Errorf("%d files under etc, want the 3 main files and 3 per node: %v", len(after.mtimes), after.mtimes)
		}
		if after.leases != before.leases || !strings.Contains(after.leases, leased.String()) {
			t.Errorf("the leases changed:\n%s\nwere:\n%s", after.leases, before.leases)
		}
		if _, err := n.exec(n.router, "nft", "list", "set", "inet", "other", "keep"); err != nil {
			t.Errorf("another table was touched: %v", err)
		}
	})

	// Scaling: RouterLXC runs only the new node's HostScript (and, scaling
	// down, only RemoveHostScript); the main files stay as they are.
	t.Run("a node added and removed without restarting dnsmasq", func(t *testing.T) {
		c2, p2 := testStack(t, func(c *config.Config) { c.Cluster.Workers++ })
		s2 := n.spec(t, c2, p2)
		if routerfiles.Render(s2) != routerfiles.Render(n.spec(t, c, p)) {
			t.Fatal("the main files changed with the node count")
		}
		h := s2.Hosts[len(s2.Hosts)-1]
		if h.Name != p2.Workers[len(p2.Workers)-1].Hostname || len(s2.Hosts) != len(p.Machines())+1 {
			t.Fatalf("the new node is %s, want %s", h.Name, p2.Workers[len(p2.Workers)-1].Hostname)
		}
		name, dns, addr := h.FQDN()+".", lease["dns"], h.Address.String()
		if got := n.lookup(t, n.dhcp, "-", dns, name, openWait); got != "rcode=3" {
			t.Fatalf("%s before it was added: %s, want rcode=3 (no such name)", name, got)
		}
		before := n.state(t)

		out := n.script(t, routerfiles.HostScript(h, n.layout))
		wantLines(t, out, "updated: "+filepath.Join(n.layout.HostsDir, h.Name), "updated: "+filepath.Join(n.layout.DHCPHostsDir, h.Name),
			"updated: "+filepath.Join(n.layout.NftablesHostsDir, h.Name+".nft"))
		added := n.state(t)
		if added.dnsmasqPID != before.dnsmasqPID || added.dnsmasqPID == "" {
			t.Errorf("dnsmasq pid %q -> %q: adding a node restarted it", before.dnsmasqPID, added.dnsmasqPID)
		}
		if added.leases != before.leases || !strings.Contains(added.leases, dhcpMAC+" "+leased.String()) {
			t.Errorf("the leases changed:\n%s\nwere:\n%s", added.leases, before.leases)
		}
		if got := n.lookup(t, n.dhcp, "-", dns, name, openWait); got != "a="+addr {
			t.Errorf("%s after it was added: %s, want a=%s", name, got, addr)
		}
		if got := n.lookup(t, n.dhcp, "-", dns, cp.Hostname+".", openWait); got != "a="+nodeAddr {
			t.Errorf("an existing node after the addition: %s, want a=%s", got, nodeAddr)
		}

		// A new machine with the node's MAC is offered the node's address,
		// from outside the dynamic range: the reservation is in effect. The
		// machine holds the address already, as cloud-init gives it to a
		// Talos node, so it can give the lease back (-R): a lease still held
		// would keep its name in DNS until it ends, whatever the host files
		// say, and Talos nodes with static addresses take none.
		n.addNS("new")
		newNS := n.ns("new")
		n.ip(t, "-n", newNS, "link", "add", "eth0", "type", "veth", "peer", "name", "p-new", "netns", n.ns("switch"))
		n.ip(t, "-n", n.ns("switch"), "link", "set", "p-new", "master", "br0", "up")
		n.ip(t, "-n", newNS, "link", "set", "eth0", "address", strings.ToLower(h.MAC))
		n.ip(t, "-n", newNS, "addr", "add", fmt.Sprintf("%s/%d", addr, p.Internal.Bits()), "dev", "eth0")
		n.ip(t, "-n", newNS, "link", "set", "eth0", "up")
		n.ip(t, "-n", newNS, "route", "add", "default", "via", p.RouterInternal.String())
		got, dhcpOut := n.udhcpcReleasing(t, newNS, 5)
		if got == nil || got["ip"] != addr {
			t.Fatalf("the new node was offered %v, want its reservation %s:\n%s", got, addr, dhcpOut)
		}
		for i := 0; strings.Contains(readFile(n.leaseFile), strings.ToLower(h.MAC)); i++ {
			if i == 50 {
				t.Fatalf("the new node's lease was not given back:\n%s\nudhcpc:\n%s", readFile(n.leaseFile), dhcpOut)
			}
			time.Sleep(100 * time.Millisecond)
		}
		n.serve(t, newNS, "0.0.0.0:50000")
		if got := n.dial(t, n.ext, adminSrc, at(addr, 50000), openWait); got != "peer="+adminSrc {
			t.Errorf("admin to the new node's Talos API: %s, want peer=%s", got, adminSrc)
		}

		out = n.script(t, routerfiles.RemoveHostScript(h, n.layout))
		wantLines(t, out, "removed: "+filepath.Join(n.layout.HostsDir, h.Name), "removed: "+filepath.Join(n.layout.DHCPHostsDir, h.Name),
			"removed: "+filepath.Join(n.layout.NftablesHostsDir, h.Name+".nft"))
		removed := n.state(t)
		if removed.dnsmasqPID != before.dnsmasqPID {
			t.Errorf("dnsmasq pid %q -> %q: removing a node restarted it", before.dnsmasqPID, removed.dnsmasqPID)
		}
		if !strings.Contains(removed.leases, dhcpMAC+" "+leased.String()) {
			t.Errorf("a lease is gone after the removal:\n%s", removed.leases)
		}
		if removed.ruleset != before.ruleset {
			t.Errorf("the ruleset after the removal:\n%s\nbefore the node:\n%s", removed.ruleset, before.ruleset)
		}
		if !maps.Equal(removed.mtimes, before.mtimes) {
			t.Errorf("files after the removal %v, before the node %v", removed.mtimes, before.mtimes)
		}
		if got := n.lookup(t, n.dhcp, "-", dns, name, openWait); got != "rcode=3" {
			t.Errorf("%s after it was removed: %s, want rcode=3 (no such name)", name, got)
		}
		if got := n.lookup(t, n.dhcp, "-", dns, cp.Hostname+".", openWait); got != "a="+nodeAddr {
			t.Errorf("an existing node after the removal: %s, want a=%s", got, nodeAddr)
		}
		if got := n.dial(t, n.ext, adminSrc, at(addr, 50000), blockedWait); got != "timeout" {
			t.Errorf("admin to the removed node's Talos API: %s, want timeout", got)
		}
		// dnsmasq keeps a deleted file's reservation until SIGHUP: the
		// script's reload is what frees the MAC to the dynamic range.
		again, dhcpOut := n.udhcpcReleasing(t, newNS, 5)
		if again == nil {
			t.Fatalf("the removed node's MAC got no lease at all:\n%s", dhcpOut)
		}
		if ip, err := netip.ParseAddr(again["ip"]); err != nil || ip.Less(p.DHCPStart) || p.DHCPEnd.Less(ip) {
			t.Errorf("the removed node's MAC was offered %s, want an address of the dynamic range %s-%s (the reservation is gone)", again["ip"], p.DHCPStart, p.DHCPEnd)
		}
		if got := n.dial(t, n.ext, adminSrc, at(nodeAddr, 50000), openWait); got != "peer="+adminSrc {
			t.Errorf("admin to an existing node's Talos API after the removal: %s, want peer=%s", got, adminSrc)
		}
	})

	added := func(c *config.Config) {
		c.Network.PortForwards = append(c.Network.PortForwards,
			config.PortForward{Name: "added", Port: 9090, Target: cp.Hostname, TargetPort: 30090})
	}
	t.Run("an added port-forward takes effect, dnsmasq keeps running", func(t *testing.T) {
		before := n.state(t)
		c2, p2 := testStack(t, added)
		out := n.apply(t, c2, p2)
		wantLines(t, out, "updated: "+n.layout.Nftables, "unchanged: "+n.layout.Dnsmasq)
		if got := n.dial(t, n.ext, outsider, at(routerExt, 9090), openWait); got != "peer="+outsider {
			t.Errorf("the added forward: %s, want peer=%s", got, outsider)
		}
		if got := n.dial(t, n.ext, outsider, at(routerExt, 8443), openWait); got != "peer="+outsider {
			t.Errorf("the existing forward after the change: %s, want peer=%s", got, outsider)
		}
		if after := n.state(t); after.dnsmasqPID != before.dnsmasqPID {
			t.Errorf("dnsmasq restarted (%s -> %s) for a firewall-only change", before.dnsmasqPID, after.dnsmasqPID)
		}
		if _, err := n.exec(n.router, "nft", "list", "set", "inet", "other", "keep"); err != nil {
			t.Errorf("another table was touched: %v", err)
		}
	})

	t.Run("a changed dnsmasq configuration restarts it with its leases", func(t *testing.T) {
		before := n.state(t)
		c3, p3 := testStack(t, func(c *config.Config) {
			added(c)
			c.Network.DNSServers = append(c.Network.DNSServers, "203.0.113.53")
		})
		out := n.apply(t, c3, p3)
		wantLines(t, out, "unchanged: "+n.layout.Nftables, "updated: "+n.layout.Dnsmasq)
		after := n.state(t)
		if after.dnsmasqPID == before.dnsmasqPID {
			t.Errorf("dnsmasq kept pid %s after its configuration changed", after.dnsmasqPID)
		}
		if !strings.Contains(after.leases, dhcpMAC+" "+leased.String()) {
			t.Errorf("the lease is gone after the restart:\n%s", after.leases)
		}
		if got := n.lookup(t, n.dhcp, "-", lease["dns"], cp.Hostname+".", openWait); got != "a="+nodeAddr {
			t.Errorf("%s after the restart: %s", cp.Hostname, got)
		}
		if again, out := n.udhcpc(t, n.dhcp, 5); again == nil || again["ip"] != leased.String() {
			t.Errorf("renewed lease %v, want ip %s:\n%s", again, leased, out)
		}
	})
}

// TestRenderedFilesPassTheTools checks the files rendered for the
// repository's dev and prod stacks, unchanged, with the tools themselves.
func TestRenderedFilesPassTheTools(t *testing.T) {
	l := newLab(t)
	l.addNS("check")
	check := l.ns("check")
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			c, p, err := config.LoadStack(stacksDir(t), stack)
			if err != nil {
				t.Fatal(err)
			}
			s, err := inputs.RouterFiles(c, p)
			if err != nil {
				t.Fatal(err)
			}
			f := routerfiles.Render(s)
			dir := t.TempDir()
			nftPath, dnsmasqPath := filepath.Join(dir, "nftables.conf"), filepath.Join(dir, "dnsmasq.conf")
			os.WriteFile(nftPath, []byte(f.Nftables), 0o644)
			os.WriteFile(dnsmasqPath, []byte(f.Dnsmasq), 0o644)

			if out, err := l.exec(check, "nft", "-c", "-f", nftPath); err != nil {
				t.Errorf("nft -c -f: %v\n%s", err, out)
			}
			if out, err := run(context.Background(), "dnsmasq", "--test", "--conf-file="+dnsmasqPath); err != nil || !strings.Contains(out, "syntax check OK") {
				t.Errorf("dnsmasq --test: %v\n%s", err, out)
			}
			if out, err := run(context.Background(), "sh", "-n", "-c", routerfiles.ApplyScript(f, routerfiles.DebianLayout())); err != nil {
				t.Errorf("sh -n on the apply script: %v\n%s", err, out)
			}
			for _, h := range s.Hosts {
				for _, script := range []string{routerfiles.HostScript(h, routerfiles.DebianLayout()), routerfiles.RemoveHostScript(h, routerfiles.DebianLayout())} {
					if out, err := run(context.Background(), "sh", "-n", "-c", script); err != nil {
						t.Errorf("sh -n on a script of %s: %v\n%s", h.Name, err, out)
					}
				}
			}
			// Loading it twice for real gives the same table: the replace is idempotent.
			var listings []string
			for i := 0; i < 2; i++ {
				l.must(t, check, "nft", "-f", nftPath)
				listings = append(listings, l.must(t, check, "nft", "list", "table", "inet", routerfiles.TableName))
			}
			if listings[0] != listings[1] {
				t.Errorf("a second load changed the table:\n%s\nwas:\n%s", listings[1], listings[0])
			}
			for _, chain := range []string{"chain input", "chain forward", "chain prerouting", "chain postrouting"} {
				if !strings.Contains(listings[0], chain) {
					t.Errorf("the loaded table lacks %s", chain)
				}
			}
			// Every host's file, loaded as the ruleset's include does, puts its
			// node in the Talos API set and its control planes in the
			// Kubernetes API set beside the VIP.
			hostDir := filepath.Join(dir, "nftables.d")
			os.Mkdir(hostDir, 0o755)
			for _, h := range s.Hosts {
				os.WriteFile(filepath.Join(hostDir, h.Name+".nft"), []byte(routerfiles.RenderHost(h).Nftables), 0o644)
			}
			s.NftablesHostsDir = hostDir
			os.WriteFile(nftPath, []byte(routerfiles.Render(s).Nftables), 0o644)
			l.must(t, check, "nft", "-f", nftPath)
			var talos, kube []string
			for _, m := range p.Machines() {
				talos = append(talos, m.Address.String())
				if m.Role == config.RoleControlPlane {
					kube = append(kube, m.Address.String())
				}
			}
			if p.VIP.IsValid() {
				kube = append(kube, p.VIP.String())
			}
			for set, want := range map[string][]string{routerfiles.TalosAPISet: talos, routerfiles.KubernetesAPISet: kube} {
				listing := l.must(t, check, "nft", "list", "set", "inet", routerfiles.TableName, set)
				if got := setElements(listing); !slices.Equal(got, sorted(want)) {
					t.Errorf("set %s holds %v, want %v:\n%s", set, got, sorted(want), listing)
				}
			}
		})
	}
}

// setElements are the elements of an `nft list set` listing, sorted.
func setElements(listing string) []string {
	_, rest, ok := strings.Cut(listing, "elements = {")
	if !ok {
		return nil
	}
	body, _, _ := strings.Cut(rest, "}")
	var out []string
	for _, e := range strings.Split(body, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return sorted(out)
}

func sorted(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
