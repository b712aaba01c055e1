#!/usr/bin/env bash
# Installs the pinned Pulumi CLI into $SDA_TOOLS_BIN (default: .tools/bin in the repo)
# unless a pulumi of exactly that version is already there or on PATH, and the
# YAML language host (pulumi-language-yaml) that runs `runtime: yaml` programs,
# such as the component package's example in examples/yaml, and, on every run,
# SDA's own provider plugin (pulumi-resource-sda) from this checkout's provider/.
# The engine finds the plugin on PATH: put $SDA_TOOLS_BIN there for `pulumi up`;
# the automation package (embedders) looks beside the CLI it uses.
#
# Real users install Pulumi the usual way (https://www.pulumi.com/docs/install/);
# this route builds the CLI from its Go module, for machines that reach only the
# Go module proxy. It takes about 4 minutes cold on 2 cores.
set -euo pipefail
PULUMI_VERSION=v3.274.1
YAML_VERSION=v1.25.0 # tools/pulumi-yaml/go.mod pins the same
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${SDA_TOOLS_BIN:-$repo/.tools/bin}
mkdir -p "$bin"

have_version() { "$1" version 2>/dev/null | grep -qx "$PULUMI_VERSION"; }

install_yaml_host() {
  # The language host has no version flag: a stamp file records what was built.
  local stamp="$bin/.pulumi-language-yaml.version"
  if [ -x "$bin/pulumi-language-yaml" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$YAML_VERSION" ]; then
    echo "pulumi-language-yaml $YAML_VERSION already at $bin"; return
  fi
  echo "building pulumi-language-yaml $YAML_VERSION from its Go module into $bin (about 3 minutes cold)"
  (cd "$repo/tools/pulumi-yaml" && go build -o "$bin/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml)
  echo "$YAML_VERSION" >"$stamp"
}
install_yaml_host

install_sda_plugin() {
  # Built every time from the checkout, never skipped: go build relinks only
  # what changed (seconds), and a stale plugin would run old code.
  echo "building pulumi-resource-sda from $repo/provider into $bin (seconds when up to date, minutes cold)"
  (cd "$repo/provider" && go build -o "$bin/pulumi-resource-sda" .)
}
install_sda_plugin

if [ -x "$bin/pulumi" ] && have_version "$bin/pulumi"; then
  echo "pulumi $PULUMI_VERSION already at $bin/pulumi"; exit 0
fi
if command -v pulumi >/dev/null && have_version "$(command -v pulumi)"; then
  ln -sf "$(command -v pulumi)" "$bin/pulumi"
  echo "pulumi $PULUMI_VERSION found on PATH"; exit 0
fi
echo "building pulumi $PULUMI_VERSION from its Go module into $bin (about 4 minutes cold)"
cd "$repo/tools/pulumi"
# Without the version stamp the Automation API refuses the CLI
# ("Unable to parse Pulumi CLI version").
go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
  -o "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
"$bin/pulumi" version
