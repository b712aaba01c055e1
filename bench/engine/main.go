// Command engine measures the wall time of `up` of the prod stack under the
// real Pulumi engine against the simulated providers with the latencies of
// a profile (-profile unit or realistic), for several worker counts, and
// compares it with the sum of the latencies along the critical path of the
// deployed dependency graph.
//
// Run it through bench/engine.sh, which builds the simulated plugins and
// finds the pulumi CLI. It prints a Markdown table (docs/benchmarks.md).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/sda-platform/sda/internal/simworld"
	"github.com/sda-platform/sda/stacks"
)

// profile is a set of simulated durations: the latency of each slow
// operation by resource type token (a Talos image or template download, a
// VM creation, a configuration apply, the etcd bootstrap, a Helm release),
// the scale of the agent wait (components.AgentTimeout) and the reboot
// time.
type profile struct {
	latencies      map[string]time.Duration
	agentWaitScale float64
	rebootTime     time.Duration
	about          string
}

var profiles = map[string]profile{
	// unit: round seconds of the same order, to see the engine's own cost.
	// The agent wait (a minute) becomes a second.
	"unit": {
		latencies: map[string]time.Duration{
			proxmox.TokenDownload:    3 * time.Second,
			proxmox.TokenVM:          2 * time.Second,
			talos.TokenApply:         2 * time.Second,
			talos.TokenBootstrap:     2 * time.Second,
			kubeapi.TokenHelmRelease: 2 * time.Second,
		},
		agentWaitScale: 1.0 / 60,
		about:          "unit: download 3 s, VM 2 s + agent wait 1 s, apply 2 s, bootstrap 2 s, Helm release 2 s",
	},
	// realistic: what a Talos-on-Proxmox deployment takes (estimates, see
	// docs/benchmarks.md), scaled by 1/30 (a minute becomes 2 s):
	//   - nocloud image download from the Image Factory and decompression
	//     on a home uplink: 90 s (the LXC template download alike);
	//   - VM creation with the disk import: 45 s, then the agent wait
	//     (components.AgentTimeout, a minute, the whole of it: Talos in
	//     maintenance mode runs no agent), during which the VM boots to
	//     maintenance mode;
	//   - configuration apply, install and reboot into the configured
	//     system: 120 s (the simulated apply does not reboot a new node,
	//     so all of it is the apply's latency);
	//   - etcd bootstrap: 45 s;
	//   - the CNI's Helm release (Cilium, waiting for its pods): 60 s;
	//   - a reboot (none in a first up): 60 s.
	"realistic": realistic(30),
}

// realistic is the realistic profile at 1/scale of the real durations
// (-scale; the fixed cost of an engine run does not scale, so the smaller
// the scale, the larger its share).
func realistic(scale float64) profile {
	d := func(real time.Duration) time.Duration { return time.Duration(float64(real) / scale) }
	return profile{
		latencies: map[string]time.Duration{
			proxmox.TokenDownload:    d(90 * time.Second),
			proxmox.TokenVM:          d(45 * time.Second),
			talos.TokenApply:         d(120 * time.Second),
			talos.TokenBootstrap:     d(45 * time.Second),
			kubeapi.TokenHelmRelease: d(60 * time.Second),
		},
		agentWaitScale: 1 / scale,
		rebootTime:     d(60 * time.Second),
		about: fmt.Sprintf("realistic (1/%g of reality): download %s (90 s), VM %s (45 s) + agent wait %s (60 s), "+
			"apply %s (120 s), bootstrap %s (45 s), Helm release %s (60 s), reboot %s (60 s)", scale,
			d(90*time.Second), d(45*time.Second), d(60*time.Second), d(120*time.Second), d(45*time.Second), d(60*time.Second), d(60*time.Second)),
	}
}

// prof is the profile measured (-profile).
var prof profile

var keep bool

func main() {
	root := flag.String("dir", ".", "project directory")
	stack := flag.String("stack", "prod", "stack to deploy")
	workerList := flag.String("workers", "1,3,9", "worker counts to measure")
	parallel := flag.Int("parallel", 0, "engine --parallel (0: the automation package's default)")
	runs := flag.Int("runs", 1, "runs per worker count; the table shows the fastest")
	verbose := flag.Bool("progress", false, "print the engine progress")
	profName := flag.String("profile", "unit", "latency profile: unit or realistic")
	scale := flag.Float64("scale", 30, "-profile realistic: real durations divided by this")
	flag.BoolVar(&keep, "keep", false, "keep the simulation directories (call logs) and print where they are")
	flag.Parse()
	var ok bool
	if prof, ok = profiles[*profName]; !ok || *scale <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -profile unit or -profile realistic (with -scale above 0)")
		os.Exit(2)
	}
	if *profName == "realistic" {
		prof = realistic(*scale)
	}
	if err := run(*root, *stack, *workerList, *parallel, *runs, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type row struct {
	workers    int
	open       time.Duration
	up, cp     time.Duration
	resources  int
	pathString string
}

func run(root, stack, workerList string, parallel, runs int, verbose bool) error {
	lookup, err := config.StackFiles(root, stack)
	if err != nil {
		return err
	}
	base, err := config.Load(lookup)
	if err != nil {
		return err
	}
	var rows []row
	for _, w := range strings.Split(workerList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return fmt.Errorf("-workers: %w", err)
		}
		var best row
		for i := 0; i < runs; i++ {
			r, err := measure(root, stack, base, n, parallel, verbose)
			if err != nil {
				return fmt.Errorf("%d workers: %w", n, err)
			}
			fmt.Fprintf(os.Stderr, "workers=%d run=%d open=%.1fs up=%.1fs critical path=%.1fs\n", n, i+1, r.open.Seconds(), r.up.Seconds(), r.cp.Seconds())
			if best.up == 0 || r.up < best.up {
				best = r
			}
		}
		rows = append(rows, best)
	}
	fmt.Printf("| workers | resources | `up` wall time T (s) | critical path (s) | T / critical path | T(n) / T(1) | stack open before `up` (s) |\n")
	fmt.Printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Printf("| %d | %d | %.1f | %.1f | %.2f | %.2f | %.1f |\n", r.workers, r.resources, r.up.Seconds(), r.cp.Seconds(),
			r.up.Seconds()/r.cp.Seconds(), r.up.Seconds()/rows[0].up.Seconds(), r.open.Seconds())
	}
	fmt.Printf("\nCritical path (%d workers): %s\n", rows[len(rows)-1].workers, rows[len(rows)-1].pathString)
	fmt.Printf("\nProfile %s\n", prof.about)
	return nil
}

func measure(root, stack string, base config.Config, workers, parallel int, verbose bool) (row, error) {
	tmp, err := os.MkdirTemp("", "sda-bench-")
	if err != nil {
		return row{}, err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "simulation directory:", filepath.Join(tmp, "sim"))
	} else {
		defer os.RemoveAll(tmp)
	}
	simDir := filepath.Join(tmp, "sim")
	if err := os.MkdirAll(simDir, 0o700); err != nil {
		return row{}, err
	}
	cfg := base
	cfg.Proxmox.Nodes = slices.Clone(base.Proxmox.Nodes)
	nodes, err := simworld.Nodes(&cfg)
	if err != nil {
		return row{}, err
	}
	if err := engine.WriteWorld(simDir, engine.DefaultWorld(nodes...)); err != nil {
		return row{}, err
	}
	// A new VM waits for the guest agent (components.AgentTimeout)
	// while Talos is in maintenance mode: a real cost of creation, scaled
	// like the latencies above (minutes of reality, seconds here).
	faults := engine.Faults{Latency: map[string]string{}, AgentWaitScale: prof.agentWaitScale}
	for tok, d := range prof.latencies {
		faults.Latency[tok] = d.String()
	}
	if prof.rebootTime > 0 {
		faults.RebootTime = prof.rebootTime.String()
	}
	if err := engine.WriteFaults(simDir, faults); err != nil {
		return row{}, err
	}
	cfg.Cluster.Workers = workers
	var progress io.Writer
	start := time.Now()
	if verbose {
		progress = &stamped{w: os.Stderr, start: &start}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The nodes' Talos API (the stack's TalosNodeVersion resources ask each
	// node its version), reached as a proxy, as the engine tests do.
	proxy, err := simulator.StartTalosAPI(ctx, simDir)
	if err != nil {
		return row{}, err
	}
	openStart := time.Now()
	d, err := automation.Open(ctx, automation.Options{
		ProjectDir: root, Stack: stack, Program: stacks.Program, Config: &cfg,
		ConfigValues: map[string]automation.ConfigValue{
			"proxmoxve:endpoint": {Value: "https://pve.example.test:8006/"},
			"proxmoxve:apiToken": {Value: "root@pam!bench=00000000-0000-0000-0000-000000000000", Secret: true},
			"sda:sshPrivateKey":  {Value: "bench-key", Secret: true},
		},
		Home: filepath.Join(tmp, "home"),
		// HOME: SDA's plugin pins the simulated Proxmox nodes' host keys
		// in $HOME/.ssh/known_hosts, which must not be the user's.
		Env: map[string]string{engine.StateDirEnv: simDir, "HTTPS_PROXY": proxy,
			"HOME": filepath.Join(tmp, "user")},
		Progress: progress,
		Parallel: parallel,
	})
	if err != nil {
		return row{}, err
	}
	open := time.Since(openStart)
	start = time.Now()
	if _, err := d.Up(ctx); err != nil {
		return row{}, err
	}
	up := time.Since(start)
	exp, err := d.Export(ctx)
	if err != nil {
		return row{}, err
	}
	var dep apitype.DeploymentV3
	if err := json.Unmarshal(exp.Deployment, &dep); err != nil {
		return row{}, err
	}
	// The critical path counts no reboot: a first up should have none.
	st, err := engine.ReadState(simDir)
	if err != nil {
		return row{}, err
	}
	for _, r := range st.Reboots {
		if !r.Start.Before(start) {
			fmt.Fprintf(os.Stderr, "warning: %s rebooted during the up (%s), which the critical path does not count\n", r.Name, r.Cause)
		}
	}
	cp, path := criticalPath(dep.Resources)
	custom := 0
	for _, r := range dep.Resources {
		if r.Custom && !strings.HasPrefix(string(r.Type), "pulumi:providers:") {
			custom++
		}
	}
	return row{workers: workers, open: open, up: up, cp: cp, resources: custom, pathString: path}, nil
}

// criticalPath is the longest chain of simulated latencies through the
// deployed dependency graph. A resource starts when everything it depends
// on has finished; depending on a component means depending on all of its
// descendants (that is how the Go SDK waits on a component).
func criticalPath(resources []apitype.ResourceV3) (time.Duration, string) {
	byURN := map[string]apitype.ResourceV3{}
	children := map[string][]string{}
	for _, r := range resources {
		byURN[string(r.URN)] = r
		if r.Parent != "" {
			children[string(r.Parent)] = append(children[string(r.Parent)], string(r.URN))
		}
	}
	type result struct {
		finish time.Duration
		path   []string
	}
	memo := map[string]result{}
	var finish func(urn string) result
	finish = func(urn string) result {
		if r, ok := memo[urn]; ok {
			return r
		}
		memo[urn] = result{} // cycles cannot happen in a Pulumi graph; this guards anyway
		r, ok := byURN[urn]
		if !ok {
			return result{}
		}
		var deps []string
		if r.Custom {
			for _, d := range r.Dependencies {
				deps = append(deps, string(d))
			}
			for _, ds := range r.PropertyDependencies {
				for _, d := range ds {
					deps = append(deps, string(d))
				}
			}
			if r.Provider != "" {
				deps = append(deps, r.Provider[:strings.LastIndex(r.Provider, "::")])
			}
		} else {
			deps = children[urn]
		}
		sort.Strings(deps)
		var best result
		for _, d := range deps {
			if f := finish(d); f.finish > best.finish {
				best = f
			}
		}
		out := result{finish: best.finish, path: best.path}
		// Only the operations the profile delays take time: SDA's own
		// resources (NodeDrain and NodeReady, which do nothing at
		// creation; ClusterMembers, TalosNodeVersion, KubernetesVersion,
		// which ask the simulated APIs) and every other resource count 0.
		lat := prof.latencies[string(r.Type)]
		if string(r.Type) == proxmox.TokenVM {
			// Every new VM also waits for the guest agent (see measure).
			lat += time.Duration(float64(agentTimeout()) * prof.agentWaitScale)
		}
		if lat > 0 && r.Custom {
			out.finish += lat
			out.path = append(append([]string{}, best.path...), fmt.Sprintf("%s (%s)", nameOf(urn), lat))
		}
		memo[urn] = out
		return out
	}
	var best result
	for _, r := range resources {
		if f := finish(string(r.URN)); f.finish > best.finish {
			best = f
		}
	}
	return best.finish, strings.Join(best.path, " → ")
}

func nameOf(urn string) string { return urn[strings.LastIndex(urn, "::")+2:] }

// stamped prefixes each progress line with the seconds since the up began,
// to see where the time beyond the critical path goes.
type stamped struct {
	w     io.Writer
	start *time.Time
	buf   []byte
}

func (s *stamped) Write(p []byte) (int, error) {
	s.buf = append(s.buf, p...)
	for {
		i := strings.IndexByte(string(s.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		fmt.Fprintf(s.w, "%6.2fs %s\n", time.Since(*s.start).Seconds(), s.buf[:i])
		s.buf = s.buf[i+1:]
	}
}

func agentTimeout() time.Duration {
	d, err := time.ParseDuration(components.AgentTimeout)
	if err != nil {
		panic(err)
	}
	return d
}
