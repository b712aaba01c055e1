package inputs

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// The layers the restructuring made: the components stand alone (no SDA
// package outside components/ and grammar: not internal/, not the stack
// configuration), and the pure path from configuration to inputs
// (components/spec and this package) imports no Pulumi SDK, so it is
// shared by the offline commands and tested in milliseconds.
func TestLayering(t *testing.T) {
	for _, tc := range []struct {
		pkgs      []string
		forbidden *regexp.Regexp
		why       string
	}{
		{[]string{"../../components/..."}, regexp.MustCompile(`^github\.com/sda-platform/sda/(internal|config|stacks|automation)(/|$)`),
			"components must stand alone: programs use them without SDA's configuration or internals"},
		{[]string{"../../components/spec", "."}, regexp.MustCompile(`pulumi`),
			"the configuration-to-inputs path must be pure (no Pulumi SDK)"},
	} {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, tc.pkgs...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		var bad []string
		for _, p := range strings.Fields(string(out)) {
			if tc.forbidden.MatchString(p) {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s imports %v: %s", tc.pkgs, bad, tc.why)
		}
	}
}
