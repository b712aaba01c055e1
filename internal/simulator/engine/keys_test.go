package engine_test

import (
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// TestKeys: a key reads what the path reads, zero when absent or of
// another type, and a malformed path panics naming it.
func TestKeys(t *testing.T) {
	v := map[string]any{"nodeName": "pve", "cpu": map[string]any{"cores": float64(4)}, "update": nil,
		"disks": []any{map[string]any{"fileId": "local:iso/a.img"}, "not an object"}}
	if got := engine.StrKey("nodeName").In(v); got != "pve" {
		t.Errorf("nodeName = %q", got)
	}
	if got := engine.IntKey("cpu.cores").In(v); got != 4 {
		t.Errorf("cpu.cores = %d", got)
	}
	if got := engine.IntKey("nodeName").In(v); got != 0 {
		t.Errorf("nodeName as a number = %d, want 0", got)
	}
	if got := engine.StrKey("fileId").In(engine.Elem(engine.ListKey("disks").In(v), 0)); got != "local:iso/a.img" {
		t.Errorf("disks[0].fileId = %q", got)
	}
	if e := engine.Elem(engine.ListKey("disks").In(v), 1); e != nil {
		t.Errorf("disks[1] = %v, want nil (not an object)", e)
	}
	if e := engine.Elem(engine.ListKey("disks").In(v), 5); e != nil {
		t.Errorf("disks[5] = %v, want nil", e)
	}
	if !engine.AnyKey("update").Present(v) || engine.AnyKey("delete").Present(v) || !engine.IntKey("cpu.cores").Present(v) {
		t.Error("Present: want update and cpu.cores, not delete")
	}
	for _, bad := range []string{"disks[0].fileId", "cpu..cores", "", ".x"} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), bad) {
					t.Errorf("StrKey(%q): panic %v, want one naming the path", bad, r)
				}
			}()
			engine.StrKey(bad)
		}()
	}
}
