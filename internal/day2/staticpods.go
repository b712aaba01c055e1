package day2

import (
	"context"
	"fmt"
	"time"

	"github.com/cosi-project/runtime/pkg/resource"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"github.com/siderolabs/talos/pkg/machinery/resources/k8s"

	"github.com/sda-platform/sda/internal/kube"
)

// The wait `talosctl upgrade-k8s` makes after patching a control-plane
// component's image (talos v1.12.0 pkg/cluster/kubernetes/talos_managed.go
// upgradeStaticPodOnNode, checkPodStatus): the node's COSI resource for the
// component's configuration gets a new version, and the component's pod
// (kube-system, label k8s-app=<component>, status.hostIP the node) must
// carry that version in its talos.dev/config-version annotation and be
// Ready. A container that runs the new image is not enough: a crash-looping
// API server shows CONTAINER_RUNNING between its restarts.

// configResourceType is the COSI resource of a control-plane component's
// configuration (controlplaneConfigResourceType upstream).
func configResourceType(comp Component) (resource.Type, bool) {
	switch comp {
	case APIServer:
		return k8s.APIServerConfigType, true
	case ControllerManager:
		return k8s.ControllerManagerConfigType, true
	case Scheduler:
		return k8s.SchedulerConfigType, true
	}
	return "", false
}

// configVersion is the version of the component's configuration resource
// on the node.
func configVersion(ctx context.Context, cfg *clientconfig.Config, addr string, comp Component) (string, error) {
	typ, ok := configResourceType(comp)
	if !ok {
		return "", fmt.Errorf("%s is no static pod", comp)
	}
	var v string
	err := onNode(ctx, cfg, addr, 30*time.Second, func(ctx context.Context, c *client.Client) error {
		r, err := c.COSI.Get(ctx, resource.NewMetadata(k8s.ControlPlaneNamespaceName, typ, string(comp), resource.VersionUndefined))
		if err != nil {
			return err
		}
		v = r.Metadata().Version().String()
		return nil
	})
	return v, err
}

// podReady checks the component's pod on the node: the config version
// Talos rendered, and PodReady.
func podReady(ctx context.Context, kc *kube.Client, addr string, comp Component, version string) error {
	pods, err := kc.Pods(ctx, kube.PodQuery{Namespace: "kube-system", LabelSelector: "k8s-app=" + string(comp)})
	if err != nil {
		return err
	}
	for _, p := range pods {
		if p.HostIP != addr {
			continue
		}
		if got := p.Annotations[constants.AnnotationStaticPodConfigVersion]; got != version {
			return fmt.Errorf("pod %s has config version %q, want %q", p.Name, got, version)
		}
		if !p.Ready {
			return fmt.Errorf("pod %s is not Ready", p.Name)
		}
		return nil
	}
	return fmt.Errorf("no %s pod on %s", comp, addr)
}

// kubeletUpgraded checks the node's Node object: the kubelet reports the
// new version and the Node is Ready (upgrade-k8s's upgradeKubelet waits for
// the same through the Node object).
func kubeletUpgraded(ctx context.Context, kc *kube.Client, hostname, version string) error {
	n, err := kc.Node(ctx, hostname)
	if err != nil {
		return err
	}
	if n.KubeletVersion != version {
		return fmt.Errorf("the kubelet reports %s", n.KubeletVersion)
	}
	if n.Ready != "True" {
		return fmt.Errorf("the Node is not Ready (Ready: %s)", n.Ready)
	}
	return nil
}
