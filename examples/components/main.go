// Command components shows SDA's components used on their own from another
// Pulumi program: an existing bridge instead of a new one, the router with
// a hand-written port-forward, the Talos cluster and Cilium, wired by hand
// rather than through stacks.Deploy. Copy it into your own program and
// import github.com/sda-platform/sda/components.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/stacks/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		// The typed configuration is the components' input; Resolve applies
		// defaults, validates and plans every address before anything exists.
		c, plan, err := config.Resolve(config.Config{
			Cluster: config.Cluster{Name: "edge", ControlPlanes: 1, Workers: 2, CNI: config.CNICilium},
			Proxmox: config.Proxmox{Nodes: []config.ProxmoxNode{{Name: "pve", SSHHost: "pve.lan"}}},
			Network: config.Network{
				External: config.External{CIDR: "192.168.1.0/24", RouterAddress: "dhcp"},
				Internal: config.Internal{Bridge: "vmbr9", CIDR: "10.42.0.0/24", CreateBridge: new(bool)},
				PortForwards: []config.PortForward{
					{Name: "ingress", Protocol: "tcp", Port: 443, Target: "edge-worker1", TargetPort: 30443},
				},
			},
		})
		if err != nil {
			return err
		}

		// An existing bridge: nothing is created, VMs just attach to it.
		network, err := components.NewInternalNetwork(ctx, "edge-net", &components.InternalNetworkArgs{
			Bridge: c.Network.Internal.Bridge, ProxmoxNodes: plan.ProxmoxNodesUsed(c), Create: false,
		})
		if err != nil {
			return err
		}

		spec, err := routerfiles.FromConfig(c, plan)
		if err != nil {
			return err
		}
		router, err := components.NewRouterLXC(ctx, "edge-router", &components.RouterLXCArgs{
			ProxmoxNode: plan.RouterNode, VMID: plan.RouterVMID, Hostname: "edge-router",
			Cores: 1, MemoryMiB: 256, DiskGiB: 4,
			Datastore: c.Proxmox.Datastore, TemplateDatastore: c.Proxmox.ImageDatastore,
			TemplateURL:    c.Router.TemplateURL,
			ExternalBridge: "vmbr0", ExternalAddress: "dhcp",
			InternalBridge:  network.Bridge,
			InternalAddress: plan.RouterInternal.String() + "/24",
			UpstreamDNS:     c.Network.DNSServers,
			Files:           routerfiles.Render(spec),
			Hosts:           spec.Hosts,
			SSH:             components.RouterSSH{Host: "pve.lan", User: "root"},
		})
		if err != nil {
			return err
		}

		cluster, err := components.NewTalosCluster(ctx, "edge", &components.TalosClusterArgs{
			Config: c, Plan: plan, Network: network,
			CNIPatch:   components.MachinePatch(c.Cluster),
			ApplyAfter: []pulumi.Resource{router.Configured},
		})
		if err != nil {
			return err
		}
		overlay, err := components.NewOverlayNetwork(ctx, "edge-overlay", &components.OverlayNetworkArgs{
			Cluster: c.Cluster, Talos: cluster,
		})
		if err != nil {
			return err
		}
		ctx.Export("kubeconfig", cluster.Kubeconfig)
		ctx.Export("ready", overlay.Ready)
		return nil
	})
}
