package components

import (
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components/pluginapi"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/grammar"
)

// The custom resources SDA's own plugin (pulumi-resource-sda, provider/)
// serves, as TalosCluster and TalosNode register them. Their inputs and
// outputs are defined once, in package pluginapi: the plugin decodes
// pluginapi.XArgs, and the components register pluginapi.XInputs, whose
// property names and types the Pulumi SDK takes from XArgs.

// KnownHostType pins a Proxmox node's SSH host key in the deployer's
// ~/.ssh/known_hosts, a custom resource served by SDA's plugin
// (provider/known_host.go).
const KnownHostType = pluginapi.KnownHostToken

// pinHostKeys registers one KnownHost per pinned Proxmox node (keys
// checked by NewTalosCluster) and makes each node's image ID wait for its
// pin, so the disk import that uses the image connects only after the key
// is in place.
func pinHostKeys(ctx *pulumi.Context, name string, keys []ProxmoxHostKeyArgs, images map[string]pulumi.StringOutput, parent pulumi.ResourceOption) error {
	for _, k := range keys {
		key, _ := grammar.SSHHostKey(k.HostKey)
		img, ok := images[k.Node]
		if !ok {
			continue // no VM of this cluster imports a disk there
		}
		var pin pluginapi.KnownHostResource
		if err := ctx.RegisterResource(KnownHostType, name+"-known-host-"+k.Node, pluginapi.KnownHostInputs{
			Host: pulumi.String(k.Address), Port: pulumi.Int(k.Port), HostKey: pulumi.String(key),
		}, &pin, parent); err != nil {
			return err
		}
		images[k.Node] = pulumi.All(img, pin.ID()).ApplyT(func(v []any) string { return v[0].(string) }).(pulumi.StringOutput)
	}
	return nil
}

// TalosNodeVersionType is the Talos version a node runs, a custom resource
// served by SDA's own plugin (pulumi-resource-sda, provider/): creating or
// updating it upgrades the node in place through the Talos API when it runs
// another version, gated on the cluster's health (internal/day2).
const TalosNodeVersionType = pluginapi.TalosNodeVersionToken

// nodeInput is a declared node as the plugin's resources take it.
func nodeInput(n TalosNodeSpec) pluginapi.TalosNodeVersionPeerInputs {
	return pluginapi.TalosNodeVersionPeerInputs{Hostname: pulumi.String(n.Hostname), Address: pulumi.String(n.Address),
		ControlPlane: pulumi.Bool(n.Role == RoleControlPlane)}
}

// nodeInputs are declared nodes as the plugin's resources take them.
func nodeInputs(specs []TalosNodeSpec) pluginapi.TalosNodeVersionPeerArray {
	peers := pluginapi.TalosNodeVersionPeerArray{}
	for _, n := range specs {
		peers = append(peers, nodeInput(n))
	}
	return peers
}

// nodeVersions registers each node's TalosNodeVersion, chained so that the
// engine rolls a version change: control planes one at a time in order,
// then the workers, WorkerParallelism at a time, each after every control
// plane. They wait for after (the bootstrap, and the membership step, so
// that the health gates see exactly the declared nodes) and for each
// node's configuration (which carries the new installer). New VMs boot the
// new image, run the version already, and are left alone.
// nodes and specs are in the same order: control planes, then workers.
func nodeVersions(ctx *pulumi.Context, name string, nodes []*TalosNode, specs []TalosNodeSpec, args *TalosClusterArgs, schematicID pulumi.StringOutput,
	talosconfig pulumi.StringOutput, after []pulumi.Resource) (pulumi.StringMapOutput, error) {
	up := args.upgradeSettings()
	parallel := up.WorkerParallelism
	if parallel < 1 {
		parallel = 1
	}
	installer := schematicID.ApplyT(func(id string) string {
		return talospatch.InstallerImage(id, args.TalosVersion)
	}).(pulumi.StringOutput)
	peers := nodeInputs(specs)
	versions := pulumi.StringMap{}
	lastCP := -1 // the control plane whose upgrade ends the control planes' roll
	for i, spec := range specs {
		if spec.Role == RoleControlPlane {
			lastCP = i
		}
	}
	var lastControlPlane pulumi.Resource
	var workerChains []pulumi.Resource // the last worker of each chain
	for i, node := range nodes {
		spec := specs[i]
		deps := append([]pulumi.Resource{node.Applied}, after...)
		if spec.Role == RoleControlPlane {
			if lastControlPlane != nil {
				deps = append(deps, lastControlPlane)
			}
		} else {
			w := len(workerChains)
			if w >= parallel {
				deps = append(deps, workerChains[w-parallel])
			} else if lastControlPlane != nil {
				deps = append(deps, lastControlPlane)
			}
		}
		var v pluginapi.TalosNodeVersionResource
		err := ctx.RegisterResource(TalosNodeVersionType, nodeResourceName(name, spec.Hostname)+"-version", pluginapi.TalosNodeVersionInputs{
			Hostname:       pulumi.String(spec.Hostname),
			Address:        pulumi.String(spec.Address),
			ControlPlane:   pulumi.Bool(spec.Role == RoleControlPlane),
			TalosVersion:   pulumi.String(args.TalosVersion),
			InstallerImage: installer,
			Talosconfig:    pulumi.ToSecret(talosconfig).(pulumi.StringOutput),
			Cluster:        peers,
			TimeoutSeconds: pulumi.Int(up.TimeoutSeconds),
			PollSeconds:    pulumi.Int(up.PollSeconds),
			// The control planes render the bootstrap manifests: once the
			// last is on the new release, they are synced.
			SyncManifests: pulumi.Bool(i == lastCP),
		}, &v, pulumi.Parent(node), pulumi.DependsOn(deps),
			pulumi.AdditionalSecretOutputs([]string{"talosconfig"}))
		if err != nil {
			return pulumi.StringMapOutput{}, err
		}
		if spec.Role == RoleControlPlane {
			lastControlPlane = &v
		} else {
			workerChains = append(workerChains, &v)
		}
		versions[spec.Hostname] = v.RunningVersion
	}
	return versions.ToStringMapOutput(), nil
}

// KubernetesVersionType is the Kubernetes release a cluster runs, a custom
// resource served by SDA's plugin: its update rolls a new version over the
// running nodes in `talosctl upgrade-k8s`'s order (internal/day2).
const KubernetesVersionType = pluginapi.KubernetesVersionToken

// kubernetesVersion registers the cluster's KubernetesVersion with what its
// roll needs: each node's configuration as its apply builds it (the role's
// configuration and the node's patches) and the talosconfig.
func kubernetesVersion(ctx *pulumi.Context, name string, specs []TalosNodeSpec, args *TalosClusterArgs,
	configs map[string]pulumi.StringOutput, patches map[string]pulumi.StringArrayOutput,
	talosconfig pulumi.StringOutput, parent pulumi.Resource) (pulumi.Resource, error) {
	up := args.upgradeSettings()
	nodes := pluginapi.KubernetesVersionNodeArray{}
	for _, n := range specs {
		peer := nodeInput(n)
		nodes = append(nodes, pluginapi.KubernetesVersionNodeInputs{Hostname: peer.Hostname, Address: peer.Address,
			ControlPlane: peer.ControlPlane, ConfigPatches: patches[n.Hostname]})
	}
	in := pluginapi.KubernetesVersionInputs{
		ClusterName:               pulumi.String(args.ClusterName),
		KubernetesVersion:         pulumi.String("v" + strings.TrimPrefix(args.KubernetesVersion, "v")),
		ControlPlaneConfiguration: pulumi.ToSecret(configs[RoleControlPlane]).(pulumi.StringOutput),
		Nodes:                     nodes,
		Talosconfig:               pulumi.ToSecret(talosconfig).(pulumi.StringOutput),
		TimeoutSeconds:            pulumi.Int(up.TimeoutSeconds),
		PollSeconds:               pulumi.Int(up.PollSeconds),
	}
	if c, ok := configs[RoleWorker]; ok {
		in.WorkerConfiguration = pulumi.ToSecret(c).(pulumi.StringOutput)
	}
	var v pluginapi.KubernetesVersionResource
	err := ctx.RegisterResource(KubernetesVersionType, name+"-kubernetes", in, &v, pulumi.Parent(parent),
		pulumi.AdditionalSecretOutputs([]string{"controlPlaneConfiguration", "workerConfiguration", "talosconfig"}))
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// ClusterMembersType is the set of nodes a cluster's members must be, a
// custom resource served by SDA's plugin (provider/cluster_members.go): its
// create and update remove every Kubernetes Node and etcd member the stack
// does not declare through the Talos and Kubernetes APIs, workers first,
// control planes one at a time, refusing a removal etcd's quorum cannot
// survive (also in preview).
const ClusterMembersType = pluginapi.ClusterMembersToken

// clusterMembersResource is a registered ClusterMembers; its Members
// output (the declared node names) is unknown in a preview that changes
// them, so what reads it waits for the up.
type clusterMembersResource = pluginapi.ClusterMembersResource

// clusterMembers registers the cluster's ClusterMembers after deps (the
// bootstrap and the kubeconfig).
func clusterMembers(ctx *pulumi.Context, name string, args *TalosClusterArgs, specs []TalosNodeSpec,
	talosconfig, kubeconfig pulumi.StringOutput, parent pulumi.Resource, deps []pulumi.Resource) (*clusterMembersResource, error) {
	up := args.upgradeSettings()
	var r clusterMembersResource
	err := ctx.RegisterResource(ClusterMembersType, name+"-members", pluginapi.ClusterMembersInputs{
		ClusterName:    pulumi.String(args.ClusterName),
		Nodes:          nodeInputs(specs),
		Talosconfig:    pulumi.ToSecret(talosconfig).(pulumi.StringOutput),
		Kubeconfig:     pulumi.ToSecret(kubeconfig).(pulumi.StringOutput),
		TimeoutSeconds: pulumi.Int(up.TimeoutSeconds),
		PollSeconds:    pulumi.Int(up.PollSeconds),
	}, &r, pulumi.Parent(parent), pulumi.DependsOn(deps),
		pulumi.AdditionalSecretOutputs([]string{"talosconfig", "kubeconfig"}))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// NodeDrainType and NodeReadyType are the two halves of a rolled restart,
// custom resources served by SDA's plugin (provider/node_restart.go).
const (
	NodeDrainType = pluginapi.NodeDrainToken
	NodeReadyType = pluginapi.NodeReadyToken
)

// nodeRestartInputs are NodeDrain's and NodeReady's inputs.
type nodeRestartInputs = pluginapi.NodeRestartInputs

// drain registers the node's NodeDrain, which the VM waits for, when the
// node rolls its restarts with a cluster.
func (n *nodeBuild) drain() error {
	n.vmAfter = n.args.VMAfter
	r := n.args.Roll
	if r == nil {
		return nil
	}
	m := n.args.Node
	n.roll = &nodeRestartInputs{
		ClusterName: pulumi.String(r.ClusterName), Hostname: pulumi.String(m.Hostname),
		Address: pulumi.String(m.Address), ControlPlane: pulumi.Bool(m.Role == RoleControlPlane),
		RestartSpec: n.restartSpec(), Cluster: nodeInputs(r.Cluster), Talosconfig: pulumi.ToSecret(r.Talosconfig).(pulumi.StringOutput),
		WorkerParallelism: pulumi.Int(r.WorkerParallelism), TimeoutSeconds: pulumi.Int(r.TimeoutSeconds),
		PollSeconds: pulumi.Int(r.PollSeconds), Rebuild: pulumi.Int(m.Rebuild),
	}
	var drain pluginapi.NodeRestartResource
	if err := n.ctx.RegisterResource(NodeDrainType, n.name+"-drain", *n.roll, &drain, n.parent,
		pulumi.AdditionalSecretOutputs([]string{"talosconfig"})); err != nil {
		return err
	}
	n.vmAfter = append(slices.Clip(n.vmAfter), &drain)
	return nil
}

// ready registers the node's NodeReady after the VM and the apply, when
// it rolls its restarts: everything that reads the node's address (the
// cluster's health checks) waits for it to be back and uncordoned.
func (n *nodeBuild) ready() error {
	n.addressAfter = []any{n.machineVM.ID()}
	if n.roll == nil {
		return nil
	}
	var ready pluginapi.NodeRestartResource
	if err := n.ctx.RegisterResource(NodeReadyType, n.name+"-ready", *n.roll, &ready, n.parent,
		pulumi.DependsOn([]pulumi.Resource{n.machineVM, n.applied}),
		pulumi.AdditionalSecretOutputs([]string{"talosconfig"})); err != nil {
		return err
	}
	n.addressAfter = append(n.addressAfter, ready.ID())
	return nil
}
