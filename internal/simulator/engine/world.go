package engine

import (
	"slices"
)

func (w World) ClusterAddress(n WorldNode) string {
	if n.ClusterAddress != "" {
		return n.ClusterAddress
	}
	return n.SSHHost
}

func (w World) SharedBridgesOrDefault() []string {
	if w.SharedBridges != nil {
		return w.SharedBridges
	}
	if len(w.Bridges) > 0 {
		return w.Bridges[:1]
	}
	return nil
}

func (w World) UplinksOrDefault() []string {
	if len(w.Uplinks) > 0 {
		return w.Uplinks
	}
	return []string{"eno1"}
}

func (w World) SwitchCarries(vlan int) bool {
	return w.SwitchVLANs == nil || slices.Contains(w.SwitchVLANs, vlan)
}

func FirstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
