package components

import (
	"fmt"
	"strings"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/client"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/cluster"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/imagefactory"
	"github.com/pulumiverse/pulumi-talos/sdk/go/talos/machine"

	"github.com/sda-platform/sda/components/membership"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/stacks/config"
)

// TalosClusterArgs describes the cluster. The configuration and its plan
// come from config.Resolve, which has validated them.
type TalosClusterArgs struct {
	Config config.Config
	Plan   config.Plan
	// Network provides the internal bridge on each Proxmox node.
	Network *InternalNetwork
	// CNIPatch is the overlay's machine-config patch (overlay.MachinePatch),
	// "" for Talos's default flannel.
	CNIPatch string
	// ApplyAfter are resources every configuration apply waits for, such as
	// the configured router through which nodes pull their installer image.
	ApplyAfter []pulumi.Resource
}

// TalosCluster is a Talos Kubernetes cluster of Proxmox VMs.
type TalosCluster struct {
	pulumi.ResourceState

	ClusterName pulumi.StringOutput `pulumi:"clusterName"`
	// KubernetesEndpoint is the API URL: the VIP when set, else the first
	// control plane.
	KubernetesEndpoint pulumi.StringOutput `pulumi:"kubernetesEndpoint"`
	// Kubeconfig and Talosconfig are secret.
	Kubeconfig  pulumi.StringOutput `pulumi:"kubeconfig"`
	Talosconfig pulumi.StringOutput `pulumi:"talosconfig"`
	SchematicID pulumi.StringOutput `pulumi:"schematicId"`
	// ControlPlaneAddresses and WorkerAddresses resolve once every node's
	// configuration is applied.
	ControlPlaneAddresses pulumi.StringArrayOutput `pulumi:"controlPlaneAddresses"`
	WorkerAddresses       pulumi.StringArrayOutput `pulumi:"workerAddresses"`
	// TalosHealthy resolves when Talos and etcd report healthy; the
	// Kubernetes checks run after the CNI is in (OverlayNetwork).
	TalosHealthy pulumi.BoolOutput `pulumi:"talosHealthy"`

	ClientConfiguration machine.ClientConfigurationOutput `pulumi:"-"`
	Secrets             *machine.Secrets                  `pulumi:"-"`
	Bootstrap           *machine.Bootstrap                `pulumi:"-"`
	Nodes               []*TalosNode                      `pulumi:"-"`
}

// NewTalosCluster creates the secrets, the image, every node, bootstraps
// the first control plane once, and fetches kubeconfig and talosconfig.
func NewTalosCluster(ctx *pulumi.Context, name string, args *TalosClusterArgs, opts ...pulumi.ResourceOption) (*TalosCluster, error) {
	if args == nil || args.Network == nil || len(args.Plan.ControlPlanes) == 0 {
		return nil, fmt.Errorf("TalosCluster %s: a resolved Config, its Plan and a Network are required", name)
	}
	c, p := args.Config, args.Plan
	comp := &TalosCluster{}
	if err := ctx.RegisterComponentResource(TalosClusterType, name, comp, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(comp)

	secrets, err := machine.NewSecrets(ctx, name+"-secrets", &machine.SecretsArgs{
		TalosVersion: pulumi.String(c.Cluster.TalosVersion),
	}, parent,
		// Losing the secrets orphans every node: they can never be replaced
		// by accident. docs/engine.md says how to remove them deliberately.
		pulumi.Protect(true),
		pulumi.AdditionalSecretOutputs([]string{"machineSecrets", "clientConfiguration"}))
	if err != nil {
		return nil, err
	}
	clientConfig := secrets.ClientConfiguration

	schematicYAML := talospatch.SchematicYAML(c.Cluster.Extensions)
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
	imageNodes := p.ProxmoxNodesUsed(c)
	for i, node := range imageNodes {
		if c.Proxmox.SharedImageDatastore && i > 0 {
			images[node] = images[imageNodes[0]]
			continue
		}
		resName := name + "-image-" + node
		if c.Proxmox.SharedImageDatastore {
			resName = name + "-image"
		}
		img, err := download.NewFile(ctx, resName, &download.FileArgs{
			NodeName:    pulumi.String(node),
			DatastoreId: pulumi.String(c.Proxmox.ImageDatastore),
			ContentType: pulumi.String("iso"),
			Url: schematicID.ApplyT(func(id string) string {
				return talospatch.NocloudImageURL(id, c.Cluster.TalosVersion)
			}).(pulumi.StringOutput),
			FileName: schematicID.ApplyT(func(id string) string {
				// The cluster name keeps two stacks on one Proxmox node from
				// managing (and deleting) the same file.
				return fmt.Sprintf("talos-%s-%s-%s-nocloud-amd64.img", c.Cluster.Name, c.Cluster.TalosVersion, id[:12])
			}).(pulumi.StringOutput),
			DecompressionAlgorithm: pulumi.String(talospatch.NocloudImageDecompression),
			Overwrite:              pulumi.Bool(false),
		}, parent)
		if err != nil {
			return nil, err
		}
		images[node] = img.ID().ToStringOutput()
	}

	rolePatches := talospatch.ClusterPatches(c, p)
	if args.CNIPatch != "" {
		rolePatches = append(rolePatches, args.CNIPatch)
	}
	roleConfig := func(role config.Role) pulumi.StringOutput {
		return machine.GetConfigurationOutput(ctx, machine.GetConfigurationOutputArgs{
			ClusterName:     pulumi.String(c.Cluster.Name),
			ClusterEndpoint: pulumi.String(p.KubernetesEndpoint()),
			MachineType:     pulumi.String(string(role)),
			MachineSecrets:  secrets.MachineSecrets,
			TalosVersion:    pulumi.String(c.Cluster.TalosVersion),
			// Talos's generator takes the version without the "v" (as
			// internal/render passes it); the provider hands it through.
			KubernetesVersion: pulumi.String(strings.TrimPrefix(c.Cluster.KubernetesVersion, "v")),
			ConfigPatches:     pulumi.ToStringArray(rolePatches),
			Docs:              pulumi.Bool(false),
			Examples:          pulumi.Bool(false),
		}, parent).MachineConfiguration()
	}
	configs := map[config.Role]pulumi.StringOutput{
		config.RoleControlPlane: roleConfig(config.RoleControlPlane),
	}
	if len(p.Workers) > 0 {
		configs[config.RoleWorker] = roleConfig(config.RoleWorker)
	}

	var cpAddrs, workerAddrs []pulumi.StringInput
	// Control-plane VMs form a chain, so the Proxmox provider never reboots
	// two of them at once (it updates them in parallel otherwise).
	var previousControlPlane []pulumi.Resource
	for _, m := range p.Machines() {
		m := m
		patches := schematicID.ApplyT(func(id string) []string {
			return talospatch.NodePatches(c, p, m, talospatch.InstallerImage(id, c.Cluster.TalosVersion))
		}).(pulumi.StringArrayOutput)
		node, err := NewTalosNode(ctx, nodeResourceName(name, m), &TalosNodeArgs{
			Machine:              m,
			PrefixLen:            p.Internal.Bits(),
			Gateway:              p.RouterInternal.String(),
			Domain:               c.Network.Internal.Domain,
			Datastore:            c.Proxmox.Datastore,
			DiskInterface:        c.Nodes.DiskInterface,
			CPUType:              c.Nodes.CPUType,
			ImageFileID:          images[m.ProxmoxNode],
			Bridge:               args.Network.BridgeOn(m.ProxmoxNode),
			MTU:                  p.Network.MTU,
			ClientConfiguration:  clientConfig,
			MachineConfiguration: configs[m.Role],
			ConfigPatches:        patches,
			ApplyAfter:           args.ApplyAfter,
			VMAfter:              previousControlPlane,
		}, parent)
		if err != nil {
			return nil, err
		}
		comp.Nodes = append(comp.Nodes, node)
		if m.Role == config.RoleControlPlane {
			previousControlPlane = []pulumi.Resource{node.VM}
			cpAddrs = append(cpAddrs, node.Address)
		} else {
			workerAddrs = append(workerAddrs, node.Address)
		}
	}

	// Bootstrap exactly once, on the first control plane, after its
	// configuration is applied (before that the node is in maintenance mode
	// and answers "method Bootstrap not implemented").
	first := comp.Nodes[0]
	firstAddr := p.ControlPlanes[0].Address.String()
	bootstrap, err := machine.NewBootstrap(ctx, name+"-bootstrap", &machine.BootstrapArgs{
		ClientConfiguration: clientConfig,
		Node:                pulumi.String(firstAddr),
		Endpoint:            pulumi.String(firstAddr),
	}, parent, pulumi.DependsOn([]pulumi.Resource{first.Applied}))
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
	talosconfig := client.GetConfigurationOutput(ctx, client.GetConfigurationOutputArgs{
		ClusterName: pulumi.String(c.Cluster.Name),
		ClientConfiguration: client.GetConfigurationClientConfigurationArgs{
			CaCertificate:     clientConfig.CaCertificate(),
			ClientCertificate: clientConfig.ClientCertificate(),
			ClientKey:         clientConfig.ClientKey(),
		},
		// Talos API endpoints are node addresses, never the VIP.
		Endpoints: pulumi.ToStringArray(p.TalosEndpoints()),
		Nodes:     pulumi.ToStringArray(nodeAddresses(p)),
	}, parent).TalosConfig()

	// The cluster's members are made to match the declared nodes before
	// anything checks its health: the health check compares them exactly,
	// and Pulumi deletes removed nodes' VMs only after the checks have run
	// (see package membership). The script's text lists the declared nodes,
	// so it runs again, as an update, exactly when that list changes.
	var members []membership.Member
	for _, m := range p.Machines() {
		members = append(members, membership.Member{Name: m.Hostname, Address: m.Address.String(),
			ControlPlane: m.Role == config.RoleControlPlane})
	}
	script, err := membership.Script(members)
	if err != nil {
		return nil, fmt.Errorf("TalosCluster %s: %w", name, err)
	}
	membersCmd, err := local.NewCommand(ctx, name+"-members", &local.CommandArgs{
		Create: pulumi.String(script),
		Update: pulumi.String(script),
		Environment: pulumi.StringMap{
			membership.TalosconfigEnv: pulumi.ToSecret(talosconfig).(pulumi.StringOutput),
			membership.KubeconfigEnv:  pulumi.ToSecret(kubeconfig.KubeconfigRaw).(pulumi.StringOutput),
		},
		AddPreviousOutputInEnv: pulumi.Bool(false),
	}, parent, pulumi.DependsOn([]pulumi.Resource{bootstrap, kubeconfig}))
	if err != nil {
		return nil, err
	}

	// Health of Talos and etcd, and of the Node objects (the provider runs
	// the node-list check even with the Kubernetes checks skipped); the
	// readiness checks need the CNI and run in OverlayNetwork.
	health := cluster.GetHealthOutput(ctx, cluster.GetHealthOutputArgs{
		ClientConfiguration:  healthClientConfig(clientConfig),
		ControlPlaneNodes:    cpOut,
		WorkerNodes:          workerOut,
		Endpoints:            pulumi.ToStringArray(p.TalosEndpoints()),
		SkipKubernetesChecks: pulumi.Bool(true),
	}, parent, pulumi.DependsOn([]pulumi.Resource{membersCmd}))

	comp.ClientConfiguration = clientConfig
	comp.Secrets = secrets
	comp.Bootstrap = bootstrap
	comp.ClusterName = pulumi.String(c.Cluster.Name).ToStringOutput()
	comp.KubernetesEndpoint = pulumi.String(p.KubernetesEndpoint()).ToStringOutput()
	comp.Kubeconfig = pulumi.ToSecret(kubeconfig.KubeconfigRaw).(pulumi.StringOutput)
	comp.Talosconfig = pulumi.ToSecret(talosconfig).(pulumi.StringOutput)
	comp.SchematicID = schematicID
	comp.ControlPlaneAddresses = cpOut
	comp.WorkerAddresses = workerOut
	comp.TalosHealthy = health.Id().ApplyT(func(string) bool { return true }).(pulumi.BoolOutput)
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"clusterName":           comp.ClusterName,
		"kubernetesEndpoint":    comp.KubernetesEndpoint,
		"kubeconfig":            comp.Kubeconfig,
		"talosconfig":           comp.Talosconfig,
		"schematicId":           comp.SchematicID,
		"controlPlaneAddresses": comp.ControlPlaneAddresses,
		"workerAddresses":       comp.WorkerAddresses,
		"talosHealthy":          comp.TalosHealthy,
	}); err != nil {
		return nil, err
	}
	return comp, nil
}

// nodeResourceName names a node's component after the cluster component:
// "<cluster>-cp1", "<cluster>-worker3".
func nodeResourceName(cluster string, m config.Machine) string {
	if m.Role == config.RoleControlPlane {
		return fmt.Sprintf("%s-cp%d", cluster, m.Index)
	}
	return fmt.Sprintf("%s-worker%d", cluster, m.Index)
}

func nodeAddresses(p config.Plan) []string {
	var out []string
	for _, m := range p.Machines() {
		out = append(out, m.Address.String())
	}
	return out
}

func healthClientConfig(cc machine.ClientConfigurationOutput) cluster.GetHealthClientConfigurationArgs {
	return cluster.GetHealthClientConfigurationArgs{
		CaCertificate:     cc.CaCertificate(),
		ClientCertificate: cc.ClientCertificate(),
		ClientKey:         cc.ClientKey(),
	}
}
