package engine

import (
	"fmt"
	"slices"
	"time"
)

// nicOf returns the index of the guest NIC that holds address.
func (g *Guest) NicOf(address string) int {
	if i := slices.Index(g.NICAddresses, address); i >= 0 && i < len(g.Bridges) {
		return i
	}
	return 0
}

// label names a guest for messages: its name, else its kind and ID.
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

// reboot records a reboot of g that starts once the waits already owed by
// this call are over, and makes the call wait until it ends (the provider
// waits for the reboot task).
func (tx *Tx) Reboot(f Faults, g *Guest, cause string) {
	start := time.Now().Add(tx.Wait)
	d := f.RebootDuration()
	tx.State.Reboots = append(tx.State.Reboots, Reboot{VMID: g.VMID, Kind: g.Kind, Name: g.Name, Cause: cause,
		Start: start, End: start.Add(d)})
	tx.Wait += d
}
