package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
)

// TokenRemoteCommand is the command provider's SSH command.
const TokenRemoteCommand = "command:remote:Command"

func commandKinds() []*kind {
	return []*kind{{
		token: TokenRemoteCommand,
		// Triggers replace (the command runs again from create); any other
		// change runs the update command, or create when there is none.
		replace: []string{"triggers"},
		create: func(s *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
			if err := tx.runRemote(in.Values, "create"); err != nil {
				return "", nil, err
			}
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			return hex.EncodeToString(b), map[string]any{"stdout": "", "stderr": ""}, nil
		},
		update: func(s *Server, tx *Tx, _ string, _ *Object, news Props) (map[string]any, error) {
			script := "update"
			if str(news.Values, "update") == "" {
				script = "create"
			}
			return map[string]any{"stdout": "", "stderr": ""}, tx.runRemote(news.Values, script)
		},
		delete: func(s *Server, tx *Tx, obj *Object) error {
			if str(obj.Inputs, "delete") == "" {
				return nil
			}
			return tx.runRemote(obj.Inputs, "delete")
		},
	}}
}

var pctExec = regexp.MustCompile(`\bpct\s+(exec|push|pull|start|stop|enter)\s+(\d+)`)

// runRemote checks that the SSH host is a Proxmox node of the simulated
// cluster and that every `pct` the script runs targets a container that
// exists, on that node, and runs.
func (tx *Tx) runRemote(v map[string]any, script string) error {
	host := str(v, "connection.host")
	var node *WorldNode
	for i := range tx.World.Nodes {
		if tx.World.Nodes[i].SSHHost == host || tx.World.Nodes[i].Name == host {
			node = &tx.World.Nodes[i]
		}
	}
	if node == nil {
		return fmt.Errorf("ssh: dial tcp %s:22: no route to host (no simulated Proxmox node has that address)", host)
	}
	text := str(v, script)
	for _, m := range pctExec.FindAllStringSubmatch(text, -1) {
		id, _ := strconv.Atoi(m[2])
		g := tx.State.Guests[id]
		switch {
		case g == nil || g.Kind != "lxc":
			return fmt.Errorf("%s on %s: pct %s %d: Configuration file 'nodes/%s/lxc/%d.conf' does not exist", script, host, m[1], id, node.Name, id)
		case g.Node != node.Name:
			return fmt.Errorf("%s on %s: pct %s %d: container %d is on node %s, not %s", script, host, m[1], id, id, g.Node, node.Name)
		case m[1] == "exec" && !g.Started:
			return fmt.Errorf("%s on %s: pct exec %d: container %d not running", script, host, id, id)
		}
	}
	return nil
}
