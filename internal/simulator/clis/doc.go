// Package clis stands in for the command-line tools SDA's scripts run and
// the provider that runs them: pulumi-command v1.1.0 (command:remote:Command
// over SSH on a Proxmox node, command:local:Command; command.go,
// local_command.go), and on the Proxmox node Proxmox VE's pct
// (pve-container) and pvesh (the SDN API of pve-network; pvesh.go).
//
// The simulated pct and pvesh. A remote command (command:remote:Command)
// runs its script for real, with sh, on the Proxmox node named by NodeEnv,
// and finds these on PATH in place of the real tools: they act on the
// simulated systems exactly as far as SDA's scripts use them, and refuse
// every other invocation, so a script that starts using something new
// fails here instead of passing unseen:
//
//	pct exec|push|pull VMID ...   (the container must exist on that node; exec: and run; stdin is read:
//	                              a router pair's apply script starts keepalived, the handover
//	                              script hands the virtual addresses over (router.go); others are discarded)
//	pvesh get|create|set|delete /cluster/sdn/...   (the forms in pvesh.go)
//
// SDA runs no talosctl or kubectl: its plugin speaks the Talos and
// Kubernetes APIs, which the simulation serves (packages talos and kubeapi).
package clis
