package clis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"golang.org/x/crypto/ssh"
)

// TokenRemoteCommand is the command provider's SSH command.
const TokenRemoteCommand = "command:remote:Command"

// Kinds are the command provider's resources; they follow pulumi-command
// v1.1.0 remote.Command
// (provider/pkg/provider/remote/commandController.go, common/inputs.go):
// only triggers replace (replaceOnChanges); any other change, connection
// included, is an update that runs `update` if set, else `create` if set,
// on the new connection; delete runs `delete` (if set) with the stored
// state's connection. An unset script dials nothing. The script runs for
// real (runRemote), outside the state lock, against the simulated pct and
// pvesh.
func Kinds() []*engine.Kind {
	return []*engine.Kind{
		{Token: TokenRemoteCommand, Replace: []string{"triggers"}, Exec: runRemote, Create: createCommand, Update: updateCommand},
		{Token: TokenLocalCommand, Replace: []string{"triggers"}, Exec: runLocal, Create: createCommand, Update: updateCommand},
	}
}

// createCommand records a command's run: a random ID and the outputs its
// exec step produced (empty when there was no script).
func createCommand(_ *engine.Server, _ *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	outs := map[string]any{"stdout": "", "stderr": ""}
	if o, ok := in.Prepared.(map[string]any); ok {
		outs = o
	}
	return hex.EncodeToString(b), outs, nil
}

// updateCommand keeps the outputs of the previous run when no script ran
// (BaseOutputs of the old state).
func updateCommand(_ *engine.Server, _ *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	if o, ok := news.Prepared.(map[string]any); ok {
		return o, nil
	}
	return map[string]any{"stdout": keyStdout.In(old.Outputs), "stderr": keyStderr.In(old.Outputs)}, nil
}

// scriptFor is the script a command runs for method: `update` falls back to
// `create` (commandController.go:70-74); ok is false when there is none.
func scriptFor(method string, v map[string]any) (name, text string, ok bool) {
	name = method
	if method == "update" && !keyUpdate.Present(v) {
		name = "create"
	}
	text, ok = v[name].(string)
	return name, text, ok
}

// commandOutputs are a finished script's outputs: stdout and stderr with one
// trailing newline trimmed (commandOutputs.go:140-141, local and remote).
func commandOutputs(stdout, stderr *bytes.Buffer) map[string]any {
	return map[string]any{
		"stdout": strings.TrimSuffix(stdout.String(), "\n"),
		"stderr": strings.TrimSuffix(stderr.String(), "\n"),
	}
}

// acceptedEnv is what a stock Debian (Proxmox VE) sshd accepts from a
// client: `AcceptEnv LANG LC_*` (inferred from Debian's sshd_config). The
// command provider sends `environment` with session.Setenv and fails when
// the server refuses one; PULUMI_COMMAND_STDOUT/STDERR (previous outputs,
// set for update and delete unless addPreviousOutputInEnv is false) are
// sent the same way, but a refusal is only a warning, so on a stock
// Proxmox node update and delete scripts do not see them.
func acceptedEnv(key string) bool { return key == "LANG" || strings.HasPrefix(key, "LC_") }

// NodeEnv tells the simulated pct and pvesh which Proxmox node they run on
// (the node the remote command's SSH host is).
const NodeEnv = "SDA_SIM_NODE"

// remoteCommandTimeout bounds a simulated remote script (the real provider
// has none; a hung test should end).
const remoteCommandTimeout = 5 * time.Minute

// ToolDir is where the simulated tools are: next to the plugin.
var ToolDir = func() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Dir(exe), nil
}

// checkHostKey is pulumi-command v1.1.0's host-key rule
// (provider/pkg/provider/remote/connection.go, SShConfig): no pin accepts
// any key (ssh.InsecureIgnoreHostKey); a pin that does not parse as an
// authorized_keys line fails before dialing; otherwise the client offers
// only the pin's own key type (HostKeyAlgorithms) and accepts only that
// exact key (ssh.FixedHostKey). The messages are x/crypto/ssh's.
func checkHostKey(pin string, offered []string) error {
	if pin == "" {
		return nil
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pin))
	if err != nil {
		return fmt.Errorf("failed to parse host key: %w", err)
	}
	for _, line := range offered {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil || key.Type() != want.Type() {
			continue
		}
		if !bytes.Equal(key.Marshal(), want.Marshal()) {
			return errors.New("ssh: handshake failed: ssh: host key mismatch")
		}
		return nil
	}
	return fmt.Errorf("ssh: handshake failed: ssh: no common algorithm for host key; client offered: [%s], server offered: %v", want.Type(), keyTypes(offered))
}

func keyTypes(lines []string) []string {
	var out []string
	for _, line := range lines {
		if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			out = append(out, key.Type())
		}
	}
	return out
}

// runRemote is the SSH session of a remote command: the host must be a
// Proxmox node of the simulated cluster that has power (else the dial
// fails: engine.SSHDialError) and pass the connection's host-key
// pin (checkHostKey), `environment` must pass sshd's
// AcceptEnv, then the script runs with `sh -c` (the login shell of root on
// Proxmox is bash; SDA's scripts are POSIX) and a PATH whose pct and pvesh
// are the simulated ones, told the node by NodeEnv. stdout and stderr
// lose one trailing newline (remote/commandOutputs.go); a non-zero exit
// fails the step with the output.
func runRemote(ctx context.Context, s *engine.Server, method string, v map[string]any) (any, error) {
	script, text, ok := scriptFor(method, v)
	if !ok {
		return nil, nil // no script: the provider does not connect
	}
	w, err := s.Store.World()
	if err != nil {
		return nil, fmt.Errorf("simulated Proxmox configuration %s: %w", engine.WorldFile, err)
	}
	host := keyConnectionHost.In(v)
	var node *engine.WorldNode
	for i := range w.Nodes {
		if w.Nodes[i].SSHHost == host || w.Nodes[i].Name == host {
			node = &w.Nodes[i]
		}
	}
	if node == nil {
		return nil, fmt.Errorf("ssh: dial tcp %s:22: no route to host (no simulated Proxmox node has that address)", host)
	}
	if err := s.Store.View(func(tx *engine.Tx) error {
		if _, down := tx.NodeDown(node.Name); down {
			return engine.SSHDialError(host)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := checkHostKey(keyConnectionHostKey.In(v), node.HostKeys); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", script, host, err)
	}
	env := []string{"PATH=", engine.StateDirEnv + "=" + s.Store.Dir, NodeEnv + "=" + node.Name, "HOME=/root", "USER=root"}
	if e := keyEnvironment.In(v); e != nil {
		for _, k := range slices.Sorted(maps.Keys(e)) {
			if !acceptedEnv(k) {
				return nil, fmt.Errorf("could not set environment variable %q: ssh: setenv failed (sshd on %s accepts only LANG and LC_* by default)", k, host)
			}
			env = append(env, fmt.Sprintf("%s=%v", k, e[k]))
		}
	}
	bin, err := ToolDir()
	if err != nil {
		return nil, err
	}
	for _, tool := range []string{"pct", "pvesh"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return nil, fmt.Errorf("simulated remote command: link the plugin as %s next to it (%v)", tool, err)
		}
	}
	env[0] = "PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"
	ctx, cancel := context.WithTimeout(ctx, remoteCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", text)
	cmd.Env = env
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s on %s (%s): %w: running %q:\n%s%s", script, host, node.Name, err, firstLine(text), stdout.String(), stderr.String())
	}
	return commandOutputs(&stdout, &stderr), nil
}
