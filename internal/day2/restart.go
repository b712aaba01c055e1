package day2

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
)

// Restart gates a restart of one node that another resource performs (the
// Proxmox provider reboots a VM whose CPU, memory, NIC or cloud-init
// changes, with no way to defer it at the pinned version): Before takes the
// node's turn, checks the cluster's health, and cordons and drains the
// node; the restart happens; After waits until the node is back and Ready,
// uncordons it and checks the cluster's health again, then gives the turn
// back. Control planes take turns one at a time, workers Parallelism at a
// time, and never while a control plane restarts: the order Omni and
// Cluster API roll machine changes in.
//
// The turns live in the plugin's process, shared by every node of the
// cluster: the engine starts the nodes' Before steps together and each
// waits for its turn. So the first creation of the nodes, which restarts
// nothing and takes no turn, stays parallel. A restart whose After never
// comes (its VM update failed) keeps its turn until the others' waits time
// out, naming it.
type Restart struct {
	// ClusterName keys the turns; Node is the node that restarts; Cluster
	// every declared node (the health gates check them all).
	ClusterName string
	Node        Node
	Cluster     []Node
	Talosconfig string
	// Parallelism is how many workers restart at once (default 1).
	Parallelism   int
	Timeout, Poll time.Duration
	Log           func(string)
}

func (r Restart) defaults() Restart {
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.Poll == 0 {
		r.Poll = DefaultPoll
	}
	if r.Parallelism < 1 {
		r.Parallelism = 1
	}
	return r
}

func (r Restart) log(format string, args ...any) {
	if r.Log != nil {
		r.Log(fmt.Sprintf(format, args...))
	}
}

func (r Restart) who() string { return fmt.Sprintf("%s (%s)", r.Node.Hostname, r.Node.Address) }

// Before takes the node's turn, gates on the cluster's health, and cordons
// and drains the node. On failure the turn is given back and the node
// uncordoned, so the cluster is as it was.
func (r Restart) Before(ctx context.Context) (err error) {
	r = r.defaults()
	cfg, err := ParseTalosconfig(r.Talosconfig)
	if err != nil {
		return err
	}
	if err := turns.take(ctx, r); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			turns.give(r)
		}
	}()
	gate := Upgrade{Cluster: turns.others(r), Timeout: r.Timeout, Poll: r.Poll}
	if err := gate.waitHealthy(ctx, cfg, "before restarting "+r.who()); err != nil {
		return err
	}
	kc, err := KubeClient(ctx, cfg, ControlPlanes(r.Cluster))
	if err != nil {
		return err
	}
	defer kc.Close()
	r.log("%s: cordoning and draining before its restart", r.who())
	dctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if err := kc.Drain(dctx, r.Node.Hostname, r.Log); err != nil {
		if uerr := kc.SetUnschedulable(ctx, r.Node.Hostname, false); uerr != nil {
			r.log("%s: uncordoning after the failed drain: %v", r.who(), uerr)
		}
		return fmt.Errorf("before restarting %s: %w", r.who(), err)
	}
	return nil
}

// After waits until the node is back and its Node Ready, uncordons it,
// gates on the cluster's health and gives the turn back.
func (r Restart) After(ctx context.Context) error {
	r = r.defaults()
	defer turns.give(r)
	cfg, err := ParseTalosconfig(r.Talosconfig)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(r.Timeout)
	var last error
	for {
		last = r.nodeBack(ctx, cfg)
		if last == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come back Ready within %s after its restart: %w", r.who(), r.Timeout, last)
		}
		if err := sleep(ctx, min(r.Poll, ReturnPoll)); err != nil {
			return err
		}
	}
	r.log("%s is back and Ready; uncordoned", r.who())
	gate := Upgrade{Cluster: turns.others(r), Timeout: r.Timeout, Poll: r.Poll}
	return gate.waitHealthy(ctx, cfg, "after restarting "+r.who())
}

// nodeBack is one check that the node answers on the Talos API and its
// Node is Ready; then it uncordons the node.
func (r Restart) nodeBack(ctx context.Context, cfg *clientconfig.Config) error {
	if _, err := Version(ctx, cfg, r.Node.Address); err != nil {
		return err
	}
	kc, err := KubeClient(ctx, cfg, ControlPlanes(r.Cluster))
	if err != nil {
		return err
	}
	defer kc.Close()
	n, err := kc.Node(ctx, r.Node.Hostname)
	if err != nil {
		return err
	}
	if n.Ready != "True" {
		return fmt.Errorf("its Node is not Ready (Ready: %s)", n.Ready)
	}
	return kc.SetUnschedulable(ctx, r.Node.Hostname, false)
}

// ControlPlanes are the control planes' addresses among cluster.
func ControlPlanes(cluster []Node) []string {
	var out []string
	for _, n := range cluster {
		if n.ControlPlane {
			out = append(out, n.Address)
		}
	}
	return out
}

// turnTable is the restart turns of every cluster this process serves.
type turnTable struct {
	mu       sync.Mutex
	changed  *sync.Cond
	clusters map[string]*clusterTurns
}

type clusterTurns struct {
	controlPlane string          // the control plane restarting, if any
	workers      map[string]bool // the workers restarting
}

var turns = newTurnTable()

func newTurnTable() *turnTable {
	t := &turnTable{clusters: map[string]*clusterTurns{}}
	t.changed = sync.NewCond(&t.mu)
	return t
}

// take waits until the node may restart: a control plane when nothing else
// of its cluster restarts, a worker when no control plane does and fewer
// than Parallelism workers do. It gives up when ctx ends or after the
// timeout, naming what holds the turn.
func (t *turnTable) take(ctx context.Context, r Restart) error {
	deadline := time.Now().Add(r.Timeout)
	stop := context.AfterFunc(ctx, func() { t.mu.Lock(); t.changed.Broadcast(); t.mu.Unlock() })
	defer stop()
	timer := time.AfterFunc(r.Timeout, func() { t.mu.Lock(); t.changed.Broadcast(); t.mu.Unlock() })
	defer timer.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.clusters[r.ClusterName]
	if c == nil {
		c = &clusterTurns{workers: map[string]bool{}}
		t.clusters[r.ClusterName] = c
	}
	logged := false
	for {
		free := c.controlPlane == "" && (r.Node.ControlPlane && len(c.workers) == 0 || !r.Node.ControlPlane && len(c.workers) < r.Parallelism)
		if c.controlPlane == r.Node.Hostname || c.workers[r.Node.Hostname] {
			return nil // a resumed restart that still holds its turn
		}
		if free {
			if r.Node.ControlPlane {
				c.controlPlane = r.Node.Hostname
			} else {
				c.workers[r.Node.Hostname] = true
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s waited %s for its turn to restart: %s still restarting (did its VM update fail?)", r.who(), r.Timeout, c.holders())
		}
		if !logged {
			r.log("%s waits for its turn to restart (%s restarting)", r.who(), c.holders())
			logged = true
		}
		t.changed.Wait()
	}
}

// others is r's cluster without the other workers restarting now: with
// Parallelism above one, the health gates of one worker must not wait for
// the others of its batch.
func (t *turnTable) others(r Restart) []Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.clusters[r.ClusterName]
	var out []Node
	for _, n := range r.Cluster {
		if c != nil && c.workers[n.Hostname] && n.Hostname != r.Node.Hostname {
			continue
		}
		out = append(out, n)
	}
	return out
}

func (t *turnTable) give(r Restart) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.clusters[r.ClusterName]; c != nil {
		if c.controlPlane == r.Node.Hostname {
			c.controlPlane = ""
		}
		delete(c.workers, r.Node.Hostname)
	}
	t.changed.Broadcast()
}

func (c *clusterTurns) holders() string {
	var out []string
	if c.controlPlane != "" {
		out = append(out, c.controlPlane)
	}
	for w := range c.workers {
		out = append(out, w)
	}
	return fmt.Sprint(out)
}

// Leave takes the node's turn and removes it from the cluster for a
// rebuild, as a lowered node count would (Membership: a graceful reset if
// it answers, its etcd member by ID if it is gone, its Node object), after
// checking that etcd keeps quorum. The turn is kept until Rejoined.
func (r Restart) Leave(ctx context.Context) (err error) {
	r = r.defaults()
	if err := turns.take(ctx, r); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			turns.give(r)
		}
	}()
	var staying []Node
	for _, n := range r.Cluster {
		if n.Hostname != r.Node.Hostname {
			staying = append(staying, n)
		}
	}
	if r.Node.ControlPlane && len(ControlPlanes(staying)) == 0 {
		return fmt.Errorf("rebuilding %s, the only control plane, would lose the cluster's state (etcd): add control planes first", r.who())
	}
	m := Membership{Declared: staying, Previous: r.Cluster, Talosconfig: r.Talosconfig,
		Timeout: r.Timeout, Poll: r.Poll, Log: r.Log}
	removed, err := m.Reconcile(ctx, false)
	if err != nil {
		return fmt.Errorf("removing %s before its rebuild: %w", r.who(), err)
	}
	r.log("%s left the cluster for its rebuild (removed: %v)", r.who(), removed)
	return nil
}

// Rejoined waits until the rebuilt node answers, its Node is Ready and the
// cluster is healthy with it (a control plane is a healthy etcd member
// again), then gives the turn back.
func (r Restart) Rejoined(ctx context.Context) error {
	return r.After(ctx)
}
