package day2

import (
	"context"
	"fmt"
	"strings"

	"github.com/sda-platform/sda/internal/kube"
)

// NodesReady is `talosctl health`'s Kubernetes node checks (talos v1.12.0
// pkg/cluster/check/default.go: "all k8s nodes to report ready", "all k8s
// nodes to report schedulable"), for the declared nodes: each has a Node
// object (named after its hostname) whose Ready condition is True and
// which is not cordoned. A Node that is Ready but NotReady a moment later
// is caught at the next gate; a cordoned Node is named, since SDA did not
// cordon it (it uncordons what it drains).
func NodesReady(ctx context.Context, kc *kube.Client, cluster []Node) error {
	nodes, err := kc.Nodes(ctx, "")
	if err != nil {
		return fmt.Errorf("listing the Kubernetes nodes: %w", err)
	}
	byName := map[string]kube.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	var problems []string
	for _, d := range cluster {
		n, ok := byName[d.Hostname]
		switch {
		case !ok:
			problems = append(problems, d.Hostname+" has no Node object (its kubelet has not registered)")
		case n.Ready != "True":
			ready := n.Ready
			if ready == "" {
				ready = "not reported"
			}
			problems = append(problems, fmt.Sprintf("%s is not Ready (Ready: %s)", d.Hostname, ready))
		case n.Unschedulable:
			problems = append(problems, d.Hostname+" is cordoned (spec.unschedulable): uncordon it if nothing is being done to it")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the Kubernetes nodes are not ready and schedulable: %s", strings.Join(problems, "; "))
	}
	return nil
}
