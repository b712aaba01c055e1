package guestchange

import (
	"strings"
	"testing"
)

func vm(cores, disk float64, iface string) map[string]any {
	return map[string]any{
		"name":  "p-cp1",
		"cpu":   map[string]any{"cores": cores, "type": "host"},
		"disks": []any{map[string]any{"interface": iface, "size": disk}},
		"tags":  []any{"sda"},
	}
}

var names = Names{"disks.size": "sda:nodes.controlPlane.diskGiB", "disks.interface": "sda:nodes.diskInterface"}

func TestVM(t *testing.T) {
	cases := []struct {
		name      string
		old, new  map[string]any
		reboots   string
		errSubstr []string
	}{
		{"nothing changed", vm(4, 40, "scsi0"), vm(4, 40, "scsi0"), "", nil},
		{"cores reboot", vm(4, 40, "scsi0"), vm(6, 40, "scsi0"), "cpu", nil},
		{"a disk may grow, without a reboot", vm(4, 40, "scsi0"), vm(4, 60, "scsi0"), "", nil},
		{"a disk cannot shrink", vm(4, 40, "scsi0"), vm(4, 30, "scsi0"), "",
			[]string{"sda:nodes.controlPlane.diskGiB = 30", "from 40 GiB", "40 or more"}},
		{"the interface cannot change", vm(4, 40, "scsi0"), vm(4, 40, "virtio0"), "",
			[]string{`sda:nodes.diskInterface = "virtio"`, "from scsi0 to virtio0", `keep "scsi"`}},
		{"a disk cannot be removed", vm(4, 40, "scsi0"), map[string]any{"cpu": map[string]any{"cores": 4.0, "type": "host"}}, "",
			[]string{"1 disks would become 0"}},
		{"tags change nothing that reboots", vm(4, 40, "scsi0"), func() map[string]any { v := vm(4, 40, "scsi0"); v["tags"] = []any{"x"}; return v }(), "", nil},
		{"memory and NICs reboot together", map[string]any{"memory": map[string]any{"dedicated": 2048.0}, "networkDevices": []any{map[string]any{"mtu": 1500.0}}},
			map[string]any{"memory": map[string]any{"dedicated": 4096.0}, "networkDevices": []any{map[string]any{"mtu": 1450.0}}}, "memory,networkDevices", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reboots, err := VM(c.old, c.new, names)
			if got := strings.Join(reboots, ","); got != c.reboots {
				t.Errorf("reboots = %q, want %q", got, c.reboots)
			}
			if c.errSubstr == nil {
				if err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, s := range c.errSubstr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q should mention %q", err, s)
				}
			}
		})
	}
}
