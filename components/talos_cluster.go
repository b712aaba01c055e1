package components

import (
	"fmt"
	"slices"
	"strings"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/client"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/cluster"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/imagefactory"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/components/talospatch"
)

// TalosClusterArgs describes the cluster: plain values a program can fill
// in by hand, no SDA stack configuration needed.
type TalosClusterArgs struct {
	// ClusterName is the Kubernetes cluster's name.
	ClusterName string `pulumi:"clusterName"`
	// TalosVersion (vX.Y.Z) is the release of the boot image and installer;
	// KubernetesVersion (vX.Y.Z or X.Y.Z) the Kubernetes Talos installs.
	TalosVersion      string `pulumi:"talosVersion"`
	KubernetesVersion string `pulumi:"kubernetesVersion"`
	// Extensions are Image Factory system extensions baked into the image
	// (e.g. siderolabs/qemu-guest-agent).
	Extensions []string `pulumi:"extensions,optional"`

	// Nodes are the VMs, at least one control plane. The first control
	// plane is bootstrapped; control planes' VMs are updated one at a time,
	// in this order. A node's component is named after its hostname
	// (prefixed with the cluster component's name unless it already is).
	Nodes []TalosNodeSpec `pulumi:"nodes"`
	// Network is the internal network the nodes are on.
	Network TalosNetworkArgs `pulumi:"network"`
	// PodCIDR and ServiceCIDR are Kubernetes' own networks ("" takes
	// Talos's defaults, 10.244.0.0/16 and 10.96.0.0/12).
	PodCIDR     string `pulumi:"podCidr,optional"`
	ServiceCIDR string `pulumi:"serviceCidr,optional"`
	// CertSANs are names on the API server certificate beyond the address
	// the cluster uses itself (the VIP, else the first control plane), such
	// as a router's external address that forwards the API.
	CertSANs []string `pulumi:"certSans,optional"`
	// Patches are machine-config patches applied to every node, in order,
	// after SDA's own cluster patches (KubePrism, certificate names, the
	// Kubernetes networks, scheduling on control planes without workers)
	// and before each node's own (hostname, install, network): a CNI's
	// patch, a user's sysctls. talospatch.MachinePatches is the whole list.
	Patches []TalosPatch `pulumi:"patches,optional"`

	// Datastore holds the VMs' disks; ImageDatastore (content iso) the
	// downloaded Talos image: once per Proxmox node, or once for the
	// cluster when SharedImageDatastore says it is shared storage.
	Datastore            string `pulumi:"datastore"`
	ImageDatastore       string `pulumi:"imageDatastore"`
	SharedImageDatastore bool   `pulumi:"sharedImageDatastore,optional"`
	// DiskInterface is "scsi" (default) or "virtio"; CPUType must offer
	// x86-64-v2 (default "host").
	DiskInterface string `pulumi:"diskInterface,optional"`
	CPUType       string `pulumi:"cpuType,optional"`
	// Bridge is the bridge the VMs attach to on every Proxmox node.
	// Bridges, by Proxmox node, takes precedence where it has an entry:
	// pass InternalNetwork.BridgeOn(node) so a VM waits for its node's
	// bridge.
	Bridge  pulumi.StringInput    `pulumi:"bridge,optional"`
	Bridges pulumi.StringMapInput `pulumi:"bridges,optional"`

	// ApplyAfter are resources every configuration apply waits for, such as
	// the configured router through which nodes pull their installer image.
	// Go programs only; WaitFor is the same for every language.
	ApplyAfter []pulumi.Resource
	// Upgrade sets how a change of TalosVersion or Extensions rolls over the
	// running nodes (see TalosNodeVersionType); its timeouts also bound the
	// steps of a KubernetesVersion roll (see KubernetesVersionType).
	Upgrade *TalosUpgradeArgs `pulumi:"upgrade,optional"`

	// WaitFor are values every configuration apply waits for, such as
	// RouterLXC's configDigest: an output resolves only once its resource
	// is done.
	WaitFor pulumi.StringArrayInput `pulumi:"waitFor,optional"`

	// ProxmoxHostKeys pin the SSH host keys of the Proxmox nodes the VMs'
	// disks are imported on: the Proxmox provider has no host-key setting
	// and trusts an unknown host on first use, so each key is written to
	// ~/.ssh/known_hosts (KnownHostType) before that node's VMs are
	// created. A node without an entry is left to the provider's own rule.
	ProxmoxHostKeys []ProxmoxHostKeyArgs `pulumi:"proxmoxHostKeys,optional"`
}

// ProxmoxHostKeyArgs is one Proxmox node's SSH address and pinned key, as
// the Proxmox provider reaches it (its ssh.nodes setting).
type ProxmoxHostKeyArgs struct {
	// Node is the Proxmox node's name.
	Node string `pulumi:"node"`
	// Address and Port are where the provider's SSH client connects
	// (default port 22).
	Address string `pulumi:"address"`
	Port    int    `pulumi:"port,optional"`
	// HostKey is the line of the node's /etc/ssh/ssh_host_ed25519_key.pub.
	HostKey string `pulumi:"hostKey"`
}

// TalosUpgradeArgs tune the rolling upgrade.
type TalosUpgradeArgs struct {
	// WorkerParallelism is how many workers upgrade at once (default 1).
	// Control planes always upgrade one at a time.
	WorkerParallelism int `pulumi:"workerParallelism,optional"`
	// TimeoutSeconds bounds each wait of an upgrade: the cluster becoming
	// healthy, a node coming back on the new version (default 900).
	TimeoutSeconds int `pulumi:"timeoutSeconds,optional"`
	// PollSeconds is the interval between health checks (default 5).
	PollSeconds int `pulumi:"pollSeconds,optional"`
}

// TalosPatch is one named Talos machine-config patch (a YAML strategic
// merge patch or JSON6902 document). The name says where it comes from.
type TalosPatch struct {
	// Name says where the patch comes from.
	Name string `pulumi:"name"`
	// Content is the patch: a YAML strategic merge patch or a JSON6902 document.
	Content string `pulumi:"content"`
}

// TalosCluster is a Talos Kubernetes cluster of Proxmox VMs.
type TalosCluster struct {
	pulumi.ResourceState

	// ClusterName is the Kubernetes cluster's name.
	ClusterName pulumi.StringOutput `pulumi:"clusterName"`
	// KubernetesEndpoint is the API URL: the VIP when set, else the first
	// control plane.
	KubernetesEndpoint pulumi.StringOutput `pulumi:"kubernetesEndpoint"`
	// Kubeconfig and Talosconfig are secret.
	Kubeconfig  pulumi.StringOutput `pulumi:"kubeconfig" provider:"secret"`
	Talosconfig pulumi.StringOutput `pulumi:"talosconfig" provider:"secret"`
	// SchematicID is the Image Factory schematic of the nodes' image and
	// installer (its extensions).
	SchematicID pulumi.StringOutput `pulumi:"schematicId"`
	// ControlPlaneAddresses and WorkerAddresses resolve once every node's
	// configuration is applied.
	ControlPlaneAddresses pulumi.StringArrayOutput `pulumi:"controlPlaneAddresses"`
	WorkerAddresses       pulumi.StringArrayOutput `pulumi:"workerAddresses"`
	// TalosHealthy resolves when Talos and etcd report healthy; the
	// Kubernetes checks run after the CNI is in (OverlayNetwork).
	TalosHealthy pulumi.BoolOutput `pulumi:"talosHealthy"`
	// TalosVersions are the Talos versions the nodes run, by hostname, as
	// each reported after its last create, update or refresh.
	TalosVersions pulumi.StringMapOutput `pulumi:"talosVersions"`

	// ClientConfiguration is the Talos API client's CA, certificate and
	// key (secret): OverlayNetwork's health checks use it.
	ClientConfiguration machine.ClientConfigurationOutput `pulumi:"clientConfiguration" provider:"secret"`

	Secrets   *machine.Secrets
	Bootstrap *machine.Bootstrap
	Nodes     []*TalosNode
}

// NewTalosCluster creates the secrets, the image, every node, bootstraps
// the first control plane once, and fetches kubeconfig and talosconfig.
// It reads as its steps, in the order the cluster comes up.
func NewTalosCluster(ctx *pulumi.Context, name string, args *TalosClusterArgs, opts ...pulumi.ResourceOption) (*TalosCluster, error) {
	if args == nil {
		return nil, fmt.Errorf("TalosCluster %s: args are required", name)
	}
	s, err := args.validate()
	if err != nil {
		return nil, fmt.Errorf("TalosCluster %s: %w", name, err)
	}
	comp := &TalosCluster{}
	if err := ctx.RegisterComponentResource(TalosClusterType, name, comp, opts...); err != nil {
		return nil, err
	}
	b := &clusterBuild{ctx: ctx, name: name, args: args, spec: s, ordered: orderedArgs(s), comp: comp, parent: pulumi.Parent(comp)}
	for _, step := range []func() error{
		b.secrets,            // the machine secrets, protected
		b.schematic,          // the Image Factory schematic of the extensions
		b.images,             // the boot image on each Proxmox node, after its host key is pinned
		b.roleConfigurations, // each role's configuration with the cluster's patches
		b.nodePatches,        // each node's own patches, with the installer
		b.talosconfig,        // the client configuration for the Talos API
		b.kubernetesVersion,  // the Kubernetes roll, before any apply
		b.nodes,              // every VM and its configuration apply
		b.bootstrap,          // etcd on the first control plane, and the kubeconfig
		b.members,            // the cluster's members made the declared nodes
		b.versions,           // each node's Talos version, rolled
		b.health,             // Talos, etcd and the Node objects healthy
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return comp, b.outputs()
}

// clusterBuild carries what NewTalosCluster's steps hand to each other.
type clusterBuild struct {
	ctx  *pulumi.Context
	name string
	args *TalosClusterArgs
	spec spec.Cluster
	// ordered are the nodes, control planes first, as Args.
	ordered []TalosNodeSpec
	comp    *TalosCluster
	parent  pulumi.ResourceOrInvokeOption

	clientConfig  machine.ClientConfigurationOutput
	schematicID   pulumi.StringOutput
	imageOf       map[string]pulumi.StringOutput // by Proxmox node
	configs       map[string]pulumi.StringOutput // by role
	patchesOf     map[string]pulumi.StringArrayOutput
	talosconfigV  pulumi.StringOutput
	applyAfter    []pulumi.Resource
	cpAddrs       []pulumi.StringInput
	workerAddrs   []pulumi.StringInput
	kubeconfigRaw pulumi.StringOutput
	afterUp       []pulumi.Resource // the bootstrap and the kubeconfig
	membersRes    *clusterMembersResource
	versionsOut   pulumi.StringMapOutput
	healthy       pulumi.BoolOutput
}

// secrets creates the cluster's machine secrets. Losing them orphans every
// node: they can never be replaced by accident. docs/engine.md says how to
// remove them deliberately.
func (b *clusterBuild) secrets() error {
	secrets, err := machine.NewSecrets(b.ctx, b.name+"-secrets", &machine.SecretsArgs{
		TalosVersion: pulumi.String(b.spec.TalosVersion),
	}, b.parent,
		pulumi.Protect(true),
		pulumi.AdditionalSecretOutputs([]string{"machineSecrets", "clientConfiguration"}))
	if err != nil {
		return err
	}
	b.comp.Secrets = secrets
	b.clientConfig = secrets.ClientConfiguration
	return nil
}

// schematic posts the extensions' schematic to Image Factory.
//
// The schematic's ID is computed here, the way Image Factory computes it,
// not read from the resource: the provider updates a changed schematic in
// place (it posts the new one) but a Pulumi update cannot change a
// resource's ID, so schematic.ID() would keep naming the old extensions
// forever. The value still flows through the resource's posted schematic,
// so the image and installer wait for the factory to know it.
func (b *clusterBuild) schematic() error {
	schematicYAML := talospatch.SchematicYAML(b.spec.Extensions)
	wantID, err := talospatch.SchematicID(schematicYAML)
	if err != nil {
		return fmt.Errorf("TalosCluster %s: %w", b.name, err)
	}
	schematic, err := imagefactory.NewSchematic(b.ctx, b.name+"-schematic", &imagefactory.SchematicArgs{
		Schematic: pulumi.String(schematicYAML),
	}, b.parent)
	if err != nil {
		return err
	}
	b.schematicID = schematic.Schematic.ApplyT(func(*string) string { return wantID }).(pulumi.StringOutput)
	return nil
}

// images downloads the boot image once per Proxmox node, or once for the
// cluster on shared storage, and pins each node's SSH host key before
// its disks are imported.
func (b *clusterBuild) images() error {
	s := b.spec
	b.imageOf = map[string]pulumi.StringOutput{}
	var imageNodes []string
	for _, n := range s.Nodes {
		if !slices.Contains(imageNodes, n.ProxmoxNode) {
			imageNodes = append(imageNodes, n.ProxmoxNode)
		}
	}
	for i, node := range imageNodes {
		if s.SharedImageDatastore && i > 0 {
			b.imageOf[node] = b.imageOf[imageNodes[0]]
			continue
		}
		resName := b.name + "-image-" + node
		if s.SharedImageDatastore {
			resName = b.name + "-image"
		}
		img, err := download.NewFile(b.ctx, resName, &download.FileArgs{
			NodeName:    pulumi.String(node),
			DatastoreId: pulumi.String(s.ImageDatastore),
			ContentType: pulumi.String("iso"),
			Url: b.schematicID.ApplyT(func(id string) string {
				return talospatch.NocloudImageURL(id, s.TalosVersion)
			}).(pulumi.StringOutput),
			FileName: b.schematicID.ApplyT(func(id string) string {
				// The cluster name keeps two stacks on one Proxmox node from
				// managing (and deleting) the same file.
				return fmt.Sprintf("talos-%s-%s-%s-nocloud-amd64.img", s.ClusterName, s.TalosVersion, id[:12])
			}).(pulumi.StringOutput),
			DecompressionAlgorithm: pulumi.String(talospatch.NocloudImageDecompression),
			Overwrite:              pulumi.Bool(false),
			// The name is this cluster's own: a file a killed run
			// downloaded outside the state is replaced, not refused.
			OverwriteUnmanaged: pulumi.Bool(true),
		}, b.parent)
		if err != nil {
			return err
		}
		b.imageOf[node] = img.ID().ToStringOutput()
	}
	return pinHostKeys(b.ctx, b.name, b.args.ProxmoxHostKeys, b.imageOf, b.parent)
}

// roleConfigurations generates each role's configuration with the
// cluster's patches; each node's own follow in its configuration apply
// (talospatch.MachinePatches).
func (b *clusterBuild) roleConfigurations() error {
	s := b.spec
	rolePatches := talospatch.Contents(talospatch.ClusterPatches(s.PatchCluster("")))
	roleConfig := func(role string) pulumi.StringOutput {
		return machine.GetConfigurationOutput(b.ctx, machine.GetConfigurationOutputArgs{
			ClusterName:     pulumi.String(s.ClusterName),
			ClusterEndpoint: pulumi.String(s.Endpoint()),
			MachineType:     pulumi.String(role),
			MachineSecrets:  b.comp.Secrets.MachineSecrets,
			TalosVersion:    pulumi.String(s.TalosVersion),
			// Talos's generator takes the version without the "v" (as
			// internal/render passes it); the provider hands it through.
			KubernetesVersion: pulumi.String(strings.TrimPrefix(s.KubernetesVersion, "v")),
			ConfigPatches:     pulumi.ToStringArray(rolePatches),
			Docs:              pulumi.Bool(false),
			Examples:          pulumi.Bool(false),
		}, b.parent).MachineConfiguration()
	}
	b.configs = map[string]pulumi.StringOutput{RoleControlPlane: roleConfig(RoleControlPlane)}
	if len(s.Workers()) > 0 {
		b.configs[RoleWorker] = roleConfig(RoleWorker)
	}
	return nil
}

// nodePatches are each node's own patches, which name the installer of
// the schematic once its ID is known.
func (b *clusterBuild) nodePatches() error {
	b.patchesOf = map[string]pulumi.StringArrayOutput{}
	s := b.spec
	for _, m := range s.Ordered() {
		patchNode := m.PatchNode()
		b.patchesOf[m.Hostname] = b.schematicID.ApplyT(func(id string) []string {
			pc := s.PatchCluster(talospatch.InstallerImage(id, s.TalosVersion))
			return talospatch.Contents(talospatch.NodePatches(pc, patchNode))
		}).(pulumi.StringArrayOutput)
	}
	return nil
}

// talosconfig is the client configuration of the Talos API. Its endpoints
// are the control planes' own addresses, never the VIP.
func (b *clusterBuild) talosconfig() error {
	var all []string
	for _, n := range b.spec.Nodes {
		all = append(all, n.Address)
	}
	cc := b.clientConfig
	b.talosconfigV = client.GetConfigurationOutput(b.ctx, client.GetConfigurationOutputArgs{
		ClusterName: pulumi.String(b.spec.ClusterName),
		ClientConfiguration: client.GetConfigurationClientConfigurationArgs{
			CaCertificate:     cc.CaCertificate(),
			ClientCertificate: cc.ClientCertificate(),
			ClientKey:         cc.ClientKey(),
		},
		Endpoints: pulumi.ToStringArray(b.spec.ControlPlaneAddresses()),
		Nodes:     pulumi.ToStringArray(all),
	}, b.parent).TalosConfig()
	return nil
}

// kubernetesVersion registers the cluster's Kubernetes release. Every
// configuration apply waits for it: a new version is rolled over the
// running nodes first, component by component, and the applies then find
// every image in place.
func (b *clusterBuild) kubernetesVersion() error {
	k8sVersion, err := kubernetesVersion(b.ctx, b.name, b.ordered, b.args, b.configs, b.patchesOf, b.talosconfigV, b.comp)
	if err != nil {
		return err
	}
	b.applyAfter = append(slices.Clip(b.args.ApplyAfter), k8sVersion)
	return nil
}

// orderedArgs are the nodes, control planes first, as Args.
func orderedArgs(s spec.Cluster) []TalosNodeSpec {
	var out []TalosNodeSpec
	for _, n := range s.Ordered() {
		out = append(out, TalosNodeSpec(n))
	}
	return out
}

// bridgeOn is the bridge of the VMs on a Proxmox node. A map of the
// caller's own outputs keeps each VM waiting for its own node's bridge
// only.
func (b *clusterBuild) bridgeOn(node string) pulumi.StringInput {
	args := b.args
	if m, ok := args.Bridges.(pulumi.StringMap); ok {
		if b, ok := m[node]; ok {
			return b
		}
	} else if args.Bridges != nil && args.Bridge == nil {
		return args.Bridges.ToStringMapOutput().MapIndex(pulumi.String(node))
	}
	return args.Bridge
}

// nodes creates every VM and its configuration, in parallel; a change
// that restarts VMs is rolled node by node, drained and health-gated
// (TalosNodeRoll).
func (b *clusterBuild) nodes() error {
	s := b.spec
	up := b.args.upgradeSettings()
	roll := &TalosNodeRoll{ClusterName: s.ClusterName, Cluster: b.ordered, Talosconfig: b.talosconfigV,
		WorkerParallelism: up.WorkerParallelism, TimeoutSeconds: up.TimeoutSeconds, PollSeconds: up.PollSeconds,
		RebootingPatches: s.RebootingPatches()}
	for _, m := range b.ordered {
		node, err := NewTalosNode(b.ctx, nodeResourceName(b.name, m.Hostname), &TalosNodeArgs{
			Node:                 m,
			Network:              b.args.Network,
			Datastore:            s.Datastore,
			DiskInterface:        s.DiskInterface,
			CPUType:              s.CPUType,
			ImageFileID:          b.imageOf[m.ProxmoxNode],
			Bridge:               b.bridgeOn(m.ProxmoxNode),
			ClientConfiguration:  b.clientConfig,
			MachineConfiguration: b.configs[m.Role],
			ConfigPatches:        b.patchesOf[m.Hostname],
			ApplyAfter:           b.applyAfter,
			WaitFor:              b.args.WaitFor,
			Roll:                 roll,
		}, b.parent)
		if err != nil {
			return err
		}
		b.comp.Nodes = append(b.comp.Nodes, node)
		if m.Role == RoleControlPlane {
			b.cpAddrs = append(b.cpAddrs, node.Address)
		} else {
			b.workerAddrs = append(b.workerAddrs, node.Address)
		}
	}
	return nil
}

// bootstrap bootstraps etcd exactly once, on the first control plane,
// after its configuration is applied (before that the node is in
// maintenance mode and answers "method Bootstrap not implemented"), and
// fetches the admin kubeconfig.
func (b *clusterBuild) bootstrap() error {
	firstAddr := b.spec.ControlPlanes()[0].Address
	first := b.comp.Nodes[0] // control planes come first
	bootstrap, err := machine.NewBootstrap(b.ctx, b.name+"-bootstrap", &machine.BootstrapArgs{
		ClientConfiguration: b.clientConfig,
		Node:                pulumi.String(firstAddr),
		Endpoint:            pulumi.String(firstAddr),
	}, b.parent, pulumi.DependsOn([]pulumi.Resource{first.Applied}))
	if err != nil {
		return err
	}
	cc := b.clientConfig
	kubeconfig, err := cluster.NewKubeconfig(b.ctx, b.name+"-kubeconfig", &cluster.KubeconfigArgs{
		ClientConfiguration: cluster.KubeconfigClientConfigurationArgs{
			CaCertificate:     cc.CaCertificate(),
			ClientCertificate: cc.ClientCertificate(),
			ClientKey:         cc.ClientKey(),
		},
		Node:     pulumi.String(firstAddr),
		Endpoint: pulumi.String(firstAddr),
	}, b.parent, pulumi.DependsOn([]pulumi.Resource{bootstrap}),
		pulumi.AdditionalSecretOutputs([]string{"kubeconfigRaw", "kubernetesClientConfiguration"}))
	if err != nil {
		return err
	}
	b.comp.Bootstrap = bootstrap
	b.kubeconfigRaw = kubeconfig.KubeconfigRaw
	b.afterUp = []pulumi.Resource{bootstrap, kubeconfig}
	return nil
}

// members makes the cluster's members match the declared nodes before
// anything checks its health: the health check compares them exactly,
// and Pulumi deletes removed nodes' VMs only after the checks have run.
// SDA's plugin does it through the Talos and Kubernetes APIs
// (ClusterMembersType), quorum-safely, when the declared list changes.
func (b *clusterBuild) members() error {
	members, err := clusterMembers(b.ctx, b.name, b.args, b.ordered, b.talosconfigV, b.kubeconfigRaw, b.comp, b.afterUp)
	if err != nil {
		return err
	}
	b.membersRes = members
	return nil
}

// versions registers each node's Talos version, rolled after the
// bootstrap and the membership step.
func (b *clusterBuild) versions() error {
	versions, err := nodeVersions(b.ctx, b.name, b.comp.Nodes, b.ordered, b.args, b.schematicID, b.talosconfigV,
		[]pulumi.Resource{b.comp.Bootstrap, b.membersRes})
	if err != nil {
		return err
	}
	b.versionsOut = versions
	return nil
}

// health checks Talos and etcd, and the Node objects (the provider runs
// the node-list check even with the Kubernetes checks skipped); the
// readiness checks need the CNI and run in OverlayNetwork. The control
// planes are read through the membership step's output: while a preview
// plans to change the members, it is unknown, and the check waits for the
// up instead of failing on today's members.
func (b *clusterBuild) health() error {
	cpOut := pulumi.StringArray(b.cpAddrs).ToStringArrayOutput()
	afterMembers := pulumi.All(cpOut, b.membersRes.Members).ApplyT(func(v []any) []string { return v[0].([]string) }).(pulumi.StringArrayOutput)
	health := cluster.GetHealthOutput(b.ctx, cluster.GetHealthOutputArgs{
		ClientConfiguration:  healthClientConfig(b.clientConfig),
		ControlPlaneNodes:    afterMembers,
		WorkerNodes:          pulumi.StringArray(b.workerAddrs).ToStringArrayOutput(),
		Endpoints:            pulumi.ToStringArray(b.spec.ControlPlaneAddresses()),
		SkipKubernetesChecks: pulumi.Bool(true),
	}, b.parent, pulumi.DependsOn([]pulumi.Resource{b.membersRes}))
	b.healthy = health.Id().ApplyT(func(string) bool { return true }).(pulumi.BoolOutput)
	return nil
}

// outputs sets and registers the component's outputs.
func (b *clusterBuild) outputs() error {
	comp := b.comp
	comp.ClientConfiguration = pulumi.ToSecret(b.clientConfig).(machine.ClientConfigurationOutput)
	comp.ClusterName = pulumi.String(b.spec.ClusterName).ToStringOutput()
	comp.KubernetesEndpoint = pulumi.String(b.spec.Endpoint()).ToStringOutput()
	comp.Kubeconfig = pulumi.ToSecret(b.kubeconfigRaw).(pulumi.StringOutput)
	comp.Talosconfig = pulumi.ToSecret(b.talosconfigV).(pulumi.StringOutput)
	comp.SchematicID = b.schematicID
	comp.ControlPlaneAddresses = pulumi.StringArray(b.cpAddrs).ToStringArrayOutput()
	comp.WorkerAddresses = pulumi.StringArray(b.workerAddrs).ToStringArrayOutput()
	comp.TalosHealthy = b.healthy
	comp.TalosVersions = b.versionsOut
	return b.ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"clusterName":           comp.ClusterName,
		"kubernetesEndpoint":    comp.KubernetesEndpoint,
		"kubeconfig":            comp.Kubeconfig,
		"talosconfig":           comp.Talosconfig,
		"clientConfiguration":   comp.ClientConfiguration,
		"schematicId":           comp.SchematicID,
		"controlPlaneAddresses": comp.ControlPlaneAddresses,
		"workerAddresses":       comp.WorkerAddresses,
		"talosHealthy":          comp.TalosHealthy,
		"talosVersions":         comp.TalosVersions,
	})
}

// nodeResourceName names a node's component after the cluster component:
// the hostname when it already starts with "<cluster>-" (SDA's own
// "<cluster>-cp1"), else "<cluster>-<hostname>", so two clusters' nodes
// never collide.
func nodeResourceName(cluster, hostname string) string {
	if strings.HasPrefix(hostname, cluster+"-") {
		return hostname
	}
	return cluster + "-" + hostname
}

func healthClientConfig(cc machine.ClientConfigurationOutput) cluster.GetHealthClientConfigurationArgs {
	return cluster.GetHealthClientConfigurationArgs{
		CaCertificate:     cc.CaCertificate(),
		ClientCertificate: cc.ClientCertificate(),
		ClientKey:         cc.ClientKey(),
	}
}
