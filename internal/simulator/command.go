package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TokenRemoteCommand is the command provider's SSH command.
const TokenRemoteCommand = "command:remote:Command"

// commandKinds follow pulumi-command v1.1.0 remote.Command
// (provider/pkg/provider/remote/commandController.go, common/inputs.go):
// only triggers replace (replaceOnChanges); any other change, connection
// included, is an update that runs `update` if set, else `create` if set,
// on the new connection; delete runs `delete` (if set) with the stored
// state's connection. An unset script dials nothing.
func commandKinds() []*kind {
	return []*kind{{
		token:   TokenRemoteCommand,
		replace: []string{"triggers"},
		create: func(s *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
			if err := tx.runRemote(in.Values, "create"); err != nil {
				return "", nil, err
			}
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			return hex.EncodeToString(b), map[string]any{"stdout": "", "stderr": ""}, nil
		},
		update: func(s *Server, tx *Tx, _ string, old *Object, news Props) (map[string]any, error) {
			// The outputs of the previous run stay (BaseOutputs of the old
			// state) until the new run replaces them.
			outs := map[string]any{"stdout": str(old.Outputs, "stdout"), "stderr": str(old.Outputs, "stderr")}
			script := "update"
			if _, ok := news.Values["update"]; !ok {
				script = "create"
			}
			return outs, tx.runRemote(news.Values, script)
		},
		delete: func(s *Server, tx *Tx, obj *Object) error {
			return tx.runRemote(merge(obj.Inputs, obj.Outputs), "delete")
		},
	}, localCommandKind()}
}

// acceptedEnv is what a stock Debian (Proxmox VE) sshd accepts from a
// client: `AcceptEnv LANG LC_*` (inferred from Debian's sshd_config). The
// command provider sends `environment` with session.Setenv and fails when
// the server refuses one; PULUMI_COMMAND_STDOUT/STDERR (previous outputs,
// set for update and delete unless addPreviousOutputInEnv is false) are
// sent the same way, but a refusal is only a warning, so on a stock
// Proxmox node update and delete scripts do not see them.
func acceptedEnv(key string) bool { return key == "LANG" || strings.HasPrefix(key, "LC_") }

var pctExec = regexp.MustCompile(`\bpct\s+(exec|push|pull|start|stop|enter)\s+(\d+)`)

// runRemote checks that the SSH host is a Proxmox node of the simulated
// cluster and that every `pct` the script runs targets a container that
// exists, on that node, and runs.
func (tx *Tx) runRemote(v map[string]any, script string) error {
	if _, ok := v[script]; !ok {
		return nil // no script: the provider does not connect
	}
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
	if env, ok := v["environment"].(map[string]any); ok {
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if !acceptedEnv(k) {
				return fmt.Errorf("could not set environment variable %q: ssh: setenv failed (sshd on %s accepts only LANG and LC_* by default)", k, host)
			}
		}
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
