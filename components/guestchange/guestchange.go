// Package guestchange judges an in-place update of a Proxmox VM before the
// provider runs it: which changes reboot the guest, and which the provider
// would fail half way, so that SDA can say the first and refuse the second
// before anything changes (a Pulumi before-update hook, also run in preview).
//
// The rules are bpg/terraform-provider-proxmox v0.69.1's, which
// pulumi-proxmoxve v6.18.1 bridges (docs/simulation.md cites each line):
// vmUpdate sets rebootRequired for the keys in RebootKeys
// (proxmoxtf/resource/vm/vm.go:4803-5366) with no opt-out; a disk cannot
// shrink ("Cannot shrink … it is not supported!", vm.go:5557) or be removed
// ("deletion of disks not supported", vm.go:5505), and a changed interface
// adds a disk and then fails on the missing old one — after the VM's new
// configuration has been applied.
//
// It is pure: plain maps in (resource.PropertyMap.Mappable()), words out.
package guestchange

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// RebootKeys are the VM inputs whose change makes the provider reboot a
// running VM.
var RebootKeys = []string{"acpi", "kvmArguments", "bios", "keyboardLayout", "machine", "tabletDevice", "template",
	"agent", "audioDevice", "bootOrders", "cdrom", "cpu", "efiDisk", "tpmState", "initialization", "hostpcis",
	"numas", "usbs", "memory", "networkDevices", "operatingSystem", "serialDevices", "vga", "scsiHardware", "watchdog"}

// Names maps a VM input to the name its caller knows it by (the
// component's Args field, such as Node.DiskGiB), for messages; unknown
// inputs are named as they are.
type Names map[string]string

func (n Names) of(key string) string {
	if k, ok := n[key]; ok {
		return k
	}
	return key
}

// VM compares a VM's old and new inputs. It returns the changed inputs
// that reboot the guest (sorted), and an error naming the configuration
// key, the value and the fix when the provider could not apply the change.
func VM(old, new map[string]any, names Names) (reboots []string, err error) {
	for _, k := range RebootKeys {
		if !reflect.DeepEqual(old[k], new[k]) {
			reboots = append(reboots, k)
		}
	}
	sort.Strings(reboots)
	oldDisks, _ := old["disks"].([]any)
	newDisks, _ := new["disks"].([]any)
	if len(newDisks) < len(oldDisks) {
		return reboots, fmt.Errorf("%s: %d disks would become %d; the Proxmox provider cannot remove a disk (it fails after changing the VM): keep the disks", names.of("disks"), len(oldDisks), len(newDisks))
	}
	for i := range oldDisks {
		o, _ := oldDisks[i].(map[string]any)
		n, _ := newDisks[i].(map[string]any)
		if oi, ni := fmt.Sprint(o["interface"]), fmt.Sprint(n["interface"]); oi != ni {
			return reboots, fmt.Errorf("%s = %q would move disk %d from %s to %s; the Proxmox provider adds a new disk and then fails to remove the old one (after changing the VM): keep %q for existing VMs", names.of("disks.interface"), strings.TrimRight(ni, "0123456789"), i, oi, ni, strings.TrimRight(oi, "0123456789"))
		}
		os, okOld := number(o["size"])
		ns, okNew := number(n["size"])
		if okOld && okNew && ns < os {
			return reboots, fmt.Errorf("%s = %v would shrink disk %d from %v GiB; Proxmox cannot shrink a disk (the provider fails after changing the VM): set it to %v or more", names.of("disks.size"), ns, i, os, os)
		}
	}
	return reboots, nil
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}
