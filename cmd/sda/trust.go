package main

import (
	"io"
	"os"

	"github.com/sda-platform/sda/internal/sshtrust"
)

// trust pins the Proxmox nodes' SSH host keys (internal/sshtrust).
func init() {
	register("trust", command{summary: sshtrust.Summary, run: func(args []string, stdout, stderr io.Writer) int {
		return sshtrust.Run(args, os.Stdin, stdout, stderr)
	}})
}
