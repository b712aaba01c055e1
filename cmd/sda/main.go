// Command sda deploys and inspects SDA stacks. Each subcommand registers
// itself from its own file (offline.go: plan, render, diagram; deploy.go:
// the Pulumi commands), so adding one touches no other command's code.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run gets the arguments after the subcommand
// name and returns the exit code (0 success, 1 failure, 2 usage error).
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

// register adds a subcommand; call it from init(). A duplicate name is a
// programming error, caught the first time the binary runs.
func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("sda: subcommand " + name + " registered twice")
	}
	commands[name] = c
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sda: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	width := 0
	for name := range commands {
		names = append(names, name)
		width = max(width, len(name))
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: sda <command> [flags]\n\nCommands:\n")
	for _, name := range names {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, name, commands[name].summary)
	}
	b.WriteString("\nRun `sda <command> -h` for a command's flags.\n")
	io.WriteString(w, b.String())
}
