package engine

import (
	"time"
)

// CrashLoop makes a Kubernetes component crash-loop on a node once a
// configuration changed its image to Image (faults.json "crashLoops"):
// its container is started again and again, so the Talos API lists it
// CONTAINER_RUNNING (between restarts, as the CRI shows it), while its
// mirror pod never turns Ready (PodReady and ContainersReady False,
// restartCount growing). A later change to another image ends it.
type CrashLoop struct {
	// Node is the node's address or Kubernetes node name.
	Node string `json:"node"`
	// Component is kube-apiserver, kube-controller-manager or kube-scheduler.
	Component string `json:"component"`
	// Image is the image the change went to; ":v1.35.1" matches any image
	// with that tag.
	Image string `json:"image"`
	// BackOff is the kubelet's first restart back-off (a Go duration;
	// default 10s, doubling up to 5m): restartCount grows by it.
	BackOff string `json:"backOff,omitempty"`
}

// EvictionRefusal makes the Kubernetes API refuse the eviction of the
// pods it matches with 429 TooManyRequests, as a PodDisruptionBudget that
// allows no disruption does (faults.json "evictionRefusals").
type EvictionRefusal struct {
	// Namespace, Pod (a name, or a prefix ending in "*") and Node (a node
	// name) select the pods; an empty field matches any.
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Node      string `json:"node,omitempty"`
	// Budget is the PodDisruptionBudget's name in the message (default
	// "<pod's k8s-app label>-pdb").
	Budget string `json:"budget,omitempty"`
}

// KubeObject is an object written by server-side apply: the object, and
// per field manager the fields it owns (paths of keys, "\x1f"-joined).
type KubeObject struct {
	Object   map[string]any      `json:"object"`
	Managers map[string][]string `json:"managers,omitempty"`
}

// The pods of a simulated cluster, as a fresh Talos cluster has them:
// the control plane's mirror pods (kubelet-created for Talos's static
// pods), the DaemonSets' pods on every node (kube-proxy, the CNI), and
// CoreDNS's two replicas, the only pods whose placement is stored
// (TalosCluster.ReplicaPods). And what `talosctl upgrade-k8s` reads of a
// static pod: the version of the component's configuration resource
// (COSI, served by the Talos API) and the mirror pod's
// talos.dev/config-version annotation.

// ReplicaPod is a pod of a ReplicaSet (CoreDNS) and the node the scheduler
// put it on ("" while it is Pending).
type ReplicaPod struct {
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	ReplicaSet string    `json:"replicaSet"`
	App        string    `json:"app"`
	Node       string    `json:"node,omitempty"`
	Created    time.Time `json:"created"`
}

// StaticPodConfig is the version of a control plane component's COSI
// configuration resource (KubeAPIServerConfigs, ...) in the boot it was
// last changed in: the resources live in machined's memory, so each boot
// creates them again at version 1.
type StaticPodConfig struct {
	Version uint64    `json:"version"`
	Boot    time.Time `json:"boot"`
}

// restarts is a crash-looping container's restart count and last start
// since it first started: the kubelet's back-off, from BackOff (10s)
// doubling to 5 minutes (pkg/kubelet/kubelet.go MaxContainerBackOff).
func (cl *CrashLoop) Restarts(since, now time.Time) (int, time.Time) {
	wait, err := time.ParseDuration(cl.BackOff)
	if err != nil || wait <= 0 {
		wait = 10 * time.Second
	}
	n, at := 0, since
	for !now.Before(at.Add(wait)) {
		n++
		at = at.Add(wait)
		wait = min(wait*2, 5*time.Minute)
	}
	return n, at
}
