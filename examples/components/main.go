// Command components shows SDA's components used on their own from another
// Go program, with no SDA stack configuration: an existing bridge, the
// router with a hand-written port-forward, a Talos cluster of one control
// plane and two workers, and Cilium, every value written out by hand.
//
// It is a module of its own, as your program would be: it requires
// github.com/sda-platform/sda and imports only its components (and, to embed
// the deployment, its automation package). It runs two ways:
//
//	pulumi up                    # as a Pulumi Go program (Pulumi.yaml: runtime go)
//	go run . up|preview|destroy  # embedded: the Automation API runs Platform inline
//
// Embedded, it takes the Proxmox credentials from the Proxmox provider's own
// environment variables: PROXMOX_VE_ENDPOINT, PROXMOX_VE_API_TOKEN,
// PROXMOX_VE_SSH_USERNAME and PROXMOX_VE_SSH_PRIVATE_KEY (the router's
// commands use the same key), EDGE_SSH_HOST_KEY (the Proxmox host's SSH
// host key, the line of its /etc/ssh/ssh_host_ed25519_key.pub: the router's
// commands run only on a host that proves it holds it), plus
// PULUMI_CONFIG_PASSPHRASE for the state.
// tests/engine (TestGoProgramOutsideTheRepo) builds it outside this
// repository and runs it embedded against the simulated providers.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/components/overlay"
)

func main() {
	if len(os.Args) > 1 {
		if err := embedded(os.Args[1]); err != nil {
			log.Fatal(err)
		}
		return
	}
	pulumi.Run(Platform)
}

// embedded runs Platform through SDA's automation package: the stack "dev"
// of this directory's project, its state where PULUMI_BACKEND_URL says
// (default ~/.sda/state).
func embedded(op string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ssh, err := json.Marshal(map[string]any{
		"username":   os.Getenv("PROXMOX_VE_SSH_USERNAME"),
		"privateKey": os.Getenv("PROXMOX_VE_SSH_PRIVATE_KEY"),
	})
	if err != nil {
		return err
	}
	d, err := automation.Open(ctx, automation.Options{
		ProjectDir: ".",
		Stack:      "dev",
		Program:    Platform,
		ConfigValues: map[string]automation.ConfigValue{
			"proxmoxve:endpoint": {Value: os.Getenv("PROXMOX_VE_ENDPOINT")},
			"proxmoxve:apiToken": {Value: os.Getenv("PROXMOX_VE_API_TOKEN"), Secret: true},
			"proxmoxve:ssh":      {Value: string(ssh), Secret: true},
			"edge:sshPrivateKey": {Value: os.Getenv("PROXMOX_VE_SSH_PRIVATE_KEY"), Secret: true},
			"edge:sshHostKey":    {Value: os.Getenv("EDGE_SSH_HOST_KEY")},
		},
		Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	switch op {
	case "up":
		res, err := d.Up(ctx)
		if err != nil {
			return err
		}
		// ready derives from the (secret) kubeconfig, so it is secret too.
		outs, err := d.Outputs(ctx, true)
		if err != nil {
			return err
		}
		fmt.Printf("up: %d created; ready: %v\n", res.Count("create"), outs["ready"].Value)
	case "preview":
		res, err := d.Preview(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("preview: %d to change\n", len(res.Changed()))
	case "destroy":
		// The cluster's machine secrets are protected; destroying the
		// whole stack is the one time they may go.
		if _, err := d.Destroy(ctx, automation.DestroyOptions{IncludeProtected: true}); err != nil {
			return err
		}
		fmt.Println("destroyed")
	default:
		return fmt.Errorf("unknown operation %q: use up, preview or destroy", op)
	}
	return nil
}

// Platform is the whole program: every component, wired by hand.
func Platform(ctx *pulumi.Context) error {
	// The router's commands reach the Proxmox host over SSH with this key
	// (the SSH agent when it is not set).
	sshKey, _ := config.TrySecret(ctx, "sshPrivateKey")
	// They run only on a host that proves it holds this host key (read it
	// on the node's console: /etc/ssh/ssh_host_ed25519_key.pub).
	hostKey := config.Require(ctx, "sshHostKey")
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
		// Proxmox checks the template's SHA-512 (as its signed appliance
		// index lists it) before the router is built from it.
		TemplateURL:      "https://download.proxmox.com/images/system/debian-12-standard_12.12-1_amd64.tar.zst",
		TemplateChecksum: "50c85eaaece677a3ebe01cc909b83872e9da2a22c29ae652838afce71e83222fdf40f6accecd7d52b180e912fc1f85ecdf7b3fc4d3027da4d865e509a9e76597",
		ExternalBridge:   "vmbr0",
		ExternalAddress:  "dhcp",
		InternalBridge:   network.Bridge,
		InternalAddress:  gateway + "/24",
		UpstreamDNS:      []string{"1.1.1.1"},
		Domain:           domain,
		DHCPStart:        "10.42.0.200",
		DHCPEnd:          "10.42.0.250",
		AdminCIDRs:       []string{"192.168.1.0/24"},
		Hosts:            hosts,
		Forwards: []components.RouterForwardArgs{
			{Name: "ingress", Protocol: "tcp", Port: 443, Target: "10.42.0.21", TargetPort: 30443},
		},
		SSH: components.RouterSSH{Host: "pve.lan", User: "root", PrivateKey: sshKey, HostKey: hostKey},
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
		// The Proxmox provider imports the disks over SSH and checks the
		// host in ~/.ssh/known_hosts: the same pin goes there first.
		ProxmoxHostKeys: []components.ProxmoxHostKeyArgs{{Node: proxmoxNode, Address: "pve.lan", HostKey: hostKey}},
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
}
