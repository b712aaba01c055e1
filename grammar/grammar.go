// Package grammar is the one allow-list for every string SDA writes into a
// shell script, a dnsmasq or nftables file, a DNS name or a Talos patch:
// the stack configuration (config) and the components' own arguments
// (components) check with the same functions, so a value one accepts the
// other accepts too. Check first, then quote: ShellQuote is the one way a
// value enters a shell command.
//
// It is pure and imports nothing of SDA or Pulumi.
package grammar

import (
	"regexp"
	"strings"
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

// ShellQuote quotes s as one POSIX shell word: in single quotes, each
// single quote of s closing the quotes, escaped, and reopening them.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
