package automation

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/vm"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/internal/simulator"
)

// simGuests lists the simulated Proxmox's guests.
type simGuests struct{ dir string }

func (s simGuests) Guests(context.Context) ([]Guest, error) {
	st, err := simulator.ReadState(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Guest
	for id, g := range st.Guests {
		out = append(out, Guest{VMID: id, Node: g.Node, Name: g.Name, Kind: g.Kind})
	}
	return out, nil
}

// The whole crash: the CLI is killed with SIGKILL while a VM's create task
// runs on the simulated Proxmox; the task finishes; the next refresh is
// refused on the stale lock; Recover removes it and adopts the VM (state
// import, then a targeted refresh through the simulated provider); the
// next up creates nothing.
func TestAdoptAfterKillWithTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/pulumi-sim")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	plugins := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "pulumi-sim"), "./cmd/pulumi-sim")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pulumi-sim: %v\n%s", err, out)
	}
	if err := os.Symlink("pulumi-sim", filepath.Join(plugins, "pulumi-resource-proxmoxve")); err != nil {
		t.Fatal(err)
	}
	// The killed CLI's plugin outlives it until its health check (every
	// 5 minutes) notices: end the plugins this test started, by pid.
	t.Cleanup(func() { killUnder(t, plugins) })
	simDir := t.TempDir()
	if err := simulator.WriteWorld(simDir, simulator.DefaultWorld(simulator.WorldNode{Name: "pve", SSHHost: "192.0.2.10", Cores: 16, MemoryMiB: 65536})); err != nil {
		t.Fatal(err)
	}
	if err := simulator.WriteFaults(simDir, simulator.Faults{Latency: map[string]string{
		simulator.TokenVM + "#" + simulator.CreateTaskMethod: "20s"}}); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		d       *Deployment
		killErr error
		kill    bool
	)
	program := func(ctx *pulumi.Context) error {
		p, err := proxmoxve.NewProvider(ctx, "pve", &proxmoxve.ProviderArgs{
			Endpoint: pulumi.String("https://192.0.2.10:8006/"), ApiToken: pulumi.String("sda@pve!t=00000000-0000-0000-0000-000000000000")})
		if err != nil {
			return err
		}
		_, err = vm.NewVirtualMachine(ctx, "t-vm", &vm.VirtualMachineArgs{NodeName: pulumi.String("pve"), VmId: pulumi.Int(8011),
			Name: pulumi.String("t-vm"), Started: pulumi.Bool(false)}, pulumi.Provider(p))
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !kill {
			return nil
		}
		locks, _, err := d.Locks()
		if err != nil || len(locks) != 1 {
			killErr = errors.Join(err, errors.New("no single lock during the up"))
			return nil
		}
		go func() {
			// Kill the CLI once the VM's create task runs.
			for i := 0; i < 300; i++ {
				if st, err := simulator.ReadState(simDir); err == nil && st.Guests[8011] != nil {
					mu.Lock()
					killErr = killPID(locks[0].PID)
					mu.Unlock()
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		return nil
	}
	here, _ := filepath.Abs(".")
	bin, err := FindPulumi(here)
	if err != nil {
		t.Skip(err)
	}
	tmp := t.TempDir()
	project := filepath.Join(tmp, "project")
	backend := filepath.Join(tmp, "state")
	for _, dir := range []string{project, backend} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(project, "Pulumi.yaml"), []byte("name: adopttest\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "Pulumi.dev.yaml"), []byte("config: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dep, err := Open(ctx, Options{ProjectDir: project, Stack: "dev", Program: program, Home: filepath.Join(tmp, "home"), PulumiBin: bin,
		BackendURL: "file://" + backend, Env: map[string]string{"PULUMI_CONFIG_PASSPHRASE": "adopt-test", simulator.StateDirEnv: simDir,
			"PATH": plugins + string(os.PathListSeparator) + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	d, kill = dep, true
	mu.Unlock()

	if _, err := d.Up(ctx); err == nil {
		t.Fatal("the up whose CLI was killed succeeded")
	}
	mu.Lock()
	if killErr != nil {
		t.Fatal(killErr)
	}
	kill = false
	mu.Unlock()
	u, err := d.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, err := decodeDeployment(u)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.PendingOperations) != 1 || string(before.PendingOperations[0].Resource.Type) != vmType {
		t.Fatalf("pending operations after the kill: %+v", before.PendingOperations)
	}
	t.Logf("pending create inputs: %v; outputs: %v", before.PendingOperations[0].Resource.Inputs, before.PendingOperations[0].Resource.Outputs)

	_, err = d.Refresh(ctx)
	var le *LockedError
	if !errors.As(d.ExplainLocked("refresh", err), &le) || len(le.Locks) != 1 || le.Locks[0].State != LockStale {
		t.Fatalf("refresh after the kill: %v", err)
	}
	rep, err := d.Recover(ctx, RecoverOptions{Guests: simGuests{simDir}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unlocked) != 1 || len(rep.Adopted) != 1 || !strings.HasSuffix(rep.Adopted[0], "::t-vm") {
		t.Fatalf("report: %+v", rep)
	}
	u, err = d.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := decodeDeployment(u)
	if err != nil {
		t.Fatal(err)
	}
	adopted := after.Resources[len(after.Resources)-1]
	if len(after.PendingOperations) != 0 || adopted.ID != "8011" || string(adopted.URN) != rep.Adopted[0] {
		t.Fatalf("state after recover: last resource %s %s, %d pending", adopted.URN, adopted.ID, len(after.PendingOperations))
	}
	if _, read := adopted.Outputs["ipv4Addresses"]; !read {
		t.Fatalf("the adopted VM was not read back from the provider: outputs %v", adopted.Outputs)
	}
	res, err := d.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed()) != 0 {
		t.Fatalf("the up after recover changes %+v", res.Changed())
	}
	if st, err := simulator.ReadState(simDir); err != nil || len(st.Guests) != 1 {
		t.Fatalf("guests after recover and up: %v, %v", st, err)
	}
}

// killUnder kills, by pid, the processes whose executable is in dir.
func killUnder(t *testing.T, dir string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if exe, _, _ := strings.Cut(string(cmdline), "\x00"); strings.HasPrefix(exe, dir+string(os.PathSeparator)) {
			t.Logf("ending plugin %d left by the killed CLI: %s", pid, exe)
			_ = killPID(pid)
		}
	}
}
