package routerns

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// nsPrefix starts every namespace this package creates:
	// sdarns<pid>-<lab>-<role>, so runs never collide and a later run can
	// tell the leftovers of a dead one.
	nsPrefix = "sdarns"
	// requireEnv=1 turns every skip into a failure (CI sets it).
	requireEnv = "SDA_REQUIRE_NETNS"
	// helperEnv makes the test binary run a helper (see helpers_test.go).
	helperEnv = "SDA_ROUTERNS_HELPER"
	// cmdTimeout bounds every command the test runs.
	cmdTimeout = 20 * time.Second
)

// tools the test runs, with the Debian package that has each.
var tools = []struct{ name, pkg string }{
	{"ip", "iproute2"}, {"ss", "iproute2"}, {"nft", "nftables"}, {"dnsmasq", "dnsmasq-base"},
	{"busybox", "busybox"}, {"sysctl", "procps"}, {"cmp", "diffutils"}, {"base64", "coreutils"},
	{"bridge", "iproute2"}, {"ping", "iputils-ping"}, {"arping", "iputils-arping"},
	// The router pair's daemons.
	{"keepalived", "keepalived"}, {"conntrackd", "conntrackd"},
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		args := os.Args[1:]
		if len(args) > 0 && args[0] == mode { // the mode is repeated for ps
			args = args[1:]
		}
		os.Exit(helperMain(mode, args))
	}
	// The tools live in sbin, which a non-login PATH may lack.
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin")
	flag.Parse()
	if os.Geteuid() == 0 {
		sweepStale()
	}
	stop := teardownOnSignal()
	// `go test -timeout` ends the binary with a panic that runs no cleanup:
	// tear down just before it. (SIGKILL is left to sweepStale.)
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			time.AfterFunc(d-d/20, func() {
				fmt.Fprintln(os.Stderr, "routerns: the test timeout is near: tearing down the test networks")
				teardownAll()
			})
		}
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// skipOrFail skips the test, or fails it when SDA_REQUIRE_NETNS=1.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1: this must run, not skip)", msg, requireEnv)
	}
	t.Skip(msg)
}

// requireNetns skips (or fails) unless the test can build namespaces and
// has every tool, saying which requirement is missing.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root: network namespaces, nft and dnsmasq need root (run as root, e.g. sudo -E go test ./tests/routerns/)")
	}
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool.name, tool.pkg))
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, "missing %s: run scripts/install-test-deps.sh", strings.Join(missing, ", "))
	}
}

// The namespaces alive now, for teardown on a signal or timeout.
var (
	liveMu sync.Mutex
	live   = map[string]bool{}
	labSeq atomic.Int32
)

// lab is a set of network namespaces that one test owns.
type lab struct {
	t    *testing.T
	name string
	dir  string
	nss  []string
}

// newLab checks the requirements and returns an empty lab that is torn down
// when the test ends, however it ends.
func newLab(t *testing.T) *lab {
	t.Helper()
	requireNetns(t)
	l := &lab{t: t, name: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), labSeq.Add(1)), dir: t.TempDir()}
	t.Cleanup(l.teardown)
	return l
}

// ns is the namespace name of a role.
func (l *lab) ns(role string) string { return l.name + "-" + role }

// addNS creates a namespace per role, with its loopback up.
func (l *lab) addNS(roles ...string) {
	l.t.Helper()
	for _, role := range roles {
		n := l.ns(role)
		liveMu.Lock()
		live[n] = true // before it exists: a signal now still finds it
		liveMu.Unlock()
		l.nss = append(l.nss, n)
		if out, err := run(context.Background(), "ip", "netns", "add", n); err != nil {
			skipOrFail(l.t, "cannot create a network namespace (%v): %s", err, out)
		}
		l.ip(l.t, "-n", n, "link", "set", "lo", "up")
	}
}

func (l *lab) teardown() {
	for _, n := range l.nss {
		if err := deleteNS(n); err != nil {
			l.t.Errorf("teardown: %v", err)
		}
	}
}

// deleteNS ends every process inside namespace n (all started by this
// package: dnsmasq, helpers, udhcpc), then deletes it; its veth ends and
// bridges go with it.
func deleteNS(n string) error {
	defer func() {
		liveMu.Lock()
		delete(live, n)
		liveMu.Unlock()
	}()
	if _, err := os.Stat(filepath.Join("/run/netns", n)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := run(context.Background(), "ip", "netns", "pids", n)
		pids := strings.Fields(out)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v in namespace %s do not end", pids, n)
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := run(context.Background(), "ip", "netns", "del", n); err != nil {
		return fmt.Errorf("deleting namespace %s: %v: %s", n, err, out)
	}
	return nil
}

func teardownAll() {
	liveMu.Lock()
	var ns []string
	for n := range live {
		ns = append(ns, n)
	}
	liveMu.Unlock()
	for _, n := range ns {
		if err := deleteNS(n); err != nil {
			fmt.Fprintln(os.Stderr, "routerns:", err)
		}
	}
}

func teardownOnSignal() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "routerns: %v: tearing down the test networks\n", s)
			teardownAll()
			os.Exit(1)
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// sweepStale deletes the namespaces of earlier runs whose process is gone
// (killed with SIGKILL, say). Namespaces of a live run are left alone.
func sweepStale() {
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + nsPrefix + `(\d+)-\d+-[a-z0-9]+$`)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := re.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if err := deleteNS(f[0]); err != nil {
			fmt.Fprintln(os.Stderr, "routerns: removing a leftover namespace:", err)
		}
	}
}

// run runs a command with a timeout and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	return runInput(ctx, "", name, args...)
}

// runInput is run with input on the command's stdin.
func runInput(ctx context.Context, input, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(input)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), cmdTimeout)
	}
	return string(out), err
}

// ip runs `ip args...` and fails the test on an error.
func (l *lab) ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run(context.Background(), "ip", args...)
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exec runs a command inside namespace ns; it returns the combined output
// and the error, leaving the verdict to the caller.
func (l *lab) exec(ns string, args ...string) (string, error) {
	return run(context.Background(), "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// must is exec that fails the test on an error.
func (l *lab) must(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := l.exec(ns, args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// helper runs the test binary as a helper inside ns and returns its stdout.
func (l *lab) helper(t testing.TB, ns, mode string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, self(t), mode}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper %s %v in %s: %v", mode, args, ns, err)
	}
	return strings.TrimSpace(string(out))
}

// serve starts a TCP server in ns on every addr that answers each
// connection with "peer=<source address>"; it stops with the test.
func (l *lab) serve(t testing.TB, ns string, addrs ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self(t), "serve"}, addrs...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=serve")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the server ends when this closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("server in %s on %v did not start: %q", ns, addrs, line)
		}
	case <-time.After(cmdTimeout):
		t.Fatalf("server in %s on %v: not ready after %v", ns, addrs, cmdTimeout)
	}
}

func self(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// stacksDir holds the test copies of Pulumi.yaml and the shipped stack
// files, so editing the repository's stack files does not change what the
// tests expect.
func stacksDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "testdata", "stacks")
}

// repoRoot is the directory with go.mod above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
