#!/bin/sh
# Installs the tools the router's network-namespace test (tests/routerns) runs:
# ip (iproute2), nft (nftables), dnsmasq (dnsmasq-base: the daemon without its
# system service), busybox (udhcpc, nslookup, nc), sysctl (procps), and for
# the multi-node data-plane lab ping with DF (iputils-ping: ping -M do -s) and
# gratuitous ARP (iputils-arping: arping -U), and for the router pair's lab
# keepalived (VRRP) and conntrackd (conntrack-tools' sync daemon).
# Idempotent: it does nothing when every tool is already there, and runs
# `apt-get update` at most once. Debian/Ubuntu, as root (or through sudo).
set -eu

# tool:package pairs; the tool is looked up on PATH and in the sbin dirs,
# which a non-root PATH may lack.
need="ip:iproute2 nft:nftables dnsmasq:dnsmasq-base busybox:busybox sysctl:procps ping:iputils-ping arping:iputils-arping keepalived:keepalived conntrackd:conntrackd"

have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  for d in /usr/sbin /sbin /usr/bin /bin; do
    [ -x "$d/$1" ] && return 0
  done
  return 1
}

missing=""
for pair in $need; do
  tool=${pair%%:*} pkg=${pair#*:}
  if ! have "$tool"; then
    missing="$missing $pkg"
  fi
done

if [ -z "$missing" ]; then
  echo "test dependencies already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "missing packages:$missing; run this script as root" >&2
  exit 1
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
$sudo apt-get install -y --no-install-recommends $missing
