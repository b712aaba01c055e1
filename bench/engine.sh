#!/usr/bin/env bash
# Engine benchmark: wall time of `up` of the prod stack with 1, 3 and 9
# workers under the real Pulumi engine, against the simulated providers with
# latencies (image download 3 s, VM 2 s, configuration apply 2 s, bootstrap
# 2 s, Helm release 2 s), compared with the critical path of those latencies.
# Prints the Markdown table of docs/benchmarks.md. Extra arguments go to the
# Go program (bench/engine), e.g. -runs 3 -parallel 8 -progress.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/bin/pulumi-sim" ./cmd/pulumi-sim
for p in proxmoxve talos kubernetes command; do ln -s pulumi-sim "$tmp/bin/pulumi-resource-$p"; done
# the simulated talosctl and kubectl that local commands run, pct and pvesh that remote commands run
for t in talosctl kubectl pct pvesh; do ln -s pulumi-sim "$tmp/bin/$t"; done
# SDA's own plugin, which the stack needs beside the simulated ones
(cd provider && go build -o "$tmp/bin/pulumi-resource-sda" .)
go build -o "$tmp/bench-engine" ./bench/engine

export PATH="$tmp/bin:$PATH"
export PULUMI_HOME="$tmp/pulumi-home"
export PULUMI_CONFIG_PASSPHRASE=bench
export PULUMI_SKIP_UPDATE_CHECK=true
"$tmp/bench-engine" -dir "$repo" "$@"
