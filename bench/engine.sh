#!/usr/bin/env bash
# Engine benchmark: wall time of `up` of the prod stack with 1, 3 and 9
# workers under the real Pulumi engine, against the simulated providers with
# latencies (-profile unit, the default: image download 3 s, VM 2 s,
# configuration apply 2 s, bootstrap 2 s, Helm release 2 s; -profile
# realistic: a real deployment's durations scaled by 1/30, see
# bench/engine/main.go), compared with the critical path of those latencies.
# Prints the Markdown table of docs/benchmarks.md. Extra arguments go to the
# Go program (bench/engine), e.g. -runs 3 -parallel 8 -progress.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$repo/bench/plugins.sh"
go build -o "$tmp/bench-engine" ./bench/engine

"$tmp/bench-engine" -dir "$repo" "$@"
echo
echo "machine: $(nproc) cores; $(go version)"
