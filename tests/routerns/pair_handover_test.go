package routerns

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/routerfiles"
)

// handover runs routerfiles.HandoverScript in r's namespace, as RouterLXC
// runs it in the container before the container goes, with the lab's way
// to stop keepalived (SIGTERM, as systemd's stop: a clean exit, which
// sends a priority-0 advert) and to start it again.
func (n *pairNet) handover(t *testing.T, r *pairRouter) string {
	t.Helper()
	stop := fmt.Sprintf("kill -TERM $(cat %s); while %s; do sleep 0.1; done",
		q(filepath.Join(r.dir, "keepalived.pid")), running(filepath.Join(r.dir, "keepalived.pid")))
	l := r.layout
	l.StopKeepalived = stop
	return n.script(t, r, routerfiles.HandoverScript(r.spec, l))
}

// TestPairHandover protects the roll of a router change: the backup's
// handover leaves at once without moving the addresses; the master's
// waits for its peer to serve, hands the addresses over, and the
// established connections (SNAT out, port-forward in) and the gateway
// carry on through the new master. The probe's gap is logged (the
// benchmark measures failovers; this is a clean handover).
func TestPairHandover(t *testing.T) {
	t.Parallel()
	n := buildPair(t, true)
	a, b := n.r[0], n.r[1]
	if m := n.master(t, electionWait); m != a {
		t.Fatalf("the first master is %v, want %s", m, a.ns)
	}
	c := n.converse(t)
	n.synced(t, b)

	// The backup goes first: it stops keepalived and leaves; the master
	// keeps both addresses.
	if out := n.handover(t, b); !strings.Contains(out, "handover: backup, leaving") {
		t.Fatalf("the backup's handover said:\n%s", out)
	}
	if in, ex := n.holdsVIPs(a); !in || !ex {
		t.Fatalf("the master lost its addresses when the backup left (internal %v, external %v)", in, ex)
	}
	c.check(t, "backup-gone", n.p.RouterExternal.String(), true)

	// The backup is back (its new container configured): the master hands
	// over to it.
	n.startKeepalived(t, b)
	n.start(t, "ready", n.ext, "udpecho", hostPort(extHost, echoPort+1))
	probe, _ := n.start(t, "ready", n.node, "probe", hostPort(extHost, echoPort+1), "10ms")
	out := n.handover(t, a)
	want := fmt.Sprintf("handover: %s holds %s", b.own, n.p.RouterInternal)
	if !strings.Contains(out, want) {
		n.logs(t)
		t.Fatalf("the master's handover said:\n%s\nwant %q", out, want)
	}
	if m := n.master(t, electionWait); m != b {
		t.Fatalf("after the handover the master is %v, want %s", m, b.ns)
	}
	c.check(t, "handed-over", n.p.RouterExternal.String(), true)
	n.checkServices(t, b)
	line := probe.finish(cmdTimeout)
	res, err := parseProbe(line)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if res.answered == 0 || res.lastMS > 1000 {
		t.Errorf("the gateway did not carry the probe after the handover: %s", line)
	}
	t.Logf("probe through the handover: %s (longest gap %d ms)", line, res.maxGapMS)
}
