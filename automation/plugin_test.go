package automation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func plugin(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PluginBinary), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func join(dirs ...string) string { return strings.Join(dirs, string(os.PathListSeparator)) }

// The plugin on the given PATH wins, then the one beside the CLI, then the
// one in .tools/bin above the project; its directory and the CLI's go first.
func TestEnginePath(t *testing.T) {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "sda")
	tools := filepath.Join(repo, ".tools", "bin")
	project := filepath.Join(repo, "testdata", "stacks")
	onPath := filepath.Join(tmp, "plugins")
	cliDir := filepath.Join(tmp, "pulumi", "bin")
	other := filepath.Join(tmp, "usr-bin")
	for _, d := range []string{project, cliDir, other, onPath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name, base, cli, want string) {
		t.Helper()
		got, err := enginePath(base, cli, project)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: PATH %q, want %q", name, got, want)
		}
	}

	// Nowhere: the error says what to run.
	_, err := enginePath(join(other, "relative"), cliDir, project)
	if err == nil {
		t.Fatal("no plugin anywhere: no error")
	}
	for _, want := range []string{PluginBinary, "scripts/install-pulumi.sh", "on PATH", cliDir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	plugin(t, tools)
	check("in .tools/bin above the project", other, cliDir, join(tools, cliDir, other))
	check("beside a CLI in .tools/bin", other, tools, join(tools, other))

	plugin(t, cliDir)
	check("beside the CLI", other, cliDir, join(cliDir, other))
	check("beside the CLI, empty PATH", "", cliDir, cliDir)

	plugin(t, onPath)
	check("on PATH, before one beside the CLI", join(other, onPath), cliDir, join(onPath, cliDir, other, onPath))

	// A relative PATH entry or a file that is not executable does not count.
	if err := os.WriteFile(filepath.Join(other, PluginBinary), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(onPath)
	check("relative and non-executable entries", join(".", other), cliDir, join(cliDir, ".", other))
}
