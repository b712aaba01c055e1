// Package simworld builds the simulated Proxmox cluster a stack's
// configuration expects, for the engine tests and the benchmarks: one
// simulated node per configured Proxmox node, at its SSH and cluster
// addresses, with a fresh SSH host key that is pinned into the
// configuration as `sda trust` would pin it.
package simworld

import (
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator/engine"
)

// Nodes pins a new host key for every Proxmox node of c (in place) and
// returns the simulated nodes that hold those keys.
func Nodes(c *config.Config) ([]engine.WorldNode, error) {
	defaulted := config.WithDefaults(*c).Proxmox.Nodes
	nodes := make([]engine.WorldNode, 0, len(defaulted))
	for i, n := range defaulted {
		key, err := engine.NewHostKey()
		if err != nil {
			return nil, err
		}
		c.Proxmox.Nodes[i].SSHHostKey = key
		nodes = append(nodes, engine.WorldNode{Name: n.Name, SSHHost: n.SSHHost, ClusterAddress: n.ClusterAddress, HostKeys: []string{key}})
	}
	return nodes, nil
}
