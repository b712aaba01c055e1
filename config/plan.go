package config

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/sda-platform/sda/grammar"
)

// Role is a Talos machine type.
type Role string

// The two Talos machine types.
const (
	RoleControlPlane Role = "controlplane"
	RoleWorker       Role = "worker"
)

// Machine is one planned Talos VM.
type Machine struct {
	Role Role
	// Index is 1-based within the role; adding workers appends, removing
	// workers removes the highest indexes, so nothing else moves.
	Index       int
	Hostname    string
	ProxmoxNode string
	VMID        int
	// MAC is fixed so Talos can select the interface by hardware address,
	// whatever the image names the NIC (eth0 on nocloud, ens18 on metal).
	MAC     string
	Address netip.Addr
	Size    VMSize
}

// NodePlan is one Proxmox node the stack uses.
type NodePlan struct {
	Name string
	// SSHHost is where commands for the node's guests run (`pct exec` over
	// SSH) and where the provider imports disks: sda:proxmox.nodes[].sshHost,
	// the node's name when that is not set.
	SSHHost string
	// SSHHostKey is the node's pinned host key in canonical form, empty
	// when not pinned.
	SSHHostKey string
}

// Plan is every address, placement and ID the stack deploys, derived from
// the configuration alone.
type Plan struct {
	Internal netip.Prefix
	External netip.Prefix

	RouterInternal netip.Addr
	// RouterExternal is invalid when the router takes its address by DHCP.
	RouterExternal  netip.Addr
	ExternalGateway netip.Addr
	RouterNode      string
	RouterVMID      int
	// RouterPair is set when the stack runs two routers (sda:router.pair);
	// RouterInternal and RouterExternal are then their shared addresses.
	RouterPair *RouterPairPlan

	// ProxmoxNodes are the Proxmox nodes that host at least one machine of
	// the stack (the router included), in configuration order.
	ProxmoxNodes []NodePlan

	// VIP is invalid when no VIP is configured.
	VIP netip.Addr

	ControlPlanes []Machine
	Workers       []Machine

	DHCPStart netip.Addr
	DHCPEnd   netip.Addr

	// Network is the internal network's mode and MTU across the nodes.
	Network NetworkPlan
}

// Machines returns control planes then workers.
func (p Plan) Machines() []Machine {
	return append(append([]Machine{}, p.ControlPlanes...), p.Workers...)
}

// KubernetesAPIAddress is where the Kubernetes API is reached inside the
// internal network: the VIP when set, else the first control plane.
func (p Plan) KubernetesAPIAddress() netip.Addr {
	if p.VIP.IsValid() {
		return p.VIP
	}
	return p.ControlPlanes[0].Address
}

// KubernetesEndpoint is the cluster endpoint URL written into every machine
// configuration.
func (p Plan) KubernetesEndpoint() string {
	return fmt.Sprintf("https://%s:6443", p.KubernetesAPIAddress())
}

// TalosEndpoints are the control planes' own addresses. Never the VIP: it
// only comes up after etcd is bootstrapped and moves between nodes.
func (p Plan) TalosEndpoints() []string {
	out := make([]string, len(p.ControlPlanes))
	for i, m := range p.ControlPlanes {
		out[i] = m.Address.String()
	}
	return out
}

// ProxmoxNodesUsed lists the names of ProxmoxNodes.
func (p Plan) ProxmoxNodesUsed() []string {
	out := make([]string, len(p.ProxmoxNodes))
	for i, n := range p.ProxmoxNodes {
		out[i] = n.Name
	}
	return out
}

// SSHHost is the SSH address of a node in ProxmoxNodes, the node's name for
// any other node.
func (p Plan) SSHHost(node string) string {
	if n, ok := p.proxmoxNode(node); ok {
		return n.SSHHost
	}
	return node
}

// SSHHostKey is the pinned host key of a node in ProxmoxNodes ("" if none).
func (p Plan) SSHHostKey(node string) string {
	n, _ := p.proxmoxNode(node)
	return n.SSHHostKey
}

func (p Plan) proxmoxNode(name string) (NodePlan, bool) {
	for _, n := range p.ProxmoxNodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodePlan{}, false
}

// proxmoxNodesUsed lists, in configuration order, the Proxmox nodes that
// host at least one of the plan's machines or its router.
func proxmoxNodesUsed(c Config, p Plan) []NodePlan {
	used := map[string]bool{p.RouterNode: true}
	if p.RouterPair != nil {
		used[p.RouterPair.Routers[1].ProxmoxNode] = true
	}
	for _, m := range p.Machines() {
		used[m.ProxmoxNode] = true
	}
	var out []NodePlan
	for _, n := range c.Proxmox.Nodes {
		if used[n.Name] {
			used[n.Name] = false
			host := n.SSHHost
			if host == "" {
				host = n.Name
			}
			key, _ := grammar.SSHHostKey(n.SSHHostKey)
			out = append(out, NodePlan{Name: n.Name, SSHHost: host, SSHHostKey: key})
		}
	}
	return out
}

// Hostname of the machine with the given role and 1-based index.
func Hostname(cluster string, role Role, index int) string {
	if role == RoleControlPlane {
		return fmt.Sprintf("%s-cp%d", cluster, index)
	}
	return fmt.Sprintf("%s-worker%d", cluster, index)
}

// MACFor derives a stable, locally administered unicast MAC from the cluster
// and host names, so a VM keeps its MAC (and Talos its interface) forever.
func MACFor(cluster, hostname string) string {
	sum := sha256.Sum256([]byte(cluster + "/" + hostname))
	return fmt.Sprintf("02:%02X:%02X:%02X:%02X:%02X", sum[0], sum[1], sum[2], sum[3], sum[4])
}

// hostAt returns the address offset hosts into prefix (offset 0 is the network).
func hostAt(p netip.Prefix, offset int) netip.Addr {
	base := binary.BigEndian.Uint32(p.Masked().Addr().AsSlice())
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], base+uint32(offset))
	return netip.AddrFrom4(b)
}

// offsetOf is the inverse of hostAt.
func offsetOf(p netip.Prefix, a netip.Addr) int {
	return int(binary.BigEndian.Uint32(a.AsSlice()) - binary.BigEndian.Uint32(p.Masked().Addr().AsSlice()))
}

// hostCount is the number of addresses in prefix, network and broadcast included.
func hostCount(p netip.Prefix) int {
	return 1 << (32 - p.Bits())
}

// buildPlan derives the plan. It assumes the fields it parses were checked by
// Validate (it is only called from there and from Resolve).
func buildPlan(c Config) Plan {
	in := netip.MustParsePrefix(c.Network.Internal.CIDR).Masked()
	p := Plan{Internal: in}
	if c.Network.External.CIDR != "" {
		p.External = netip.MustParsePrefix(c.Network.External.CIDR).Masked()
	}
	p.RouterInternal = hostAt(in, c.Network.Internal.RouterOffset)
	if c.Network.External.RouterAddress != "dhcp" {
		p.RouterExternal = netip.MustParseAddr(c.Network.External.RouterAddress)
	}
	if c.Network.External.Gateway != "" {
		p.ExternalGateway = netip.MustParseAddr(c.Network.External.Gateway)
	}
	if c.Cluster.VIP != "" {
		p.VIP = netip.MustParseAddr(c.Cluster.VIP)
	}
	nodes := c.Proxmox.Nodes
	p.RouterNode = nodes[0].Name
	p.RouterVMID = c.Router.VMID
	if c.Router.Pair != nil {
		p.RouterPair = pairPlan(c, in)
		p.RouterNode = p.RouterPair.Routers[0].ProxmoxNode
	}

	machine := func(role Role, i, offset, nodeIndex int, size VMSize) Machine {
		host := Hostname(c.Cluster.Name, role, i+1)
		return Machine{
			Role:        role,
			Index:       i + 1,
			Hostname:    host,
			ProxmoxNode: nodes[nodeIndex%len(nodes)].Name,
			VMID:        c.Proxmox.VMIDBase + offset + i,
			MAC:         MACFor(c.Cluster.Name, host),
			Address:     hostAt(in, offset+i),
			Size:        size,
		}
	}
	// Control planes go round-robin from the first Proxmox node, so with
	// three or more nodes no two control planes share a host. Workers go
	// round-robin from the second node, so the first worker lands beside, not
	// on, the first control plane. A machine's node depends only on its own
	// role and index, so scaling never moves an existing VM.
	for i := 0; i < c.Cluster.ControlPlanes; i++ {
		p.ControlPlanes = append(p.ControlPlanes,
			machine(RoleControlPlane, i, c.Network.Internal.ControlPlaneOffset, i, c.Nodes.ControlPlane))
	}
	for i := 0; i < c.Cluster.Workers; i++ {
		p.Workers = append(p.Workers,
			machine(RoleWorker, i, c.Network.Internal.WorkerOffset, i+1, c.Nodes.Worker))
	}

	p.ProxmoxNodes = proxmoxNodesUsed(c, p)
	p.Network = networkPlan(c, p.ProxmoxNodesUsed())

	size := hostCount(in)
	if c.Network.Internal.DHCPStart != "" {
		p.DHCPStart = netip.MustParseAddr(c.Network.Internal.DHCPStart)
	} else {
		p.DHCPStart = hostAt(in, size*3/4)
	}
	if c.Network.Internal.DHCPEnd != "" {
		p.DHCPEnd = netip.MustParseAddr(c.Network.Internal.DHCPEnd)
	} else {
		p.DHCPEnd = hostAt(in, size-2)
	}
	return p
}
