// Package stacks is the SDA program: it reads a stack's configuration,
// validates it, and composes the components into the architecture. main.go
// runs it under `pulumi up`; the automation package embeds it as an inline
// program.
package stacks

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumiconfig "github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/render"
)

// Program is the Pulumi program of every SDA stack.
func Program(ctx *pulumi.Context) error {
	lookup := func(key string) (string, bool) { return ctx.GetConfig(key) }
	c, err := config.Load(lookup)
	if err != nil {
		return err
	}
	// Provider settings are checked here, not in Deploy: a program that
	// embeds Deploy may configure explicit providers its own way.
	problems := config.CheckProviderConfig(lookup, os.Getenv)
	if len(problems) > 0 {
		if _, _, verr := config.Resolve(c); verr != nil {
			problems = append(verr.(*config.Error).Problems, problems...)
		}
		return &config.Error{Problems: problems}
	}
	// Everything is validated before the first registration, the provider
	// included: the configuration, then the user's Talos patches with
	// Talos's own machinery. Warnings are logged and never fail the run.
	resolved, plan, err := config.Resolve(c)
	if err != nil {
		return err
	}
	// An unpinned host key is refused here, before the provider is
	// registered, as Deploy refuses it for embedders.
	if problems := append(config.HostKeyProblems(resolved, plan), render.CheckPatches(resolved, plan)...); len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	for _, w := range config.Warnings(resolved, plan) {
		if err := ctx.Log.Warn(w.String(), nil); err != nil {
			return err
		}
	}
	key := secretConfig(ctx, config.Namespace+":sshPrivateKey")
	proxmox, err := NewProxmoxProvider(ctx, c, key)
	if err != nil {
		return err
	}
	_, err = Deploy(ctx, c, DeployOptions{SSHPrivateKey: key, Proxmox: proxmox})
	return err
}

// DeployOptions carries what is not part of the typed configuration.
type DeployOptions struct {
	// SSHPrivateKey for the Proxmox hosts (secret); nil uses the SSH agent.
	SSHPrivateKey pulumi.StringInput
	// Proxmox is the proxmoxve provider of every Proxmox resource
	// (NewProxmoxProvider); nil leaves them to the default provider, which
	// reads the stack's proxmoxve: keys and then needs proxmoxve:ssh for the
	// VMs' disk import.
	Proxmox pulumi.ProviderResource
}

// Stack is what Deploy built, for programs that embed it.
type Stack struct {
	Network *components.InternalNetwork
	Router  *components.RouterLXC
	Cluster *components.TalosCluster
	Overlay *components.OverlayNetwork
}

// Deploy validates c and registers the whole architecture. Nothing is
// registered when the configuration is invalid.
func Deploy(ctx *pulumi.Context, c config.Config, opts DeployOptions) (*Stack, error) {
	c, plan, err := config.Resolve(c)
	if err != nil {
		return nil, err
	}
	if problems := config.HostKeyProblems(c, plan); len(problems) > 0 {
		return nil, &config.Error{Problems: problems}
	}
	routerArgs, err := routerLXCArgs(c, plan)
	if err != nil {
		return nil, fmt.Errorf("router configuration: %w", err)
	}
	name := c.Cluster.Name
	// Components hand their providers down to every child.
	var withProxmox []pulumi.ResourceOption
	if opts.Proxmox != nil {
		withProxmox = append(withProxmox, pulumi.Providers(opts.Proxmox))
	}

	network, err := components.NewInternalNetwork(ctx, name+"-net", internalNetworkArgs(c, plan, opts.SSHPrivateKey), withProxmox...)
	if err != nil {
		return nil, err
	}

	routerArgs.InternalBridge = network.BridgeOn(plan.RouterNode)
	routerArgs.SSH.PrivateKey = opts.SSHPrivateKey
	router, err := components.NewRouterLXC(ctx, name+"-router", routerArgs, withProxmox...)
	if err != nil {
		return nil, err
	}

	// Each VM waits for the bridge on its own Proxmox node.
	clusterArgs := talosClusterArgs(c, plan)
	bridges := pulumi.StringMap{}
	for _, node := range plan.ProxmoxNodesUsed() {
		bridges[node] = network.BridgeOn(node)
	}
	clusterArgs.Bridges = bridges
	clusterArgs.ApplyAfter = []pulumi.Resource{router.Configured}
	cluster, err := components.NewTalosCluster(ctx, name, clusterArgs, withProxmox...)
	if err != nil {
		return nil, err
	}

	kpr := c.Cluster.Cilium.KubeProxyReplacementEnabled()
	overlayNet, err := components.NewOverlayNetwork(ctx, name+"-overlay", &components.OverlayNetworkArgs{
		CNI:                   c.Cluster.CNI,
		CiliumVersion:         c.Cluster.Cilium.Version,
		KubeProxyReplacement:  &kpr,
		MTU:                   plan.Network.MTU,
		ClusterName:           c.Cluster.Name,
		Kubeconfig:            cluster.Kubeconfig,
		ClientConfiguration:   cluster.ClientConfiguration,
		ControlPlaneAddresses: cluster.ControlPlaneAddresses,
		WorkerAddresses:       cluster.WorkerAddresses,
		TalosHealthy:          cluster.TalosHealthy,
	})
	if err != nil {
		return nil, err
	}

	ctx.Export("clusterName", cluster.ClusterName)
	ctx.Export("kubernetesEndpoint", cluster.KubernetesEndpoint)
	ctx.Export("kubeconfig", cluster.Kubeconfig)
	ctx.Export("talosconfig", cluster.Talosconfig)
	ctx.Export("schematicId", cluster.SchematicID)
	ctx.Export("talosVersions", cluster.TalosVersions)
	ctx.Export("controlPlaneAddresses", cluster.ControlPlaneAddresses)
	ctx.Export("workerAddresses", cluster.WorkerAddresses)
	ctx.Export("routerExternalAddress", router.ExternalAddress)
	ctx.Export("routerInternalAddress", router.InternalAddress)
	ctx.Export("routerConfigDigest", router.ConfigDigest)
	ctx.Export("cni", overlayNet.CNI)
	ctx.Export("ready", overlayNet.Ready)
	return &Stack{Network: network, Router: router, Cluster: cluster, Overlay: overlayNet}, nil
}

// routerLXCArgs maps the configuration and its plan into the router's
// arguments: the container, the internal network, every planned machine as
// a host, and the port-forwards with their targets resolved. The internal
// bridge and the SSH key are the caller's (Pulumi values). `sda render`
// renders the same files from the same configuration (render.RouterSpec).
func routerLXCArgs(c config.Config, plan config.Plan) (*components.RouterLXCArgs, error) {
	externalAddress := "dhcp"
	if plan.RouterExternal.IsValid() {
		externalAddress = fmt.Sprintf("%s/%d", plan.RouterExternal, plan.External.Bits())
	}
	args := &components.RouterLXCArgs{
		ProxmoxNode:       plan.RouterNode,
		VMID:              plan.RouterVMID,
		Hostname:          c.Router.Hostname,
		Cores:             c.Router.Cores,
		MemoryMiB:         c.Router.MemoryMiB,
		DiskGiB:           c.Router.DiskGiB,
		Datastore:         c.Proxmox.Datastore,
		TemplateDatastore: c.Proxmox.ImageDatastore,
		TemplateURL:       c.Router.TemplateURL,
		TemplateChecksum:  c.Router.TemplateChecksum,
		ExternalBridge:    c.Network.External.Bridge,
		ExternalVLAN:      c.Network.External.VLAN,
		ExternalAddress:   externalAddress,
		ExternalGateway:   c.Network.External.Gateway,
		InternalMTU:       plan.Network.MTU,
		InternalAddress:   fmt.Sprintf("%s/%d", plan.RouterInternal, plan.Internal.Bits()),
		UpstreamDNS:       c.Network.DNSServers,
		Domain:            c.Network.Internal.Domain,
		DHCPStart:         plan.DHCPStart.String(),
		DHCPEnd:           plan.DHCPEnd.String(),
		AdminCIDRs:        c.Network.AdminCIDRs,
		TalosAPICIDRs:     c.Network.TalosAPICIDRs,
		SSH:               proxmoxSSH(c, plan, plan.RouterNode),
	}
	if plan.VIP.IsValid() {
		args.KubernetesAPIAddresses = []string{plan.VIP.String()}
	}
	for _, m := range plan.Machines() {
		args.Hosts = append(args.Hosts, components.RouterHostArgs{
			Name: m.Hostname, Address: m.Address.String(), MAC: m.MAC, ControlPlane: m.Role == config.RoleControlPlane,
		})
	}
	for i, f := range c.Network.PortForwards {
		target, err := config.ForwardTarget(plan, f.Target)
		if err != nil {
			return nil, fmt.Errorf("sda:network.portForwards[%d].target %q: %w", i, f.Target, err)
		}
		args.Forwards = append(args.Forwards, components.RouterForwardArgs{
			Name: f.Name, Protocol: f.Protocol, Port: f.Port,
			Target: target.String(), TargetPort: f.TargetPort, AllowFrom: f.AllowFrom,
		})
	}
	return args, nil
}

// talosClusterArgs maps the configuration and its plan into the cluster's
// arguments: the planned machines as node specs, the internal network, and
// the stack's patches (the user's, then the CNI's) named as `sda render`
// names them. The router's external address is a certificate name only
// when a port-forward publishes the API there.
func talosClusterArgs(c config.Config, plan config.Plan) *components.TalosClusterArgs {
	args := &components.TalosClusterArgs{
		ClusterName:          c.Cluster.Name,
		TalosVersion:         c.Cluster.TalosVersion,
		KubernetesVersion:    c.Cluster.KubernetesVersion,
		Extensions:           c.Cluster.Extensions,
		PodCIDR:              c.Cluster.PodCIDR,
		ServiceCIDR:          c.Cluster.ServiceCIDR,
		CertSANs:             render.ExtraCertSANs(c, plan),
		Datastore:            c.Proxmox.Datastore,
		ImageDatastore:       c.Proxmox.ImageDatastore,
		SharedImageDatastore: c.Proxmox.SharedImageDatastore,
		DiskInterface:        c.Nodes.DiskInterface,
		CPUType:              c.Nodes.CPUType,
		Upgrade: &components.TalosUpgradeArgs{
			WorkerParallelism: c.Cluster.Upgrade.WorkerParallelism,
			TimeoutSeconds:    c.Cluster.Upgrade.TimeoutSeconds,
			PollSeconds:       c.Cluster.Upgrade.PollSeconds,
		},
		Network: components.TalosNetworkArgs{
			Gateway:   plan.RouterInternal.String(),
			PrefixLen: plan.Internal.Bits(),
			Domain:    c.Network.Internal.Domain,
			MTU:       plan.Network.MTU,
		},
	}
	if plan.VIP.IsValid() {
		args.Network.VIP = plan.VIP.String()
	}
	for _, m := range plan.Machines() {
		args.Nodes = append(args.Nodes, components.TalosNodeSpec{
			Hostname: m.Hostname, Role: string(m.Role), ProxmoxNode: m.ProxmoxNode, VMID: m.VMID,
			MAC: m.MAC, Address: m.Address.String(),
			Cores: m.Size.Cores, MemoryMiB: m.Size.MemoryMiB, DiskGiB: m.Size.DiskGiB,
			Rebuild: c.Nodes.Rebuild[m.Hostname],
		})
	}
	for _, p := range render.ExtraPatches(c) {
		args.Patches = append(args.Patches, components.TalosPatch{Name: p.Source, Content: p.Content})
	}
	// The provider imports disks over SSH at each node's sshHost (its
	// ssh.nodes, NewProxmoxProvider): pin the same address's key there.
	for _, n := range plan.ProxmoxNodes {
		if n.SSHHostKey != "" {
			args.ProxmoxHostKeys = append(args.ProxmoxHostKeys, components.ProxmoxHostKeyArgs{Node: n.Name, Address: n.SSHHost, HostKey: n.SSHHostKey})
		}
	}
	return args
}

// internalNetworkArgs maps the plan's network into the component: the
// mode, and the VLAN or the VXLAN zone with its peers. SDN is cluster-wide,
// so its commands run on the first node the network spans.
func internalNetworkArgs(c config.Config, plan config.Plan, key pulumi.StringInput) *components.InternalNetworkArgs {
	n := plan.Network
	args := &components.InternalNetworkArgs{
		Bridge:       n.Bridge,
		ProxmoxNodes: plan.ProxmoxNodesUsed(),
		Mode:         n.Mode,
	}
	if n.VLAN != nil {
		args.VLAN = &components.InternalVLANArgs{Uplink: n.VLAN.Uplink, ID: n.VLAN.ID, Interface: n.VLAN.Interface}
	}
	if n.VXLAN != nil {
		x := &components.InternalVXLANArgs{Zone: n.VXLAN.Zone, VNet: n.VXLAN.VNet, VNI: n.VXLAN.VNI, MTU: n.MTU}
		for _, p := range n.VXLAN.Peers {
			x.Peers = append(x.Peers, p.Address.String())
		}
		args.VXLAN = x
		ssh := proxmoxSSH(c, plan, n.Nodes[0])
		ssh.PrivateKey = key
		args.SSH = &ssh
	}
	return args
}

// proxmoxSSH is the SSH connection to a Proxmox node, with its pinned host
// key (or the stack's deliberate opt-out).
func proxmoxSSH(c config.Config, plan config.Plan, node string) components.ProxmoxSSH {
	return components.ProxmoxSSH{Host: plan.SSHHost(node), User: c.Proxmox.SSHUser,
		HostKey: plan.SSHHostKey(node), InsecureIgnoreHostKey: c.Proxmox.InsecureIgnoreHostKeys}
}

// secretConfig reads an optional secret key; nil when it is not set.
func secretConfig(ctx *pulumi.Context, key string) pulumi.StringInput {
	if _, ok := ctx.GetConfig(key); !ok {
		return nil
	}
	return pulumiconfig.GetSecret(ctx, key)
}
