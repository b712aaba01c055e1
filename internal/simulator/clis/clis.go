package clis

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// CLIs are the tool names RunCLI answers to.
var CLIs = []string{"pct", "pvesh"}

// RunCLI runs the simulated tool called name on the simulation directory
// dir and returns its exit code.
func RunCLI(name, dir string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	store := &engine.Store{Dir: dir}
	start := time.Now()
	var err error
	switch name {
	case "pct":
		err = pct(store, os.Getenv(NodeEnv), args, stdin)
	case "pvesh":
		err = Pvesh(store, os.Getenv(NodeEnv), args, stdout)
	default:
		err = fmt.Errorf("no simulated tool %q", name)
	}
	c := engine.Call{Time: start, Provider: "cli", Method: name + " " + strings.Join(args, " "), Millis: time.Since(start).Milliseconds()}
	if node := os.Getenv(NodeEnv); node != "" && (name == "pct" || name == "pvesh") {
		c.Name = node
	}
	if err != nil {
		c.Error = err.Error()
	}
	_ = store.Log(c)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// pct is Proxmox's container tool on node: exec, push and pull need the
// container to exist on that node (pct reads nodes/<node>/lxc/<id>.conf),
// exec needs it running and its node powered. What runs inside is not
// simulated, but `exec` reads the script piped into it (stdin) and
// recognises two (router.go): the apply script of a router of a pair
// (keepalived starts there) and the handover script (keepalived stops,
// the holder first waits for its peer).
func pct(store *engine.Store, node string, args []string, stdin io.Reader) error {
	var script []byte
	if stdin != nil {
		script, _ = io.ReadAll(stdin)
	}
	if node == "" {
		return fmt.Errorf("simulated pct runs on a Proxmox node: %s is not set", NodeEnv)
	}
	if len(args) < 2 || !slices.Contains([]string{"exec", "push", "pull"}, args[0]) {
		return fmt.Errorf("simulated pct supports exec, push and pull VMID, got %q", strings.Join(args, " "))
	}
	id, err := strconv.Atoi(args[1])
	if err != nil {
		return fmt.Errorf("400 Parameter verification failed. vmid: invalid format - value does not look like a valid VM ID")
	}
	kind := innerOther
	if args[0] == "exec" {
		kind = innerKind(string(script))
	}
	err = store.Update(func(tx *engine.Tx) error {
		if _, down := tx.NodeDown(node); down {
			return fmt.Errorf("simulated pct on %s: the node is offline", node)
		}
		g := tx.State.Guests[id]
		switch {
		case g == nil || g.Kind != "lxc":
			return fmt.Errorf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist", node, id)
		case g.Node != node:
			return fmt.Errorf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist (container %d is on node %s, not %s)", node, id, id, g.Node, node)
		case args[0] == "exec" && !g.Started:
			return fmt.Errorf("container '%d' not running!", id)
		}
		if end, down := tx.DownUntil(id, time.Now()); down && args[0] == "exec" {
			return fmt.Errorf("container '%d' not running! (rebooting until %s)", id, end.Format(time.RFC3339Nano))
		}
		if kind == innerPairApply {
			pairApply(tx, g, string(script), time.Now())
		}
		return nil
	})
	if err != nil || kind != innerHandover {
		return err
	}
	return handover(store, id, string(script))
}
