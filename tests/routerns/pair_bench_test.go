package routerns

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchEnv runs TestPairFailoverBench (bench/router-failover.sh sets it);
// benchRunsEnv is the number of failovers per mode and variant.
const (
	benchEnv     = "SDA_BENCH_FAILOVER"
	benchRunsEnv = "SDA_BENCH_FAILOVER_N"
	benchConns   = 4 // established connections per failover, half each way
	// benchTalk is the conversations' TCP_USER_TIMEOUT: data sent at the
	// loss is retransmitted at about 0.2, 0.6, 1.4, 3.0, 6.2 and 12.6 s,
	// and must not be given up before the takeover's retransmission.
	benchTalk = 15 * time.Second
)

// failoverSample is one failover as the node and the connections saw it.
type failoverSample struct {
	gapMS      int // the probe's longest gap: the master's loss to traffic flowing again
	survived   int // connections that answered after the failover
	conns      int
	resumeMS   []int // per surviving connection: the failure to its answer
	recoveredB bool  // the probe was answered again before it stopped
}

// TestPairFailoverBench measures failovers (not a test: it asserts only
// that the lab works, and skips unless SDA_BENCH_FAILOVER=1). For each
// variant (conntrackd on both routers, or on neither) and each way of
// losing the master (links down, keepalived killed, the handover a router
// change runs), N failovers back and
// forth; it prints a Markdown table for docs/benchmarks.md.
func TestPairFailoverBench(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skipf("a measurement: %s=1 runs it (bench/router-failover.sh)", benchEnv)
	}
	runs, _ := strconv.Atoi(os.Getenv(benchRunsEnv))
	if runs <= 0 {
		runs = 5
	}
	modes := []struct {
		name          string
		fail, restore func(*pairNet, *testing.T, *pairRouter)
	}{
		{"master's links down", func(n *pairNet, t *testing.T, r *pairRouter) { n.linksDown(t, r, true) },
			func(n *pairNet, t *testing.T, r *pairRouter) { n.linksDown(t, r, false) }},
		{"master's keepalived killed (SIGKILL)", (*pairNet).killKeepalived, (*pairNet).startKeepalived},
		// What a router change does (the roll): the master's handover
		// script stops keepalived cleanly once the peer serves.
		{"master's handover (a router change)", func(n *pairNet, t *testing.T, r *pairRouter) { n.handover(t, r) }, (*pairNet).startKeepalived},
	}
	fmt.Printf("| loss of the master | conntrackd | failovers | gap min / median / max (ms) | connections surviving | TCP answer after the loss, median (ms) |\n| --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, withConntrackd := range []bool{true, false} {
		n := buildPair(t, withConntrackd)
		n.start(t, "ready", n.ext, "echo", hostPort(extHost, echoPort))
		n.start(t, "ready", n.node, "echo", hostPort("0.0.0.0", fwdNode))
		n.start(t, "ready", n.ext, "udpecho", hostPort(extHost, echoPort+1))
		if n.master(t, electionWait) == nil {
			t.Fatal("no first master")
		}
		samples := make([][]failoverSample, len(modes))
		for range runs {
			for i, m := range modes {
				samples[i] = append(samples[i], n.failoverOnce(t, withConntrackd, m.fail, m.restore))
			}
		}
		for i, m := range modes {
			fmt.Println(benchRow(m.name, withConntrackd, samples[i]))
		}
	}
}

// failoverOnce fails the current master, measures, and brings it back as
// backup.
func (n *pairNet) failoverOnce(t *testing.T, withConntrackd bool, fail, restore func(*pairNet, *testing.T, *pairRouter)) failoverSample {
	t.Helper()
	m := n.master(t, electionWait)
	if m == nil {
		t.Fatal("no master before the failover")
	}
	o := n.r[1-m.index]
	convs := n.openConversations(t)
	if withConntrackd {
		n.syncedN(t, o, benchConns/2)
	}
	probe, _ := n.start(t, "ready", n.node, "probe", hostPort(extHost, echoPort+1), "10ms")
	// At a random phase of the master's adverts: the steps before would
	// otherwise put every loss at about the same time after an advert, and
	// the takeover comes 3 × advert_int + skew after the last one heard.
	time.Sleep(rand.N(time.Second))
	failed := time.Now()
	fail(n, t, m)
	s := failoverSample{conns: len(convs)}
	// Data in flight through the loss ("during"), then after the takeover
	// ("after"): a connection survives when both are answered. (A killed
	// keepalived leaves the old master forwarding until the peer takes the
	// addresses, so "during" alone would not tell.)
	during := talkAll(convs, "during", failed)
	n.takesOver(t, o)
	after := talkAll(convs, "after", failed)
	for i := range convs {
		if during[i] >= 0 && after[i] >= 0 {
			s.survived++
			s.resumeMS = append(s.resumeMS, during[i])
		}
	}
	// The probe's gap closes with its first answer after the failover:
	// let it run on a little before reading it.
	time.Sleep(time.Second)
	line := probe.finish(cmdTimeout)
	t.Logf("probe: %s", line)
	res, err := parseProbe(line)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	s.gapMS, s.recoveredB = res.maxGapMS, res.lastMS < 1000
	backups := strings.Count(readFile(filepath.Join(m.dir, "keepalived.log")), "Entering BACKUP STATE")
	restore(n, t, m)
	if !waitFor(electionWait, func() bool {
		return strings.Count(readFile(filepath.Join(m.dir, "keepalived.log")), "Entering BACKUP STATE") > backups
	}) {
		t.Fatalf("%s did not come back as backup", m.ns)
	}
	for _, c := range convs {
		c.stdin.Close()
	}
	return s
}

// talkAll says word on every conversation at once and returns, for each,
// the milliseconds from since to its answer, or -1 when it failed.
func talkAll(convs []*proc, word string, since time.Time) []int {
	out := make([]int, len(convs))
	var wg sync.WaitGroup
	for i, c := range convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = -1
			if got := c.say(word, benchTalk+10*time.Second); strings.HasPrefix(got, "reply "+word+" ") {
				out[i] = int(time.Since(since).Milliseconds())
			}
		}()
	}
	wg.Wait()
	return out
}

// openConversations opens benchConns conversations, half from the node
// out, half from outside through the port-forward, each checked once.
func (n *pairNet) openConversations(t *testing.T) []*proc {
	t.Helper()
	var out []*proc
	for i := range benchConns {
		var c *proc
		if i%2 == 0 {
			c, _ = n.start(t, "connected", n.node, "converse", "-", hostPort(extHost, echoPort), benchTalk.String())
		} else {
			c, _ = n.start(t, "connected", n.ext, "converse", outsider, hostPort(n.p.RouterExternal, fwdPort), benchTalk.String())
		}
		if got := c.say("before", benchTalk+10*time.Second); !strings.HasPrefix(got, "reply before ") {
			t.Fatalf("a conversation before the failover: %q", got)
		}
		out = append(out, c)
	}
	return out
}

// syncedN waits until r's external cache holds at least k established
// connections to the echo port and k to the port-forward.
func (n *pairNet) syncedN(t *testing.T, r *pairRouter, k int) {
	t.Helper()
	count := func(cache string, port int) int {
		c := 0
		for _, line := range strings.Split(cache, "\n") {
			if strings.Contains(line, "ESTABLISHED") && strings.Contains(line, fmt.Sprintf("dport=%d ", port)) {
				c++
			}
		}
		return c
	}
	var cache string
	if !waitFor(electionWait, func() bool {
		cache, _ = n.exec(r.ns, "conntrackd", "-C", r.layout.Conntrackd, "-e")
		return count(cache, echoPort) >= k && count(cache, fwdPort) >= k
	}) {
		t.Fatalf("%s's external cache lacks the conversations:\n%s", r.ns, cache)
	}
}

func benchRow(mode string, withConntrackd bool, samples []failoverSample) string {
	var gaps, resumes []int
	survived, conns, unrecovered := 0, 0, 0
	for _, s := range samples {
		gaps = append(gaps, s.gapMS)
		resumes = append(resumes, s.resumeMS...)
		survived += s.survived
		conns += s.conns
		if !s.recoveredB {
			unrecovered++
		}
	}
	ctd := map[bool]string{true: "on", false: "off (ablation)"}[withConntrackd]
	resume := "—"
	if len(resumes) > 0 {
		resume = strconv.Itoa(median(resumes))
	}
	note := ""
	if unrecovered > 0 {
		note = fmt.Sprintf(" (%d without answers at the end)", unrecovered)
	}
	return fmt.Sprintf("| %s | %s | %d | %d / %d / %d%s | %d / %d (%.0f %%) | %s |", mode, ctd, len(samples),
		slices.Min(gaps), median(gaps), slices.Max(gaps), note, survived, conns, 100*float64(survived)/float64(max(conns, 1)), resume)
}
