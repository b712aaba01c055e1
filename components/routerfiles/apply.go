package routerfiles

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// Layout is where a router keeps its files and how its dnsmasq is run. The
// commands are shell commands run by the apply script.
type Layout struct {
	// Nftables, Dnsmasq and Sysctl are the paths the files are installed at.
	Nftables string
	Dnsmasq  string
	Sysctl   string
	// HostsDir, DHCPHostsDir and NftablesHostsDir receive the hosts' files
	// (HostScript); ApplyScript creates them. They must be the directories
	// the rendered files name (Spec's fields of the same name).
	HostsDir         string
	DHCPHostsDir     string
	NftablesHostsDir string
	// RestartDnsmasq (re)starts dnsmasq so it reads a changed configuration.
	RestartDnsmasq string
	// StartDnsmasq starts dnsmasq when it is not running and does nothing
	// when it is; it runs when the dnsmasq configuration is unchanged.
	StartDnsmasq string
	// ReloadDnsmasq sends a running dnsmasq SIGHUP, which re-reads the host
	// directories (dropping the records of removed or changed files) and
	// keeps the leases; it does nothing when dnsmasq is not running, which
	// reads the directories when it starts.
	ReloadDnsmasq string
	// Persist, when set, makes the applied state survive a reboot.
	Persist string

	// A pair's router's files and daemons (unused for a single router).
	// Keepalived, Conntrackd and VRRPNotify are the paths of keepalived.conf,
	// conntrackd.conf and the notify script; Conntrackd and VRRPNotify must
	// be the Spec's ConntrackdConf and VRRPNotify (CheckLayout).
	Keepalived string
	Conntrackd string
	VRRPNotify string
	// RestartConntrackd (re)starts conntrackd for a changed configuration;
	// StartConntrackd starts it when it is not running. conntrackd starts
	// before keepalived, whose notify script talks to it.
	RestartConntrackd string
	StartConntrackd   string
	// ReloadKeepalived makes a running keepalived re-read a changed
	// configuration (SIGHUP: the VRRP state, and so the addresses, stay
	// where they are) and starts one that is not running;
	// StartKeepalived starts it when it is not running; StopKeepalived
	// stops it cleanly (a master sends a priority-0 advert and removes its
	// addresses), which HandoverScript runs.
	ReloadKeepalived string
	StartKeepalived  string
	StopKeepalived   string
	// PersistPair, when set, makes a pair's daemons start at boot.
	PersistPair string
}

// DebianLayout is the layout inside the Debian 12 router container: the
// nftables service loads /etc/nftables.conf at boot, and Debian's dnsmasq
// service reads /etc/dnsmasq.d/*.conf (packages nftables and dnsmasq).
func DebianLayout() Layout {
	return Layout{
		Nftables:         "/etc/nftables.conf",
		Dnsmasq:          "/etc/dnsmasq.d/sda.conf",
		Sysctl:           "/etc/sysctl.d/99-sda.conf",
		HostsDir:         DefaultHostsDir,
		DHCPHostsDir:     DefaultDHCPHostsDir,
		NftablesHostsDir: DefaultNftablesHostsDir,
		RestartDnsmasq:   "systemctl restart dnsmasq.service",
		StartDnsmasq:     "systemctl start dnsmasq.service",
		// Debian's dnsmasq.service reloads with kill -HUP $MAINPID.
		ReloadDnsmasq: "if systemctl is-active --quiet dnsmasq.service; then systemctl reload dnsmasq.service; fi",
		Persist:       "systemctl enable --quiet nftables.service dnsmasq.service",

		// Debian's keepalived and conntrackd packages: keepalived.service
		// reads /etc/keepalived/keepalived.conf (and reloads with SIGHUP),
		// conntrackd.service runs conntrackd -C /etc/conntrackd/conntrackd.conf.
		Keepalived:        DefaultKeepalivedConf,
		Conntrackd:        DefaultConntrackdConf,
		VRRPNotify:        DefaultVRRPNotify,
		RestartConntrackd: "systemctl restart conntrackd.service",
		StartConntrackd:   "systemctl start conntrackd.service",
		ReloadKeepalived:  "if systemctl is-active --quiet keepalived.service; then systemctl reload keepalived.service; else systemctl start keepalived.service; fi",
		StartKeepalived:   "systemctl start keepalived.service",
		StopKeepalived:    "systemctl stop keepalived.service",
		// Debian's keepalived.service does not restart a crashed keepalived,
		// which leaves the addresses on this router beside the peer's: the
		// drop-in restarts it, and a starting keepalived removes them.
		PersistPair: "mkdir -p /etc/systemd/system/keepalived.service.d && " +
			`printf '[Service]\nRestart=on-failure\nRestartSec=1s\n' >/etc/systemd/system/keepalived.service.d/sda.conf && ` +
			"systemctl daemon-reload && systemctl enable --quiet keepalived.service conntrackd.service",
	}
}

// ApplyScript is a POSIX sh script that installs f at l's paths and applies
// it: both files are checked (`nft -c`, `dnsmasq --test`) before anything is
// installed; each file is written only when its content differs; the sysctl
// file and the ruleset are applied every time (both idempotent); dnsmasq is
// restarted only when its configuration changed, so an identical re-apply
// keeps it running with its leases. The contents are embedded as base64, so
// no byte of them can be read as shell. A pair's router's script also
// checks keepalived's configuration and the notify script, applies the
// sysctl file after the ruleset (whose load makes nf_conntrack's keys
// exist), installs the notify script, conntrackd's and keepalived's files,
// (re)starts conntrackd before keepalived, and reloads (never restarts) a
// running keepalived whose configuration changed.
func ApplyScript(f Files, l Layout) string {
	digest := f.Digest()
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# SDA router: installs and applies the rendered configuration %s.", digest)
	w("# Generated by SDA (components/routerfiles); safe to run again: unchanged")
	w("# files are not rewritten and dnsmasq restarts only for a changed configuration.")
	if f.paired() {
		w("%s", PairApplyMarker)
	}
	writePrologue(&b)
	// A dot name: dnsmasq's conf-dir skips it should a run be interrupted.
	writeInstallChanged(&b, `$dir/.$(basename "$2").sda-new`)
	for _, n := range f.named() {
		writeEmbedded(&b, n.name, n.content)
	}
	w("")
	if dirs := nonEmpty(l.HostsDir, l.DHCPHostsDir, l.NftablesHostsDir); len(dirs) > 0 {
		w("# The hosts' directories: dnsmasq watches two of them and the ruleset includes")
		w("# the third, so all must exist before either is checked or started.")
		w("mkdir -p %s", strings.Join(dirs, " "))
	}
	w("# Check both before installing either: a rejected file leaves the router as it was.")
	w(`nft -c -f "$work/nftables"`)
	w(`dnsmasq --test --conf-file="$work/dnsmasq"`)
	if f.paired() {
		w("# keepalived fails its test on warnings too (an interface it cannot find).")
		w(`keepalived --config-test -f "$work/keepalived"`)
		w(`sh -n "$work/vrrp-notify"`)
	}
	w("")
	w(`install_changed "$work/sysctl" %s || true`, grammar.ShellQuote(l.Sysctl))
	if !f.paired() {
		w("sysctl -q -p %s", grammar.ShellQuote(l.Sysctl))
	}
	w(`install_changed "$work/nftables" %s || true`, grammar.ShellQuote(l.Nftables))
	w("# Replaces table inet %s atomically; the same file again leaves the same ruleset.", TableName)
	w("nft -f %s", grammar.ShellQuote(l.Nftables))
	if f.paired() {
		w("# After the ruleset: its conntrack expressions load nf_conntrack, whose")
		w("# sysctl (nf_conntrack_tcp_loose) the file sets.")
		w("sysctl -q -p %s", grammar.ShellQuote(l.Sysctl))
	}
	w(`if install_changed "$work/dnsmasq" %s; then`, grammar.ShellQuote(l.Dnsmasq))
	w("\t%s", orNoop(l.RestartDnsmasq))
	w("else")
	w("\t%s", orNoop(l.StartDnsmasq))
	w("fi")
	if f.paired() {
		writePairApply(&b, l)
	}
	if l.Persist != "" {
		w("%s", l.Persist)
	}
	if f.paired() && l.PersistPair != "" {
		w("%s", l.PersistPair)
	}
	w(`echo "applied: %s"`, digest)
	w("}")
	return b.String()
}

// CheckLayout reports an error when f, rendered from a Spec, does not point
// dnsmasq and the ruleset at l's host directories: HostScript would then
// install hosts where nothing reads them. For a pair's router, keepalived
// must run l's notify script and the notify script use l's conntrackd
// configuration.
func (f Files) CheckLayout(l Layout) error {
	want := []struct{ in, line, what string }{
		{f.Dnsmasq, "hostsdir=" + l.HostsDir, "dnsmasq configuration"},
		{f.Dnsmasq, "dhcp-hostsdir=" + l.DHCPHostsDir, "dnsmasq configuration"},
		{f.Nftables, nftInclude(l.NftablesHostsDir), "ruleset"},
	}
	if f.paired() {
		want = append(want,
			struct{ in, line, what string }{f.Keepalived, fmt.Sprintf("\tnotify_master %q", l.VRRPNotify+" primary"), "keepalived configuration"},
			struct{ in, line, what string }{f.VRRPNotify, "conf=" + grammar.ShellQuote(l.Conntrackd), "notify script"})
	}
	for _, c := range want {
		if !strings.Contains("\n"+c.in, "\n"+c.line+"\n") {
			return fmt.Errorf("routerfiles: the rendered %s lacks %q: render it from a Spec whose host directories are the layout's", c.what, c.line)
		}
	}
	return nil
}

// HostScript is a POSIX sh script that installs h's files (RenderHost) in
// l's host directories and applies them: the firewall entries are checked
// (`nft -c`) before anything is installed and then added to the running
// ruleset; each file is written only when its content differs, by rename
// from outside the watched directory, so dnsmasq never reads half a file;
// then a running dnsmasq is sent SIGHUP (ReloadDnsmasq), so a changed
// DHCP reservation replaces the old one. dnsmasq is never restarted: its
// leases and every other host's records stay. Safe to run again.
func HostScript(h Host, l Layout) string {
	p, err := hostPaths(h, l)
	if err != nil {
		return failingScript(err)
	}
	f := RenderHost(h)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# SDA router: installs the DNS name, DHCP reservation and firewall entries of")
	w("# %s (%s). Generated by SDA (components/routerfiles); safe to run again.", commentText(h.Name), h.Address)
	writePrologue(&b)
	// Beside the directory, not in it: dnsmasq reads every file that appears
	// in a watched directory, and a half-written one is not to be read.
	writeInstallChanged(&b, `$(dirname "$dir")/.$(basename "$dir")-$(basename "$2").sda-new`)
	writeEmbedded(&b, "hosts", f.Hosts)
	writeEmbedded(&b, "dhcp-hosts", f.DHCPHosts)
	writeEmbedded(&b, "nftables", f.Nftables)
	w("")
	w("# A file nft rejects would also break every later load of the whole ruleset,")
	w("# which includes it: check it before installing anything.")
	w(`nft -c -f "$work/nftables"`)
	w(`install_changed "$work/hosts" %s || true`, grammar.ShellQuote(p.hosts))
	w(`install_changed "$work/dhcp-hosts" %s || true`, grammar.ShellQuote(p.dhcpHosts))
	w(`install_changed "$work/nftables" %s || true`, grammar.ShellQuote(p.nftables))
	w("# Adds the host's addresses to the running sets; adding again changes nothing.")
	w("nft -f %s", grammar.ShellQuote(p.nftables))
	w("# dnsmasq reads new files by itself, but keeps a changed file's old DHCP")
	w("# reservation until SIGHUP, which re-reads the directories and keeps the leases.")
	w("%s", orNoop(l.ReloadDnsmasq))
	w(`echo "host applied: %s %s"`, h.Name, h.Address)
	w("}")
	return b.String()
}

// RemoveHostScript is a POSIX sh script that undoes HostScript: it removes
// h's files, takes its addresses out of the running firewall sets and sends a
// running dnsmasq SIGHUP, which drops the host's DHCP reservation (dnsmasq
// drops the DNS records of a deleted hosts file by itself). Safe to run
// again, and on a router that never had the host.
func RemoveHostScript(h Host, l Layout) string {
	p, err := hostPaths(h, l)
	if err != nil {
		return failingScript(err)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# SDA router: removes the DNS name, DHCP reservation and firewall entries of")
	w("# %s (%s). Generated by SDA (components/routerfiles); safe to run again.", commentText(h.Name), h.Address)
	writeGroupOpen(&b)
	for _, file := range []string{p.hosts, p.dhcpHosts, p.nftables} {
		w("if [ -e %[1]s ]; then rm -f %[1]s; echo \"removed: \"%[1]s; fi", grammar.ShellQuote(file))
	}
	w("# Adding before deleting, in one transaction, deletes whether or not the")
	w("# addresses are there; without SDA's table there is nothing to delete.")
	w("if nft list table inet %s >/dev/null 2>&1; then", TableName)
	w("	nft -f - <<'SDA_EOF'")
	b.WriteString(strings.Join(hostElements(h, "add"), ""))
	b.WriteString(strings.Join(hostElements(h, "delete"), ""))
	w("SDA_EOF")
	w("fi")
	w("%s", orNoop(l.ReloadDnsmasq))
	w(`echo "host removed: %s %s"`, h.Name, h.Address)
	w("}")
	return b.String()
}

type hostFilePaths struct{ hosts, dhcpHosts, nftables string }

// hostPaths are h's files in l. The name becomes a file name, so it must be
// a plain one (config validates hostnames as DNS labels).
func hostPaths(h Host, l Layout) (hostFilePaths, error) {
	if !fileNameRE.MatchString(h.Name) {
		return hostFilePaths{}, fmt.Errorf("host name %q is not a DNS label", h.Name)
	}
	if !h.Address.Is4() {
		return hostFilePaths{}, fmt.Errorf("host %s: address %v is not IPv4", h.Name, h.Address)
	}
	if l.HostsDir == "" || l.DHCPHostsDir == "" || l.NftablesHostsDir == "" {
		return hostFilePaths{}, fmt.Errorf("the layout names no host directories")
	}
	return hostFilePaths{
		hosts:     path.Join(l.HostsDir, h.Name),
		dhcpHosts: path.Join(l.DHCPHostsDir, h.Name),
		nftables:  path.Join(l.NftablesHostsDir, h.Name+".nft"),
	}, nil
}

var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

// failingScript fails with err's message, changing nothing: a host the
// scripts cannot handle fails its command instead of writing elsewhere.
func failingScript(err error) string {
	return fmt.Sprintf("#!/bin/sh\n{\necho %s >&2\nexit 1\n}\n", grammar.ShellQuote("sda: "+err.Error()))
}

// writeGroupOpen opens the script's brace group and sets up its shell.
func writeGroupOpen(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	w("#")
	w("# The script is one brace group: a shell reading it from a pipe (pct exec ... sh -s)")
	w("# parses all of it before running any of it, so a truncated copy runs nothing and")
	w("# no command can read the rest of the script as its input.")
	w("{")
	w("set -eu")
	w(`PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"`)
}

// writePrologue opens the brace group and adds the scratch directory the
// installing scripts stage their files in.
func writePrologue(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	writeGroupOpen(b)
	w("umask 022")
	w(`work=$(mktemp -d)`)
	w(`trap 'rm -rf "$work"' EXIT`)
	w(`trap 'exit 1' HUP INT TERM`)
	w("")
}

// writeInstallChanged defines install_changed, which writes through a
// temporary file at tmp (a shell word that may use $dir, DEST's directory).
func writeInstallChanged(b *strings.Builder, tmp string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	w("# install_changed NEW DEST replaces DEST by NEW (by rename, so readers never")
	w("# see half a file) unless their contents are equal; it succeeds when DEST changed.")
	w("install_changed() {")
	w(`	if [ -f "$2" ] && cmp -s "$1" "$2"; then`)
	w(`		echo "unchanged: $2"`)
	w("		return 1")
	w("	fi")
	w(`	dir=$(dirname "$2")`)
	w(`	tmp="%s"`, tmp)
	w(`	mkdir -p "$dir" && cp "$1" "$tmp" && mv -f "$tmp" "$2" || {`)
	w(`		echo "sda: cannot write $2" >&2`)
	w("		exit 1")
	w("	}")
	w(`	echo "updated: $2"`)
	w("}")
	w("")
}

// writeEmbedded writes content to $work/name; base64, so no byte of it can
// be read as shell.
func writeEmbedded(b *strings.Builder, name, content string) {
	fmt.Fprintf(b, "base64 -d >\"$work/%s\" <<'SDA_EOF'\n", name)
	b.WriteString(wrap(base64.StdEncoding.EncodeToString([]byte(content)), 76))
	b.WriteString("SDA_EOF\n")
}

func nonEmpty(paths ...string) []string {
	var out []string
	for _, p := range paths {
		if p != "" {
			out = append(out, grammar.ShellQuote(p))
		}
	}
	return out
}

// wrap breaks s into lines of at most n bytes, each ending in a newline.
func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteByte('\n')
		s = s[n:]
	}
	if s != "" {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

func orNoop(cmd string) string {
	if strings.TrimSpace(cmd) == "" {
		return ":"
	}
	return cmd
}
