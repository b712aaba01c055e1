package day2

import (
	"context"
	"fmt"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"

	"github.com/sda-platform/sda/internal/kube"
)

// KubeClient is a Kubernetes API client with an admin kubeconfig a control
// plane issues through the Talos API (MachineService.Kubeconfig, what
// `talosctl kubeconfig` and `talosctl upgrade-k8s` use), asked of the
// first of controlPlanes that answers. So the day-2 steps that gate on
// Kubernetes need only the talosconfig, and never a kubeconfig that a
// resource created after them would have to hand in.
func KubeClient(ctx context.Context, cfg *clientconfig.Config, controlPlanes []string) (*kube.Client, error) {
	var last error
	for _, cp := range controlPlanes {
		var raw []byte
		err := onNode(ctx, cfg, cp, 30*time.Second, func(ctx context.Context, c *client.Client) (err error) {
			raw, err = c.Kubeconfig(client.WithNode(ctx, cp))
			return err
		})
		if err == nil {
			return kube.New(string(raw))
		}
		last = err
	}
	return nil, fmt.Errorf("no control plane issued a kubeconfig: %w", last)
}
