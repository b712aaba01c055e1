package automation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
)

// fakeGuests is what a Proxmox cluster lists.
type fakeGuests struct {
	guests []Guest
	calls  int
}

func (f *fakeGuests) Guests(context.Context) ([]Guest, error) {
	f.calls++
	return f.guests, nil
}

const (
	stackURN    = "urn:pulumi:dev::sda::pulumi:pulumi:Stack::sda-dev"
	providerURN = "urn:pulumi:dev::sda::pulumi:providers:proxmoxve::proxmox"
)

func guestURN(typ, name string) string {
	return "urn:pulumi:dev::sda::sda:index:TalosNode$" + typ + "::" + name
}

func pendingVM(name, node string, vmid int) apitype.OperationV2 {
	return apitype.OperationV2{Type: apitype.OperationTypeCreating, Resource: apitype.ResourceV3{
		URN: resource.URN(guestURN(vmType, name)), Custom: true, Type: tokens.Type(vmType), Parent: stackURN,
		Provider: providerURN + "::0a1b", Dependencies: []resource.URN{providerURN},
		Inputs: map[string]any{"vmId": float64(vmid), "nodeName": node, "name": name, "cpu": map[string]any{"cores": float64(2)}},
	}}
}

func pendingContainer(hostname, node string, vmid int) apitype.OperationV2 {
	return apitype.OperationV2{Type: apitype.OperationTypeCreating, Resource: apitype.ResourceV3{
		URN: resource.URN(guestURN(containerType, hostname)), Custom: true, Type: tokens.Type(containerType), Parent: stackURN,
		Provider: providerURN + "::0a1b",
		Inputs:   map[string]any{"vmId": float64(vmid), "nodeName": node, "initialization": map[string]any{"hostname": hostname}},
	}}
}

func testDeployment(ops ...apitype.OperationV2) *apitype.DeploymentV3 {
	return &apitype.DeploymentV3{
		Resources: []apitype.ResourceV3{
			{URN: stackURN, Type: "pulumi:pulumi:Stack"},
			{URN: providerURN, Custom: true, ID: "0a1b", Type: "pulumi:providers:proxmoxve", Parent: stackURN},
		},
		PendingOperations: ops,
	}
}

// Each pending create is judged against what Proxmox lists, per VM ID:
// declared node, name and kind → adopt; free VM ID → clear; held by
// something else → refuse, naming the VM ID and both guests.
func TestPlanPending(t *testing.T) {
	download := apitype.OperationV2{Type: apitype.OperationTypeCreating, Resource: apitype.ResourceV3{
		URN: "urn:pulumi:dev::sda::proxmoxve:Download/file:File::talos-image", Type: "proxmoxve:Download/file:File"}}
	updating := apitype.OperationV2{Type: apitype.OperationTypeUpdating, Resource: apitype.ResourceV3{
		URN: "urn:pulumi:dev::sda::command:remote:Command::router-config", Type: "command:remote:Command"}}
	dep := testDeployment(
		pendingVM("dev-cp1", "pve", 8011),       // exists as declared
		pendingVM("dev-worker1", "pve", 8021),   // never created
		pendingVM("dev-worker2", "pve", 8022),   // the VM ID holds another VM
		pendingVM("dev-worker3", "pve", 8023),   // right name, wrong node
		pendingContainer("router", "pve", 8001), // exists as declared
		pendingVM("dev-worker4", "pve", 0),      // no VM ID declared
		download, updating)
	lister := &fakeGuests{guests: []Guest{
		{VMID: 8011, Node: "pve", Name: "dev-cp1", Kind: "qemu"},
		{VMID: 8022, Node: "pve", Name: "someone-elses", Kind: "qemu"},
		{VMID: 8023, Node: "pve2", Name: "dev-worker3", Kind: "qemu"},
		{VMID: 8001, Node: "pve", Name: "router", Kind: "lxc"},
		{VMID: 9999, Node: "pve", Name: "unrelated", Kind: "qemu"},
	}}
	guests, _ := lister.Guests(context.Background())
	plan, dropped := planPending(dep, guests, true)

	want := map[string]PendingAction{
		"dev-cp1": PendingAdopt, "dev-worker1": PendingClear, "dev-worker2": PendingRefuse, "dev-worker3": PendingRefuse,
		"router": PendingAdopt, "dev-worker4": PendingRefuse, "talos-image": PendingClearUnchecked,
	}
	if len(plan) != len(want) {
		t.Fatalf("plan has %d entries, want %d: %+v", len(plan), len(want), plan)
	}
	for _, p := range plan {
		name := p.URN[strings.LastIndex(p.URN, "::")+2:]
		if p.Action != want[name] {
			t.Errorf("%s: action %q (%s), want %q", name, p.Action, p.Reason, want[name])
		}
	}
	byName := func(name string) PendingCreate {
		for _, p := range plan {
			if strings.HasSuffix(p.URN, "::"+name) {
				return p
			}
		}
		t.Fatalf("no plan entry for %s", name)
		return PendingCreate{}
	}
	if s := byName("dev-worker2").String(); !strings.Contains(s, "VM ID 8022") || !strings.Contains(s, `"someone-elses"`) || !strings.Contains(s, `"dev-worker2"`) {
		t.Errorf("the refusal should name the VM ID and both guests: %s", s)
	}
	if s := byName("dev-worker3").String(); !strings.Contains(s, "VM ID 8023") || !strings.Contains(s, "node pve2") {
		t.Errorf("the refusal should name the VM ID and the other node: %s", s)
	}
	if p := byName("router"); p.VMID != 8001 || p.Name != "router" || p.Found == nil || p.Found.Kind != "lxc" {
		t.Errorf("container declared as %+v", p)
	}
	if len(dropped) != 1 || dropped[0] != "updating urn:pulumi:dev::sda::command:remote:Command::router-config" {
		t.Errorf("dropped = %v", dropped)
	}

	// A VM listed as a container with the same ID is not the declared VM.
	plan, _ = planPending(testDeployment(pendingVM("dev-cp1", "pve", 8011)), []Guest{{VMID: 8011, Node: "pve", Name: "dev-cp1", Kind: "lxc"}}, true)
	if plan[0].Action != PendingRefuse {
		t.Errorf("a container holding the VM's ID: %s", plan[0])
	}
	// Without a list of guests, no guest is resolved.
	plan, _ = planPending(testDeployment(pendingVM("dev-cp1", "pve", 8011)), nil, false)
	if plan[0].Action != PendingRefuse || !strings.Contains(plan[0].Reason, "not checked") {
		t.Errorf("no lister: %s", plan[0])
	}
	// Two pending creates of one VM ID: neither is adopted twice.
	plan, _ = planPending(testDeployment(pendingVM("a", "pve", 8011), pendingVM("b", "pve", 8011)), []Guest{{VMID: 8011, Node: "pve", Name: "a", Kind: "qemu"}}, true)
	if plan[0].Action != PendingAdopt || plan[1].Action != PendingRefuse {
		t.Errorf("duplicate VM IDs: %s; %s", plan[0], plan[1])
	}
	// A replacement being created (its URN is in the state already).
	rep := testDeployment(pendingVM("dev-cp1", "pve", 8011))
	rep.Resources = append(rep.Resources, apitype.ResourceV3{URN: rep.PendingOperations[0].Resource.URN, Custom: true, ID: "8010", Type: vmType})
	plan, _ = planPending(rep, []Guest{{VMID: 8011, Node: "pve", Name: "dev-cp1", Kind: "qemu"}}, true)
	if plan[0].Action != PendingRefuse {
		t.Errorf("a pending replacement: %s", plan[0])
	}
}

// Adopting appends the guest with its VM ID as ID, keeps the declared
// inputs, parent, provider and dependencies, and drops every pending
// operation.
func TestAdoptPending(t *testing.T) {
	dep := testDeployment(pendingVM("dev-cp1", "pve", 8011), pendingVM("dev-worker1", "pve", 8021))
	plan, _ := planPending(dep, []Guest{{VMID: 8011, Node: "pve", Name: "dev-cp1", Kind: "qemu"}}, true)
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	out, adopted := adoptPending(dep, plan, now)
	if len(out.PendingOperations) != 0 {
		t.Fatalf("pending operations left: %+v", out.PendingOperations)
	}
	if len(adopted) != 1 || adopted[0] != guestURN(vmType, "dev-cp1") {
		t.Fatalf("adopted %v", adopted)
	}
	if len(out.Resources) != 3 || len(dep.Resources) != 2 {
		t.Fatalf("resources: %d (the input deployment must not change: %d)", len(out.Resources), len(dep.Resources))
	}
	r := out.Resources[2]
	if r.ID != "8011" || !r.Custom || r.Parent != stackURN || r.Provider != providerURN+"::0a1b" ||
		len(r.Dependencies) != 1 || r.Inputs["name"] != "dev-cp1" || r.Outputs["vmId"] != float64(8011) ||
		r.Outputs["nodeName"] != "pve" || r.Created == nil || !r.Created.Equal(now) {
		t.Fatalf("adopted resource: %+v", r)
	}
	// The deployment still encodes and decodes as version 3.
	enc, err := encodeDeployment(apitype.UntypedDeployment{Version: 3}, out)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeDeployment(enc)
	if err != nil || len(back.Resources) != 3 || back.Resources[2].ID != "8011" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

// ProxmoxGuests lists guests with the token, and names each from its
// configuration (a VM's name, a container's hostname).
func TestProxmoxGuests(t *testing.T) {
	const token = "sda@pve!recover=00000000-0000-0000-0000-000000000000"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "PVEAPIToken="+token {
			http.Error(w, "no ticket", http.StatusUnauthorized)
			return
		}
		var data any
		switch r.URL.Path {
		case "/api2/json/cluster/resources":
			if r.URL.Query().Get("type") != "vm" {
				t.Errorf("listing %s", r.URL)
			}
			data = []map[string]any{
				{"id": "qemu/8011", "vmid": 8011, "node": "pve", "type": "qemu", "status": "running"}, // no name yet (status data)
				{"id": "lxc/8001", "vmid": 8001, "node": "pve2", "type": "lxc", "name": "router"},
			}
		case "/api2/json/nodes/pve/qemu/8011/config":
			data = map[string]any{"name": "dev-cp1", "cores": 2}
		case "/api2/json/nodes/pve2/lxc/8001/config":
			data = map[string]any{"hostname": "router"}
		default:
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	defer srv.Close()

	got, err := ProxmoxGuests{Endpoint: srv.URL + "/", APIToken: token, HTTP: srv.Client()}.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Guest{{VMID: 8001, Node: "pve2", Name: "router", Kind: "lxc"}, {VMID: 8011, Node: "pve", Name: "dev-cp1", Kind: "qemu"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("guests = %+v, want %+v", got, want)
	}
	if _, err := (ProxmoxGuests{Endpoint: srv.URL, APIToken: "sda@pve!recover=wrong", HTTP: srv.Client()}).Guests(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, err := (ProxmoxGuests{}).Guests(context.Background()); err == nil || !strings.Contains(err.Error(), "proxmoxve:apiToken") {
		t.Fatalf("no credentials: %v", err)
	}
}

// With the real CLI: pending creates written into the file backend's
// checkpoint (as a killed run leaves them) are resolved by Recover. A VM ID
// held by another guest refuses and changes nothing; a free one is cleared.
func TestRecoverPendingCreatesWithTheRealCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, backend := openTestStack(t, ctx, func(*pulumi.Context) error { return nil })
	if _, err := d.Up(ctx); err != nil {
		t.Fatal(err)
	}
	// The checkpoint: {"version": 3, "checkpoint": {"stack", "config", "latest": <deployment>}}.
	path := filepath.Join(backend, ".pulumi", "stacks", "locktest", "dev.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cp map[string]any
	if err := json.Unmarshal(data, &cp); err != nil {
		t.Fatal(err)
	}
	latest := cp["checkpoint"].(map[string]any)["latest"].(map[string]any)
	resources := latest["resources"].([]any)
	stack := resources[0].(map[string]any)["urn"].(string)
	vm := "urn:pulumi:dev::locktest::" + vmType + "::dev-cp1"
	cmd := "urn:pulumi:dev::locktest::command:remote:Command::router-config"
	latest["pending_operations"] = []any{
		map[string]any{"type": "creating", "resource": map[string]any{"urn": vm, "custom": true, "type": vmType, "parent": stack,
			"inputs": map[string]any{"vmId": 8011, "nodeName": "pve", "name": "dev-cp1"}}},
		map[string]any{"type": "creating", "resource": map[string]any{"urn": cmd, "custom": true, "type": "command:remote:Command", "parent": stack}},
	}
	if data, err = json.Marshal(cp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		t.Helper()
		u, err := d.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dep, err := decodeDeployment(u)
		if err != nil {
			t.Fatal(err)
		}
		return len(dep.PendingOperations)
	}
	if n := pending(); n != 2 {
		t.Fatalf("the backend reads %d pending operations, want the 2 written", n)
	}

	other := &fakeGuests{guests: []Guest{{VMID: 8011, Node: "pve", Name: "someone-elses", Kind: "qemu"}}}
	rep, err := d.Recover(ctx, RecoverOptions{Guests: other})
	if err == nil || !strings.Contains(err.Error(), "VM ID 8011") || !strings.Contains(err.Error(), "not changed") {
		t.Fatalf("a VM ID held by another guest: %v", err)
	}
	if other.calls != 1 || rep.StateEdited || pending() != 2 {
		t.Fatalf("the refusal changed the state (edited %v, %d pending) or did not ask Proxmox (%d)", rep.StateEdited, pending(), other.calls)
	}

	rep, err = d.Recover(ctx, RecoverOptions{Guests: &fakeGuests{}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.StateEdited || len(rep.Adopted) != 0 || len(rep.Pending) != 2 || rep.Pending[0].Action != PendingClear ||
		rep.Pending[1].Action != PendingClearUnchecked {
		t.Fatalf("report: %+v", rep)
	}
	if n := pending(); n != 0 {
		t.Fatalf("%d pending operations left", n)
	}
	if _, err := d.Up(ctx); err != nil {
		t.Fatalf("up after recover: %v", err)
	}
}

// simGuests lists the simulated Proxmox's guests.
type simGuests struct{ dir string }

func (s simGuests) Guests(context.Context) ([]Guest, error) {
	st, err := engine.ReadState(s.dir)
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
	if err := engine.WriteWorld(simDir, engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "192.0.2.10", Cores: 16, MemoryMiB: 65536})); err != nil {
		t.Fatal(err)
	}
	if err := engine.WriteFaults(simDir, engine.Faults{Latency: map[string]string{
		proxmox.TokenVM + "#" + proxmox.CreateTaskMethod: "20s"}}); err != nil {
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
				if st, err := engine.ReadState(simDir); err == nil && st.Guests[8011] != nil {
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
	dep, _ := openTestStack(t, ctx, program, map[string]string{engine.StateDirEnv: simDir,
		"PATH": plugins + string(os.PathListSeparator) + os.Getenv("PATH")})
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
	if st, err := engine.ReadState(simDir); err != nil || len(st.Guests) != 1 {
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
