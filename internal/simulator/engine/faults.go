package engine

import (
	"fmt"
	"time"
)

// Faults configures latencies and one-shot failures.
type Faults struct {
	// Latency per type token ("proxmoxve:VM/virtualMachine:VirtualMachine")
	// or per token and method ("...:VirtualMachine#Delete"), as a Go
	// duration. It applies to Create, Update, Delete and Invoke.
	Latency map[string]string `json:"latency,omitempty"`
	// FailOnce makes the Ordinal-th call (1-based, counted over the life of
	// the simulation directory) of Method on Type fail, once.
	FailOnce []FailOnce `json:"failOnce,omitempty"`
	// RebootTime is how long a guest is down when it reboots (a Go
	// duration; default 0). A Proxmox update that reboots a guest waits that
	// long before it returns, as the real provider waits for the reboot task;
	// a Talos node rebooting after a configuration apply is unreachable for
	// that long while the apply call has already returned.
	RebootTime string `json:"rebootTime,omitempty"`
	// AgentWaitScale scales the time the Proxmox provider waits for a QEMU
	// guest agent that does not answer (agent.timeout, 15m by default, as in
	// the real provider). Unset or 0 means 1: real time. Tests set e.g.
	// 0.0001 (15m becomes 90ms).
	AgentWaitScale float64 `json:"agentWaitScale,omitempty"`
	// HandoverTimeScale scales the waits of the router pair's handover
	// script (its deadline, HandoverTimeoutSeconds, and its peer-gone time,
	// PeerGoneSeconds, read from the script; clis/router.go). Unset or 0
	// means 1: real time. A pair's destroy waits the peer-gone time for
	// real, as on a real cluster; tests scale it down.
	HandoverTimeScale float64 `json:"handoverTimeScale,omitempty"`
	// TalosRetryTime is how long the talos resources and talos.GetHealth keep
	// retrying a node that is down (a Go duration; default 10m, the
	// upstream default timeout). The simulation waits only for a reboot in
	// progress that ends within it; other failures fail at once.
	TalosRetryTime string `json:"talosRetryTime,omitempty"`
	// ComponentRestartTime is how long a Kubernetes component (a static
	// pod, the kubelet) is down after a configuration changes its image (a
	// Go duration; default 0).
	ComponentRestartTime string `json:"componentRestartTime,omitempty"`
	// EtcdStartTime is how long a control plane's etcd member takes, after
	// its machine boots, to start and answer health checks (a Go duration;
	// default 0). Until then the etcd service is not healthy (ServiceList)
	// and Talos refuses to upgrade another control plane
	// (talos.ValidateForUpgrade); the member still counts for quorum.
	EtcdStartTime string `json:"etcdStartTime,omitempty"`
	// FatalRebootDelay is how long machined waits, after a sequence failed,
	// before it reboots the node (a Go duration; default 10s, machined's
	// "rebooting in 10 seconds").
	FatalRebootDelay string `json:"fatalRebootDelay,omitempty"`
	// SDNReloadFails are Proxmox nodes whose network reload fails when
	// `pvesh set /cluster/sdn` applies SDN (ifupdown2 missing, the node
	// offline): the apply only warns and exits 0, and the node keeps its
	// older SDN network configuration (clis/pvesh.go).
	SDNReloadFails []string `json:"sdnReloadFails,omitempty"`
	// CrashLoops make a Kubernetes component crash-loop on a node once a
	// configuration changes its image to the given one (package kubeapi): its
	// container shows CONTAINER_RUNNING between restarts, its mirror pod
	// never turns Ready.
	CrashLoops []CrashLoop `json:"crashLoops,omitempty"`
	// EvictionRefusals make the Kubernetes API refuse evictions (429, a
	// PodDisruptionBudget) of the pods they match (package kubeapi).
	EvictionRefusals []EvictionRefusal `json:"evictionRefusals,omitempty"`
}

// EtcdStart is the configured EtcdStartTime (0 when unset or invalid).
func (f Faults) EtcdStart() time.Duration {
	d, _ := time.ParseDuration(f.EtcdStartTime)
	return d
}

// FatalReboot is the configured FatalRebootDelay (10s when unset or invalid).
func (f Faults) FatalReboot() time.Duration {
	d, err := time.ParseDuration(f.FatalRebootDelay)
	if err != nil {
		return 10 * time.Second
	}
	return d
}

// ComponentRestart is how long a Kubernetes component restarts for.
func (f Faults) ComponentRestart() time.Duration {
	d, err := time.ParseDuration(f.ComponentRestartTime)
	if err != nil {
		return 0
	}
	return d
}

// AgentWait is the simulated duration of a real wait of d for the guest agent.
func (f Faults) AgentWait(d time.Duration) time.Duration {
	if f.AgentWaitScale <= 0 {
		return d
	}
	return time.Duration(float64(d) * f.AgentWaitScale)
}

// HandoverTime is the simulated duration of a handover script's wait of d.
func (f Faults) HandoverTime(d time.Duration) time.Duration {
	if f.HandoverTimeScale <= 0 {
		return d
	}
	return time.Duration(float64(d) * f.HandoverTimeScale)
}

// TalosRetryDuration is the configured TalosRetryTime (10 minutes when
// unset or invalid, as terraform-provider-talos v0.10.1 defaults its
// create/update/read timeouts).
func (f Faults) TalosRetryDuration() time.Duration {
	d, err := time.ParseDuration(f.TalosRetryTime)
	if err != nil {
		return 10 * time.Minute
	}
	return d
}

// RebootDuration is the configured RebootTime (0 when unset or invalid).
func (f Faults) RebootDuration() time.Duration {
	d, err := time.ParseDuration(f.RebootTime)
	if err != nil {
		return 0
	}
	return d
}

// FailOnce is a one-shot injected failure.
type FailOnce struct {
	Type    string `json:"type"`
	Method  string `json:"method"`
	Ordinal int    `json:"ordinal"`
}

func (f FailOnce) key() string { return fmt.Sprintf("%s#%s#%d", f.Type, f.Method, f.Ordinal) }

// LatencyOf is the configured delay of method on typ.
func (f Faults) LatencyOf(typ, method string) time.Duration {
	for _, key := range []string{typ + "#" + method, typ} {
		if v, ok := f.Latency[key]; ok {
			d, err := time.ParseDuration(v)
			if err == nil {
				return d
			}
		}
	}
	return 0
}

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

// Restarts is a crash-looping container's restart count and last start
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
