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

// Inside a source tree, sda builds sda-deploy from the tree and the provider
// plugin from its provider/ module, both into the tree's cache directory.
func TestSourceBuilds(t *testing.T) {
	root, dir := "/src/sda", "/cache/sda/0123456789ab"
	var got []string
	for _, b := range sourceBuilds(root, dir) {
		cmd := b.command()
		got = append(got, cmd.Dir+": "+strings.Join(cmd.Args, " "))
	}
	want := []string{
		"/src/sda: go build -o /cache/sda/0123456789ab/sda-deploy " + deployPackage,
		"/src/sda/provider: go build -o /cache/sda/0123456789ab/pulumi-resource-sda .",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("builds:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// The deploy binary gets the plugin directory first on PATH, with the rest
// of the environment unchanged; without one it inherits the environment.
func TestDeployCommandEnvironment(t *testing.T) {
	environ := []string{"HOME=/home/u", "PATH=/usr/bin:/bin", "PULUMI_CONFIG_PASSPHRASE=x"}
	cmd := deployCommand("/c/sda-deploy", "up", []string{"--stack", "dev"}, "/c", environ)
	if got := strings.Join(cmd.Args, " "); got != "/c/sda-deploy up --stack dev" {
		t.Errorf("args %q", got)
	}
	if got, want := strings.Join(cmd.Env, " "), "HOME=/home/u PULUMI_CONFIG_PASSPHRASE=x PATH=/c:/usr/bin:/bin"; got != want {
		t.Errorf("env %q, want %q", got, want)
	}
	if environ[1] != "PATH=/usr/bin:/bin" {
		t.Errorf("the caller's environment changed: %q", environ)
	}
	if cmd := deployCommand("/usr/bin/sda-deploy", "up", nil, "", environ); cmd.Env != nil {
		t.Errorf("without a plugin directory the environment is inherited, got %q", cmd.Env)
	}
	for _, c := range []struct {
		environ []string
		want    string
	}{
		{[]string{"A=1"}, "A=1 PATH=/c"},
		{[]string{"PATH="}, "PATH=/c"},
		{[]string{"PATH=/old", "A=1", "PATH=/bin"}, "A=1 PATH=/c:/bin"}, // the last PATH is the effective one
	} {
		if got := strings.Join(prependPath(c.environ, "/c"), " "); got != c.want {
			t.Errorf("prependPath(%q) = %q, want %q", c.environ, got, c.want)
		}
	}
}

// In a source tree, the whole path with `go` replaced by a fake that writes
// scripts: sda-deploy runs from the cache directory with that directory
// first on PATH, so the engine would find the plugin built beside it.
func TestDeployInSourceTreeFindsThePlugin(t *testing.T) {
	fakeBin, cache, root := t.TempDir(), t.TempDir(), t.TempDir()
	log := filepath.Join(t.TempDir(), "go.log")
	fakeGo := `#!/bin/sh
# go build -o OUT PKG
echo "$(pwd) $*" >>"$FAKE_GO_LOG"
mkdir -p "$(dirname "$3")"
case "$3" in
*/sda-deploy) printf '#!/bin/sh\necho "args: $*"\ncommand -v pulumi-resource-sda\n' >"$3" ;;
*) printf '#!/bin/sh\n' >"$3" ;;
esac
chmod +x "$3"
`
	if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module "+modulePath+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "provider", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(deployEnv, "")
	t.Setenv("FAKE_GO_LOG", log)
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("PATH", fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(filepath.Join(root, "provider", "sub")) // any directory of the tree
	root, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := cacheDir(cache, root)

	var stdout, stderr bytes.Buffer
	if code := run([]string{"preview", "--stack", "dev"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	want := "args: preview --stack dev\n" + filepath.Join(dir, pluginBinary) + "\n"
	if stdout.String() != want {
		t.Errorf("sda-deploy printed %q, want %q", stdout.String(), want)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	wantLog := root + " build -o " + filepath.Join(dir, deployBinary) + " " + deployPackage + "\n" +
		filepath.Join(root, "provider") + " build -o " + filepath.Join(dir, pluginBinary) + " .\n"
	if string(b) != wantLog {
		t.Errorf("go ran:\n%s\nwant:\n%s", b, wantLog)
	}
}
