package config

import (
	"strings"
	"testing"
)

// The warning names the patch by index and the fields that reboot.
func TestRebootWarnings(t *testing.T) {
	c := Config{}
	c.Cluster.Patches = []string{"machine:\n  sysctls: {}\n", "machine:\n  env:\n    A: b\n"}
	w := rebootWarnings(c)
	if len(w) != 1 || w[0].Key != "sda:cluster.patches[1]" || w[0].Value != "machine.env" || !strings.Contains(w[0].Reason, "reboot") {
		t.Fatalf("warnings = %+v", w)
	}
}
