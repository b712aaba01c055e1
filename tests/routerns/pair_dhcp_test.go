package routerns

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
)

var pairRangeRE = regexp.MustCompile(`(?m)^dhcp-range=([0-9.]+),([0-9.]+),`)

// half is the part of the dynamic range r's dnsmasq leases from, as
// rendered.
func (r *pairRouter) half(t *testing.T) [2]netip.Addr {
	t.Helper()
	m := pairRangeRE.FindAllStringSubmatch(routerfiles.Render(r.spec).Dnsmasq, -1)
	if len(m) != 1 {
		t.Fatalf("%s: %d dhcp-range lines, want 1", r.ns, len(m))
	}
	return [2]netip.Addr{netip.MustParseAddr(m[0][1]), netip.MustParseAddr(m[0][2])}
}

// blockDHCP makes r's DHCP server unreachable (or reachable again): a table
// of the test's own drops the requests before SDA's ruleset accepts them.
func (n *pairNet) blockDHCP(t *testing.T, r *pairRouter, block bool) {
	t.Helper()
	if !block {
		n.must(t, r.ns, "nft", "delete", "table", "inet", "labdhcp")
		return
	}
	n.must(t, r.ns, "nft", "add table inet labdhcp; add chain inet labdhcp input { type filter hook input priority -10; policy accept; }; add rule inet labdhcp input udp dport 67 drop")
}

// dhcpClient adds a namespace on the internal segment with a random
// locally administered MAC and returns its name.
func (n *pairNet) dhcpClient(t *testing.T, i int) string {
	t.Helper()
	role := fmt.Sprintf("c%d", i)
	n.addNS(role)
	ns, port := n.ns(role), fmt.Sprintf("p-c%d", i)
	n.ip(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", n.sw)
	n.ip(t, "-n", n.sw, "link", "set", port, "master", "br0", "up")
	mac := fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", rand.IntN(256), rand.IntN(256), rand.IntN(256), rand.IntN(256), rand.IntN(256))
	n.ip(t, "-n", ns, "link", "set", "eth0", "address", mac)
	n.ip(t, "-n", ns, "link", "set", "eth0", "up")
	return ns
}

// TestPairDHCPNoDuplicateLease protects the split of the dynamic range:
// clients with random MACs served by either router, or by both at once,
// all get distinct addresses, each from the half of the router that
// served it, and no address is in both routers' lease files. The halves,
// as rendered, are disjoint and cover the plan's range.
func TestPairDHCPNoDuplicateLease(t *testing.T) {
	t.Parallel() // mostly waiting for dnsmasq's ping check
	n := buildPair(t, true)
	a, b := n.r[0], n.r[1]
	ha, hb := a.half(t), b.half(t)
	if ha[0] != n.p.DHCPStart || hb[1] != n.p.DHCPEnd || ha[1].Next() != hb[0] {
		t.Fatalf("halves %v and %v: want two that split %s-%s", ha, hb, n.p.DHCPStart, n.p.DHCPEnd)
	}
	server := map[string]*pairRouter{a.own.String(): a, b.own.String(): b}
	// Rounds: only B answers, only A answers, both answer.
	rounds := []struct{ blocked []*pairRouter }{{[]*pairRouter{a}}, {[]*pairRouter{b}}, {nil}}
	seen, from := map[string]string{}, map[*pairRouter]int{}
	for round, rd := range rounds {
		for _, r := range rd.blocked {
			n.blockDHCP(t, r, true)
		}
		for i := range 2 {
			ns := n.dhcpClient(t, 2*round+i)
			lease, out := (&testNet{lab: n.lab}).udhcpc(t, ns, 5)
			r := server[lease["serverid"]]
			if lease == nil || r == nil {
				t.Fatalf("round %d: client %s got %v, want a lease from %s or %s:\n%s", round, ns, lease, a.own, b.own, out)
			}
			ip := netip.MustParseAddr(lease["ip"])
			h := r.half(t)
			if ip.Less(h[0]) || h[1].Less(ip) {
				t.Errorf("%s got %s from %s, outside its half %v", ns, ip, r.ns, h)
			}
			if other, dup := seen[ip.String()]; dup {
				t.Errorf("%s got %s, already leased to %s", ns, ip, other)
			}
			seen[ip.String()] = ns
			from[r]++
		}
		for _, r := range rd.blocked {
			n.blockDHCP(t, r, false)
		}
	}
	if from[a] < 2 || from[b] < 2 {
		t.Errorf("leases from A %d, from B %d: want at least the 2 of its own round each", from[a], from[b])
	}
	leasesA, leasesB := readFile(filepath.Join(a.dir, "dnsmasq.leases")), readFile(filepath.Join(b.dir, "dnsmasq.leases"))
	for ip := range seen {
		if strings.Contains(leasesA, " "+ip+" ") && strings.Contains(leasesB, " "+ip+" ") {
			t.Errorf("%s is in both routers' lease files", ip)
		}
	}
}
