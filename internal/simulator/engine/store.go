package engine

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// The files of a simulation directory (env SDA_SIM_STATE). The test (or a
// person trying the simulation) writes World and Faults; the plugins keep
// State and append to the call log.
const (
	WorldFile    = "proxmox.json"
	FaultsFile   = "faults.json"
	StateFile    = "state.json"
	LogFile      = "calls.jsonl"
	lockFile     = "state.lock"
	countersFile = "counters.json"
)

// StateDirEnv names the environment variable with the simulation directory.
const StateDirEnv = "SDA_SIM_STATE"

// World is the simulated Proxmox cluster as it exists before any deployment:
// its nodes with their capacity, datastores and the bridges every node has.
type World struct {
	Nodes      []WorldNode `json:"nodes"`
	Datastores []Datastore `json:"datastores"`
	// Bridges exist on every node (vmbr0 with the uplink).
	Bridges []string `json:"bridges"`
	// URLSizes is the size (bytes) a download URL reports (Content-Length);
	// unset URLs report the size the simulated download stored. A test
	// changes it to simulate a file that changed upstream.
	URLSizes map[string]int64 `json:"urlSizes,omitempty"`
	// SharedBridges are the bridges of Bridges that are one Ethernet
	// segment across every node (the user connected them through a port on
	// one physical network). Unset: the first of Bridges only (vmbr0, the
	// uplink's bridge: the physical LAN). A bridge not listed is local to
	// each node.
	SharedBridges []string `json:"sharedBridges,omitempty"`
	// Uplinks are the physical interfaces every node has, all on one switch
	// (default eno1): a VLAN interface of one is a port into the switch.
	Uplinks []string `json:"uplinks,omitempty"`
	// SwitchVLANs are the VLAN IDs the switch carries between the nodes'
	// uplinks. Unset: all.
	SwitchVLANs []int `json:"switchVlans,omitempty"`
	// CallerBridge is the bridge whose segment the machine running Pulumi
	// is on (default: the first shared bridge).
	CallerBridge string `json:"callerBridge,omitempty"`
	// Tokens are API tokens ("sda@pve!deploy") with their ACL entries. When
	// the proxmoxve provider's apiToken names one of them, its creates and
	// updates are refused as Proxmox VE 8 refuses them, with HTTP 403
	// (acl.go); a token not listed may do everything, as root@pam.
	Tokens map[string][]ACL `json:"tokens,omitempty"`
}

// WorldNode is one Proxmox node.
type WorldNode struct {
	Name string `json:"name"`
	// SSHHost is the address `pct` commands reach the node on.
	SSHHost string `json:"sshHost"`
	// ClusterAddress is the node's address on the Proxmox cluster network,
	// what a VXLAN zone's peers list (default SSHHost).
	ClusterAddress string `json:"clusterAddress,omitempty"`
	// HostKeys are the SSH host keys (authorized_keys lines) of whatever
	// answers on SSHHost: the node's own, or an impostor's when a test puts
	// another machine on its address. None: the node offers no key a pin
	// could match.
	HostKeys  []string `json:"hostKeys,omitempty"`
	Cores     int      `json:"cores"`
	MemoryMiB int      `json:"memoryMiB"`
}

// Datastore is a Proxmox storage.
type Datastore struct {
	ID string `json:"id"`
	// Content types the storage accepts: iso, vztmpl, images, rootdir, import, snippets.
	Content []string `json:"content"`
	// Shared storage is one store seen by every node; otherwise each node
	// has its own store of that name.
	Shared bool `json:"shared"`
}

// DefaultWorld is a cluster with the given nodes, each with 32 cores and
// 128 GiB, the usual `local` (iso, vztmpl, import) and `local-lvm`
// (images, rootdir) stores, and vmbr0.
func DefaultWorld(nodes ...WorldNode) World {
	for i := range nodes {
		if nodes[i].Cores == 0 {
			nodes[i].Cores = 32
		}
		if nodes[i].MemoryMiB == 0 {
			nodes[i].MemoryMiB = 128 * 1024
		}
		if nodes[i].SSHHost == "" {
			nodes[i].SSHHost = nodes[i].Name
		}
	}
	return World{
		Nodes: nodes,
		Datastores: []Datastore{
			{ID: "local", Content: []string{"iso", "vztmpl", "import", "snippets", "backup"}},
			{ID: "local-lvm", Content: []string{"images", "rootdir"}},
		},
		Bridges: []string{"vmbr0"},
	}
}

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
	// TalosRetryTime is how long the talos resources and getHealth keep
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
	// (validateForUpgrade); the member still counts for quorum.
	EtcdStartTime string `json:"etcdStartTime,omitempty"`
	// FatalRebootDelay is how long machined waits, after a sequence failed,
	// before it reboots the node (a Go duration; default 10s, machined's
	// "rebooting in 10 seconds").
	FatalRebootDelay string `json:"fatalRebootDelay,omitempty"`
	// SDNReloadFails are Proxmox nodes whose network reload fails when
	// `pvesh set /cluster/sdn` applies SDN (ifupdown2 missing, the node
	// offline): the apply only warns and exits 0, and the node keeps its
	// older SDN network configuration (pvesh.go).
	SDNReloadFails []string `json:"sdnReloadFails,omitempty"`
	// CrashLoops make a Kubernetes component crash-loop on a node once a
	// configuration changes its image to the given one (kubeapi.go): its
	// container shows CONTAINER_RUNNING between restarts, its mirror pod
	// never turns Ready.
	CrashLoops []CrashLoop `json:"crashLoops,omitempty"`
	// EvictionRefusals make the Kubernetes API refuse evictions (429, a
	// PodDisruptionBudget) of the pods they match (kubeapi.go).
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

// Call is one line of the call log.
type Call struct {
	Seq      int       `json:"seq"`
	Time     time.Time `json:"time"`
	Provider string    `json:"provider"`
	Method   string    `json:"method"`
	Type     string    `json:"type"`
	Name     string    `json:"name,omitempty"`
	ID       string    `json:"id,omitempty"`
	Error    string    `json:"error,omitempty"`
	// Millis is the wall time of the call, latency included.
	Millis int64 `json:"millis"`
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

// Guest is a VM or container on a Proxmox node.
type Guest struct {
	VMID      int      `json:"vmid"`
	Kind      string   `json:"kind"` // "qemu" or "lxc"
	Node      string   `json:"node"`
	Name      string   `json:"name"`
	Cores     int      `json:"cores"`
	MemoryMiB int      `json:"memoryMiB"`
	Bridges   []string `json:"bridges"`
	MACs      []string `json:"macs"`
	// MTUs are the NICs' `mtu` (0: unset), aligned with Bridges.
	MTUs []int `json:"mtus,omitempty"`
	// Addresses without prefix length, from cloud-init / LXC ip configs.
	Addresses []string `json:"addresses"`
	// NICAddresses are the static addresses by NIC (ipConfigs[i] configures
	// NIC i; "" for none or DHCP), aligned with Bridges.
	NICAddresses  []string `json:"nicAddresses,omitempty"`
	DiskInterface string   `json:"diskInterface,omitempty"`
	Started       bool     `json:"started"`
	// TalosVersion is the Talos version installed on the VM's disk by an
	// upgrade through the Talos API (a reset wipes it with the rest of the
	// disk). Empty: the version of the image the VM was created from.
	TalosVersion string `json:"talosVersion,omitempty"`
	// TalosSchematic is the Image Factory schematic of the installer an
	// upgrade installed (kept with TalosVersion). Empty: the image's.
	TalosSchematic string `json:"talosSchematic,omitempty"`
	// DiskWiped is true once a Talos reset wiped the VM's whole system
	// disk: it has nothing to boot until it is recreated.
	DiskWiped bool `json:"diskWiped,omitempty"`
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

// Reboot is one reboot of a guest: a Proxmox update that restarts a VM or
// container, or a Talos configuration change that needs a reboot. Tests
// read the log to check that no two control planes (or the router and a
// node) were down at once.
type Reboot struct {
	VMID int    `json:"vmid"`
	Kind string `json:"kind"` // "qemu" or "lxc"
	Name string `json:"name"`
	// Cause says what rebooted it ("proxmox update: cpu.cores",
	// "talos apply: machine.sysctls").
	Cause string    `json:"cause"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Overlaps reports whether two reboots had their guests down at the same time.
func (r Reboot) Overlaps(o Reboot) bool { return r.Start.Before(o.End) && o.Start.Before(r.End) }

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
	// first configuration the version it booted (see bootVersion); an
	// upgrade through the Talos API changes it; applies do not.
	Version string `json:"version,omitempty"`
	// Schematic is the Image Factory schematic ID of the image the machine
	// runs ("" for an image not built by the factory): Image Factory adds
	// it to every image as the virtual extension "schematic" (see
	// extensionStatuses); set like Version.
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
	// talos.dev/config-version annotation (kubeapi.go).
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
	// (empty: the first started member; see etcdLeader).
	EtcdLeader string `json:"etcdLeader,omitempty"`
	// Nodes are the Kubernetes Node objects by node name. A node whose
	// machine is gone stays, NotReady, until it is deleted through the
	// Kubernetes API.
	Nodes map[string]*K8sNode `json:"nodes,omitempty"`
	// ResourceVersion is the Kubernetes API's last resourceVersion: every
	// write through the simulated kube-apiserver takes the next one.
	ResourceVersion uint64 `json:"resourceVersion,omitempty"`
	// KubeObjects are the objects written by server-side apply, by
	// "group/version/resource/namespace/name" (kubeapi.go).
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
	Objects  map[string]*Object       `json:"objects"` // by objectKey
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
}

// objectKey identifies an object by the resource that made it and its ID:
// IDs alone repeat (the same file ID on every node), and during a
// create-before-delete replacement one URN has two objects.
func ObjectKey(urn, id string) string { return urn + "#" + id }

// Store is the simulation directory. Every provider process opens it; a
// file lock serialises their transactions, since the engine runs several
// plugins (and several calls in each) at once.
type Store struct {
	Dir string
	mu  sync.Mutex
}

// Tx is one locked transaction on the simulation.
type Tx struct {
	World World
	State *State
	// Wait is how long the call blocks after the transaction, outside the
	// lock (a reboot the provider waits for, a guest agent that does not
	// answer). Kind functions add to it; the server sleeps it.
	Wait time.Duration
}

// lock runs fn holding the simulation's file lock.
func (s *Store) lock(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.Dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
	return fn()
}

// Update runs fn with the state locked and saves the state if fn returns nil.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.lock(func() error {
		tx, err := s.read()
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return writeJSON(filepath.Join(s.Dir, StateFile), tx.State)
	})
}

// read loads a transaction's world and state (the lock held).
func (s *Store) read() (*Tx, error) {
	tx := &Tx{State: &State{}}
	if err := readJSON(filepath.Join(s.Dir, WorldFile), &tx.World); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("simulated Proxmox configuration %s: %w", WorldFile, err)
	}
	if err := readJSON(filepath.Join(s.Dir, StateFile), tx.State); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("simulation state: %w", err)
	}
	tx.State.init()
	return tx, nil
}

// View runs fn with the state locked and does not save it: for readers
// (the Talos API's reachability checks and queries).
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.lock(func() error {
		tx, err := s.read()
		if err != nil {
			return err
		}
		return fn(tx)
	})
}

// counters are the call counts the one-shot faults go by, and the call log
// sequence. They live apart from the state, which grows with machine
// configurations, so counting a call stays cheap.
type counters struct {
	Seq   int             `json:"seq"`
	Calls map[string]int  `json:"calls"`
	Fired map[string]bool `json:"fired"`
}

func (s *Store) counters(fn func(c *counters) error) error {
	return s.lock(func() error {
		path := filepath.Join(s.Dir, countersFile)
		c := &counters{}
		if err := readJSON(path, c); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if c.Calls == nil {
			c.Calls = map[string]int{}
		}
		if c.Fired == nil {
			c.Fired = map[string]bool{}
		}
		if err := fn(c); err != nil {
			return err
		}
		return writeJSON(path, c)
	})
}

// World reads the simulated Proxmox cluster (without the lock: the test
// writes it before the engine starts).
func (s *Store) World() (World, error) {
	var w World
	err := readJSON(filepath.Join(s.Dir, WorldFile), &w)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return w, err
}

// Faults reads the fault configuration (absent means none).
func (s *Store) Faults() (Faults, error) {
	var f Faults
	err := readJSON(filepath.Join(s.Dir, FaultsFile), &f)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return f, err
}

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

// Log appends a call to the call log.
func (s *Store) Log(c Call) error {
	return s.counters(func(cs *counters) error {
		cs.Seq++
		c.Seq = cs.Seq
		f, err := os.OpenFile(filepath.Join(s.Dir, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = f.Write(append(b, '\n'))
		return err
	})
}

// ReadCalls reads the call log of a simulation directory.
func ReadCalls(dir string) ([]Call, error) {
	data, err := os.ReadFile(filepath.Join(dir, LogFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var calls []Call
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var c Call
		if err := dec.Decode(&c); err != nil {
			return calls, err
		}
		calls = append(calls, c)
	}
	return calls, nil
}

// ReadState reads the simulation state (for tests and people inspecting a run).
func ReadState(dir string) (*State, error) {
	st := &State{}
	err := readJSON(filepath.Join(dir, StateFile), st)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	st.init()
	return st, err
}

// WriteWorld and WriteFaults set up a simulation directory.
func WriteWorld(dir string, w World) error   { return writeJSON(filepath.Join(dir, WorldFile), w) }
func WriteFaults(dir string, f Faults) error { return writeJSON(filepath.Join(dir, FaultsFile), f) }

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// NewHostKey makes a fresh ed25519 SSH host key for a simulated node, as
// the authorized_keys line a stack pins (sda:proxmox.nodes[].sshHostKey)
// and WorldNode.HostKeys offers.
func NewHostKey() (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), nil
}

// object finds the object a call addresses. Real providers address a
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
