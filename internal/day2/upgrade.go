// Package day2 changes a running Talos cluster through the Talos API, with
// Talos's own client (machinery), the way `talosctl upgrade` does, gated on
// the cluster's health: a node is upgraded only when every declared node
// answers, etcd is healthy on every control plane and has exactly the
// declared control planes as members, and the next node waits until the
// upgraded one is back on the new version and the cluster is healthy again.
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
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cosi-project/runtime/pkg/safe"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"
	"github.com/siderolabs/talos/pkg/machinery/resources/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// Converge makes the node run u.Version from u.Image's schematic and
// returns the version it runs. A node already on both is left alone (no
// health check: a cluster being created is not healthy yet, and a resumed
// roll skips the nodes it did); a node on the version but from another
// schematic (other extensions) is upgraded like any other. Otherwise:
// Talos must accept the upgrade from the running version (the installer's
// preflight rule, checked here before anything changes); the cluster must
// be healthy; the node is upgraded in place (data preserved) while its
// upgrade sequence is watched, so a failure stops the roll with Talos's
// message at once; it must come back on the new version and schematic;
// and the cluster must be healthy again. Errors name the node.
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
	want := Running{Version: u.Version, Schematic: SchematicOf(u.Image)}

	running, err := u.waitRunning(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("reading the Talos version of %s (waited %s): %w", who, u.Timeout, err)
	}
	if running.Satisfies(want) {
		return running.Version, nil
	}
	if err := Upgradeable(running.Version, u.Version); err != nil {
		return running.Version, fmt.Errorf("%s runs Talos %s and cannot be upgraded to %s: %w (Talos's installer refuses it after draining the node); upgrade it to a release in between first", who, running.Version, u.Version, err)
	}

	u.log("%s runs %s; upgrading to %s with %s", who, running, u.Version, u.Image)
	if err := u.waitHealthy(ctx, cfg, "before upgrading "+who); err != nil {
		return running.Version, err
	}
	actor, err := u.upgradeWhenUp(ctx, cfg, who)
	if err != nil {
		return running.Version, fmt.Errorf("upgrading %s from %s to %s: %w", who, running.Version, u.Version, err)
	}
	running, err = u.waitBack(ctx, cfg, who, actor, want)
	if err != nil {
		return running.Version, err
	}
	u.log("%s runs %s", who, running)
	if err := u.waitHealthy(ctx, cfg, "after upgrading "+who); err != nil {
		return running.Version, err
	}
	return running.Version, nil
}

// waitRunning reads what the node runs, waiting up to the timeout for it
// to answer: a node may be rebooting when a roll resumes (Talos reboots a
// node whose upgrade sequence failed back into its release).
func (u Upgrade) waitRunning(ctx context.Context, cfg *clientconfig.Config) (Running, error) {
	deadline := time.Now().Add(u.Timeout)
	for {
		r, err := NodeRunning(ctx, cfg, u.Node.Address)
		if err == nil || time.Now().After(deadline) {
			return r, err
		}
		if err := sleep(ctx, min(u.Poll, ReturnPoll)); err != nil {
			return r, err
		}
	}
}

// Running is what a node runs: its Talos version and the Image Factory
// schematic of its image ("" for an image the factory did not build).
type Running struct {
	Version   string
	Schematic string
}

func (r Running) String() string {
	if r.Schematic == "" {
		return r.Version
	}
	return fmt.Sprintf("%s (schematic %.12s…)", r.Version, r.Schematic)
}

// Satisfies reports whether a node running r runs want: the same version,
// and the same schematic when want names one.
func (r Running) Satisfies(want Running) bool {
	return r.Version == want.Version && (want.Schematic == "" || r.Schematic == want.Schematic)
}

// Upgradeable is the check Talos's installer makes in its preflight
// (cmd/installer/pkg/install/preflight.go in Talos v1.12.0): the target
// release must accept the running one (machinery's compatibility data:
// Talos 1.12 upgrades hosts from 1.10 on). It fails the upgrade sequence
// only after the node was drained, so SDA checks it first.
func Upgradeable(running, target string) error {
	host, err := compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: running})
	if err != nil {
		return err
	}
	to, err := compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: target})
	if err != nil {
		return err
	}
	return to.UpgradeableFrom(host)
}

// factorySchematic is an Image Factory schematic ID in an installer
// reference: ".../installer/<id>:<version>" (talospatch.InstallerImage).
var factorySchematic = regexp.MustCompile(`/([0-9a-f]{64})(?:[:@]|$)`)

// SchematicOf is the Image Factory schematic of an installer image ("" for
// an installer the factory did not build).
func SchematicOf(image string) string {
	if m := factorySchematic.FindStringSubmatch(image); m != nil {
		return m[1]
	}
	return ""
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
	err := onNode(ctx, cfg, addr, 30*time.Second, func(ctx context.Context, c *client.Client) (err error) {
		tag, err = versionOf(ctx, c, addr)
		return err
	})
	return tag, err
}

// versionOf is the version the client's endpoint reports.
func versionOf(ctx context.Context, c *client.Client, addr string) (string, error) {
	resp, err := c.Version(ctx)
	if err != nil {
		return "", err
	}
	if len(resp.Messages) == 0 || resp.Messages[0].Version == nil {
		return "", fmt.Errorf("%s answered Version with no version", addr)
	}
	return resp.Messages[0].Version.Tag, nil
}

// NodeRunning is what a node runs, asked of the node itself: its version
// (Version) and its schematic, the version of the virtual extension
// "schematic" that Image Factory adds to every image it builds (`talosctl
// get extensions`; Omni reads it the same way).
func NodeRunning(ctx context.Context, cfg *clientconfig.Config, addr string) (Running, error) {
	var r Running
	err := onNode(ctx, cfg, addr, 30*time.Second, func(ctx context.Context, c *client.Client) (err error) {
		if r.Version, err = versionOf(ctx, c, addr); err != nil {
			return err
		}
		exts, err := safe.StateListAll[*runtime.ExtensionStatus](ctx, c.COSI)
		if err != nil {
			return fmt.Errorf("listing the extensions of %s: %w", addr, err)
		}
		for ext := range exts.All() {
			if ext.TypedSpec().Metadata.Name == "schematic" {
				r.Schematic = ext.TypedSpec().Metadata.Version
			}
		}
		return nil
	})
	return r, err
}

// UpgradeCallTimeout bounds the Upgrade call: Talos pulls the installer
// inside it, retrying for up to 20 minutes (image.PullTimeout in Talos
// v1.12.0), before it answers.
const UpgradeCallTimeout = 21 * time.Minute

// upgrade asks the node to install u.Image and reboot into it, keeping its
// data (etcd, the kubelet's state): `talosctl upgrade --preserve`. Without
// force, Talos itself refuses a control plane while any etcd member is not
// healthy. It returns the actor ID that tags the upgrade sequence's events.
func (u Upgrade) upgrade(ctx context.Context, cfg *clientconfig.Config, who string) (string, error) {
	u.log("%s pulls %s (Talos pulls the installer inside the Upgrade call)", who, u.Image)
	done := make(chan struct{})
	defer close(done)
	go func() {
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(30 * time.Second):
				u.log("%s is still pulling %s (%s)", who, u.Image, time.Since(start).Round(time.Second))
			}
		}
	}()
	var actor string
	err := onNode(ctx, cfg, u.Node.Address, UpgradeCallTimeout, func(ctx context.Context, c *client.Client) error {
		resp, err := c.UpgradeWithOptions(ctx, client.WithUpgradeImage(u.Image), client.WithUpgradePreserve(true))
		if err != nil {
			return err
		}
		if len(resp.Messages) > 0 {
			actor = resp.Messages[0].ActorId
		}
		return nil
	})
	return actor, err
}

// upgradeWhenUp sends the Upgrade call. A node whose Talos API refuses the
// connection never received it: it went down between the health gate and
// the call (it reboots back into its release after a failed upgrade
// sequence of an earlier run, after machined's fatal-error delay). Then
// the node is waited for and gated again, and the call sent anew, within
// u.Timeout. Any other failure, and a call that reached Talos, is returned.
func (u Upgrade) upgradeWhenUp(ctx context.Context, cfg *clientconfig.Config, who string) (string, error) {
	deadline := time.Now().Add(u.Timeout)
	for {
		actor, err := u.upgrade(ctx, cfg, who)
		if err == nil || !connectionRefused(err) || time.Now().After(deadline) {
			return actor, err
		}
		u.log("%s refuses connections (%v); waiting for it before upgrading", who, err)
		if _, err := u.waitRunning(ctx, cfg); err != nil {
			return "", err
		}
		if err := u.waitHealthy(ctx, cfg, "before upgrading "+who); err != nil {
			return "", err
		}
	}
}

// connectionRefused reports a gRPC call that failed to connect at all.
func connectionRefused(err error) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.Unavailable && strings.Contains(s.Message(), "connection refused")
}

// waitBack waits until the node runs want after its upgrade. The node
// answers on its old release until it reboots, so it waits for want, not
// for an answer. Meanwhile it watches the upgrade sequence's events: Talos
// answers the Upgrade call before draining and installing, and a sequence
// that fails after that (the installer's preflight, a failing installer)
// is only published as an event before the node reboots back into its old
// release, so the event is the only word of it (`talosctl upgrade --wait`
// stops on it the same way).
func (u Upgrade) waitBack(ctx context.Context, cfg *clientconfig.Config, who, actor string, want Running) (Running, error) {
	ctx, cancel := context.WithTimeout(ctx, u.Timeout)
	defer cancel()
	failed := make(chan string, 1)
	if actor != "" {
		go watchSequence(ctx, cfg, u.Node.Address, actor, failed)
	}
	var last error
	var running Running
	for {
		select {
		case msg := <-failed:
			return running, fmt.Errorf("upgrading %s to %s: Talos's upgrade sequence failed: %s; the node reboots back into its running release (its console or `talosctl dmesg` has the installer's reason)", who, u.Version, msg)
		default:
		}
		r, err := NodeRunning(ctx, cfg, u.Node.Address)
		if err == nil && r.Satisfies(want) {
			return r, nil
		}
		if err == nil {
			running, err = r, fmt.Errorf("still runs %s", r)
		}
		last = err
		if sleep(ctx, min(u.Poll, ReturnPoll)) != nil {
			return running, fmt.Errorf("%s did not come back on %s within %s after its upgrade: %w", who, want, u.Timeout, last)
		}
	}
}

// watchSequence sends on failed the error of the sequence tagged actor when
// the node publishes it. The stream ends when the node reboots; it is
// opened again (all buffered events, filtered by actor) until ctx ends.
func watchSequence(ctx context.Context, cfg *clientconfig.Config, addr, actor string, failed chan<- string) {
	for ctx.Err() == nil {
		if msg := sequenceError(ctx, cfg, addr, actor); msg != "" {
			failed <- msg
			return
		}
		_ = sleep(ctx, ReturnPoll)
	}
}

// sequenceError reads the node's events of actor until the stream ends and
// returns the message of a SequenceEvent with an error ("" if none).
func sequenceError(ctx context.Context, cfg *clientconfig.Config, addr, actor string) string {
	c, err := connect(ctx, cfg, addr)
	if err != nil {
		return ""
	}
	defer c.Close()
	stream, err := c.Events(ctx, client.WithTailEvents(-1), client.WithActorID(actor))
	if err != nil {
		return ""
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return ""
		}
		ev, err := client.UnmarshalEvent(msg)
		if err != nil { // the first, empty event, and kinds SDA does not read
			continue
		}
		if se, ok := ev.Payload.(*machine.SequenceEvent); ok && se.GetError().GetMessage() != "" {
			return se.GetError().GetMessage()
		}
	}
}

// Healthy checks the cluster as `talosctl health` does: through the Talos
// API, every declared node answers with its version and runs its kubelet,
// etcd runs healthy on every control plane, and etcd, as a control plane
// reports it, has exactly the declared control planes as members; through
// the Kubernetes API (a kubeconfig the control planes issue), every
// declared node is Ready and schedulable (NodesReady).
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
	if err := etcdHealthy(callCtx, c, cps); err != nil {
		return err
	}
	members, err := etcdMembers(client.WithNode(callCtx, endpoint), c)
	if err != nil {
		return fmt.Errorf("listing etcd members on %s: %w", endpoint, err)
	}
	if !slices.Equal(members, slices.Sorted(slices.Values(cps))) {
		return fmt.Errorf("etcd members are %v, want the control planes %v", members, cps)
	}
	kc, err := KubeClient(callCtx, cfg, cps)
	if err != nil {
		return err
	}
	defer kc.Close()
	return NodesReady(callCtx, kc, cluster)
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

// etcdHealthy checks that etcd runs and passes its health check on every
// control plane (`talosctl health`'s "etcd to be healthy": the etcd
// service's state and health, pkg/cluster/check/service.go in Talos
// v1.12.0). A member that is listed but still starting is not enough:
// Talos refuses to upgrade a control plane until every member is healthy.
func etcdHealthy(ctx context.Context, c *client.Client, cps []string) error {
	infos, err := c.ServiceInfo(client.WithNodes(ctx, cps...), "etcd")
	if err != nil {
		return fmt.Errorf("reading etcd's service on the control planes: %w", err)
	}
	seen := map[string]bool{}
	var problems []string
	for _, info := range infos {
		node, svc := info.Metadata.GetHostname(), info.Service
		seen[node] = true
		if svc.GetState() != "Running" || !svc.GetHealth().GetHealthy() {
			problems = append(problems, fmt.Sprintf("%s: etcd is %s, not healthy: %s", node, svc.GetState(), svc.GetHealth().GetLastMessage()))
		}
	}
	for _, cp := range cps {
		if !seen[cp] {
			problems = append(problems, cp+": no etcd service")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("etcd is not healthy on every control plane: %s", strings.Join(problems, "; "))
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
