package components

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"

	"github.com/sda-platform/sda/grammar"
)

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

// validate checks every argument that reaches a Talos patch, the Image
// Factory schematic, a Proxmox API path or the membership script, with the
// stack configuration's allow-lists (grammar), before anything is
// registered. Each error names the argument, the value and the fix.
func (args *TalosClusterArgs) validate() error {
	controlPlanes := 0
	for i, n := range args.Nodes {
		field := fmt.Sprintf("Nodes[%d]", i)
		// Host names become Talos hostnames, DNS records and arguments of
		// the membership script.
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
		switch n.Role {
		case RoleControlPlane:
			controlPlanes++
		case RoleWorker:
		default:
			return fmt.Errorf("node %q: role %q: use %q or %q", n.Hostname, n.Role, RoleControlPlane, RoleWorker)
		}
	}
	nw := args.Network
	switch {
	case args.ClusterName == "" || args.TalosVersion == "" || args.KubernetesVersion == "":
		return fmt.Errorf("ClusterName, TalosVersion and KubernetesVersion are required")
	case !grammar.DNSLabel(args.ClusterName):
		return fmt.Errorf("ClusterName = %q is not a DNS label: write lowercase letters, digits and inner hyphens, such as lab", args.ClusterName)
	case !versionRE.MatchString(args.TalosVersion) || args.TalosVersion[0] != 'v':
		return fmt.Errorf("TalosVersion = %q is not a Talos release: write one such as v1.12.0", args.TalosVersion)
	case !versionRE.MatchString(args.KubernetesVersion):
		return fmt.Errorf("KubernetesVersion = %q is not a Kubernetes release: write one such as v1.35.0", args.KubernetesVersion)
	case controlPlanes == 0:
		return fmt.Errorf("at least one control-plane node is required")
	case args.Bridge == nil && args.Bridges == nil:
		return fmt.Errorf("Bridge or Bridges is required")
	case !storageRE.MatchString(args.Datastore) || !storageRE.MatchString(args.ImageDatastore):
		return fmt.Errorf("Datastore = %q, ImageDatastore = %q: name Proxmox storages, such as local-lvm and local", args.Datastore, args.ImageDatastore)
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
	for i, san := range args.CertSANs {
		if _, err := netip.ParseAddr(san); err != nil && !grammar.Domain(san) {
			return fmt.Errorf("CertSANs[%d] = %q is neither an IP address nor a DNS name", i, san)
		}
	}
	for i, e := range args.Extensions {
		if !extensionRE.MatchString(e) {
			return fmt.Errorf("Extensions[%d] = %q is not an Image Factory extension: write one such as siderolabs/qemu-guest-agent", i, e)
		}
	}
	for i, k := range args.ProxmoxHostKeys {
		if _, err := grammar.SSHHostKey(k.HostKey); err != nil {
			return fmt.Errorf("ProxmoxHostKeys[%d].HostKey %v", i, err)
		}
		if !grammar.DNSLabel(k.Node) || k.Address == "" {
			return fmt.Errorf("ProxmoxHostKeys[%d]: Node (a Proxmox node name) and Address are required", i)
		}
	}
	return nil
}
