// Package routerns is the router's real-network test (tests only): it builds a
// small network of Linux network namespaces and veth pairs, applies inside the
// router namespace exactly what the RouterLXC component renders (the stack's
// Spec from stacks/inputs.RouterFiles; components/routerfiles: Render,
// ApplyScript, and every node's HostScript) with the real sysctl, nft and
// dnsmasq, and checks DHCP, DNS, NAT, the firewall, re-applying, and adding
// and removing a node (HostScript, RemoveHostScript) without restarting
// dnsmasq. TestDataPlane builds the stacks' internal network across their
// Proxmox nodes in every internal network mode from the rendered plan
// (docs/network-lab.md). It needs root and the tools
// scripts/install-test-deps.sh installs; elsewhere it skips, unless
// SDA_REQUIRE_NETNS=1 (set in CI) turns every skip into a failure. See
// docs/router.md.
package routerns
