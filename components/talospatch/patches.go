package talospatch

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sda-platform/sda/components/overlay"
	"github.com/sda-platform/sda/stacks/config"
)

// KubernetesAPIPort is the port the Kubernetes API server listens on, on
// every control plane and on the VIP.
const KubernetesAPIPort = 6443

// Named is a patch and the name of where it comes from, so a list of
// patches is never addressed by position.
type Named struct {
	// Source is "sda:<what>" for SDA's own patches and
	// "sda:cluster.patches[i]" for the user's.
	Source  string
	Content string
}

// ClusterPatches are the patches every machine of the cluster gets, in the
// order they must be applied (NamedClusterPatches without the names).
func ClusterPatches(c config.Config, p config.Plan) []string {
	var out []string
	for _, n := range NamedClusterPatches(c, p) {
		out = append(out, n.Content)
	}
	return out
}

// NamedClusterPatches are the patches every machine of the cluster gets, in
// the order they must be applied: KubePrism, the API server certificate
// SANs, the pod and service networks, scheduling on control planes when
// there are no workers, then the user's cluster.patches last so they can
// override SDA's. The CNI patch is not here: it comes from
// overlay.MachinePatch and goes between these and NodePatches.
func NamedClusterPatches(c config.Config, p config.Plan) []Named {
	patches := []Named{
		// KubePrism is on by default since Talos 1.6; SDA states it anyway
		// because Cilium's kube-proxy replacement reaches the API through it
		// (overlay.CiliumValues), so turning it off must be a visible choice.
		{"sda:kubeprism", mustYAML(map[string]any{"machine": map[string]any{"features": map[string]any{
			"kubePrism": map[string]any{"enabled": true, "port": overlay.KubePrismPort},
		}}})},
		{"sda:apiserver-certsans", mustYAML(map[string]any{"cluster": map[string]any{"apiServer": map[string]any{
			"certSANs": APIServerSANs(c, p),
		}}})},
		// Talos's defaults are stated too: the configuration validates them
		// against the other networks, and both lists replace (not extend)
		// the generated ones.
		{"sda:kubernetes-networks", KubernetesNetworksPatch(c.Cluster)},
	}
	if c.Cluster.Workers == 0 {
		// Without workers nothing could run pods; the config reference
		// promises that 0 workers makes the control planes schedulable.
		patches = append(patches, Named{"sda:schedule-on-control-planes", mustYAML(map[string]any{"cluster": map[string]any{
			"allowSchedulingOnControlPlanes": true,
		}})})
	}
	for i, content := range c.Cluster.Patches {
		patches = append(patches, Named{fmt.Sprintf("sda:cluster.patches[%d]", i), content})
	}
	return patches
}

// KubernetesNetworksPatch sets the pod and service networks.
func KubernetesNetworksPatch(cl config.Cluster) string {
	pods, services := cl.PodCIDR, cl.ServiceCIDR
	if pods == "" {
		pods = config.DefaultPodCIDR
	}
	if services == "" {
		services = config.DefaultServiceCIDR
	}
	return mustYAML(map[string]any{"cluster": map[string]any{"network": map[string]any{
		"podSubnets":     []string{pods},
		"serviceSubnets": []string{services},
	}}})
}

// APIServerSANs are the extra names on the API server certificate: the
// address clients inside use (the VIP, else the first control plane), and the
// router's external address when a port-forward publishes the API there, so
// a kubeconfig pointing at the router verifies.
func APIServerSANs(c config.Config, p config.Plan) []string {
	sans := []string{p.KubernetesAPIAddress().String()}
	if p.RouterExternal.IsValid() && ForwardsKubernetesAPI(c, p) {
		sans = append(sans, p.RouterExternal.String())
	}
	return sans
}

// ForwardsKubernetesAPI reports whether a port-forward on the router targets
// the Kubernetes API: the VIP or a control plane, target port 6443.
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
		if err == nil && f.TargetPort == KubernetesAPIPort && apiAddrs[target.String()] {
			return true
		}
	}
	return false
}

// NodePatches are one machine's own patches, applied after the cluster's and
// the CNI's: hostname, install disk and image, and the network interface.
func NodePatches(c config.Config, p config.Plan, m config.Machine, installerImage string) []string {
	return []string{
		hostnamePatch(c.Cluster.TalosVersion, m.Hostname),
		mustYAML(map[string]any{"machine": map[string]any{"install": map[string]any{
			"disk":  c.Nodes.InstallDisk(),
			"image": installerImage,
		}}}),
		networkPatch(p, m),
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
func networkPatch(p config.Plan, m config.Machine) string {
	iface := map[string]any{
		"deviceSelector": map[string]any{"hardwareAddr": strings.ToLower(m.MAC)},
		"dhcp":           false,
		"addresses":      []string{fmt.Sprintf("%s/%d", m.Address, p.Internal.Bits())},
		"routes": []map[string]any{
			{"network": "0.0.0.0/0", "gateway": p.RouterInternal.String()},
		},
	}
	// The link MTU follows the internal network's (1450 under VXLAN); only
	// a non-default one is written, so 1500 stacks keep their config.
	// Flannel (Talos's default CNI) derives its VXLAN MTU from this link.
	if mtu := p.Network.MTU; mtu != 0 && mtu != 1500 {
		iface["mtu"] = mtu
	}
	if m.Role == config.RoleControlPlane && p.VIP.IsValid() {
		iface["vip"] = map[string]any{"ip": p.VIP.String()}
	}
	return mustYAML(map[string]any{"machine": map[string]any{"network": map[string]any{
		"interfaces": []any{iface},
		// The router's dnsmasq answers for the internal domain and forwards
		// the rest upstream.
		"nameservers": []string{p.RouterInternal.String()},
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
