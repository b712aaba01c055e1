// Package pluginapi is the one definition of the custom resources SDA's
// plugin (pulumi-resource-sda, provider/) serves and the components
// register: their tokens, their inputs and their outputs.
//
// For each resource it holds
//   - XArgs, the plain inputs (`pulumi` and `provider:"secret"` tags): the
//     plugin's infer Args type, so the schema and the plugin's decoding
//     come from it;
//   - XState, the plain outputs: the plugin's infer State type;
//   - XInputs, the same fields as Pulumi inputs, which the components pass
//     to ctx.RegisterResource: as in a generated Pulumi SDK, its
//     ElementType is XArgs, and the SDK takes each property's name from
//     XArgs' tag of the field of the same name (a field XArgs lacks panics,
//     a value of another type fails the registration);
//   - XResource, what the components register, with the outputs they read.
//
// The tests check what the SDK does not: every XArgs field has its
// XInputs field of the same type (TestInputsMatchArgs), a registration
// through the SDK sends exactly XArgs' property names, nested ones too
// (TestRegisteredInputsAreArgs), and every XResource output is an XState
// field (TestResourcesMatchStates).
//
// It imports only the Pulumi Go SDK (no pulumi-go-provider, no engine, no
// internal/ packages), so the components can use it.
package pluginapi

import (
	"reflect"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The resources' tokens: the plugin's Annotate methods set them, the
// components register them.
const (
	KnownHostToken         = "sda:index:KnownHost"
	TalosNodeVersionToken  = "sda:index:TalosNodeVersion"
	KubernetesVersionToken = "sda:index:KubernetesVersion"
	ClusterMembersToken    = "sda:index:ClusterMembers"
	NodeDrainToken         = "sda:index:NodeDrain"
	NodeReadyToken         = "sda:index:NodeReady"
)

// KnownHost

// KnownHostArgs are a Proxmox node's SSH address and its pinned key.
type KnownHostArgs struct {
	// Host is the node's SSH address, as the Proxmox provider connects to it.
	Host string `pulumi:"host"`
	// Port is the SSH port (default 22).
	Port int `pulumi:"port,optional"`
	// HostKey is the authorized_keys line of the node's host key.
	HostKey string `pulumi:"hostKey"`
}

// KnownHostState records the file the pin went into.
type KnownHostState struct {
	KnownHostArgs
	// File is the known_hosts file that holds the pin.
	File string `pulumi:"file"`
}

// KnownHostInputs are KnownHostArgs as Pulumi inputs.
type KnownHostInputs struct {
	Host    pulumi.StringInput
	Port    pulumi.IntInput
	HostKey pulumi.StringInput
}

func (KnownHostInputs) ElementType() reflect.Type { return reflect.TypeFor[KnownHostArgs]() }

// KnownHostResource is a registered KnownHost.
type KnownHostResource struct {
	pulumi.CustomResourceState
}

// TalosNodeVersion

// TalosNodeVersionArgs are the node, its desired version, and the cluster
// the health gates check.
type TalosNodeVersionArgs struct {
	// Hostname is the node's name.
	Hostname string `pulumi:"hostname"`
	// Address is the node's address, where its Talos API answers.
	Address string `pulumi:"address"`
	// ControlPlane says the node is a control plane.
	ControlPlane bool `pulumi:"controlPlane,optional"`
	// TalosVersion (vX.Y.Z) is what the node must run; InstallerImage the
	// installer that carries it (its tag is the version).
	TalosVersion   string `pulumi:"talosVersion"`
	InstallerImage string `pulumi:"installerImage"`
	// Talosconfig is the cluster's client configuration.
	Talosconfig string `pulumi:"talosconfig" provider:"secret"`
	// Cluster is every declared node: all must answer, and the control
	// planes must be exactly etcd's members, before and after an upgrade.
	Cluster []TalosNodeVersionPeer `pulumi:"cluster"`
	// TimeoutSeconds bounds each wait (default 900).
	TimeoutSeconds int `pulumi:"timeoutSeconds,optional"`
	// PollSeconds is the interval between checks (default 5).
	PollSeconds int `pulumi:"pollSeconds,optional"`
	// SyncManifests is set on the roll's last node: after it converges,
	// the bootstrap manifests the new release renders (Flannel's image
	// comes with Talos) are applied (day2.SyncManifests).
	SyncManifests bool `pulumi:"syncManifests,optional"`
}

// TalosNodeVersionPeer is one declared node, as the health gates see it.
type TalosNodeVersionPeer struct {
	// Hostname is the node's name.
	Hostname string `pulumi:"hostname"`
	// Address is the node's address on the internal network.
	Address string `pulumi:"address"`
	// ControlPlane says the node is a control plane.
	ControlPlane bool `pulumi:"controlPlane,optional"`
}

// TalosNodeVersionState adds what the node reported.
type TalosNodeVersionState struct {
	TalosNodeVersionArgs
	// RunningVersion is the version the node reported after the last
	// create, update or refresh.
	RunningVersion string `pulumi:"runningVersion"`
}

// TalosNodeVersionInputs are TalosNodeVersionArgs as Pulumi inputs.
type TalosNodeVersionInputs struct {
	Hostname       pulumi.StringInput
	Address        pulumi.StringInput
	ControlPlane   pulumi.BoolInput
	TalosVersion   pulumi.StringInput
	InstallerImage pulumi.StringInput
	Talosconfig    pulumi.StringInput
	Cluster        TalosNodeVersionPeerArray
	TimeoutSeconds pulumi.IntInput
	PollSeconds    pulumi.IntInput
	SyncManifests  pulumi.BoolInput
}

func (TalosNodeVersionInputs) ElementType() reflect.Type {
	return reflect.TypeFor[TalosNodeVersionArgs]()
}

// TalosNodeVersionPeerInputs is a TalosNodeVersionPeer as Pulumi inputs.
type TalosNodeVersionPeerInputs struct {
	Hostname     pulumi.StringInput
	Address      pulumi.StringInput
	ControlPlane pulumi.BoolInput
}

func (TalosNodeVersionPeerInputs) ElementType() reflect.Type {
	return reflect.TypeFor[TalosNodeVersionPeer]()
}

// TalosNodeVersionPeerArray is a []TalosNodeVersionPeer as Pulumi inputs.
type TalosNodeVersionPeerArray []TalosNodeVersionPeerInputs

func (TalosNodeVersionPeerArray) ElementType() reflect.Type {
	return reflect.TypeFor[[]TalosNodeVersionPeer]()
}

// TalosNodeVersionResource is a registered TalosNodeVersion.
type TalosNodeVersionResource struct {
	pulumi.CustomResourceState
	RunningVersion pulumi.StringOutput `pulumi:"runningVersion"`
}

// KubernetesVersion

// KubernetesVersionArgs are the version and what the roll needs: each
// node's configuration as its ConfigurationApply builds it (the role's
// generated configuration and the node's patches), and the credentials.
type KubernetesVersionArgs struct {
	// ClusterName is the Kubernetes cluster's name.
	ClusterName string `pulumi:"clusterName"`
	// KubernetesVersion (vX.Y.Z) is the release the cluster must run.
	KubernetesVersion string `pulumi:"kubernetesVersion"`
	// ControlPlaneConfiguration and WorkerConfiguration are the roles'
	// generated machine configurations (secret).
	ControlPlaneConfiguration string `pulumi:"controlPlaneConfiguration" provider:"secret"`
	WorkerConfiguration       string `pulumi:"workerConfiguration,optional" provider:"secret"`
	// Nodes are the declared nodes with their own patches.
	Nodes []KubernetesVersionNode `pulumi:"nodes"`
	// Talosconfig is the cluster's client configuration.
	Talosconfig string `pulumi:"talosconfig" provider:"secret"`
	// TimeoutSeconds bounds each wait (default 900); PollSeconds is the
	// interval between health checks (default 5).
	TimeoutSeconds int `pulumi:"timeoutSeconds,optional"`
	PollSeconds    int `pulumi:"pollSeconds,optional"`
}

// KubernetesVersionNode is one declared node and its own machine-config
// patches, applied after its role's configuration.
type KubernetesVersionNode struct {
	// Hostname is the node's name.
	Hostname string `pulumi:"hostname"`
	// Address is the node's address on the internal network.
	Address string `pulumi:"address"`
	// ControlPlane says the node is a control plane.
	ControlPlane bool `pulumi:"controlPlane,optional"`
	// ConfigPatches are the node's own machine-config patches.
	ConfigPatches []string `pulumi:"configPatches,optional"`
}

// KubernetesVersionState is what the last create or update recorded: the
// version and the roles' configurations the nodes run, the old side of the
// next roll. (Its node list and credentials may be older: a run that only
// adds or removes nodes is no update of this resource.)
type KubernetesVersionState struct {
	KubernetesVersionArgs
}

// KubernetesVersionInputs are KubernetesVersionArgs as Pulumi inputs.
type KubernetesVersionInputs struct {
	ClusterName               pulumi.StringInput
	KubernetesVersion         pulumi.StringInput
	ControlPlaneConfiguration pulumi.StringInput
	WorkerConfiguration       pulumi.StringInput
	Nodes                     KubernetesVersionNodeArray
	Talosconfig               pulumi.StringInput
	TimeoutSeconds            pulumi.IntInput
	PollSeconds               pulumi.IntInput
}

func (KubernetesVersionInputs) ElementType() reflect.Type {
	return reflect.TypeFor[KubernetesVersionArgs]()
}

// KubernetesVersionNodeInputs is a KubernetesVersionNode as Pulumi inputs.
type KubernetesVersionNodeInputs struct {
	Hostname      pulumi.StringInput
	Address       pulumi.StringInput
	ControlPlane  pulumi.BoolInput
	ConfigPatches pulumi.StringArrayInput
}

func (KubernetesVersionNodeInputs) ElementType() reflect.Type {
	return reflect.TypeFor[KubernetesVersionNode]()
}

// KubernetesVersionNodeArray is a []KubernetesVersionNode as Pulumi inputs.
type KubernetesVersionNodeArray []KubernetesVersionNodeInputs

func (KubernetesVersionNodeArray) ElementType() reflect.Type {
	return reflect.TypeFor[[]KubernetesVersionNode]()
}

// KubernetesVersionResource is a registered KubernetesVersion.
type KubernetesVersionResource struct {
	pulumi.CustomResourceState
}

// ClusterMembers

// ClusterMembersArgs are the declared nodes and the credentials.
type ClusterMembersArgs struct {
	// ClusterName is the Kubernetes cluster's name.
	ClusterName string `pulumi:"clusterName"`
	// Nodes are the declared nodes: the members the cluster must have.
	Nodes []TalosNodeVersionPeer `pulumi:"nodes"`
	// Talosconfig and Kubeconfig are the cluster's client configurations.
	Talosconfig string `pulumi:"talosconfig" provider:"secret"`
	Kubeconfig  string `pulumi:"kubeconfig" provider:"secret"`
	// TimeoutSeconds bounds each wait (default 900): the Kubernetes API
	// answering after the bootstrap, one node's reset. PollSeconds is the
	// interval between checks (default 5).
	TimeoutSeconds int `pulumi:"timeoutSeconds,optional"`
	PollSeconds    int `pulumi:"pollSeconds,optional"`
}

// ClusterMembersState records the declaration the cluster was made to
// match: the next update takes leaving nodes' addresses from it.
type ClusterMembersState struct {
	ClusterMembersArgs
	// Members are the declared node names, sorted.
	Members []string `pulumi:"members"`
	// Removed are the members the last create or update removed.
	Removed []string `pulumi:"removed"`
}

// ClusterMembersInputs are ClusterMembersArgs as Pulumi inputs.
type ClusterMembersInputs struct {
	ClusterName    pulumi.StringInput
	Nodes          TalosNodeVersionPeerArray
	Talosconfig    pulumi.StringInput
	Kubeconfig     pulumi.StringInput
	TimeoutSeconds pulumi.IntInput
	PollSeconds    pulumi.IntInput
}

func (ClusterMembersInputs) ElementType() reflect.Type {
	return reflect.TypeFor[ClusterMembersArgs]()
}

// ClusterMembersResource is a registered ClusterMembers.
type ClusterMembersResource struct {
	pulumi.CustomResourceState
	// Members are the declared node names: unknown in a preview that
	// changes them, so what reads it waits for the up.
	Members pulumi.StringArrayOutput `pulumi:"members"`
}

// NodeDrain and NodeReady

// NodeRestartArgs are the node, what restarts it, and what the gates need
// (NodeDrain's and NodeReady's inputs alike).
type NodeRestartArgs struct {
	// ClusterName is the Kubernetes cluster's name.
	ClusterName string `pulumi:"clusterName"`
	// Hostname is the node's name.
	Hostname string `pulumi:"hostname"`
	// Address is the node's address on the internal network.
	Address string `pulumi:"address"`
	// ControlPlane says the node is a control plane.
	ControlPlane bool `pulumi:"controlPlane,optional"`
	// RestartSpec is the node's settings whose change restarts it; a new
	// value is a restart to roll.
	RestartSpec string `pulumi:"restartSpec"`
	// Cluster is every declared node (the health gates check them all).
	Cluster []TalosNodeVersionPeer `pulumi:"cluster"`
	// Talosconfig is the cluster's client configuration.
	Talosconfig string `pulumi:"talosconfig" provider:"secret"`
	// WorkerParallelism is how many workers restart at once (default 1).
	WorkerParallelism int `pulumi:"workerParallelism,optional"`
	// TimeoutSeconds bounds each wait (default 900); PollSeconds is the
	// interval between checks (default 5).
	TimeoutSeconds int `pulumi:"timeoutSeconds,optional"`
	PollSeconds    int `pulumi:"pollSeconds,optional"`
	// Rebuild, changed, is a rebuild of the node: NodeDrain removes it
	// from the cluster before its VM is replaced, NodeReady waits for it
	// to join again.
	Rebuild int `pulumi:"rebuild,optional"`
}

// NodeRestartState is what the last run recorded.
type NodeRestartState struct {
	NodeRestartArgs
}

// NodeRestartInputs are NodeRestartArgs as Pulumi inputs.
type NodeRestartInputs struct {
	ClusterName       pulumi.StringInput
	Hostname          pulumi.StringInput
	Address           pulumi.StringInput
	ControlPlane      pulumi.BoolInput
	RestartSpec       pulumi.StringInput
	Cluster           TalosNodeVersionPeerArray
	Talosconfig       pulumi.StringInput
	WorkerParallelism pulumi.IntInput
	TimeoutSeconds    pulumi.IntInput
	PollSeconds       pulumi.IntInput
	Rebuild           pulumi.IntInput
}

func (NodeRestartInputs) ElementType() reflect.Type { return reflect.TypeFor[NodeRestartArgs]() }

// NodeRestartResource is a registered NodeDrain or NodeReady.
type NodeRestartResource struct {
	pulumi.CustomResourceState
}
