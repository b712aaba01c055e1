package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/grammar"
)

// Talos machine roles (Node.Role).
const (
	RoleControlPlane = "controlplane"
	RoleWorker       = "worker"
)

// DefaultCPUType is the VMs' CPU type when none is given: the host's own,
// which offers the x86-64-v2 Talos needs (QEMU's default kvm64 lacks it).
const DefaultCPUType = "host"

// Cluster is TalosCluster's input: the Talos and Kubernetes releases, the
// nodes, their network and patches, and where their disks and image live.
// Field documentation is on components.TalosClusterArgs.
type Cluster struct {
	ClusterName          string
	TalosVersion         string
	KubernetesVersion    string
	Extensions           []string
	Nodes                []Node
	Network              Network
	PodCIDR              string
	ServiceCIDR          string
	CertSANs             []string
	Patches              []Patch
	Datastore            string
	ImageDatastore       string
	SharedImageDatastore bool
	DiskInterface        string
	CPUType              string
	// Upgrade is the zero value for the defaults.
	Upgrade         Upgrade
	ProxmoxHostKeys []HostKey
}

// Node is one Talos VM (components.TalosNodeSpec).
type Node struct {
	Hostname    string
	Role        string
	ProxmoxNode string
	VMID        int
	MAC         string
	Address     string
	Cores       int
	MemoryMiB   int
	DiskGiB     int
	Rebuild     int
}

// Network is the internal network the nodes are on
// (components.TalosNetworkArgs).
type Network struct {
	Gateway   string
	PrefixLen int
	Domain    string
	VIP       string
	MTU       int
}

// Upgrade tunes the rolling upgrade (components.TalosUpgradeArgs).
type Upgrade struct {
	WorkerParallelism int
	TimeoutSeconds    int
	PollSeconds       int
}

// Patch is one named machine-config patch (components.TalosPatch).
type Patch struct {
	Name    string
	Content string
}

// HostKey is one Proxmox node's pinned SSH host key
// (components.ProxmoxHostKeyArgs).
type HostKey struct {
	Node    string
	Address string
	Port    int
	HostKey string
}

// ControlPlanes are the control-plane nodes in declared order.
func (c Cluster) ControlPlanes() []Node { return c.nodesOf(RoleControlPlane) }

// Workers are the worker nodes in declared order.
func (c Cluster) Workers() []Node { return c.nodesOf(RoleWorker) }

// ControlPlaneAddresses are the control planes' own addresses: the Talos
// API's endpoints (never the VIP).
func (c Cluster) ControlPlaneAddresses() []string {
	var out []string
	for _, n := range c.ControlPlanes() {
		out = append(out, n.Address)
	}
	return out
}

// Ordered is every node, control planes first: the order nodes are
// registered, upgraded and listed in.
func (c Cluster) Ordered() []Node { return append(c.ControlPlanes(), c.Workers()...) }

func (c Cluster) nodesOf(role string) []Node {
	var out []Node
	for _, n := range c.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// APIAddress is where the cluster reaches its Kubernetes API: the VIP,
// else the first control plane. Validate first.
func (c Cluster) APIAddress() string {
	if c.Network.VIP != "" {
		return c.Network.VIP
	}
	return c.ControlPlanes()[0].Address
}

// Endpoint is the Kubernetes API's URL.
func (c Cluster) Endpoint() string {
	return fmt.Sprintf("https://%s:%d", c.APIAddress(), talospatch.KubernetesAPIPort)
}

// EffectiveCPUType is CPUType or its default.
func (c Cluster) EffectiveCPUType() string {
	if c.CPUType == "" {
		return DefaultCPUType
	}
	return c.CPUType
}

// PatchCluster is the cluster as the Talos patches see it. The installer
// image is the caller's: it follows from the schematic's ID.
func (c Cluster) PatchCluster(installerImage string) talospatch.Cluster {
	pc := talospatch.Cluster{
		TalosVersion:             c.TalosVersion,
		APIAddress:               c.APIAddress(),
		ExtraCertSANs:            c.CertSANs,
		PodCIDR:                  c.PodCIDR,
		ServiceCIDR:              c.ServiceCIDR,
		SchedulableControlPlanes: len(c.Workers()) == 0,
		InstallDisk:              talospatch.InstallDisk(c.DiskInterface),
		InstallerImage:           installerImage,
		PrefixLen:                c.Network.PrefixLen,
		Gateway:                  c.Network.Gateway,
		VIP:                      c.Network.VIP,
		MTU:                      c.Network.MTU,
	}
	for _, p := range c.Patches {
		pc.Extra = append(pc.Extra, talospatch.Named{Source: p.Name, Content: p.Content})
	}
	return pc
}

// PatchNode is a node as its own patches see it.
func (n Node) PatchNode() talospatch.Node {
	return talospatch.Node{Hostname: n.Hostname, MAC: n.MAC, Address: n.Address, ControlPlane: n.Role == RoleControlPlane}
}

// RebootingPatches identifies the patches Talos applies only with a
// reboot: a digest of their names and contents, "" when there are none.
func (c Cluster) RebootingPatches() string {
	h := sha256.New()
	n := 0
	for _, p := range c.Patches {
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

var (
	// versionRE is a release as Talos and Kubernetes write it (v optional).
	versionRE = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)
	// extensionRE is an Image Factory extension name, such as
	// siderolabs/qemu-guest-agent.
	extensionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$`)
	// storageRE is a Proxmox storage ID (pve-storage's pve-storage-id
	// format: a letter, then letters, digits, '-', '_' and '.').
	storageRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]*$`)
)

// Validate checks every input that reaches a Talos patch, the Image
// Factory schematic or a Proxmox API path, with the stack configuration's
// allow-lists (grammar). Each error names the field, the value and the fix.
func (c Cluster) Validate() error {
	if err := c.validateNodes(); err != nil {
		return err
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	if err := c.Network.validate(); err != nil {
		return err
	}
	return c.validateLists()
}

// validateNodes checks each node: its name (a Talos hostname, a DNS
// record), address, MAC, Proxmox node and role.
func (c Cluster) validateNodes() error {
	for i, n := range c.Nodes {
		field := fmt.Sprintf("Nodes[%d]", i)
		if !grammar.DNSLabel(n.Hostname) {
			return fmt.Errorf("%s.Hostname = %q is not a DNS label: write lowercase letters, digits and inner hyphens, such as lab-cp1", field, n.Hostname)
		}
		if a, err := netip.ParseAddr(n.Address); err != nil || !a.Is4() {
			return fmt.Errorf("%s.Address = %q is not an IPv4 address: write one such as 10.10.0.11", field, n.Address)
		}
		if _, err := net.ParseMAC(n.MAC); err != nil {
			return fmt.Errorf("%s.MAC = %q is not a MAC address: write one such as 02:00:0a:0a:00:0b", field, n.MAC)
		}
		if !grammar.DNSLabel(n.ProxmoxNode) {
			return fmt.Errorf("%s.ProxmoxNode = %q is not a Proxmox node name: write it as `pvecm nodes` shows it, such as pve", field, n.ProxmoxNode)
		}
		if n.Role != RoleControlPlane && n.Role != RoleWorker {
			return fmt.Errorf("node %q: role %q: use %q or %q", n.Hostname, n.Role, RoleControlPlane, RoleWorker)
		}
	}
	return nil
}

// validateCluster checks the cluster's name, releases, control planes and
// storages.
func (c Cluster) validateCluster() error {
	switch {
	case c.ClusterName == "" || c.TalosVersion == "" || c.KubernetesVersion == "":
		return fmt.Errorf("ClusterName, TalosVersion and KubernetesVersion are required")
	case !grammar.DNSLabel(c.ClusterName):
		return fmt.Errorf("ClusterName = %q is not a DNS label: write lowercase letters, digits and inner hyphens, such as lab", c.ClusterName)
	case !versionRE.MatchString(c.TalosVersion) || c.TalosVersion[0] != 'v':
		return fmt.Errorf("TalosVersion = %q is not a Talos release: write one such as v1.12.0", c.TalosVersion)
	case !versionRE.MatchString(c.KubernetesVersion):
		return fmt.Errorf("KubernetesVersion = %q is not a Kubernetes release: write one such as v1.35.0", c.KubernetesVersion)
	case len(c.ControlPlanes()) == 0:
		return fmt.Errorf("at least one control-plane node is required")
	case !storageRE.MatchString(c.Datastore) || !storageRE.MatchString(c.ImageDatastore):
		return fmt.Errorf("Datastore = %q, ImageDatastore = %q: name Proxmox storages, such as local-lvm and local", c.Datastore, c.ImageDatastore)
	}
	return nil
}

// validate checks the nodes' network: the gateway, prefix, domain, MTU
// and VIP that reach every node's patches.
func (nw Network) validate() error {
	switch {
	case nw.Gateway == "" || nw.PrefixLen == 0:
		return fmt.Errorf("Network.Gateway and Network.PrefixLen are required")
	case nw.PrefixLen < 8 || nw.PrefixLen > 30:
		return fmt.Errorf("Network.PrefixLen = %d: use the internal network's prefix length, 8 to 30", nw.PrefixLen)
	case nw.Domain != "" && !grammar.Domain(nw.Domain):
		return fmt.Errorf("Network.Domain = %q is not a DNS domain: write lowercase labels joined by dots, such as lab.internal", nw.Domain)
	case nw.MTU != 0 && (nw.MTU < 1280 || nw.MTU > 9000):
		return fmt.Errorf("Network.MTU = %d: use 1280 to 9000, or 0 for 1500", nw.MTU)
	}
	if a, err := netip.ParseAddr(nw.Gateway); err != nil || !a.Is4() {
		return fmt.Errorf("Network.Gateway = %q is not an IPv4 address: write the router's internal address, such as 10.10.0.1", nw.Gateway)
	}
	if nw.VIP != "" {
		if a, err := netip.ParseAddr(nw.VIP); err != nil || !a.Is4() {
			return fmt.Errorf("Network.VIP = %q is not an IPv4 address: write one such as 10.10.0.10, or leave it empty", nw.VIP)
		}
	}
	return nil
}

// validateLists checks the certificate names, extensions and host keys.
func (c Cluster) validateLists() error {
	for i, san := range c.CertSANs {
		if _, err := netip.ParseAddr(san); err != nil && !grammar.Domain(san) {
			return fmt.Errorf("CertSANs[%d] = %q is neither an IP address nor a DNS name", i, san)
		}
	}
	for i, e := range c.Extensions {
		if !extensionRE.MatchString(e) {
			return fmt.Errorf("Extensions[%d] = %q is not an Image Factory extension: write one such as siderolabs/qemu-guest-agent", i, e)
		}
	}
	for i, k := range c.ProxmoxHostKeys {
		if _, err := grammar.SSHHostKey(k.HostKey); err != nil {
			return fmt.Errorf("ProxmoxHostKeys[%d].HostKey %v", i, err)
		}
		if !grammar.DNSLabel(k.Node) || k.Address == "" {
			return fmt.Errorf("ProxmoxHostKeys[%d]: Node (a Proxmox node name) and Address are required", i)
		}
	}
	return nil
}
