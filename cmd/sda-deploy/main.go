// Command sda-deploy runs SDA stacks under the Pulumi engine through the
// automation package: up, preview, refresh, destroy, outputs. It links every
// provider SDK and the engine's client, so it is a binary of its own: `sda`
// (cmd/sda) keeps the offline commands fast and hands these commands over
// to this one (see docs/engine.md, "Where the deploy commands run").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/sshtrust"
	"github.com/sda-platform/sda/stacks"
)

// Ctrl-C cancels the running operation: the engine finishes the steps in
// flight and saves a consistent state.
var commands = map[string]command{}

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func register(name string, c command) { commands[name] = c }

func init() {
	register("up", command{summary: "deploy a stack (Pulumi engine)", run: func(a []string, o, e io.Writer) int {
		return runDeploy("up", a, o, e)
	}})
	register("preview", command{summary: "show what up would change", run: func(a []string, o, e io.Writer) int {
		return runDeploy("preview", a, o, e)
	}})
	register("refresh", command{summary: "read the deployed resources back into the state", run: func(a []string, o, e io.Writer) int {
		return runDeploy("refresh", a, o, e)
	}})
	register("destroy", command{summary: "delete a stack's resources (keeps the protected Talos secrets)", run: func(a []string, o, e io.Writer) int {
		return runDeploy("destroy", a, o, e)
	}})
	register("outputs", command{summary: "print a stack's outputs as JSON", run: func(a []string, o, e io.Writer) int {
		return runDeploy("outputs", a, o, e)
	}})
	register("recover", command{summary: "after a killed run: remove its stale lock, resolve its pending creates", run: runRecover})
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if c, ok := commands[args[0]]; ok {
			return c.run(args[1:], stdout, stderr)
		}
	}
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintln(stderr, "Usage: sda-deploy <command> --stack S [flags]\n\nCommands:")
	for _, name := range names {
		fmt.Fprintf(stderr, "  %-8s  %s\n", name, commands[name].summary)
	}
	if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
		return 0
	}
	return 2
}

func runDeploy(op string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sda "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := fs.String("stack", "", "stack name: reads Pulumi.<stack>.yaml (required)")
	dir := fs.String("dir", ".", "project directory holding Pulumi.yaml")
	parallel := fs.Int("parallel", 0, "maximum concurrent resource operations (0: the engine's default)")
	var yes, includeProtected, showSecrets bool
	switch op {
	case "destroy":
		fs.BoolVar(&yes, "yes", false, "really delete the resources (required)")
		fs.BoolVar(&includeProtected, "include-protected", false,
			"also delete protected resources: the Talos machine secrets, without which the cluster's nodes cannot be managed again")
	case "outputs":
		fs.BoolVar(&showSecrets, "show-secrets", false, "print secret outputs (kubeconfig, talosconfig) in plaintext")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *stack == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sda %s: --stack is required and takes no arguments\n", op)
		fs.Usage()
		return 2
	}
	if op == "destroy" && !yes {
		fmt.Fprintf(stderr, "sda destroy: this deletes every VM, the router and the bridges of stack %s; add --yes to go on\n", *stack)
		return 2
	}
	// Report configuration mistakes before starting the engine.
	var cfg config.Config
	var plan config.Plan
	if op == "up" || op == "preview" {
		var err error
		if cfg, plan, err = config.LoadStack(*dir, *stack); err != nil {
			fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
			return 1
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := stdout
	if op == "outputs" {
		progress = nil
	}
	d, err := automation.Open(ctx, automation.Options{
		ProjectDir: *dir, Stack: *stack, Program: stacks.Program, Progress: progress, Parallel: *parallel,
	})
	if err != nil {
		fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
		return 1
	}
	// Before anything is created: every pinned Proxmox node proves it
	// holds its key (a clear refusal naming both fingerprints, instead of a
	// script failing half-way), and the API token has the privileges the
	// stack needs (a missing one would fail a create half-way with a 403).
	if op == "up" || op == "preview" {
		if err := sshtrust.VerifyStack(ctx, plan); err != nil {
			fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
			return 1
		}
		if err := d.CheckProxmoxAccess(ctx, cfg); err != nil {
			fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
			return 1
		}
	}
	switch op {
	case "up":
		_, err = d.Up(ctx)
	case "preview":
		_, err = d.Preview(ctx)
	case "refresh":
		_, err = d.Refresh(ctx)
	case "destroy":
		_, err = d.Destroy(ctx, automation.DestroyOptions{IncludeProtected: includeProtected})
	case "outputs":
		err = printOutputs(ctx, d, showSecrets, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
		return 1
	}
	return 0
}

func printOutputs(ctx context.Context, d *automation.Deployment, showSecrets bool, w io.Writer) error {
	outs, err := d.Outputs(ctx, showSecrets)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(outs))
	for k := range outs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	m := map[string]any{}
	for _, k := range keys {
		if outs[k].Secret && !showSecrets {
			m[k] = "[secret]"
		} else {
			m[k] = outs[k].Value
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// runRecover is `sda recover --stack S [--force-unlock]`: what a run
// killed hard (SIGKILL, OOM, power loss) leaves, undone (see
// automation.Deployment.Recover).
func runRecover(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sda recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := fs.String("stack", "", "stack name: reads Pulumi.<stack>.yaml (required)")
	dir := fs.String("dir", ".", "project directory holding Pulumi.yaml")
	force := fs.Bool("force-unlock", false,
		"also remove a lock taken on another host (make sure its operation no longer runs); never one whose process runs here")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *stack == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sda recover: --stack is required and takes no arguments")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := automation.Open(ctx, automation.Options{ProjectDir: *dir, Stack: *stack, Program: stacks.Program, Progress: stdout})
	if err != nil {
		fmt.Fprintf(stderr, "sda recover: %v\n", err)
		return 1
	}
	rep, err := d.Recover(ctx, automation.RecoverOptions{ForceUnlock: *force, Guests: d.StackGuests()})
	if rep != nil {
		for _, l := range rep.Unlocked {
			fmt.Fprintf(stdout, "removed the lock %s\n", l)
		}
		if rep.Cancelled {
			fmt.Fprintln(stdout, "pulumi cancel removed the stack's locks")
		}
		for _, p := range rep.Pending {
			fmt.Fprintf(stdout, "pending create %s\n", p)
		}
		for _, o := range rep.Dropped {
			fmt.Fprintf(stdout, "dropped pending operation %s\n", o)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sda recover: %v\n", err)
		return 1
	}
	if len(rep.Unlocked) == 0 && !rep.Cancelled && !rep.StateEdited {
		fmt.Fprintf(stdout, "stack %s has no stale lock and no pending operation: nothing to recover\n", *stack)
	}
	return 0
}
