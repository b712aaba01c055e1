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
# A one-line code edit (a string the VM gets), so the package, its
# dependents and the link really run again; a comment alone can leave the
# object files identical and the link cached.
sed -i 's/SDA Talos %s %s/SDA Talos node %s %s/' components/talos_node.go
git diff --quiet components/talos_node.go && { echo "bench: the edit did not apply" >&2; exit 1; }
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
