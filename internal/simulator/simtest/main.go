package simtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
)

// Main is a test package's TestMain. It lets the test binary be the
// simulated tools too: remote and local command scripts find it linked as
// pct and pvesh in a temporary directory (clis.ToolDir), as the plugin finds
// pulumi-sim.
func Main(m *testing.M) {
	if name := filepath.Base(os.Args[0]); slices.Contains(clis.CLIs, name) {
		os.Exit(clis.RunCLI(name, os.Getenv(engine.StateDirEnv), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "simtools")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, name := range clis.CLIs {
		if err := os.Symlink(exe, filepath.Join(dir, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	clis.ToolDir = func() (string, error) { return dir, nil }
	return m.Run()
}
