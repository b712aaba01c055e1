// Command pulumi-resource-sda serves SDA's components to Pulumi programs in
// any language (TypeScript, Python, YAML, Go through the generated SDK). It
// is a component provider built with pulumi-go-provider's infer package: the
// engine asks it to construct a component, and it runs the same Go component
// code a Go program imports directly, registering the same child resources.
//
// It lives in a module of its own because pulumi-go-provider requires the
// Pulumi engine's module (pkg/v3); keeping it here keeps that out of the
// product's build, so `sda plan` and the stack program stay lean.
package main

import (
	"context"
	"fmt"
	"os"
)

// Name is the package name: the first part of every token (sda:index:*).
const Name = "sda"

// Version is stamped at build time (-ldflags "-X main.Version=…").
var Version = "0.1.0"

func main() {
	p, err := Provider()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-sda: %v\n", err)
		os.Exit(1)
	}
	if err := p.Run(context.Background(), Name, Version); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-sda: %v\n", err)
		os.Exit(1)
	}
}
