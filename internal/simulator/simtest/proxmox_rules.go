package simtest

import (
	"strings"
	"testing"
)

// WantErr fails t unless err contains sub.
func WantErr(t *testing.T, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Fatalf("want an error containing %q, got %v", sub, err)
	}
}
