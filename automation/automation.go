// Package automation runs the SDA stack program under the real Pulumi engine
// from Go: up, preview, refresh, destroy and outputs of a named stack, with
// the program inline (no language host), configuration from the project's
// own Pulumi.<stack>.yaml, a local file backend by default, progress streamed
// to a writer and cancellation through context.Context.
//
// The engine runs in a work directory holding a copy of Pulumi.yaml and
// Pulumi.<stack>.yaml, never in the project directory: the passphrase secrets
// provider writes an `encryptionsalt:` line into the stack file it runs on,
// and SetConfig writes encrypted values there. See docs/engine.md for where
// the salt lives and how to keep it.
package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks"
)

// ConfigValue is one extra configuration value, such as a provider credential.
type ConfigValue struct {
	Value  string
	Secret bool
	// Path treats the key as a property path into a structured value
	// (`pulumi config set --path`), e.g. "sda:proxmox.nodes[0].sshHostKey".
	Path bool
}

// Options select the stack and where the engine keeps its files.
type Options struct {
	// ProjectDir holds Pulumi.yaml and Pulumi.<Stack>.yaml (default ".").
	ProjectDir string
	// Stack is the stack name, e.g. "dev" (required).
	Stack string
	// Program is the Pulumi program; stacks.Program (the SDA stack) when nil.
	Program pulumi.RunFunc
	// Config, when set, replaces the sda:* keys of the stack file with this
	// typed value (other keys, such as provider credentials, stay).
	Config *config.Config
	// ConfigValues are set on the stack before each operation, e.g.
	// "proxmoxve:apiToken" as a secret. They are written encrypted into the
	// work copy of the stack file only.
	ConfigValues map[string]ConfigValue
	// Home is where SDA keeps work directories and, by default, the state
	// backend (default $SDA_HOME, else ~/.sda).
	Home string
	// WorkDir overrides the work directory (default <Home>/work/<project>/<stack>).
	WorkDir string
	// BackendURL overrides the backend (default $PULUMI_BACKEND_URL, else
	// file://<Home>/state).
	BackendURL string
	// PulumiBin is the pulumi CLI (default: FindPulumi(ProjectDir)).
	PulumiBin string
	// Env is added to the engine's environment (PULUMI_CONFIG_PASSPHRASE,
	// PATH for provider plugins, ...). A PATH here replaces this process's
	// for the engine. Either way Open puts the directory of the
	// pulumi-resource-sda it finds (on that PATH, else beside the CLI, else
	// in .tools/bin at or above ProjectDir) and the CLI's directory in front,
	// and fails, saying what to run, when it finds none.
	Env map[string]string
	// Progress receives one readable line per resource step and every
	// warning and error; nil discards it.
	Progress io.Writer
	// Parallel caps concurrent resource operations (default DefaultParallel).
	Parallel int
}

// DefaultParallel is the engine's --parallel unless Options.Parallel says
// otherwise. The CLI's own default is 4 × GOMAXPROCS (8 on a 2-core
// machine), which makes a 12-VM prod stack create its VMs and apply their
// configurations in two waves although every step only waits on Proxmox or
// Talos; docs/benchmarks.md has the measurements.
const DefaultParallel = 32

// Deployment is an opened stack.
type Deployment struct {
	opts    Options
	project string
	workDir string
	stack   auto.Stack
}

// FindPulumi locates the pulumi CLI: $SDA_PULUMI_BIN, then PATH, then
// .tools/bin/pulumi under projectDir (where scripts/install-pulumi.sh puts
// it).
func FindPulumi(projectDir string) (string, error) {
	if p := os.Getenv("SDA_PULUMI_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("SDA_PULUMI_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("pulumi"); err == nil {
		return p, nil
	}
	for dir := projectDir; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, ".tools", "bin", "pulumi")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", errors.New("the pulumi CLI was not found: install it (scripts/install-pulumi.sh builds the pinned v3.274.1 into .tools/bin) or set SDA_PULUMI_BIN")
}

// Open prepares the work directory and selects (or creates) the stack.
// The engine needs SDA's provider plugin, pulumi-resource-sda, on its PATH:
// Open finds it as Options.Env describes, and otherwise returns an error
// saying to run scripts/install-pulumi.sh or to put the plugin on PATH.
func Open(ctx context.Context, opts Options) (*Deployment, error) {
	opts, err := withOpenDefaults(opts)
	if err != nil {
		return nil, err
	}
	project, err := projectName(opts.ProjectDir)
	if err != nil {
		return nil, err
	}
	workDir := opts.WorkDir
	if workDir == "" {
		workDir = filepath.Join(opts.Home, "work", project, opts.Stack)
	}
	if err := prepareWorkDir(opts.ProjectDir, workDir, opts.Stack, opts.Config); err != nil {
		return nil, err
	}
	env, err := engineEnv(opts)
	if err != nil {
		return nil, err
	}
	cmd, err := engineCommand(opts, env)
	if err != nil {
		return nil, err
	}
	stack, err := auto.UpsertStackInlineSource(ctx, opts.Stack, project, opts.Program,
		auto.WorkDir(workDir), auto.EnvVars(env), auto.Pulumi(cmd))
	if err != nil {
		return nil, fmt.Errorf("opening stack %s: %w", opts.Stack, err)
	}
	if err := setConfig(ctx, stack, opts.ConfigValues); err != nil {
		return nil, err
	}
	return &Deployment{opts: opts, project: project, workDir: workDir, stack: stack}, nil
}

// withOpenDefaults checks that opts names a stack and fills in what it
// leaves out: the SDA program, the parallelism, the project directory (made
// absolute) and SDA's home.
func withOpenDefaults(opts Options) (Options, error) {
	if opts.Stack == "" {
		return opts, errors.New("no stack name: pass one, e.g. --stack dev")
	}
	if opts.Program == nil {
		opts.Program = stacks.Program
	}
	if opts.Parallel == 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.ProjectDir == "" {
		opts.ProjectDir = "."
	}
	projectDir, err := filepath.Abs(opts.ProjectDir)
	if err != nil {
		return opts, err
	}
	opts.ProjectDir = projectDir
	if opts.Home == "" {
		opts.Home = os.Getenv("SDA_HOME")
	}
	if opts.Home == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return opts, fmt.Errorf("no SDA home: set SDA_HOME: %w", err)
		}
		opts.Home = filepath.Join(home, ".sda")
	}
	return opts, nil
}

// engineEnv is the engine's environment: the backend (a file backend in
// SDA's home unless opts or $PULUMI_BACKEND_URL name one), no update check,
// then opts.Env. A file backend needs a passphrase for the stack's secrets.
func engineEnv(opts Options) (map[string]string, error) {
	backend := opts.BackendURL
	if backend == "" {
		backend = os.Getenv("PULUMI_BACKEND_URL")
	}
	if backend == "" {
		dir := filepath.Join(opts.Home, "state")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		backend = "file://" + dir
	}
	env := map[string]string{
		"PULUMI_BACKEND_URL":       backend,
		"PULUMI_SKIP_UPDATE_CHECK": "true",
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	if _, ok := env["PULUMI_CONFIG_PASSPHRASE"]; !ok && os.Getenv("PULUMI_CONFIG_PASSPHRASE") == "" &&
		os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") == "" && strings.HasPrefix(backend, "file://") {
		return nil, errors.New("set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): it encrypts the stack's secrets in the local state")
	}
	return env, nil
}

// engineCommand is the pulumi CLI the engine runs (opts.PulumiBin, else
// FindPulumi); it sets env's PATH so the engine finds the CLI's directory
// and SDA's provider plugin first (enginePath).
func engineCommand(opts Options, env map[string]string) (auto.PulumiCommand, error) {
	bin := opts.PulumiBin
	if bin == "" {
		var err error
		if bin, err = FindPulumi(opts.ProjectDir); err != nil {
			return nil, err
		}
	}
	cmd, err := pulumiCommand(bin)
	if err != nil {
		return nil, err
	}
	// pulumiCommand accepted bin, so it has an absolute form.
	absBin, _ := filepath.Abs(bin)
	base, ok := env["PATH"]
	if !ok {
		base = os.Getenv("PATH")
	}
	if env["PATH"], err = enginePath(base, filepath.Dir(absBin), opts.ProjectDir); err != nil {
		return nil, err
	}
	return cmd, nil
}

// setConfig sets values on the stack: the plain keys at once, then each
// property path into them (one CLI call per path).
func setConfig(ctx context.Context, stack auto.Stack, values map[string]ConfigValue) error {
	plain := auto.ConfigMap{}
	var paths []string
	for k, v := range values {
		if v.Path {
			paths = append(paths, k)
		} else {
			plain[k] = auto.ConfigValue{Value: v.Value, Secret: v.Secret}
		}
	}
	if len(plain) > 0 {
		if err := stack.SetAllConfig(ctx, plain); err != nil {
			return fmt.Errorf("setting configuration: %w", err)
		}
	}
	slices.Sort(paths)
	for _, k := range paths {
		v := values[k]
		if err := stack.SetConfigWithOptions(ctx, k, auto.ConfigValue{Value: v.Value, Secret: v.Secret}, &auto.ConfigOptions{Path: true}); err != nil {
			return fmt.Errorf("setting configuration %s: %w", k, err)
		}
	}
	return nil
}

// pulumiCommand wraps the CLI at bin. The Automation API wants a root with
// bin/pulumi inside; any other location is reached through PATH.
func pulumiCommand(bin string) (auto.PulumiCommand, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if filepath.Base(abs) == "pulumi" && filepath.Base(filepath.Dir(abs)) == "bin" {
		return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(filepath.Dir(abs))})
	}
	return nil, fmt.Errorf("pulumi CLI %s: expected a file named pulumi in a bin directory", bin)
}

func projectName(projectDir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(projectDir, "Pulumi.yaml"))
	if err != nil {
		return "", fmt.Errorf("reading the project file: %w", err)
	}
	var p struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil || p.Name == "" {
		return "", fmt.Errorf("%s: no project name", filepath.Join(projectDir, "Pulumi.yaml"))
	}
	return p.Name, nil
}

// WorkDir is where the engine runs: the copies of the project files, with
// the stack's encryption salt.
func (d *Deployment) WorkDir() string { return d.workDir }

// Stack is the underlying Automation API stack, for what this package does
// not wrap (export, import, history).
func (d *Deployment) Stack() auto.Stack { return d.stack }

// Step is one resource operation of an update or a preview.
type Step struct {
	URN  string
	Type string
	Name string
	// Op is the engine's operation: create, update, delete, replace,
	// create-replacement, delete-replaced, same, read, refresh, ...
	Op string
	// Diffs are the top-level properties that changed; Replaces those that
	// forced a replacement.
	Diffs    []string
	Replaces []string
	// Failed is true when the step's operation failed.
	Failed   bool
	Duration time.Duration
}

// Result is what an operation did (or, for a preview, would do).
type Result struct {
	Operation string
	// Changes counts resources by operation, as the engine's summary does.
	Changes map[string]int
	// Steps lists every resource step, "same" included, in the engine's order.
	Steps    []Step
	Outputs  map[string]Output
	Duration time.Duration
	// Errors are the engine's error diagnostics.
	Errors []string
}

// Output is one stack output; Value is nil for a secret unless asked for.
type Output struct {
	Value  any
	Secret bool
}

// Count returns how many steps had op.
func (r *Result) Count(op string) int {
	n := 0
	for _, s := range r.Steps {
		if s.Op == op {
			n++
		}
	}
	return n
}

// Changed lists the steps that change something (any op but same/read/refresh).
func (r *Result) Changed() []Step {
	var out []Step
	for _, s := range r.Steps {
		switch s.Op {
		case "same", "read", "refresh":
		default:
			out = append(out, s)
		}
	}
	return out
}

// Up deploys the stack.
func (d *Deployment) Up(ctx context.Context) (*Result, error) {
	var outputs auto.OutputMap
	res, err := d.run(ctx, "up", func(ch chan<- events.EngineEvent) error {
		opts := []optup.Option{optup.EventStreams(ch), optup.SuppressProgress()}
		if d.opts.Parallel > 0 {
			opts = append(opts, optup.Parallel(d.opts.Parallel))
		}
		up, err := d.stack.Up(ctx, opts...)
		// The Automation API reads the outputs itself after an up (two more
		// CLI runs); reuse them rather than paying for them again.
		outputs = up.Outputs
		return err
	})
	if err == nil {
		res.Outputs = toOutputs(outputs, false)
	}
	return res, err
}

// Preview reports what Up would do.
func (d *Deployment) Preview(ctx context.Context) (*Result, error) {
	return d.run(ctx, "preview", func(ch chan<- events.EngineEvent) error {
		opts := []optpreview.Option{optpreview.EventStreams(ch), optpreview.SuppressProgress()}
		if d.opts.Parallel > 0 {
			opts = append(opts, optpreview.Parallel(d.opts.Parallel))
		}
		_, err := d.stack.Preview(ctx, opts...)
		return err
	})
}

// Refresh reads every resource back from its provider into the state.
func (d *Deployment) Refresh(ctx context.Context) (*Result, error) {
	return d.run(ctx, "refresh", func(ch chan<- events.EngineEvent) error {
		opts := []optrefresh.Option{optrefresh.EventStreams(ch), optrefresh.SuppressProgress()}
		if d.opts.Parallel > 0 {
			opts = append(opts, optrefresh.Parallel(d.opts.Parallel))
		}
		_, err := d.stack.Refresh(ctx, opts...)
		return err
	})
}

// DestroyOptions tune Destroy.
type DestroyOptions struct {
	// IncludeProtected destroys protected resources too (the Talos machine
	// secrets). Without it they and what they need stay in the stack, as
	// with `pulumi destroy --exclude-protected`.
	IncludeProtected bool
}

// Destroy deletes the stack's resources, by default all but the protected
// ones (see DestroyOptions).
func (d *Deployment) Destroy(ctx context.Context, o DestroyOptions) (*Result, error) {
	var exclude []string
	if o.IncludeProtected {
		if err := d.unprotectAll(ctx); err != nil {
			return nil, err
		}
	} else {
		dep, err := d.stack.Export(ctx)
		if err != nil {
			return nil, err
		}
		if exclude, err = protectedClosure(dep); err != nil {
			return nil, err
		}
	}
	return d.run(ctx, "destroy", func(ch chan<- events.EngineEvent) error {
		opts := []optdestroy.Option{optdestroy.EventStreams(ch), optdestroy.SuppressProgress()}
		if len(exclude) > 0 {
			opts = append(opts, optdestroy.Exclude(exclude))
		}
		if d.opts.Parallel > 0 {
			opts = append(opts, optdestroy.Parallel(d.opts.Parallel))
		}
		_, err := d.stack.Destroy(ctx, opts...)
		return err
	})
}

// unprotectAll clears the protect flag of every resource in the state
// (`pulumi state unprotect --all`), which the Automation API does not wrap.
func (d *Deployment) unprotectAll(ctx context.Context) error {
	var env []string
	for k, v := range d.stack.Workspace().GetEnvVars() {
		env = append(env, k+"="+v)
	}
	_, stderr, code, err := d.stack.Workspace().PulumiCommand().Run(ctx, d.workDir, nil, nil, nil, env,
		"state", "unprotect", "--all", "--yes", "--stack", d.stack.Name(), "--non-interactive")
	if err != nil || code != 0 {
		return fmt.Errorf("unprotecting the resources of stack %s: %v: %s", d.opts.Stack, err, strings.TrimSpace(stderr))
	}
	return nil
}

// Outputs returns the stack outputs; secret values are nil unless
// showSecrets.
func (d *Deployment) Outputs(ctx context.Context, showSecrets bool) (map[string]Output, error) {
	om, err := d.stack.Outputs(ctx)
	if err != nil {
		return nil, err
	}
	return toOutputs(om, showSecrets), nil
}

func toOutputs(om auto.OutputMap, showSecrets bool) map[string]Output {
	out := map[string]Output{}
	for k, v := range om {
		o := Output{Value: v.Value, Secret: v.Secret}
		if v.Secret && !showSecrets {
			o.Value = nil
		}
		out[k] = o
	}
	return out
}

// Export returns the stack's state as the engine keeps it (secrets encrypted).
func (d *Deployment) Export(ctx context.Context) (apitype.UntypedDeployment, error) {
	return d.stack.Export(ctx)
}

// run executes one engine operation, turning its event stream into a
// Result and progress lines.
func (d *Deployment) run(ctx context.Context, op string, call func(chan<- events.EngineEvent) error) (*Result, error) {
	start := time.Now()
	ch := make(chan events.EngineEvent)
	res := &Result{Operation: op, Changes: map[string]int{}}
	p := newProgress(d.opts.Progress, op, d.opts.Stack)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range ch {
			p.handle(e.EngineEvent, res)
		}
	}()
	err := call(ch)
	if err == nil {
		<-done
	} else {
		// The Automation API closes the channel once it has started
		// streaming; an error before that leaves it open, so do not wait
		// for it forever.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	res.Duration = time.Since(start)
	p.finish(res, err)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s of stack %s cancelled: %w", op, d.opts.Stack, ctx.Err())
		}
		// A stack locked by another run: say whose lock, and whether
		// `sda recover` may clear it.
		if locked := d.ExplainLocked(op, err); locked != err {
			return res, locked
		}
		return res, d.explain(op, err, res)
	}
	return res, nil
}

// explain keeps the engine's own error text short: the diagnostics already
// say what failed, so lead with them instead of the CLI's full output.
func (d *Deployment) explain(op string, err error, res *Result) error {
	if len(res.Errors) > 0 {
		return fmt.Errorf("%s of stack %s failed:\n  %s", op, d.opts.Stack, strings.Join(res.Errors, "\n  "))
	}
	// Errors the CLI reports before the engine starts (configuration it
	// refuses, a wrong passphrase) come only on its stderr.
	var lines []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if l := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "stderr:")); strings.HasPrefix(l, "error:") {
			lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, "error:")))
		}
	}
	if len(lines) > 0 {
		return fmt.Errorf("%s of stack %s failed: %s", op, d.opts.Stack, strings.Join(lines, "; "))
	}
	return fmt.Errorf("%s of stack %s failed: %w", op, d.opts.Stack, err)
}
