// Command pulumi-sim is the simulated proxmoxve, talos, kubernetes and
// command provider plugins in one binary, and the talosctl and kubectl that
// simulated local commands run and the pct and pvesh that simulated remote
// commands run (on the Proxmox node named by SDA_SIM_NODE). Installed (linked or copied) as
// pulumi-resource-<name> on PATH, it serves the provider its file name names;
// the engine then uses it in place of the real plugin. The state of the
// simulated systems lives in the directory named by SDA_SIM_STATE.
//
// See docs/simulation.md for what it checks and what it cannot.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/sda-platform/sda/internal/simulator"
)

func main() {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "pulumi-resource-")
	dir := os.Getenv(simulator.StateDirEnv)
	if dir == "" {
		fmt.Fprintf(os.Stderr, "pulumi-sim: set %s to the simulation directory\n", simulator.StateDirEnv)
		os.Exit(2)
	}
	// Linked as talosctl, kubectl, pct or pvesh, it is the simulated tool
	// that local and remote commands run (see simulator.RunCLI).
	if slices.Contains(simulator.CLIs, name) {
		os.Exit(simulator.RunCLI(name, dir, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	err := provider.Main(name, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return simulator.New(name, dir)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-sim (%s): %v\n", name, err)
		os.Exit(1)
	}
}
