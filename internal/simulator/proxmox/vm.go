package proxmox

import (
	"fmt"
	"github.com/sda-platform/sda/components/guestchange"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

func vmSpec(v map[string]any) guestSpec {
	g := guestSpec{kind: "qemu", node: keyNodeName.In(v), vmid: keyVMID.In(v), name: keyName.In(v),
		cores: keyCPUCores.In(v), memory: keyMemoryDedicated.In(v), started: true}
	if s, ok := keyStarted.In(v).(bool); ok {
		g.started = s
	}
	if g.cores == 0 {
		g.cores = 1
	}
	if sockets := keyCPUSockets.In(v); sockets > 1 {
		g.cores *= sockets
	}
	if g.memory == 0 {
		g.memory = 512
	}
	for _, e := range keyDisks.In(v) {
		disk := asObject(e)
		d := diskSpec{datastore: keyDatastoreID.In(disk), fileID: keyFileID.In(disk), iface: keyInterface.In(disk)}
		if d.datastore == "" {
			d.datastore = "local-lvm"
		}
		g.disks = append(g.disks, d)
	}
	if len(g.disks) > 0 {
		g.diskIface = strings.TrimRight(g.disks[0].iface, "0123456789")
	}
	g.readNICs(keyNetworkDevices.In(v))
	if ds := keyInitializationDatastoreID.In(v); ds != "" {
		g.disks = append(g.disks, diskSpec{datastore: ds, iface: "ide2"})
	}
	g.addresses = ipConfigAddresses(v)
	g.nicAddrs = nicAddresses(v)
	return g
}

func createVM(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	g := vmSpec(in.Values)
	if g.vmid == 0 {
		g.vmid = NextVMID(tx)
	}
	for i, m := range g.macs {
		if m == "" {
			g.macs[i] = fmt.Sprintf("BC:24:11:%02X:%02X:%02X", g.vmid>>16&0xff, g.vmid>>8&0xff, i)
		}
	}
	if err := Permit(s, tx, VMCreateCalls(tx, g, in.Values)...); err != nil {
		return "", nil, err
	}
	if err := Admit(tx, g, -1); err != nil {
		return "", nil, err
	}
	// vmCreateCustom creates the VM, then imports the fileId disks over SSH.
	// (For real the VM then exists and the failed create leaves it behind.)
	if err := ImportDisks(s, tx, g.node, g.disks); err != nil {
		return "", nil, err
	}
	if err := Permit(s, tx, vmAfterCreateCalls(g, in.Values)...); err != nil {
		return "", nil, err
	}
	Place(tx, g)
	CreateTask(s, tx, TokenVM)
	guest := tx.State.Guests[g.vmid]
	// vmCreateStart: start, reboot if asked, then vmRead.
	template, _ := keyTemplate.In(in.Values).(bool)
	if reboot, _ := keyReboot.In(in.Values).(bool); reboot && g.started && !template {
		tx.Reboot(s.Faults(), guest, "proxmox create: reboot")
	}
	_, agentTimeout := vmAgent(in.Values)
	createTimeout := dvTimeoutCreate
	if n := keyTimeoutCreate.In(in.Values); n > 0 {
		createTimeout = time.Duration(n) * time.Second
	}
	outs := engine.Merge(guestOutputs(g), VMNetwork(s, tx, in.Values, guest, min(agentTimeout, createTimeout)))
	return strconv.Itoa(g.vmid), outs, nil
}

// readVM is vmRead: a VM that is gone drops the resource; otherwise the
// network values are read again (waiting for the agent, see vmNetwork).
func readVM(s *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
	vmid, _ := strconv.Atoi(obj.ID)
	g := tx.State.Guests[vmid]
	if g == nil || g.Kind != "qemu" {
		return true, nil
	}
	_, agentTimeout := vmAgent(obj.Inputs)
	net := VMNetwork(s, tx, obj.Inputs, g, agentTimeout)
	if _, fromAgent := net["macAddresses"]; !fromAgent {
		net["macAddresses"] = guestOutputs(guestSpec{macs: g.MACs})["macAddresses"]
	}
	obj.Outputs = engine.Merge(obj.Outputs, net)
	return false, nil
}

// vmForceNew holds the VM's conditional replacements: nodeName forces a
// new VM unless migrate is set (CustomizeDiff ForceNewIf), and a disk's
// fileId is compared by list position, so adding or removing a disk with
// a fileId replaces the VM too (Terraform diffs disk.N.file_id from "").
func vmForceNew(_ *engine.Server, _, _ string, _, olds, news map[string]any) []string {
	var keys []string
	if keyNodeName.In(olds) != keyNodeName.In(news) {
		if migrate, _ := keyMigrate.In(news).(bool); !migrate {
			keys = append(keys, "nodeName")
		}
	}
	od, nd := keyDisks.In(olds), keyDisks.In(news)
	for i := 0; i < max(len(od), len(nd)); i++ {
		if keyFileID.In(engine.Elem(od, i)) != keyFileID.In(engine.Elem(nd, i)) {
			keys = append(keys, "disks")
			break
		}
	}
	return keys
}

// vmRebootKeys are the VM settings whose change makes vmUpdate reboot the
// VM (rebootRequired in bpg v0.69.1 vmUpdate); a disk reboots it only for a
// new aio. The list is written once, in components/guestchange, whose
// warnings and rolled restarts follow the same upstream rule.
var vmRebootKeys = guestchange.RebootKeys

type vmDisk struct {
	iface, datastore string
	size             int
	index            int
}

// vmDisks are a VM's disks by interface, with the provider's defaults
// (datastore local-lvm, 8 GB).
func vmDisks(v map[string]any) (map[string]vmDisk, []string) {
	out := map[string]vmDisk{}
	var order []string
	for i, e := range keyDisks.In(v) {
		disk := asObject(e)
		d := vmDisk{iface: keyInterface.In(disk), datastore: keyDatastoreID.In(disk), size: keyDiskSize.In(disk), index: i}
		if d.iface == "" {
			d.iface = "scsi0"
		}
		if d.datastore == "" {
			d.datastore = "local-lvm"
		}
		if d.size == 0 {
			d.size = 8
		}
		out[d.iface] = d
		order = append(order, d.iface)
	}
	return out, order
}

func updateVM(s *engine.Server, tx *engine.Tx, id string, old *engine.Object, news engine.Props) (map[string]any, error) {
	olds, nv := old.Inputs, news.Values
	g := vmSpec(nv)
	self, _ := strconv.Atoi(id)
	g.vmid = self
	prev := tx.State.Guests[self]
	if prev != nil {
		for i, m := range g.macs {
			if m == "" && i < len(prev.MACs) {
				g.macs[i] = prev.MACs[i]
			}
		}
	}
	if err := Admit(tx, g, self); err != nil {
		return nil, err
	}
	f := s.Faults()
	oldDisks, oldOrder := vmDisks(olds)
	newDisks, newOrder := vmDisks(nv)
	// disk.Update: a disk on a new interface is added; one with a fileId is
	// imported over SSH first.
	for _, iface := range newOrder {
		if _, ok := oldDisks[iface]; !ok && keyFileID.In(engine.Elem(keyDisks.In(nv), newDisks[iface].index)) != "" {
			if err := SSHLogin(s, tx, g.node); err != nil {
				// disk.Update wraps createCustomDisk's error once more.
				return nil, fmt.Errorf("creating custom disk: creating custom disk: %w", err)
			}
		}
	}
	if err := Permit(s, tx, VMUpdateCalls(tx, self, olds, nv)...); err != nil {
		return nil, err
	}
	// UpdateVM applies the configuration (and starts or stops the VM)...
	running := prev != nil && prev.Started
	if !reflect.DeepEqual(keyStarted.In(olds), keyStarted.In(nv)) {
		running = g.started // a changed "started" starts or stops it
	}
	keepIface := ""
	if prev != nil {
		keepIface = prev.DiskInterface
	}
	Place(tx, g)
	guest := tx.State.Guests[self]
	guest.Started = running
	// ... then vmUpdateDiskLocationAndSize refuses to remove or shrink a disk.
	moved := []string{}
	for _, iface := range oldOrder {
		od := oldDisks[iface]
		nd, ok := newDisks[iface]
		if !ok {
			guest.DiskInterface = keepIface // the old disk stays
			return nil, &engine.CommittedError{Err: fmt.Errorf("deletion of disks not supported. Please delete disk by hand. Old interface was %q", iface)}
		}
		if nd.datastore != od.datastore {
			moved = append(moved, fmt.Sprintf("disks[%d].datastoreId", nd.index))
		}
		if nd.size < od.size {
			return nil, &engine.CommittedError{Err: fmt.Errorf("Cannot shrink %s:%s in VM %d, it is not supported!",
				od.datastore, fmt.Sprintf("vm-%d-disk-%d", self, od.index), self)}
		}
	}
	template, _ := keyTemplate.In(nv).(bool)
	causes := rebootCauses(olds, nv, vmRebootKeys)
	if len(moved) > 0 && running && !template {
		// A moved disk needs the VM stopped and started: that is the reboot.
		causes = append(causes, moved...)
	}
	if len(causes) > 0 && running && !template {
		tx.Reboot(f, guest, "proxmox update: "+strings.Join(causes, ", "))
	}
	_, agentTimeout := vmAgent(nv)
	return engine.Merge(guestOutputs(g), VMNetwork(s, tx, nv, guest, agentTimeout)), nil
}
