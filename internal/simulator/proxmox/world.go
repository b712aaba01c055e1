package proxmox

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// Node is the Proxmox node called name, or the error Proxmox gives for an
// unknown one.
func Node(tx *engine.Tx, name string) (*engine.WorldNode, error) {
	for i := range tx.World.Nodes {
		if tx.World.Nodes[i].Name == name {
			return &tx.World.Nodes[i], nil
		}
	}
	var names []string
	for _, n := range tx.World.Nodes {
		names = append(names, n.Name)
	}
	return nil, fmt.Errorf("Proxmox node %q does not exist (the cluster has %s)", name, strings.Join(names, ", "))
}

// Datastore checks that datastore id exists and holds content.
func Datastore(tx *engine.Tx, node, id, content string) error {
	for _, d := range tx.World.Datastores {
		if d.ID == id {
			if !slices.Contains(d.Content, content) {
				return fmt.Errorf("datastore %q on node %q does not accept content type %q (it holds %s)", id, node, content, strings.Join(d.Content, ", "))
			}
			return nil
		}
	}
	return fmt.Errorf("datastore %q does not exist on node %q", id, node)
}

// Shared reports whether datastore is shared between nodes.
func Shared(tx *engine.Tx, datastore string) bool {
	for _, d := range tx.World.Datastores {
		if d.ID == datastore {
			return d.Shared
		}
	}
	return false
}
