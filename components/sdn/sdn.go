// Package sdn renders the shell scripts that create, update and remove a
// Proxmox SDN VXLAN zone and its VNet with pvesh. The proxmoxve SDK SDA
// pins (v6.18.1) has no SDN resources, so InternalNetwork runs these
// scripts over SSH on one Proxmox node; SDN configuration is cluster-wide,
// and `pvesh set /cluster/sdn` applies it on every node, where the VNet
// appears as a bridge named after it.
//
// Applying SDN is not scoped to SDA's objects, and it does not report a
// node that failed. Upstream (pve-network, branch stable-bookworm at
// 2e32df1, src/PVE/API2/Network/SDN.pm:106-145; master at ecf98c5,
// SDN.pm:261-330): `PUT /cluster/sdn` first commits the whole edited
// configuration, anyone's pending edits included (commit_config,
// src/PVE/Network/SDN.pm:141 at 2e32df1, :229-233 at ecf98c5), then runs
// `pvesh set /nodes/<node>/network` for every cluster node, where a failure
// is only `warn`ed: the command still exits 0. So both scripts refuse to
// start while a pending edit that is not SDA's zone or VNet exists, and the
// apply script then waits until every node of the stack reports the VNet
// `available`.
//
// The scripts use only these pvesh forms (the simulator's fake pvesh
// accepts exactly these):
//
//	pvesh get /cluster/sdn/zones --pending 1 --output-format json
//	pvesh get /cluster/sdn/vnets --pending 1 --output-format json
//	pvesh get /cluster/sdn/zones/<zone>
//	pvesh create /cluster/sdn/zones --zone <zone> --type vxlan --peers <a,b> --mtu <mtu>
//	pvesh set /cluster/sdn/zones/<zone> --peers <a,b> --mtu <mtu>
//	pvesh get /cluster/sdn/vnets/<vnet>
//	pvesh create /cluster/sdn/vnets --vnet <vnet> --zone <zone> --tag <vni>
//	pvesh set /cluster/sdn/vnets/<vnet> --zone <zone> --tag <vni>
//	pvesh set /cluster/sdn
//	pvesh get /nodes/<node>/sdn/zones/<zone>/content --output-format json
//	pvesh delete /cluster/sdn/vnets/<vnet>
//	pvesh delete /cluster/sdn/zones/<zone>
//
// JSON is read with Perl's JSON::PP, which every Proxmox node has (the
// Proxmox API is Perl); the scripts themselves are POSIX sh.
package sdn

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// VXLAN is one zone with one VNet.
type VXLAN struct {
	// Zone and VNet are Proxmox SDN IDs: a lowercase letter, then lowercase
	// letters and digits, 8 characters at most.
	Zone string
	VNet string
	// VNI is the VNet's tag, 1-16777215.
	VNI int
	// Peers are the IPv4 addresses of every node of the zone on the Proxmox
	// cluster network, in the order they are passed to Proxmox.
	Peers []string
	// MTU of the zone: what guests on the VNet get (underlay MTU - 50).
	MTU int
	// Nodes are the Proxmox node names (DNS labels) the stack uses: after
	// applying, the apply script waits until the VNet is available on each.
	Nodes []string
	// ReadyTimeout is how long, in seconds, the apply script waits for the
	// VNet on Nodes, checking every 2 seconds; 0 means DefaultReadyTimeout.
	ReadyTimeout int
}

// DefaultReadyTimeout is how long the apply script waits, in seconds, for
// the VNet to be available on every node.
const DefaultReadyTimeout = 60

// readyInterval is the pause, in seconds, between two checks of the nodes.
const readyInterval = 2

var idRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// Validate checks every value that goes into the scripts; the scripts
// quote each one too (grammar.ShellQuote), and nothing else reaches them.
func (x VXLAN) Validate() error {
	var problems []string
	if !idRE.MatchString(x.Zone) {
		problems = append(problems, fmt.Sprintf("zone %q is not an SDN ID (a lowercase letter, then letters and digits, 8 at most)", x.Zone))
	}
	if !idRE.MatchString(x.VNet) {
		problems = append(problems, fmt.Sprintf("vnet %q is not an SDN ID (a lowercase letter, then letters and digits, 8 at most)", x.VNet))
	}
	if x.VNI < 1 || x.VNI > 1<<24-1 {
		problems = append(problems, fmt.Sprintf("vni %d is outside 1-16777215", x.VNI))
	}
	if len(x.Peers) == 0 {
		problems = append(problems, "no peers: every node of the zone must be one")
	}
	seen := map[string]bool{}
	for _, p := range x.Peers {
		a, err := netip.ParseAddr(p)
		if err != nil || !a.Is4() || a.String() != p {
			problems = append(problems, fmt.Sprintf("peer %q is not an IPv4 address", p))
		} else if seen[p] {
			problems = append(problems, fmt.Sprintf("peer %s is listed twice", p))
		}
		seen[p] = true
	}
	if x.MTU < 1280 || x.MTU > 9000 {
		problems = append(problems, fmt.Sprintf("mtu %d is outside 1280-9000", x.MTU))
	}
	if len(x.Nodes) == 0 {
		problems = append(problems, "no nodes: the apply waits for the VNet on every Proxmox node the stack uses")
	}
	seenNode := map[string]bool{}
	for _, n := range x.Nodes {
		if !grammar.DNSLabel(n) {
			problems = append(problems, fmt.Sprintf("node %q is not a Proxmox node name (a lowercase DNS label)", n))
		} else if seenNode[n] {
			problems = append(problems, fmt.Sprintf("node %s is listed twice", n))
		}
		seenNode[n] = true
	}
	if x.ReadyTimeout < 0 || x.ReadyTimeout > 3600 {
		problems = append(problems, fmt.Sprintf("ready timeout %d s is outside 0-3600", x.ReadyTimeout))
	}
	if len(problems) > 0 {
		return fmt.Errorf("SDN VXLAN: %s", strings.Join(problems, "; "))
	}
	return nil
}

// foreignPending is the Perl program that prints one line per pending SDN
// edit that is not the zone ($ARGV[0]) or the VNet ($ARGV[1]), given the
// JSON of `pvesh get /cluster/sdn/zones --pending 1` ($ARGV[2]) and of
// `.../vnets --pending 1` ($ARGV[3]).
//
// Those listings are pve-network's pending_config (src/PVE/Network/SDN.pm:
// 85-140 at 2e32df1, :133-188 at ecf98c5): every object of the running and
// the edited configuration, a pending one with `state` "new", "changed" or
// "deleted" and the edited values under `pending`; an unchanged one has
// neither. Zones are named by `zone`, VNets by `vnet`
// (src/PVE/API2/Network/SDN/Zones.pm:38, Vnets.pm:47 at 2e32df1). The
// listing shows only what the caller may audit (check_any on
// /sdn/zones/<zone>): SDA connects as root, who sees everything.
const foreignPending = `use strict; use warnings; use JSON::PP;
my ($zone, $vnet, $zones, $vnets) = @ARGV;
for my $z (@{ decode_json($zones) }) {
    next if !$z->{state} && !$z->{pending};
    next if $z->{zone} eq $zone;
    printf "  zone %s: %s\n", $z->{zone}, $z->{state} // "changed";
}
for my $v (@{ decode_json($vnets) }) {
    next if !$v->{state} && !$v->{pending};
    next if $v->{vnet} eq $vnet;
    printf "  vnet %s (zone %s): %s\n", $v->{vnet}, $v->{zone} // $v->{pending}{zone} // "?", $v->{state} // "changed";
}
`

// vnetStatus is the Perl program that prints the status of VNet $ARGV[0]
// in the JSON of `pvesh get /nodes/<node>/sdn/zones/<zone>/content`
// ($ARGV[1]): "available", or what else it is, with Proxmox's message.
//
// That listing (src/PVE/API2/Network/SDN/Zones/Content.pm:73-82 at
// 2e32df1; Nodes/Zone.pm:101-124 at ecf98c5) has one {vnet, status,
// statusmsg} per VNet of the zone in the running configuration, from
// PVE::Network::SDN::Zones::status (src/PVE/Network/SDN/Zones.pm:227-300 at
// 2e32df1): "available"; "pending" while the node's generated SDN network
// configuration is older than the running one (its reload failed or has
// not run yet); "error" when the bridge is not up.
const vnetStatus = `use strict; use warnings; use JSON::PP;
my ($vnet, $json) = @ARGV;
my $list = eval { decode_json($json) };
if (ref($list) ne "ARRAY") { print "unreadable answer: $json"; exit 0; }
for my $item (@$list) {
    next if ($item->{vnet} // "") ne $vnet;
    my $status = $item->{status} // "no status";
    $status .= " ($item->{statusmsg})" if $status ne "available" && defined($item->{statusmsg});
    print $status;
    exit 0;
}
print "not listed: the node does not have the VNet";
`

// header writes the script's start: the values it uses, each quoted, then
// the refusal while someone else's SDN edit is pending (what is about to be
// done is named by doing, "changing" or "removing").
func header(b *strings.Builder, x VXLAN, doing string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	w("set -eu")
	w("zone=%s", grammar.ShellQuote(x.Zone))
	w("vnet=%s", grammar.ShellQuote(x.VNet))
	w("foreign_pl=%s", grammar.ShellQuote(foreignPending))
	w("pending_zones=$(pvesh get /cluster/sdn/zones --pending 1 --output-format json)")
	w("pending_vnets=$(pvesh get /cluster/sdn/vnets --pending 1 --output-format json)")
	w(`foreign=$(perl -e "$foreign_pl" "$zone" "$vnet" "$pending_zones" "$pending_vnets")`)
	w(`if [ -n "$foreign" ]; then`)
	w(`  echo "SDA: not %s SDN zone $zone and VNet $vnet: applying SDN (pvesh set /cluster/sdn) would also apply these pending SDN edits, which are not SDA's:" >&2`, doing)
	w(`  printf '%%s\n' "$foreign" >&2`)
	w(`  echo "Apply them (Proxmox UI: Datacenter > SDN > Apply) or undo them (Datacenter > SDN > Zones and VNets), then run SDA again." >&2`)
	w("  exit 1")
	w("fi")
}

// ApplyScript creates the zone and the VNet, or sets them to x when they
// exist, applies the SDN configuration, and waits until every node of
// x.Nodes has the VNet. Running it again changes nothing, so it serves as
// both Create and Update. x must be valid (Validate).
func ApplyScript(x VXLAN) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	header(&b, x, "changing")
	w("peers=%s", grammar.ShellQuote(strings.Join(x.Peers, ",")))
	w("mtu=%s", grammar.ShellQuote(fmt.Sprint(x.MTU)))
	w("tag=%s", grammar.ShellQuote(fmt.Sprint(x.VNI)))
	w(`if pvesh get "/cluster/sdn/zones/$zone" >/dev/null 2>&1; then`)
	w(`  pvesh set "/cluster/sdn/zones/$zone" --peers "$peers" --mtu "$mtu"`)
	w("else")
	w(`  pvesh create /cluster/sdn/zones --zone "$zone" --type vxlan --peers "$peers" --mtu "$mtu"`)
	w("fi")
	w(`if pvesh get "/cluster/sdn/vnets/$vnet" >/dev/null 2>&1; then`)
	w(`  pvesh set "/cluster/sdn/vnets/$vnet" --zone "$zone" --tag "$tag"`)
	w("else")
	w(`  pvesh create /cluster/sdn/vnets --vnet "$vnet" --zone "$zone" --tag "$tag"`)
	w("fi")
	// Zones and VNets are pending until applied; applying reloads the
	// network of every node (ifupdown2), which creates the VNet's bridge,
	// but a node whose reload fails is only warned about (see the package
	// comment), and the reloads of other nodes run as their own tasks
	// that the apply does not wait for. So ask each node.
	w("pvesh set /cluster/sdn")
	timeout := x.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	quoted := make([]string, len(x.Nodes))
	for i, n := range x.Nodes {
		quoted[i] = grammar.ShellQuote(n)
	}
	w("status_pl=%s", grammar.ShellQuote(vnetStatus))
	w("checks=0")
	w("while :; do")
	w("  waiting=")
	w("  for node in %s; do", strings.Join(quoted, " "))
	// stderr apart: the node warns there while its configuration is old.
	w(`    if answer=$(pvesh get "/nodes/$node/sdn/zones/$zone/content" --output-format json 2>/dev/null); then`)
	w(`      status=$(perl -e "$status_pl" "$vnet" "$answer")`)
	w("    else")
	w(`      status="no answer: $(pvesh get "/nodes/$node/sdn/zones/$zone/content" --output-format json 2>&1 >/dev/null | tail -n 1)"`)
	w("    fi")
	w(`    if [ "$status" != available ]; then`)
	w(`      waiting="$waiting`)
	w(`  $node: $status"`)
	w("    fi")
	w("  done")
	w(`  if [ -z "$waiting" ]; then`)
	w("    break")
	w("  fi")
	w("  checks=$((checks + 1))")
	w(`  if [ "$checks" -ge %d ]; then`, timeout/readyInterval+1)
	w(`    printf 'SDA: SDN VNet %%s is not available %d s after applying SDN on:%%s\n' "$vnet" "$waiting" >&2`, timeout)
	w(`    echo "Applying SDN only warns when a node fails to reload its network. On each node above check that it is online, that ifupdown2 is installed and that /etc/network/interfaces sources /etc/network/interfaces.d/*; then reload it (pvesh set /nodes/NODE/network) or run SDA again." >&2`)
	w("    exit 1")
	w("  fi")
	w("  sleep %d", readyInterval)
	w("done")
	return b.String()
}

// DeleteScript removes the VNet, then the zone (Proxmox refuses to delete
// a zone that still has VNets), and applies the change. What is already
// gone is skipped, so it also finishes a removal that stopped halfway. x
// must be valid (Validate).
func DeleteScript(x VXLAN) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	header(&b, x, "removing")
	w(`if pvesh get "/cluster/sdn/vnets/$vnet" >/dev/null 2>&1; then`)
	w(`  pvesh delete "/cluster/sdn/vnets/$vnet"`)
	w("fi")
	w(`if pvesh get "/cluster/sdn/zones/$zone" >/dev/null 2>&1; then`)
	w(`  pvesh delete "/cluster/sdn/zones/$zone"`)
	w("fi")
	w("pvesh set /cluster/sdn")
	return b.String()
}
