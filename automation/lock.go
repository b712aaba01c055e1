package automation

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// A Pulumi file ("DIY") backend locks a stack for every update, refresh,
// destroy and state import (not for a preview: pkg/backend/diy/backend.go
// :1213-1229, 1258-1305, 1573-1581 at v3.274.1) with one file per process:
// <backend>/.pulumi/locks/organization/<project>/<stack>/<uuid>.json, or
// .pulumi/locks/<stack>/<uuid>.json for a backend in the legacy layout
// without projects, holding {"pid", "username", "hostname", "timestamp"} of
// the CLI process that took it (pulumi v3.274.1 pkg/backend/diy/lock.go:39-60
// lockContent, :166-178 lockDir/stackLockDir/lockPath; backend.go:190-195
// FullyQualifiedName "organization/<project>/<stack>"). The process removes
// it when the operation ends; a process killed hard (SIGKILL, OOM, power)
// leaves it, and every later update then fails with lockedText.

// lockedText starts the file backend's refusal (pulumi v3.274.1
// pkg/backend/diy/lock.go:87-88), which goes on to name `pulumi cancel`.
const lockedText = "the stack is currently locked by"

// LockState says what is known of the process that holds a lock.
type LockState string

const (
	// LockRunning: the process runs on this host; its operation is under way.
	LockRunning LockState = "running"
	// LockStale: the lock was taken on this host by a process that is gone.
	LockStale LockState = "stale"
	// LockOtherHost: taken on another host; this host cannot tell.
	LockOtherHost LockState = "other host"
)

// Lock is one lock file of the stack in a file backend.
type Lock struct {
	// Path is the lock file.
	Path      string
	PID       int
	Username  string
	Hostname  string
	Timestamp time.Time
	State     LockState
}

// lockContent is the file's JSON, as the backend writes it.
type lockContent struct {
	Pid       int       `json:"pid"`
	Username  string    `json:"username"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
}

func (l Lock) String() string {
	who := fmt.Sprintf("pid %d of %s@%s, since %s", l.PID, l.Username, l.Hostname, l.Timestamp.Local().Format(time.RFC3339))
	switch l.State {
	case LockRunning:
		return "a running operation (" + who + ", on this host)"
	case LockStale:
		return "an operation whose process is gone (" + who + ", on this host; killed?)"
	default:
		return "an operation on another host (" + who + "; whether it still runs cannot be told from here)"
	}
}

// fileBackendDir is the directory of a file:// backend URL ("" for other
// backends), as the file backend reads it: ~ is the home directory, query
// parameters are options.
func fileBackendDir(backend string) (string, error) {
	if !strings.HasPrefix(backend, "file://") {
		return "", nil
	}
	p := strings.TrimPrefix(backend, "file://")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if u, err := url.PathUnescape(p); err == nil {
		p = u
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	return filepath.Clean(p), nil
}

// backendURL is the backend the engine runs on (Open always sets it).
func (d *Deployment) backendURL() string {
	return d.stack.Workspace().GetEnvVars()["PULUMI_BACKEND_URL"]
}

// lockDirs are where a file backend at dir keeps the locks of project's
// stack: the project layout's, then the legacy layout's.
func lockDirs(dir, project, stack string) []string {
	base := filepath.Join(dir, ".pulumi", "locks")
	if parts := strings.Split(stack, "/"); len(parts) == 3 {
		return []string{filepath.Join(base, parts[0], parts[1], parts[2])}
	}
	return []string{filepath.Join(base, "organization", project, stack), filepath.Join(base, stack)}
}

// Locks lists the stack's lock files, each with what is known of its
// process. It reads file:// backends only; for any other backend it returns
// nil and ok=false.
func (d *Deployment) Locks() (locks []Lock, ok bool, err error) {
	dir, err := fileBackendDir(d.backendURL())
	if err != nil || dir == "" {
		return nil, false, err
	}
	locks, err = readLocks(lockDirs(dir, d.project, d.opts.Stack))
	return locks, true, err
}

func readLocks(dirs []string) ([]Lock, error) {
	host, _ := os.Hostname()
	var locks []Lock
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			path := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue // released meanwhile
			}
			if err != nil {
				return nil, err
			}
			var c lockContent
			if err := json.Unmarshal(data, &c); err != nil {
				return nil, fmt.Errorf("lock file %s: %w", path, err)
			}
			l := Lock{Path: path, PID: c.Pid, Username: c.Username, Hostname: c.Hostname, Timestamp: c.Timestamp}
			switch {
			case c.Hostname != host:
				l.State = LockOtherHost
			case processAlive(c.Pid, c.Timestamp):
				l.State = LockRunning
			default:
				l.State = LockStale
			}
			locks = append(locks, l)
		}
	}
	sort.Slice(locks, func(i, j int) bool { return locks[i].Timestamp.Before(locks[j].Timestamp) })
	return locks, nil
}

// processAlive tells whether process pid of this host runs and could be the
// one that took a lock at taken: a pid the kernel reused for a process
// started after the lock (Linux: /proc/<pid>/stat's start time) is not.
func processAlive(pid int, taken time.Time) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	if err := p.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, syscall.EPERM) {
		return false // os.ErrProcessDone, ESRCH
	}
	if start, ok := processStart(pid); ok && !taken.IsZero() && start.After(taken.Add(2*time.Second)) {
		return false
	}
	return true
}

// processStart is when process pid started, from /proc (Linux); ok is false
// elsewhere. Clock ticks are taken as 100 a second (USER_HZ on every
// Linux architecture Go supports).
func processStart(pid int) (time.Time, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	procStat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(procStat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// LockedError is an operation refused because the stack is locked.
type LockedError struct {
	Op, Stack string
	// Locks are the stack's lock files (empty when the backend is not a
	// file backend).
	Locks []Lock
	Err   error
}

func (e *LockedError) Unwrap() error { return e.Err }

func (e *LockedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of stack %s refused: the stack is locked", e.Op, e.Stack)
	if len(e.Locks) == 0 {
		// Not a file backend, or the lock went meanwhile.
		fmt.Fprintf(&b, " (%v)\nif no operation on it runs any more, `sda recover --stack %s --force-unlock` removes the lock", e.Err, e.Stack)
		return b.String()
	}
	fmt.Fprintf(&b, " by")
	var stale, running, other bool
	for _, l := range e.Locks {
		fmt.Fprintf(&b, "\n  %s: %s", l.Path, l)
		stale = stale || l.State == LockStale
		running = running || l.State == LockRunning
		other = other || l.State == LockOtherHost
	}
	switch {
	case running:
		fmt.Fprintf(&b, "\nwait for that operation to end (or stop that process); its lock goes with it")
	case other:
		fmt.Fprintf(&b, "\nif that operation still runs, wait for it; if it does not, run `sda recover --stack %s --force-unlock` to remove the lock", e.Stack)
	case stale:
		fmt.Fprintf(&b, "\nthe process that took it is gone, so nothing holds it: run `sda recover --stack %s` to remove the stale lock (and to resolve what that operation left pending)", e.Stack)
	}
	return b.String()
}

// ExplainLocked turns the backend's refusal of a locked stack into a
// LockedError that says which process holds each lock and whether it still
// runs, and names `sda recover` instead of `pulumi cancel`. Any other error
// is returned as it is. Every operation of a Deployment passes its error
// through it.
func (d *Deployment) ExplainLocked(op string, err error) error {
	if err == nil || !(auto.IsConcurrentUpdateError(err) || strings.Contains(err.Error(), lockedText)) {
		return err
	}
	locks, _, lerr := d.Locks()
	if lerr != nil {
		return fmt.Errorf("%w (reading the lock files: %v)", err, lerr)
	}
	return &LockedError{Op: op, Stack: d.opts.Stack, Locks: locks, Err: err}
}
