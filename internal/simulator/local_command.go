package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// TokenLocalCommand is the command provider's local command.
const TokenLocalCommand = "command:local:Command"

// localCommandTimeout bounds a simulated local script; the real provider
// has none, but a hung test should end.
const localCommandTimeout = 5 * time.Minute

// localCommandKind runs local scripts for real, as pulumi-command v1.1.0
// does (provider/pkg/provider/local/commandOutputs.go:38-141): the
// interpreter (default /bin/sh -c), the provider's environment plus
// `environment`, stdout and stderr with one trailing newline trimmed, a
// non-zero exit failing the step with the output. Only triggers replace
// (common/inputs.go:10); an update runs `update`, else `create`
// (local/commandController.go:63-82). The script runs before the state
// lock is taken (it is the kind's prepare step), because the tools it
// calls are the simulated talosctl and kubectl (RunCLI), which take the
// lock themselves; they are found next to this plugin's executable.
//
// Not simulated: delete scripts (refused, SDA uses none), and
// PULUMI_COMMAND_STDOUT/STDERR for updates (the previous outputs are not
// known before the lock; SDA sets addPreviousOutputInEnv: false).
func localCommandKind() *kind {
	return &kind{
		token:   TokenLocalCommand,
		replace: []string{"triggers"},
		prepare: runLocal,
		create: func(_ *Server, _ *Tx, _ string, in Props) (string, map[string]any, error) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			return hex.EncodeToString(b), in.Prepared.(map[string]any), nil
		},
		update: func(_ *Server, _ *Tx, _ string, _ *Object, news Props) (map[string]any, error) {
			return news.Prepared.(map[string]any), nil
		},
		delete: func(_ *Server, _ *Tx, obj *Object) error {
			if str(obj.Inputs, "delete") != "" {
				return fmt.Errorf("simulated local command: delete scripts are not simulated")
			}
			return nil
		},
	}
}

// runLocal runs the create script (or update, when set: prepare cannot
// tell create from update, and SDA's commands use one script for both).
func runLocal(v map[string]any) (any, error) {
	script := str(v, "update")
	if script == "" {
		script = str(v, "create")
	}
	if script == "" {
		return map[string]any{"stdout": "", "stderr": ""}, nil
	}
	if _, ok := v["addPreviousOutputInEnv"]; !ok || v["addPreviousOutputInEnv"] != false {
		return nil, fmt.Errorf("simulated local command: set addPreviousOutputInEnv: false (previous outputs are not simulated)")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin := filepath.Dir(exe)
	for _, tool := range CLIs {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return nil, fmt.Errorf("simulated local command: link the plugin as %s next to it (%v)", tool, err)
		}
	}
	args := strList(v, "interpreter")
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), localCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], script)...)
	cmd.Dir = str(v, "dir")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if env, ok := v["environment"].(map[string]any); ok {
		for k, val := range env {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%v", k, val))
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: running %q:\n%s%s", err, firstLine(script), stdout.String(), stderr.String())
	}
	return map[string]any{
		"stdout": strings.TrimSuffix(stdout.String(), "\n"),
		"stderr": strings.TrimSuffix(stderr.String(), "\n"),
	}, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line + " …"
}
