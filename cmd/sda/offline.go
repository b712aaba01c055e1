package main

import "github.com/sda-platform/sda/internal/offline"

// The offline commands need no credentials and no Pulumi engine.
func init() {
	for _, c := range offline.Commands {
		register(c.Name, command{summary: c.Summary, run: c.Run})
	}
}
