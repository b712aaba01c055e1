package routerfiles

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The handover script is recognised by its marker, names the pair's own
// addresses, and refuses a router that is not in a pair.
func TestHandoverScriptNamesThePair(t *testing.T) {
	s := Spec{Internal: netip.MustParsePrefix("10.20.0.0/24"), RouterInternal: netip.MustParseAddr("10.20.0.1"),
		Pair: &Pair{Index: 1, OwnInternal: netip.MustParseAddr("10.20.0.3"), PeerInternal: netip.MustParseAddr("10.20.0.2"), VRID: 51}}
	got := HandoverScript(s, DebianLayout())
	lines := strings.Split(got, "\n")
	if lines[1] != HandoverMarker {
		t.Fatalf("second line = %q, want the marker %q", lines[1], HandoverMarker)
	}
	for _, want := range []string{"vip=10.20.0.1; peer=10.20.0.2; dev='eth1'", "systemctl stop keepalived.service", "systemctl start keepalived.service"} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	s.Pair = nil
	if single := HandoverScript(s, Layout{StopKeepalived: "stop", StartKeepalived: "start"}); !strings.Contains(single, "exit 1") || strings.Contains(single, HandoverMarker) {
		t.Errorf("a single router's handover script should fail at once:\n%s", single)
	}
}

// A backup (a router without the virtual address) leaves at once, after
// stopping keepalived; shell is real, ip is a stand-in that lists no VIP.
func TestHandoverScriptBackupLeavesAtOnce(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(filepath.Join(dir, "ip"), []byte("#!/bin/sh\necho '3: eth1    inet 10.20.0.3/24 brd 10.20.0.255 scope global eth1'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Spec{Internal: netip.MustParsePrefix("10.20.0.0/24"), RouterInternal: netip.MustParseAddr("10.20.0.1"),
		Pair: &Pair{Index: 1, OwnInternal: netip.MustParseAddr("10.20.0.3"), PeerInternal: netip.MustParseAddr("10.20.0.2"), VRID: 51}}
	cmd := exec.Command("sh", "-c", HandoverScript(s, Layout{StopKeepalived: "echo stopped >> " + log, StartKeepalived: "echo started >> " + log}))
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "handover: backup, leaving") {
		t.Fatalf("backup handover: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(log); string(b) != "stopped\n" {
		t.Errorf("keepalived commands run = %q, want only the stop", b)
	}
}
