#!/usr/bin/env bash
# Rolling-upgrade benchmark: wall time of the `up` that moves prod from
# Talos v1.12.0 to v1.12.1 under the real Pulumi engine, against the
# simulated providers with each node down for -reboot (default 10 s) while
# it reboots, compared with the sequential minimum (nodes × reboot).
# With -what kubernetes: the `up` that moves prod from Kubernetes v1.35.0 to
# v1.35.1, each component down for -restart (default 2 s) while it restarts
# on its new image, against component restarts × restart.
# With -what resize: the `up` that raises every worker's memory by -memory
# MiB (default 1024), which reboots each worker's VM for -reboot, rolled
# -parallelism workers at a time (default 1), against batches × reboot.
# Prints the Markdown table of docs/benchmarks.md. Extra arguments go to the
# Go program (bench/upgrade), e.g. -runs 2 -reboot 20s.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$repo/bench/plugins.sh"
go build -o "$tmp/bench-upgrade" ./bench/upgrade

"$tmp/bench-upgrade" -dir "$repo" "$@"
echo
echo "machine: $(nproc) cores; $(go version)"
