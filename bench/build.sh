#!/usr/bin/env bash
# Measures the Go build of the SDA program and the README's test command:
#   cold   go build . with an empty build cache (modules already downloaded)
#   warm   go build . after a one-line edit in a component
#   tests  ./scripts/test.sh with a warm build cache (go test -count=1)
# Prints a Markdown table for docs/benchmarks.md. Takes 10+ minutes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=$(mktemp -d)
trap 'rm -rf "$out"; git -C "$repo" checkout -- components/talos_node.go' EXIT

secs() {
  local start; start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

cold=$(GOCACHE="$out/cache" secs go build -o "$out/sda-program" .)
go build -o "$out/sda-program" .            # warm the default cache
echo "// one-line edit for the warm rebuild benchmark" >> components/talos_node.go
warm=$(secs go build -o "$out/sda-program" .)
git checkout -- components/talos_node.go
go build -o "$out/sda-program" .
tests=$(secs ./scripts/test.sh)

printf '| measurement | seconds | goal |\n| --- | ---: | --- |\n'
printf '| cold `go build .` (empty GOCACHE) | %s | — |\n' "$cold"
printf '| warm `go build .` after a one-line edit in components/ | %s | < 20 |\n' "$warm"
printf '| `./scripts/test.sh` with a warm cache | %s | < 120 |\n' "$tests"
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(go version)"
