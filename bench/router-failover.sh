#!/usr/bin/env bash
# Measures the router pair's failover on a real data plane (tests/routerns'
# pair lab: two router namespaces with the rendered keepalived, conntrackd,
# nftables and dnsmasq). For N failovers per row, alternating the master,
# it loses the master by both links down, by killing keepalived (SIGKILL),
# or hands the addresses over as a router change does (the handover script,
# routerfiles.HandoverScript), and measures:
#   gap          UDP probes from the node to the outside every 10 ms: the time
#                between the sending of the last probe answered before the loss
#                and the first answered after it
#   connections  established TCP connections (half node -> outside through
#                SNAT, half outside -> node through the port-forward) that
#                answer both data sent through the loss and data sent after
#                the takeover, on the same socket
# with conntrackd on both routers, and without it (the ablation).
# Prints a Markdown table for docs/benchmarks.md. Needs root and the tools of
# scripts/install-test-deps.sh. N=10 (the default) takes about 18 minutes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
n=${1:-10}
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: run as root (network namespaces)" >&2
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
load_before=$(cut -d" " -f1-3 /proc/loadavg)
SDA_BENCH_FAILOVER=1 SDA_BENCH_FAILOVER_N="$n" SDA_REQUIRE_NETNS=1 \
  go test ./tests/routerns/ -run '^TestPairFailoverBench$' -count=1 -v -timeout 60m >"$out" 2>&1 || {
  echo "bench: the measurement failed:" >&2
  tail -50 "$out" >&2
  exit 1
}
grep '^|' "$out"
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r); $(keepalived --version 2>&1 | head -1); $(conntrackd -v 2>&1 | head -1 | sed 's/ Licensed.*//'); $(go version); load average before: $load_before, after: $(cut -d" " -f1-3 /proc/loadavg)"
