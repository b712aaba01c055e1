package simulator

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
)

// The simulated talosctl and kubectl. A local command (command:local:Command)
// runs its script for real, with sh, and finds these on PATH in place of the
// real tools: they act on the simulated systems exactly as far as SDA's
// scripts use them, and refuse every other invocation, so a script that
// starts using something new fails here instead of passing unseen.
//
// What they accept (flags as the real CLIs spell them):
//
//	talosctl --talosconfig F -n IP -e IP reset --graceful=B --reboot=B --wait=true --timeout=D
//	kubectl --kubeconfig F [--request-timeout=D] get nodes -o name [-l [!]node-role.kubernetes.io/control-plane]
//	kubectl --kubeconfig F [--request-timeout=D] get node NAME -o jsonpath={.status.addresses[?(@.type=="InternalIP")].address}
//	kubectl --kubeconfig F [--request-timeout=D] delete node NAME
//
// Remote commands (command:remote:Command) run their scripts the same way,
// on the Proxmox node named by NodeEnv, with these on PATH:
//
//	pct exec|push|pull VMID ...   (the container must exist on that node; exec: and run; stdin is read and discarded)
//	pvesh get|create|set|delete /cluster/sdn/...   (the forms in pvesh.go)

// CLIs are the tool names RunCLI answers to.
var CLIs = []string{"talosctl", "kubectl", "pct", "pvesh"}

// RunCLI runs the simulated tool called name on the simulation directory
// dir and returns its exit code.
func RunCLI(name, dir string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	store := &Store{Dir: dir}
	start := time.Now()
	var err error
	switch name {
	case "talosctl":
		err = talosctl(store, args, stdout)
	case "kubectl":
		err = kubectl(store, args, stdout)
	case "pct":
		err = pct(store, os.Getenv(NodeEnv), args, stdin)
	case "pvesh":
		err = pvesh(store, os.Getenv(NodeEnv), args, stdout)
	default:
		err = fmt.Errorf("no simulated tool %q", name)
	}
	c := Call{Time: start, Provider: "cli", Method: name + " " + strings.Join(args, " "), Millis: time.Since(start).Milliseconds()}
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

func talosctl(store *Store, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("talosctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("talosconfig", "", "")
	node := fs.String("n", "", "")
	endpoint := fs.String("e", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("simulated talosctl: no command")
	}
	switch {
	case rest[0] == "version" || (len(rest) >= 2 && rest[0] == "etcd" && (rest[1] == "members" || rest[1] == "remove-member")):
		return talosctlQuery(store, *cfgPath, *node, *endpoint, rest, stdout)
	case rest[0] != "reset":
		return fmt.Errorf("simulated talosctl supports reset, version, etcd members and etcd remove-member, got %q", strings.Join(rest, " "))
	}
	rs := flag.NewFlagSet("reset", flag.ContinueOnError)
	rs.SetOutput(io.Discard)
	graceful := rs.Bool("graceful", true, "")
	reboot := rs.Bool("reboot", false, "")
	wait := rs.Bool("wait", true, "")
	rs.Duration("timeout", 30*time.Minute, "")
	if err := rs.Parse(rest[1:]); err != nil {
		return err
	}
	if rs.NArg() > 0 || !*wait {
		return fmt.Errorf("simulated talosctl reset: unsupported arguments %q", strings.Join(rest, " "))
	}
	ctx, err := talosctlContext(*cfgPath, *node, *endpoint)
	if err != nil {
		return err
	}
	faults, err := store.Faults()
	if err != nil {
		return err
	}
	// A sequence that fails on the node (a refused etcd leave) still
	// changed it (cordoned, a reboot coming): the state is saved and
	// talosctl --wait reports the failure.
	var failed error
	err = store.Update(func(tx *Tx) error {
		if _, err := tx.talosReachable(*node, time.Now()); err != nil {
			return fmt.Errorf("rpc error: code = Unavailable desc = connection error: %w", err)
		}
		if _, err := tx.configured(*node, map[string]any{"caCertificate": ctx.CA}); err != nil {
			return err
		}
		failed = tx.reset(*node, map[string]any{"caCertificate": ctx.CA}, *graceful, *reboot, faults)
		return nil
	})
	if err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	_, err = fmt.Fprintf(stdout, "reset %s\n", *node)
	return err
}

// talosctlContext checks what every simulated talosctl invocation needs:
// the node given as both -n and -e (SDA's script talks to each node
// directly), and a talosconfig with a current context, which it returns.
func talosctlContext(cfgPath, node, endpoint string) (*clientconfig.Context, error) {
	if node == "" || endpoint != node {
		return nil, fmt.Errorf("simulated talosctl: give the node as both -n and -e (got -n %q -e %q)", node, endpoint)
	}
	cfg, err := clientconfig.Open(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("talosconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.Context]
	if ctx == nil {
		return nil, fmt.Errorf("talosconfig: no current context")
	}
	return ctx, nil
}

// talosctlQuery is `talosctl version`, `talosctl etcd members` and
// `talosctl etcd remove-member <id>` against the node (-n, with -e the same
// node), under the same rules as the simulated Talos API: the node must be
// reachable from here; members are listed as talosctl prints them (talos
// v1.12.0 cmd/talosctl/cmd/talos/etcd.go:205-262: a NODE column when the
// reply names its node, IDs as etcdresource.FormatMemberID, "%016x"); a
// removal by ID (etcd.go:168-186, ParseMemberID) goes through etcd's quorum
// rule (removeEtcdMember).
func talosctlQuery(store *Store, cfgPath, node, endpoint string, rest []string, stdout io.Writer) error {
	if _, err := talosctlContext(cfgPath, node, endpoint); err != nil {
		return err
	}
	write := len(rest) == 3 && rest[1] == "remove-member"
	txn := store.View
	if write {
		txn = store.Update
	}
	return txn(func(tx *Tx) error {
		now := time.Now()
		if _, err := tx.talosReachable(node, now); err != nil {
			return fmt.Errorf("rpc error: code = Unavailable desc = connection error: %w", err)
		}
		m := tx.State.Machines[node]
		if m == nil {
			return fmt.Errorf("rpc error: code = Unavailable desc = %s is in maintenance mode", node)
		}
		if rest[0] == "version" {
			_, err := fmt.Fprintf(stdout, "Client:\n\tTag:         v1.12.0\nServer:\n\tNODE:        %s\n\tTag:         %s\n", node, m.Version)
			return err
		}
		if m.Type == "worker" {
			return fmt.Errorf("rpc error: code = Unimplemented desc = etcd is only available on control plane nodes")
		}
		c, err := tx.etcdClient(m, now)
		if err != nil {
			return err
		}
		if rest[1] == "members" {
			w := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
			fmt.Fprintln(w, "NODE\tID\tHOSTNAME\tPEER URLS\tCLIENT URLS\tLEARNER")
			for _, addr := range sortedMembers(c) {
				fmt.Fprintf(w, "%s\t%016x\t%s\thttps://%s:2380\thttps://%s:2379\tfalse\n", node, etcdMemberID(addr), tx.memberName(c, addr), addr, addr)
			}
			return w.Flush()
		}
		if len(rest) != 3 {
			return errors.New("simulated talosctl etcd remove-member: give one member ID")
		}
		id, err := strconv.ParseUint(rest[2], 16, 64)
		if err != nil {
			return fmt.Errorf("error parsing member ID: error parsing etcd member id: %w", err)
		}
		for _, addr := range c.EtcdMembers {
			if etcdMemberID(addr) == id {
				if err := tx.removeEtcdMember(c, addr, now); err != nil {
					return fmt.Errorf("rpc error: code = Unknown desc = failed to remove member: %w", err)
				}
				return nil
			}
		}
		return errors.New("rpc error: code = NotFound desc = etcdserver: member not found")
	})
}

const (
	controlPlaneLabel = "node-role.kubernetes.io/control-plane"
	internalIPPath    = `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`
)

func kubectl(store *Store, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("kubectl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kubeconfig := fs.String("kubeconfig", "", "")
	fs.Duration("request-timeout", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	rest := fs.Args()
	return store.Update(func(tx *Tx) error {
		c, err := tx.clusterOf(string(raw))
		if err != nil {
			return fmt.Errorf("Unable to connect to the server: %w", err)
		}
		switch {
		case len(rest) >= 2 && rest[0] == "get" && rest[1] == "nodes":
			gs := flag.NewFlagSet("get", flag.ContinueOnError)
			gs.SetOutput(io.Discard)
			sel := gs.String("l", "", "")
			output := gs.String("o", "", "")
			if err := gs.Parse(rest[2:]); err != nil || gs.NArg() > 0 || *output != "name" {
				return fmt.Errorf("simulated kubectl: unsupported %q", strings.Join(rest, " "))
			}
			selector := *sel
			var names []string
			for _, n := range c.Nodes {
				cp := n.Role == "controlplane"
				switch selector {
				case "":
				case controlPlaneLabel:
					if !cp {
						continue
					}
				case "!" + controlPlaneLabel:
					if cp {
						continue
					}
				default:
					return fmt.Errorf("simulated kubectl: unsupported selector %q", selector)
				}
				names = append(names, "node/"+n.Name)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintln(stdout, n)
			}
			return nil
		case len(rest) == 5 && rest[0] == "get" && rest[1] == "node" && rest[3] == "-o" && rest[4] == internalIPPath:
			n := c.Nodes[rest[2]]
			if n == nil {
				return fmt.Errorf("Error from server (NotFound): nodes %q not found", rest[2])
			}
			_, err := fmt.Fprint(stdout, n.Address)
			return err
		case len(rest) == 3 && rest[0] == "delete" && rest[1] == "node":
			if c.Nodes[rest[2]] == nil {
				return fmt.Errorf("Error from server (NotFound): nodes %q not found", rest[2])
			}
			delete(c.Nodes, rest[2])
			_, err := fmt.Fprintf(stdout, "node %q deleted\n", rest[2])
			return err
		}
		return fmt.Errorf("simulated kubectl: unsupported %q", strings.Join(rest, " "))
	})
}

// pct is Proxmox's container tool on node: exec, push and pull need the
// container to exist on that node (pct reads nodes/<node>/lxc/<id>.conf),
// exec needs it running. What runs inside is not simulated: stdin (the
// script RouterLXC pipes in) is read and discarded.
func pct(store *Store, node string, args []string, stdin io.Reader) error {
	if stdin != nil {
		_, _ = io.Copy(io.Discard, stdin)
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
	return store.Update(func(tx *Tx) error {
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
		return nil
	})
}
