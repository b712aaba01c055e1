package proxmox

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// guestSpec is what a VM or container asks of its node.
type guestSpec struct {
	kind      string
	node      string
	vmid      int
	name      string
	cores     int
	memory    int
	bridges   []string
	macs      []string
	mtus      []int
	addresses []string
	nicAddrs  []string
	disks     []diskSpec
	template  string // container template file ID
	diskIface string
	started   bool
}

type diskSpec struct {
	datastore, fileID, iface string
}

// nicAddresses are the static addresses of ipConfigs by position: Proxmox
// gives ipconfigN (ip=N for containers) to netN.
func nicAddresses(v map[string]any) []string {
	var out []string
	for _, c := range keyInitializationIPConfigs.In(v) {
		a := keyIPv4Address.In(asObject(c))
		if a == "dhcp" {
			a = ""
		}
		a, _, _ = strings.Cut(a, "/")
		out = append(out, a)
	}
	return out
}

// readNICs reads the bridges and MACs of a VM's networkDevices or a
// container's networkInterfaces (same fields; Proxmox defaults to vmbr0).
func (g *guestSpec) readNICs(nics []any) {
	for _, e := range nics {
		nic := asObject(e)
		b := keyBridge.In(nic)
		if b == "" {
			b = "vmbr0"
		}
		g.bridges = append(g.bridges, b)
		g.macs = append(g.macs, strings.ToUpper(keyMACAddress.In(nic)))
		g.mtus = append(g.mtus, keyMTU.In(nic))
	}
}

// asObject is a list element as an object (nil when it is not one).
func asObject(e any) map[string]any {
	m, _ := e.(map[string]any)
	return m
}

func ipConfigAddresses(v map[string]any) []string {
	var out []string
	for _, c := range keyInitializationIPConfigs.In(v) {
		a := keyIPv4Address.In(asObject(c))
		if a == "" || a == "dhcp" {
			continue
		}
		a, _, _ = strings.Cut(a, "/")
		out = append(out, a)
	}
	return out
}

// Admit checks a guest against the node it is placed on: the IDs, storage,
// files, bridges and capacity the real Proxmox would refuse.
func Admit(tx *engine.Tx, g guestSpec, self int) error {
	node, err := Node(tx, g.node)
	if err != nil {
		return err
	}
	if g.vmid < 100 || g.vmid > 999_999_999 {
		return fmt.Errorf("vmId %d: Proxmox VM IDs run from 100 to 999999999", g.vmid)
	}
	if other, taken := tx.State.Guests[g.vmid]; taken && g.vmid != self {
		return fmt.Errorf("unable to create %s %d: VM ID %d already exists on node %q (%s %s)", g.kind, g.vmid, g.vmid, other.Node, other.Kind, other.Name)
	}
	if g.cores > node.Cores {
		return fmt.Errorf("%s %d: %d cores requested, node %q has only %d", g.kind, g.vmid, g.cores, node.Name, node.Cores)
	}
	used := 0
	for id, other := range tx.State.Guests {
		if other.Node == node.Name && id != self {
			used += other.MemoryMiB
		}
	}
	if used+g.memory > node.MemoryMiB {
		return fmt.Errorf("%s %d: %d MiB of memory requested, node %q has %d MiB of %d MiB left", g.kind, g.vmid, g.memory, node.Name, node.MemoryMiB-used, node.MemoryMiB)
	}
	content := "images"
	if g.kind == "lxc" {
		content = "rootdir"
	}
	for _, d := range g.disks {
		if err := Datastore(tx, node.Name, d.datastore, content); err != nil {
			return fmt.Errorf("%s %d disk %s: %w", g.kind, g.vmid, d.iface, err)
		}
		if d.fileID != "" {
			f, ok := tx.State.Files[FileKey(tx, node.Name, d.fileID)]
			if !ok {
				return fmt.Errorf("%s %d disk %s: file %s does not exist on node %q", g.kind, g.vmid, d.iface, d.fileID, node.Name)
			}
			if f.ContentType != "iso" && f.ContentType != "import" {
				return fmt.Errorf("%s %d disk %s: %s is a %s file, not a disk image", g.kind, g.vmid, d.iface, d.fileID, f.ContentType)
			}
		}
	}
	if g.template != "" {
		f, ok := tx.State.Files[FileKey(tx, node.Name, g.template)]
		if !ok {
			return fmt.Errorf("lxc %d: template %s does not exist on node %q", g.vmid, g.template, node.Name)
		}
		if f.ContentType != "vztmpl" {
			return fmt.Errorf("lxc %d: %s is a %s file, not a container template", g.vmid, g.template, f.ContentType)
		}
	} else if g.kind == "lxc" {
		return fmt.Errorf("lxc %d: operatingSystem.templateFileId is required", g.vmid)
	}
	for _, b := range g.bridges {
		if !BridgeExists(tx, node.Name, b) {
			return fmt.Errorf("%s %d: bridge %q does not exist on node %q", g.kind, g.vmid, b, node.Name)
		}
	}
	for _, a := range g.addresses {
		for id, other := range tx.State.Guests {
			if id != self && slices.Contains(other.Addresses, a) {
				return fmt.Errorf("%s %d: address %s is already configured on %s %d", g.kind, g.vmid, a, other.Kind, id)
			}
		}
	}
	return nil
}

// Place records the admitted guest g in the state.
func Place(tx *engine.Tx, g guestSpec) {
	tx.State.Guests[g.vmid] = &engine.Guest{VMID: g.vmid, Kind: g.kind, Node: g.node, Name: g.name, Cores: g.cores,
		MemoryMiB: g.memory, Bridges: g.bridges, MACs: g.macs, MTUs: g.mtus, Addresses: g.addresses, NICAddresses: g.nicAddrs,
		DiskInterface: g.diskIface,
		Started:       g.started}
}

// NextVMID is what Proxmox's /cluster/nextid answers.
func NextVMID(tx *engine.Tx) int {
	for id := 100; ; id++ {
		if _, taken := tx.State.Guests[id]; !taken {
			return id
		}
	}
}

func guestOutputs(g guestSpec) map[string]any {
	macs := make([]any, len(g.macs))
	for i, m := range g.macs {
		macs[i] = m
	}
	return map[string]any{"vmId": float64(g.vmid), "macAddresses": macs}
}

func rebootCauses(olds, news map[string]any, keys []string) []string {
	var out []string
	for _, p := range engine.ChangedPaths(olds, news) {
		if slices.Contains(keys, engine.TopKey(p)) || engine.MatchesRule(p, "disks[*].aio") {
			out = append(out, p)
		}
	}
	return out
}

// deleteGuest removes a VM or container; a Talos node goes with its VM, and
// a cluster with its last control plane.
func deleteGuest(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	vmid, _ := strconv.Atoi(obj.ID)
	g := tx.State.Guests[vmid]
	if g == nil {
		return nil
	}
	if g.Kind == "lxc" {
		tx.RecordRouter(engine.RouterEvent{VMID: vmid, Time: time.Now(), Kind: engine.RouterGone})
	}
	delete(tx.State.Guests, vmid)
	for _, a := range g.Addresses {
		delete(tx.State.Machines, a)
	}
	for id := range tx.State.Clusters {
		alive := false
		for _, m := range tx.State.Machines {
			alive = alive || (m.ClusterID == id && m.Type == "controlplane")
		}
		if !alive {
			delete(tx.State.Clusters, id)
		}
	}
	return nil
}
