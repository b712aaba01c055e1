package grammar

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzGrammar: whatever a check accepts is safe where it goes. A label or
// a domain has no space, control character, quote or shell metacharacter;
// an accepted template URL is https with no whitespace; an accepted
// checksum is hex; an accepted host key comes back as one line that is
// itself accepted unchanged; ShellWord's output is a single quoted word
// unless the input was plain.
func FuzzGrammar(f *testing.F) {
	for _, s := range []string{"prod-cp1", "sda.internal", "lab.internal\ndhcp-script=/x", "12h", "cp1;reboot", "'",
		"https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst", strings.Repeat("ab", 64),
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl0b6hT3cVx1Za8zvJqZfC2rXcP8Dq9xYH5cWb5rHkD root@pve", "$(id)", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		unsafe := func(s string) bool {
			return strings.IndexFunc(s, func(r rune) bool {
				return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("'\"`$;&|<>()\\*?[]{}#~!", r)
			}) >= 0
		}
		if (DNSLabel(s) || Domain(s) || LeaseTime(s)) && unsafe(s) {
			t.Errorf("a name or lease time with an unsafe character was accepted: %q", s)
		}
		if DNSLabel(s) && !Domain(s) {
			t.Errorf("label %q is not a domain", s)
		}
		if TemplateURL(s) && (!strings.HasPrefix(s, "https://") || strings.ContainsAny(s, " \t\r\n")) {
			t.Errorf("template URL %q accepted", s)
		}
		if _, ok := ChecksumAlgorithm(s); ok && strings.Trim(s, "0123456789abcdefABCDEF") != "" {
			t.Errorf("checksum %q accepted", s)
		}
		if key, err := SSHHostKey(s); err == nil {
			again, err := SSHHostKey(key)
			if err != nil || again != key || strings.ContainsAny(key, "\r\n") {
				t.Errorf("host key %q canonicalised to %q, which reads back as %q, %v", s, key, again, err)
			}
		}
		if w := ShellWord(s); w != s && (!strings.HasPrefix(w, "'") || !strings.HasSuffix(w, "'")) {
			t.Errorf("ShellWord(%q) = %s: neither plain nor quoted", s, w)
		}
	})
}
