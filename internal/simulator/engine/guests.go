package engine

import (
	"fmt"
	"slices"
	"time"
)

// NICOf returns the index of the guest NIC that holds address.
func (g *Guest) NICOf(address string) int {
	if i := slices.Index(g.NICAddresses, address); i >= 0 && i < len(g.Bridges) {
		return i
	}
	return 0
}

// Label names a guest for messages: its name, else its kind and ID.
func (g *Guest) Label() string {
	if g.Name != "" {
		return g.Name
	}
	if g.Kind == "lxc" {
		return fmt.Sprintf("CT %d", g.VMID)
	}
	return fmt.Sprintf("VM %d", g.VMID)
}

// DownUntil reports whether guest vmid is inside a reboot interval
// [Start, End) of State.Reboots at now, and when the last such reboot ends.
// A rebooting guest counts as not running: its guest agent and Talos API do
// not answer. Both the Proxmox and the Talos side append to State.Reboots.
func (tx *Tx) DownUntil(vmid int, now time.Time) (time.Time, bool) {
	var until time.Time
	down := false
	for _, r := range tx.State.Reboots {
		if r.VMID == vmid && !now.Before(r.Start) && now.Before(r.End) {
			down = true
			if r.End.After(until) {
				until = r.End
			}
		}
	}
	return until, down
}

// Reboot records a reboot of g that starts once the waits already owed by
// this call are over, and makes the call wait until it ends (the provider
// waits for the reboot task).
func (tx *Tx) Reboot(f Faults, g *Guest, cause string) {
	start := time.Now().Add(tx.Wait)
	d := f.RebootDuration()
	tx.State.Reboots = append(tx.State.Reboots, Reboot{VMID: g.VMID, Kind: g.Kind, Name: g.Name, Cause: cause,
		Start: start, End: start.Add(d)})
	tx.Wait += d
}

// Guest is a VM or container on a Proxmox node.
type Guest struct {
	VMID      int      `json:"vmid"`
	Kind      string   `json:"kind"` // "qemu" or "lxc"
	Node      string   `json:"node"`
	Name      string   `json:"name"`
	Cores     int      `json:"cores"`
	MemoryMiB int      `json:"memoryMiB"`
	Bridges   []string `json:"bridges"`
	MACs      []string `json:"macs"`
	// MTUs are the NICs' `mtu` (0: unset), aligned with Bridges.
	MTUs []int `json:"mtus,omitempty"`
	// Addresses without prefix length, from cloud-init / LXC ip configs.
	Addresses []string `json:"addresses"`
	// NICAddresses are the static addresses by NIC (ipConfigs[i] configures
	// NIC i; "" for none or DHCP), aligned with Bridges.
	NICAddresses  []string `json:"nicAddresses,omitempty"`
	DiskInterface string   `json:"diskInterface,omitempty"`
	Started       bool     `json:"started"`
	// TalosVersion is the Talos version installed on the VM's disk by an
	// upgrade through the Talos API (a reset wipes it with the rest of the
	// disk). Empty: the version of the image the VM was created from.
	TalosVersion string `json:"talosVersion,omitempty"`
	// TalosSchematic is the Image Factory schematic of the installer an
	// upgrade installed (kept with TalosVersion). Empty: the image's.
	TalosSchematic string `json:"talosSchematic,omitempty"`
	// DiskWiped is true once a Talos reset wiped the VM's whole system
	// disk: it has nothing to boot until it is recreated.
	DiskWiped bool `json:"diskWiped,omitempty"`
}

// Reboot is one reboot of a guest: a Proxmox update that restarts a VM or
// container, or a Talos configuration change that needs a reboot. Tests
// read the log to check that no two control planes (or the router and a
// node) were down at once.
type Reboot struct {
	VMID int    `json:"vmid"`
	Kind string `json:"kind"` // "qemu" or "lxc"
	Name string `json:"name"`
	// Cause says what rebooted it ("proxmox update: cpu.cores",
	// "talos apply: machine.sysctls").
	Cause string    `json:"cause"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Overlaps reports whether two reboots had their guests down at the same time.
func (r Reboot) Overlaps(o Reboot) bool { return r.Start.Before(o.End) && o.Start.Before(r.End) }
