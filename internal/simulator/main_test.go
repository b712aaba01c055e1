package simulator

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMain lets the test binary be the simulated tools too: remote and
// local command scripts find it linked as pct, pvesh, talosctl and kubectl
// in a temporary directory (toolDir), as the plugin finds pulumi-sim.
func TestMain(m *testing.M) {
	if name := filepath.Base(os.Args[0]); slices.Contains(CLIs, name) {
		os.Exit(RunCLI(name, os.Getenv(StateDirEnv), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
	for _, name := range CLIs {
		if err := os.Symlink(exe, filepath.Join(dir, name)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	toolDir = func() (string, error) { return dir, nil }
	return m.Run()
}
