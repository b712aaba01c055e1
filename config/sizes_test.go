package config

import (
	"fmt"
	"testing"
)

// A guest smaller than its operating system needs is refused, named by
// its key.
func TestSizeProblems(t *testing.T) {
	runProblemCases(t, []problemCase{
		{"too little memory", func(c *Config) { c.Nodes.Worker.MemoryMiB = 1024 }, "sda:nodes.worker.memoryMiB", "1024", "2048"},
	})
}

// Each size is refused one below its minimum, with the minimum in the fix,
// and accepted at it: Talos's 2 cores, 2048 MiB and 10 GiB for both node
// roles, the router's 1 core, 128 MiB and 1 GiB.
func TestSizeMinimums(t *testing.T) {
	for _, tc := range []struct {
		key string
		set func(*Config, int)
		min int
		fix string
	}{
		{"sda:nodes.controlPlane.cores", func(c *Config, n int) { c.Nodes.ControlPlane.Cores = n }, 2, "at least 2 cores"},
		{"sda:nodes.controlPlane.memoryMiB", func(c *Config, n int) { c.Nodes.ControlPlane.MemoryMiB = n }, 2048, "at least 2048 MiB"},
		{"sda:nodes.controlPlane.diskGiB", func(c *Config, n int) { c.Nodes.ControlPlane.DiskGiB = n }, 10, "at least 10 GiB"},
		{"sda:nodes.worker.cores", func(c *Config, n int) { c.Nodes.Worker.Cores = n }, 2, "at least 2 cores"},
		{"sda:nodes.worker.memoryMiB", func(c *Config, n int) { c.Nodes.Worker.MemoryMiB = n }, 2048, "at least 2048 MiB"},
		{"sda:nodes.worker.diskGiB", func(c *Config, n int) { c.Nodes.Worker.DiskGiB = n }, 10, "at least 10 GiB"},
		{"sda:router.cores", func(c *Config, n int) { c.Router.Cores = n }, 1, "1 or more"},
		{"sda:router.memoryMiB", func(c *Config, n int) { c.Router.MemoryMiB = n }, 128, "at least 128 MiB"},
		{"sda:router.diskGiB", func(c *Config, n int) { c.Router.DiskGiB = n }, 1, "at least 1 GiB"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			c := valid()
			tc.set(&c, tc.min)
			if _, _, err := Resolve(c); err != nil {
				t.Errorf("%s = %d (the minimum) refused: %v", tc.key, tc.min, err)
			}
			// Below the minimum; 0 would mean "the default".
			below := tc.min - 1
			if below == 0 {
				below = -1
			}
			runRuleCases(t, []ruleCase{{fmt.Sprintf("%d", below),
				func(c *Config) { tc.set(c, below) }, tc.key, fmt.Sprint(below), []string{tc.fix}}})
		})
	}
}
