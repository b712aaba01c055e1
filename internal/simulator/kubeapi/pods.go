package kubeapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/talos/pkg/machinery/constants"
)

// The pods of a simulated cluster, as a fresh Talos cluster has them:
// the control plane's mirror pods (kubelet-created for Talos's static
// pods), the DaemonSets' pods on every node (kube-proxy, the CNI), and
// CoreDNS's two replicas, the only pods whose placement is stored
// (TalosCluster.ReplicaPods). And what `talosctl upgrade-k8s` reads of a
// static pod: the version of the component's configuration resource
// (COSI, served by the Talos API) and the mirror pod's
// talos.dev/config-version annotation.

// LastChange is the last change of component's image on the node at addr
// that started at or after since (nil when none).
func LastChange(tx *engine.Tx, addr, component string, since time.Time) *engine.ComponentChange {
	for i := len(tx.State.ComponentChanges) - 1; i >= 0; i-- {
		ch := &tx.State.ComponentChanges[i]
		if ch.Address == addr && ch.Component == component {
			if ch.Start.Before(since) {
				return nil
			}
			return ch
		}
	}
	return nil
}

// CrashLoop is the fault that makes the change ch crash-loop (nil when
// none).
func CrashLoop(f engine.Faults, n *engine.K8sNode, ch *engine.ComponentChange) *engine.CrashLoop {
	if ch == nil {
		return nil
	}
	for i, cl := range f.CrashLoops {
		if (cl.Node == n.Address || cl.Node == n.Name) && cl.Component == ch.Component &&
			(cl.Image == ch.To || strings.HasPrefix(cl.Image, ":") && strings.HasSuffix(ch.To, cl.Image)) {
			return &f.CrashLoops[i]
		}
	}
	return nil
}

// simPod is a pod of the model: its object, and how it is owned.
type simPod struct {
	obj   map[string]any
	owner string // Node (mirror pod), DaemonSet, ReplicaSet
	key   string // PodRestarts key, or the ReplicaPod's name
}

func (p *simPod) name() string { return engine.Str(p.obj, "metadata.name") }
func (p *simPod) ns() string   { return engine.Str(p.obj, "metadata.namespace") }

// podSuffix is the 5-character suffix Kubernetes gives generated pod
// names (from its alphabet without vowels), here derived from parts.
func podSuffix(parts ...string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	var b strings.Builder
	for _, x := range sum[:5] {
		b.WriteByte(alphabet[int(x)%len(alphabet)])
	}
	return b.String()
}

func randomSuffix(n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	for i := range buf {
		buf[i] = alphabet[int(buf[i])%len(alphabet)]
	}
	return string(buf)
}

// BootstrapDoc is the running configuration of the cluster's bootstrap
// node (what Talos renders its bootstrap manifests from), else of any of
// its control planes.
func BootstrapDoc(tx *engine.Tx, c *engine.TalosCluster) map[string]any {
	if m := tx.State.Machines[c.BootstrapNode]; m != nil && m.ClusterID == c.ID {
		return talos.V1alpha1Doc(talos.AppliedConfig(tx, c.BootstrapNode))
	}
	for _, addr := range slices.Sorted(maps.Keys(tx.State.Machines)) {
		if m := tx.State.Machines[addr]; m.ClusterID == c.ID && m.Type == "controlplane" {
			return talos.V1alpha1Doc(talos.AppliedConfig(tx, addr))
		}
	}
	return nil
}

// WorkloadImage is the first container image of a stored workload (the
// object server-side apply wrote: Talos's bootstrap manifests), else def.
func WorkloadImage(c *engine.TalosCluster, resource, ns, name, def string) string {
	if obj := Object(c, GVR{"apps", "v1", resource}, ns, name); obj != nil {
		if img := engine.Str(obj, "spec.template.spec.containers[0].image"); img != "" {
			return img
		}
	}
	return def
}

type daemonSet struct{ ns, name, app, image string }

// DaemonSets are the cluster's DaemonSets with pods on every node:
// kube-proxy unless disabled, Talos's flannel when the CNI is flannel,
// Cilium when a Helm release installed it.
func DaemonSets(tx *engine.Tx, c *engine.TalosCluster) []daemonSet {
	doc := BootstrapDoc(tx, c)
	var out []daemonSet
	if !c.ProxyDisabled {
		def := engine.Str(doc, "cluster.proxy.image")
		if def == "" {
			def = constants.KubeProxyImage
		}
		out = append(out, daemonSet{"kube-system", "kube-proxy", "kube-proxy", WorkloadImage(c, "daemonsets", "kube-system", "kube-proxy", def)})
	}
	if c.CNI == "flannel" {
		out = append(out, daemonSet{"kube-system", "kube-flannel", "flannel",
			WorkloadImage(c, "daemonsets", "kube-system", "kube-flannel", "ghcr.io/siderolabs/flannel:"+constants.FlannelVersion)})
	}
	for _, key := range slices.Sorted(maps.Keys(c.Releases)) {
		if c.Releases[key] == "cilium" {
			ns, _, _ := strings.Cut(key, "/")
			out = append(out, daemonSet{ns, "cilium", "cilium", "quay.io/cilium/cilium"})
		}
	}
	return out
}

// CorednsReplicas is CoreDNS's replica count: 0 when Talos does not
// deploy it (cluster.coreDNS.disabled), the stored Deployment's
// spec.replicas, else Talos's 2 (k8stemplates/coredns.go).
func CorednsReplicas(tx *engine.Tx, c *engine.TalosCluster) int {
	if disabled, _ := engine.Get(BootstrapDoc(tx, c), "cluster.coreDNS.disabled").(bool); disabled {
		return 0
	}
	if obj := Object(c, GVR{"apps", "v1", "deployments"}, "kube-system", "coredns"); obj != nil {
		if _, ok := engine.Get(obj, "spec.replicas").(float64); ok {
			return engine.Num(obj, "spec.replicas")
		}
	}
	return 2
}

// SchedulePods brings the stored ReplicaSet pods in line with the cluster
// (the ReplicaSet controller, the scheduler and the pod garbage
// collector, at once): pods of a deleted node are deleted, missing
// replicas are created, and a Pending pod goes to the schedulable Ready
// node (not cordoned) with the fewest of its app's pods (CoreDNS's
// preferred anti-affinity on kubernetes.io/hostname), by name. With dry it
// only reports whether anything would change.
func SchedulePods(tx *engine.Tx, c *engine.TalosCluster, now time.Time, _ engine.Faults, dry bool) bool {
	changed := false
	keep := c.ReplicaPods[:0:0]
	for _, p := range c.ReplicaPods {
		if p.Node != "" && c.Nodes[p.Node] == nil {
			changed = true
			continue
		}
		keep = append(keep, p)
	}
	want := CorednsReplicas(tx, c)
	if len(keep) > want {
		keep, changed = keep[:want], true
	}
	rs := "coredns-" + podSuffix(c.ID, "coredns")[:5] + podSuffix(c.ID, "coredns-rs")
	for len(keep) < want {
		keep = append(keep, &engine.ReplicaPod{Namespace: "kube-system", Name: rs + "-" + randomSuffix(5), ReplicaSet: rs, App: "kube-dns", Created: now})
		changed = true
	}
	for _, p := range keep {
		if p.Node != "" {
			continue
		}
		best, count := "", 0
		for _, name := range slices.Sorted(maps.Keys(c.Nodes)) {
			if !Schedulable(tx, c, c.Nodes[name], now) {
				continue
			}
			n := 0
			for _, o := range keep {
				if o.Node == name && o.App == p.App {
					n++
				}
			}
			if best == "" || n < count {
				best, count = name, n
			}
		}
		if best != "" {
			p.Node, changed = best, true
		}
	}
	if dry || !changed {
		return changed
	}
	c.ReplicaPods = keep
	NextRV(c)
	return true
}

// KubePods are the cluster's pods, by namespace and name.
func KubePods(tx *engine.Tx, c *engine.TalosCluster, now time.Time, f engine.Faults) []*simPod {
	var out []*simPod
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	rv := ListRV(c)
	for _, nodeName := range slices.Sorted(maps.Keys(c.Nodes)) {
		n := c.Nodes[nodeName]
		up := NodeUp(tx, c, n, now)
		m := tx.State.Machines[n.Address]
		if m != nil && m.ClusterID != c.ID {
			m = nil
		}
		var doc map[string]any
		var boot time.Time
		if m != nil {
			doc = talos.V1alpha1Doc(talos.AppliedConfig(tx, m.Address))
			boot = talos.BootedAt(tx, m.VMID, now)
		}
		if n.Role == "controlplane" {
			for _, comp := range talos.StaticPods {
				name := comp + "-" + n.Name
				key := "kube-system/mirror/" + name
				image, version := "", uint64(0)
				if m != nil {
					image, version = talos.ComponentImage(m, doc, comp), talos.StaticPodConfigVersion(tx, m, comp, now)
				}
				ready, started := up, boot
				cs := map[string]any{"name": comp, "image": image, "restartCount": 0}
				ch := LastChange(tx, n.Address, comp, boot)
				if ch != nil && ch.Ready.After(started) {
					started = ch.Ready
				}
				switch cl := CrashLoop(f, n, ch); {
				case ch != nil && now.Before(ch.Ready):
					// The kubelet replaced the pod for its new manifest
					// (new config version); the container is starting.
					ready = false
					cs["state"] = map[string]any{"waiting": map[string]any{"reason": "ContainerCreating"}}
				case cl != nil:
					count, last := cl.Restarts(ch.Ready, now)
					ready = false
					cs["restartCount"] = count
					cs["state"] = map[string]any{"running": map[string]any{"startedAt": ts(last)}}
					if count > 0 {
						cs["lastState"] = map[string]any{"terminated": map[string]any{"exitCode": 1, "reason": "Error", "finishedAt": ts(last)}}
					}
				default:
					cs["state"] = map[string]any{"running": map[string]any{"startedAt": ts(started)}}
				}
				cs["ready"], cs["started"] = ready, ready
				annotations := map[string]any{"kubernetes.io/config.source": "file", "kubernetes.io/config.seen": ts(started)}
				hash := podSuffix(c.ID, name, image, strconv.FormatUint(version, 10))
				annotations["kubernetes.io/config.hash"], annotations["kubernetes.io/config.mirror"] = hash, hash
				if version > 0 {
					annotations[constants.AnnotationStaticPodConfigVersion] = strconv.FormatUint(version, 10)
				}
				obj := podObject(c, "kube-system", name, kubeUID(c.ID, key, hash, strconv.Itoa(c.PodRestarts[key])), rv,
					map[string]any{"k8s-app": comp, "component": comp, "tier": "control-plane"}, annotations,
					map[string]any{"apiVersion": "v1", "kind": "Node", "name": n.Name, "uid": kubeUID(c.ID, "node", n.Name), "controller": true},
					n, image, ready, cs, now)
				obj["spec"].(map[string]any)["priorityClassName"] = "system-cluster-critical"
				obj["spec"].(map[string]any)["hostNetwork"] = true
				out = append(out, &simPod{obj: obj, owner: "Node", key: key})
			}
		}
		for _, ds := range DaemonSets(tx, c) {
			key := ds.ns + "/" + ds.name + "/" + n.Name
			name := ds.name + "-" + podSuffix(c.ID, key, strconv.Itoa(c.PodRestarts[key]))
			cs := map[string]any{"name": ds.app, "image": ds.image, "restartCount": 0, "ready": up, "started": up,
				"state": map[string]any{"running": map[string]any{"startedAt": ts(boot)}}}
			obj := podObject(c, ds.ns, name, kubeUID(c.ID, "pod", ds.ns, name), rv,
				map[string]any{"k8s-app": ds.app, "controller-revision-hash": podSuffix(ds.image), "pod-template-generation": "1"}, nil,
				map[string]any{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds.name, "uid": kubeUID(c.ID, "ds", ds.ns, ds.name),
					"controller": true, "blockOwnerDeletion": true},
				n, ds.image, up, cs, now)
			out = append(out, &simPod{obj: obj, owner: "DaemonSet", key: key})
		}
	}
	image := WorkloadImage(c, "deployments", "kube-system", "coredns", constants.CoreDNSImage+":"+constants.DefaultCoreDNSVersion)
	for _, p := range c.ReplicaPods {
		n := c.Nodes[p.Node]
		ready := n != nil && talos.NodeReady(tx, c, n, now)
		cs := map[string]any{"name": "coredns", "image": image, "restartCount": 0, "ready": ready, "started": ready,
			"state": map[string]any{"running": map[string]any{"startedAt": ts(p.Created)}}}
		if n == nil {
			cs = nil
		}
		obj := podObject(c, p.Namespace, p.Name, kubeUID(c.ID, "pod", p.Namespace, p.Name), rv,
			map[string]any{"k8s-app": p.App, "pod-template-hash": strings.TrimPrefix(p.ReplicaSet, "coredns-")}, nil,
			map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": p.ReplicaSet, "uid": kubeUID(c.ID, "rs", p.Namespace, p.ReplicaSet),
				"controller": true, "blockOwnerDeletion": true},
			n, image, ready, cs, now)
		out = append(out, &simPod{obj: obj, owner: "ReplicaSet", key: p.Name})
	}
	slices.SortFunc(out, func(a, b *simPod) int { return strings.Compare(a.ns()+"/"+a.name(), b.ns()+"/"+b.name()) })
	return out
}

// podObject is a Pod as the API serves it. n is its node (nil: Pending,
// unschedulable); ready its PodReady and ContainersReady; cs its
// container's status.
func podObject(c *engine.TalosCluster, ns, name, uid, rv string, labels, annotations, owner map[string]any, n *engine.K8sNode,
	image string, ready bool, cs map[string]any, now time.Time) map[string]any {
	ts := now.UTC().Format(time.RFC3339)
	cond := func(typ string, ok bool) map[string]any {
		s := "False"
		if ok {
			s = "True"
		}
		return map[string]any{"type": typ, "status": s, "lastTransitionTime": ts}
	}
	spec := map[string]any{"containers": []any{map[string]any{"name": engine.Str(cs, "name"), "image": image}}}
	md := map[string]any{"name": name, "namespace": ns, "uid": uid, "resourceVersion": rv, "labels": labels,
		"ownerReferences": []any{owner}}
	if annotations != nil {
		md["annotations"] = annotations
	}
	st := map[string]any{"phase": "Pending"}
	if n == nil {
		spec["containers"] = []any{map[string]any{"name": "coredns", "image": image}}
		unsched := cond("PodScheduled", false)
		unsched["reason"] = "Unschedulable"
		unsched["message"] = fmt.Sprintf("0/%d nodes are available: no node is Ready and schedulable (not cordoned).", len(c.Nodes))
		st["conditions"] = []any{unsched}
		return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": st}
	}
	spec["nodeName"] = n.Name
	notReady := func(m map[string]any) map[string]any {
		if !ready {
			m["reason"] = "ContainersNotReady"
			m["message"] = fmt.Sprintf("containers with unready status: [%s]", engine.Str(cs, "name"))
		}
		return m
	}
	st["phase"] = "Running"
	st["hostIP"], st["hostIPs"] = n.Address, []any{map[string]any{"ip": n.Address}}
	st["podIP"] = n.Address
	st["conditions"] = []any{cond("PodReadyToStartContainers", true), cond("Initialized", true),
		notReady(cond("Ready", ready)), notReady(cond("ContainersReady", ready)), cond("PodScheduled", true)}
	st["containerStatuses"] = []any{cs}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": st}
}

var podsGVR = GVR{"", "v1", "pods"}

// listPods lists the pods of ns ("" all) with fieldSelector
// (spec.nodeName, metadata.name, metadata.namespace, status.phase) and
// labelSelector.
func (q *kubeRequest) listPods(ns string) (int, any, error) {
	sel, err := parseSelector(q.r.URL.Query().Get("labelSelector"))
	if err != nil {
		return 0, nil, err
	}
	fields, err := parseFieldSelector(q.r.URL.Query().Get("fieldSelector"), "spec.nodeName", "metadata.name", "metadata.namespace", "status.phase")
	if err != nil {
		return 0, nil, err
	}
	var items []map[string]any
	for _, p := range KubePods(q.tx, q.c, q.now, q.faults) {
		if (ns == "" || p.ns() == ns) && sel.matches(p.obj) && fields.matches(p.obj) {
			items = append(items, p.obj)
		}
	}
	return http.StatusOK, listOf("Pod", ListRV(q.c), items), nil
}

func (q *kubeRequest) pod(ns, name string) (*simPod, error) {
	for _, p := range KubePods(q.tx, q.c, q.now, q.faults) {
		if p.ns() == ns && p.name() == name {
			return p, nil
		}
	}
	return nil, notFound(podsGVR, name)
}

func (q *kubeRequest) getPod(ns, name string) (int, any, error) {
	p, err := q.pod(ns, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p.obj, nil
}

// removePod deletes a pod, and its owner makes another: the kubelet
// recreates a mirror pod at once (same name, new UID), a DaemonSet a pod
// of a new name on the same node, a ReplicaSet a pod of a new name that
// the scheduler places (SchedulePods, after the request).
func (q *kubeRequest) removePod(p *simPod) {
	switch p.owner {
	case "ReplicaSet":
		q.c.ReplicaPods = slices.DeleteFunc(q.c.ReplicaPods, func(r *engine.ReplicaPod) bool { return r.Name == p.key })
	default:
		if q.c.PodRestarts == nil {
			q.c.PodRestarts = map[string]int{}
		}
		q.c.PodRestarts[p.key]++
	}
	NextRV(q.c)
}

// deletePod is DELETE of a pod: the reply is the pod.
func (q *kubeRequest) deletePod(ns, name string) (int, any, error) {
	p, err := q.pod(ns, name)
	if err != nil {
		return 0, nil, err
	}
	q.removePod(p)
	return http.StatusOK, p.obj, nil
}

// evict is the pods/eviction subresource (POST, a policy/v1 Eviction):
// refused with 429 TooManyRequests when a PodDisruptionBudget allows no
// disruption (faults.json evictionRefusals), else the pod is deleted
// (removePod) and the reply is a Status Success with code 201
// (kubernetes pkg/registry/core/pod/storage/eviction.go; the create
// handler's 201).
func (q *kubeRequest) evict(ns, name string) (int, any, error) {
	p, err := q.pod(ns, name)
	if err != nil {
		return 0, nil, err
	}
	var ev map[string]any
	if err := json.Unmarshal(q.body, &ev); err != nil {
		return 0, nil, badRequest("error decoding Eviction: %v", err)
	}
	if v := engine.Str(ev, "apiVersion"); v != "" && v != "policy/v1" && v != "policy/v1beta1" {
		return 0, nil, badRequest("the API version in the data (%s) does not match the expected API version (policy/v1)", v)
	}
	if n := engine.Str(ev, "metadata.name"); n != name {
		return 0, nil, badRequest("name in URL does not match name in Eviction object")
	}
	node := engine.Str(p.obj, "spec.nodeName")
	for _, r := range q.faults.EvictionRefusals {
		if (r.Namespace == "" || r.Namespace == ns) && (r.Node == "" || r.Node == node) &&
			(r.Pod == "" || r.Pod == name || strings.HasSuffix(r.Pod, "*") && strings.HasPrefix(name, strings.TrimSuffix(r.Pod, "*"))) {
			budget := r.Budget
			if budget == "" {
				budget = engine.Str(p.obj, "metadata.labels.k8s-app") + "-pdb"
			}
			e := statusErr(http.StatusTooManyRequests, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
			e.details = map[string]any{"causes": []any{map[string]any{"reason": "DisruptionBudget",
				"message": fmt.Sprintf("The disruption budget %s needs 1 healthy pods and has 1 currently", budget)}}}
			return 0, nil, e
		}
	}
	q.removePod(p)
	return http.StatusCreated, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Success", "code": http.StatusCreated}, nil
}

// RunningImage is the image a component runs: the previous one while a
// change restarts it, else the configuration's.
func RunningImage(tx *engine.Tx, m *engine.TalosMachine, doc map[string]any, component string, now time.Time) string {
	if ch := LastChange(tx, m.Address, component, time.Time{}); ch != nil && now.Before(ch.Ready) {
		return ch.From
	}
	return talos.ComponentImage(m, doc, component)
}
