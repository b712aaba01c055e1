package automation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PluginBinary is SDA's provider plugin, built from the provider/ module of
// a checkout. The SDA stack registers resources that it serves, and the
// engine looks for it, as for every pulumi-resource-<name>, on its PATH.
const PluginBinary = "pulumi-resource-sda"

// enginePath is the PATH the engine runs with. base is the PATH it would
// otherwise get (Options.Env["PATH"] when set, else this process's), cliDir
// the directory of the pulumi CLI, projectDir the project directory.
//
// The plugin is looked for, in this order:
//  1. on base: whoever set it up chose that plugin (`sda up` puts the one it
//     built from the checkout first; tests put their own first);
//  2. in cliDir: scripts/install-pulumi.sh builds the plugin beside the CLI
//     it installs in .tools/bin;
//  3. in .tools/bin at or above projectDir, where the script puts it also
//     when it only links a pulumi found on PATH.
//
// The result is the plugin's directory, then cliDir, then base; cliDir is
// where the Automation API would put the CLI's directory itself (it does so
// only when the caller sets no PATH).
func enginePath(base, cliDir, projectDir string) (string, error) {
	dir, ok := findPlugin(filepath.SplitList(base))
	if !ok {
		dir, ok = findPlugin(append([]string{cliDir}, toolsBins(projectDir)...))
	}
	if !ok {
		return "", fmt.Errorf("%s, SDA's provider plugin, was found neither on PATH nor beside the pulumi CLI (%s): "+
			"run scripts/install-pulumi.sh in the SDA checkout (it builds the plugin into .tools/bin, beside the CLI it installs), "+
			"or put %s on PATH (cd provider && go build -o <a directory on PATH>/%s .)",
			PluginBinary, cliDir, PluginBinary, PluginBinary)
	}
	parts := []string{dir}
	if cliDir != dir {
		parts = append(parts, cliDir)
	}
	if base != "" {
		parts = append(parts, base)
	}
	return strings.Join(parts, string(os.PathListSeparator)), nil
}

// findPlugin returns the first of dirs that holds an executable
// pulumi-resource-sda. Relative directories do not count: the engine runs in
// the work directory, and Go's exec.LookPath refuses them anyway.
func findPlugin(dirs []string) (string, bool) {
	for _, dir := range dirs {
		if !filepath.IsAbs(dir) {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, PluginBinary))
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return dir, true
		}
	}
	return "", false
}

// toolsBins lists .tools/bin of dir and of each of its parents, nearest first.
func toolsBins(dir string) []string {
	var out []string
	for {
		out = append(out, filepath.Join(dir, ".tools", "bin"))
		parent := filepath.Dir(dir)
		if parent == dir {
			return out
		}
		dir = parent
	}
}
