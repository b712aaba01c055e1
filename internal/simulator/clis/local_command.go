package clis

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// TokenLocalCommand is the command provider's local command.
const TokenLocalCommand = "command:local:Command"

// localCommandTimeout bounds a simulated local script; the real provider
// has none, but a hung test should end.
const localCommandTimeout = 5 * time.Minute

// runLocal is a local command's run, as pulumi-command v1.1.0 does it
// (provider/pkg/provider/local/commandOutputs.go:38-141): the interpreter
// (default /bin/sh -c), the provider's environment plus `environment`, and
// a non-zero exit failing the step with the output. Like remote commands
// it is the kind's exec step, outside the state lock, for create, update
// (`update`, else `create`) and delete. SDA's own stacks run no local
// command; the kind stays for programs that embed the components.
//
// Not simulated: PULUMI_COMMAND_STDOUT/STDERR for update and delete (the
// exec step does not see the previous outputs); a command must set
// addPreviousOutputInEnv: false, as SDA's do, or it is refused.
func runLocal(ctx context.Context, _ *engine.Server, method string, v map[string]any) (any, error) {
	_, script, ok := scriptFor(method, v)
	if !ok || script == "" {
		return nil, nil
	}
	if keyAddPreviousOutputInEnv.In(v) != false {
		return nil, fmt.Errorf("simulated local command: set addPreviousOutputInEnv: false (previous outputs are not simulated)")
	}
	bin, err := ToolDir()
	if err != nil {
		return nil, err
	}
	args := keyInterpreter.In(v)
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c"}
	}
	ctx, cancel := context.WithTimeout(ctx, localCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], script)...)
	cmd.Dir = keyDir.In(v)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if env := keyEnvironment.In(v); env != nil {
		for k, val := range env {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%v", k, val))
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: running %q:\n%s%s", err, firstLine(script), stdout.String(), stderr.String())
	}
	return commandOutputs(&stdout, &stderr), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line + " …"
}
