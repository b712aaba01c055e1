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
	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/config/check"
	"github.com/sda-platform/sda/stacks/inputs"
)

// Program is the Pulumi program of every SDA stack.
func Program(ctx *pulumi.Context) error {
	lookup := func(key string) (string, bool) { return ctx.GetConfig(key) }
	c, err := config.Load(lookup)
	if err != nil {
		return err
	}
	// Everything is validated before the first registration (check.Stack):
	// the configuration with the provider settings (checked here, not in
	// Deploy: a program that embeds Deploy may configure explicit providers
	// its own way), the pinned host keys (refused before the provider is
	// registered, as Deploy refuses them for embedders), then the user's
	// Talos patches with Talos's own machinery. Warnings are logged and
	// never fail the run.
	_, _, warnings, err := check.Stack(c, check.Options{Problems: config.CheckProviderConfig(lookup, os.Getenv)})
	if err != nil {
		return err
	}
	for _, w := range warnings {
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
	// Router is the stack's router, the first of Routers.
	Router *components.RouterLXC
	// Routers are the router and, with sda:router.pair, its second.
	Routers []*components.RouterLXC
	Cluster *components.TalosCluster
	Overlay *components.OverlayNetwork
}

// Deploy validates c and registers the whole architecture. Nothing is
// registered when the configuration is invalid. Every component's inputs
// come from stacks/inputs, the path `sda plan` and `sda render` take too;
// Deploy adds only the Pulumi values that wire them together.
func Deploy(ctx *pulumi.Context, c config.Config, opts DeployOptions) (*Stack, error) {
	// The patches are Program's to check (once per run: each check
	// generates Talos configurations).
	c, plan, _, err := check.Stack(c, check.Options{SkipPatches: true})
	if err != nil {
		return nil, err
	}
	in, err := inputs.Build(c, plan)
	if err != nil {
		return nil, fmt.Errorf("router configuration: %w", err)
	}
	name := c.Cluster.Name
	// Components hand their providers down to every child.
	var withProxmox []pulumi.ResourceOption
	if opts.Proxmox != nil {
		withProxmox = append(withProxmox, pulumi.Providers(opts.Proxmox))
	}

	networkArgs := components.NewInternalNetworkArgs(in.Network)
	if networkArgs.SSH != nil {
		networkArgs.SSH.PrivateKey = opts.SSHPrivateKey
	}
	network, err := components.NewInternalNetwork(ctx, name+"-net", networkArgs, withProxmox...)
	if err != nil {
		return nil, err
	}

	routers, err := deployRouters(ctx, name, in.Routers, network, opts, withProxmox)
	if err != nil {
		return nil, err
	}
	router := routers[0]
	var routersConfigured []pulumi.Resource
	for _, r := range routers {
		routersConfigured = append(routersConfigured, r.Configured)
	}

	// Each VM waits for the bridge on its own Proxmox node.
	clusterArgs := components.NewTalosClusterArgs(in.Cluster)
	bridges := pulumi.StringMap{}
	for _, node := range in.Network.ProxmoxNodes {
		bridges[node] = network.BridgeOn(node)
	}
	clusterArgs.Bridges = bridges
	clusterArgs.ApplyAfter = routersConfigured
	cluster, err := components.NewTalosCluster(ctx, name, clusterArgs, withProxmox...)
	if err != nil {
		return nil, err
	}

	overlayArgs := components.NewOverlayNetworkArgs(in.Overlay)
	overlayArgs.Kubeconfig = cluster.Kubeconfig
	overlayArgs.ClientConfiguration = cluster.ClientConfiguration
	overlayArgs.ControlPlaneAddresses = cluster.ControlPlaneAddresses
	overlayArgs.WorkerAddresses = cluster.WorkerAddresses
	overlayArgs.TalosHealthy = cluster.TalosHealthy
	overlayNet, err := components.NewOverlayNetwork(ctx, name+"-overlay", overlayArgs)
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
	return &Stack{Network: network, Router: router, Routers: routers, Cluster: cluster, Overlay: overlayNet}, nil
}

// deployRouters registers the stack's router, and a pair's second. The
// first router keeps the name it had before pairs; the second is
// "-router2". The second's container waits for the first to serve
// (ContainerAfter), and each router hands the shared addresses to the
// other before it goes (routerfiles.HandoverScript): a change to both
// rolls, one router after the other, with a gateway throughout.
func deployRouters(ctx *pulumi.Context, name string, specs []spec.Router, network *components.InternalNetwork,
	opts DeployOptions, withProxmox []pulumi.ResourceOption) ([]*components.RouterLXC, error) {
	var routers []*components.RouterLXC
	for i, r := range specs {
		routerArgs := components.NewRouterLXCArgs(r)
		routerArgs.InternalBridge = network.BridgeOn(r.ProxmoxNode)
		routerArgs.SSH.PrivateKey = opts.SSHPrivateKey
		routerName := name + "-router"
		if i > 0 {
			routerName += fmt.Sprint(i + 1)
			routerArgs.ContainerAfter = []pulumi.Resource{routers[0].Serving}
		}
		router, err := components.NewRouterLXC(ctx, routerName, routerArgs, withProxmox...)
		if err != nil {
			return nil, err
		}
		routers = append(routers, router)
	}
	return routers, nil
}

// secretConfig reads an optional secret key; nil when it is not set.
func secretConfig(ctx *pulumi.Context, key string) pulumi.StringInput {
	if _, ok := ctx.GetConfig(key); !ok {
		return nil
	}
	return pulumiconfig.GetSecret(ctx, key)
}
