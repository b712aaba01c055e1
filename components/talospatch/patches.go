package talospatch

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sda-platform/sda/components/overlay"
)

// KubernetesAPIPort is the port the Kubernetes API server listens on, on
// every control plane and on the VIP.
const KubernetesAPIPort = 6443

// Talos's own pod and service networks, used when Cluster leaves them empty.
const (
	DefaultPodCIDR     = "10.244.0.0/16"
	DefaultServiceCIDR = "10.96.0.0/12"
)

// Named is a patch and the name of where it comes from, so a list of
// patches is never addressed by position.
type Named struct {
	// Source is "sda:<what>" for SDA's own patches; callers name theirs
	// (the SDA stack: "sda:cluster.patches[i]", "sda:cni-cilium").
	Source  string
	Content string
}

// Contents are the patches' texts, in order: what the Talos provider takes.
func Contents(patches []Named) []string {
	out := make([]string, 0, len(patches))
	for _, p := range patches {
		out = append(out, p.Content)
	}
	return out
}

// Cluster is everything the patches of a cluster's machines derive from.
// It carries no SDA stack configuration: TalosCluster fills it from its
// Args, `sda render` from the stack's configuration and plan.
type Cluster struct {
	// TalosVersion picks the hostname patch's form (vX.Y.Z).
	TalosVersion string
	// APIAddress is where clients inside reach the Kubernetes API: the VIP,
	// else the first control plane. It is the API certificate's first name.
	APIAddress string
	// ExtraCertSANs are further names on the API server certificate.
	ExtraCertSANs []string
	// PodCIDR and ServiceCIDR default to Talos's own.
	PodCIDR, ServiceCIDR string
	// SchedulableControlPlanes lets pods run on control planes (a cluster
	// without workers).
	SchedulableControlPlanes bool
	// Extra are the caller's patches, applied after SDA's cluster patches
	// and before each node's own, in order.
	Extra []Named

	// InstallDisk and InstallerImage go into every node's install section.
	InstallDisk    string
	InstallerImage string
	// PrefixLen of the internal network, Gateway the router's internal
	// address (also the nameserver), VIP the control planes' shared
	// address ("" for none), MTU the link's (0 or 1500: the default).
	PrefixLen int
	Gateway   string
	VIP       string
	MTU       int
}

// Node is one machine as its own patches see it.
type Node struct {
	Hostname string
	// MAC selects the NIC; Address is its static IPv4 address.
	MAC          string
	Address      string
	ControlPlane bool
}

// MachinePatches is the one ordered, named list of patches a machine gets:
// ClusterPatches (each role's generated configuration), then NodePatches
// (applied to the node). TalosCluster hands these very lists to the Talos
// provider; `sda render` applies and validates them with Talos's machinery.
func MachinePatches(c Cluster, n Node) []Named {
	return append(ClusterPatches(c), NodePatches(c, n)...)
}

// ClusterPatches are the patches every machine of the cluster gets, in the
// order they must be applied: KubePrism, the API server certificate SANs,
// the pod and service networks, scheduling on control planes when asked,
// then the caller's Extra patches last so they can override SDA's.
func ClusterPatches(c Cluster) []Named {
	patches := []Named{
		// KubePrism is on by default since Talos 1.6; SDA states it anyway
		// because Cilium's kube-proxy replacement reaches the API through it
		// (overlay.CiliumValues), so turning it off must be a visible choice.
		{"sda:kubeprism", mustYAML(map[string]any{"machine": map[string]any{"features": map[string]any{
			"kubePrism": map[string]any{"enabled": true, "port": overlay.KubePrismPort},
		}}})},
		{"sda:apiserver-certsans", mustYAML(map[string]any{"cluster": map[string]any{"apiServer": map[string]any{
			"certSANs": APIServerSANs(c),
		}}})},
		// Talos's defaults are stated too: the configuration validates them
		// against the other networks, and both lists replace (not extend)
		// the generated ones.
		{"sda:kubernetes-networks", KubernetesNetworksPatch(c.PodCIDR, c.ServiceCIDR)},
	}
	if c.SchedulableControlPlanes {
		patches = append(patches, Named{"sda:schedule-on-control-planes", mustYAML(map[string]any{"cluster": map[string]any{
			"allowSchedulingOnControlPlanes": true,
		}})})
	}
	return append(patches, c.Extra...)
}

// KubernetesNetworksPatch sets the pod and service networks ("" takes
// Talos's default).
func KubernetesNetworksPatch(pods, services string) string {
	if pods == "" {
		pods = DefaultPodCIDR
	}
	if services == "" {
		services = DefaultServiceCIDR
	}
	return mustYAML(map[string]any{"cluster": map[string]any{"network": map[string]any{
		"podSubnets":     []string{pods},
		"serviceSubnets": []string{services},
	}}})
}

// APIServerSANs are the extra names on the API server certificate: the
// address clients inside use, then the caller's extra names (SDA's stack
// adds the router's external address when a port-forward publishes the
// API there, so a kubeconfig pointing at the router verifies).
func APIServerSANs(c Cluster) []string {
	return append([]string{c.APIAddress}, c.ExtraCertSANs...)
}

// InstallDisk is the disk Talos installs to behind a VM disk interface
// ("scsi" or "virtio").
func InstallDisk(diskInterface string) string {
	if diskInterface == "virtio" {
		return "/dev/vda"
	}
	return "/dev/sda"
}

// NodePatches are one machine's own patches, applied after the cluster's:
// hostname, install disk and image, and the network interface.
func NodePatches(c Cluster, n Node) []Named {
	return []Named{
		{"sda:hostname", hostnamePatch(c.TalosVersion, n.Hostname)},
		{"sda:install", mustYAML(map[string]any{"machine": map[string]any{"install": map[string]any{
			"disk":  c.InstallDisk,
			"image": c.InstallerImage,
		}}})},
		{"sda:network", networkPatch(c, n)},
	}
}

// hostnamePatch sets the static hostname. Talos 1.12 generates a
// HostnameConfig document (auto: stable), which conflicts with the legacy
// machine.network.hostname, so from 1.12 on the hostname goes into that
// document (auto: off, as Talos requires with a static name); older Talos
// does not know the document and takes the legacy field.
func hostnamePatch(talosVersion, hostname string) string {
	if !multidocNetworkConfig(talosVersion) {
		return mustYAML(map[string]any{"machine": map[string]any{"network": map[string]any{
			"hostname": hostname,
		}}})
	}
	return mustYAML(struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Auto       string `yaml:"auto"`
		Hostname   string `yaml:"hostname"`
	}{"v1alpha1", "HostnameConfig", "off", hostname})
}

// networkPatch configures the VM's only NIC. It is selected by MAC because
// the NIC is eth0 on the nocloud image but ens18 on metal; Talos matches the
// selector against the kernel's lowercase form of the address, case
// sensitively, so the MAC is lowercased here. The VIP (control planes only)
// is the legacy interfaces[].vip form, which Talos 1.12 still accepts and
// validates without warnings, and which older Talos also understands.
func networkPatch(c Cluster, n Node) string {
	iface := map[string]any{
		"deviceSelector": map[string]any{"hardwareAddr": strings.ToLower(n.MAC)},
		"dhcp":           false,
		"addresses":      []string{fmt.Sprintf("%s/%d", n.Address, c.PrefixLen)},
		"routes": []map[string]any{
			{"network": "0.0.0.0/0", "gateway": c.Gateway},
		},
	}
	// The link MTU follows the internal network's (1450 under VXLAN); only
	// a non-default one is written, so 1500 stacks keep their config.
	// Flannel (Talos's default CNI) derives its VXLAN MTU from this link.
	if mtu := c.MTU; mtu != 0 && mtu != 1500 {
		iface["mtu"] = mtu
	}
	if n.ControlPlane && c.VIP != "" {
		iface["vip"] = map[string]any{"ip": c.VIP}
	}
	return mustYAML(map[string]any{"machine": map[string]any{"network": map[string]any{
		"interfaces": []any{iface},
		// The router's dnsmasq answers for the internal domain and forwards
		// the rest upstream.
		"nameservers": []string{c.Gateway},
	}}})
}

// multidocNetworkConfig reports whether the Talos version takes the
// multi-document network configuration (HostnameConfig), i.e. is 1.12 or
// newer. An unparseable version counts as new: config validation rejects it
// before anything is deployed.
func multidocNetworkConfig(talosVersion string) bool {
	parts := strings.SplitN(strings.TrimPrefix(talosVersion, "v"), ".", 3)
	if len(parts) < 2 {
		return true
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return major > 1 || (major == 1 && minor >= 12)
}

func mustYAML(v any) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		// Only maps, slices, strings, ints and bools are marshaled here.
		panic(err)
	}
	return string(out)
}
