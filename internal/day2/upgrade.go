// Package day2 changes a running Talos cluster through the Talos API, with
// Talos's own client (machinery), the way `talosctl upgrade` does, gated on
// the cluster's health: a node is upgraded only when every declared node
// answers and etcd has exactly the declared control planes as members, and
// the next node waits until the upgraded one is back on the new version and
// the cluster is healthy again.
//
// The component package's TalosNodeVersion resource (provider/) calls
// Upgrade.Converge from Pulumi's create and update; the order between nodes
// (control planes one at a time, then workers) is the engine's, from the
// resources' dependencies (components.TalosCluster). Its KubernetesVersion
// resource calls KubernetesUpgrade.Roll, which orders its steps itself
// (kubernetes.go).
package day2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
)

// Node is one declared node of the cluster.
type Node struct {
	Hostname     string
	Address      string
	ControlPlane bool
}

// Upgrade is one node's desired Talos version and where it comes from.
type Upgrade struct {
	Node Node
	// Cluster is every declared node, Node included: the health gates
	// check them all.
	Cluster []Node
	// Version is the Talos version the node must run (vX.Y.Z); Image the
	// installer image that carries it (its tag is Version).
	Version string
	Image   string
	// Talosconfig is the cluster's client configuration (YAML, secret).
	Talosconfig string
	// Timeout bounds each wait: the cluster becoming healthy, the node
	// coming back on the new version. Poll is the interval between checks.
	Timeout time.Duration
	Poll    time.Duration
	// Log, when set, receives one line per step.
	Log func(string)
}

// Defaults for Upgrade.Timeout and Upgrade.Poll: an upgrade pulls the
// installer, writes the boot partition and reboots; on Proxmox that is one
// to three minutes, and etcd needs a few seconds more to report the member
// healthy.
const (
	DefaultTimeout = 15 * time.Minute
	DefaultPoll    = 5 * time.Second
	// ReturnPoll is how often the node is asked whether it is back on the
	// new version: a Version call is cheap, and every second between its
	// return and the check is a second the whole roll waits.
	ReturnPoll = 250 * time.Millisecond
)

// Converge makes the node run u.Version and returns the version it runs.
// A node already on it is left alone (no health check: a cluster being
// created is not healthy yet, and a resumed roll skips the nodes it did).
// Otherwise: the cluster must be healthy; the node is upgraded in place
// (data preserved); it must come back reporting the new version; and the
// cluster must be healthy again. Errors name the node and carry Talos's
// message.
func (u Upgrade) Converge(ctx context.Context) (string, error) {
	if u.Timeout == 0 {
		u.Timeout = DefaultTimeout
	}
	if u.Poll == 0 {
		u.Poll = DefaultPoll
	}
	if err := u.check(); err != nil {
		return "", err
	}
	cfg, err := ParseTalosconfig(u.Talosconfig)
	if err != nil {
		return "", err
	}
	who := fmt.Sprintf("%s (%s)", u.Node.Hostname, u.Node.Address)

	running, err := Version(ctx, cfg, u.Node.Address)
	if err != nil {
		return "", fmt.Errorf("reading the Talos version of %s: %w", who, err)
	}
	if running == u.Version {
		return running, nil
	}

	u.log("%s runs %s; upgrading to %s with %s", who, running, u.Version, u.Image)
	if err := u.waitHealthy(ctx, cfg, "before upgrading "+who); err != nil {
		return running, err
	}
	if err := upgrade(ctx, cfg, u.Node.Address, u.Image); err != nil {
		return running, fmt.Errorf("upgrading %s from %s to %s: %w", who, running, u.Version, err)
	}
	// The node answers on its old version until it reboots: wait for the
	// new one, not merely for an answer.
	deadline := time.Now().Add(u.Timeout)
	var last error
	for {
		v, err := Version(ctx, cfg, u.Node.Address)
		if err == nil && v == u.Version {
			running = v
			break
		}
		if err == nil {
			err = fmt.Errorf("still runs %s", v)
		}
		last = err
		if time.Now().After(deadline) {
			return running, fmt.Errorf("%s did not come back on %s within %s after its upgrade: %w", who, u.Version, u.Timeout, last)
		}
		if err := sleep(ctx, min(u.Poll, ReturnPoll)); err != nil {
			return running, err
		}
	}
	u.log("%s runs %s", who, running)
	if err := u.waitHealthy(ctx, cfg, "after upgrading "+who); err != nil {
		return running, err
	}
	return running, nil
}

func (u Upgrade) check() error {
	switch {
	case u.Node.Address == "":
		return errors.New("day2: the node has no address")
	case !strings.HasPrefix(u.Version, "v"):
		return fmt.Errorf("day2: version %q: want vX.Y.Z", u.Version)
	case ImageTag(u.Image) != u.Version:
		return fmt.Errorf("day2: installer image %q does not carry version %s (its tag must be the version)", u.Image, u.Version)
	case !slices.ContainsFunc(u.Cluster, func(n Node) bool { return n.Address == u.Node.Address }):
		return fmt.Errorf("day2: %s is not one of the cluster's declared nodes", u.Node.Address)
	}
	return nil
}

func (u Upgrade) log(format string, args ...any) {
	if u.Log != nil {
		u.Log(fmt.Sprintf(format, args...))
	}
}

// waitHealthy polls Healthy until it passes or the timeout ends.
func (u Upgrade) waitHealthy(ctx context.Context, cfg *clientconfig.Config, when string) error {
	deadline := time.Now().Add(u.Timeout)
	for {
		err := Healthy(ctx, cfg, u.Cluster)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster is not healthy %s (waited %s): %w", when, u.Timeout, err)
		}
		if err := sleep(ctx, u.Poll); err != nil {
			return err
		}
	}
}

// ParseTalosconfig reads a talosconfig (the YAML `talosctl` reads).
func ParseTalosconfig(talosconfig string) (*clientconfig.Config, error) {
	cfg, err := clientconfig.FromString(talosconfig)
	if err != nil {
		return nil, fmt.Errorf("talosconfig: %w", err)
	}
	return cfg, nil
}

// ImageTag is an image reference's tag ("" without one).
func ImageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndex(image, "/")
	if colon := strings.LastIndex(image, ":"); colon > slash {
		return image[colon+1:]
	}
	return ""
}

// connect is a client whose only endpoint is addr: every call is answered by
// that node itself, as the Talos provider's calls are (the VIP is not the
// Talos API's endpoint).
func connect(ctx context.Context, cfg *clientconfig.Config, addr string) (*client.Client, error) {
	return client.New(ctx, client.WithConfig(cfg), client.WithEndpoints(addr))
}

// onNode runs call, within timeout, with a client whose only endpoint is
// addr.
func onNode(ctx context.Context, cfg *clientconfig.Config, addr string, timeout time.Duration, call func(context.Context, *client.Client) error) error {
	c, err := connect(ctx, cfg, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return call(callCtx, c)
}

// Version is the Talos version a node runs, asked of the node itself.
func Version(ctx context.Context, cfg *clientconfig.Config, addr string) (string, error) {
	var tag string
	err := onNode(ctx, cfg, addr, 30*time.Second, func(ctx context.Context, c *client.Client) error {
		resp, err := c.Version(ctx)
		if err != nil {
			return err
		}
		if len(resp.Messages) == 0 || resp.Messages[0].Version == nil {
			return fmt.Errorf("%s answered Version with no version", addr)
		}
		tag = resp.Messages[0].Version.Tag
		return nil
	})
	return tag, err
}

// upgrade asks the node to install image and reboot into it, keeping its
// data (etcd, the kubelet's state): `talosctl upgrade --preserve`. Without
// force, Talos itself refuses a control plane whose etcd would lose quorum.
func upgrade(ctx context.Context, cfg *clientconfig.Config, addr, image string) error {
	return onNode(ctx, cfg, addr, 2*time.Minute, func(ctx context.Context, c *client.Client) error {
		_, err := c.UpgradeWithOptions(ctx, client.WithUpgradeImage(image), client.WithUpgradePreserve(true))
		return err
	})
}

// Healthy checks the cluster through the Talos API: every declared node
// answers with its version and runs its kubelet, and etcd, as a control
// plane reports it, has exactly the declared control planes as members.
// One connection, to the first control plane that is up, asks every node
// (apid proxies the call), as `talosctl -n <all nodes> version` does.
func Healthy(ctx context.Context, cfg *clientconfig.Config, cluster []Node) error {
	var cps, all []string
	for _, n := range cluster {
		all = append(all, n.Address)
		if n.ControlPlane {
			cps = append(cps, n.Address)
		}
	}
	if len(all) == 0 {
		return nil
	}
	endpoint := all[0]
	if len(cps) > 0 {
		endpoint = cps[0]
	}
	c, err := connect(ctx, cfg, endpoint)
	if err != nil {
		return err
	}
	defer c.Close()
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.Version(client.WithNodes(callCtx, all...))
	if err != nil {
		return fmt.Errorf("not every node answers: %w", err)
	}
	if len(resp.Messages) != len(all) {
		return fmt.Errorf("%d of %d nodes answered", len(resp.Messages), len(all))
	}
	if err := kubeletsRun(callCtx, c, all); err != nil {
		return err
	}
	if len(cps) == 0 {
		return nil
	}
	members, err := etcdMembers(client.WithNode(callCtx, endpoint), c)
	if err != nil {
		return fmt.Errorf("listing etcd members on %s: %w", endpoint, err)
	}
	sort.Strings(cps)
	if !slices.Equal(members, cps) {
		return fmt.Errorf("etcd members are %v, want the control planes %v", members, cps)
	}
	return nil
}

// kubeletsRun checks that the kubelet service runs on every node (`talosctl
// -n <all nodes> containers`, Talos's system namespace): a node that
// answers but has no kubelet is not back in Kubernetes.
func kubeletsRun(ctx context.Context, c *client.Client, nodes []string) error {
	ns, driver := containersOf(Kubelet)
	resp, err := c.Containers(client.WithNodes(ctx, nodes...), ns, driver)
	if err != nil {
		return fmt.Errorf("listing the kubelet on every node: %w", err)
	}
	running := map[string]bool{}
	for _, msg := range resp.Messages {
		if _, ok := runningIn(msg.Containers, Kubelet); ok {
			running[msg.GetMetadata().GetHostname()] = true
		}
	}
	var missing []string
	for _, n := range nodes {
		if !running[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the kubelet does not run on %s", strings.Join(missing, ", "))
	}
	return nil
}

// etcdMembers lists the member addresses (from their peer URLs), sorted.
func etcdMembers(ctx context.Context, c *client.Client) ([]string, error) {
	resp, err := c.EtcdMemberList(ctx, &machine.EtcdMemberListRequest{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, msg := range resp.Messages {
		for _, m := range msg.Members {
			if a := peerAddress(m.PeerUrls); a != "" {
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// peerAddress is a member's address, from its first parseable peer URL.
func peerAddress(peerURLs []string) string {
	for _, peer := range peerURLs {
		if u, err := url.Parse(peer); err == nil {
			if host, _, err := net.SplitHostPort(u.Host); err == nil {
				return host
			}
		}
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
