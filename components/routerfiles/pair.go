package routerfiles

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// CheckPair reports every problem of s.Pair at once (nil for a single
// router or a sound pair). Render assumes a pair that passes: it renders
// whatever it is given.
func (s Spec) CheckPair() error {
	p := s.Pair
	if p == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("routerfiles: pair: "+format, args...))
	}
	if p.Index != 0 && p.Index != 1 {
		bad("index %d, want 0 or 1", p.Index)
	}
	if p.VRID < 1 || p.VRID > 255 {
		bad("VRID %d, want 1 to 255", p.VRID)
	}
	for _, a := range []struct {
		name string
		addr netip.Addr
		in   netip.Prefix
	}{
		{"own internal", p.OwnInternal, s.Internal}, {"peer internal", p.PeerInternal, s.Internal},
		{"own external", p.OwnExternal, s.External}, {"peer external", p.PeerExternal, s.External},
	} {
		if !a.addr.Is4() || !a.in.Contains(a.addr) {
			bad("%s address %v is not an IPv4 address in %v", a.name, a.addr, a.in)
		}
	}
	if p.OwnInternal == p.PeerInternal || p.OwnInternal == s.RouterInternal || p.PeerInternal == s.RouterInternal {
		bad("the internal addresses (own %v, peer %v, virtual %v) must differ", p.OwnInternal, p.PeerInternal, s.RouterInternal)
	}
	if !s.RouterExternal.IsValid() || p.OwnExternal == p.PeerExternal || p.OwnExternal == s.RouterExternal || p.PeerExternal == s.RouterExternal {
		bad("the external addresses (own %v, peer %v, virtual %v) must be static and differ", p.OwnExternal, p.PeerExternal, s.RouterExternal)
	}
	if _, _, ok := dhcpHalf(s.DHCPStart, s.DHCPEnd, 0); !ok {
		bad("the dynamic range %v-%v cannot be split in two", s.DHCPStart, s.DHCPEnd)
	}
	return errors.Join(errs...)
}

// dhcpHalf is router index's half of the dynamic range start-end: index 0
// has the lower half, index 1 the rest. The halves are disjoint and cover
// the range, so the pair never leases one address twice. ok is false for a
// range of fewer than two IPv4 addresses.
func dhcpHalf(start, end netip.Addr, index int) (from, to netip.Addr, ok bool) {
	if !start.Is4() || !end.Is4() || !start.Less(end) {
		return start, end, false
	}
	a, b := start.As4(), end.As4()
	lo := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	hi := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	mid := lo + (hi-lo+1)/2 // the first address of the upper half
	addr := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	if index == 0 {
		return addr(lo), addr(mid - 1), true
	}
	return addr(mid), addr(hi), true
}

// renderKeepalived is the pair's VRRP instance: both virtual addresses
// move together, and both routers start as BACKUP with nopreempt.
func renderKeepalived(s Spec) string {
	p := s.Pair
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# SDA router pair, router %d of 2: VRRP for the internal gateway %s and the external", p.Index+1, s.RouterInternal)
	w("# address %s. %s", s.RouterExternal, generated)
	w("global_defs {")
	w("\trouter_id sda-router-%d", p.Index+1)
	w("\t# The notify script runs as root, and only if no part of its path is")
	w("\t# writable by anyone else.")
	w("\tenable_script_security")
	w("\tscript_user root")
	w("}")
	w("")
	w("vrrp_instance sda {")
	w("\t# BACKUP on both, with nopreempt: the first election goes to the higher")
	w("\t# priority when both start together (else to the first started), and")
	w("\t# afterwards a router that comes back (rebooted, its link")
	w("\t# restored) stays backup instead of taking the addresses back, which would")
	w("\t# cut the connections a second time.")
	w("\tstate BACKUP")
	w("\tnopreempt")
	w("\tinterface %s", s.InternalInterface)
	w("\tvirtual_router_id %d", p.VRID)
	w("\tpriority %d", pairPriorities[p.Index&1])
	w("\t# A backup takes over after 3 missed adverts plus a skew of")
	w("\t# (256 - priority) / 256 s: about 3.4 to 3.6 s after the master is gone.")
	w("\tadvert_int 1")
	w("\t# Unicast to the peer's own address: works on every internal network")
	w("\t# mode, VXLAN included, where multicast may not be carried. No VRRP")
	w("\t# authentication (v2's PASS is a cleartext word): the firewall accepts")
	w("\t# VRRP from the peer's address on %s only.", s.InternalInterface)
	w("\tunicast_src_ip %s", p.OwnInternal)
	w("\tunicast_peer {")
	w("\t\t%s", p.PeerInternal)
	w("\t}")
	w("\t# Losing either link faults this router, so the peer takes both addresses")
	w("\t# (the instance's own interface, %s, is tracked without being named).", s.InternalInterface)
	w("\ttrack_interface {")
	w("\t\t%s", s.ExternalInterface)
	w("\t}")
	w("\tvirtual_ipaddress {")
	w("\t\t%s/%d dev %s", s.RouterInternal, s.Internal.Bits(), s.InternalInterface)
	w("\t\t%s/%d dev %s", s.RouterExternal, s.External.Bits(), s.ExternalInterface)
	w("\t}")
	w("\t# Gratuitous ARP moves both addresses in the neighbours' caches: 3 at once")
	w("\t# on becoming master and 3 more a second later (a switch or bridge that")
	w("\t# missed the first); 3 when a lower priority advert arrives while master")
	w("\t# (the end of a split brain: the neighbours' caches may point at the other")
	w("\t# router); and again every 30 s, so a stale entry cannot outlive that.")
	w("\tgarp_master_delay 1")
	w("\tgarp_master_repeat 3")
	w("\tgarp_lower_prio_repeat 3")
	w("\tgarp_master_refresh 30")
	w("\t# conntrackd: commit the peer's connections on becoming master, hand over")
	w("\t# on leaving it (conntrack-tools' primary-backup.sh, as %s).", s.VRRPNotify)
	for _, n := range []struct{ event, arg string }{{"master", "primary"}, {"backup", "backup"}, {"fault", "fault"}} {
		w("\tnotify_%s %q", n.event, s.VRRPNotify+" "+n.arg)
	}
	w("}")
	return b.String()
}

// renderConntrackd is conntrackd in FTFW mode over unicast UDP to the
// peer, after conntrack-tools 1.4.7's doc/sync/ftfw/conntrackd.conf.
func renderConntrackd(s Spec) string {
	p := s.Pair
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# SDA router pair, router %d of 2: connection tracking sync with the peer %s.", p.Index+1, p.PeerInternal)
	w("# %s", generated)
	w("Sync {")
	w("\t# FTFW: reliable (acknowledged, resent) replication. The peer's entries are")
	w("\t# kept in the external cache and committed to the kernel only when this")
	w("\t# router becomes master (the notify script's conntrackd -c).")
	w("\tMode FTFW {")
	w("\t\tDisableExternalCache Off")
	w("\t}")
	w("\tUDP {")
	w("\t\tIPv4_address %s", p.OwnInternal)
	w("\t\tIPv4_Destination_Address %s", p.PeerInternal)
	w("\t\tPort %d", ConntrackdPort)
	w("\t\tInterface %s", s.InternalInterface)
	w("\t\tSndSocketBuffer 1249280")
	w("\t\tRcvSocketBuffer 1249280")
	w("\t\tChecksum on")
	w("\t}")
	w("}")
	w("")
	w("General {")
	w("\tHashSize 32768")
	w("\tHashLimit 131072")
	w("\tLogFile off")
	w("\tSyslog on")
	w("\tLockFile %s", s.ConntrackdLockFile)
	w("\tUNIX {")
	w("\t\tPath %s", s.ConntrackdSocket)
	w("\t}")
	w("\tNetlinkBufferSize 2097152")
	w("\tNetlinkBufferSizeMaxGrowth 8388608")
	w("\tFilter From Userspace {")
	w("\t\t# UDP too: a node's UDP flow keeps its NAT mapping across a failover.")
	w("\t\tProtocol Accept {")
	w("\t\t\tTCP")
	w("\t\t\tSCTP")
	w("\t\t\tDCCP")
	w("\t\t\tUDP")
	w("\t\t}")
	w("\t\t# Only forwarded connections are worth replicating: ignore the routers'")
	w("\t\t# own traffic (DNS, DHCP, VRRP, this sync), to or from their addresses.")
	w("\t\tAddress Ignore {")
	w("\t\t\tIPv4_address 127.0.0.1")
	for _, a := range addrElements([]netip.Addr{s.RouterInternal, s.RouterExternal, p.OwnInternal, p.PeerInternal, p.OwnExternal, p.PeerExternal}) {
		w("\t\t\tIPv4_address %s", a)
	}
	w("\t\t}")
	w("\t}")
	w("}")
	return b.String()
}

// renderVRRPNotify is keepalived's notify script, modelled on
// conntrack-tools' doc/sync/primary-backup.sh. It never fails keepalived's
// transition: a conntrackd that does not answer costs the connections,
// not the addresses.
func renderVRRPNotify(s Spec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("#!/bin/sh")
	w("# SDA router pair: keepalived's notify script (primary, backup, fault), after")
	w("# conntrack-tools' doc/sync/primary-backup.sh. %s", generated)
	w(`PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"`)
	w("conf=%s", grammar.ShellQuote(s.ConntrackdConf))
	w("ctd() {")
	w(`	conntrackd -C "$conf" "$@" >/dev/null 2>&1 ||`)
	w(`		logger -t sda-vrrp "conntrackd $* failed on $state" 2>/dev/null || true`)
	w("}")
	w(`state=${1:-}`)
	w(`case "$state" in`)
	w("primary)")
	w("\tctd -c # commit the peer's connections (the external cache) to the kernel")
	w("\tctd -f # flush the internal and external caches")
	w("\tctd -R # resync the internal cache with the kernel's table")
	w("\tctd -B # send the whole table to the peer")
	w("\t;;")
	w("backup)")
	w("\tctd -t # purge the kernel's entries (PurgeTimeout): the master carries them")
	w("\tctd -n # ask the master for its whole table")
	w("\t;;")
	w("fault)")
	w("\tctd -t")
	w("\t;;")
	w("*)")
	w(`	echo "usage: $0 primary|backup|fault" >&2`)
	w("\texit 1")
	w("\t;;")
	w("esac")
	w("exit 0")
	return b.String()
}

func (s Spec) withPairDefaults() Spec {
	if s.VRRPNotify == "" {
		s.VRRPNotify = DefaultVRRPNotify
	}
	if s.ConntrackdConf == "" {
		s.ConntrackdConf = DefaultConntrackdConf
	}
	if s.ConntrackdSocket == "" {
		s.ConntrackdSocket = DefaultConntrackdSocket
	}
	if s.ConntrackdLockFile == "" {
		s.ConntrackdLockFile = DefaultConntrackdLockFile
	}
	return s
}

// writePairInput lets VRRP and conntrackd's sync in from the peer's own
// internal address on the internal interface only, and drops them from
// anyone else before the internal side's broad accept.
func writePairInput(w func(string, ...any), s Spec) {
	in, p := quoteIf(s.InternalInterface), s.Pair
	w("\t\t# The pair: VRRP (keepalived) and conntrackd's sync (udp %d) from the peer's", ConntrackdPort)
	w("\t\t# own internal address on %s only; from anyone else, or any other side, neither.", s.InternalInterface)
	w("\t\tiifname %s ip saddr %s ip daddr %s ip protocol 112 accept comment \"VRRP\"", in, p.PeerInternal, p.OwnInternal)
	w("\t\tiifname %s ip saddr %s ip daddr %s udp dport %d accept comment \"conntrackd\"", in, p.PeerInternal, p.OwnInternal, ConntrackdPort)
	w("\t\tip protocol 112 drop comment \"VRRP\"")
	w("\t\tudp dport %d drop comment \"conntrackd\"", ConntrackdPort)
}

// writePairDHCP is the router's half of the dynamic range.
func writePairDHCP(w func(string, ...any), s Spec) {
	from, to, _ := dhcpHalf(s.DHCPStart, s.DHCPEnd, s.Pair.Index)
	w("# One of a pair: each router leases its own half of %s-%s, so the two never", s.DHCPStart, s.DHCPEnd)
	w("# hand out one address twice; both hold every node's reservation. Not")
	w("# dhcp-authoritative: an authoritative dnsmasq answers a client's REQUEST for")
	w("# the peer's offer with a NAK (\"wrong server-ID\"), and a client rebinding to")
	w("# it with a lease of the peer's half too, taking its address away in the")
	w("# middle of a failover; without it, dnsmasq ignores both and the client keeps")
	w("# its address. The nodes, known hosts, get answers from either router.")
	w("dhcp-range=%s,%s,%s,%s", from, to, netmask(s.Internal), s.LeaseTime)
}

// writePairApply installs a pair's files and (re)starts its daemons:
// conntrackd first, since keepalived's notify script talks to it.
func writePairApply(b *strings.Builder, l Layout) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	notify := grammar.ShellQuote(l.VRRPNotify)
	w("# The notify script first: keepalived runs it on its next transition. It is")
	w("# executable before it is renamed into place, and stays so.")
	w(`chmod 0755 "$work/vrrp-notify"`)
	w(`install_changed "$work/vrrp-notify" %s || true`, notify)
	w("chmod 0755 %s", notify)
	w(`if install_changed "$work/conntrackd" %s; then`, grammar.ShellQuote(l.Conntrackd))
	w("\t%s", orNoop(l.RestartConntrackd))
	w("else")
	w("\t%s", orNoop(l.StartConntrackd))
	w("fi")
	w("# A changed keepalived configuration is reloaded, not restarted: a restart")
	w("# would give up the addresses and cut every connection.")
	w(`if install_changed "$work/keepalived" %s; then`, grammar.ShellQuote(l.Keepalived))
	w("\t%s", orNoop(l.ReloadKeepalived))
	w("else")
	w("\t%s", orNoop(l.StartKeepalived))
	w("fi")
}
