// Package proxmox stands in for Proxmox VE and the proxmoxve provider
// plugin: pulumi-proxmoxve v6.18.1, which bridges
// bpg/terraform-provider-proxmox v0.69.1, with Proxmox's own checks read in
// pve-manager, pve-storage, qemu-server, pve-container and
// pve-access-control (docs/simulation.md, "The rules, with their sources:
// proxmoxve"). One file per resource or concern: vm.go, container.go,
// guests.go (what both share: admission, placement, reboots),
// downloads.go, network.go (bridges and VLAN interfaces), ssh.go (the
// provider's SSH for disk imports), agent.go (the QEMU guest agent wait),
// acl.go (API token privileges), tasks.go (create tasks), offline.go
// (every call about a resource on a failed node gets HTTP 595).
package proxmox
