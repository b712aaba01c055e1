package config

// Size checks: every guest gets at least what its operating system needs
// (Talos for the nodes, Debian for the router container).

// nodeSizes checks the control plane and worker VM sizes against Talos's
// minimums: 2 cores, 2048 MiB of memory, a 10 GiB disk.
func (v *validator) nodeSizes(n Nodes) {
	for _, s := range []struct {
		key  string
		size VMSize
	}{{"sda:nodes.controlPlane", n.ControlPlane}, {"sda:nodes.worker", n.Worker}} {
		if s.size.Cores < 2 {
			v.add(s.key+".cores", s.size.Cores, "Talos needs at least 2 cores")
		}
		if s.size.MemoryMiB < 2048 {
			v.add(s.key+".memoryMiB", s.size.MemoryMiB, "Talos needs at least 2048 MiB")
		}
		if s.size.DiskGiB < 10 {
			v.add(s.key+".diskGiB", s.size.DiskGiB, "Talos needs a disk of at least 10 GiB")
		}
	}
}

// routerSize checks the router container's size: 1 core, 128 MiB of
// memory and a 1 GiB disk at least.
func (v *validator) routerSize(r Router) {
	if r.Cores < 1 {
		v.add("sda:router.cores", r.Cores, "use 1 or more")
	}
	if r.MemoryMiB < 128 {
		v.add("sda:router.memoryMiB", r.MemoryMiB, "use at least 128 MiB")
	}
	if r.DiskGiB < 1 {
		v.add("sda:router.diskGiB", r.DiskGiB, "use at least 1 GiB")
	}
}
