package routerns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The pair's helper modes (helperMain sends them here):
//
//	echo ADDR...          TCP servers that answer every line with "<line> peer=<source address>", on the same connection
//	converse SRC|- DST T  one TCP connection (TCP_USER_TIMEOUT T); each stdin line is sent and its
//	                      answer printed ("reply <answer>", or "error: ..."); "connected <local>" first
//	udpecho ADDR          a UDP server that sends every datagram back
//	probe DST INTERVAL    UDP probes to DST every INTERVAL until stdin closes ("ready" once one is
//	                      answered); then one line:
//	                      "sent=N answered=M maxgap_ms=G last_ms=L" (G: the longest time between two
//	                      answers, L: since the last answer)
func pairHelper(mode string, args []string) (int, bool) {
	switch {
	case mode == "echo" && len(args) > 0:
		return echoMain(args), true
	case mode == "converse" && len(args) == 3:
		return converseMain(args[0], args[1], args[2]), true
	case mode == "udpecho" && len(args) == 1:
		return udpEchoMain(args[0]), true
	case mode == "probe" && len(args) == 2:
		return probeMain(args[0], args[1]), true
	}
	return 0, false
}

// talkTimeout bounds how long a conversation's data may stay unanswered
// (TCP_USER_TIMEOUT) in the tests: a connection no router carries any more
// fails with "connection timed out" instead of hanging for TCP's fifteen
// minutes. The tests send after the takeover, so nothing waits for TCP's
// backoff; the bench, which sends through the loss, gives more.
const talkTimeout = 5 * time.Second

func echoMain(addrs []string) int {
	for _, a := range addrs {
		ln, err := net.Listen("tcp4", a)
		if err != nil {
			fmt.Printf("error: %v\n", err)
			return 1
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
					r := bufio.NewReader(c)
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						fmt.Fprintf(c, "%s peer=%s\n", strings.TrimSpace(line), host)
					}
				}()
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func converseMain(src, dst, timeout string) int {
	userTimeout, err := time.ParseDuration(timeout)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 0
	}
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, 0x12 /* TCP_USER_TIMEOUT */, int(userTimeout/time.Millisecond))
		})
		return serr
	}}
	if src != "-" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := dialer.Dial("tcp4", dst)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 0
	}
	defer c.Close()
	fmt.Printf("connected %s\n", c.LocalAddr())
	in, r := bufio.NewScanner(os.Stdin), bufio.NewReader(c)
	for in.Scan() {
		c.SetDeadline(time.Now().Add(userTimeout + 5*time.Second))
		if _, err := fmt.Fprintf(c, "%s\n", in.Text()); err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		line, err := r.ReadString('\n')
		if err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Printf("reply %s\n", strings.TrimSpace(line))
	}
	return 0
}

func udpEchoMain(addr string) int {
	c, err := net.ListenPacket("udp4", addr)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func probeMain(dst, interval string) int {
	every, err := time.ParseDuration(interval)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	c, err := net.Dial("udp4", dst)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	var mu sync.Mutex
	var sentAt []time.Time
	answered := map[int]bool{}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var seq int
			if _, perr := fmt.Sscanf(string(buf[:n]), "probe %d", &seq); err == nil && perr == nil {
				mu.Lock()
				answered[seq] = true
				mu.Unlock()
			}
		}
	}()
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	ready := false
	for running := true; running; {
		select {
		case <-stop:
			running = false
		case <-tick.C:
			mu.Lock()
			seq := len(sentAt)
			sentAt = append(sentAt, time.Now())
			fmt.Fprintf(c, "probe %d", seq)
			if seq > 0 && answered[seq-1] && !ready {
				ready = true // a gap is measured from an answer before it
				fmt.Println("ready")
			}
			mu.Unlock()
		}
	}
	time.Sleep(3 * every) // the last answers' way back
	mu.Lock()
	defer mu.Unlock()
	fmt.Println(probeSummary(sentAt, answered, time.Now()))
	return 0
}

// probeSummary is probe's result line. The gap is between the sending of
// two answered probes with none answered in between: the last answered
// before an outage and the first answered after it.
func probeSummary(sentAt []time.Time, answered map[int]bool, end time.Time) string {
	var gap time.Duration
	last := -1
	for seq := range sentAt {
		if !answered[seq] {
			continue
		}
		if last >= 0 {
			gap = max(gap, sentAt[seq].Sub(sentAt[last]))
		}
		last = seq
	}
	since := time.Hour // never answered
	if last >= 0 {
		since = end.Sub(sentAt[last])
	}
	return fmt.Sprintf("sent=%d answered=%d maxgap_ms=%d last_ms=%d", len(sentAt), len(answered), gap.Milliseconds(), since.Milliseconds())
}

// proc is a helper that runs beside the test, spoken to line by line.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// start runs the test binary as a helper in ns and waits for its first
// line, which must begin with want ("ready", "connected").
func (l *lab) start(t testing.TB, want, ns, mode string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self(t), mode}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	p := &proc{cmd: cmd, lines: make(chan string, 16)}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
	}()
	first := p.next(cmdTimeout)
	if !strings.HasPrefix(first, want) {
		t.Fatalf("%s %v in %s: %q, want %s", mode, args, ns, first, want)
	}
	return p, first
}

// next is the helper's next line, "timeout" when none comes within d, "eof"
// when it has ended.
func (p *proc) next(d time.Duration) string {
	select {
	case line, ok := <-p.lines:
		if !ok {
			return "eof"
		}
		return line
	case <-time.After(d):
		return "timeout"
	}
}

// say sends a line and returns the helper's answer.
func (p *proc) say(line string, d time.Duration) string {
	fmt.Fprintln(p.stdin, line)
	return p.next(d)
}

// finish closes the helper's stdin and returns its last line.
func (p *proc) finish(d time.Duration) string {
	p.stdin.Close()
	var last []string
	for line := p.next(d); line != "eof" && line != "timeout"; line = p.next(d) {
		last = append(last, line)
	}
	if len(last) == 0 {
		return "nothing"
	}
	return last[len(last)-1]
}

// probeResult parses probe's result line.
type probeResult struct{ sent, answered, maxGapMS, lastMS int }

func parseProbe(line string) (probeResult, error) {
	var r probeResult
	_, err := fmt.Sscanf(line, "sent=%d answered=%d maxgap_ms=%d last_ms=%d", &r.sent, &r.answered, &r.maxGapMS, &r.lastMS)
	return r, err
}

// waitFor polls cond every 50 ms until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// median of ints (sorted copy); 0 for none.
func median(v []int) int {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
