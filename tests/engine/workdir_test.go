package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSaltSurvivesAndProjectFilesUntouched: the engine writes the
// passphrase salt into the work copy of the stack file, never into the
// project's; the next run keeps that salt so the secrets set before still
// decrypt. The project's own stack file is byte for byte unchanged. The
// stack file is used as it is (no typed configuration), as `sda up` does,
// so the CLI's own checks of Pulumi.yaml's declarations apply.
func TestSaltSurvivesAndProjectFilesUntouched(t *testing.T) {
	e := newEnv(t, "dev")
	e.stackFileOnly = true
	ctx := testContext(t)
	projectFile := filepath.Join(projectDir, "Pulumi.dev.yaml")
	before, err := os.ReadFile(projectFile)
	if err != nil {
		t.Fatal(err)
	}
	d := e.open(ctx)
	work, err := os.ReadFile(filepath.Join(d.WorkDir(), "Pulumi.dev.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	salt := ""
	for _, line := range strings.Split(string(work), "\n") {
		if strings.HasPrefix(line, "encryptionsalt:") {
			salt = line
		}
	}
	if salt == "" {
		t.Fatalf("no encryptionsalt in the work copy:\n%s", work)
	}
	if !strings.Contains(string(work), "secure:") {
		t.Fatalf("the secret credentials are not in the work copy, encrypted:\n%s", work)
	}
	e.up(ctx)

	// A second open rewrites the work copy from the project file and must
	// carry the same salt forward.
	d = e.open(ctx)
	work, _ = os.ReadFile(filepath.Join(d.WorkDir(), "Pulumi.dev.yaml"))
	if !strings.Contains(string(work), salt) {
		t.Fatalf("the salt changed between runs: want %q in\n%s", salt, work)
	}
	e.assertNoChanges(ctx)

	after, err := os.ReadFile(projectFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatal("the project's Pulumi.dev.yaml was modified")
	}
}
