package automation

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// writeLock writes a lock file as pulumi v3.274.1's file backend does
// (pkg/backend/diy/lock.go: json.Marshal of lockContent into
// .pulumi/locks/organization/<project>/<stack>/<uuid>.json).
func writeLock(t *testing.T, backendDir, project, stack, id string, pid int, host string, at time.Time) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(lockContent{Pid: pid, Username: u.Username, Hostname: host, Timestamp: at})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(backendDir, ".pulumi", "locks", "organization", project, stack)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, id+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// killPID kills process pid as `kill -9` does.
func killPID(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// deadPID is the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.ProcessState.Pid()
}

func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Each lock's process is classified: this host's live pid runs, a dead pid
// is stale, a live pid started after the lock was taken is a reused pid
// (stale), another host's cannot be told.
func TestLockStates(t *testing.T) {
	dir := t.TempDir()
	host := hostname(t)
	now := time.Now()
	stale := writeLock(t, dir, "sda", "dev", "0001-dead", deadPID(t), host, now.Add(-4*time.Minute))
	// Taken now: after this process started, so its pid is the taker's.
	running := writeLock(t, dir, "sda", "dev", "0002-live", os.Getpid(), host, now)
	other := writeLock(t, dir, "sda", "dev", "0003-other", os.Getpid(), host+"-elsewhere", now.Add(time.Second))
	writeLock(t, dir, "sda", "prod", "0004-another-stack", deadPID(t), host, now)
	want := map[string]LockState{stale: LockStale, running: LockRunning, other: LockOtherHost}
	var reused string
	if _, ok := processStart(os.Getpid()); ok {
		// This process started after a lock taken a day ago: its pid
		// was reused, the lock's process is gone.
		reused = writeLock(t, dir, "sda", "dev", "0000-reused", os.Getpid(), host, now.Add(-24*time.Hour))
		want[reused] = LockStale
	}

	locks, err := readLocks(lockDirs(dir, "sda", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != len(want) {
		t.Fatalf("got %d locks, want %d (the prod stack's lock must not count): %+v", len(locks), len(want), locks)
	}
	for _, l := range locks {
		if l.State != want[l.Path] {
			t.Errorf("%s: state %q, want %q", filepath.Base(l.Path), l.State, want[l.Path])
		}
	}
	if reused != "" && locks[0].Path != reused {
		t.Errorf("locks are not ordered by time: first is %s", locks[0].Path)
	}
}

// The message names the process, says whether it runs, and names the sda
// command (never `pulumi cancel`).
func TestLockedErrorMessage(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	lock := func(s LockState) Lock {
		return Lock{Path: "/b/.pulumi/locks/organization/sda/dev/x.json", PID: 4242, Username: "ops", Hostname: "deployer", Timestamp: at, State: s}
	}
	cases := []struct {
		state     LockState
		want, not []string
	}{
		{LockStale, []string{"pid 4242", "ops@deployer", "process is gone", "`sda recover --stack dev`", "x.json"}, []string{"pulumi cancel", "--force-unlock"}},
		{LockRunning, []string{"pid 4242", "a running operation", "wait for that operation"}, []string{"pulumi cancel", "sda recover"}},
		{LockOtherHost, []string{"another host", "`sda recover --stack dev --force-unlock`"}, []string{"pulumi cancel"}},
	}
	noFiles := (&LockedError{Op: "up", Stack: "dev", Err: errors.New("[409] Conflict: Another update is currently in progress.")}).Error()
	if !strings.Contains(noFiles, "409") || !strings.Contains(noFiles, "`sda recover --stack dev --force-unlock`") {
		t.Errorf("a backend without lock files: %s", noFiles)
	}
	for _, c := range cases {
		err := error(&LockedError{Op: "up", Stack: "dev", Locks: []Lock{lock(c.state)}, Err: errors.New(lockedText + " 1 lock(s)")})
		msg := err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message lacks %q:\n%s", c.state, w, msg)
			}
		}
		for _, n := range c.not {
			if strings.Contains(msg, n) {
				t.Errorf("%s: message has %q:\n%s", c.state, n, msg)
			}
		}
	}
}

func TestFileBackendDir(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"file:///var/sda/state":                 "/var/sda/state",
		"file:///var/sda/state?no_tmp_dir=true": "/var/sda/state",
		"file://~":                              home,
		"file://~/.sda/state":                   filepath.Join(home, ".sda", "state"),
		"s3://bucket/sda":                       "",
		"https://api.pulumi.com":                "",
	} {
		got, err := fileBackendDir(in)
		if err != nil || got != want {
			t.Errorf("fileBackendDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// openTestStack opens stack dev of an empty project on a file backend in a
// temporary directory with the real pulumi CLI, or skips; env is added to
// the engine's environment.
func openTestStack(t *testing.T, ctx context.Context, program pulumi.RunFunc, env ...map[string]string) (*Deployment, string) {
	t.Helper()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := FindPulumi(here)
	if err != nil {
		t.Skip(err)
	}
	engineEnv := map[string]string{"PULUMI_CONFIG_PASSPHRASE": "lock-test"}
	for _, e := range env {
		for k, v := range e {
			engineEnv[k] = v
		}
	}
	tmp := t.TempDir()
	project := filepath.Join(tmp, "project")
	backend := filepath.Join(tmp, "state")
	for _, d := range []string{project, backend} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(project, "Pulumi.yaml"), []byte("name: locktest\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "Pulumi.dev.yaml"), []byte("config: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(ctx, Options{ProjectDir: project, Stack: "dev", Program: program, Home: filepath.Join(tmp, "home"), PulumiBin: bin,
		BackendURL: "file://" + backend, Env: engineEnv})
	if err != nil {
		if strings.Contains(err.Error(), PluginBinary) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return d, backend
}

// The real CLI, killed with SIGKILL in the middle of an up, leaves its lock
// file; the next refresh is refused; the error names `sda recover` and the
// gone process; Recover removes the lock and the stack works again. The
// lock read during the up is the one the real backend wrote.
func TestStaleLockAfterKillWithTheRealCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		d        *Deployment
		duringUp []Lock
		readErr  error
		kill     bool
	)
	program := func(*pulumi.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if d == nil {
			return nil
		}
		var ok bool
		duringUp, ok, readErr = d.Locks()
		if readErr == nil && !ok {
			readErr = errors.New("a file backend's locks were not read")
		}
		if kill && len(duringUp) == 1 {
			// The CLI that holds the lock dies as under `kill -9`.
			readErr = errors.Join(readErr, killPID(duringUp[0].PID))
			time.Sleep(500 * time.Millisecond)
		}
		return nil
	}
	dep, _ := openTestStack(t, ctx, program)
	mu.Lock()
	d = dep
	mu.Unlock()

	// A normal up: the lock exists while the program runs, and it is the
	// running CLI's.
	if _, err := d.Up(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if readErr != nil || len(duringUp) != 1 || duringUp[0].State != LockRunning || duringUp[0].Hostname != hostname(t) || duringUp[0].PID == os.Getpid() {
		t.Fatalf("the lock during an up: %+v, %v; want one running lock of the CLI on this host", duringUp, readErr)
	}
	if _, err := os.Stat(duringUp[0].Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the lock %s outlived its up: %v", duringUp[0].Path, err)
	}
	kill = true
	mu.Unlock()

	if _, err := d.Up(ctx); err == nil {
		t.Fatal("the up whose CLI was killed succeeded")
	}
	mu.Lock()
	if readErr != nil || len(duringUp) != 1 {
		t.Fatalf("killing the CLI: %v (locks %+v)", readErr, duringUp)
	}
	killed := duringUp[0]
	mu.Unlock()
	if _, err := os.Stat(killed.Path); err != nil {
		t.Fatalf("the killed CLI's lock should stay: %v", err)
	}

	_, err := d.Refresh(ctx)
	if err == nil {
		t.Fatal("a refresh of a stack with a stale lock succeeded")
	}
	t.Logf("the CLI's refusal: %v", err)
	err = d.ExplainLocked("refresh", err)
	t.Logf("explained: %v", err)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("the refusal was not recognised as a lock: %v", err)
	}
	if len(le.Locks) != 1 || le.Locks[0].State != LockStale || le.Locks[0].Path != killed.Path || le.Locks[0].PID != killed.PID {
		t.Fatalf("locks = %+v, want the killed CLI's, stale", le.Locks)
	}
	for _, want := range []string{"`sda recover --stack dev`", "process is gone"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}

	rep, err := d.Recover(ctx, RecoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unlocked) != 1 || rep.Unlocked[0] != killed.Path {
		t.Fatalf("unlocked %v, want %s", rep.Unlocked, killed.Path)
	}
	if _, err := d.Refresh(ctx); err != nil {
		t.Fatalf("refresh after recover: %v", err)
	}
}

// A lock whose process runs on this host is never removed, not even with
// ForceUnlock; another host's only with ForceUnlock.
func TestRecoverUnlockRules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, backend := openTestStack(t, ctx, func(*pulumi.Context) error { return nil })
	host := hostname(t)

	live := writeLock(t, backend, "locktest", "dev", "live", os.Getpid(), host, time.Now())
	for _, force := range []bool{false, true} {
		_, err := d.Recover(ctx, RecoverOptions{ForceUnlock: force})
		if err == nil || !strings.Contains(err.Error(), "wait for it to end") {
			t.Fatalf("force=%v: a running process's lock: err = %v", force, err)
		}
		if _, err := os.Stat(live); err != nil {
			t.Fatalf("force=%v: the running process's lock was removed", force)
		}
	}
	if err := os.Remove(live); err != nil {
		t.Fatal(err)
	}

	other := writeLock(t, backend, "locktest", "dev", "other", 1, "another-host.example", time.Now())
	_, err := d.Recover(ctx, RecoverOptions{})
	if err == nil || !strings.Contains(err.Error(), "--force-unlock") {
		t.Fatalf("another host's lock without force: err = %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("another host's lock was removed without force")
	}
	rep, err := d.Recover(ctx, RecoverOptions{ForceUnlock: true})
	if err != nil || len(rep.Unlocked) != 1 {
		t.Fatalf("another host's lock with force: %+v, %v", rep, err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("another host's lock stayed with force")
	}
}
