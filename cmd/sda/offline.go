// `sda plan`, `sda render` and `sda diagram`: commands that read a stack's
// configuration from the project files and need no credentials, no Pulumi
// engine and no network (TestNoProviderSDKs keeps the Pulumi SDKs out of
// this binary). They show and render the components' inputs as
// stacks/inputs builds them for the deployment; Talos's machinery renders
// the machine configurations.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/config/check"
)

// offlineCommands are the offline subcommands.
var offlineCommands = map[string]command{
	"plan":    {summary: "validate a stack's configuration and print its address plan and sizes", run: runPlan},
	"render":  {summary: "write the router files and every node's patches and Talos machine configuration", run: runRender},
	"diagram": {summary: "print a Mermaid flowchart of a stack", run: runDiagram},
}

func init() {
	for name, c := range offlineCommands {
		register(name, c)
	}
}

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// flags are the options the offline commands share.
type flags struct {
	set   *flag.FlagSet
	stack string
	dir   string
	out   string
}

func newFlags(name string, stderr io.Writer, withOut bool) *flags {
	f := &flags{set: flag.NewFlagSet("sda "+name, flag.ContinueOnError)}
	f.set.SetOutput(stderr)
	f.set.StringVar(&f.stack, "stack", "", "stack name: reads Pulumi.<stack>.yaml (required)")
	f.set.StringVar(&f.dir, "dir", ".", "project directory holding Pulumi.yaml")
	if withOut {
		f.set.StringVar(&f.out, "out", "", "directory to write into; replaced as a whole (required)")
	}
	return f
}

// parse returns an exit code when the command must stop (help or bad usage).
func (f *flags) parse(args []string, stderr io.Writer) (int, bool) {
	if err := f.set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, true
		}
		return ExitUsage, true // flag has printed the problem and the usage
	}
	var missing []string
	if f.stack == "" {
		missing = append(missing, "--stack")
	}
	if f.set.Lookup("out") != nil && f.out == "" {
		missing = append(missing, "--out")
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "%s: %s required\n", f.set.Name(), strings.Join(missing, " and "))
		f.set.Usage()
		return ExitUsage, true
	}
	if f.set.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", f.set.Name(), f.set.Arg(0))
		f.set.Usage()
		return ExitUsage, true
	}
	return 0, false
}

// fail prints one message and returns the failure exit code.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return ExitFail
}

// Load reads and validates a stack from the project files. Configuration
// problems (each with key, value and fix) are prefixed with the stack name;
// the other errors already name the stack or the file.
func Load(dir, stack string) (config.Config, config.Plan, error) {
	c, p, err := config.LoadStack(dir, stack)
	return c, p, stackError(stack, err)
}

// stackError prefixes configuration problems with the stack's name.
func stackError(stack string, err error) error {
	var invalid *config.Error
	if errors.As(err, &invalid) {
		return fmt.Errorf("stack %q: %w", stack, err)
	}
	return err
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	f := newFlags("plan", stderr, false)
	if code, stop := f.parse(args, stderr); stop {
		return code
	}
	// The whole check sequence, as the program runs it, the user's Talos
	// patches included; unpinned host keys are listed, not refused.
	lookup, err := config.StackFiles(f.dir, f.stack)
	if err != nil {
		return fail(stderr, f.set.Name(), err)
	}
	raw, err := config.Load(lookup)
	if err != nil {
		return fail(stderr, f.set.Name(), stackError(f.stack, err))
	}
	c, p, warnings, err := check.Stack(raw, check.Options{AllowUnpinnedHostKeys: true})
	if err != nil {
		return fail(stderr, f.set.Name(), stackError(f.stack, err))
	}
	if err := WritePlan(stdout, f.stack, c, p, warnings); err != nil {
		return fail(stderr, f.set.Name(), err)
	}
	return ExitOK
}

func runDiagram(args []string, stdout, stderr io.Writer) int {
	f := newFlags("diagram", stderr, false)
	if code, stop := f.parse(args, stderr); stop {
		return code
	}
	c, p, err := Load(f.dir, f.stack)
	if err != nil {
		return fail(stderr, f.set.Name(), err)
	}
	if _, err := io.WriteString(stdout, Diagram(c, p)); err != nil {
		return fail(stderr, f.set.Name(), err)
	}
	return ExitOK
}

func runRender(args []string, stdout, stderr io.Writer) int {
	f := newFlags("render", stderr, true)
	if code, stop := f.parse(args, stderr); stop {
		return code
	}
	c, p, err := Load(f.dir, f.stack)
	if err != nil {
		return fail(stderr, f.set.Name(), err)
	}
	files, err := Render(c, p, f.out)
	if err != nil {
		return fail(stderr, f.set.Name(), err)
	}
	fmt.Fprintf(stdout, "wrote %d files for stack %s into %s\n", len(files), f.stack, f.out)
	for _, file := range files {
		fmt.Fprintf(stdout, "  %s\n", file.Path)
	}
	return ExitOK
}
