// Package config is the typed configuration of an SDA stack: the struct tree
// read from stack configuration (Pulumi.<stack>.yaml), its defaults, its
// validation and the address plan derived from it.
//
// It is pure: no Pulumi or provider SDK is imported, so everything here is
// tested in milliseconds and shared by the Pulumi program, the offline
// `sda plan|render|diagram` commands and the router's network-namespace test.
package config

import "github.com/sda-platform/sda/components/spec"

// Namespace is the Pulumi configuration namespace of the project's own keys
// (`sda:cluster`, `sda:proxmox`, ...). Provider credentials live in the
// providers' namespaces (`proxmoxve:endpoint`, `proxmoxve:apiToken`).
const Namespace = "sda"

// Config is the whole stack configuration. Each field is one top-level
// configuration key, an object in the stack file.
type Config struct {
	Cluster Cluster `json:"cluster"`
	Proxmox Proxmox `json:"proxmox"`
	Network Network `json:"network"`
	Nodes   Nodes   `json:"nodes"`
	Router  Router  `json:"router"`
}

// Sections lists the top-level keys in the order they are documented.
var Sections = []string{"cluster", "proxmox", "network", "nodes", "router"}

// Cluster describes the Talos/Kubernetes cluster.
type Cluster struct {
	// Name is the Kubernetes cluster name and the prefix of every hostname.
	Name string `json:"name"`
	// TalosVersion is the Talos release of the boot image and installer (vX.Y.Z).
	TalosVersion string `json:"talosVersion"`
	// KubernetesVersion is the Kubernetes release Talos installs (vX.Y.Z).
	KubernetesVersion string `json:"kubernetesVersion"`
	// ControlPlanes is the number of control-plane nodes: odd, for etcd quorum.
	ControlPlanes int `json:"controlPlanes"`
	// Workers is the number of worker nodes (0 makes control planes schedulable).
	Workers int `json:"workers"`
	// VIP is the optional shared control-plane address for the Kubernetes API,
	// inside the internal network.
	VIP string `json:"vip,omitempty"`
	// CNI is the overlay network: "flannel" (Talos's default) or "cilium".
	CNI string `json:"cni"`
	// Cilium tunes the Cilium installation; ignored with flannel.
	Cilium Cilium `json:"cilium"`
	// Extensions are the Image Factory system extensions baked into the image.
	Extensions []string `json:"extensions"`
	// PodCIDR and ServiceCIDR are Kubernetes' own networks: pod addresses
	// (each node gets a /24 of PodCIDR) and service cluster IPs. They must
	// not overlap each other or any network packets are routed to.
	PodCIDR     string `json:"podCidr"`
	ServiceCIDR string `json:"serviceCidr"`
	// Patches are extra Talos machine-config patches (YAML strategic-merge
	// documents) applied to every node after SDA's own.
	Patches []string `json:"patches,omitempty"`
	// Upgrade tunes how a change of TalosVersion or Extensions rolls over
	// the running nodes.
	Upgrade Upgrade `json:"upgrade,omitempty"`
}

// Upgrade tunes the rolling Talos upgrade: control planes one at a time,
// then workers WorkerParallelism at a time, each gated on the cluster's
// health before and after.
type Upgrade struct {
	// WorkerParallelism is how many workers upgrade at once (0: 1).
	WorkerParallelism int `json:"workerParallelism,omitempty"`
	// TimeoutSeconds bounds each wait: the cluster becoming healthy, a node
	// coming back on the new version (0: 900).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// PollSeconds is the interval between health checks (0: 5).
	PollSeconds int `json:"pollSeconds,omitempty"`
}

// Cilium settings.
type Cilium struct {
	// Version is the Cilium Helm chart version.
	Version string `json:"version"`
	// KubeProxyReplacement replaces kube-proxy with Cilium's eBPF service
	// handling; Talos's kube-proxy is then disabled.
	KubeProxyReplacement *bool `json:"kubeProxyReplacement,omitempty"`
}

// KubeProxyReplacementEnabled reports the effective setting (default on).
func (c Cilium) KubeProxyReplacementEnabled() bool {
	return c.KubeProxyReplacement == nil || *c.KubeProxyReplacement
}

// Proxmox describes the Proxmox VE cluster that hosts the stack.
type Proxmox struct {
	// Nodes are the Proxmox nodes the stack places VMs on, round-robin.
	Nodes []ProxmoxNode `json:"nodes"`
	// VMIDBase is added to each machine's host offset in the internal network
	// to form its VM ID (router .1 -> base+1, first control plane .11 -> base+11).
	VMIDBase int `json:"vmIdBase"`
	// Datastore holds VM and container disks.
	Datastore string `json:"datastore"`
	// ImageDatastore holds the downloaded Talos image and LXC template
	// (content types iso and vztmpl).
	ImageDatastore string `json:"imageDatastore"`
	// SharedImageDatastore is true when ImageDatastore is shared storage, so
	// images are downloaded once for the whole cluster instead of once per node.
	SharedImageDatastore bool `json:"sharedImageDatastore"`
	// SSHUser is the user for `pct` commands on the Proxmox hosts.
	SSHUser string `json:"sshUser"`
	// InsecureIgnoreHostKeys connects to nodes without a pinned host key,
	// accepting whatever answers on their address. Warned about on every run.
	InsecureIgnoreHostKeys bool `json:"insecureIgnoreHostKeys,omitempty"`
}

// ProxmoxNode is one Proxmox VE node.
type ProxmoxNode struct {
	// Name is the node name as Proxmox knows it (`pvecm nodes`).
	Name string `json:"name"`
	// SSHHost is the address the router configuration is applied through
	// (`pct exec` over SSH); defaults to Name.
	SSHHost string `json:"sshHost,omitempty"`
	// ClusterAddress is the node's IPv4 address on the Proxmox cluster
	// network, its VXLAN peer address (mode vxlan); defaults to SSHHost.
	ClusterAddress string `json:"clusterAddress,omitempty"`
	// SSHHostKey pins the node's SSH host key ("ssh-ed25519 AAAA…", as in
	// /etc/ssh/ssh_host_ed25519_key.pub): every SSH connection to SSHHost
	// is refused unless the node proves it holds that key. `sda trust`
	// fetches it for confirmation.
	SSHHostKey string `json:"sshHostKey,omitempty"`
}

// Network describes both sides of the router.
type Network struct {
	External External `json:"external"`
	Internal Internal `json:"internal"`
	// Upstream DNS servers the router forwards to.
	DNSServers []string `json:"dnsServers"`
	// AdminCIDRs may reach the Talos API (50000) on the nodes and the
	// Kubernetes API (6443) through the router. Empty means nobody may.
	AdminCIDRs []string `json:"adminCidrs"`
	// TalosAPICIDRs, when set, are who may reach the Talos API (50000)
	// instead of AdminCIDRs: a node in maintenance mode accepts an
	// unauthenticated configuration there, so narrow it to the deployer.
	TalosAPICIDRs []string `json:"talosApiCidrs,omitempty"`
	// PortForwards publish internal services on the router's external address.
	PortForwards []PortForward `json:"portForwards"`
}

// External is the network the router's first NIC is on.
type External struct {
	// Bridge is the existing Proxmox bridge with the uplink (vmbr0).
	Bridge string `json:"bridge"`
	// CIDR of the external network, e.g. 192.168.1.0/24.
	CIDR string `json:"cidr"`
	// RouterAddress is the router's static external address, or "dhcp".
	RouterAddress string `json:"routerAddress"`
	// Gateway is the external default gateway (required with a static address).
	Gateway string `json:"gateway,omitempty"`
	// VLAN tags the router's external NIC; 0 means untagged.
	VLAN int `json:"vlan,omitempty"`
}

// Internal is the isolated network of the Talos nodes.
type Internal struct {
	// Bridge is the Proxmox bridge of the isolated network.
	Bridge string `json:"bridge"`
	// Mode makes the bridge one segment on every Proxmox node in use:
	// "bridge" (no ports: one node only), "vlan", "vxlan" or "existing"
	// (see network_mode.go). Unset: CreateBridge decides, as before modes.
	Mode string `json:"mode,omitempty"`
	// VLAN configures mode vlan, VXLAN mode vxlan.
	VLAN  *InternalVLAN  `json:"vlan,omitempty"`
	VXLAN *InternalVXLAN `json:"vxlan,omitempty"`
	// MTU of the internal network (guest NICs, Talos links, the router, the
	// CNI): default 1500, and 50 below the underlay in mode vxlan.
	MTU int `json:"mtu,omitempty"`
	// CreateBridge is the setting from before modes: false means mode
	// existing, unset or true mode bridge. Prefer Mode.
	CreateBridge *bool `json:"createBridge,omitempty"`
	// CIDR of the internal network, e.g. 10.10.0.0/24.
	CIDR string `json:"cidr"`
	// Domain is the DNS domain the router serves for the nodes.
	Domain string `json:"domain"`
	// RouterOffset, VIPOffset, ControlPlaneOffset and WorkerOffset are host
	// offsets inside CIDR: control plane i gets ControlPlaneOffset+i-1.
	RouterOffset       int `json:"routerOffset"`
	ControlPlaneOffset int `json:"controlPlaneOffset"`
	WorkerOffset       int `json:"workerOffset"`
	// DHCPStart and DHCPEnd bound the router's dynamic range; by default the
	// last quarter of the subnet.
	DHCPStart string `json:"dhcpStart,omitempty"`
	DHCPEnd   string `json:"dhcpEnd,omitempty"`
}

// CreateBridgeEnabled reports the effective setting (default on).
func (i Internal) CreateBridgeEnabled() bool {
	return i.CreateBridge == nil || *i.CreateBridge
}

// PortForward publishes Target:TargetPort on the router's external address.
type PortForward struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	// Target is a node hostname, "vip", or an internal IPv4 address.
	Target     string `json:"target"`
	TargetPort int    `json:"targetPort,omitempty"`
	// AllowFrom limits who may use the forward (IPv4 CIDRs); empty means anyone
	// on the external side.
	AllowFrom []string `json:"allowFrom,omitempty"`
}

// Nodes sizes the Talos VMs.
type Nodes struct {
	ControlPlane VMSize `json:"controlPlane"`
	Worker       VMSize `json:"worker"`
	// DiskInterface is "scsi" (install disk /dev/sda) or "virtio" (/dev/vda).
	DiskInterface string `json:"diskInterface"`
	// CPUType must offer x86-64-v2: "host" or "x86-64-v2-AES".
	CPUType string `json:"cpuType"`
	// Rebuild asks for nodes to be rebuilt, by hostname: raising a node's
	// number (from 0, its implicit value) makes the next `up` remove it
	// from the cluster quorum-safely, recreate its VM with the same name,
	// ID and address, and join it again, touching nothing else. Keep the
	// entry afterwards: the plugin refuses a lowered number (or a removed
	// entry, which is 0), since any change of it would rebuild the node.
	Rebuild map[string]int `json:"rebuild,omitempty"`
}

// VMSize is the size of one VM.
type VMSize struct {
	Cores     int `json:"cores"`
	MemoryMiB int `json:"memoryMiB"`
	DiskGiB   int `json:"diskGiB"`
}

// Router describes the LXC router.
type Router struct {
	Hostname string `json:"hostname"`
	// VMID overrides the container's ID (default VMIDBase + RouterOffset).
	VMID        int    `json:"vmId,omitempty"`
	Cores       int    `json:"cores"`
	MemoryMiB   int    `json:"memoryMiB"`
	DiskGiB     int    `json:"diskGiB"`
	TemplateURL string `json:"templateUrl"`
	// TemplateChecksum is the template's SHA-256, SHA-384 or SHA-512 (hex;
	// the algorithm follows from its length), checked by Proxmox on
	// download. Required with a TemplateURL of one's own.
	TemplateChecksum string `json:"templateChecksum,omitempty"`
	// Pair, when set, runs a second router on another Proxmox node: the
	// two share the internal gateway and sda:network.external.routerAddress
	// as VRRP virtual addresses, so the loss of either keeps the cluster's
	// egress, DNS, DHCP and port-forwards (router_pair.go).
	Pair *RouterPair `json:"pair,omitempty"`
}

// Defaults the configuration falls back to, key by key.
const (
	DefaultTalosVersion      = "v1.12.0"
	DefaultKubernetesVersion = "v1.35.0"
	DefaultCiliumVersion     = "1.18.4"
	// Talos's own defaults for the pod and service networks.
	DefaultPodCIDR           = "10.244.0.0/16"
	DefaultServiceCIDR       = "10.96.0.0/12"
	DefaultRouterTemplateURL = "https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst"
	// DefaultRouterTemplateChecksum is the SHA-512 of DefaultRouterTemplateURL
	// as Proxmox's appliance index lists it (pve-manager aplinfo/aplinfo.dat,
	// commit 218baa5e, 2024-09-12; `pveam` reads the same signed index).
	DefaultRouterTemplateChecksum = "39f6d06e082d6a418438483da4f76092ebd0370a91bad30b82ab6d0f442234d63fe27a15569895e34d6d1e5ca50319f62637f7fb96b98dbde4f6103cf05bff6d"
	QemuGuestAgentExtension       = "siderolabs/qemu-guest-agent"
	CNIFlannel                    = "flannel"
	CNICilium                     = "cilium"
	DiskSCSI                      = "scsi"
	DiskVirtIO                    = "virtio"
)

// WithDefaults returns c with every unset field given its default.
func WithDefaults(c Config) Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	cl := &c.Cluster
	def(&cl.TalosVersion, DefaultTalosVersion)
	def(&cl.KubernetesVersion, DefaultKubernetesVersion)
	def(&cl.CNI, CNIFlannel)
	def(&cl.PodCIDR, DefaultPodCIDR)
	def(&cl.ServiceCIDR, DefaultServiceCIDR)
	def(&cl.Cilium.Version, DefaultCiliumVersion)
	if cl.Extensions == nil {
		cl.Extensions = []string{QemuGuestAgentExtension}
	}

	px := &c.Proxmox
	defInt(&px.VMIDBase, 8000)
	def(&px.Datastore, "local-lvm")
	def(&px.ImageDatastore, "local")
	def(&px.SSHUser, "root")
	for i := range px.Nodes {
		def(&px.Nodes[i].SSHHost, px.Nodes[i].Name)
	}

	nw := &c.Network
	def(&nw.External.Bridge, "vmbr0")
	def(&nw.External.RouterAddress, "dhcp")
	def(&nw.Internal.Bridge, "vmbr1")
	def(&nw.Internal.CIDR, "10.10.0.0/24")
	def(&nw.Internal.Domain, "sda.internal")
	defInt(&nw.Internal.RouterOffset, 1)
	defInt(&nw.Internal.ControlPlaneOffset, 11)
	defInt(&nw.Internal.WorkerOffset, 21)
	if nw.DNSServers == nil {
		nw.DNSServers = []string{"1.1.1.1", "9.9.9.9"}
	}
	for i := range nw.PortForwards {
		def(&nw.PortForwards[i].Protocol, "tcp")
		defInt(&nw.PortForwards[i].TargetPort, nw.PortForwards[i].Port)
	}

	n := &c.Nodes
	defInt(&n.ControlPlane.Cores, 2)
	defInt(&n.ControlPlane.MemoryMiB, 4096)
	defInt(&n.ControlPlane.DiskGiB, 20)
	defInt(&n.Worker.Cores, 2)
	defInt(&n.Worker.MemoryMiB, 4096)
	defInt(&n.Worker.DiskGiB, 40)
	def(&n.DiskInterface, DiskSCSI)
	def(&n.CPUType, spec.DefaultCPUType) // the component's own default, written once

	r := &c.Router
	def(&r.Hostname, "router")
	defInt(&r.Cores, 1)
	defInt(&r.MemoryMiB, 256)
	defInt(&r.DiskGiB, 4)
	// The default template comes with its checksum; a template of one's
	// own needs one too (validate says so).
	if r.TemplateURL == "" || r.TemplateURL == DefaultRouterTemplateURL {
		def(&r.TemplateChecksum, DefaultRouterTemplateChecksum)
	}
	def(&r.TemplateURL, DefaultRouterTemplateURL)
	if r.VMID == 0 {
		r.VMID = px.VMIDBase + nw.Internal.RouterOffset
	}
	pairDefaults(&c)
	withNetworkDefaults(&c)
	return c
}

// InstallDisk is the Talos install disk that matches the VM's disk interface.
func (n Nodes) InstallDisk() string {
	if n.DiskInterface == DiskVirtIO {
		return "/dev/vda"
	}
	return "/dev/sda"
}
