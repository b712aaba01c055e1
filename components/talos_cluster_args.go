package components

import (
	"fmt"

	"github.com/sda-platform/sda/components/spec"
)

// NewTalosClusterArgs are the Args of a cluster spec; the caller adds the
// Pulumi values (Bridge or Bridges, ApplyAfter, WaitFor).
func NewTalosClusterArgs(s spec.Cluster) *TalosClusterArgs {
	up := TalosUpgradeArgs(s.Upgrade)
	a := &TalosClusterArgs{
		ClusterName: s.ClusterName, TalosVersion: s.TalosVersion, KubernetesVersion: s.KubernetesVersion,
		Extensions: s.Extensions, Network: TalosNetworkArgs(s.Network),
		PodCIDR: s.PodCIDR, ServiceCIDR: s.ServiceCIDR, CertSANs: s.CertSANs,
		Datastore: s.Datastore, ImageDatastore: s.ImageDatastore, SharedImageDatastore: s.SharedImageDatastore,
		DiskInterface: s.DiskInterface, CPUType: s.CPUType, Upgrade: &up,
	}
	for _, n := range s.Nodes {
		a.Nodes = append(a.Nodes, TalosNodeSpec(n))
	}
	for _, p := range s.Patches {
		a.Patches = append(a.Patches, TalosPatch(p))
	}
	for _, k := range s.ProxmoxHostKeys {
		a.ProxmoxHostKeys = append(a.ProxmoxHostKeys, ProxmoxHostKeyArgs(k))
	}
	return a
}

// Spec is the cluster these Args describe, without their Pulumi values.
func (a *TalosClusterArgs) Spec() spec.Cluster {
	s := spec.Cluster{
		ClusterName: a.ClusterName, TalosVersion: a.TalosVersion, KubernetesVersion: a.KubernetesVersion,
		Extensions: a.Extensions, Network: spec.Network(a.Network),
		PodCIDR: a.PodCIDR, ServiceCIDR: a.ServiceCIDR, CertSANs: a.CertSANs,
		Datastore: a.Datastore, ImageDatastore: a.ImageDatastore, SharedImageDatastore: a.SharedImageDatastore,
		DiskInterface: a.DiskInterface, CPUType: a.CPUType,
	}
	if a.Upgrade != nil {
		s.Upgrade = spec.Upgrade(*a.Upgrade)
	}
	for _, n := range a.Nodes {
		s.Nodes = append(s.Nodes, spec.Node(n))
	}
	for _, p := range a.Patches {
		s.Patches = append(s.Patches, spec.Patch(p))
	}
	for _, k := range a.ProxmoxHostKeys {
		s.ProxmoxHostKeys = append(s.ProxmoxHostKeys, spec.HostKey(k))
	}
	return s
}

// validate checks every argument that reaches a Talos patch, the Image
// Factory schematic or a Proxmox API path (spec.Cluster.Validate), and
// that the VMs have a bridge, before anything is registered.
func (a *TalosClusterArgs) validate() (spec.Cluster, error) {
	s := a.Spec()
	if err := s.Validate(); err != nil {
		return s, err
	}
	if a.Bridge == nil && a.Bridges == nil {
		return s, fmt.Errorf("Bridge or Bridges is required")
	}
	return s, nil
}

// upgradeSettings are args.Upgrade, or the zero settings (the defaults).
func (a *TalosClusterArgs) upgradeSettings() TalosUpgradeArgs {
	if a.Upgrade == nil {
		return TalosUpgradeArgs{}
	}
	return *a.Upgrade
}
