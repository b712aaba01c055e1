package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The offline commands must build in seconds on a fresh machine: nothing in
// this binary's import graph may pull in a provider SDK or the Pulumi SDK
// (the deploy commands live in cmd/sda-deploy).
func TestNoProviderSDKs(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	heavy := regexp.MustCompile(`pulumi-proxmoxve|pulumi-talos|pulumi-kubernetes|pulumi-command|pulumi/pulumi/sdk|pulumi/pulumi/pkg`)
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		if heavy.MatchString(p) {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("cmd/sda imports %d Pulumi SDK packages (move what needs them to cmd/sda-deploy), e.g.\n  %s",
			len(bad), strings.Join(bad[:min(len(bad), 10)], "\n  "))
	}
}

// A deploy command runs the deploy binary with the same arguments and
// returns its exit code; SDA_DEPLOY names the binary.
func TestDeployCommandsRunSDADeploy(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "sda-deploy")
	script := "#!/bin/sh\necho \"args: $*\"\necho oops >&2\nexit 2\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(deployEnv, fake)
	for _, op := range []string{"up", "preview", "refresh", "destroy", "outputs"} {
		var stdout, stderr bytes.Buffer
		code := run([]string{op, "--stack", "dev", "--dir", "x y"}, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%s: exit %d, want the deploy binary's 2", op, code)
		}
		if got, want := stdout.String(), "args: "+op+" --stack dev --dir x y\n"; got != want {
			t.Errorf("%s: stdout %q, want %q", op, got, want)
		}
		if stderr.String() != "oops\n" {
			t.Errorf("%s: stderr %q", op, stderr.String())
		}
	}
}

// Outside a checkout and without SDA_DEPLOY or sda-deploy on PATH, the
// message says how to get the deploy commands.
func TestDeployCommandsOutsideTheModule(t *testing.T) {
	t.Setenv(deployEnv, "")
	t.Setenv("PATH", t.TempDir())
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	if code := run([]string{"up", "--stack", "dev"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"sda-deploy", "go install " + deployPackage, deployEnv} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("message lacks %q: %s", want, stderr.String())
		}
	}
}

func TestIsModule(t *testing.T) {
	for gomod, want := range map[string]bool{
		"module github.com/sda-platform/sda\n\ngo 1.26.8\n":                       true,
		"module \"github.com/sda-platform/sda\"\n":                                true,
		"module example.com/mine\n\nrequire github.com/sda-platform/sda v0.1.0\n": false,
		"module github.com/sda-platform/sda/tools/pulumi\n":                       false,
	} {
		if got := isModule(gomod); got != want {
			t.Errorf("isModule(%q) = %v, want %v", gomod, got, want)
		}
	}
}
