#!/usr/bin/env bash
# Runs every SDA test on a fresh Debian machine as root: installs what the
# tests need (router test tools, the pinned Pulumi CLI), checks formatting
# and vet, the plugin module's tests, then `go test ./...`. Extra arguments
# go to the last `go test`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/install-test-deps.sh
bash scripts/install-pulumi.sh
export PATH="$repo/.tools/bin:$PATH"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi
go vet ./...
# The component package and the outside-the-repo example are modules of
# their own, which ./... does not reach.
(cd provider && go vet ./...)
(cd examples/components && go vet ./...)
# The plugin's own tests (its schema: every property described from the Go
# comments, fielddocs_gen.go current): about 20 s on two cores with a warm
# build cache, most of it linking the test binary.
(cd provider && go test -count=1 ./...)
# The engine package runs the real engine end to end: several minutes on
# two cores, near go test's default 10-minute package timeout, so the
# bound is set here (a later -timeout in "$@" wins).
go test -count=1 -timeout 30m "$@" ./...
