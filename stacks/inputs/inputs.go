// Package inputs maps a stack's resolved configuration and its plan to
// every component's inputs (components/spec), without Pulumi. It is the
// one place where SDA's stack configuration meets the components: the
// stack program (stacks.Deploy) deploys what Build returns, and `sda
// plan`, `sda render` and `sda diagram` show and render the same values
// with the same functions (spec.Router.Files, spec.Cluster.PatchCluster),
// so offline output and deployment agree by construction.
//
// A default lives either in config (a stack setting's default, shown by
// `sda plan`) or in components/spec and routerfiles (a component's own),
// never in both; this package adds none.
package inputs

import (
	"fmt"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
)

// Stack is every component's inputs of one stack.
type Stack struct {
	Network spec.InternalNetwork
	// Routers are the router, and with sda:router.pair its second.
	Routers []spec.Router
	Cluster spec.Cluster
	Overlay spec.Overlay
}

// Build maps a resolved configuration and its plan (config.Resolve or
// config.LoadStack) to the components' inputs.
func Build(c config.Config, p config.Plan) (Stack, error) {
	routers, err := Routers(c, p)
	if err != nil {
		return Stack{}, err
	}
	return Stack{Network: Network(c, p), Routers: routers, Cluster: Cluster(c, p), Overlay: Overlay(c, p)}, nil
}

// Network is the plan's internal network: the mode, and the VLAN or the
// VXLAN zone with its peers. SDN is cluster-wide, so its commands run on
// the first node the network spans.
func Network(c config.Config, p config.Plan) spec.InternalNetwork {
	n := p.Network
	s := spec.InternalNetwork{Bridge: n.Bridge, ProxmoxNodes: p.ProxmoxNodesUsed(), Mode: n.Mode}
	if n.VLAN != nil {
		s.VLAN = &spec.VLAN{Uplink: n.VLAN.Uplink, ID: n.VLAN.ID, Interface: n.VLAN.Interface}
	}
	if n.VXLAN != nil {
		x := &spec.VXLAN{Zone: n.VXLAN.Zone, VNet: n.VXLAN.VNet, VNI: n.VXLAN.VNI, MTU: n.MTU}
		for _, peer := range n.VXLAN.Peers {
			x.Peers = append(x.Peers, peer.Address.String())
		}
		s.VXLAN = x
		ssh := ProxmoxSSH(c, p, n.Nodes[0])
		s.SSH = &ssh
	}
	return s
}

// Router is the router as a single router (Routers makes it a pair's
// first when the stack asks for a pair): the container, the internal network, every planned
// machine as a host, and the port-forwards with their targets resolved.
func Router(c config.Config, p config.Plan) (spec.Router, error) {
	if !p.Internal.IsValid() || !p.RouterInternal.IsValid() || c.Network.Internal.Domain == "" {
		return spec.Router{}, fmt.Errorf("router: the configuration is not resolved: pass the result of config.Resolve or config.LoadStack")
	}
	externalAddress := spec.ExternalAddressDHCP
	if p.RouterExternal.IsValid() {
		externalAddress = fmt.Sprintf("%s/%d", p.RouterExternal, p.External.Bits())
	}
	s := spec.Router{
		ProxmoxNode: p.RouterNode, VMID: p.RouterVMID, Hostname: c.Router.Hostname,
		Cores: c.Router.Cores, MemoryMiB: c.Router.MemoryMiB, DiskGiB: c.Router.DiskGiB,
		Datastore: c.Proxmox.Datastore, TemplateDatastore: c.Proxmox.ImageDatastore,
		TemplateURL: c.Router.TemplateURL, TemplateChecksum: c.Router.TemplateChecksum,
		ExternalBridge: c.Network.External.Bridge, ExternalVLAN: c.Network.External.VLAN,
		ExternalAddress: externalAddress, ExternalGateway: c.Network.External.Gateway,
		InternalMTU:     p.Network.MTU,
		InternalAddress: fmt.Sprintf("%s/%d", p.RouterInternal, p.Internal.Bits()),
		UpstreamDNS:     c.Network.DNSServers,
		Domain:          c.Network.Internal.Domain,
		DHCPStart:       p.DHCPStart.String(), DHCPEnd: p.DHCPEnd.String(),
		AdminCIDRs: c.Network.AdminCIDRs, TalosAPICIDRs: c.Network.TalosAPICIDRs,
		SSH: ProxmoxSSH(c, p, p.RouterNode),
	}
	if p.VIP.IsValid() {
		s.KubernetesAPIAddresses = []string{p.VIP.String()}
	}
	for _, m := range p.Machines() {
		s.Hosts = append(s.Hosts, spec.RouterHost{Name: m.Hostname, Address: m.Address.String(), MAC: m.MAC,
			ControlPlane: m.Role == config.RoleControlPlane})
	}
	for i, f := range c.Network.PortForwards {
		target, err := config.ForwardTarget(p, f.Target)
		if err != nil {
			return spec.Router{}, fmt.Errorf("router: sda:network.portForwards[%d].target %q: %w", i, f.Target, err)
		}
		s.Forwards = append(s.Forwards, spec.RouterForward{Name: f.Name, Protocol: f.Protocol, Port: f.Port,
			Target: target.String(), TargetPort: f.TargetPort, AllowFrom: f.AllowFrom})
	}
	return s, nil
}

// Routers are the stack's routers: Router, and with sda:router.pair the
// pair's second router, on its own node with its own ID and hostname.
// Each of a pair shares Router's addresses and has its own besides.
func Routers(c config.Config, p config.Plan) ([]spec.Router, error) {
	first, err := Router(c, p)
	if err != nil || p.RouterPair == nil {
		return []spec.Router{first}, err
	}
	pr := p.RouterPair
	out := []spec.Router{first, first}
	for i, r := range pr.Routers {
		peer := pr.Routers[1-i]
		s := &out[i]
		s.ProxmoxNode, s.VMID, s.Hostname = r.ProxmoxNode, r.VMID, r.Hostname
		s.SSH = ProxmoxSSH(c, p, r.ProxmoxNode)
		s.Pair = &spec.RouterPair{Index: i, VRID: pr.VRID,
			OwnInternalAddress: r.Internal.String(), PeerInternalAddress: peer.Internal.String(),
			OwnExternalAddress: r.External.String(), PeerExternalAddress: peer.External.String()}
	}
	// Both routers serve every host and forward: the slices are shared
	// read-only, as spec values are.
	return out, nil
}

// RouterFiles is what the (first) router's files are rendered from: its
// inputs, a pair's included, parsed as RouterLXC parses them.
func RouterFiles(c config.Config, p config.Plan) (routerfiles.Spec, error) {
	routers, err := Routers(c, p)
	if err != nil {
		return routerfiles.Spec{}, err
	}
	return routers[0].Files()
}

// Cluster is the planned machines as nodes, the internal network, and the
// stack's patches (the user's, then the CNI's) named as `sda render` names
// them.
func Cluster(c config.Config, p config.Plan) spec.Cluster {
	s := spec.Cluster{
		ClusterName: c.Cluster.Name, TalosVersion: c.Cluster.TalosVersion, KubernetesVersion: c.Cluster.KubernetesVersion,
		Extensions: c.Cluster.Extensions, PodCIDR: c.Cluster.PodCIDR, ServiceCIDR: c.Cluster.ServiceCIDR,
		CertSANs: CertSANs(c, p), Patches: Patches(c),
		Datastore: c.Proxmox.Datastore, ImageDatastore: c.Proxmox.ImageDatastore,
		SharedImageDatastore: c.Proxmox.SharedImageDatastore,
		DiskInterface:        c.Nodes.DiskInterface, CPUType: c.Nodes.CPUType,
		Upgrade: spec.Upgrade{WorkerParallelism: c.Cluster.Upgrade.WorkerParallelism,
			TimeoutSeconds: c.Cluster.Upgrade.TimeoutSeconds, PollSeconds: c.Cluster.Upgrade.PollSeconds},
		Network: spec.Network{Gateway: p.RouterInternal.String(), PrefixLen: p.Internal.Bits(),
			Domain: c.Network.Internal.Domain, MTU: p.Network.MTU},
	}
	if p.VIP.IsValid() {
		s.Network.VIP = p.VIP.String()
	}
	for _, m := range p.Machines() {
		s.Nodes = append(s.Nodes, Node(c, m))
	}
	// The provider imports disks over SSH at each node's sshHost (its
	// ssh.nodes, stacks.NewProxmoxProvider): pin the same address's key.
	for _, n := range p.ProxmoxNodes {
		if n.SSHHostKey != "" {
			s.ProxmoxHostKeys = append(s.ProxmoxHostKeys, spec.HostKey{Node: n.Name, Address: n.SSHHost, HostKey: n.SSHHostKey})
		}
	}
	return s
}

// Node is one planned machine as a Talos node.
func Node(c config.Config, m config.Machine) spec.Node {
	return spec.Node{Hostname: m.Hostname, Role: string(m.Role), ProxmoxNode: m.ProxmoxNode, VMID: m.VMID,
		MAC: m.MAC, Address: m.Address.String(),
		Cores: m.Size.Cores, MemoryMiB: m.Size.MemoryMiB, DiskGiB: m.Size.DiskGiB,
		Rebuild: c.Nodes.Rebuild[m.Hostname]}
}

// Patches are the patches the stack adds after SDA's cluster patches:
// the user's sda:cluster.patches, then the CNI's.
func Patches(c config.Config) []spec.Patch {
	var out []spec.Patch
	for i, content := range c.Cluster.Patches {
		out = append(out, spec.Patch{Name: fmt.Sprintf("sda:cluster.patches[%d]", i), Content: content})
	}
	if cni := overlaySpec(c).MachinePatch(); cni != "" {
		out = append(out, spec.Patch{Name: "sda:cni-" + c.Cluster.CNI, Content: cni})
	}
	return out
}

// CertSANs are the API server certificate's names beyond the internal
// API address: the router's external address when a port-forward
// publishes the API there, so a kubeconfig pointing at the router
// verifies.
func CertSANs(c config.Config, p config.Plan) []string {
	if p.RouterExternal.IsValid() && ForwardsKubernetesAPI(c, p) {
		return []string{p.RouterExternal.String()}
	}
	return nil
}

// ForwardsKubernetesAPI reports whether a port-forward on the router
// targets the Kubernetes API: the VIP or a control plane, target port 6443.
func ForwardsKubernetesAPI(c config.Config, p config.Plan) bool {
	apiAddrs := map[string]bool{}
	if p.VIP.IsValid() {
		apiAddrs[p.VIP.String()] = true
	}
	for _, m := range p.ControlPlanes {
		apiAddrs[m.Address.String()] = true
	}
	for _, f := range c.Network.PortForwards {
		target, err := config.ForwardTarget(p, f.Target)
		if err == nil && f.TargetPort == talospatch.KubernetesAPIPort && apiAddrs[target.String()] {
			return true
		}
	}
	return false
}

// Overlay is the stack's CNI.
func Overlay(c config.Config, p config.Plan) spec.Overlay {
	s := overlaySpec(c)
	s.MTU = p.Network.MTU
	return s
}

func overlaySpec(c config.Config) spec.Overlay {
	kpr := c.Cluster.Cilium.KubeProxyReplacementEnabled()
	return spec.Overlay{CNI: c.Cluster.CNI, CiliumVersion: c.Cluster.Cilium.Version, KubeProxyReplacement: &kpr,
		ClusterName: c.Cluster.Name}
}

// ProxmoxSSH is the SSH connection to a Proxmox node, with its pinned
// host key (or the stack's deliberate opt-out).
func ProxmoxSSH(c config.Config, p config.Plan, node string) spec.SSH {
	return spec.SSH{Host: p.SSHHost(node), User: c.Proxmox.SSHUser,
		HostKey: p.SSHHostKey(node), InsecureIgnoreHostKey: c.Proxmox.InsecureIgnoreHostKeys}
}
