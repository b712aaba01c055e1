package spec

import (
	"fmt"

	"github.com/sda-platform/sda/components/overlay"
)

// Overlay is OverlayNetwork's input without the cluster's outputs. Field
// documentation is on components.OverlayNetworkArgs.
type Overlay struct {
	CNI                  string
	CiliumVersion        string
	KubeProxyReplacement *bool
	MTU                  int
	ClusterName          string
}

// KubeProxyReplacementEnabled is KubeProxyReplacement or its default,
// true.
func (o Overlay) KubeProxyReplacementEnabled() bool {
	return o.KubeProxyReplacement == nil || *o.KubeProxyReplacement
}

// Validate checks the CNI and, for Cilium, its chart version.
func (o Overlay) Validate() error {
	switch o.CNI {
	case overlay.CNIFlannel:
	case overlay.CNICilium:
		if o.CiliumVersion == "" {
			return fmt.Errorf("CiliumVersion is required with Cilium")
		}
	default:
		return fmt.Errorf("unknown CNI %q: use %q or %q", o.CNI, overlay.CNIFlannel, overlay.CNICilium)
	}
	return nil
}

// MachinePatch is the Talos patch the CNI needs on every node ("" for
// flannel), for Cluster.Patches.
func (o Overlay) MachinePatch() string {
	return overlay.MachinePatch(o.CNI, o.KubeProxyReplacementEnabled())
}
