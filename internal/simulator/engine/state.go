package engine

import (
	"strings"
	"time"
)

// KubeObject is an object written by server-side apply: the object, and
// per field manager the fields it owns (paths of keys, "\x1f"-joined).
type KubeObject struct {
	Object   map[string]any      `json:"object"`
	Managers map[string][]string `json:"managers,omitempty"`
}

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

// Object is one resource the simulated systems hold. The provider reports
// Inputs merged with Outputs, which holds only what the provider computed
// (so large inputs such as machine configurations are stored once).
type Object struct {
	URN     string          `json:"urn"`
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Inputs  map[string]any  `json:"inputs"`
	Outputs map[string]any  `json:"outputs"`
	Secret  map[string]bool `json:"secret,omitempty"`
	// Private is what a real provider keeps beside the state and reads in
	// its next plan (Terraform's private state, "__meta" in Pulumi's state).
	Private map[string]any `json:"private,omitempty"`
}

// StoredFile is a file on a datastore (a downloaded image or template).
type StoredFile struct {
	ID          string `json:"id"` // "local:iso/talos.img"
	Node        string `json:"node"`
	Datastore   string `json:"datastore"`
	ContentType string `json:"contentType"`
	URL         string `json:"url"`
	// Size in bytes, as the datastore lists it.
	Size int64 `json:"size,omitempty"`
}

// ComponentChange is a configuration apply that changed the image of one
// of a machine's Kubernetes components: the component restarts on the new
// image and is back at Ready.
type ComponentChange struct {
	Address   string `json:"address"`
	Hostname  string `json:"hostname"`
	Component string `json:"component"` // kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubelet
	From      string `json:"from"`
	To        string `json:"to"`
	// Cause is the apply that changed it: "talos apply" (the provider's
	// ConfigurationApply) or "talos-apid ApplyConfiguration".
	Cause string    `json:"cause"`
	Start time.Time `json:"start"`
	Ready time.Time `json:"ready"`
}

// TalosEvent is one event machined published on a node's event stream
// (talos v1.12.0 v1alpha1_controller.go: a SequenceEvent, PhaseEvent or
// TaskEvent per start and stop, and a SequenceEvent with an error when a
// sequence fails), with the actor ID of the request that started it.
type TalosEvent struct {
	Address string    `json:"address"`
	ID      string    `json:"id"`
	ActorID string    `json:"actorId,omitempty"`
	Time    time.Time `json:"time"`
	// Kind is "sequence", "phase" or "task"; Name the sequence, phase or
	// task; Action "start", "stop" or "noop".
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	// Error is a failed sequence's message (SequenceEvent.error).
	Error string `json:"error,omitempty"`
}

// Overlaps reports whether two components were restarting at the same time.
func (c ComponentChange) Overlaps(o ComponentChange) bool {
	return c.Start.Before(o.Ready) && o.Start.Before(c.Ready)
}

// TalosMachine is what a Talos node knows after a configuration apply.
type TalosMachine struct {
	Address   string `json:"address"`
	VMID      int    `json:"vmid"`
	Type      string `json:"type"`
	ClusterID string `json:"clusterId"`
	Cluster   string `json:"cluster"`
	Hostname  string `json:"hostname,omitempty"`
	// OSCA is the Talos API CA (PEM) clients must present certificates of.
	OSCA string `json:"osCa"`
	CNI  string `json:"cni"`
	// ProxyDisabled is true when the configuration turns kube-proxy off.
	ProxyDisabled bool   `json:"proxyDisabled,omitempty"`
	Endpoint      string `json:"endpoint"`
	ConfigHash    string `json:"configHash"`
	Applies       int    `json:"applies"`
	// UnmatchedLinks are the deviceSelectors of the configuration that
	// matched no link of the VM: Talos leaves them unconfigured (a warning
	// in its log, not an error).
	UnmatchedLinks []string `json:"unmatchedLinks,omitempty"`
	// LinkMTU is the MTU the configuration sets on the link of the VM's
	// NIC (0: unset).
	LinkMTU int `json:"linkMtu,omitempty"`
	// JoinBlocked says why the machine could not join its cluster (etcd,
	// kubelet registration): the network between it and the cluster.
	JoinBlocked string `json:"joinBlocked,omitempty"`
	// Version is the Talos version the machine runs ("v1.12.0"): on its
	// first configuration the version it booted (see talos.BootVersion); an
	// upgrade through the Talos API changes it; applies do not.
	Version string `json:"version,omitempty"`
	// Schematic is the Image Factory schematic ID of the image the machine
	// runs ("" for an image not built by the factory): Image Factory adds
	// it to every image as the virtual extension "schematic" (see
	// talos.ExtensionStatuses); set like Version.
	Schematic string `json:"schematic,omitempty"`
	// KubeletStoppedUntil is when a machine whose graceful reset failed
	// gets its kubelet back: the reset had already removed its pods and
	// stopped the kubelet before etcd refused the leave, and only the
	// reboot after the failed sequence starts it again (zero: running).
	KubeletStoppedUntil time.Time `json:"kubeletStoppedUntil,omitempty"`
	// Config is the machine configuration the node runs (YAML), from the
	// last apply that took effect (not a staged one).
	Config string `json:"config,omitempty"`
	// StaticPodConfigs are the versions of the COSI resources
	// KubeAPIServerConfigs, KubeControllerManagerConfigs and
	// KubeSchedulerConfigs by component (kube-apiserver, ...): what
	// `talosctl upgrade-k8s` waits for in the mirror pod's
	// talos.dev/config-version annotation (package kubeapi).
	StaticPodConfigs map[string]*StaticPodConfig `json:"staticPodConfigs,omitempty"`
}

// TalosCluster is a bootstrapped cluster.
type TalosCluster struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	BootstrapNode string `json:"bootstrapNode"`
	Endpoint      string `json:"endpoint"`
	// K8sCA and K8sCAKey (PEM) sign the admin kubeconfigs.
	K8sCA    string `json:"k8sCa"`
	K8sCAKey string `json:"k8sCaKey"`
	CNI      string `json:"cni"`
	// ProxyDisabled is true when the configuration turns kube-proxy off.
	ProxyDisabled bool `json:"proxyDisabled,omitempty"`
	// Releases are Helm releases installed, "namespace/name" -> chart.
	Releases map[string]string `json:"releases,omitempty"`
	// Kubeconfigs counts the admin kubeconfigs issued.
	Kubeconfigs int `json:"kubeconfigs"`
	// EtcdMembers are the addresses of the control planes that joined etcd
	// and have not left it (a deleted VM does not leave: its member stays,
	// unreachable, as in a real cluster).
	EtcdMembers []string `json:"etcdMembers,omitempty"`
	// EtcdLeader is the member that forfeited leadership last moved it to
	// (empty: the first started member; see talos.EtcdLeader).
	EtcdLeader string `json:"etcdLeader,omitempty"`
	// Nodes are the Kubernetes Node objects by node name. A node whose
	// machine is gone stays, NotReady, until it is deleted through the
	// Kubernetes API.
	Nodes map[string]*K8sNode `json:"nodes,omitempty"`
	// ResourceVersion is the Kubernetes API's last resourceVersion: every
	// write through the simulated kube-apiserver takes the next one.
	ResourceVersion uint64 `json:"resourceVersion,omitempty"`
	// KubeObjects are the objects written by server-side apply, by
	// "group/version/resource/namespace/name" (package kubeapi).
	KubeObjects map[string]*KubeObject `json:"kubeObjects,omitempty"`
	// ReplicaPods are the pods of ReplicaSets (CoreDNS) with the node each
	// was scheduled on; the other pods are derived from the state.
	ReplicaPods []*ReplicaPod `json:"replicaPods,omitempty"`
	// PodRestarts counts, per "namespace/daemonset/node", the DaemonSet
	// pods evicted (each replacement has a new name).
	PodRestarts map[string]int `json:"podRestarts,omitempty"`
}

// K8sNode is a Kubernetes Node object.
type K8sNode struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Role     string `json:"role"`
	Cordoned bool   `json:"cordoned,omitempty"`
	// ResourceVersion is the Node's resourceVersion (its last write
	// through the Kubernetes API).
	ResourceVersion uint64 `json:"resourceVersion,omitempty"`
}

// State is everything the simulated systems remember between calls and
// between engine runs.
type State struct {
	Objects  map[string]*Object       `json:"objects"` // by ObjectKey
	Bridges  map[string]bool          `json:"bridges"` // "node/name" created by the stack
	Files    map[string]*StoredFile   `json:"files"`   // "node/id"
	Guests   map[int]*Guest           `json:"guests"`
	Machines map[string]*TalosMachine `json:"machines"` // by address
	Clusters map[string]*TalosCluster `json:"clusters"` // by cluster ID
	Secrets  map[string]string        `json:"secrets"`  // id -> bundle JSON
	Reboots  []Reboot                 `json:"reboots,omitempty"`
	// ComponentChanges log every change of a Kubernetes component's image,
	// in the order applied.
	ComponentChanges []ComponentChange `json:"componentChanges,omitempty"`
	// TalosEvents are the events machined published on each node's event
	// stream (the Talos API's Events), in order.
	TalosEvents []TalosEvent `json:"talosEvents,omitempty"`
	// NetworkReloads counts the network reloads (ifreload) per Proxmox
	// node: the bridge resource reloads after every create, update, delete.
	NetworkReloads map[string]int `json:"networkReloads,omitempty"`
	// Schematics are the schematics posted to the simulated Image Factory,
	// by schematic ID (the factory keeps every schematic it was given).
	Schematics map[string]string `json:"schematics,omitempty"`
	// BridgePorts are the ports of the bridges the stack created, by
	// "node/name".
	BridgePorts map[string][]string `json:"bridgePorts,omitempty"`
	// VLANs are the VLAN interfaces the stack created, by "node/name".
	VLANs map[string]*VLANIface `json:"vlans,omitempty"`
	// SDN is Proxmox SDN's edited configuration, SDNRunning the applied one.
	SDN        SDNConfig `json:"sdn"`
	SDNRunning SDNConfig `json:"sdnRunning"`
	// SDNVersion counts the applies of SDN (the running configuration's
	// version); SDNNodeVersions is, per node, the version its network last
	// reloaded with (older on a node whose reload failed).
	SDNVersion      int            `json:"sdnVersion,omitempty"`
	SDNNodeVersions map[string]int `json:"sdnNodeVersions,omitempty"`
	// FailedNodes are the Proxmox nodes a test cut the power of, by name
	// (Tx.FailNode, failures.go).
	FailedNodes map[string]*NodeFailure `json:"failedNodes,omitempty"`
	// RouterEvents say when each router container's keepalived started and
	// stopped, in order: what the router pair's virtual addresses follow
	// (network.VRRPHolder, network.GatewayTimeline).
	RouterEvents []RouterEvent `json:"routerEvents,omitempty"`
}

func (s *State) init() {
	if s.Objects == nil {
		s.Objects = map[string]*Object{}
	}
	if s.Bridges == nil {
		s.Bridges = map[string]bool{}
	}
	if s.Files == nil {
		s.Files = map[string]*StoredFile{}
	}
	if s.Guests == nil {
		s.Guests = map[int]*Guest{}
	}
	if s.Machines == nil {
		s.Machines = map[string]*TalosMachine{}
	}
	if s.Clusters == nil {
		s.Clusters = map[string]*TalosCluster{}
	}
	if s.Secrets == nil {
		s.Secrets = map[string]string{}
	}
	if s.NetworkReloads == nil {
		s.NetworkReloads = map[string]int{}
	}
	if s.Schematics == nil {
		s.Schematics = map[string]string{}
	}
	if s.BridgePorts == nil {
		s.BridgePorts = map[string][]string{}
	}
	if s.VLANs == nil {
		s.VLANs = map[string]*VLANIface{}
	}
	s.SDN.init()
	s.SDNRunning.init()
	if s.SDNNodeVersions == nil {
		s.SDNNodeVersions = map[string]int{}
	}
	if s.FailedNodes == nil {
		s.FailedNodes = map[string]*NodeFailure{}
	}
}

// ObjectKey identifies an object by the resource that made it and its ID:
// IDs alone repeat (the same file ID on every node), and during a
// create-before-delete replacement one URN has two objects.
func ObjectKey(urn, id string) string { return urn + "#" + id }

// Object finds the object a call addresses. Real providers address a
// resource by its ID alone; the URN is Pulumi's. So when nothing is held
// under urn (a resource moved by an alias), the one object of that type with
// that ID is it, and it moves to urn. IDs several objects of a type share
// (ConfigurationApply's "machine_configuration_apply") do not move.
func (tx *Tx) Object(urn, id, typ string) (string, *Object) {
	key := ObjectKey(urn, id)
	if obj := tx.State.Objects[key]; obj != nil {
		return key, obj
	}
	var found []string
	for k, o := range tx.State.Objects {
		if o.Type == typ && o.ID == id {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		return key, nil
	}
	obj := tx.State.Objects[found[0]]
	delete(tx.State.Objects, found[0])
	obj.URN = urn
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		obj.Name = urn[i+2:]
	}
	tx.State.Objects[key] = obj
	return key, obj
}
