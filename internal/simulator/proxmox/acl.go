package proxmox

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// PvePrivileges are the privileges Proxmox VE 8.2 knows (pve-access-control
// src/PVE/AccessControl.pm:1057-1164, $privgroups and Permissions.Modify):
// what root@pam holds everywhere, and what `pveum role add` accepts.
var PvePrivileges = []string{
	"Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
	"Group.Allocate",
	"Mapping.Audit", "Mapping.Modify", "Mapping.Use",
	"Permissions.Modify",
	"Pool.Allocate", "Pool.Audit",
	"Realm.Allocate", "Realm.AllocateUser",
	"SDN.Allocate", "SDN.Audit", "SDN.Use",
	"Sys.AccessNetwork", "Sys.Audit", "Sys.Console", "Sys.Incoming", "Sys.Modify", "Sys.PowerMgmt", "Sys.Syslog",
	"User.Modify",
	"VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit",
	"VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options",
	"VM.Console", "VM.Migrate", "VM.Monitor", "VM.PowerMgmt", "VM.Snapshot", "VM.Snapshot.Rollback",
}

// normalizeACLPath is normalize_path (AccessControl.pm:1259-1275): no
// repeated or trailing slashes, a leading one.
func normalizeACLPath(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	p = strings.TrimSuffix(p, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// TokenPrivileges is what Proxmox VE 8 answers for the token's effective
// privileges on path (GET /access/permissions?path=…): each privilege held,
// mapped to its propagate flag. A privilege is held when its key is
// present, whatever the flag. A token the World does not list is treated
// as root@pam: every privilege, propagated (RPCEnvironment.pm:139-142).
//
// The evaluation is roles() (AccessControl.pm:1778-1886) for the token's
// own entries: walking from / down to path, the entries on each level that
// apply (those on path itself, and those of a parent that propagate)
// replace whatever was inherited from above; levels with none keep it.
// The privileges are those of the entries that won; a privilege's flag is
// set when any of them propagates (RPCEnvironment.pm:86-96).
func TokenPrivileges(w engine.World, tokenID, path string) map[string]bool {
	acls, ok := w.Tokens[tokenID]
	if !ok {
		out := make(map[string]bool, len(PvePrivileges))
		for _, p := range PvePrivileges {
			out[p] = true
		}
		return out
	}
	path = normalizeACLPath(path)
	levels := []string{"/"}
	if path != "/" {
		parts := strings.Split(path[1:], "/")
		for i := range parts {
			levels = append(levels, "/"+strings.Join(parts[:i+1], "/"))
		}
	}
	var won []engine.ACL
	for i, level := range levels {
		final := i == len(levels)-1
		var here []engine.ACL
		for _, a := range acls {
			if normalizeACLPath(a.Path) == level && (final || a.Propagates()) {
				here = append(here, a)
			}
		}
		if len(here) > 0 {
			won = here // "overwrite previous settings"
		}
	}
	out := map[string]bool{}
	for _, a := range won {
		for _, p := range a.Privileges {
			out[p] = out[p] || a.Propagates()
		}
	}
	return out
}

// CheckTokenACLs refuses privilege names Proxmox does not know (pveum role
// add: "invalid privilege"), so a typo in a test's World fails loudly
// instead of silently denying.
func CheckTokenACLs(w engine.World, tokenID string) error {
	for _, a := range w.Tokens[tokenID] {
		for _, p := range a.Privileges {
			if !slices.Contains(PvePrivileges, p) {
				return fmt.Errorf("simulation world: token %q, ACL on %q: invalid privilege '%s' (Proxmox VE 8 has no such privilege)", tokenID, a.Path, p)
			}
		}
	}
	return nil
}

// check is one permission test of a Proxmox API handler.
type check struct {
	path  string
	privs []string
	// any: one of privs is enough (check_any); the message joins them with
	// "|". Otherwise every one is needed and the first missing is named
	// (check, RPCEnvironment.pm:291-326).
	any bool
	// unless is a privilege on path that passes the check without privs
	// (check_volume_access's Datastore.Allocate, pve-storage Storage.pm:560).
	unless string
	// or: the check passes when one alternative does; a failure names
	// nothing (exec_api2_perm_check 'or', RPCEnvironment.pm:473-478).
	or []check
	// bare: the handler raises raise_perm_exc() without a path
	// (create_vm's VM.Allocate test): "Permission check failed".
	bare bool
}

// failed returns Proxmox's message for the check, or "" when it passes.
func (c check) failed(w engine.World, token string) string {
	if len(c.or) > 0 {
		for _, alt := range c.or {
			if alt.failed(w, token) == "" {
				return ""
			}
		}
		return "Permission check failed"
	}
	held := TokenPrivileges(w, token, c.path)
	has := func(p string) bool { _, ok := held[p]; return ok }
	if c.unless != "" && has(c.unless) {
		return ""
	}
	missing := ""
	if c.any {
		if !slices.ContainsFunc(c.privs, has) {
			missing = strings.Join(c.privs, "|")
		}
	} else {
		for _, p := range c.privs {
			if !has(p) {
				missing = p
				break
			}
		}
	}
	switch {
	case missing == "":
		return ""
	case c.bare:
		return "Permission check failed"
	}
	return fmt.Sprintf("Permission check failed (%s, %s)", c.path, missing)
}

// pveRequest is one request the provider makes: the permission tests its
// handler runs, in order, and how the provider reports a 403.
type pveRequest struct {
	checks []check
	// wrap turns the HTTP error ("received an HTTP 403 response - Reason:
	// …", bpg proxmox/api/errors.go) into the provider's error.
	wrap func(httpErr string) error
}

// TokenID is the token part of the configured apiToken
// ("sda@pve!deploy=<secret>" → "sda@pve!deploy"; Proxmox splits at the
// last "=", AccessControl.pm:487-498). The secret is never kept or shown.
func TokenID(s *engine.Server) string {
	token, _, _ := s.ConfigValue("apiToken")
	if i := strings.LastIndex(token, "="); i > 0 {
		return token[:i]
	}
	return ""
}

// Permit runs the permission tests of calls with the configured token, in
// order, and fails with the first refusal as the provider reports it. No
// token, or one the World does not list, is allowed everything (today's
// behaviour, as root@pam).
func Permit(s *engine.Server, tx *engine.Tx, calls ...pveRequest) error {
	token := TokenID(s)
	if _, listed := tx.World.Tokens[token]; token == "" || !listed {
		return nil
	}
	if err := CheckTokenACLs(tx.World, token); err != nil {
		return err
	}
	for _, c := range calls {
		for _, chk := range c.checks {
			if msg := chk.failed(tx.World, token); msg != "" {
				return c.wrap("received an HTTP 403 response - Reason: " + msg)
			}
		}
	}
	return nil
}

func wrapf(format string, args ...any) func(string) error {
	return func(httpErr string) error {
		return fmt.Errorf(format, append(slices.Clone(args), httpErr)...)
	}
}

// allAttemptsFail is the error of bpg's retry.Do(…, retry.Attempts(n),
// retry.LastErrorOnly(false)) when every attempt failed alike
// (avast/retry-go v4.6.0 retry.go:246-255).
func allAttemptsFail(n int, err string) string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("#%d: %s", i+1, err)
	}
	return "All attempts fail:\n" + strings.Join(lines, "\n")
}

func vmPath(vmid int) string { return "/vms/" + strconv.Itoa(vmid) }

func need(path string, privs ...string) check { return check{path: path, privs: privs} }

// appendNew appends the checks not already in out (Proxmox repeats them;
// the first decides).
func appendNew(out []check, cs ...check) []check {
	for _, c := range cs {
		if !slices.ContainsFunc(out, func(o check) bool {
			return o.path == c.path && slices.Equal(o.privs, c.privs) && o.any == c.any && o.unless == c.unless && len(o.or) == 0 && len(c.or) == 0
		}) {
			out = append(out, c)
		}
	}
	return out
}

// qemuKeyChecks is $check_vm_modify_config_perm (qemu-server
// src/PVE/API2/Qemu.pm:949-996, option tables :744-816) for the given
// configuration keys. Proxmox walks them in hash order; the simulation in
// key order, so with several privileges missing the one named may differ.
func qemuKeyChecks(vmid int, keys []string) []check {
	vm := vmPath(vmid)
	cpu := []string{"cores", "cpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"}
	memory := []string{"balloon", "memory", "shares"}
	hwtype := []string{"acpi", "audio0", "hotplug", "kvm", "machine", "rng0", "scsihw", "smbios1", "tablet", "vga", "watchdog"}
	general := []string{"agent", "autostart", "bios", "description", "keyboard", "localtime", "migrate_downtime",
		"migrate_speed", "name", "onboot", "ostype", "protection", "reboot", "startdate", "startup", "tdf", "template"}
	cloudinit := []string{"cicustom", "cipassword", "citype", "ciupgrade", "ciuser", "nameserver", "searchdomain", "sshkeys"}
	keys = slices.Clone(keys)
	sort.Strings(keys)
	var out []check
	for _, k := range keys {
		switch {
		case k == "tags": // assert_tag_permissions: free with the default user-tag-access
		case slices.Contains(cpu, k) || strings.HasPrefix(k, "numa"):
			out = appendNew(out, need(vm, "VM.Config.CPU"))
		case slices.Contains(memory, k):
			out = appendNew(out, need(vm, "VM.Config.Memory"))
		case slices.Contains(hwtype, k):
			out = appendNew(out, need(vm, "VM.Config.HWType"))
		case slices.Contains(general, k):
			out = appendNew(out, need(vm, "VM.Config.Options"))
			if k == "startup" {
				out = appendNew(out, need("/", "Sys.Modify")) // :970-973
			}
		case k == "boot" || k == "bootdisk" || k == "vmstatestorage":
			out = appendNew(out, need(vm, "VM.Config.Disk"))
		case strings.HasPrefix(k, "net"):
			out = appendNew(out, need(vm, "VM.Config.Network"))
		case slices.Contains(cloudinit, k) || strings.HasPrefix(k, "ipconfig"):
			out = appendNew(out, check{path: vm, privs: []string{"VM.Config.Cloudinit", "VM.Config.Network"}, any: true})
		}
	}
	return out
}

// vmBlockKeys are the configuration keys bpg sends for each top-level
// VM input block that maps to fixed keys (see vmKeys).
var vmBlockKeys = map[string][]string{
	"acpi": {"acpi"}, "agent": {"agent"}, "bios": {"bios"}, "bootOrders": {"boot"},
	"cpu": {"cores", "cpu", "cpuunits", "numa", "sockets"}, "memory": {"balloon", "memory"},
	"keyboardLayout": {"keyboard"}, "protection": {"protection"}, "operatingSystem": {"ostype"},
	"scsiHardware": {"scsihw"}, "onBoot": {"onboot"}, "tabletDevice": {"tablet"}, "template": {"template"},
	"vga": {"vga"}, "name": {"name"}, "description": {"description"}, "machine": {"machine"},
	"startup": {"startup"}, "tags": {"tags"}, "audioDevice": {"audio0"}, "watchdog": {"watchdog"},
	"smbios": {"smbios1"},
}

// vmKeys are the configuration keys bpg v0.69.1 sends for the VM's
// top-level inputs blocks (vmCreateCustom's createBody, vm.go:2656-2754;
// vmUpdate's updateBody, vm.go:4803-5366; the request's url tags,
// proxmox/nodes/vms/vms_types.go).
func vmKeys(v map[string]any, blocks []string) []string {
	var out []string
	for _, b := range blocks {
		out = append(out, vmBlockKeys[b]...)
		switch b {
		case "networkDevices":
			for i := range engine.List(v, b) {
				out = append(out, fmt.Sprintf("net%d", i))
			}
		case "numas":
			for i := range engine.List(v, b) {
				out = append(out, fmt.Sprintf("numa%d", i))
			}
		case "initialization":
			out = append(out, cloudInitKeys(v)...)
		}
	}
	return out
}

// cloudInitKeys are what CustomCloudInitConfig.EncodeValues sends
// (proxmox/nodes/vms/custom_cloud_init.go:50-130).
func cloudInitKeys(v map[string]any) []string {
	var out []string
	for i := range keyInitializationIPConfigs.In(v) {
		out = append(out, fmt.Sprintf("ipconfig%d", i))
	}
	if len(keyInitializationDNSServers.In(v)) > 0 || keyInitializationDNSServer.In(v) != "" {
		out = append(out, "nameserver")
	}
	if keyInitializationDNSDomain.In(v) != "" {
		out = append(out, "searchdomain")
	}
	if keyInitializationUserAccount.In(v) != nil {
		out = append(out, "ciuser", "cipassword", "sshkeys")
	}
	for _, k := range []engine.Key[string]{keyInitializationUserDataFileID, keyInitializationVendorDataFileID,
		keyInitializationNetworkDataFileID, keyInitializationMetaDataFileID} {
		if k.In(v) != "" {
			out = append(out, "cicustom")
			break
		}
	}
	if keyInitializationType.In(v) != "" {
		out = append(out, "citype")
	}
	return out
}

// vmCreateBlocks are the blocks createBody always carries, and those it
// carries when set.
func vmCreateBlocks(v map[string]any) []string {
	out := []string{"acpi", "agent", "bios", "bootOrders", "cpu", "memory", "keyboardLayout", "protection",
		"operatingSystem", "scsiHardware", "onBoot", "tabletDevice", "template", "vga"}
	for _, b := range []string{"name", "description", "machine"} {
		if engine.Str(v, b) != "" {
			out = append(out, b)
		}
	}
	for _, b := range []string{"tags", "networkDevices", "audioDevice", "numas"} {
		if len(engine.List(v, b)) > 0 {
			out = append(out, b)
		}
	}
	for _, b := range []string{"startup", "initialization", "watchdog", "smbios"} {
		if engine.Get(v, b) != nil {
			out = append(out, b)
		}
	}
	return out
}

// NICChecks is check_vnet_access (pve-guest-common
// src/PVE/GuestHelpers.pm:393-417) for every NIC of key: SDN.Use on
// /sdn/zones/<zone>/<bridge>, where the zone is the VNet's in the edited
// SDN configuration (Vnets::config(), not the running one) and
// localnetwork for a plain bridge; with a VLAN tag or trunks only
// …/<bridge>/<tag> (a grant on the bridge reaches it by propagation).
func NICChecks(tx *engine.Tx, nics []any) []check {
	var out []check
	for _, e := range nics {
		nic := asObject(e)
		bridge := keyBridge.In(nic)
		if bridge == "" {
			bridge = "vmbr0"
		}
		zone := "localnetwork"
		if vn := tx.State.SDN.VNets[bridge]; vn != nil {
			zone = vn.Zone
		}
		base := "/sdn/zones/" + zone + "/" + bridge
		tag, trunks := keyVLANID.In(nic), keyTrunks.In(nic)
		if tag != 0 {
			out = append(out, need(base+"/"+strconv.Itoa(tag), "SDN.Use"))
		}
		if trunks != "" {
			var tags []string
			for _, t := range strings.Split(trunks, ";") {
				from, to, _ := strings.Cut(t, "-")
				a, _ := strconv.Atoi(from)
				b, _ := strconv.Atoi(to)
				if b <= a {
					b = a
				}
				for n := a; n <= b; n++ {
					tags = append(tags, strconv.Itoa(n))
				}
			}
			sort.Strings(tags) // Perl's sort keys: as strings
			for _, t := range slices.Compact(tags) {
				out = append(out, need(base+"/"+t, "SDN.Use"))
			}
		}
		if tag == 0 && trunks == "" {
			out = append(out, need(base, "SDN.Use"))
		}
	}
	return out
}

func datastoreOf(v map[string]any, key engine.Key[string], def string) string {
	if ds := key.In(v); ds != "" {
		return ds
	}
	return def
}

// resizeCall is PUT …/resize (qemu-server Qemu.pm:5697-5704 VM.Config.Disk
// on the VM, :5783 Datastore.AllocateSpace on the volume's storage), as
// ResizeVMDisk reports it (proxmox/nodes/vms/vms.go:317-356).
func resizeCall(vmid int, ds, prefix string) pveRequest {
	return pveRequest{
		checks: []check{need(vmPath(vmid), "VM.Config.Disk"), need("/storage/"+ds, "Datastore.AllocateSpace")},
		wrap: func(e string) error {
			return fmt.Errorf("%serror waiting for VM disk resize: %s", prefix, allAttemptsFail(1, "error moving VM disk: "+e))
		},
	}
}

func powerCall(vmid int, format string) pveRequest {
	return pveRequest{checks: []check{need(vmPath(vmid), "VM.PowerMgmt")}, wrap: wrapf(format)}
}

// VMCreateCalls is the create POST (qemu-server Qemu.pm create_vm,
// :1245-1303): VM.Allocate on the VM (a failure names nothing, :1260),
// Datastore.AllocateSpace for every new blank disk (:177-183; disks with a
// fileId are imported over SSH afterwards and the cloud-init drive
// "<ds>:cloudinit" is not checked, :167-171), the configuration keys
// (:1294), then SDN.Use for each NIC (:1303). bpg retries the POST three
// times (vms.go:80-113, LastErrorOnly(false)).
func VMCreateCalls(tx *engine.Tx, g guestSpec, v map[string]any) []pveRequest {
	checks := []check{{path: vmPath(g.vmid), privs: []string{"VM.Allocate"}, bare: true}}
	for _, e := range keyDisks.In(v) {
		disk := asObject(e)
		if keyFileID.In(disk) == "" {
			checks = appendNew(checks, need("/storage/"+datastoreOf(disk, keyDatastoreID, "local-lvm"), "Datastore.AllocateSpace"))
		}
	}
	checks = appendNew(checks, qemuKeyChecks(g.vmid, vmKeys(v, vmCreateBlocks(v)))...)
	checks = append(checks, NICChecks(tx, keyNetworkDevices.In(v))...)
	return []pveRequest{{checks: checks, wrap: func(e string) error { return fmt.Errorf("error creating VM: %s", allAttemptsFail(3, e)) }}}
}

// vmAfterCreateCalls follow the SSH import: each imported disk is resized
// to its size (disk.go:319-365), then a started VM is started
// (vmCreateStart, vm.go:2771-2815; vm_start needs VM.PowerMgmt,
// Qemu.pm:3396).
func vmAfterCreateCalls(g guestSpec, v map[string]any) []pveRequest {
	var calls []pveRequest
	for _, e := range keyDisks.In(v) {
		disk := asObject(e)
		if keyFileID.In(disk) != "" {
			calls = append(calls, resizeCall(g.vmid, datastoreOf(disk, keyDatastoreID, "local-lvm"), "resizing disk: "))
		}
	}
	if template, _ := keyTemplate.In(v).(bool); g.started && !template {
		calls = append(calls, powerCall(g.vmid, "error starting VM: %s"))
	}
	return calls
}

// VMUpdateCalls are the requests of vmUpdate (bpg vm.go:4743-5398,
// 5399-5621) for a change from olds to news, after disk.Update's SSH
// imports: a new disk with a fileId is resized (disk.go Update); the
// configuration PUT carries the changed blocks (Qemu.pm update_vm:
// :2105-2113 key privileges, storage for new blank disks, SDN.Use of the
// new NICs; then :2174-2190 drive privileges, every disk being re-sent
// when disks change and the cloud-init drive when initialization does;
// :2398-2406 SDN.Use of each NIC's old bridge); a changed `started`
// starts or shuts down the VM; a disk on another datastore is moved
// (shutdown, move_vm_disk :4636 and :5055); a grown disk is resized; a
// running VM that needs it is rebooted (:3867).
func VMUpdateCalls(tx *engine.Tx, vmid int, olds, news map[string]any) []pveRequest {
	changed := engine.TopKeys(engine.ChangedPaths(olds, news))
	var calls []pveRequest
	oldDisks, oldOrder := vmDisks(olds)
	newDisks, newOrder := vmDisks(news)
	for _, iface := range newOrder {
		d := newDisks[iface]
		if _, ok := oldDisks[iface]; !ok && keyFileID.In(engine.Elem(keyDisks.In(news), d.index)) != "" {
			calls = append(calls, resizeCall(vmid, d.datastore, "creating custom disk: resizing disk: "))
		}
	}
	vm := vmPath(vmid)
	checks := qemuKeyChecks(vmid, vmKeys(news, changed))
	if slices.Contains(changed, "networkDevices") {
		checks = appendNew(checks, need(vm, "VM.Config.Network")) // net<N> deleted beyond the list
	}
	disksChanged := slices.Contains(changed, "disks")
	if disksChanged {
		for _, iface := range newOrder {
			d := newDisks[iface]
			if _, ok := oldDisks[iface]; !ok && keyFileID.In(engine.Elem(keyDisks.In(news), d.index)) == "" {
				checks = appendNew(checks, need("/storage/"+d.datastore, "Datastore.AllocateSpace"))
			}
		}
	}
	netChanged := slices.Contains(changed, "networkDevices")
	if netChanged {
		checks = append(checks, NICChecks(tx, keyNetworkDevices.In(news))...)
	}
	if disksChanged {
		checks = appendNew(checks, need(vm, "VM.Config.Disk"))
	}
	if slices.Contains(changed, "initialization") && len(cloudInitKeys(news)) > 0 {
		checks = appendNew(checks, need(vm, "VM.Config.Cloudinit", "VM.Config.CDROM"))
	}
	if netChanged {
		checks = append(checks, NICChecks(tx, keyNetworkDevices.In(olds))...)
	}
	calls = append(calls, pveRequest{checks: checks, wrap: wrapf("error updating VM: %s")})

	template, _ := keyTemplate.In(news).(bool)
	prev := tx.State.Guests[vmid]
	running := prev != nil && prev.Started
	started, ok := keyStarted.In(news).(bool)
	if !ok {
		started = true
	}
	if slices.Contains(changed, "started") && !template {
		running = started
		if started {
			calls = append(calls, powerCall(vmid, "error starting VM: %s"))
		} else {
			calls = append(calls, powerCall(vmid, "error shutting down VM: %s"))
		}
	}
	var moves, resizes []pveRequest
	for _, iface := range oldOrder {
		od, nd := oldDisks[iface], newDisks[iface]
		if _, ok := newDisks[iface]; !ok {
			continue
		}
		if nd.datastore != od.datastore {
			moves = append(moves, pveRequest{
				checks: []check{need(vm, "VM.Config.Disk"), need("/storage/"+nd.datastore, "Datastore.AllocateSpace")},
				wrap:   wrapf("error moving VM disk: %s"),
			})
		}
		if nd.size > od.size {
			resizes = append(resizes, resizeCall(vmid, nd.datastore, ""))
		}
	}
	if len(moves) > 0 && !template {
		calls = append(calls, powerCall(vmid, "error shutting down VM: %s"))
	}
	calls = append(append(calls, moves...), resizes...)
	if len(moves) > 0 && started && !template {
		calls = append(calls, powerCall(vmid, "error starting VM: %s"))
	} else if len(rebootCauses(olds, news, vmRebootKeys)) > 0 && running && !template {
		calls = append(calls, powerCall(vmid, "error rebooting VM: %s"))
	}
	return calls
}

// LXCKeyChecks is check_ct_modify_config_perm (pve-container
// src/PVE/LXC.pm:1507-1608) for the keys of newConf (old: the NICs before
// an update). Proxmox walks the keys in hash order, the simulation sorted.
func LXCKeyChecks(tx *engine.Tx, vmid int, keys []string, news, olds map[string]any) []check {
	vm := vmPath(vmid)
	keys = slices.Clone(keys)
	sort.Strings(keys)
	var out []check
	for _, k := range keys {
		switch {
		case k == "cores" || k == "cpuunits" || k == "cpulimit":
			out = appendNew(out, need(vm, "VM.Config.CPU"))
		case k == "rootfs":
			out = appendNew(out, need(vm, "VM.Config.Disk"),
				need("/storage/"+datastoreOf(news, keyDiskDatastoreID, "local"), "Datastore.AllocateSpace")) // :1524-1526
		case strings.HasPrefix(k, "mp"):
			out = appendNew(out, need(vm, "VM.Config.Disk"))
		case k == "memory" || k == "swap":
			out = appendNew(out, need(vm, "VM.Config.Memory"))
		case strings.HasPrefix(k, "net"):
			i, _ := strconv.Atoi(k[3:])
			out = appendNew(out, need(vm, "VM.Config.Network"))
			one := func(v map[string]any) []check {
				if i >= len(keyNetworkInterfaces.In(v)) {
					return nil
				}
				return NICChecks(tx, []any{engine.Elem(keyNetworkInterfaces.In(v), i)})
			}
			out = append(out, one(olds)...) // :1536, the old bridge first
			out = append(out, one(news)...)
		case k == "hostname" || k == "nameserver" || k == "searchdomain":
			out = appendNew(out, need(vm, "VM.Config.Network"))
		case k == "features":
			// Nesting on an unprivileged container (:1546-1587); other flags
			// and privileged containers are CheckContainerFeatures' rule.
			out = appendNew(out, need(vm, "VM.Allocate"))
		case k == "tags":
		default:
			out = appendNew(out, need(vm, "VM.Config.Options"))
		}
	}
	return out
}

// containerBlockKeys are the configuration keys bpg sends for each
// top-level container input block that maps to fixed keys (see
// containerKeys).
var containerBlockKeys = map[string][]string{
	"console": {"cmode", "console", "tty"}, "cpu": {"arch", "cores", "cpuunits"}, "memory": {"memory", "swap"},
	"operatingSystem": {"ostype"}, "protection": {"protection"}, "startOnBoot": {"onboot"}, "startup": {"startup"},
	"template": {"template"}, "description": {"description"}, "tags": {"tags"}, "features": {"features"},
}

// containerKeys are the keys bpg's container create and update bodies
// carry for the given top-level blocks (container.go:1713-1773,
// 2641-3060; proxmox/nodes/containers/containers_types.go).
func containerKeys(v map[string]any, blocks []string) []string {
	var out []string
	for _, b := range blocks {
		out = append(out, containerBlockKeys[b]...)
		switch b {
		case "disk":
			out = append(out, "rootfs")
		case "mountPoints":
			for i := range engine.List(v, b) {
				out = append(out, fmt.Sprintf("mp%d", i))
			}
		case "networkInterfaces":
			for i := range engine.List(v, b) {
				out = append(out, fmt.Sprintf("net%d", i))
			}
		case "initialization":
			if keyInitializationHostname.In(v) != "" {
				out = append(out, "hostname")
			}
			if keyInitializationDNSDomain.In(v) != "" {
				out = append(out, "searchdomain")
			}
			if len(keyInitializationDNSServers.In(v)) > 0 || keyInitializationDNSServer.In(v) != "" {
				out = append(out, "nameserver")
			}
		}
	}
	return out
}

// ContainerCreateCalls is the create POST (pve-container
// src/PVE/API2/LXC.pm create_vm): VM.Allocate on the container (a failure
// names nothing, :276-300), the configuration keys (:306), read access to
// the template (check_volume_access, :322; pve-storage Storage.pm:549-566:
// Datastore.Allocate, else Datastore.AllocateSpace or Datastore.Audit),
// Datastore.AllocateSpace for the root disk's storage (:338). The start
// that follows (`start` in the body) runs inside the create task, whose
// direct method call checks no privilege (:612-613); bpg then finds it
// running (containers.go StartContainer).
func ContainerCreateCalls(tx *engine.Tx, g guestSpec, v map[string]any) []pveRequest {
	blocks := []string{"console", "cpu", "memory", "operatingSystem", "protection", "disk", "startOnBoot", "template",
		"networkInterfaces", "mountPoints", "initialization"}
	for _, b := range []string{"features", "startup", "description", "tags"} {
		if engine.Get(v, b) != nil {
			blocks = append(blocks, b)
		}
	}
	checks := []check{{path: vmPath(g.vmid), privs: []string{"VM.Allocate"}, bare: true}}
	checks = appendNew(checks, LXCKeyChecks(tx, g.vmid, containerKeys(v, blocks), v, nil)...)
	if g.template != "" {
		sid, _, _ := strings.Cut(g.template, ":")
		checks = appendNew(checks, check{path: "/storage/" + sid, privs: []string{"Datastore.AllocateSpace", "Datastore.Audit"},
			any: true, unless: "Datastore.Allocate"})
	}
	checks = appendNew(checks, need("/storage/"+datastoreOf(v, keyDiskDatastoreID, "local"), "Datastore.AllocateSpace"))
	return []pveRequest{{checks: checks, wrap: wrapf("error creating container: %s")}}
}

// ContainerUpdateCalls are containerUpdate's requests (container.go
// 2641-3116): the configuration PUT (update_vm, LXC.pm:2191, the same key
// privileges; the description is always sent, and the NICs whenever
// initialization or networkInterfaces change), a start or shutdown when
// `started` changed, and a reboot of a started container that needs it
// (LXC/Status.pm:127, :324, :512: VM.PowerMgmt).
func ContainerUpdateCalls(tx *engine.Tx, vmid int, olds, news map[string]any) []pveRequest {
	changed := engine.TopKeys(engine.ChangedPaths(olds, news))
	blocks := []string{"description"}
	for _, b := range changed {
		// What containerUpdate sends for a change (no onboot, no disk).
		if slices.Contains([]string{"template", "console", "cpu", "features", "initialization", "memory",
			"mountPoints", "startup", "operatingSystem", "protection", "tags"}, b) {
			blocks = append(blocks, b)
		}
	}
	if slices.Contains(changed, "initialization") || slices.Contains(changed, "networkInterfaces") {
		blocks = append(blocks, "networkInterfaces")
	}
	keys := containerKeys(news, blocks)
	if slices.Contains(blocks, "networkInterfaces") {
		for i := len(keyNetworkInterfaces.In(news)); i < len(keyNetworkInterfaces.In(olds)); i++ {
			keys = append(keys, fmt.Sprintf("net%d", i)) // deleted: Network and the old bridge
		}
	}
	calls := []pveRequest{{checks: LXCKeyChecks(tx, vmid, keys, news, olds), wrap: wrapf("error updating container: %s")}}
	template, _ := keyTemplate.In(news).(bool)
	started, ok := keyStarted.In(news).(bool)
	if !ok {
		started = true
	}
	if slices.Contains(changed, "started") && !template {
		if started {
			calls = append(calls, powerCall(vmid, "error starting container: error starting container: %s"))
		} else {
			calls = append(calls, powerCall(vmid, "error shutting down container: %s"))
		}
	}
	if len(rebootCauses(olds, news, containerRebootKeys)) > 0 && started && !template {
		calls = append(calls, powerCall(vmid, "error rebooting container: %s"))
	}
	return calls
}

// downloadCalls are download.File's requests (fwprovider
// resource_download_file.go:360-440): query-url-metadata (pve-manager
// PVE/API2/Nodes.pm:1824-1829) and download-url (pve-storage
// src/PVE/API2/Storage/Status.pm:653-666), both wanting Sys.Audit and
// Sys.Modify on / or Sys.AccessNetwork on the node (an 'or': a failure
// names nothing); download-url first Datastore.AllocateTemplate on the
// storage. bpg prints the metadata request's URL pointer with %+v
// (proxmox/nodes/query_url_metadata.go:26): an address, not the URL.
func downloadCalls(node, ds, fileName string) []pveRequest {
	netCheck := check{or: []check{need("/", "Sys.Audit", "Sys.Modify"), need("/nodes/"+node, "Sys.AccessNetwork")}}
	return []pveRequest{
		{checks: []check{netCheck}, wrap: wrapf("Error initiating file download: Could not get file metadata, " +
			"unexpected error: error retrieving URL metadata for 0xc000a1c0b0: %s")},
		{checks: []check{need("/storage/"+ds, "Datastore.AllocateTemplate"), netCheck},
			wrap: wrapf("Error downloading file from url: Could not download file '%s', unexpected error: error download file by URL: %s", fileName)},
	}
}

// networkCalls are the interface create or update of the bridge and VLAN
// resources (fwprovider/network/resource_linux_bridge.go:279-285,
// :401-407; resource_linux_vlan.go:252-257, :350-355;
// proxmox/nodes/network.go:55-133): Sys.Modify on the node (pve-manager
// PVE/API2/Network.pm:568, :662; the reload that follows, :823, needs the
// same).
func networkCalls(verb, what, node, iface string) []pveRequest {
	title := map[string]string{"create": "creating", "update": "updating"}[verb]
	return []pveRequest{{
		checks: []check{need("/nodes/"+node, "Sys.Modify")},
		wrap: wrapf("Error %s Linux %s interface: Could not %s Linux %s, unexpected error: failed to %s network interface %q for node %q: %s",
			title, what, verb, what, verb, iface, node),
	}}
}
