# Sourced by the engine benchmarks: builds the simulated providers (and the
# talosctl, kubectl, pct and pvesh stand-ins) and SDA's own plugin into
# $tmp/bin, and sets the environment the engine runs with. Needs $repo and
# $tmp.
go build -o "$tmp/bin/pulumi-sim" ./cmd/pulumi-sim
for p in proxmoxve talos kubernetes command; do ln -s pulumi-sim "$tmp/bin/pulumi-resource-$p"; done
for t in talosctl kubectl pct pvesh; do ln -s pulumi-sim "$tmp/bin/$t"; done
# SDA's own plugin, which the stack needs beside the simulated ones
(cd "$repo/provider" && go build -o "$tmp/bin/pulumi-resource-sda" .)

export PATH="$tmp/bin:$PATH"
export PULUMI_HOME="$tmp/pulumi-home"
export PULUMI_CONFIG_PASSPHRASE=bench
export PULUMI_SKIP_UPDATE_CHECK=true
