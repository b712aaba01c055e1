// Package grammar is the one allow-list for every string SDA writes into a
// shell script, a dnsmasq or nftables file, a DNS name or a Talos patch:
// the stack configuration (config) and the components' own arguments
// (components) check with the same functions, so a value one accepts the
// other accepts too. Check first, then quote: ShellQuote is the one way a
// value enters a shell command.
//
// It is pure and imports nothing of SDA or Pulumi (x/crypto/ssh parses
// host keys).
package grammar

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

var (
	labelRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	leaseTimeRE = regexp.MustCompile(`^([0-9]+[smhdw]?|infinite)$`)
)

// DNSLabel reports whether s is a lowercase DNS label (RFC 1123): letters,
// digits and inner hyphens, at most 63 characters. Host names, the cluster
// name and the names of port-forwards are labels.
func DNSLabel(s string) bool {
	return len(s) <= 63 && labelRE.MatchString(s)
}

// Domain reports whether s is a lowercase DNS domain: labels joined by
// dots, at most 253 characters.
func Domain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !DNSLabel(label) {
			return false
		}
	}
	return true
}

// LeaseTime reports whether s is a dnsmasq DHCP lease time: seconds, or a
// number with s, m, h, d or w, or "infinite" (dnsmasq(8), --dhcp-range).
func LeaseTime(s string) bool {
	return leaseTimeRE.MatchString(s)
}

// ShellWord is s as one POSIX shell word, quoted with ShellQuote only when
// it holds anything but letters, digits and @%+=:,./_- (so commands shown
// to a person stay readable; a token ID's "!" is quoted, since it would
// start history expansion in an interactive bash).
func ShellWord(s string) string {
	if s == "" || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r))
	}) >= 0 {
		return ShellQuote(s)
	}
	return s
}

// ShellQuote quotes s as one POSIX shell word: in single quotes, each
// single quote of s closing the quotes, escaped, and reopening them.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// templateFileRE is a Proxmox LXC template volume name: pve-storage accepts
// .tar, .tar.gz, .tar.xz, .tar.zst and .tar.bz2 (src/PVE/Storage.pm), and
// the name becomes part of an API path and a volume ID, so only letters,
// digits, dots, '_', '+' and '-'.
var templateFileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*\.tar(\.(gz|xz|zst|bz2))?$`)

// TemplateURL reports whether s is an https:// URL of an LXC template: a
// host, no credentials, no query or fragment, no space or control
// character, and a path that ends in a template file name. Plain http is
// refused: the template is the router's whole operating system.
func TemplateURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, " \t\r\n\x00") {
		return false
	}
	return templateFileRE.MatchString(path.Base(u.Path))
}

// ChecksumAlgorithm names the SHA-2 digest whose hex form s is, by its
// length (sha256, sha384 or sha512), the algorithms Proxmox's download-url
// verifies. MD5 and SHA-1 (32 and 40 digits) are refused: they no longer
// stop a forged file.
func ChecksumAlgorithm(s string) (string, bool) {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return "", false
		}
	}
	switch len(s) {
	case 64:
		return "sha256", true
	case 96:
		return "sha384", true
	case 128:
		return "sha512", true
	}
	return "", false
}

// SSHHostKey checks a pinned SSH host key, written as in a node's
// /etc/ssh/ssh_host_ed25519_key.pub ("ssh-ed25519 AAAA… comment"), and
// returns it in its canonical one-line form (type and key, no comment).
//
// Only ed25519 and ECDSA keys can be pinned. pulumi-command v1.1.0 offers
// the server nothing but the pinned key's own type as host-key algorithm
// (provider/pkg/provider/remote/connection.go, SShConfig:
// HostKeyAlgorithms = []string{publicKey.Type()}), and for an RSA key that
// is ssh-rsa (SHA-1 signatures), which OpenSSH 8.8 and later (Proxmox VE 8
// ships 9.2) refuse by default: an RSA pin would fail every connection.
func SSHHostKey(s string) (string, error) {
	if strings.ContainsAny(strings.TrimRight(s, "\n"), "\n\r\x00") {
		return "", fmt.Errorf("is more than one line: give one key")
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil || len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return "", fmt.Errorf("is not an SSH public key: write the line of the node's /etc/ssh/ssh_host_ed25519_key.pub, such as \"ssh-ed25519 AAAAC3Nz…\"")
	}
	switch key.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), nil
	}
	return "", fmt.Errorf("is an %s key, which cannot be pinned: the SSH client offers only the pinned key's own algorithm, and OpenSSH 8.8 and later refuse %s: pin the node's ed25519 key (/etc/ssh/ssh_host_ed25519_key.pub)", key.Type(), key.Type())
}
