package proxmox

import (
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// CreateTaskMethod is the faults.json latency method of a Proxmox create
// task: "<token>#CreateTask" is how long the task that creates a VM, a
// container or a downloaded file runs after Proxmox accepted it. Proxmox
// runs these as workers of their own (RPCEnvironment::fork_worker:
// qemu-server src/PVE/API2/Qemu.pm:1626 create_vm, pve-container
// src/PVE/API2/LXC.pm:655 create_vm, pve-storage
// src/PVE/API2/Storage/Status.pm:911 download_url), which finish whether
// or not the client that asked still waits. So the object is committed to
// the simulated state first and the task's time is spent afterwards (as
// Tx.Wait, outside the lock): a cancelled call or a killed plugin leaves it
// created. The plain "<token>#Create" (or "<token>") latency is spent
// before the request reaches Proxmox: cancelled there, nothing is created.
const CreateTaskMethod = "CreateTask"

// CreateTask adds the configured run time of token's create task to the
// call's wait, after the object is in the state.
func CreateTask(s *engine.Server, tx *engine.Tx, token string) {
	if v, ok := s.Faults().Latency[token+"#"+CreateTaskMethod]; ok {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			tx.Wait += d
		}
	}
}
