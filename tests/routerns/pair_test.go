package routerns

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// electionWait bounds the first election and every failover: keepalived's
// master-down interval is 3 × advert_int + skew (≤ 3.6 s here), and a
// loaded machine adds to it.
const electionWait = 15 * time.Second

// answerWait bounds one exchange on a test's conversation: longer than the
// helper's own bound (talkTimeout + 5 s), so the helper always speaks first.
const answerWait = talkTimeout + 10*time.Second

const (
	echoPort = 7001  // the external host's echo server
	fwdPort  = 8443  // the dev stack's open port-forward ("web") ...
	fwdNode  = 30443 // ... to this port of the first control plane
)

// conversations are two established TCP connections across the router
// pair: the node to the external host (through SNAT to the external VIP)
// and an outsider to the node through the port-forward on the VIP.
type conversations struct{ out, in *proc }

// converse opens both conversations and checks that each carries bytes
// both ways, with the source the far end must see.
func (n *pairNet) converse(t *testing.T) conversations {
	t.Helper()
	n.start(t, "ready", n.ext, "echo", hostPort(extHost, echoPort))
	n.start(t, "ready", n.node, "echo", hostPort("0.0.0.0", fwdNode))
	var c conversations
	c.out, _ = n.start(t, "connected", n.node, "converse", "-", hostPort(extHost, echoPort), talkTimeout.String())
	c.in, _ = n.start(t, "connected", n.ext, "converse", outsider, hostPort(n.p.RouterExternal, fwdPort), talkTimeout.String())
	c.check(t, "before", n.p.RouterExternal.String(), true)
	return c
}

// check sends word on both conversations at once; with carried, each must
// come back with the source its server saw (the external VIP for the
// node's, the outsider for the forward's), else each must fail.
func (c conversations) check(t *testing.T, word, vip string, carried bool) {
	t.Helper()
	cases := []struct {
		name string
		p    *proc
		peer string
	}{{"node to outside (SNAT)", c.out, vip}, {"outside to node (port-forward)", c.in, outsider}}
	got := make([]string, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = tc.p.say(word, answerWait) }()
	}
	wg.Wait()
	for i, tc := range cases {
		want := fmt.Sprintf("reply %s peer=%s", word, tc.peer)
		if carried && got[i] != want {
			t.Errorf("%s, %s: %q, want %q", tc.name, word, got[i], want)
		}
		if !carried && !strings.HasPrefix(got[i], "error: ") {
			t.Errorf("%s, %s: %q, want the connection to fail (error: ...)", tc.name, word, got[i])
		}
	}
}

// synced waits until r's conntrackd holds both conversations in its
// external cache (what the peer sent it), so a failover can carry them.
func (n *pairNet) synced(t *testing.T, r *pairRouter) {
	t.Helper()
	var cache string
	if !waitFor(electionWait, func() bool {
		cache, _ = n.exec(r.ns, "conntrackd", "-C", r.layout.Conntrackd, "-e")
		return strings.Contains(cache, fmt.Sprintf("dport=%d", echoPort)) && strings.Contains(cache, fmt.Sprintf("dport=%d", fwdPort))
	}) {
		t.Fatalf("%s's conntrackd external cache lacks the conversations:\n%s", r.ns, cache)
	}
}

// takesOver waits until r holds both VIPs.
func (n *pairNet) takesOver(t *testing.T, r *pairRouter) {
	t.Helper()
	if !waitFor(electionWait, func() bool { in, ex := n.holdsVIPs(r); return in && ex }) {
		n.logs(t)
		t.Fatalf("%s did not take both virtual addresses within %v", r.ns, electionWait)
	}
}

// failures are the two ways the tests lose the master: both links at once
// (internal first, so no priority 0 advert gets out), and a crash of
// keepalived, which leaves the old master's addresses and forwarding in
// place until the peer takes over.
var failures = []struct {
	name string
	fail func(*pairNet, *testing.T, *pairRouter)
}{
	{"master's links down", func(n *pairNet, t *testing.T, r *pairRouter) { n.linksDown(t, r, true) }},
	{"master's keepalived killed", (*pairNet).killKeepalived},
}

// TestPairFailover protects what the pair is for: when the master loses its
// links, or its keepalived dies, the other router takes both virtual
// addresses and carries on, and the established connections through it
// (SNAT out, port-forward in) continue on the same sockets because
// conntrackd synced their state; DNS and DHCP answer at the VIP.
func TestPairFailover(t *testing.T) {
	t.Parallel() // mostly waiting for elections and timeouts: two labs at once cost little
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := buildPair(t, true)
			a, b := n.r[0], n.r[1]
			if m := n.master(t, electionWait); m != a {
				t.Fatalf("the first master is %v, want %s (priority 150)", m, a.ns)
			}
			c := n.converse(t)
			n.synced(t, b)
			failed := time.Now()
			tc.fail(n, t, a)
			n.takesOver(t, b)
			t.Logf("%s took over %v after the failure", b.ns, time.Since(failed).Round(time.Millisecond))
			c.check(t, "after", n.p.RouterExternal.String(), true)
			n.checkServices(t, b)
		})
	}
}

// checkServices checks DNS at the internal VIP (and none at the external
// one) and DHCP for the node's reserved MAC while r is master.
func (n *pairNet) checkServices(t *testing.T, r *pairRouter) {
	t.Helper()
	cp := n.p.ControlPlanes[0]
	if got := n.helper(t, n.node, "lookup", "-", n.p.RouterInternal.String(), cp.Hostname+".", openWait); got != "a="+cp.Address.String() {
		t.Errorf("%s at the VIP after the failover: %s, want a=%s", cp.Hostname, got, cp.Address)
	}
	// dnsmasq started before this router had the VIPs: bind-dynamic bound
	// the internal one when it came, and never the external one.
	if got := n.helper(t, n.ext, "lookup", adminSrc, n.p.RouterExternal.String(), cp.Hostname+".", "2s"); got != "timeout" {
		t.Errorf("DNS at the external VIP from outside: %s, want timeout", got)
	}
	lease, out := (&testNet{lab: n.lab}).udhcpc(t, n.node, 5)
	vip := n.p.RouterInternal.String()
	if lease == nil || lease["ip"] != cp.Address.String() || lease["router"] != vip || lease["dns"] != vip {
		t.Errorf("the node's DHCP after the failover: %v, want its reservation %s with gateway and DNS %s:\n%s\n%s", lease, cp.Address, vip, out,
			readFile(filepath.Join(r.dir, "dnsmasq.log")))
	}
}

// TestPairFailoverWithoutConntrackd is the ablation of TestPairFailover:
// the same failovers with conntrackd started on neither router break both
// established connections (the new master has no state for them and,
// with nf_conntrack_tcp_loose = 0, takes up none), while new connections
// work. So it is conntrackd that carries them in TestPairFailover.
func TestPairFailoverWithoutConntrackd(t *testing.T) {
	t.Parallel() // mostly waiting for elections and timeouts: two labs at once cost little
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := buildPair(t, false)
			a, b := n.r[0], n.r[1]
			if m := n.master(t, electionWait); m != a {
				t.Fatalf("the first master is %v, want %s", m, a.ns)
			}
			c := n.converse(t)
			tc.fail(n, t, a)
			n.takesOver(t, b)
			c.check(t, "after", n.p.RouterExternal.String(), false)
			again := conversations{}
			again.out, _ = n.start(t, "connected", n.node, "converse", "-", hostPort(extHost, echoPort), talkTimeout.String())
			again.in, _ = n.start(t, "connected", n.ext, "converse", outsider, hostPort(n.p.RouterExternal, fwdPort), talkTimeout.String())
			again.check(t, "new", n.p.RouterExternal.String(), true)
		})
	}
}

// cut drops every frame between the two routers' internal ports in the
// internal bridge (or lets them through again): the routers lose each
// other while the node still reaches both.
func (n *pairNet) cut(t *testing.T, on bool) {
	t.Helper()
	if !on {
		n.must(t, n.sw, "nft", "delete", "table", "bridge", "labcut")
		return
	}
	n.must(t, n.sw, "nft", `add table bridge labcut; add chain bridge labcut forward { type filter hook forward priority 0; policy accept; }; `+
		`add rule bridge labcut forward iifname "p-a" oifname "p-b" drop; add rule bridge labcut forward iifname "p-b" oifname "p-a" drop`)
}

// TestPairSplitBrain protects recovery from a split brain: when the routers
// cannot hear each other (VRRP and sync cut, the node still on the
// segment), both become master; once they hear each other again the pair
// converges to one master, the higher priority (VRRP's rule between two
// masters, which nopreempt does not change), and the node's traffic
// flows through it, out and in.
func TestPairSplitBrain(t *testing.T) {
	t.Parallel() // mostly waiting for elections and timeouts: two labs at once cost little
	n := buildPair(t, true)
	a, b := n.r[0], n.r[1]
	if m := n.master(t, electionWait); m != a {
		t.Fatalf("the first master is %v, want %s", m, a.ns)
	}
	n.start(t, "ready", n.ext, "echo", hostPort(extHost, echoPort))
	n.start(t, "ready", n.node, "echo", hostPort("0.0.0.0", fwdNode))
	n.cut(t, true)
	n.takesOver(t, b)
	if in, ex := n.holdsVIPs(a); !in || !ex {
		t.Fatalf("split brain: %s gave up the addresses (internal %v, external %v), want both routers master", a.ns, in, ex)
	}
	n.cut(t, false)
	if m := n.master(t, electionWait); m != a {
		t.Fatalf("after the split brain the master is %v, want %s alone", m, a.ns)
	}
	c := conversations{}
	c.out, _ = n.start(t, "connected", n.node, "converse", "-", hostPort(extHost, echoPort), talkTimeout.String())
	c.in, _ = n.start(t, "connected", n.ext, "converse", outsider, hostPort(n.p.RouterExternal, fwdPort), talkTimeout.String())
	c.check(t, "healed", n.p.RouterExternal.String(), true)
	if m := n.master(t, time.Second); m != a {
		t.Errorf("the master changed to %v after traffic resumed", m)
	}
}

// TestPairNoPreempt protects the second half of a failover: a router that
// comes back (its links restored, or its keepalived restarted after a
// crash) stays backup, the addresses stay on the router that took them,
// and traffic sees no second outage. After a crash, the restarted
// keepalived also takes back the stale addresses the dead one left.
func TestPairNoPreempt(t *testing.T) {
	t.Parallel() // mostly waiting for elections and timeouts: two labs at once cost little
	for _, tc := range []struct {
		name          string
		fail, restore func(*pairNet, *testing.T, *pairRouter)
	}{
		{"links restored", func(n *pairNet, t *testing.T, r *pairRouter) { n.linksDown(t, r, true) },
			func(n *pairNet, t *testing.T, r *pairRouter) { n.linksDown(t, r, false) }},
		{"keepalived restarted", (*pairNet).killKeepalived, (*pairNet).startKeepalived},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := buildPair(t, true)
			a, b := n.r[0], n.r[1]
			if m := n.master(t, electionWait); m != a {
				t.Fatalf("the first master is %v, want %s", m, a.ns)
			}
			n.start(t, "ready", n.ext, "udpecho", hostPort(extHost, echoPort))
			tc.fail(n, t, a)
			n.takesOver(t, b)
			probe, _ := n.start(t, "ready", n.node, "probe", hostPort(extHost, echoPort), "10ms")
			backups := strings.Count(readFile(filepath.Join(a.dir, "keepalived.log")), "Entering BACKUP STATE")
			tc.restore(n, t, a)
			if !waitFor(electionWait, func() bool {
				return strings.Count(readFile(filepath.Join(a.dir, "keepalived.log")), "Entering BACKUP STATE") > backups
			}) {
				n.logs(t)
				t.Fatalf("%s did not come back as backup", a.ns)
			}
			// Three adverts: a preempting router takes the addresses at
			// the first lower-priority advert it hears (preempt_delay 0).
			end := time.Now().Add(3 * time.Second)
			for time.Now().Before(end) {
				if m := n.master(t, 0); m != b {
					n.logs(t)
					t.Fatalf("after %s came back the master is %v, want %s alone", a.ns, m, b.ns)
				}
				time.Sleep(100 * time.Millisecond)
			}
			res, err := parseProbe(probe.finish(cmdTimeout))
			if err != nil || res.answered == 0 || res.maxGapMS > 1000 || res.lastMS > 1000 {
				t.Errorf("the probe while %s came back: %+v (%v), want answers throughout (no gap over 1 s)", a.ns, res, err)
			}
		})
	}
}

// TestPairReapply protects the master from its own apply: running both
// routers' apply scripts again with the same files rewrites nothing,
// restarts neither keepalived nor conntrackd, and leaves the addresses
// where they are.
func TestPairReapply(t *testing.T) {
	t.Parallel()
	n := buildPair(t, true)
	a := n.r[0]
	if m := n.master(t, electionWait); m != a {
		t.Fatalf("the first master is %v, want %s", m, a.ns)
	}
	// keepalived's two pids, conntrackd's pid, and whether it answers.
	pids := func(r *pairRouter) string {
		var ctd []string
		out, _ := run(context.Background(), "ip", "netns", "pids", r.ns)
		for _, pid := range strings.Fields(out) {
			if strings.TrimSpace(readFile("/proc/"+pid+"/comm")) == "conntrackd" {
				ctd = append(ctd, pid)
			}
		}
		stats, _ := n.exec(r.ns, "conntrackd", "-C", r.layout.Conntrackd, "-s")
		return strings.TrimSpace(readFile(filepath.Join(r.dir, "keepalived.pid"))) + "," + strings.TrimSpace(readFile(filepath.Join(r.dir, "vrrp.pid"))) +
			"," + strings.Join(ctd, ",") + "/" + fmt.Sprint(len(ctd) == 1 && strings.Contains(stats, "cache internal"))
	}
	before := [2]string{pids(n.r[0]), pids(n.r[1])}
	for i, r := range n.r {
		out := n.applyRouter(t, r)
		wantLines(t, out, "unchanged: "+r.layout.Keepalived, "unchanged: "+r.layout.Conntrackd, "unchanged: "+r.layout.VRRPNotify,
			"unchanged: "+r.layout.Nftables, "unchanged: "+r.layout.Dnsmasq)
		if after := pids(r); after != before[i] || !strings.HasSuffix(after, "/true") {
			t.Errorf("%s: keepalived pids / conntrackd answering %q -> %q: a daemon was restarted or is not running", r.ns, before[i], after)
		}
	}
	if m := n.master(t, 0); m != a {
		t.Errorf("after the re-apply the master is %v, want %s", m, a.ns)
	}
}
