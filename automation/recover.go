package automation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// What a run killed hard leaves behind, and what Recover does about it:
//
//   - the backend's lock file (lock.go): removed when the process that took
//     it is gone (this host), or with ForceUnlock when it was taken on
//     another host; never while the process runs;
//   - pending operations in the state: the engine records a create before
//     it calls the provider and clears it when the call returns, so every
//     create in flight stays "creating" (apitype.OperationV2). Proxmox
//     finishes a guest's create task whether or not its client still
//     waits, so such a VM or container may exist outside the state, and
//     the next create of its VM ID fails. Recover compares each pending
//     create of a VM or container with the guests Proxmox lists: a guest
//     with the declared VM ID, node and name is adopted (added to the
//     state with that ID, then refreshed); a VM ID that is free is cleared
//     (nothing was created); a VM ID held by something else is refused,
//     and then nothing in the state is changed.
//
// `pulumi refresh --import-pending-creates URN ID` cannot adopt at the
// pinned CLI: it only retypes the pending operation to "importing" with
// the ID (pulumi v3.274.1 pkg/cmd/pulumi/operations/refresh.go:578-600),
// no part of the engine reads such an operation, and the next snapshot
// keeps only the base's "creating" operations (pkg/backend/journal.go:
// 450-468): the resource never reaches the state. Recover therefore edits
// the state itself: export, add the resource from the pending operation's
// inputs, import (`pulumi stack import` drops every pending operation,
// pkg/cmd/pulumi/stack/io.go:630-640), then a refresh of what it adopted.

// Type tokens of the guests whose pending creates Recover resolves.
const (
	vmType        = "proxmoxve:VM/virtualMachine:VirtualMachine"
	containerType = "proxmoxve:CT/container:Container"
)

// Guest is a VM or container as Proxmox lists it.
type Guest struct {
	VMID int
	Node string
	Name string
	// Kind is "qemu" for a VM, "lxc" for a container.
	Kind string
}

// GuestLister lists the guests of the Proxmox cluster (ProxmoxGuests; a
// test passes a fake).
type GuestLister interface {
	Guests(ctx context.Context) ([]Guest, error)
}

// RecoverOptions tune Recover.
type RecoverOptions struct {
	// ForceUnlock also removes locks this host cannot check: those taken
	// on another host, and, for a backend other than file://, whatever
	// `pulumi cancel` removes. A lock whose process runs on this host is
	// never removed.
	ForceUnlock bool
	// Guests lists Proxmox's guests, to resolve pending creates of VMs and
	// containers. Nil: such pending creates are reported and the state is
	// left alone.
	Guests GuestLister
}

// PendingAction is what Recover does with one pending create.
type PendingAction string

const (
	// PendingAdopt: Proxmox has the guest as declared; it joins the state.
	PendingAdopt PendingAction = "adopt"
	// PendingClear: Proxmox has no guest with that VM ID; nothing was created.
	PendingClear PendingAction = "clear"
	// PendingRefuse: the VM ID is held by a guest that is not the declared
	// one, or the guest cannot be identified; the state is not changed.
	PendingRefuse PendingAction = "refuse"
	// PendingClearUnchecked: not a VM or container; cleared as `pulumi
	// refresh --clear-pending-creates` would, without asking its provider.
	PendingClearUnchecked PendingAction = "clear unchecked"
)

// PendingCreate is one pending create found in the state.
type PendingCreate struct {
	URN  string
	Type string
	// VMID, Node and Name are what the stack declares (guests only).
	VMID       int
	Node, Name string
	// Found is the guest Proxmox has with that VM ID, if any.
	Found  *Guest
	Action PendingAction
	Reason string
}

func (p PendingCreate) String() string {
	name := p.URN[strings.LastIndex(p.URN, "::")+2:]
	if p.VMID == 0 && p.Node == "" {
		return fmt.Sprintf("%s (%s): %s: %s", name, p.Type, p.Action, p.Reason)
	}
	return fmt.Sprintf("VM ID %d (%s %q on node %s): %s: %s", p.VMID, name, p.Name, p.Node, p.Action, p.Reason)
}

// RecoverReport is what Recover found and did.
type RecoverReport struct {
	// Locks are the stack's lock files found; Unlocked those removed.
	Locks    []Lock
	Unlocked []string
	// Cancelled is true when `pulumi cancel` ran (ForceUnlock on a backend
	// other than file://).
	Cancelled bool
	// Pending are the pending creates, each with its action.
	Pending []PendingCreate
	// Dropped are the other pending operations ("updating <urn>"); the
	// engine drops them itself at the next operation.
	Dropped []string
	// StateEdited is true when the state was imported back.
	StateEdited bool
	// Adopted are the URNs added to the state and refreshed.
	Adopted []string
}

// Recover makes a stack usable again after a run that was killed hard:
// it removes a stale lock and resolves the pending creates (see above).
// It refuses, changing nothing, while the process holding a lock runs.
func (d *Deployment) Recover(ctx context.Context, o RecoverOptions) (*RecoverReport, error) {
	rep := &RecoverReport{}
	if err := d.unlock(ctx, o, rep); err != nil {
		return rep, err
	}
	untyped, err := d.stack.Export(ctx)
	if err != nil {
		return rep, fmt.Errorf("exporting the state of stack %s: %w", d.opts.Stack, err)
	}
	dep, err := decodeDeployment(untyped)
	if err != nil {
		return rep, err
	}
	if len(dep.PendingOperations) == 0 {
		return rep, nil
	}
	var guests []Guest
	if o.Guests != nil && hasGuestCreates(dep) {
		if guests, err = o.Guests.Guests(ctx); err != nil {
			return rep, fmt.Errorf("listing Proxmox's guests: %w", err)
		}
	}
	rep.Pending, rep.Dropped = planPending(dep, guests, o.Guests != nil)
	var refused []string
	for _, p := range rep.Pending {
		if p.Action == PendingRefuse {
			refused = append(refused, "  "+p.String())
		}
	}
	if len(refused) > 0 {
		return rep, fmt.Errorf("stack %s: pending creates that cannot be resolved, so the state was not changed:\n%s",
			d.opts.Stack, strings.Join(refused, "\n"))
	}
	edited, adopted := adoptPending(dep, rep.Pending, time.Now())
	out, err := encodeDeployment(untyped, edited)
	if err != nil {
		return rep, err
	}
	if err := d.stack.Import(ctx, out); err != nil {
		return rep, d.ExplainLocked("state import", fmt.Errorf("importing the recovered state of stack %s: %w", d.opts.Stack, err))
	}
	rep.StateEdited = true
	if len(adopted) == 0 {
		return rep, nil
	}
	// The adopted resources carry their inputs as outputs; read the real
	// outputs (addresses, MACs) before anything depends on them.
	_, err = d.run(ctx, "refresh", func(ch chan<- events.EngineEvent) error {
		opts := []optrefresh.Option{optrefresh.EventStreams(ch), optrefresh.SuppressProgress(), optrefresh.Target(adopted)}
		_, err := d.stack.Refresh(ctx, opts...)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("the adopted guests are in the state, but reading them back failed (run `sda refresh --stack %s`): %w", d.opts.Stack, err)
	}
	rep.Adopted = adopted
	return rep, nil
}

// unlock removes the locks Recover may remove, or refuses.
func (d *Deployment) unlock(ctx context.Context, o RecoverOptions, rep *RecoverReport) error {
	locks, ok, err := d.Locks()
	if err != nil {
		return err
	}
	if !ok {
		if !o.ForceUnlock {
			return nil // nothing to read; a held lock fails the export or import below
		}
		var env []string
		for k, v := range d.stack.Workspace().GetEnvVars() {
			env = append(env, k+"="+v)
		}
		_, stderr, code, err := d.stack.Workspace().PulumiCommand().Run(ctx, d.workDir, nil, nil, nil, env,
			"cancel", "--yes", "--stack", d.stack.Name(), "--non-interactive")
		if err != nil || code != 0 {
			return fmt.Errorf("pulumi cancel of stack %s: %v: %s", d.opts.Stack, err, strings.TrimSpace(stderr))
		}
		rep.Cancelled = true
		return nil
	}
	rep.Locks = locks
	for _, l := range locks {
		switch {
		case l.State == LockRunning:
			return fmt.Errorf("stack %s is locked by %s: wait for it to end; sda recover removes only locks whose process is gone", d.opts.Stack, l)
		case l.State == LockOtherHost && !o.ForceUnlock:
			return fmt.Errorf("stack %s is locked by %s: if it no longer runs there, run `sda recover --stack %s --force-unlock`", d.opts.Stack, l, d.opts.Stack)
		}
	}
	for _, l := range locks {
		if err := os.Remove(l.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing the lock %s: %w", l.Path, err)
		}
		rep.Unlocked = append(rep.Unlocked, l.Path)
	}
	return nil
}

func decodeDeployment(u apitype.UntypedDeployment) (*apitype.DeploymentV3, error) {
	if u.Version != 3 {
		return nil, fmt.Errorf("the state is a version %d deployment; sda recover reads version 3", u.Version)
	}
	var dep apitype.DeploymentV3
	if err := json.Unmarshal(u.Deployment, &dep); err != nil {
		return nil, fmt.Errorf("reading the state: %w", err)
	}
	return &dep, nil
}

func encodeDeployment(orig apitype.UntypedDeployment, dep *apitype.DeploymentV3) (apitype.UntypedDeployment, error) {
	raw, err := json.Marshal(dep)
	if err != nil {
		return apitype.UntypedDeployment{}, err
	}
	return apitype.UntypedDeployment{Version: orig.Version, Features: orig.Features, Deployment: raw}, nil
}

func hasGuestCreates(dep *apitype.DeploymentV3) bool {
	for _, op := range dep.PendingOperations {
		if op.Type == apitype.OperationTypeCreating && isGuest(string(op.Resource.Type)) {
			return true
		}
	}
	return false
}

func isGuest(typ string) bool { return typ == vmType || typ == containerType }

// declared reads a guest's VM ID, node and name from its inputs.
func declared(r apitype.ResourceV3) (vmid int, node, name string) {
	switch v := r.Inputs["vmId"].(type) {
	case float64:
		vmid = int(v)
	case int:
		vmid = v
	case string:
		vmid, _ = strconv.Atoi(v)
	}
	node, _ = r.Inputs["nodeName"].(string)
	if string(r.Type) == containerType {
		if init, ok := r.Inputs["initialization"].(map[string]any); ok {
			name, _ = init["hostname"].(string)
		}
	} else {
		name, _ = r.Inputs["name"].(string)
	}
	return vmid, node, name
}

// planPending decides, for each pending create, what Recover does, by
// comparing the declared guests with what Proxmox lists. The other pending
// operations are listed as dropped.
func planPending(dep *apitype.DeploymentV3, guests []Guest, listed bool) ([]PendingCreate, []string) {
	byID := map[int]Guest{}
	for _, g := range guests {
		byID[g.VMID] = g
	}
	live := map[string]bool{}
	for _, r := range dep.Resources {
		if !r.Delete {
			live[string(r.URN)] = true
		}
	}
	var plan []PendingCreate
	var dropped []string
	seen := map[int]string{}
	for _, op := range dep.PendingOperations {
		r := op.Resource
		if op.Type != apitype.OperationTypeCreating {
			dropped = append(dropped, string(op.Type)+" "+string(r.URN))
			continue
		}
		p := PendingCreate{URN: string(r.URN), Type: string(r.Type)}
		if !isGuest(p.Type) {
			p.Action, p.Reason = PendingClearUnchecked, "not a VM or container: cleared without asking its provider; if it was created, the next up may fail on it"
			plan = append(plan, p)
			continue
		}
		p.VMID, p.Node, p.Name = declared(r)
		kind := "qemu"
		if p.Type == containerType {
			kind = "lxc"
		}
		g, found := byID[p.VMID]
		if found {
			p.Found = &g
		}
		switch {
		case !listed:
			p.Action, p.Reason = PendingRefuse, "not checked: no list of Proxmox's guests was given"
		case p.VMID == 0:
			p.Action, p.Reason = PendingRefuse, "the stack declares no VM ID, so the guest Proxmox may have created cannot be identified; find it by its name and delete it or clear the pending create by hand"
		case live[p.URN]:
			p.Action, p.Reason = PendingRefuse, "the state already has a resource with this URN (a replacement was being created); resolve it by hand"
		case seen[p.VMID] != "":
			p.Action, p.Reason = PendingRefuse, "another pending create ("+seen[p.VMID]+") declares the same VM ID"
		case !found:
			p.Action, p.Reason = PendingClear, "Proxmox has no guest with this VM ID: the create never happened"
		case g.Kind != kind || g.Node != p.Node || g.Name != p.Name:
			p.Action, p.Reason = PendingRefuse, fmt.Sprintf("Proxmox has VM ID %d as %s %q on node %s, not the declared %s %q on node %s: not adopted; delete or renumber one of them",
				p.VMID, g.Kind, g.Name, g.Node, kind, p.Name, p.Node)
		default:
			p.Action, p.Reason = PendingAdopt, "Proxmox has it as declared: adopted into the state"
		}
		if p.VMID != 0 {
			seen[p.VMID] = p.URN
		}
		plan = append(plan, p)
	}
	return plan, dropped
}

// adoptPending returns dep with the adopted guests appended as resources
// (their ID the VM ID, their outputs the declared inputs until the refresh)
// and no pending operations; and the adopted URNs. Appending keeps the
// order valid: a pending create's parent, provider and dependencies are
// all in the state already.
func adoptPending(dep *apitype.DeploymentV3, plan []PendingCreate, now time.Time) (*apitype.DeploymentV3, []string) {
	out := *dep
	out.Resources = append([]apitype.ResourceV3(nil), dep.Resources...)
	out.PendingOperations = nil
	action := map[string]PendingCreate{}
	for _, p := range plan {
		action[p.URN] = p
	}
	var adopted []string
	for _, op := range dep.PendingOperations {
		p, ok := action[string(op.Resource.URN)]
		if op.Type != apitype.OperationTypeCreating || !ok || p.Action != PendingAdopt {
			continue
		}
		r := op.Resource
		r.ID = resource.ID(strconv.Itoa(p.VMID))
		r.Custom = true
		r.Delete, r.PendingReplacement, r.InitErrors = false, false, nil
		outputs := map[string]any{}
		for k, v := range r.Inputs {
			outputs[k] = v
		}
		for k, v := range r.Outputs {
			outputs[k] = v
		}
		outputs["vmId"] = float64(p.VMID)
		r.Outputs = outputs
		t := now.UTC()
		r.Created, r.Modified = &t, &t
		out.Resources = append(out.Resources, r)
		adopted = append(adopted, string(r.URN))
	}
	return &out, adopted
}

// ProxmoxGuests lists guests through the Proxmox API with an API token:
// GET /cluster/resources?type=vm for every VM and container the token may
// audit (pve-manager PVE/API2/Cluster.pm resources; VM.Audit filters it),
// then each guest's configuration for its name (the listing's name comes
// from the status data, which a guest created seconds ago may not have).
type ProxmoxGuests struct {
	// Endpoint is proxmoxve:endpoint, e.g. https://pve.example.lan:8006/.
	Endpoint string
	// APIToken is proxmoxve:apiToken: user@realm!tokenid=secret.
	APIToken string
	// Insecure skips the TLS certificate check (proxmoxve:insecure).
	Insecure bool
	// HTTP is the client; nil: one made from Insecure.
	HTTP *http.Client
}

func (p ProxmoxGuests) get(ctx context.Context, path string, out any) error {
	base, err := url.Parse(strings.TrimRight(p.Endpoint, "/") + "/api2/json/")
	if err != nil || base.Host == "" {
		return fmt.Errorf("the Proxmox endpoint %q is not a URL such as https://pve.example.lan:8006/", p.Endpoint)
	}
	u, err := base.Parse(path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "PVEAPIToken="+p.APIToken)
	hc := p.HTTP
	if hc == nil {
		hc = proxmoxHTTP(p.Insecure)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u.Path, resp.Status)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("GET %s: %w", u.Path, err)
	}
	return json.Unmarshal(env.Data, out)
}

// Guests lists the cluster's VMs and containers.
func (p ProxmoxGuests) Guests(ctx context.Context) ([]Guest, error) {
	if p.Endpoint == "" || !strings.Contains(p.APIToken, "!") || !strings.Contains(p.APIToken, "=") {
		return nil, errors.New("listing Proxmox's guests needs proxmoxve:endpoint and an API token in proxmoxve:apiToken (or PROXMOX_VE_ENDPOINT and PROXMOX_VE_API_TOKEN)")
	}
	var list []struct {
		VMID int    `json:"vmid"`
		Node string `json:"node"`
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := p.get(ctx, "cluster/resources?type=vm", &list); err != nil {
		return nil, err
	}
	var out []Guest
	for _, r := range list {
		if r.Type != "qemu" && r.Type != "lxc" {
			continue
		}
		var conf struct {
			Name     string `json:"name"`
			Hostname string `json:"hostname"`
		}
		if err := p.get(ctx, fmt.Sprintf("nodes/%s/%s/%d/config", url.PathEscape(r.Node), r.Type, r.VMID), &conf); err != nil {
			return nil, err
		}
		name := conf.Name
		if r.Type == "lxc" {
			name = conf.Hostname
		}
		out = append(out, Guest{VMID: r.VMID, Node: r.Node, Name: name, Kind: r.Type})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VMID < out[j].VMID })
	return out, nil
}

// StackGuests is a GuestLister for the stack's own Proxmox cluster, reached
// with the stack's API settings (proxmoxAPI) when it is first asked.
func (d *Deployment) StackGuests() GuestLister { return stackGuests{d} }

type stackGuests struct{ d *Deployment }

func (s stackGuests) Guests(ctx context.Context) ([]Guest, error) {
	api, err := s.d.proxmoxAPI(ctx)
	if err != nil {
		return nil, err
	}
	return ProxmoxGuests{Endpoint: api.endpoint, APIToken: api.token, Insecure: api.insecure}.Guests(ctx)
}
