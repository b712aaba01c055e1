// Command components shows SDA's components used on their own from another
// Pulumi program, with no SDA stack configuration: an existing bridge, the
// router with a hand-written port-forward, a Talos cluster of one control
// plane and two workers, and Cilium, every value written out by hand.
// Copy it into your own program and import
// github.com/sda-platform/sda/components.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/components/overlay"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		const (
			proxmoxNode = "pve"
			bridge      = "vmbr9"
			gateway     = "10.42.0.1"
			domain      = "edge.internal"
		)
		nodes := []components.TalosNodeSpec{
			{Hostname: "edge-cp1", Role: components.RoleControlPlane, ProxmoxNode: proxmoxNode, VMID: 4211,
				MAC: "02:42:00:00:00:11", Address: "10.42.0.11", Cores: 2, MemoryMiB: 4096, DiskGiB: 20},
			{Hostname: "edge-worker1", Role: components.RoleWorker, ProxmoxNode: proxmoxNode, VMID: 4221,
				MAC: "02:42:00:00:00:21", Address: "10.42.0.21", Cores: 2, MemoryMiB: 4096, DiskGiB: 20},
			{Hostname: "edge-worker2", Role: components.RoleWorker, ProxmoxNode: proxmoxNode, VMID: 4222,
				MAC: "02:42:00:00:00:22", Address: "10.42.0.22", Cores: 2, MemoryMiB: 4096, DiskGiB: 20},
		}

		// An existing bridge: nothing is created, VMs just attach to it.
		network, err := components.NewInternalNetwork(ctx, "edge-net", &components.InternalNetworkArgs{
			Bridge: bridge, ProxmoxNodes: []string{proxmoxNode}, Mode: components.NetworkModeExisting,
		})
		if err != nil {
			return err
		}

		// The router: NAT, firewall, DNS and DHCP for the internal network,
		// one host entry per node, and HTTPS forwarded to a worker.
		hosts := make([]components.RouterHostArgs, 0, len(nodes))
		for _, n := range nodes {
			hosts = append(hosts, components.RouterHostArgs{Name: n.Hostname, Address: n.Address, MAC: n.MAC,
				ControlPlane: n.Role == components.RoleControlPlane})
		}
		router, err := components.NewRouterLXC(ctx, "edge-router", &components.RouterLXCArgs{
			ProxmoxNode: proxmoxNode, VMID: 4201, Hostname: "edge-router",
			Cores: 1, MemoryMiB: 256, DiskGiB: 4,
			Datastore: "local-lvm", TemplateDatastore: "local",
			TemplateURL:     "http://download.proxmox.com/images/system/debian-12-standard_12.12-1_amd64.tar.zst",
			ExternalBridge:  "vmbr0",
			ExternalAddress: "dhcp",
			InternalBridge:  network.Bridge,
			InternalAddress: gateway + "/24",
			UpstreamDNS:     []string{"1.1.1.1"},
			Domain:          domain,
			DHCPStart:       "10.42.0.200",
			DHCPEnd:         "10.42.0.250",
			AdminCIDRs:      []string{"192.168.1.0/24"},
			Hosts:           hosts,
			Forwards: []components.RouterForwardArgs{
				{Name: "ingress", Protocol: "tcp", Port: 443, Target: "10.42.0.21", TargetPort: 30443},
			},
			SSH: components.RouterSSH{Host: "pve.lan", User: "root"},
		})
		if err != nil {
			return err
		}

		// The cluster: versions, nodes, network, and Cilium's patch.
		cluster, err := components.NewTalosCluster(ctx, "edge", &components.TalosClusterArgs{
			ClusterName: "edge", TalosVersion: "v1.12.0", KubernetesVersion: "v1.34.1",
			Extensions: []string{"siderolabs/qemu-guest-agent"},
			Nodes:      nodes,
			Network:    components.TalosNetworkArgs{Gateway: gateway, PrefixLen: 24, Domain: domain},
			Patches: []components.TalosPatch{
				{Name: "cni-cilium", Content: components.MachinePatch(overlay.CNICilium, true)},
			},
			Datastore: "local-lvm", ImageDatastore: "local",
			Bridges:    pulumi.StringMap{proxmoxNode: network.BridgeOn(proxmoxNode)},
			ApplyAfter: []pulumi.Resource{router.Configured},
		})
		if err != nil {
			return err
		}

		// Cilium, from the cluster's outputs.
		ready, err := components.NewOverlayNetwork(ctx, "edge-overlay", &components.OverlayNetworkArgs{
			CNI: overlay.CNICilium, CiliumVersion: "1.18.4",
			ClusterName:           "edge",
			Kubeconfig:            cluster.Kubeconfig,
			ClientConfiguration:   cluster.ClientConfiguration,
			ControlPlaneAddresses: cluster.ControlPlaneAddresses,
			WorkerAddresses:       cluster.WorkerAddresses,
			TalosHealthy:          cluster.TalosHealthy,
		})
		if err != nil {
			return err
		}
		ctx.Export("kubeconfig", cluster.Kubeconfig)
		ctx.Export("ready", ready.Ready)
		return nil
	})
}
