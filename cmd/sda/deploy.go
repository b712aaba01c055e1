package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The Pulumi commands live in a binary of their own, cmd/sda-deploy: it
// links every provider SDK and the Pulumi engine client, which takes minutes
// to compile on a fresh machine. Keeping them out of this binary is what
// makes `go run ./cmd/sda plan` print its plan in seconds; the deploy
// commands pay for their build only when they are used.
const (
	modulePath    = "github.com/sda-platform/sda"
	deployPackage = modulePath + "/cmd/sda-deploy"
	deployBinary  = "sda-deploy"
	// pluginBinary is SDA's provider plugin (the provider/ module), which
	// the engine looks for on PATH.
	pluginBinary = "pulumi-resource-sda"
	// deployEnv names a deploy binary to run instead of looking for one.
	deployEnv = "SDA_DEPLOY"
)

func init() {
	for _, c := range []struct{ name, summary string }{
		{"up", "deploy a stack (Pulumi engine)"},
		{"preview", "show what up would change"},
		{"refresh", "read the deployed resources back into the state"},
		{"destroy", "delete a stack's resources (keeps the protected Talos secrets)"},
		{"outputs", "print a stack's outputs as JSON"},
		{"recover", "after a killed run: remove its stale lock, resolve its pending creates"},
	} {
		name := c.name
		register(name, command{summary: c.summary + " [sda-deploy]", run: func(a []string, o, e io.Writer) int {
			return runDeploy(name, a, o, e)
		}})
	}
}

// deployBinaryPath finds or builds the deploy binary, in this order:
//  1. $SDA_DEPLOY, a path to a built sda-deploy;
//  2. inside a source tree of this module (the working directory or one of
//     its parents has SDA's go.mod): `go build` of cmd/sda-deploy from that
//     tree into the user cache directory, so the deploy commands always run
//     the code next to the offline ones; Go's build cache makes every build
//     after the first take seconds, and an up-to-date binary is not linked
//     again;
//  3. sda-deploy on PATH (`go install github.com/sda-platform/sda/cmd/sda-deploy@…`).
//
// In case 2 it also builds SDA's provider plugin, pulumi-resource-sda, from
// the tree's provider/ module into the same directory, and returns that
// directory as pluginDir: the engine finds the plugin on PATH, and runDeploy
// puts pluginDir first there. In cases 1 and 3 pluginDir is empty and PATH
// stays as it is (automation.Open then looks beside the pulumi CLI).
//
// It builds rather than `go run`s so that the exit code (2 for a usage
// error) and signals reach the deploy program unchanged.
func deployBinaryPath(stderr io.Writer) (bin, pluginDir string, err error) {
	if p := os.Getenv(deployEnv); p != "" {
		return p, "", nil
	}
	if root, ok := moduleRoot(); ok {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := cacheDir(cache, root)
		for _, b := range sourceBuilds(root, dir) {
			if err := b.run(stderr); err != nil {
				return "", "", err
			}
		}
		return filepath.Join(dir, deployBinary), dir, nil
	}
	if p, err := exec.LookPath(deployBinary); err == nil {
		return p, "", nil
	}
	return "", "", fmt.Errorf("the deploy commands are in %s: run sda inside a checkout of %s, put %s on PATH (go install %s@latest), or set %s to its path",
		deployBinary, modulePath, deployBinary, deployPackage, deployEnv)
}

// cacheDir is where the binaries built from the source tree at root go: one
// directory per tree under the user cache directory.
func cacheDir(cache, root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(cache, "sda", hex.EncodeToString(sum[:6]))
}

// goBuild is one `go build -o <out> <pkg>` run in dir.
type goBuild struct {
	dir, out, pkg string
	// slow says what takes minutes the first time on a machine.
	slow string
}

// sourceBuilds are the builds from the source tree at root into dir:
// sda-deploy, then the provider plugin from the provider/ module (a module
// of its own, so it builds in its directory).
func sourceBuilds(root, dir string) []goBuild {
	return []goBuild{
		{dir: root, out: filepath.Join(dir, deployBinary), pkg: deployPackage,
			slow: "the first build on a machine links the provider SDKs and takes minutes"},
		{dir: filepath.Join(root, "provider"), out: filepath.Join(dir, pluginBinary), pkg: ".",
			slow: "the first build on a machine links the Pulumi engine module and takes minutes"},
	}
}

func (b goBuild) command() *exec.Cmd {
	cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
	cmd.Dir = b.dir
	return cmd
}

func (b goBuild) run(stderr io.Writer) error {
	cmd := b.command()
	cmd.Stdout, cmd.Stderr = stderr, stderr
	name := filepath.Base(b.out)
	// An up-to-date binary takes well under a second; say why only
	// when the build really runs.
	slow := time.AfterFunc(2*time.Second, func() {
		fmt.Fprintf(stderr, "sda: building %s (go build %s in %s): %s\n", name, b.pkg, b.dir, b.slow)
	})
	err := cmd.Run()
	slow.Stop()
	if err != nil {
		return fmt.Errorf("building %s (go build %s in %s): %w", name, b.pkg, b.dir, err)
	}
	return nil
}

// deployCommand is `<bin> <op> <args>`. With a pluginDir (sda-deploy and the
// plugin were built from a source tree) the child's environment is environ
// with pluginDir first on PATH; without one the child inherits this
// process's environment unchanged.
func deployCommand(bin, op string, args []string, pluginDir string, environ []string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{op}, args...)...)
	if pluginDir != "" {
		cmd.Env = prependPath(environ, pluginDir)
	}
	return cmd
}

// prependPath returns a copy of environ whose PATH starts with dir (a PATH
// of dir alone when environ has none). Like os/exec, it takes the last PATH
// when there are several, and leaves one.
func prependPath(environ []string, dir string) []string {
	out := make([]string, 0, len(environ)+1)
	path, found := "", false
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
			continue
		}
		out = append(out, kv)
	}
	if found && path != "" {
		dir += string(os.PathListSeparator) + path
	}
	return append(out, "PATH="+dir)
}

// moduleRoot finds the directory of SDA's go.mod at or above the working
// directory.
func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			return dir, isModule(string(b))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isModule(gomod string) bool {
	for _, line := range strings.Split(gomod, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath
		}
	}
	return false
}

// runDeploy runs `sda-deploy <op> <args>` in the user's working directory
// with this process's standard streams, and returns its exit code.
func runDeploy(op string, args []string, stdout, stderr io.Writer) int {
	bin, pluginDir, err := deployBinaryPath(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
		return 1
	}
	cmd := deployCommand(bin, op, args, pluginDir, os.Environ())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// Ctrl-C reaches the child through the terminal's process group; this
	// process ignores it and waits for the child to finish the steps in
	// flight. A SIGTERM sent to this process alone is passed on.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
		return 1
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sig:
				if s == syscall.SIGTERM {
					_ = cmd.Process.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	default:
		fmt.Fprintf(stderr, "sda %s: %v\n", op, err)
		return 1
	}
}
