package routerns

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

// forged is the address a compromised node puts on its packets: another
// host of the external LAN, which no one in the test owns.
const forged = "203.0.113.77"

// packets reads the counter of the observer rule commented name in ns.
func (n *testNet) packets(t *testing.T, ns, name string) int {
	t.Helper()
	out := n.must(t, ns, "nft", "list", "table", "inet", "observe")
	m := regexp.MustCompile(`counter packets (\d+) bytes \d+ comment "` + name + `"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no counter %q in %s:\n%s", name, ns, out)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// observe counts, in ns, every packet arriving from each source, before
// the kernel's own checks (priority raw - 1 of prerouting).
func (n *testNet) observe(t *testing.T, ns string, sources map[string]string) {
	t.Helper()
	rules := "add table inet observe; add chain inet observe in { type filter hook prerouting priority -301; policy accept; };"
	for name, src := range sources {
		rules += fmt.Sprintf(" add rule inet observe in ip saddr %s counter comment %q;", src, name)
	}
	n.must(t, ns, "nft", rules)
}

// BCP 38 in the router's ruleset, measured with the real kernel: a node's
// packets with a forged source never reach the external network, and
// packets from outside claiming an internal source never reach a node,
// while the same paths carry honest packets.
func TestAntiSpoofing(t *testing.T) {
	requireNetns(t)
	c, p := testStack(t, nil)
	n := buildNet(t, p)
	n.apply(t, c, p)
	cp := p.ControlPlanes[0]
	n.serve(t, n.node, "0.0.0.0:30443")
	n.serve(t, n.ext, fmt.Sprintf("0.0.0.0:%d", observerPort))

	// The compromised node holds the forged address as its own, so its
	// sockets can send from it; it routes everything through the router.
	n.ip(t, "-n", n.node, "addr", "add", forged+"/32", "dev", "eth0")
	// Outside, a host claims an address of the internal network (one no
	// node has), routed towards the router like the admins' traffic.
	insider := p.DHCPEnd.String()
	n.ip(t, "-n", n.ext, "addr", "add", insider+"/32", "dev", "eth0")

	n.observe(t, n.ext, map[string]string{"forged": forged, "router": routerExt})
	n.observe(t, n.node, map[string]string{"insider": insider, "outsider": outsider})

	t.Run("a node's forged source is dropped, its own address leaves", func(t *testing.T) {
		if got := n.dial(t, n.node, forged, fmt.Sprintf("%s:%d", extHost, observerPort), blockedWait); got != "timeout" {
			t.Errorf("dial from the forged address: %s, want timeout", got)
		}
		if got := n.packets(t, n.ext, "forged"); got != 0 {
			t.Errorf("%d packets with the forged source %s reached the external network", got, forged)
		}
		// The same node, from its own address: masqueraded and through.
		if got := n.dial(t, n.node, cp.Address.String(), fmt.Sprintf("%s:%d", extHost, observerPort), openWait); got != "peer="+routerExt {
			t.Errorf("dial from the node's own address: %s, want peer=%s", got, routerExt)
		}
		if n.packets(t, n.ext, "router") == 0 {
			t.Error("the observer counted nothing from the router: the counters do not work")
		}
	})

	t.Run("from outside, an internal source is dropped, others pass", func(t *testing.T) {
		// The open port-forward (8443 to the node's 30443) admits anyone
		// else; a packet claiming an internal source must not get through.
		if got := n.dial(t, n.ext, insider, fmt.Sprintf("%s:8443", routerExt), blockedWait); got != "timeout" {
			t.Errorf("forward from the internal source %s: %s, want timeout", insider, got)
		}
		if got := n.packets(t, n.node, "insider"); got != 0 {
			t.Errorf("%d packets claiming the internal source %s reached the node", got, insider)
		}
		if got := n.dial(t, n.ext, outsider, fmt.Sprintf("%s:8443", routerExt), openWait); got != "peer="+outsider {
			t.Errorf("forward from the outsider: %s, want peer=%s", got, outsider)
		}
		if n.packets(t, n.node, "outsider") == 0 {
			t.Error("the node counted nothing from the outsider: the counters do not work")
		}
	})
}
