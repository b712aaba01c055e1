package day2

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"

	"github.com/sda-platform/sda/internal/kube"
)

// Membership makes a cluster's members (Kubernetes Nodes and etcd
// members) match the nodes a stack declares, through the Talos and
// Kubernetes APIs, as Talos's docs prescribe for scaling down: a node that
// answers is reset gracefully (Talos cordons and drains it, a control
// plane leaves etcd, the disk is wiped and the machine halts, so its VM
// can be deleted), a control plane that is gone is removed from etcd by
// member ID through a declared control plane, and the Node object is
// deleted. A declared node is never touched.
//
// Addresses come from SDA's own declarations (Previous, the declaration
// of the last successful run), never from what a Node reports about
// itself; a leaving node SDA has no address for is reset only at an
// address no declared node has, and only because the Talos API there
// proves, by mutual TLS with the cluster's CA, that it is a machine of
// this cluster.
type Membership struct {
	// Declared are the nodes the stack declares now; Previous those it
	// declared at the last run that reconciled (empty on the first).
	Declared, Previous []Node
	// Talosconfig and Kubeconfig are the cluster's admin credentials; with
	// no Kubeconfig, the control planes issue one (KubeClient).
	Talosconfig, Kubeconfig string
	// Timeout bounds each wait (the Kubernetes API answering after a
	// bootstrap, one node's reset); Poll is the interval between checks.
	Timeout, Poll time.Duration
	Log           func(string)
}

// Leaving is one member that is not declared, as Reconcile found it.
type Leaving struct {
	// Name is the Node's (or etcd member's) name; "" for an etcd member
	// that never started (it has no name yet).
	Name string
	// Address is where its Talos API is reached ("" when unknown: a Node
	// SDA never declared, whose address is a declared node's).
	Address      string
	ControlPlane bool
	// Answers is whether its Talos API answers now.
	Answers bool
	// MemberID is its etcd member ID (control planes that are members).
	MemberID uint64
	// HasNode is whether a Kubernetes Node object exists for it.
	HasNode bool
}

func (l Leaving) String() string {
	name := l.Name
	if name == "" {
		name = fmt.Sprintf("unnamed etcd member %016x", l.MemberID)
	}
	if l.Address == "" {
		return name
	}
	return fmt.Sprintf("%s (%s)", name, l.Address)
}

func (m Membership) log(format string, args ...any) {
	if m.Log != nil {
		m.Log(fmt.Sprintf(format, args...))
	}
}

// Reconcile removes every member that is not declared, workers first, then
// control planes one at a time, those that are gone before those that
// answer (removing a dead member keeps a quorum that removing a live one
// while a dead one stays may not), after checking that etcd keeps quorum
// through every step (CheckRemovals). It returns the names removed. With
// dryRun it only checks and returns what it would remove.
func (m Membership) Reconcile(ctx context.Context, dryRun bool) ([]string, error) {
	if m.Timeout == 0 {
		m.Timeout = DefaultTimeout
	}
	if m.Poll == 0 {
		m.Poll = DefaultPoll
	}
	if !slices.ContainsFunc(m.Declared, func(n Node) bool { return n.ControlPlane }) {
		return nil, fmt.Errorf("membership: at least one control plane must stay declared")
	}
	cfg, err := ParseTalosconfig(m.Talosconfig)
	if err != nil {
		return nil, err
	}
	var kc *kube.Client
	if m.Kubeconfig != "" {
		kc, err = kube.New(m.Kubeconfig)
	} else {
		kc, err = KubeClient(ctx, cfg, m.endpoints())
	}
	if err != nil {
		return nil, err
	}
	defer kc.Close()

	nodes, err := m.waitForNodes(ctx, kc)
	if err != nil {
		return nil, err
	}
	members, err := LiveEtcdMembers(ctx, cfg, m.endpoints())
	if err != nil {
		return nil, fmt.Errorf("membership: reading etcd's members: %w", err)
	}
	leaving := m.leaving(nodes, members, func(addr string) bool {
		_, err := Version(ctx, cfg, addr)
		return err == nil
	})
	if len(leaving) == 0 {
		return nil, nil
	}
	declaredCPs := ControlPlanes(m.Declared)
	if err := CheckRemovals(members, declaredCPs); err != nil {
		return nil, err
	}
	var removed []string
	for _, l := range leaving {
		removed = append(removed, l.String())
	}
	if dryRun {
		return removed, nil
	}
	for _, l := range leaving {
		if err := m.remove(ctx, cfg, kc, l, declaredCPs); err != nil {
			return nil, err
		}
	}
	return removed, nil
}

// endpoints are the control planes to ask for etcd's members: the
// declared ones, then the previous declaration's (the leaving ones answer
// too).
func (m Membership) endpoints() []string {
	var out []string
	for _, n := range append(slices.Clone(m.Declared), m.Previous...) {
		if n.ControlPlane && !slices.Contains(out, n.Address) {
			out = append(out, n.Address)
		}
	}
	return out
}

// waitForNodes lists the Nodes, waiting up to the timeout for the API
// server: right after the bootstrap it comes up minutes after etcd.
func (m Membership) waitForNodes(ctx context.Context, kc *kube.Client) ([]kube.Node, error) {
	deadline := time.Now().Add(m.Timeout)
	for {
		nodes, err := kc.Nodes(ctx, "")
		if err == nil {
			return nodes, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("membership: the Kubernetes API at %s did not answer within %s: %w", kc.Server(), m.Timeout, err)
		}
		if err := sleep(ctx, m.Poll); err != nil {
			return nil, err
		}
	}
}

// leaving are the members not declared, in removal order: workers by
// name, then control planes that do not answer, then those that do.
// answers asks a Talos API whether it answers with the cluster's CA.
func (m Membership) leaving(nodes []kube.Node, members []EtcdMember, answers func(addr string) bool) []Leaving {
	declaredName := map[string]bool{}
	declaredAddr := map[string]bool{}
	for _, n := range m.Declared {
		declaredName[n.Hostname], declaredAddr[n.Address] = true, true
	}
	previous := map[string]Node{}
	for _, n := range m.Previous {
		previous[n.Hostname] = n
	}
	byAddr := map[string]*Leaving{}
	var out []*Leaving
	add := func(l *Leaving) *Leaving {
		if l.Address != "" {
			if have := byAddr[l.Address]; have != nil {
				return have
			}
			byAddr[l.Address] = l
		}
		out = append(out, l)
		return l
	}
	for _, em := range members {
		if declaredAddr[em.Address] {
			continue
		}
		add(&Leaving{Name: em.Hostname, Address: em.Address, ControlPlane: true, MemberID: em.ID})
	}
	for _, n := range nodes {
		if declaredName[n.Name] {
			continue
		}
		addr := ""
		if p, ok := previous[n.Name]; ok {
			addr = p.Address
		} else if n.InternalIP != "" && !declaredAddr[n.InternalIP] {
			addr = n.InternalIP
		}
		l := add(&Leaving{Name: n.Name, Address: addr, ControlPlane: n.Labels["node-role.kubernetes.io/control-plane"] != ""})
		l.HasNode = true
		if l.Name == "" {
			l.Name = n.Name
		}
	}
	for _, l := range out {
		if l.Address != "" && !declaredAddr[l.Address] {
			l.Answers = answers(l.Address)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ControlPlane != b.ControlPlane {
			return !a.ControlPlane
		}
		if a.ControlPlane && a.Answers != b.Answers {
			return !a.Answers
		}
		return a.Name < b.Name
	})
	res := make([]Leaving, 0, len(out))
	for _, l := range out {
		res = append(res, *l)
	}
	return res
}

// remove takes one leaving member out of the cluster.
func (m Membership) remove(ctx context.Context, cfg *clientconfig.Config, kc *kube.Client, l Leaving, declaredCPs []string) error {
	switch {
	case l.Answers:
		m.log("membership: removing %s: graceful reset (cordon, drain, leave etcd, wipe, halt)", l)
		if err := m.reset(ctx, cfg, l); err != nil {
			return err
		}
	case l.ControlPlane && l.MemberID != 0:
		m.log("membership: %s does not answer; removing its etcd member %016x through a declared control plane", l, l.MemberID)
		if err := removeMember(ctx, cfg, declaredCPs, l); err != nil {
			return err
		}
	default:
		m.log("membership: %s does not answer; deleting its Node", l)
	}
	if l.HasNode {
		if err := kc.DeleteNode(ctx, l.Name); err != nil {
			return fmt.Errorf("membership: deleting the Node of %s: %w", l, err)
		}
	}
	return nil
}

// removeMember removes a member by ID through the first declared control
// plane that answers (`talosctl etcd remove-member`).
func removeMember(ctx context.Context, cfg *clientconfig.Config, declaredCPs []string, l Leaving) error {
	var last error
	for _, cp := range declaredCPs {
		err := onNode(ctx, cfg, cp, 30*time.Second, func(ctx context.Context, c *client.Client) error {
			return c.EtcdRemoveMemberByID(client.WithNode(ctx, cp), &machine.EtcdRemoveMemberByIDRequest{MemberId: l.MemberID})
		})
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("membership: removing the etcd member of %s: no declared control plane could: %w", l, last)
}

// reset is `talosctl reset --graceful --reboot=false --wait`: the reset
// call (mode ALL: the whole system disk), then its sequence watched
// through the node's events until the node stops answering (it halts).
// A sequence that fails (etcd refuses the leave) stops with Talos's
// message; the node then reboots back into its configuration.
func (m Membership) reset(ctx context.Context, cfg *clientconfig.Config, l Leaving) error {
	var actor string
	err := onNode(ctx, cfg, l.Address, 2*time.Minute, func(ctx context.Context, c *client.Client) error {
		resp, err := c.ResetGenericWithResponse(ctx, &machine.ResetRequest{Graceful: true, Reboot: false, Mode: machine.ResetRequest_ALL})
		if err != nil {
			return err
		}
		if len(resp.Messages) > 0 {
			actor = resp.Messages[0].ActorId
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("membership: resetting %s: %w", l, err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	failed := make(chan string, 1)
	if actor != "" {
		go watchSequence(ctx, cfg, l.Address, actor, failed)
	}
	for {
		select {
		case msg := <-failed:
			return fmt.Errorf("membership: resetting %s: Talos's reset sequence failed: %s (the node reboots back into its configuration; it stays cordoned until you uncordon it or retry)", l, msg)
		default:
		}
		if _, err := Version(ctx, cfg, l.Address); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("membership: %s did not finish its reset within %s", l, m.Timeout)
			}
			m.log("membership: %s was reset and halted", l)
			return nil
		}
		if sleep(ctx, min(m.Poll, ReturnPoll)) != nil {
			return fmt.Errorf("membership: %s still answers %s after its reset call", l, m.Timeout)
		}
	}
}
