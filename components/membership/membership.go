// Package membership renders the script that makes a Talos cluster's actual
// members match the nodes a stack declares, before anything checks the
// cluster's health.
//
// Why a script that runs on every change of the node list: Talos's health
// check (talos:cluster/getHealth, terraform-provider-talos v0.10.1,
// talos_cluster_health_data_source.go:252) compares the Kubernetes nodes with
// the listed nodes ("unexpected nodes with IPs", talos v1.12.0
// pkg/cluster/check) and etcd's members with the listed control planes. When
// a stack lowers its node counts, Pulumi deletes the removed VMs only after
// the program has finished, and the program's health checks run before
// that, while the removed nodes are still members. The removal therefore has
// to be an update that the health checks depend on: this script, run by a
// pulumi-command local.Command whose text changes with the node list.
//
// For every Kubernetes node that the stack no longer declares (workers
// first, then control planes, one at a time) it does what the Talos docs
// prescribe for scaling down: `talosctl reset --graceful` (cordon and drain,
// leave etcd, wipe, then halt, so the VM can be deleted afterwards) and
// `kubectl delete node`. A declared node is never touched.
//
// It is pure: it returns text. Tests run it against stand-in CLIs.
package membership

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// Member is a node the stack declares.
type Member struct {
	// Name is the Kubernetes node name: Talos uses the hostname.
	Name string
	// Address is the node's Talos API address.
	Address string
	// ControlPlane is true for control-plane nodes.
	ControlPlane bool
}

// Environment variables the script reads its credentials from; the command
// that runs it passes them as secrets, so they never reach the script's text
// or the state in plaintext.
const (
	TalosconfigEnv = "SDA_TALOSCONFIG"
	KubeconfigEnv  = "SDA_KUBECONFIG"
	// ControlPlanesEnv lists the declared control planes' addresses. The
	// script does not read it: it is there so that the next change's
	// quorum check (before the step runs) can ask the control planes of
	// the previous declaration too, including those about to leave.
	ControlPlanesEnv = "SDA_CONTROL_PLANES"
)

// APIWait bounds the wait for the Kubernetes API after a bootstrap: the API
// server comes up a few minutes after etcd.
const (
	apiWaitTries    = 60
	apiWaitInterval = 10 // seconds
)

// Script returns the reconciliation script for the declared members. Its
// output (stdout) is the sorted list of declared node names, one a line.
func Script(members []Member) (string, error) {
	if len(members) == 0 {
		return "", fmt.Errorf("membership: no members declared")
	}
	cps := 0
	var names, cpAddrs []string
	for _, m := range members {
		// Allow-list, then quote: names are DNS labels, addresses IPv4.
		if !grammar.DNSLabel(m.Name) {
			return "", fmt.Errorf("membership: node name %q is not a DNS label (lowercase letters, digits and inner hyphens)", m.Name)
		}
		if m.ControlPlane {
			cps++
			if a, err := netip.ParseAddr(m.Address); err != nil || !a.Is4() {
				return "", fmt.Errorf("membership: control plane %s: address %q is not an IPv4 address", m.Name, m.Address)
			}
			cpAddrs = append(cpAddrs, grammar.ShellQuote(m.Address))
		}
		names = append(names, m.Name)
	}
	if cps == 0 {
		// Removing every control plane would destroy the cluster.
		return "", fmt.Errorf("membership: at least one control plane must stay declared")
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, `set -eu
# SDA cluster membership: declared nodes stay; every other Kubernetes node is
# reset gracefully (cordon, drain, leave etcd, wipe, halt) and deleted.
umask 077
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%%s' "$%[1]s" > "$dir/talosconfig"
printf '%%s' "$%[2]s" > "$dir/kubeconfig"
k() { kubectl --kubeconfig "$dir/kubeconfig" --request-timeout=30s "$@"; }
t() { talosctl --talosconfig "$dir/talosconfig" "$@"; }
declared=%[3]s
tries=0
until k get nodes -o name >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge %[4]d ]; then
    echo "membership: the Kubernetes API did not answer within %[5]d s" >&2
    k get nodes -o name >&2 || true
    exit 1
  fi
  sleep %[6]d
done
# A declared control plane that answers: it removes members whose node is
# gone (talosctl etcd remove-member, as Talos's docs prescribe for a member
# that cannot leave by itself).
cp=
for a in %[7]s; do
  if t -n "$a" -e "$a" version >/dev/null 2>&1; then cp=$a; break; fi
done
# remove SELECTOR WHICH removes the undeclared nodes SELECTOR matches: WHICH
# is "gone" (nodes that do not answer), "answering", or "all".
remove() {
  # A failing listing must stop the script (set -e does not reach into a
  # for list), or nothing would be removed and nothing said.
  nodes=$(k get nodes -l "$1" -o name)
  for n in $(printf '%%s\n' "$nodes" | sed 's|^node/||'); do
    case "$declared" in *" $n "*) continue ;; esac
    ip=$(k get node "$n" -o 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}')
    if [ -z "$ip" ]; then
      echo "membership: node $n has no InternalIP; remove it by hand" >&2
      exit 1
    fi
    if t -n "$ip" -e "$ip" version >/dev/null 2>&1; then
      [ "$2" = gone ] && continue
      echo "membership: removing $n ($ip)" >&2
      t -n "$ip" -e "$ip" reset --graceful=true --reboot=false --wait=true --timeout=10m
    else
      [ "$2" = answering ] && continue
      echo "membership: $n ($ip) does not answer; removing it without its help" >&2
      case "$1" in '!'*) ;; *)
        if [ -z "$cp" ]; then
          echo "membership: no declared control plane answers; cannot remove $n from etcd" >&2
          exit 1
        fi
        id=$(t -n "$cp" -e "$cp" etcd members | awk -v h="$n" 'NR > 1 && $3 == h { print $2 }')
        if [ -n "$id" ]; then
          t -n "$cp" -e "$cp" etcd remove-member "$id"
        fi ;;
      esac
    fi
    k delete node "$n"
  done
}
# Workers first; then control planes one at a time, those that are gone
# first (removing a dead member keeps quorum that removing a live one while
# a dead one stays may not), so etcd loses one member at a time.
remove '!node-role.kubernetes.io/control-plane' all
remove 'node-role.kubernetes.io/control-plane' gone
remove 'node-role.kubernetes.io/control-plane' answering
`, TalosconfigEnv, KubeconfigEnv, grammar.ShellQuote(" "+strings.Join(names, " ")+" "), apiWaitTries, apiWaitTries*apiWaitInterval, apiWaitInterval, strings.Join(cpAddrs, " "))
	for _, n := range names {
		fmt.Fprintf(&b, "echo %s\n", grammar.ShellQuote(n))
	}
	return b.String(), nil
}
