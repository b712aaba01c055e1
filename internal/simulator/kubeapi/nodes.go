package kubeapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// ---- nodes ----

// NodeCondition is the Node's Ready condition: True when its kubelet
// posts ready (tx.nodeReady); False when the kubelet runs but pods have no
// network (no CNI); Unknown when the kubelet stopped posting: the machine
// is down, reset or gone (the node lifecycle controller sets Unknown after
// its grace period, here at once).
func NodeCondition(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) (status, reason, message string) {
	m := tx.State.Machines[n.Address]
	if m == nil || m.ClusterID != c.ID {
		return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	if _, err := network.TalosUp(tx, n.Address, now); err != nil {
		return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	if !talos.NodeReady(tx, c, n, now) {
		return "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
	}
	return "True", "KubeletReady", "kubelet is posting ready status"
}

// NodeUp reports whether the node's kubelet runs (its machine is up and
// configured into the cluster), whatever the CNI.
func NodeUp(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) bool {
	s, _, _ := NodeCondition(tx, c, n, now)
	return s != "Unknown"
}

// Schedulable reports whether the scheduler places pods on n: Ready and
// not cordoned.
func Schedulable(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) bool {
	return !n.Cordoned && talos.NodeReady(tx, c, n, now)
}

// NodeObject is the Node as the API serves it.
func NodeObject(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) map[string]any {
	m := tx.State.Machines[n.Address]
	var doc map[string]any
	if m != nil && m.ClusterID == c.ID {
		doc = talos.V1alpha1Doc(talos.AppliedConfig(tx, n.Address))
	}
	labels := map[string]any{"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
	var taints []any
	if n.Role == "controlplane" {
		labels["node-role.kubernetes.io/control-plane"] = ""
		if allow, _ := engine.Get(doc, "cluster.allowSchedulingOnControlPlanes").(bool); !allow {
			taints = append(taints, map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
		}
	}
	if extra, ok := engine.Get(doc, "machine.nodeLabels").(map[string]any); ok {
		for k, v := range extra {
			labels[k] = fmt.Sprint(v)
		}
	}
	status, reason, message := NodeCondition(tx, c, n, now)
	switch status {
	case "Unknown":
		taints = append(taints, map[string]any{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
			map[string]any{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"})
	case "False":
		taints = append(taints, map[string]any{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
	}
	spec := map[string]any{}
	if n.Cordoned {
		spec["unschedulable"] = true
		taints = append(taints, map[string]any{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
	}
	if len(taints) > 0 {
		spec["taints"] = taints
	}
	kubelet := ""
	osImage := "Talos"
	if m != nil && m.ClusterID == c.ID {
		kubelet = talos.ImageTag(RunningImage(tx, m, doc, "kubelet", now))
		osImage = "Talos (" + m.Version + ")"
	}
	ts := now.UTC().Format(time.RFC3339)
	return map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": n.Name, "uid": kubeUID(c.ID, "node", n.Name),
			"resourceVersion": strconv.FormatUint(max(n.ResourceVersion, 1), 10), "labels": labels},
		"spec": spec,
		"status": map[string]any{
			"addresses": []any{map[string]any{"type": "InternalIP", "address": n.Address}, map[string]any{"type": "Hostname", "address": n.Name}},
			"conditions": []any{map[string]any{"type": "Ready", "status": status, "reason": reason, "message": message,
				"lastHeartbeatTime": ts, "lastTransitionTime": ts}},
			"nodeInfo": map[string]any{"kubeletVersion": kubelet, "kubeProxyVersion": "", "osImage": osImage,
				"operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "containerd://2.1.5"},
		},
	}
}

func (q *kubeRequest) listNodes() (int, any, error) {
	sel, err := parseSelector(q.r.URL.Query().Get("labelSelector"))
	if err != nil {
		return 0, nil, err
	}
	fields, err := parseFieldSelector(q.r.URL.Query().Get("fieldSelector"), "metadata.name", "spec.unschedulable")
	if err != nil {
		return 0, nil, err
	}
	var items []map[string]any
	for _, name := range slices.Sorted(maps.Keys(q.c.Nodes)) {
		n := NodeObject(q.tx, q.c, q.c.Nodes[name], q.now)
		if sel.matches(n) && fields.matches(n) {
			items = append(items, n)
		}
	}
	return http.StatusOK, listOf("Node", ListRV(q.c), items), nil
}

var nodesGVR = GVR{"", "v1", "nodes"}

func (q *kubeRequest) node(name string) (*engine.K8sNode, error) {
	n := q.c.Nodes[name]
	if n == nil {
		return nil, notFound(nodesGVR, name)
	}
	return n, nil
}

func (q *kubeRequest) getNode(name string) (int, any, error) {
	n, err := q.node(name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NodeObject(q.tx, q.c, n, q.now), nil
}

// patchNode is a merge or strategic merge patch of a Node: what
// `kubectl cordon`/`uncordon` send ({"spec":{"unschedulable":true}}). A
// metadata.resourceVersion in the patch is a precondition (409 Conflict
// when the Node has changed since). Only spec.unschedulable is simulated.
func (q *kubeRequest) patchNode(name string) (int, any, error) {
	ct := q.r.Header.Get("Content-Type")
	if i := strings.Index(ct, ";"); i > 0 {
		ct = ct[:i]
	}
	if ct != "application/merge-patch+json" && ct != "application/strategic-merge-patch+json" {
		e := statusErr(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (simulation: json-patch is not simulated)")
		return 0, nil, e
	}
	if q.r.URL.Query().Has("force") {
		return 0, nil, invalidOptions("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch")
	}
	n, err := q.node(name)
	if err != nil {
		return 0, nil, err
	}
	var patch map[string]any
	if err := json.Unmarshal(q.body, &patch); err != nil {
		return 0, nil, badRequest("error decoding patch: %v", err)
	}
	if rv, ok := engine.Get(patch, "metadata.resourceVersion").(string); ok && rv != strconv.FormatUint(max(n.ResourceVersion, 1), 10) {
		e := statusErr(http.StatusConflict, "Conflict", "Operation cannot be fulfilled on nodes %q: the object has been modified; please apply your changes to the latest version and try again", name)
		e.details = map[string]any{"name": name, "kind": "nodes"}
		return 0, nil, e
	}
	for key, v := range patch {
		switch key {
		case "metadata":
			md, _ := v.(map[string]any)
			for mk := range md {
				if mk != "resourceVersion" && mk != "name" {
					return 0, nil, notSimulatedPatch(name)
				}
			}
		case "spec":
			spec, _ := v.(map[string]any)
			for sk, sv := range spec {
				if sk != "unschedulable" {
					return 0, nil, notSimulatedPatch(name)
				}
				u, _ := sv.(bool) // null removes the field: schedulable
				if u != n.Cordoned {
					n.Cordoned = u
					n.ResourceVersion = NextRV(q.c)
				}
			}
		default:
			return 0, nil, notSimulatedPatch(name)
		}
	}
	return http.StatusOK, NodeObject(q.tx, q.c, n, q.now), nil
}

func notSimulatedPatch(name string) error {
	return statusErr(http.StatusUnprocessableEntity, "Invalid",
		"Node %q is invalid: simulation: only spec.unschedulable (and metadata.resourceVersion as a precondition) can be patched", name)
}

// invalidOptions is ValidatePatchOptions' refusal (422 Invalid, kind
// PatchOptions.meta.k8s.io) of one field.
func invalidOptions(field, causeReason, detail string) error {
	e := statusErr(http.StatusUnprocessableEntity, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: %s: %s", field, detail)
	e.details = map[string]any{"group": "meta.k8s.io", "kind": "PatchOptions",
		"causes": []any{map[string]any{"reason": causeReason, "message": detail, "field": field}}}
	return e
}

// deleteNode removes the Node object (what `kubectl delete node` does):
// its pods go with it (the pod garbage collector; here at once) and a
// running kubelet does not register it again. The reply is the Node.
func (q *kubeRequest) deleteNode(name string) (int, any, error) {
	n, err := q.node(name)
	if err != nil {
		return 0, nil, err
	}
	obj := NodeObject(q.tx, q.c, n, q.now)
	delete(q.c.Nodes, name)
	NextRV(q.c)
	return http.StatusOK, obj, nil
}
