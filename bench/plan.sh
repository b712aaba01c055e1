#!/usr/bin/env bash
# Measures the README's main-job command and `sda render` as a new user meets
# them: with modules downloaded but an empty Go build cache (cold), and again
# with the cache filled (warm).
#   plan    `go run ./cmd/sda plan --stack dev`, seconds to the first line of output
#   render  `go run ./cmd/sda render --stack dev --out DIR`, seconds to exit
# Each cold run gets its own empty GOCACHE, so the two cold numbers are
# independent (each compiles Talos's machinery and the standard library).
# Prints a Markdown table for docs/benchmarks.md. Takes about 5 minutes on 2 cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go mod download
load_before=$(cut -d" " -f1-3 /proc/loadavg)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# first_line CMD...: seconds until CMD prints its first line on stdout
# (the rest of the output is read and discarded, and CMD must succeed).
first_line() {
  local start t; start=$(now)
  exec 3< <("$@" 2>"$out/stderr"; echo "__exit $?")
  IFS= read -r line <&3
  t=$(since "$start")
  local rest; rest=$(cat <&3); exec 3<&-
  case "$line$rest" in *"__exit 0") ;; *) echo "bench: $* failed:" >&2; cat "$out/stderr" >&2; exit 1 ;; esac
  echo "$t"
}
to_exit() {
  local start; start=$(now)
  "$@" >/dev/null 2>"$out/stderr" || { echo "bench: $* failed:" >&2; cat "$out/stderr" >&2; exit 1; }
  since "$start"
}

plan_cold=$(GOCACHE="$out/cache-plan" first_line go run ./cmd/sda plan --stack dev)
render_cold=$(GOCACHE="$out/cache-render" to_exit go run ./cmd/sda render --stack dev --out "$out/r1")
go build -o /dev/null ./cmd/sda    # the default cache, warm
plan_warm=$(first_line go run ./cmd/sda plan --stack dev)
render_warm=$(to_exit go run ./cmd/sda render --stack dev --out "$out/r2")
deps=$(go list -deps ./cmd/sda | grep -cE 'pulumi-proxmoxve|pulumi-talos|pulumi-kubernetes|pulumi-command|pulumi/pulumi/sdk' || true)

printf '| measurement | seconds | goal |\n| --- | ---: | --- |\n'
printf '| cold `go run ./cmd/sda plan --stack dev`, to first output (empty GOCACHE) | %s | ≤ 120 |\n' "$plan_cold"
printf '| cold `go run ./cmd/sda render --stack dev --out DIR`, to exit (empty GOCACHE) | %s | ≤ 120 |\n' "$render_cold"
printf '| warm `go run ./cmd/sda plan --stack dev`, to first output | %s | — |\n' "$plan_warm"
printf '| warm `go run ./cmd/sda render --stack dev --out DIR`, to exit | %s | — |\n' "$render_warm"
echo
echo "provider SDK or Pulumi SDK packages in \`go list -deps ./cmd/sda\`: $deps"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(go version); load average before: $load_before, after: $(cut -d" " -f1-3 /proc/loadavg)"
