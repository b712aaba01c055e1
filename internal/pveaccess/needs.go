// Package pveaccess knows which Proxmox VE 8 privileges SDA's API token
// needs, on which ACL paths, and checks a token against that list.
//
// Needs derives the list from a stack's configuration: what SDA does
// through the Proxmox API (the bpg provider v0.69.1 behind proxmoxve
// v6.18.1) on which node, datastore, bridge or VNet and guest. Client reads
// what a token really holds from GET /access/permissions, and Missing
// compares the two and says, for each gap, the pveum command that closes
// it. Recipe writes the whole pveum set-up. docs/proxmox-privileges.md
// explains every privilege with the upstream code that checks it.
//
// What SDA does over SSH as root (the VXLAN zone and VNet with pvesh, the
// disk import with qm, pct exec into the router) needs no privilege of the
// token and is not listed.
//
// Only the standard library and the repository's pure config package are
// imported, so the package tests in milliseconds; nothing here prints or
// logs the token's secret.
package pveaccess

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sda-platform/sda/config"
)

// Roles SDA's set-up creates, one per kind of ACL path, so that each path
// gets exactly the privileges needed there: one role granted everywhere
// would also hand out, for example, Datastore.Allocate on the disk
// datastore.
const (
	// RoleGuest is granted on /vms/<id> of every VM and of the router
	// container.
	RoleGuest = "SDAGuest"
	// RoleDisk is granted on /storage/<datastore> (disks).
	RoleDisk = "SDADisk"
	// RoleImage is granted on /storage/<imageDatastore> (downloads).
	RoleImage = "SDAImage"
	// RoleDownload is granted on /nodes/<node> of every node that downloads.
	RoleDownload = "SDADownload"
	// RoleBridge is granted on /nodes/<node> where SDA creates the bridge.
	RoleBridge = "SDABridge"
	// RoleNet is granted on the SDN path of every bridge or VNet a guest
	// NIC is attached to.
	RoleNet = "SDANet"
)

// Roles lists the roles in the order Recipe creates them.
var Roles = []string{RoleGuest, RoleDisk, RoleImage, RoleDownload, RoleBridge, RoleNet}

// Grant is one privilege on one ACL path.
type Grant struct {
	Path      string
	Privilege string
}

// Need is one privilege SDA's token must hold on one ACL path.
type Need struct {
	// Path is the ACL path Proxmox checks, e.g. /vms/8011.
	Path string
	// Privilege is the privilege's name, e.g. VM.Allocate.
	Privilege string
	// Role is the SDA role (Roles) that carries Privilege on Path.
	Role string
	// Why says what SDA does that needs it, and where upstream checks it.
	Why string
	// Instead, when set, is what Proxmox accepts in place of Privilege on
	// Path: the need is met when every grant in it is held.
	Instead []Grant
}

// String is the need in one line.
func (n Need) String() string {
	return fmt.Sprintf("%s on %s: %s", n.Privilege, n.Path, n.Why)
}

// SDN zone of plain Linux bridges: check_vnet_access
// (pve-guest-common src/PVE/GuestHelpers.pm) checks a bridge that is not an
// SDN VNet at /sdn/zones/localnetwork/<bridge>.
const localZone = "localnetwork"

// bridgePath is the ACL path that guards attaching a NIC to bridge with
// VLAN tag vlan (0: untagged). A tagged NIC is checked on the tag's own
// path only, which a grant on the bridge reaches when it propagates.
func bridgePath(zone, bridge string, vlan int) string {
	p := "/sdn/zones/" + zone + "/" + bridge
	if vlan > 0 {
		p += fmt.Sprintf("/%d", vlan)
	}
	return p
}

// What each guest needs on /vms/<id>. The privileges and the API fields
// they guard: qemu-server src/PVE/API2/Qemu.pm ($check_vm_modify_config_perm
// and its option tables, create_vm, update_vm's $check_drive_perms,
// resize_vm, vm_start/vm_stop/vm_shutdown/vm_reboot, vm_config, vm_status,
// destroy_vm) and src/PVE/API2/Qemu/Agent.pm; pve-container
// src/PVE/LXC.pm check_ct_modify_config_perm and src/PVE/API2/LXC.pm
// create_vm and destroy_vm.
var (
	vmNeeds = []struct{ priv, why string }{
		{"VM.Allocate", "create the VM (POST /nodes/{node}/qemu) and destroy it (DELETE /nodes/{node}/qemu/{vmid})"},
		{"VM.Audit", "read the VM's configuration and status, and find it in GET /cluster/resources: without it the provider takes the VM for deleted"},
		{"VM.Config.CPU", "set cores, CPU type and NUMA"},
		{"VM.Config.Memory", "set memory"},
		{"VM.Config.Disk", "set the boot order, grow the imported disk (PUT .../resize) and read the disk volume's attributes on refresh"},
		{"VM.Config.Network", "attach the NIC (net0: bridge, fixed MAC, MTU)"},
		{"VM.Config.Cloudinit", "set the cloud-init address, gateway and DNS (ipconfig0, nameserver, searchdomain)"},
		{"VM.Config.CDROM", "change the cloud-init drive (Proxmox wants both VM.Config.Cloudinit and VM.Config.CDROM for that)"},
		{"VM.Config.HWType", "set the SCSI controller and other hardware (scsihw, tablet, acpi, vga)"},
		{"VM.Config.Options", "set name, description, tags, QEMU agent, start at boot, OS type"},
		{"VM.PowerMgmt", "start the VM, and stop, shut down or reboot it (updates of CPU, memory, NIC or cloud-init reboot it; it is stopped before it is destroyed)"},
		{"VM.Monitor", "ask the QEMU guest agent for the VM's addresses on every refresh (GET .../agent/network-get-interfaces; VM.Monitor in Proxmox VE 8)"},
	}
	ctNeeds = []struct{ priv, why string }{
		{"VM.Allocate", "create the router container (POST /nodes/{node}/lxc; also what an unprivileged container with nesting needs) and destroy it"},
		{"VM.Audit", "read the container's configuration and status"},
		{"VM.Config.CPU", "set cores"},
		{"VM.Config.Memory", "set memory and swap"},
		{"VM.Config.Disk", "create the root disk (rootfs)"},
		{"VM.Config.Network", "attach both NICs, and set hostname and DNS servers"},
		{"VM.Config.Options", "set description, tags, start at boot, OS type and unprivileged"},
		{"VM.PowerMgmt", "start, shut down and reboot the container"},
	}
)

// collector keeps needs in first-seen order and merges a (path, privilege)
// asked for twice into one need with both reasons.
type collector struct {
	needs []Need
	index map[Grant]int
}

func (c *collector) add(n Need) {
	if c.index == nil {
		c.index = map[Grant]int{}
	}
	k := Grant{n.Path, n.Privilege}
	if i, ok := c.index[k]; ok {
		old := &c.needs[i]
		if !strings.Contains(old.Why, n.Why) {
			old.Why += "; " + n.Why
		}
		if !slices.Equal(old.Instead, n.Instead) {
			old.Instead = nil // only what every reason accepts
		}
		return
	}
	c.index[k] = len(c.needs)
	c.needs = append(c.needs, n)
}

// Needs is every privilege SDA's API token needs to deploy, update and
// destroy the stack c, by ACL path: the Proxmox nodes that download or get
// a bridge, the two datastores, the bridges and VNets guests attach to,
// and every guest's /vms/<id>. c gets its defaults and is validated
// (config.Resolve) first.
func Needs(c config.Config) ([]Need, error) {
	c, p, err := config.Resolve(c)
	if err != nil {
		return nil, err
	}
	var col collector
	images := c.Proxmox.ImageDatastore
	disks := c.Proxmox.Datastore

	// Downloads: the router's template on the router's node, the Talos
	// image on every node with a Talos VM (on the first only when the image
	// datastore is shared), as in components/router_lxc.go and
	// components/talos_cluster.go.
	var imageNodes []string
	for _, m := range p.Machines() {
		if !slices.Contains(imageNodes, m.ProxmoxNode) {
			imageNodes = append(imageNodes, m.ProxmoxNode)
		}
	}
	if c.Proxmox.SharedImageDatastore && len(imageNodes) > 1 {
		imageNodes = imageNodes[:1]
	}
	var downloadNodes []string // in configuration order
	for _, n := range p.ProxmoxNodesUsed() {
		if n == p.RouterNode || slices.Contains(imageNodes, n) {
			downloadNodes = append(downloadNodes, n)
		}
	}
	for _, n := range downloadNodes {
		var what []string
		if slices.Contains(imageNodes, n) {
			what = append(what, "the Talos image")
		}
		if n == p.RouterNode {
			what = append(what, "the router's LXC template")
		}
		col.add(Need{Path: "/nodes/" + n, Privilege: "Sys.AccessNetwork", Role: RoleDownload,
			Why:     "download " + strings.Join(what, " and ") + " from a URL on this node: POST /nodes/{node}/storage/{storage}/download-url (pve-storage src/PVE/API2/Storage/Status.pm) after GET /nodes/{node}/query-url-metadata (pve-manager PVE/API2/Nodes.pm); Proxmox VE 8.0 and early 8.1 want Sys.Audit and Sys.Modify on / instead",
			Instead: []Grant{{"/", "Sys.Audit"}, {"/", "Sys.Modify"}}})
	}

	// Network: bridges SDA creates (modes bridge and vlan), on every node
	// the internal network spans.
	nw := p.Network
	if nw.Mode == config.ModeBridge || nw.Mode == config.ModeVLAN {
		what := "create, update and delete the internal bridge " + nw.Bridge
		if nw.Mode == config.ModeVLAN && nw.VLAN != nil {
			what += " and its VLAN port " + nw.VLAN.Interface
		}
		for _, n := range nw.Nodes {
			col.add(Need{Path: "/nodes/" + n, Privilege: "Sys.Modify", Role: RoleBridge,
				Why: what + " on this node and reload its network: POST/PUT/DELETE /nodes/{node}/network (pve-manager PVE/API2/Network.pm)"})
		}
	}

	// Datastores.
	col.add(Need{Path: "/storage/" + images, Privilege: "Datastore.AllocateTemplate", Role: RoleImage,
		Why: "download the Talos image (content iso) and the LXC template (content vztmpl) into this datastore (download-url, pve-storage src/PVE/API2/Storage/Status.pm)"})
	col.add(Need{Path: "/storage/" + images, Privilege: "Datastore.Audit", Role: RoleImage,
		Why: "list the datastore to read the downloads back (GET .../storage/{storage}/content, pve-storage src/PVE/API2/Storage/Content.pm), and use the template for the container (check_volume_access, pve-storage src/PVE/Storage.pm)"})
	col.add(Need{Path: "/storage/" + images, Privilege: "Datastore.Allocate", Role: RoleImage,
		Why: "delete a download when the stack is destroyed or a new Talos version, schematic or template replaces it (DELETE .../content/{volume}, pve-storage src/PVE/API2/Storage/Content.pm)"})
	col.add(Need{Path: "/storage/" + disks, Privilege: "Datastore.AllocateSpace", Role: RoleDisk,
		Why: "allocate the router's root disk and grow every VM's imported disk (pve-container src/PVE/API2/LXC.pm create_vm, qemu-server src/PVE/API2/Qemu.pm resize_vm)"})
	col.add(Need{Path: "/storage/" + disks, Privilege: "Datastore.Audit", Role: RoleDisk,
		Why: "read a VM disk volume's attributes on refresh (GET .../content/{volume}: check_volume_access, pve-storage src/PVE/Storage.pm)"})

	// Guest NICs: SDN.Use on the bridge or VNet (check_vnet_access,
	// pve-guest-common src/PVE/GuestHelpers.pm), for every user but
	// root@pam, tokens of root@pam included.
	ext := c.Network.External
	col.add(Need{Path: bridgePath(localZone, ext.Bridge, ext.VLAN), Privilege: "SDN.Use", Role: RoleNet,
		Why: "attach the router's external NIC to " + describeBridge(ext.Bridge, ext.VLAN) + " (check_vnet_access, pve-guest-common src/PVE/GuestHelpers.pm)"})
	if nw.Mode == config.ModeVXLAN && nw.VXLAN != nil {
		col.add(Need{Path: bridgePath(nw.VXLAN.Zone, nw.VXLAN.VNet, 0), Privilege: "SDN.Use", Role: RoleNet,
			Why: "attach the router's internal NIC and every VM's NIC to the VNet " + nw.VXLAN.VNet + " of SDN zone " + nw.VXLAN.Zone + " (check_vnet_access, pve-guest-common src/PVE/GuestHelpers.pm)"})
	} else {
		why := "attach the router's internal NIC and every VM's NIC to the bridge " + nw.Bridge + " (check_vnet_access, pve-guest-common src/PVE/GuestHelpers.pm)"
		if nw.Mode == config.ModeBridge || nw.Mode == config.ModeVLAN {
			why += ", and find the bridge SDA created in GET /nodes/{node}/network, which hides bridges without SDN.Use or SDN.Audit (pve-manager PVE/API2/Network.pm)"
		}
		col.add(Need{Path: bridgePath(localZone, nw.Bridge, 0), Privilege: "SDN.Use", Role: RoleNet, Why: why})
	}

	guestNeeds(&col, c, p)
	return col.needs, nil
}

// guestNeeds are the guests' privileges on their VM IDs: every Talos VM's,
// and the router containers' (the router's, and a pair's second router's).
func guestNeeds(col *collector, c config.Config, p config.Plan) {
	for _, m := range p.Machines() {
		path := fmt.Sprintf("/vms/%d", m.VMID)
		for _, v := range vmNeeds {
			col.add(Need{Path: path, Privilege: v.priv, Role: RoleGuest, Why: fmt.Sprintf("VM %s: %s", m.Hostname, v.why)})
		}
	}
	routers := map[int]string{p.RouterVMID: c.Router.Hostname}
	if pr := p.RouterPair; pr != nil {
		routers[pr.Routers[1].VMID] = pr.Routers[1].Hostname
	}
	for _, vmid := range slices.Sorted(maps.Keys(routers)) {
		path := fmt.Sprintf("/vms/%d", vmid)
		for _, v := range ctNeeds {
			col.add(Need{Path: path, Privilege: v.priv, Role: RoleGuest, Why: fmt.Sprintf("router container %s: %s", routers[vmid], v.why)})
		}
	}
}

func describeBridge(bridge string, vlan int) string {
	if vlan > 0 {
		return fmt.Sprintf("the bridge %s, VLAN %d", bridge, vlan)
	}
	return "the bridge " + bridge
}
