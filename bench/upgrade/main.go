// Command upgrade measures a rolling upgrade of the prod stack under the
// real Pulumi engine against the simulated providers: `up` of prod, then
// `up` with the next release, and compares the upgrade's wall time with its
// inherent sequential minimum.
//
//   - -what talos (default): the next Talos version, each node down for
//     -reboot while it reboots into it; minimum = nodes × reboot, since the
//     nodes go one at a time (control planes must; workers do by default).
//   - -what kubernetes: the next Kubernetes patch release, each component
//     down for -restart while it restarts on its new image; minimum =
//     restarting steps × restart (every static pod on every control plane,
//     then every kubelet, one at a time as upgrade-k8s goes).
//   - -what resize: the workers' memory raised by -memory MiB
//     (sda:nodes.worker.memoryMiB), which Proxmox applies only with a
//     reboot of each worker's VM (-reboot), rolled by SDA's NodeDrain and
//     NodeReady -parallelism workers at a time; minimum = batches × reboot
//     (batches = workers / parallelism, rounded up).
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
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simworld"
	"github.com/sda-platform/sda/stacks"
)

func main() {
	root := flag.String("dir", ".", "project directory")
	reboot := flag.Duration("reboot", 10*time.Second, "how long a node is down while it reboots into the new release")
	restart := flag.Duration("restart", 2*time.Second, "how long a Kubernetes component is down while it restarts on a new image (-what kubernetes)")
	what := flag.String("what", "talos", "talos, kubernetes or resize")
	memory := flag.Int("memory", 1024, "MiB added to each worker's memory (-what resize)")
	parallelism := flag.Int("parallelism", 1, "sda:cluster.upgrade.workerParallelism (-what resize)")
	runs := flag.Int("runs", 1, "runs; the table shows the fastest")
	flag.Parse()
	if *what != "talos" && *what != "kubernetes" && *what != "resize" {
		fmt.Fprintln(os.Stderr, "bench: -what talos, -what kubernetes or -what resize")
		os.Exit(2)
	}
	if *parallelism < 1 {
		*parallelism = 1
	}
	var best time.Duration
	var steps int
	for i := 0; i < *runs; i++ {
		t, n, err := measure(*root, *what, *reboot, *restart, *memory, *parallelism)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "run %d: %s upgrade of %d steps took %.1fs\n", i+1, *what, n, t.Seconds())
		if best == 0 || t < best {
			best, steps = t, n
		}
	}
	if *what == "resize" {
		batches := (steps + *parallelism - 1) / *parallelism
		minimum := time.Duration(batches) * *reboot
		fmt.Printf("| workers | workerParallelism | reboot per worker (s) | sequential minimum (s) | rolling resize `up` T (s) | T / minimum |\n")
		fmt.Printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Printf("| %d | %d | %.0f | %.0f | %.1f | %.2f |\n", steps, *parallelism, reboot.Seconds(), minimum.Seconds(), best.Seconds(), best.Seconds()/minimum.Seconds())
		return
	}
	per, unit := *reboot, "| nodes | reboot per node (s) |"
	if *what == "kubernetes" {
		per, unit = *restart, "| component restarts | restart each (s) |"
	}
	minimum := time.Duration(steps) * per
	fmt.Printf("%s sequential minimum (s) | rolling upgrade `up` T (s) | T / minimum |\n", unit)
	fmt.Printf("| ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Printf("| %d | %.0f | %.0f | %.1f | %.2f |\n", steps, per.Seconds(), minimum.Seconds(), best.Seconds(), best.Seconds()/minimum.Seconds())
}

// measure runs the two ups and returns the second's wall time and its
// number of steps (nodes rebooted, components restarted, or workers
// resized).
func measure(root, what string, reboot, restart time.Duration, memory, parallelism int) (time.Duration, int, error) {
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
	world, err := simworld.Nodes(&cfg)
	if err != nil {
		return 0, 0, err
	}
	if err := engine.WriteWorld(simDir, engine.DefaultWorld(world...)); err != nil {
		return 0, 0, err
	}
	if err := engine.WriteFaults(simDir, engine.Faults{AgentWaitScale: 0.001}); err != nil {
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
	cfg.Cluster.Upgrade.WorkerParallelism = parallelism
	open := func() (*automation.Deployment, error) {
		return automation.Open(ctx, automation.Options{
			ProjectDir: root, Stack: "prod", Program: stacks.Program, Config: &cfg,
			ConfigValues: map[string]automation.ConfigValue{
				"proxmoxve:endpoint": {Value: "https://pve.example.test:8006/"},
				"proxmoxve:apiToken": {Value: "root@pam!bench=00000000-0000-0000-0000-000000000000", Secret: true},
				"sda:sshPrivateKey":  {Value: "bench-key", Secret: true},
			},
			Home: filepath.Join(tmp, "home"),
			// HOME: SDA's plugin pins the simulated Proxmox nodes' host
			// keys in $HOME/.ssh/known_hosts, which must not be the user's.
			Env: map[string]string{engine.StateDirEnv: simDir, "HTTPS_PROXY": proxy,
				"HOME": filepath.Join(tmp, "user")},
		})
	}
	d, err := open()
	if err != nil {
		return 0, 0, err
	}
	if _, err := d.Up(ctx); err != nil {
		return 0, 0, err
	}
	faults := engine.Faults{AgentWaitScale: 0.001, RebootTime: reboot.String()}
	switch what {
	case "kubernetes":
		faults = engine.Faults{AgentWaitScale: 0.001, ComponentRestartTime: restart.String()}
		cfg.Cluster.KubernetesVersion = "v1.35.1"
	case "resize":
		cfg.Nodes.Worker.MemoryMiB += memory
	default:
		cfg.Cluster.TalosVersion = "v1.12.1"
	}
	if err := engine.WriteFaults(simDir, faults); err != nil {
		return 0, 0, err
	}
	if d, err = open(); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := d.Up(ctx); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	st, err := engine.ReadState(simDir)
	if err != nil {
		return 0, 0, err
	}
	if what == "kubernetes" {
		return took, kubernetesSteps(st, start, took), nil
	}
	if what == "resize" {
		n, err := resizeSteps(st, start, took, cfg.Nodes.Worker.MemoryMiB)
		return took, n, err
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

// kubernetesSteps prints where the Kubernetes upgrade's time went and
// counts the component restarts (kube-proxy's image change restarts
// nothing on the node).
func kubernetesSteps(st *engine.State, start time.Time, took time.Duration) int {
	prev, steps := start, 0
	for _, c := range st.ComponentChanges {
		if c.Start.Before(start) || !c.Ready.After(c.Start) {
			continue
		}
		steps++
		fmt.Fprintf(os.Stderr, "  %-24s %-13s waited %.2fs before its restart, down %.1fs\n", c.Component, c.Hostname, c.Start.Sub(prev).Seconds(), c.Ready.Sub(c.Start).Seconds())
		prev = c.Ready
	}
	fmt.Fprintf(os.Stderr, "  after the last restart: %.2fs\n", start.Add(took).Sub(prev).Seconds())
	return steps
}

// resizeSteps prints where the resize's time went (per worker: the time
// from the last return before its reboot, or the up's start, to its
// reboot; the reboot; and after the last return) and checks that every
// worker, and nothing else, was resized and rebooted once.
func resizeSteps(st *engine.State, start time.Time, took time.Duration, memory int) (int, error) {
	prev := start
	var ends []time.Time
	rebooted := map[string]int{}
	var reboots time.Duration // the time at least one worker was down
	var downUntil time.Time
	for _, r := range st.Reboots {
		if r.Start.Before(start) {
			continue
		}
		rebooted[r.Name]++
		from := r.Start
		if from.Before(downUntil) {
			from = downUntil
		}
		if r.End.After(from) {
			reboots += r.End.Sub(from)
			downUntil = r.End
		}
		since := start
		for _, e := range ends {
			if !e.After(r.Start) && e.After(since) {
				since = e
			}
		}
		ends = append(ends, r.End)
		fmt.Fprintf(os.Stderr, "  %-14s waited %.2fs before its reboot, down %.1fs (%s)\n", r.Name, r.Start.Sub(since).Seconds(), r.End.Sub(r.Start).Seconds(), r.Cause)
		if r.End.After(prev) {
			prev = r.End
		}
	}
	fmt.Fprintf(os.Stderr, "  after the last return: %.2fs\n", start.Add(took).Sub(prev).Seconds())
	workers := 0
	for _, g := range st.Guests {
		if g.Kind != "qemu" {
			continue
		}
		isWorker := g.MemoryMiB == memory
		if isWorker {
			workers++
		}
		if isWorker != (rebooted[g.Name] == 1) {
			return 0, fmt.Errorf("%s has %d MiB and rebooted %d times", g.Name, g.MemoryMiB, rebooted[g.Name])
		}
	}
	if workers == 0 {
		return 0, fmt.Errorf("no VM has the new memory size %d MiB", memory)
	}
	fmt.Fprintf(os.Stderr, "  %d workers rebooted; some worker was down for %.1fs of the up, the other %.1fs are overhead\n", workers, reboots.Seconds(), (took - reboots).Seconds())
	return workers, nil
}
