package kube

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// MirrorPodAnnotation marks the API's copy of a static pod (core/v1
// MirrorPodAnnotationKey): the kubelet owns it, an eviction cannot move it.
const MirrorPodAnnotation = "kubernetes.io/config.mirror"

// EvictRetry is the wait between eviction attempts a PodDisruptionBudget
// refuses (429), as Talos's drain and kubectl drain wait.
var EvictRetry = 5 * time.Second

// Evictable reports whether a drain evicts the pod, and why not: Talos's
// own drain (talos v1.12.0 pkg/kubernetes/kubernetes.go Drain) skips mirror
// pods, pods without a controller (nothing would recreate them) and
// DaemonSet pods (the DaemonSet puts them back on the node at once), and
// pods that already finished have nothing to move.
func Evictable(p Pod) (bool, string) {
	switch {
	case p.Annotations[MirrorPodAnnotation] != "":
		return false, "mirror pod"
	case len(p.OwnerKinds) == 0:
		return false, "no controller"
	case slices.Contains(p.OwnerKinds, "DaemonSet"):
		return false, "DaemonSet pod"
	case p.Phase == "Succeeded" || p.Phase == "Failed":
		return false, "finished"
	}
	return true, ""
}

// Drain cordons the node and evicts every pod on it that Evictable
// selects, retrying an eviction a PodDisruptionBudget refuses, and waits
// until each evicted pod is gone from the node. Unlike Talos's drain,
// which warns and goes on after five minutes, a drain that has not
// finished by the deadline of ctx fails, naming the pods that stay: SDA
// then stops before restarting the node, and the next `up` resumes.
func (c *Client) Drain(ctx context.Context, node string, log func(string)) error {
	if err := c.SetUnschedulable(ctx, node, true); err != nil {
		return fmt.Errorf("cordoning %s: %w", node, err)
	}
	pods, err := c.Pods(ctx, PodQuery{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return fmt.Errorf("listing the pods on %s: %w", node, err)
	}
	pending := map[string]Pod{}
	for _, p := range pods {
		if ok, _ := Evictable(p); ok {
			pending[p.Namespace+"/"+p.Name] = p
		}
	}
	refused := map[string]string{}
	for len(pending) > 0 {
		for key, p := range pending {
			err := c.Evict(ctx, p)
			switch {
			case err == nil || IsNotFound(err):
				delete(refused, key)
			case IsTooManyRequests(err):
				refused[key] = err.Error()
				continue
			default:
				return fmt.Errorf("evicting %s from %s: %w", key, node, err)
			}
			if err := c.waitPodGone(ctx, p); err != nil {
				return fmt.Errorf("evicting %s from %s: %w", key, node, err)
			}
			if log != nil {
				log(fmt.Sprintf("%s: evicted %s", node, key))
			}
			delete(pending, key)
		}
		if len(pending) == 0 {
			break
		}
		if err := sleep(ctx, EvictRetry); err != nil {
			var keys []string
			for k := range pending {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var why []string
			for _, k := range keys {
				why = append(why, fmt.Sprintf("%s (%s)", k, refused[k]))
			}
			return fmt.Errorf("draining %s: %d pod(s) could not be evicted before the timeout: %s; a PodDisruptionBudget forbids it: scale the workload up or relax the budget, then run up again",
				node, len(keys), strings.Join(why, "; "))
		}
	}
	return nil
}

// waitPodGone waits until the evicted pod (by UID: a controller may
// recreate one with the same name) no longer exists, as Talos's drain
// waits (waitForPodDeleted).
func (c *Client) waitPodGone(ctx context.Context, p Pod) error {
	path := "/api/v1/namespaces/" + p.Namespace + "/pods/" + p.Name
	for {
		var now podJSON
		err := c.Get(ctx, path, &now)
		if IsNotFound(err) || (err == nil && now.Metadata.UID != p.UID) {
			return nil
		}
		if err := sleep(ctx, time.Second); err != nil {
			return fmt.Errorf("pod %s/%s still runs: %w", p.Namespace, p.Name, err)
		}
	}
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
