// Command embed shows SDA's deployment embedded in another Go program: a
// tool of your own that brings a stack up (or previews it), streams the
// progress to its log and reads the outputs, with Ctrl-C cancelling cleanly.
//
//	go run ./examples/embed -stack dev -dir . -preview
//
// It needs what `sda up` needs: the pulumi CLI (scripts/install-pulumi.sh),
// PULUMI_CONFIG_PASSPHRASE, and the stack's Proxmox credentials in its
// configuration (see docs/engine.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/sda-platform/sda/automation"
	"github.com/sda-platform/sda/config"
)

func main() {
	stack := flag.String("stack", "dev", "stack name (Pulumi.<stack>.yaml)")
	dir := flag.String("dir", ".", "SDA project directory")
	workers := flag.Int("workers", -1, "override sda:cluster.workers (-1 keeps the stack file's value)")
	preview := flag.Bool("preview", false, "only preview")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// The configuration can come from the stack file as it is, or be changed
	// in Go before deploying: here the worker count.
	var typed *config.Config
	if *workers >= 0 {
		lookup, err := config.StackFiles(*dir, *stack)
		if err != nil {
			log.Fatal(err)
		}
		c, err := config.Load(lookup)
		if err != nil {
			log.Fatal(err)
		}
		c.Cluster.Workers = *workers
		typed = &c
	}

	d, err := automation.Open(ctx, automation.Options{
		ProjectDir: *dir,
		Stack:      *stack,
		Config:     typed,
		Progress:   log.Writer(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if *preview {
		res, err := d.Preview(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d resource(s) would change\n", len(res.Changed()))
		return
	}
	res, err := d.Up(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("up took %s; Kubernetes API: %v\n", res.Duration.Round(1e8), res.Outputs["kubernetesEndpoint"].Value)
}
