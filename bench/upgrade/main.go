// Command upgrade measures a rolling Talos upgrade of the prod stack under
// the real Pulumi engine against the simulated providers: `up` of prod, then
// `up` with the next Talos version, each node down for -reboot while it
// reboots into the new release. It compares the upgrade's wall time with its
// inherent sequential minimum: nodes × the per-node reboot, since the nodes
// go one at a time (control planes must; workers do by default).
//
// Run it through bench/upgrade.sh. It prints a Markdown table
// (docs/benchmarks.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/stacks"
)

func main() {
	root := flag.String("dir", ".", "project directory")
	reboot := flag.Duration("reboot", 10*time.Second, "how long a node is down while it reboots into the new release")
	runs := flag.Int("runs", 1, "runs; the table shows the fastest")
	flag.Parse()
	var best time.Duration
	var nodes int
	for i := 0; i < *runs; i++ {
		t, n, err := measure(*root, *reboot)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "run %d: upgrade of %d nodes took %.1fs\n", i+1, n, t.Seconds())
		if best == 0 || t < best {
			best, nodes = t, n
		}
	}
	minimum := time.Duration(nodes) * *reboot
	fmt.Printf("| nodes | reboot per node (s) | sequential minimum (s) | rolling upgrade `up` T (s) | T / minimum |\n")
	fmt.Printf("| ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Printf("| %d | %.0f | %.0f | %.1f | %.2f |\n", nodes, reboot.Seconds(), minimum.Seconds(), best.Seconds(), best.Seconds()/minimum.Seconds())
}

func measure(root string, reboot time.Duration) (time.Duration, int, error) {
	tmp, err := os.MkdirTemp("", "sda-bench-upgrade-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	simDir := filepath.Join(tmp, "sim")
	if err := os.MkdirAll(simDir, 0o700); err != nil {
		return 0, 0, err
	}
	lookup, err := config.StackFiles(root, "prod")
	if err != nil {
		return 0, 0, err
	}
	cfg, err := config.Load(lookup)
	if err != nil {
		return 0, 0, err
	}
	var world []simulator.WorldNode
	for _, n := range config.WithDefaults(cfg).Proxmox.Nodes {
		world = append(world, simulator.WorldNode{Name: n.Name, SSHHost: n.SSHHost})
	}
	if err := simulator.WriteWorld(simDir, simulator.DefaultWorld(world...)); err != nil {
		return 0, 0, err
	}
	if err := simulator.WriteFaults(simDir, simulator.Faults{AgentWaitScale: 0.001}); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	proxy, err := simulator.StartTalosAPI(ctx, simDir)
	if err != nil {
		return 0, 0, err
	}
	// Checks every second: the poll adds up to a second per node.
	cfg.Cluster.Upgrade.PollSeconds = 1
	open := func() (*automation.Deployment, error) {
		return automation.Open(ctx, automation.Options{
			ProjectDir: root, Stack: "prod", Program: stacks.Program, Config: &cfg,
			ConfigValues: map[string]automation.ConfigValue{
				"proxmoxve:endpoint": {Value: "https://pve.example.test:8006/"},
				"proxmoxve:apiToken": {Value: "root@pam!bench=00000000-0000-0000-0000-000000000000", Secret: true},
				"sda:sshPrivateKey":  {Value: "bench-key", Secret: true},
			},
			Home: filepath.Join(tmp, "home"),
			Env:  map[string]string{simulator.StateDirEnv: simDir, "HTTPS_PROXY": proxy},
		})
	}
	d, err := open()
	if err != nil {
		return 0, 0, err
	}
	if _, err := d.Up(ctx); err != nil {
		return 0, 0, err
	}
	if err := simulator.WriteFaults(simDir, simulator.Faults{AgentWaitScale: 0.001, RebootTime: reboot.String()}); err != nil {
		return 0, 0, err
	}
	cfg.Cluster.TalosVersion = "v1.12.1"
	if d, err = open(); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := d.Up(ctx); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	st, err := simulator.ReadState(simDir)
	if err != nil {
		return 0, 0, err
	}
	// Where the time went: before the first reboot, and between one node's
	// return and the next node's reboot (the health checks and the engine).
	prev := start
	for _, r := range st.Reboots {
		if r.Start.Before(start) {
			continue
		}
		fmt.Fprintf(os.Stderr, "  %-14s waited %.2fs before its reboot, down %.1fs\n", r.Name, r.Start.Sub(prev).Seconds(), r.End.Sub(r.Start).Seconds())
		prev = r.End
	}
	fmt.Fprintf(os.Stderr, "  after the last return: %.2fs\n", start.Add(took).Sub(prev).Seconds())
	upgraded := 0
	for _, m := range st.Machines {
		if m.Version != "v1.12.1" {
			return 0, 0, fmt.Errorf("%s runs %s after the upgrade", m.Hostname, m.Version)
		}
		upgraded++
	}
	return took, upgraded, nil
}
