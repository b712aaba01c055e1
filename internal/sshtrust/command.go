package sshtrust

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/grammar"
)

// Summary is the command's line in `sda help`.
const Summary = "fetch each Proxmox node's SSH host key, show its fingerprint, and pin it in Pulumi.<stack>.yaml"

// Run is `sda trust --stack S`: for every Proxmox node of the stack it
// fetches the host key at sshHost, prints its SHA256 fingerprint and
// whether it is new, the pinned one or CHANGED, and, once the user
// confirms (or --yes), writes the new pins into the stack file. A changed
// key is never written without --replace: it is what an impostor looks
// like. Exit codes: 0 written or nothing to do, 1 failure or refusal, 2
// usage.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sda trust", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := fs.String("stack", "", "stack name: pins into Pulumi.<stack>.yaml (required)")
	dir := fs.String("dir", ".", "project directory holding Pulumi.yaml")
	port := fs.Int("port", 22, "SSH port of the Proxmox nodes")
	yes := fs.Bool("yes", false, "write the keys without asking (after checking the fingerprints yourself)")
	replace := fs.Bool("replace", false, "also overwrite pins whose key CHANGED (only after confirming the node was reinstalled)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *stack == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "sda trust: --stack required, and no other arguments")
		fs.Usage()
		return 2
	}
	lookup, err := config.StackFiles(*dir, *stack)
	if err != nil {
		fmt.Fprintln(stderr, "sda trust:", err)
		return 1
	}
	c, err := config.Load(lookup)
	if err != nil {
		fmt.Fprintln(stderr, "sda trust:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pins, changed, failed := map[string]string{}, 0, 0
	for _, n := range config.WithDefaults(c).Proxmox.Nodes {
		addr := net.JoinHostPort(n.SSHHost, strconv.Itoa(*port))
		key, err := FetchHostKey(ctx, addr)
		if err != nil {
			fmt.Fprintf(stderr, "%s (%s): %v\n", n.Name, addr, err)
			failed++
			continue
		}
		line, state := Line(key), "new"
		if old, err := grammar.SSHHostKey(n.SSHHostKey); n.SSHHostKey != "" {
			switch {
			case err == nil && old == line:
				state = "pinned already"
			case err == nil:
				oldKey, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(old))
				state = "CHANGED: pinned " + Fingerprint(oldKey)
				changed++
			default:
				state = "replaces an unusable pin"
			}
		}
		fmt.Fprintf(stdout, "%-12s %-22s %s %s  (%s)\n", n.Name, addr, key.Type(), Fingerprint(key), state)
		if state == "pinned already" || strings.HasPrefix(state, "CHANGED") && !*replace {
			continue
		}
		pins[n.Name] = line
	}
	if changed > 0 && !*replace {
		fmt.Fprintf(stderr, "\n%d node(s) answer with another key than the pinned one. Either the node was reinstalled, or another machine answers on its address.\n"+
			"Check on the node's console: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub. Only if it matches the new fingerprint, rerun with --replace.\n", changed)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "\n%d node(s) could not be reached; nothing is written\n", failed)
		return 1
	}
	if len(pins) == 0 {
		if changed > 0 {
			return 1
		}
		fmt.Fprintln(stdout, "nothing to pin")
		return 0
	}
	file := filepath.Join(*dir, "Pulumi."+*stack+".yaml")
	if !*yes {
		fmt.Fprintf(stdout, "\nCompare each fingerprint with the node's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).\nPin %d key(s) in %s? [y/N] ", len(pins), file)
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "nothing written")
			return 1
		}
	}
	if err := pinFile(file, pins); err != nil {
		fmt.Fprintln(stderr, "sda trust:", err)
		return 1
	}
	fmt.Fprintf(stdout, "pinned %d key(s) in %s\n", len(pins), file)
	if changed > 0 && !*replace {
		return 1
	}
	return 0
}

// pinFile writes pins into the stack file in place, keeping its mode.
func pinFile(file string, pins map[string]string) error {
	info, err := os.Stat(file)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := PinInStackFile(data, pins)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return os.WriteFile(file, out, info.Mode().Perm())
}

// VerifyStack checks, before a deployment starts, that every Proxmox node
// the plan uses answers SSH at its sshHost with its pinned key: a clear
// refusal naming the node and both fingerprints, instead of a script
// failing half-way with "ssh: host key mismatch". Nodes without a pin are
// left to config.HostKeyProblems (and the opt-out).
func VerifyStack(ctx context.Context, p config.Plan) error {
	var problems []string
	for _, n := range p.ProxmoxNodes {
		if n.SSHHostKey == "" {
			continue
		}
		if err := VerifyHostKey(ctx, net.JoinHostPort(n.SSHHost, "22"), n.SSHHostKey); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("SSH host keys:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return nil
}
