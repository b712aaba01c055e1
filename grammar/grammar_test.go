package grammar

import (
	"os/exec"
	"strings"
	"testing"
)

// Hostile strings (a newline that would start a new dnsmasq line, a ';'
// that would end a shell command, upper case, dots in a label) are refused;
// ordinary names pass.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		s             string
		label, domain bool
	}{
		{"prod-cp1", true, true},
		{"sda.internal", false, true},
		{"lab.internal\ndhcp-script=/tmp/x", false, false},
		{"cp1;reboot", false, false},
		{"Prod", false, false},
		{"-cp1", false, false},
		{"cp1-", false, false},
		{"", false, false},
		{strings.Repeat("a", 63), true, true},
		{strings.Repeat("a", 64), false, false},
		{"a..b", false, false},
		{"a.b.", false, false},
	} {
		if got := DNSLabel(tc.s); got != tc.label {
			t.Errorf("DNSLabel(%q) = %v, want %v", tc.s, got, tc.label)
		}
		if got := Domain(tc.s); got != tc.domain {
			t.Errorf("Domain(%q) = %v, want %v", tc.s, got, tc.domain)
		}
	}
	for s, want := range map[string]bool{"12h": true, "3600": true, "45m": true, "1w": true, "infinite": true,
		"": false, "12h\ndhcp-script=/x": false, "12 h": false, "-1": false} {
		if got := LeaseTime(s); got != want {
			t.Errorf("LeaseTime(%q) = %v, want %v", s, got, want)
		}
	}
}

// ShellQuote makes any string one word that the shell gives back unchanged.
func TestShellQuote(t *testing.T) {
	for _, s := range []string{"plain", "it's", "a b", "$(reboot)", "`id`", "x; rm -rf /", "'\"'\"", "line\nbreak", ""} {
		out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+ShellQuote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("ShellQuote(%q) reached the shell as %q", s, out)
		}
	}
}
