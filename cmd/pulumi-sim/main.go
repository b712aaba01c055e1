// Command pulumi-sim is the simulated proxmoxve, talos, kubernetes and
// command provider plugins in one binary, and the talosctl and kubectl that
// simulated local commands run and the pct and pvesh that simulated remote
// commands run (on the Proxmox node named by SDA_SIM_NODE). Installed (linked or copied) as
// pulumi-resource-<name> on PATH, it serves the provider its file name names;
// the engine then uses it in place of the real plugin. The state of the
// simulated systems lives in the directory named by SDA_SIM_STATE.
//
// `pulumi-sim talos-apid --dir D --listen ADDR` serves the simulated Talos
// API (simulator.ServeTalosAPI) of simulation directory D (default
// SDA_SIM_STATE) on ADDR (default 127.0.0.1:0), printing the address it
// listens on as the first line of stdout; clients dial nodes through
// talos.APIDialer(ADDR).
//
// See docs/simulation.md for what it checks and what it cannot.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
)

func main() {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "pulumi-resource-")
	if len(os.Args) > 1 && os.Args[1] == "talos-apid" {
		if err := talosAPID(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "pulumi-sim talos-apid: %v\n", err)
			os.Exit(1)
		}
		return
	}
	dir := os.Getenv(engine.StateDirEnv)
	if dir == "" {
		fmt.Fprintf(os.Stderr, "pulumi-sim: set %s to the simulation directory\n", engine.StateDirEnv)
		os.Exit(2)
	}
	// Linked as talosctl, kubectl, pct or pvesh, it is the simulated tool
	// that local and remote commands run (see clis.RunCLI).
	if slices.Contains(clis.CLIs, name) {
		os.Exit(clis.RunCLI(name, dir, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	err := provider.Main(name, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return simulator.New(name, dir)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-sim (%s): %v\n", name, err)
		os.Exit(1)
	}
}

// talosAPID serves the simulated Talos API until SIGINT or SIGTERM.
func talosAPID(args []string) error {
	fs := flag.NewFlagSet("talos-apid", flag.ContinueOnError)
	dir := fs.String("dir", os.Getenv(engine.StateDirEnv), "simulation directory")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("give --dir or set %s", engine.StateDirEnv)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println(lis.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return simulator.ServeTalosAPI(ctx, *dir, lis)
}
