// Command fielddocs writes fielddocs_gen.go in the current directory (the
// provider module's): the Go comments of every field the plugin's schema
// serves (internal/fielddocs). Run it with `go generate` in provider/.
package main

import (
	"fmt"
	"os"

	"github.com/sda-platform/sda/provider/internal/fielddocs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "fielddocs: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	docs, err := fielddocs.Read(".")
	if err != nil {
		return err
	}
	src, err := docs.Source("main", "fieldDocs", fielddocs.Generator)
	if err != nil {
		return err
	}
	return os.WriteFile("fielddocs_gen.go", src, 0o644)
}
