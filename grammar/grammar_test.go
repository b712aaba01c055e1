package grammar

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
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

// Only an https URL that names a template file passes; http, credentials,
// queries and a path that is not a template are refused.
func TestTemplateURL(t *testing.T) {
	for s, want := range map[string]bool{
		"https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst": true,
		"https://mirror.example/lxc/alpine-3.20-default_20240908_amd64.tar.xz":               true,
		"https://mirror.example/rootfs.tar":                                                  true,
		"http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst":  false,
		"https://user:pw@mirror.example/debian.tar.zst":                                      false,
		"https://mirror.example/debian.tar.zst?x=1":                                          false,
		"https://mirror.example/debian.tar.zst#x":                                            false,
		"https://mirror.example/debian.iso":                                                  false,
		"https://mirror.example/debian.tgz":                                                  false,
		"https:///debian.tar.zst":                                                            false,
		"https://mirror.example/a b.tar.zst":                                                 false,
		"https://mirror.example/x.tar.zst\n":                                                 false,
		"ftp://mirror.example/x.tar.zst":                                                     false,
		"":                                                                                   false,
	} {
		if got := TemplateURL(s); got != want {
			t.Errorf("TemplateURL(%q) = %v, want %v", s, got, want)
		}
	}
}

// The algorithm follows from the digest's length; MD5, SHA-1 and
// anything not hex are refused.
func TestChecksumAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		s, algo string
		ok      bool
	}{
		{strings.Repeat("a", 64), "sha256", true},
		{strings.Repeat("B", 96), "sha384", true},
		{strings.Repeat("0", 128), "sha512", true},
		{strings.Repeat("a", 32), "", false},
		{strings.Repeat("a", 40), "", false},
		{strings.Repeat("g", 64), "", false},
		{strings.Repeat("a", 63) + "\n", "", false},
		{"", "", false},
	} {
		algo, ok := ChecksumAlgorithm(tc.s)
		if algo != tc.algo || ok != tc.ok {
			t.Errorf("ChecksumAlgorithm(%q) = %q, %v; want %q, %v", tc.s, algo, ok, tc.algo, tc.ok)
		}
	}
}

func authorizedKey(t *testing.T, pub any) string {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// ed25519 and ECDSA keys pin, with their comment dropped; RSA is refused
// with the reason, and so is anything that is not exactly one key.
func TestSSHHostKey(t *testing.T) {
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ed, ecd, rs := authorizedKey(t, edPub), authorizedKey(t, &ec.PublicKey), authorizedKey(t, &rsaKey.PublicKey)
	for _, tc := range []struct {
		in, want, refusal string
	}{
		{ed, ed, ""},
		{ed + " root@pve\n", ed, ""},
		{ecd, ecd, ""},
		{rs, "", "OpenSSH 8.8"},
		{ed + "\n" + ecd, "", "more than one line"},
		{`command="reboot" ` + ed, "", "not an SSH public key"},
		{"ssh-ed25519 notbase64", "", "not an SSH public key"},
		{"", "", "not an SSH public key"},
	} {
		got, err := SSHHostKey(tc.in)
		switch {
		case tc.refusal == "" && (err != nil || got != tc.want):
			t.Errorf("SSHHostKey(%.40q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.refusal != "" && (err == nil || !strings.Contains(err.Error(), tc.refusal)):
			t.Errorf("SSHHostKey(%.40q) = %q, %v; want a refusal about %q", tc.in, got, err, tc.refusal)
		}
	}
}

// ShellWord leaves plain words readable and quotes everything else.
func TestShellWord(t *testing.T) {
	for s, want := range map[string]string{"/sdn/zones/localnetwork/vmbr1": "/sdn/zones/localnetwork/vmbr1",
		"sda@pve!deploy": `'sda@pve!deploy'`, "": "''", "a b": "'a b'", "it's": `'it'\''s'`} {
		if got := ShellWord(s); got != want {
			t.Errorf("ShellWord(%q) = %s, want %s", s, got, want)
		}
	}
}
