package day2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"
	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/types/v1alpha1"
	"github.com/siderolabs/talos/pkg/machinery/constants"
)

// A Kubernetes upgrade on Talos is a change of the components' images in
// each node's machine configuration. Applied all at once (as every node's
// configuration apply would do it), every API server restarts together and
// kubelets may run ahead of the API servers, which the version skew policy
// forbids. KubernetesUpgrade rolls it the way `talosctl upgrade-k8s` does
// (talos v1.12 pkg/cluster/kubernetes/talos_managed.go Upgrade): the API
// server on each control plane in turn, then the controller manager, then
// the scheduler, then kube-proxy's image, then the kubelet node by node,
// control planes first; each step patches only that image into the node's
// running configuration and applies it with mode NO_REBOOT
// (pkg/cluster/kubernetes/patch.go patchNodeConfig).

// Component is a Kubernetes component whose image Talos's configuration sets.
type Component string

// The components, in upgrade-k8s's order.
const (
	APIServer         Component = "kube-apiserver"
	ControllerManager Component = "kube-controller-manager"
	Scheduler         Component = "kube-scheduler"
	Proxy             Component = "kube-proxy"
	Kubelet           Component = "kubelet"
)

var rollOrder = []Component{APIServer, ControllerManager, Scheduler, Proxy, Kubelet}

// MachineConfig is a node's configuration as the Talos provider's
// ConfigurationApply builds it: the role's generated configuration with the
// node's patches applied by Talos's configpatcher
// (terraform-provider-talos v0.10.1 talos_machine_configuration_apply_resource.go).
func MachineConfig(base string, patches []string) (config.Provider, error) {
	cfg, err := configloader.NewFromBytes([]byte(base))
	if err != nil {
		return nil, fmt.Errorf("machine configuration: %w", err)
	}
	if len(patches) == 0 {
		return cfg, nil
	}
	loaded, err := configpatcher.LoadPatches(patches)
	if err != nil {
		return nil, fmt.Errorf("config patch: %w", err)
	}
	out, err := configpatcher.Apply(configpatcher.WithConfig(cfg), loaded)
	if err != nil {
		return nil, fmt.Errorf("config patch: %w", err)
	}
	return out.Config()
}

// Images are the component images a configuration sets. A worker has only
// the kubelet; a component whose configuration names no image is absent.
func Images(cfg config.Provider) map[Component]string {
	out := map[Component]string{}
	raw := cfg.RawV1Alpha1()
	if raw == nil {
		return out
	}
	for _, comp := range rollOrder {
		if comp != Kubelet && !cfg.Machine().Type().IsControlPlane() {
			continue
		}
		if f := imageField(raw, comp, false); f != nil && *f != "" {
			out[comp] = *f
		}
	}
	return out
}

// WithImages is cfg with the given component images set (upgrade-k8s's
// patchers: stdpatches.WithKubeAPIServerImage, …, the kubelet patcher).
func WithImages(cfg config.Provider, images map[Component]string) (config.Provider, error) {
	return cfg.PatchV1Alpha1(func(c *v1alpha1.Config) error {
		for comp, image := range images {
			f := imageField(c, comp, true)
			if f == nil {
				return fmt.Errorf("the configuration has no section for %s's image", comp)
			}
			*f = image
		}
		return nil
	})
}

// imageField is the field of c that names comp's image. With create, a
// missing section on the way is added; without, it is nil.
func imageField(c *v1alpha1.Config, comp Component, create bool) *string {
	if comp == Kubelet {
		if c.MachineConfig == nil {
			return nil
		}
		if k := section(&c.MachineConfig.MachineKubelet, create); k != nil {
			return &k.KubeletImage
		}
		return nil
	}
	cl := c.ClusterConfig
	if cl == nil {
		return nil
	}
	var image *string
	switch comp {
	case APIServer:
		if s := section(&cl.APIServerConfig, create); s != nil {
			image = &s.ContainerImage
		}
	case ControllerManager:
		if s := section(&cl.ControllerManagerConfig, create); s != nil {
			image = &s.ContainerImage
		}
	case Scheduler:
		if s := section(&cl.SchedulerConfig, create); s != nil {
			image = &s.ContainerImage
		}
	case Proxy:
		if s := section(&cl.ProxyConfig, create); s != nil {
			image = &s.ContainerImage
		}
	}
	return image
}

// section is *p, made first when it is nil and create is set.
func section[T any](p **T, create bool) *T {
	if *p == nil && create {
		*p = new(T)
	}
	return *p
}

// NodeChange is one node's configuration before (as it runs) and after the
// change, both as ConfigurationApply builds them (MachineConfig).
type NodeChange struct {
	Node     Node
	Old, New config.Provider
}

// Step is one image change on one node.
type Step struct {
	Node      Node
	Component Component
	From, To  string
}

func (s Step) String() string {
	return fmt.Sprintf("%s on %s (%s): %s -> %s", s.Component, s.Node.Hostname, s.Node.Address, ImageTag(s.From), ImageTag(s.To))
}

// PlanKubernetes is the order of the image changes from each node's old to
// its new configuration: each control-plane component on every control
// plane in turn (so no controller manager or scheduler runs ahead of an
// API server), kube-proxy's image on the control planes, then the kubelet
// on every node, control planes first. nodes are in declaration order.
func PlanKubernetes(nodes []NodeChange) []Step {
	olds, news := make([]map[Component]string, len(nodes)), make([]map[Component]string, len(nodes))
	for i, n := range nodes {
		olds[i], news[i] = Images(n.Old), Images(n.New)
	}
	var steps []Step
	for _, comp := range rollOrder {
		pass := func(controlPlanes bool) {
			for i, n := range nodes {
				if n.Node.ControlPlane != controlPlanes {
					continue
				}
				from, to := olds[i][comp], news[i][comp]
				if to != "" && from != to {
					steps = append(steps, Step{Node: n.Node, Component: comp, From: from, To: to})
				}
			}
		}
		pass(true)
		if comp == Kubelet {
			pass(false)
		}
	}
	return steps
}

// CheckKubernetesPath refuses the version changes upgrade-k8s refuses
// (siderolabs/go-kubernetes kubernetes/upgrade Path.IsSupported): within a
// minor release, or to the next minor release. A downgrade within the
// minor release is allowed; across one it is not.
func CheckKubernetesPath(from, to string) error {
	f, err := minorOf(from)
	if err != nil {
		return err
	}
	t, err := minorOf(to)
	if err != nil {
		return err
	}
	if t == f || t == f+1 {
		return nil
	}
	next := fmt.Sprintf("v1.%d", f+1)
	if t < f {
		return fmt.Errorf("kubernetesVersion %s -> %s is a downgrade across minor releases, which Kubernetes does not support: go back to %s (or v1.%d.x)", from, to, from, f)
	}
	return fmt.Errorf("kubernetesVersion %s -> %s skips a minor release, and Kubernetes upgrades one minor release at a time: set kubernetesVersion to a %s.x release, run up, then go on to %s", from, to, next, to)
}

func minorOf(v string) (int, error) {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil || major != 1 {
		return 0, fmt.Errorf("kubernetes version %q: want v1.X.Y", v)
	}
	return minor, nil
}

// KubernetesUpgrade rolls a Kubernetes version change over the running
// nodes (see the package's comment on the order).
type KubernetesUpgrade struct {
	// From and To are the Kubernetes versions (vX.Y.Z) before and after.
	From, To string
	// Nodes are the nodes that ran before the change and still do, with
	// their configurations; nodes being added get the new version from
	// their first configuration.
	Nodes []NodeChange
	// Cluster is every declared node: the health gates check them all.
	Cluster     []Node
	Talosconfig string
	Timeout     time.Duration
	Poll        time.Duration
	Log         func(string)
}

// Roll checks the change (upgrade path; the version every node's Talos
// supports, with machinery's compatibility data) and performs each step of
// PlanKubernetes: with the cluster healthy, it applies the node's running
// configuration with the component's new image (and the images of its
// steps already done) in mode NO_REBOOT, then waits until the node runs the
// component on the new image. A step whose component already runs the new
// image (a resumed roll) is skipped. Errors name the step and carry
// Talos's message.
func (k KubernetesUpgrade) Roll(ctx context.Context) error {
	if k.Timeout == 0 {
		k.Timeout = DefaultTimeout
	}
	if k.Poll == 0 {
		k.Poll = DefaultPoll
	}
	steps := PlanKubernetes(k.Nodes)
	if len(steps) == 0 {
		return nil
	}
	if k.From != k.To {
		if err := CheckKubernetesPath(k.From, k.To); err != nil {
			return err
		}
	}
	cfg, err := ParseTalosconfig(k.Talosconfig)
	if err != nil {
		return err
	}
	if err := k.checkTalosSupports(ctx, cfg); err != nil {
		return err
	}
	gate := Upgrade{Cluster: k.Cluster, Timeout: k.Timeout, Poll: k.Poll}

	// done are each node's components already on their new image.
	done := map[string]map[Component]string{}
	byAddr := map[string]NodeChange{}
	for _, n := range k.Nodes {
		done[n.Node.Address] = map[Component]string{}
		byAddr[n.Node.Address] = n
	}
	cps := ControlPlanes(k.Cluster)
	for _, s := range steps {
		who := s.String()
		if s.Component != Proxy {
			if image, err := runningImage(ctx, cfg, s.Node.Address, s.Component); err == nil && image == s.To {
				// A resumed roll: the image is in; it must still be up.
				if err := k.waitUp(ctx, cfg, cps, s, ""); err != nil {
					return err
				}
				k.log("%s: already done", who)
				done[s.Node.Address][s.Component] = s.To
				continue
			}
		}
		if err := gate.waitHealthy(ctx, cfg, "before updating "+who); err != nil {
			return err
		}
		before := ""
		if _, static := configResourceType(s.Component); static {
			if before, err = configVersion(ctx, cfg, s.Node.Address, s.Component); err != nil {
				return fmt.Errorf("updating %s: reading its configuration's version: %w", who, err)
			}
		}
		k.log("updating %s", who)
		images := map[Component]string{s.Component: s.To}
		for c, image := range done[s.Node.Address] {
			images[c] = image
		}
		staged, err := WithImages(byAddr[s.Node.Address].Old, images)
		if err != nil {
			return fmt.Errorf("updating %s: %w", who, err)
		}
		if err := applyNoReboot(ctx, cfg, s.Node.Address, staged); err != nil {
			return fmt.Errorf("updating %s: %w", who, err)
		}
		done[s.Node.Address][s.Component] = s.To
		// kube-proxy is a DaemonSet Talos renders from the configuration:
		// there is no container on this node to wait for.
		if s.Component == Proxy {
			continue
		}
		if err := k.waitRunning(ctx, cfg, s); err != nil {
			return err
		}
		if err := k.waitUp(ctx, cfg, cps, s, before); err != nil {
			return err
		}
	}
	return gate.waitHealthy(ctx, cfg, "after the Kubernetes upgrade to "+k.To)
}

// waitUp waits as upgrade-k8s does after a step: a static pod's
// configuration resource moves past the version it had before the apply
// (before; "" for a step applied by an earlier run: the current version),
// and the pod carries that version and is Ready; the kubelet's Node reports
// the new version and is Ready.
func (k KubernetesUpgrade) waitUp(ctx context.Context, cfg *clientconfig.Config, cps []string, s Step, before string) error {
	_, static := configResourceType(s.Component)
	if !static && s.Component != Kubelet {
		return nil
	}
	deadline := time.Now().Add(k.Timeout)
	for {
		err := k.up(ctx, cfg, cps, s, before)
		if err == nil {
			k.log("%s: ready", s)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not up within %s: %w", s, k.Timeout, err)
		}
		if err := sleep(ctx, min(k.Poll, ReturnPoll)); err != nil {
			return err
		}
	}
}

func (k KubernetesUpgrade) up(ctx context.Context, cfg *clientconfig.Config, cps []string, s Step, before string) error {
	kc, err := KubeClient(ctx, cfg, cps)
	if err != nil {
		return err
	}
	defer kc.Close()
	if s.Component == Kubelet {
		return kubeletUpgraded(ctx, kc, s.Node.Hostname, ImageTag(s.To))
	}
	v, err := configVersion(ctx, cfg, s.Node.Address, s.Component)
	if err != nil {
		return err
	}
	if v == before {
		return fmt.Errorf("Talos has not rendered the new configuration yet (version %s)", v)
	}
	return podReady(ctx, kc, s.Node.Address, s.Component, v)
}

func (k KubernetesUpgrade) log(format string, args ...any) {
	if k.Log != nil {
		k.Log(fmt.Sprintf(format, args...))
	}
}

// checkTalosSupports refuses a version the Talos release of any node does
// not support (upgrade-k8s's VerifyVersionCompatibility), asking each node
// which release it runs: Talos is upgraded first, Kubernetes after.
func (k KubernetesUpgrade) checkTalosSupports(ctx context.Context, cfg *clientconfig.Config) error {
	want, err := compatibility.ParseKubernetesVersion(strings.TrimPrefix(k.To, "v"))
	if err != nil {
		return fmt.Errorf("kubernetesVersion %s: %w", k.To, err)
	}
	for _, n := range k.Cluster {
		v, err := Version(ctx, cfg, n.Address)
		if err != nil {
			return fmt.Errorf("reading the Talos version of %s (%s) before upgrading Kubernetes: %w", n.Hostname, n.Address, err)
		}
		tv, err := compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: v})
		if err != nil {
			return fmt.Errorf("%s (%s) runs Talos %q: %w", n.Hostname, n.Address, v, err)
		}
		if err := want.SupportedWith(tv); err != nil {
			return fmt.Errorf("%s (%s) runs Talos %s, which does not support Kubernetes %s (%v): upgrade Talos first (talosVersion), then Kubernetes", n.Hostname, n.Address, v, k.To, err)
		}
	}
	return nil
}

// waitRunning waits until the node runs the step's component on its new
// image: the static pod's container (`talosctl containers -k`) or the
// kubelet service's (`talosctl containers`).
func (k KubernetesUpgrade) waitRunning(ctx context.Context, cfg *clientconfig.Config, s Step) error {
	deadline := time.Now().Add(k.Timeout)
	for {
		image, err := runningImage(ctx, cfg, s.Node.Address, s.Component)
		if err == nil && image == s.To {
			k.log("%s: running", s)
			return nil
		}
		if err == nil {
			err = fmt.Errorf("it runs %q", image)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come back on the new image within %s: %w", s, k.Timeout, err)
		}
		if err := sleep(ctx, min(k.Poll, ReturnPoll)); err != nil {
			return err
		}
	}
}

// errNotRunning is a component with no running container.
var errNotRunning = errors.New("not running")

// runningImage is the image of the component's running container on the
// node, asked of the node itself.
func runningImage(ctx context.Context, cfg *clientconfig.Config, addr string, comp Component) (string, error) {
	ns, driver := containersOf(comp)
	image := ""
	err := onNode(ctx, cfg, addr, 30*time.Second, func(ctx context.Context, c *client.Client) error {
		resp, err := c.Containers(ctx, ns, driver)
		if err != nil {
			return err
		}
		for _, msg := range resp.Messages {
			if img, ok := runningIn(msg.Containers, comp); ok {
				image = img
				return nil
			}
		}
		return fmt.Errorf("%s: %w", comp, errNotRunning)
	})
	return image, err
}

// containersOf is where Talos lists comp's container: the static pods are
// CRI containers in k8s.io (`talosctl containers -k`), the kubelet a
// containerd container in Talos's system namespace (`talosctl containers`).
func containersOf(comp Component) (string, common.ContainerDriver) {
	if comp == Kubelet {
		return constants.SystemContainerdNamespace, common.ContainerDriver_CONTAINERD
	}
	return constants.K8sContainerdNamespace, common.ContainerDriver_CRI
}

// runningIn is the image of comp's container among cs, if it runs: a static
// pod's container by name in state CONTAINER_RUNNING (CRI), the kubelet by
// ID in state RUNNING (containerd).
func runningIn(cs []*machine.ContainerInfo, comp Component) (string, bool) {
	for _, ct := range cs {
		if comp == Kubelet && ct.Id == string(Kubelet) && ct.Status == "RUNNING" ||
			comp != Kubelet && ct.Name == string(comp) && ct.Status == "CONTAINER_RUNNING" {
			return ct.Image, true
		}
	}
	return "", false
}

// applyNoReboot applies a configuration that must take effect without a
// reboot; Talos refuses it otherwise, with the fields at fault.
func applyNoReboot(ctx context.Context, cfg *clientconfig.Config, addr string, mc config.Provider) error {
	data, err := mc.EncodeBytes(encoder.WithComments(encoder.CommentsDisabled))
	if err != nil {
		return err
	}
	return onNode(ctx, cfg, addr, 2*time.Minute, func(ctx context.Context, c *client.Client) error {
		_, err := c.ApplyConfiguration(ctx, &machine.ApplyConfigurationRequest{
			Data: data,
			Mode: machine.ApplyConfigurationRequest_NO_REBOOT,
		})
		return err
	})
}
