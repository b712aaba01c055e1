// Package engine tests the SDA stack end to end under the real Pulumi
// engine (the pinned CLI, through the automation package) against the
// simulated providers of internal/simulator. It is one test package on
// purpose: it links the provider SDKs, and every package that does so links
// a binary of its own.
package engine

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/clis"
)

var (
	// repoRoot is the module root (go.mod, the pinned CLI in .tools).
	repoRoot string
	// projectDir is the project the engine runs: Pulumi.yaml and the test
	// copies of the shipped stack files (testdata/stacks), so editing the
	// repository's stack files does not change what the tests expect.
	projectDir string
	// pluginDir holds pulumi-sim under the four provider plugin names, and
	// SDA's own plugin, pulumi-resource-sda.
	pluginDir string
	// pulumiBin is the CLI; empty when missing (skipReason says why).
	pulumiBin  string
	skipReason string
	// talosAPIProxy reaches the simulated Talos API of the simulation
	// directory in talosAPIDir.
	talosAPIProxy string
	talosAPIDir   atomic.Value
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	projectDir = filepath.Join(root, "testdata", "stacks")
	pulumiBin, err = automation.FindPulumi(repoRoot)
	if err != nil {
		if os.Getenv("SDA_REQUIRE_ENGINE") == "1" {
			fmt.Fprintf(os.Stderr, "SDA_REQUIRE_ENGINE=1 but %v\n", err)
			return 1
		}
		skipReason = "skipping engine tests: " + err.Error()
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "sda-engine-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	pluginDir = filepath.Join(tmp, "bin")
	if err := buildPlugins(pluginDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The engine finds pulumi-resource-<name> on PATH before any installed
	// plugin; PULUMI_HOME keeps this run away from the user's plugins and
	// credentials.
	os.Setenv("PATH", pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.Setenv("PULUMI_HOME", filepath.Join(tmp, "pulumi-home"))
	os.Setenv("PULUMI_CONFIG_PASSPHRASE", "engine-test-passphrase")
	os.Setenv("PULUMI_SKIP_UPDATE_CHECK", "true")
	// The nodes' Talos API for every test (startTalosAPI picks the
	// simulation), also for programs running in this process.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = simulator.ServeTalosAPIOf(ctx, func() string { d, _ := talosAPIDir.Load().(string); return d }, lis)
	}()
	talosAPIProxy = "http://" + lis.Addr().String()
	os.Setenv("HTTPS_PROXY", talosAPIProxy)
	code := m.Run()
	if code == 0 {
		code = checkForbiddenTools()
	}
	return code
}

// forbiddenTools are the CLIs SDA must not run; forbiddenLog, in the
// plugin directory, records every run of their stand-ins.
var forbiddenTools = []string{"talosctl", "kubectl"}

const forbiddenLog = "forbidden-tools.log"

// checkForbiddenTools fails the run when anything ran a forbidden tool.
func checkForbiddenTools() int {
	data, err := os.ReadFile(filepath.Join(pluginDir, forbiddenLog))
	if err != nil || len(data) == 0 {
		return 0
	}
	fmt.Fprintf(os.Stderr, "engine tests: talosctl or kubectl was run, which SDA must not need:\n%s", data)
	return 1
}

// buildPlugins builds cmd/pulumi-sim once and links it under the provider
// plugin names; it dispatches on its own name.
func buildPlugins(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(dir, "pulumi-sim")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pulumi-sim")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the simulated providers: %v\n%s", err, out)
	}
	for _, name := range []string{"proxmoxve", "talos", "kubernetes", "command"} {
		if err := os.Symlink(bin, filepath.Join(dir, "pulumi-resource-"+name)); err != nil {
			return err
		}
	}
	// SDA's own plugin: the components for other languages, and the
	// TalosNodeVersion resource every SDA stack registers.
	prov := exec.Command("go", "build", "-o", filepath.Join(dir, "pulumi-resource-sda"), ".")
	prov.Dir = filepath.Join(repoRoot, "provider")
	if out, err := prov.CombinedOutput(); err != nil {
		return fmt.Errorf("building the sda plugin (provider/): %v\n%s", err, out)
	}
	// SDA needs no talosctl or kubectl: its plugin speaks the Talos and
	// Kubernetes APIs. Stand-ins first on PATH shadow any installed ones,
	// fail, and leave a record that fails the whole run (forbiddenTools).
	for _, tool := range forbiddenTools {
		script := fmt.Sprintf("#!/bin/sh\necho \"$0 $*\" >> %q\necho \"engine tests: SDA ran %s, which it must not need\" >&2\nexit 1\n",
			filepath.Join(dir, forbiddenLog), tool)
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
			return err
		}
	}
	// The simulated pct and pvesh that remote commands run.
	for _, name := range clis.CLIs {
		if err := os.Symlink(bin, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func requireEngine(t *testing.T) {
	t.Helper()
	if pulumiBin == "" {
		t.Skip(skipReason)
	}
}
