package components

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/client"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/cluster"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/imagefactory"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

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
	Name    string `pulumi:"name"`
	Content string `pulumi:"content"`
}

// TalosCluster is a Talos Kubernetes cluster of Proxmox VMs.
type TalosCluster struct {
	pulumi.ResourceState

	ClusterName pulumi.StringOutput `pulumi:"clusterName"`
	// KubernetesEndpoint is the API URL: the VIP when set, else the first
	// control plane.
	KubernetesEndpoint pulumi.StringOutput `pulumi:"kubernetesEndpoint"`
	// Kubeconfig and Talosconfig are secret.
	Kubeconfig  pulumi.StringOutput `pulumi:"kubeconfig" provider:"secret"`
	Talosconfig pulumi.StringOutput `pulumi:"talosconfig" provider:"secret"`
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
func NewTalosCluster(ctx *pulumi.Context, name string, args *TalosClusterArgs, opts ...pulumi.ResourceOption) (*TalosCluster, error) {
	if args == nil {
		return nil, fmt.Errorf("TalosCluster %s: args are required", name)
	}
	if err := args.validate(); err != nil {
		return nil, fmt.Errorf("TalosCluster %s: %w", name, err)
	}
	var controlPlanes, workers []TalosNodeSpec
	for _, n := range args.Nodes {
		if n.Role == RoleControlPlane {
			controlPlanes = append(controlPlanes, n)
		} else {
			workers = append(workers, n)
		}
	}
	// The patches' view of the cluster; the installer image is set per
	// node once the schematic's ID is known.
	apiAddress := controlPlanes[0].Address
	if args.Network.VIP != "" {
		apiAddress = args.Network.VIP
	}
	endpoint := fmt.Sprintf("https://%s:%d", apiAddress, talospatch.KubernetesAPIPort)
	patchCluster := talospatch.Cluster{
		TalosVersion:             args.TalosVersion,
		APIAddress:               apiAddress,
		ExtraCertSANs:            args.CertSANs,
		PodCIDR:                  args.PodCIDR,
		ServiceCIDR:              args.ServiceCIDR,
		SchedulableControlPlanes: len(workers) == 0,
		InstallDisk:              talospatch.InstallDisk(args.DiskInterface),
		PrefixLen:                args.Network.PrefixLen,
		Gateway:                  args.Network.Gateway,
		VIP:                      args.Network.VIP,
		MTU:                      args.Network.MTU,
	}
	for _, p := range args.Patches {
		patchCluster.Extra = append(patchCluster.Extra, talospatch.Named{Source: p.Name, Content: p.Content})
	}
	var talosEndpoints, allAddresses []string
	for _, n := range controlPlanes {
		talosEndpoints = append(talosEndpoints, n.Address)
	}
	for _, n := range args.Nodes {
		allAddresses = append(allAddresses, n.Address)
	}

	comp := &TalosCluster{}
	if err := ctx.RegisterComponentResource(TalosClusterType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)

	secrets, err := machine.NewSecrets(ctx, name+"-secrets", &machine.SecretsArgs{
		TalosVersion: pulumi.String(args.TalosVersion),
	}, parent,
		// Losing the secrets orphans every node: they can never be replaced
		// by accident. docs/engine.md says how to remove them deliberately.
		pulumi.Protect(true),
		pulumi.AdditionalSecretOutputs([]string{"machineSecrets", "clientConfiguration"}))
	if err != nil {
		return nil, err
	}
	clientConfig := secrets.ClientConfiguration

	schematicYAML := talospatch.SchematicYAML(args.Extensions)
	wantID, err := talospatch.SchematicID(schematicYAML)
	if err != nil {
		return nil, fmt.Errorf("TalosCluster %s: %w", name, err)
	}
	schematic, err := imagefactory.NewSchematic(ctx, name+"-schematic", &imagefactory.SchematicArgs{
		Schematic: pulumi.String(schematicYAML),
	}, parent)
	if err != nil {
		return nil, err
	}
	// The schematic's ID is computed here, the way Image Factory computes
	// it, not read from the resource: the provider updates a changed
	// schematic in place (it posts the new one) but a Pulumi update cannot
	// change a resource's ID, so schematic.ID() would keep naming the old
	// extensions forever. The value still flows through the resource's
	// posted schematic, so the image and installer wait for the factory to
	// know it.
	schematicID := schematic.Schematic.ApplyT(func(*string) string { return wantID }).(pulumi.StringOutput)

	// One image per Proxmox node, or one for the cluster on shared storage.
	images := map[string]pulumi.StringOutput{}
	var imageNodes []string
	for _, n := range args.Nodes {
		if !slices.Contains(imageNodes, n.ProxmoxNode) {
			imageNodes = append(imageNodes, n.ProxmoxNode)
		}
	}
	for i, node := range imageNodes {
		if args.SharedImageDatastore && i > 0 {
			images[node] = images[imageNodes[0]]
			continue
		}
		resName := name + "-image-" + node
		if args.SharedImageDatastore {
			resName = name + "-image"
		}
		img, err := download.NewFile(ctx, resName, &download.FileArgs{
			NodeName:    pulumi.String(node),
			DatastoreId: pulumi.String(args.ImageDatastore),
			ContentType: pulumi.String("iso"),
			Url: schematicID.ApplyT(func(id string) string {
				return talospatch.NocloudImageURL(id, args.TalosVersion)
			}).(pulumi.StringOutput),
			FileName: schematicID.ApplyT(func(id string) string {
				// The cluster name keeps two stacks on one Proxmox node from
				// managing (and deleting) the same file.
				return fmt.Sprintf("talos-%s-%s-%s-nocloud-amd64.img", args.ClusterName, args.TalosVersion, id[:12])
			}).(pulumi.StringOutput),
			DecompressionAlgorithm: pulumi.String(talospatch.NocloudImageDecompression),
			Overwrite:              pulumi.Bool(false),
			// The name is this cluster's own: a file a killed run
			// downloaded outside the state is replaced, not refused.
			OverwriteUnmanaged: pulumi.Bool(true),
		}, parent)
		if err != nil {
			return nil, err
		}
		images[node] = img.ID().ToStringOutput()
	}
	if err := pinHostKeys(ctx, name, args.ProxmoxHostKeys, images, parent); err != nil {
		return nil, err
	}

	// Every role's configuration gets the cluster's patches; each node's
	// own follow in its configuration apply (talospatch.MachinePatches).
	rolePatches := talospatch.Contents(talospatch.ClusterPatches(patchCluster))
	roleConfig := func(role string) pulumi.StringOutput {
		return machine.GetConfigurationOutput(ctx, machine.GetConfigurationOutputArgs{
			ClusterName:     pulumi.String(args.ClusterName),
			ClusterEndpoint: pulumi.String(endpoint),
			MachineType:     pulumi.String(role),
			MachineSecrets:  secrets.MachineSecrets,
			TalosVersion:    pulumi.String(args.TalosVersion),
			// Talos's generator takes the version without the "v" (as
			// internal/render passes it); the provider hands it through.
			KubernetesVersion: pulumi.String(strings.TrimPrefix(args.KubernetesVersion, "v")),
			ConfigPatches:     pulumi.ToStringArray(rolePatches),
			Docs:              pulumi.Bool(false),
			Examples:          pulumi.Bool(false),
		}, parent).MachineConfiguration()
	}
	configs := map[string]pulumi.StringOutput{
		RoleControlPlane: roleConfig(RoleControlPlane),
	}
	if len(workers) > 0 {
		configs[RoleWorker] = roleConfig(RoleWorker)
	}

	bridgeOn := func(node string) pulumi.StringInput {
		// A map of the caller's own outputs keeps each VM waiting for its
		// own node's bridge only.
		if m, ok := args.Bridges.(pulumi.StringMap); ok {
			if b, ok := m[node]; ok {
				return b
			}
		} else if args.Bridges != nil && args.Bridge == nil {
			return args.Bridges.ToStringMapOutput().MapIndex(pulumi.String(node))
		}
		return args.Bridge
	}

	ordered := append(append([]TalosNodeSpec{}, controlPlanes...), workers...)
	nodePatches := map[string]pulumi.StringArrayOutput{}
	for _, m := range ordered {
		patchNode := talospatch.Node{Hostname: m.Hostname, MAC: m.MAC, Address: m.Address, ControlPlane: m.Role == RoleControlPlane}
		nodePatches[m.Hostname] = schematicID.ApplyT(func(id string) []string {
			pc := patchCluster
			pc.InstallerImage = talospatch.InstallerImage(id, args.TalosVersion)
			return talospatch.Contents(talospatch.NodePatches(pc, patchNode))
		}).(pulumi.StringArrayOutput)
	}
	talosconfig := client.GetConfigurationOutput(ctx, client.GetConfigurationOutputArgs{
		ClusterName: pulumi.String(args.ClusterName),
		ClientConfiguration: client.GetConfigurationClientConfigurationArgs{
			CaCertificate:     clientConfig.CaCertificate(),
			ClientCertificate: clientConfig.ClientCertificate(),
			ClientKey:         clientConfig.ClientKey(),
		},
		// Talos API endpoints are node addresses, never the VIP.
		Endpoints: pulumi.ToStringArray(talosEndpoints),
		Nodes:     pulumi.ToStringArray(allAddresses),
	}, parent).TalosConfig()

	// Every configuration apply waits for the Kubernetes version: a new
	// version is rolled over the running nodes first, component by
	// component, and the applies then find every image in place.
	k8sVersion, err := kubernetesVersion(ctx, name, ordered, args, configs, nodePatches, talosconfig, comp)
	if err != nil {
		return nil, err
	}
	applyAfter := append(slices.Clip(args.ApplyAfter), k8sVersion)

	var cpAddrs, workerAddrs []pulumi.StringInput
	// Every VM is created in parallel; a change that restarts VMs is rolled
	// node by node, drained and health-gated (TalosNodeRoll).
	up := args.upgradeSettings()
	roll := &TalosNodeRoll{ClusterName: args.ClusterName, Cluster: ordered, Talosconfig: talosconfig,
		WorkerParallelism: up.WorkerParallelism, TimeoutSeconds: up.TimeoutSeconds, PollSeconds: up.PollSeconds,
		RebootingPatches: rebootingPatches(args.Patches)}
	var firstControlPlane *TalosNode
	for _, m := range ordered {
		m := m
		patches := nodePatches[m.Hostname]
		node, err := NewTalosNode(ctx, nodeResourceName(name, m.Hostname), &TalosNodeArgs{
			Node:                 m,
			Network:              args.Network,
			Datastore:            args.Datastore,
			DiskInterface:        args.DiskInterface,
			CPUType:              args.CPUType,
			ImageFileID:          images[m.ProxmoxNode],
			Bridge:               bridgeOn(m.ProxmoxNode),
			ClientConfiguration:  clientConfig,
			MachineConfiguration: configs[m.Role],
			ConfigPatches:        patches,
			ApplyAfter:           applyAfter,
			WaitFor:              args.WaitFor,
			Roll:                 roll,
		}, parent)
		if err != nil {
			return nil, err
		}
		comp.Nodes = append(comp.Nodes, node)
		if m.Role == RoleControlPlane {
			if firstControlPlane == nil {
				firstControlPlane = node
			}
			cpAddrs = append(cpAddrs, node.Address)
		} else {
			workerAddrs = append(workerAddrs, node.Address)
		}
	}

	// Bootstrap exactly once, on the first control plane, after its
	// configuration is applied (before that the node is in maintenance mode
	// and answers "method Bootstrap not implemented").
	firstAddr := controlPlanes[0].Address
	bootstrap, err := machine.NewBootstrap(ctx, name+"-bootstrap", &machine.BootstrapArgs{
		ClientConfiguration: clientConfig,
		Node:                pulumi.String(firstAddr),
		Endpoint:            pulumi.String(firstAddr),
	}, parent, pulumi.DependsOn([]pulumi.Resource{firstControlPlane.Applied}))
	if err != nil {
		return nil, err
	}

	kubeconfig, err := cluster.NewKubeconfig(ctx, name+"-kubeconfig", &cluster.KubeconfigArgs{
		ClientConfiguration: cluster.KubeconfigClientConfigurationArgs{
			CaCertificate:     clientConfig.CaCertificate(),
			ClientCertificate: clientConfig.ClientCertificate(),
			ClientKey:         clientConfig.ClientKey(),
		},
		Node:     pulumi.String(firstAddr),
		Endpoint: pulumi.String(firstAddr),
	}, parent, pulumi.DependsOn([]pulumi.Resource{bootstrap}),
		pulumi.AdditionalSecretOutputs([]string{"kubeconfigRaw", "kubernetesClientConfiguration"}))
	if err != nil {
		return nil, err
	}

	cpOut := pulumi.StringArray(cpAddrs).ToStringArrayOutput()
	workerOut := pulumi.StringArray(workerAddrs).ToStringArrayOutput()
	// The cluster's members are made to match the declared nodes before
	// anything checks its health: the health check compares them exactly,
	// and Pulumi deletes removed nodes' VMs only after the checks have run.
	// SDA's plugin does it through the Talos and Kubernetes APIs
	// (ClusterMembersType), quorum-safely, when the declared list changes.
	members, err := clusterMembers(ctx, name, args, append(append([]TalosNodeSpec{}, controlPlanes...), workers...),
		talosconfig, kubeconfig.KubeconfigRaw, comp, []pulumi.Resource{bootstrap, kubeconfig})
	if err != nil {
		return nil, err
	}

	versions, err := nodeVersions(ctx, name, comp.Nodes, append(append([]TalosNodeSpec{}, controlPlanes...), workers...),
		args, schematicID, talosconfig,
		[]pulumi.Resource{bootstrap, members})
	if err != nil {
		return nil, err
	}

	// Health of Talos and etcd, and of the Node objects (the provider runs
	// the node-list check even with the Kubernetes checks skipped); the
	// readiness checks need the CNI and run in OverlayNetwork.
	// The control planes are read through the membership step's output:
	// while a preview plans to change the members, it is unknown, and the
	// check waits for the up instead of failing on today's members.
	afterMembers := pulumi.All(cpOut, members.Members).ApplyT(func(v []any) []string { return v[0].([]string) }).(pulumi.StringArrayOutput)
	health := cluster.GetHealthOutput(ctx, cluster.GetHealthOutputArgs{
		ClientConfiguration:  healthClientConfig(clientConfig),
		ControlPlaneNodes:    afterMembers,
		WorkerNodes:          workerOut,
		Endpoints:            pulumi.ToStringArray(talosEndpoints),
		SkipKubernetesChecks: pulumi.Bool(true),
	}, parent, pulumi.DependsOn([]pulumi.Resource{members}))

	comp.ClientConfiguration = pulumi.ToSecret(clientConfig).(machine.ClientConfigurationOutput)
	comp.Secrets = secrets
	comp.Bootstrap = bootstrap
	comp.ClusterName = pulumi.String(args.ClusterName).ToStringOutput()
	comp.KubernetesEndpoint = pulumi.String(endpoint).ToStringOutput()
	comp.Kubeconfig = pulumi.ToSecret(kubeconfig.KubeconfigRaw).(pulumi.StringOutput)
	comp.Talosconfig = pulumi.ToSecret(talosconfig).(pulumi.StringOutput)
	comp.SchematicID = schematicID
	comp.ControlPlaneAddresses = cpOut
	comp.WorkerAddresses = workerOut
	comp.TalosHealthy = health.Id().ApplyT(func(string) bool { return true }).(pulumi.BoolOutput)
	comp.TalosVersions = versions
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
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
	}); err != nil {
		return nil, err
	}
	return comp, nil
}

// rebootingPatches identifies the patches Talos applies only with a
// reboot: a digest of their names and contents, "" when there are none.
func rebootingPatches(patches []TalosPatch) string {
	h := sha256.New()
	n := 0
	for _, p := range patches {
		if len(talospatch.RebootingPatchFields(p.Content)) > 0 {
			fmt.Fprintf(h, "%s\x00%s\x00", p.Name, p.Content)
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
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

// upgradeSettings are args.Upgrade, or the zero settings (the defaults).
func (args *TalosClusterArgs) upgradeSettings() TalosUpgradeArgs {
	if args.Upgrade == nil {
		return TalosUpgradeArgs{}
	}
	return *args.Upgrade
}
