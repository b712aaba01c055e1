// Package simtest holds what the simulator's tests share: servers over a
// fresh simulation directory, calls made as the engine makes them, and
// fixtures of a Talos cluster on a simulated Proxmox (with its Talos API
// served). It is imported by tests only.
package simtest
