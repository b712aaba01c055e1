#!/usr/bin/env bash
# Rolling-upgrade benchmark: wall time of the `up` that moves prod from
# Talos v1.12.0 to v1.12.1 under the real Pulumi engine, against the
# simulated providers with each node down for -reboot (default 10 s) while
# it reboots, compared with the sequential minimum (nodes × reboot).
# Prints the Markdown table of docs/benchmarks.md. Extra arguments go to the
# Go program (bench/upgrade), e.g. -runs 2 -reboot 20s.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/bin/pulumi-sim" ./cmd/pulumi-sim
for p in proxmoxve talos kubernetes command; do ln -s pulumi-sim "$tmp/bin/pulumi-resource-$p"; done
for t in talosctl kubectl pct pvesh; do ln -s pulumi-sim "$tmp/bin/$t"; done
(cd provider && go build -o "$tmp/bin/pulumi-resource-sda" .)
go build -o "$tmp/bench-upgrade" ./bench/upgrade

export PATH="$tmp/bin:$PATH"
export PULUMI_HOME="$tmp/pulumi-home"
export PULUMI_CONFIG_PASSPHRASE=bench
export PULUMI_SKIP_UPDATE_CHECK=true
"$tmp/bench-upgrade" -dir "$repo" "$@"
echo
echo "machine: $(nproc) cores; $(go version)"
