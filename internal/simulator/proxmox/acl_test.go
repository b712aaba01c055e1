package proxmox_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// The simulated proxmoxve provider refuses what Proxmox VE 8 refuses to
// the configured API token (acl.go; docs/simulation.md, "Privileges" rows).

const (
	aclToken  = "sda@pve!deploy"
	aclSecret = "0c5b3e9e-secret-never-shown"
)

// sdaGuest is the guest role of docs/proxmox-privileges.md's recipe.
var sdaGuest = []string{"VM.Allocate", "VM.Audit", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit",
	"VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.Monitor",
	"VM.PowerMgmt"}

// recipeACLs grant what SDA needs on node pve1: VM 8011 on the VXLAN VNet
// vprod of zone zprod, the router 8001 on vmbr0 and vmbr1, downloads to
// local, disks on local-lvm, bridges.
func recipeACLs() []engine.ACL {
	return []engine.ACL{
		{Path: "/nodes/pve1", Privileges: []string{"Sys.AccessNetwork", "Sys.Modify"}},
		{Path: "/storage/local", Privileges: []string{"Datastore.Allocate", "Datastore.AllocateTemplate", "Datastore.Audit"}},
		{Path: "/storage/local-lvm", Privileges: []string{"Datastore.AllocateSpace", "Datastore.Audit"}},
		{Path: "/sdn/zones/localnetwork/vmbr0", Privileges: []string{"SDN.Use"}},
		{Path: "/sdn/zones/localnetwork/vmbr1", Privileges: []string{"SDN.Use"}},
		{Path: "/sdn/zones/zprod/vprod", Privileges: []string{"SDN.Use"}},
		{Path: "/vms/8011", Privileges: sdaGuest},
		{Path: "/vms/8001", Privileges: sdaGuest},
	}
}

func boolPtr(b bool) *bool { return &b }

// without drops the entries on path.
func without(acls []engine.ACL, path string) []engine.ACL {
	return slices.DeleteFunc(slices.Clone(acls), func(a engine.ACL) bool { return a.Path == path })
}

// withoutPriv drops privileges from the entries on path.
func withoutPriv(acls []engine.ACL, path string, privs ...string) []engine.ACL {
	out := slices.Clone(acls)
	for i, a := range out {
		if a.Path == path {
			out[i].Privileges = slices.DeleteFunc(slices.Clone(a.Privileges), func(p string) bool { return slices.Contains(privs, p) })
		}
	}
	return out
}

// newACLServer is a proxmoxve provider configured with aclToken on a world
// with nodes pve1 and pve2, the Talos image and the router template on
// pve1, vmbr1 on pve1, an applied VXLAN zone zprod with VNet vprod, a
// second disk store other-lvm, and tokens (nil: the World lists none).
func newACLServer(t *testing.T, tokens map[string][]engine.ACL) *engine.Server {
	t.Helper()
	w := engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"})
	w.Datastores = append(w.Datastores, engine.Datastore{ID: "other-lvm", Content: []string{"images", "rootdir"}})
	w.Tokens = tokens
	s := simtest.NewTestServer(t, "proxmoxve", w)
	err := s.Store.Update(func(tx *engine.Tx) error {
		tx.State.Files["pve1/local:iso/talos.img"] = &engine.StoredFile{ID: "local:iso/talos.img", Node: "pve1", Datastore: "local",
			ContentType: "iso", URL: "https://factory.talos.dev/image/x/v1.12.0/nocloud-amd64.raw.zst", Size: 1 << 30}
		tx.State.Files["pve1/local:vztmpl/debian.tar.zst"] = &engine.StoredFile{ID: "local:vztmpl/debian.tar.zst", Node: "pve1",
			Datastore: "local", ContentType: "vztmpl", URL: "https://example.test/debian.tar.zst", Size: 1 << 27}
		tx.State.Bridges["pve1/vmbr1"] = true
		for _, c := range []*engine.SDNConfig{&tx.State.SDN, &tx.State.SDNRunning} {
			c.Zones["zprod"] = &engine.SDNZone{Type: "vxlan", Peers: []string{"192.0.2.11", "192.0.2.12"}}
			c.VNets["vprod"] = &engine.SDNVNet{Zone: "zprod", Tag: 4242}
		}
		// Applied, and reloaded on every node.
		tx.State.SDNVersion, tx.State.SDNNodeVersions = 1, map[string]int{"pve1": 1, "pve2": 1}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	useToken(s, aclToken)
	return s
}

// useToken configures the provider with token (and a secret) and an SSH
// login for disk imports.
func useToken(s *engine.Server, token string) {
	s.Config = map[string]any{"endpoint": "https://192.0.2.11:8006/", "apiToken": token + "=" + aclSecret,
		"ssh": map[string]any{"username": "root", "agent": true}}
}

// asRoot runs fn with a token the World does not list (set-up steps), then
// goes back to aclToken.
func asRoot(s *engine.Server, fn func() error) error {
	useToken(s, "root@pam!setup")
	defer useToken(s, aclToken)
	return fn()
}

// aclUpdate runs a kind's update in one transaction, as Server.Update does.
func aclUpdate(s *engine.Server, token, name, id string, news map[string]any) error {
	k := s.Kinds[token]
	in, err := simtest.Prepared(s, k, "update", news)
	if err != nil {
		return err
	}
	return s.Store.Update(func(tx *engine.Tx) error {
		obj := tx.State.Objects[engine.ObjectKey(name, id)]
		if obj == nil {
			return fmt.Errorf("%s %s is not in the state", token, id)
		}
		if _, err := k.Update(s, tx, id, obj, in); err != nil {
			return err
		}
		obj.Inputs = in.Values
		return nil
	})
}

// talosVM is a Talos VM as SDA declares it: an imported disk, a NIC on
// bridge, cloud-init addresses and DNS.
func talosVM(bridge string) map[string]any {
	v := simtest.VMArgs("pve1", 8011, "10.20.0.11", bridge, "local:iso/talos.img", 2, 2048)
	return with(v, "initialization.dns", map[string]any{"servers": []any{"10.20.0.1"}, "domain": "prod.sda.internal"})
}

// routerCT is the router container as SDA declares it.
func routerCT() map[string]any {
	return map[string]any{
		"nodeName": "pve1", "vmId": 8001, "unprivileged": true, "description": "router",
		"tags":     []any{"sda", "router"},
		"features": map[string]any{"nesting": true},
		"cpu":      map[string]any{"cores": 1}, "memory": map[string]any{"dedicated": 512, "swap": 0},
		"disk":            map[string]any{"datastoreId": "local-lvm", "size": 4},
		"operatingSystem": map[string]any{"templateFileId": "local:vztmpl/debian.tar.zst", "type": "debian"},
		"networkInterfaces": []any{
			map[string]any{"name": "eth0", "bridge": "vmbr0"},
			map[string]any{"name": "eth1", "bridge": "vmbr1"},
		},
		"initialization": map[string]any{"hostname": "router",
			"dns": map[string]any{"servers": []any{"1.1.1.1"}}},
	}
}

func download(fileName string) map[string]any {
	return map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
		"url": "https://factory.talos.dev/image/y/v1.12.1/nocloud-amd64.raw.zst", "fileName": fileName,
		"decompressionAlgorithm": "zst"}
}

func forbidden(prefix, reason string) string {
	return prefix + "received an HTTP 403 response - Reason: " + reason
}

func TestTokenPermissions(t *testing.T) {
	createVM := func(v map[string]any) func(*engine.Server) error {
		return func(s *engine.Server) error { _, _, err := simtest.Create(t, s, proxmox.TokenVM, "vm", v); return err }
	}
	// updateVM creates old with a token the World does not list, then
	// updates it to news with aclToken.
	updateVM := func(old, news map[string]any) func(*engine.Server) error {
		return func(s *engine.Server) error {
			if err := asRoot(s, func() error { _, _, err := simtest.Create(t, s, proxmox.TokenVM, "vm", old); return err }); err != nil {
				t.Fatalf("set-up create: %v", err)
			}
			return aclUpdate(s, proxmox.TokenVM, "vm", "8011", news)
		}
	}
	createCT := func(v map[string]any) func(*engine.Server) error {
		return func(s *engine.Server) error {
			_, _, err := simtest.Create(t, s, proxmox.TokenContainer, "ct", v)
			return err
		}
	}
	updateCT := func(news map[string]any) func(*engine.Server) error {
		return func(s *engine.Server) error {
			if err := asRoot(s, func() error { _, _, err := simtest.Create(t, s, proxmox.TokenContainer, "ct", routerCT()); return err }); err != nil {
				t.Fatalf("set-up create: %v", err)
			}
			return aclUpdate(s, proxmox.TokenContainer, "ct", "8001", news)
		}
	}
	createDL := func(fileName string) func(*engine.Server) error {
		return func(s *engine.Server) error {
			_, _, err := simtest.Create(t, s, proxmox.TokenDownload, "dl", download(fileName))
			return err
		}
	}
	netCreate := func(token string, v map[string]any) func(*engine.Server) error {
		return func(s *engine.Server) error { _, _, err := simtest.Create(t, s, token, "if", v); return err }
	}
	netUpdate := func(token string, old, news map[string]any) func(*engine.Server) error {
		return func(s *engine.Server) error {
			var id string
			if err := asRoot(s, func() (err error) { id, _, err = simtest.Create(t, s, token, "if", old); return err }); err != nil {
				t.Fatalf("set-up create: %v", err)
			}
			return aclUpdate(s, token, "if", id, news)
		}
	}
	vm := talosVM("vprod")
	blankDisk := with(vm, "disks[0].fileId", "")
	startup := with(vm, "startup.order", 1)
	stopped := with(vm, "started", false)
	tagged := with(with(talosVM("vmbr0"), "networkDevices[0].vlanId", 42), "initialization.ipConfigs[0].ipv4.address", "192.168.42.11/24")
	trunked := with(talosVM("vmbr0"), "networkDevices[0].trunks", "42;7")
	recipe := recipeACLs()
	onVMs := func(acls []engine.ACL, propagates bool) []engine.ACL {
		return append(without(acls, "/vms/8011"), engine.ACL{Path: "/vms", Privileges: sdaGuest, Propagate: boolPtr(propagates)})
	}
	all := []engine.ACL{{Path: "/", Privileges: proxmox.PvePrivileges}}

	cases := []struct {
		name string
		acls []engine.ACL // the token's entries; nil: the World lists no token
		op   func(*engine.Server) error
		want string // "" = allowed; else the error, exactly
	}{
		// Evaluation (TokenPrivileges).
		{"the recipe creates a VM with a NIC on an SDN VNet", recipe, createVM(vm), ""},
		{"without SDN.Use on the VNet the VM is refused, naming the path", without(recipe, "/sdn/zones/zprod/vprod"), createVM(vm),
			"error creating VM: All attempts fail:\n" +
				"#1: received an HTTP 403 response - Reason: Permission check failed (/sdn/zones/zprod/vprod, SDN.Use)\n" +
				"#2: received an HTTP 403 response - Reason: Permission check failed (/sdn/zones/zprod/vprod, SDN.Use)\n" +
				"#3: received an HTTP 403 response - Reason: Permission check failed (/sdn/zones/zprod/vprod, SDN.Use)"},
		{"SDN.Use on the zone reaches its VNets", append(without(recipe, "/sdn/zones/zprod/vprod"),
			engine.ACL{Path: "/sdn/zones/zprod", Privileges: []string{"SDN.Use"}}), createVM(vm), ""},
		{"SDN.Use on the VNet's name in another zone does not count", append(without(recipe, "/sdn/zones/zprod/vprod"),
			engine.ACL{Path: "/sdn/zones/localnetwork/vprod", Privileges: []string{"SDN.Use"}}), createVM(vm),
			"(/sdn/zones/zprod/vprod, SDN.Use)"},
		{"propagate=false on /vms does not grant /vms/8011 (VM.Allocate: no path named)", onVMs(recipe, false), createVM(vm),
			"error creating VM: All attempts fail:\n" +
				"#1: received an HTTP 403 response - Reason: Permission check failed\n" +
				"#2: received an HTTP 403 response - Reason: Permission check failed\n" +
				"#3: received an HTTP 403 response - Reason: Permission check failed"},
		{"a propagating grant on /vms reaches /vms/8011", onVMs(recipe, true), createVM(vm), ""},
		{"a grant on a deeper path replaces what / grants", append(slices.Clone(all), engine.ACL{Path: "/vms/8011", Privileges: []string{"VM.Audit"}}),
			createVM(vm), "#1: received an HTTP 403 response - Reason: Permission check failed\n"},
		{"everything on / propagating allows everything", all, createVM(vm), ""},
		{"no Tokens in the World: allowed, as today", nil, createVM(vm), ""},
		{"an unknown privilege name fails loudly", append(recipe, engine.ACL{Path: "/vms/8011", Privileges: []string{"VM.Allocat"}}), createVM(vm),
			`simulation world: token "sda@pve!deploy", ACL on "/vms/8011": invalid privilege 'VM.Allocat' (Proxmox VE 8 has no such privilege)`},

		// VM create.
		{"a blank disk needs Datastore.AllocateSpace in the create", withoutPriv(recipe, "/storage/local-lvm", "Datastore.AllocateSpace"),
			createVM(blankDisk), "#1: " + forbidden("", "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)") + "\n#2: "},
		{"an imported disk is resized: Datastore.AllocateSpace", withoutPriv(recipe, "/storage/local-lvm", "Datastore.AllocateSpace"),
			createVM(vm), "resizing disk: error waiting for VM disk resize: All attempts fail:\n" +
				forbidden("#1: error moving VM disk: ", "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)")},
		{"the create sends cores: VM.Config.CPU", withoutPriv(recipe, "/vms/8011", "VM.Config.CPU"), createVM(vm),
			"#1: " + forbidden("", "Permission check failed (/vms/8011, VM.Config.CPU)") + "\n"},
		{"the create sends scsihw, tablet, vga: VM.Config.HWType", withoutPriv(recipe, "/vms/8011", "VM.Config.HWType"), createVM(vm),
			"Permission check failed (/vms/8011, VM.Config.HWType)"},
		{"cloud-init keys: VM.Config.Cloudinit or VM.Config.Network", withoutPriv(recipe, "/vms/8011", "VM.Config.Cloudinit", "VM.Config.Network"),
			createVM(vm), "Permission check failed (/vms/8011, VM.Config.Cloudinit|VM.Config.Network)"},
		{"cloud-init keys: VM.Config.Network alone suffices", withoutPriv(recipe, "/vms/8011", "VM.Config.Cloudinit"), createVM(vm), ""},
		{"startup needs Sys.Modify on /", recipe, createVM(startup), "Permission check failed (/, Sys.Modify)"},
		{"a started VM is started: VM.PowerMgmt", withoutPriv(recipe, "/vms/8011", "VM.PowerMgmt"), createVM(vm),
			forbidden("error starting VM: ", "Permission check failed (/vms/8011, VM.PowerMgmt)")},
		{"a stopped VM needs no VM.PowerMgmt", withoutPriv(recipe, "/vms/8011", "VM.PowerMgmt"), createVM(stopped), ""},
		{"a VLAN tag checks only …/<bridge>/<tag>, which the bridge's grant reaches", recipe, createVM(tagged), ""},
		{"a grant on another tag does not count", append(without(recipe, "/sdn/zones/localnetwork/vmbr0"),
			engine.ACL{Path: "/sdn/zones/localnetwork/vmbr0/43", Privileges: []string{"SDN.Use"}}), createVM(tagged),
			"(/sdn/zones/localnetwork/vmbr0/42, SDN.Use)"},
		{"trunks: each tag, in Perl's string order", append(without(recipe, "/sdn/zones/localnetwork/vmbr0"),
			engine.ACL{Path: "/sdn/zones/localnetwork/vmbr0/42", Privileges: []string{"SDN.Use"}}), createVM(trunked),
			"(/sdn/zones/localnetwork/vmbr0/7, SDN.Use)"},

		// VM update.
		{"a NIC moved to a VNet needs SDN.Use on the new bridge", without(recipe, "/sdn/zones/zprod/vprod"),
			updateVM(talosVM("vmbr0"), vm), forbidden("error updating VM: ", "Permission check failed (/sdn/zones/zprod/vprod, SDN.Use)")},
		{"… and on the old one", without(recipe, "/sdn/zones/localnetwork/vmbr0"),
			updateVM(talosVM("vmbr0"), vm), forbidden("error updating VM: ", "Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)")},
		{"a cpu change needs VM.Config.CPU", withoutPriv(recipe, "/vms/8011", "VM.Config.CPU"),
			updateVM(vm, with(vm, "cpu.cores", 4)), forbidden("error updating VM: ", "Permission check failed (/vms/8011, VM.Config.CPU)")},
		{"a cpu change reboots the VM: VM.PowerMgmt", withoutPriv(recipe, "/vms/8011", "VM.PowerMgmt"),
			updateVM(vm, with(vm, "cpu.cores", 4)), forbidden("error rebooting VM: ", "Permission check failed (/vms/8011, VM.PowerMgmt)")},
		{"an update checks only what it sends (description: VM.Config.Options)",
			withoutPriv(recipe, "/vms/8011", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.HWType", "VM.PowerMgmt", "VM.Config.Disk"),
			updateVM(vm, with(vm, "description", "new")), ""},
		{"an initialization change re-sends the cloud-init drive: VM.Config.CDROM", withoutPriv(recipe, "/vms/8011", "VM.Config.CDROM"),
			updateVM(vm, with(vm, "initialization.dns.domain", "other.internal")),
			forbidden("error updating VM: ", "Permission check failed (/vms/8011, VM.Config.CDROM)")},
		{"a disk change re-sends the disks: VM.Config.Disk", withoutPriv(recipe, "/vms/8011", "VM.Config.Disk"),
			updateVM(vm, with(vm, "disks[0].size", 20)), forbidden("error updating VM: ", "Permission check failed (/vms/8011, VM.Config.Disk)")},
		{"a grown disk is resized: Datastore.AllocateSpace", withoutPriv(recipe, "/storage/local-lvm", "Datastore.AllocateSpace"),
			updateVM(vm, with(vm, "disks[0].size", 20)), "error waiting for VM disk resize: All attempts fail:\n" +
				forbidden("#1: error moving VM disk: ", "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)")},
		{"a disk moved to another store: Datastore.AllocateSpace there", recipe,
			updateVM(vm, with(vm, "disks[0].datastoreId", "other-lvm")),
			forbidden("error moving VM disk: ", "Permission check failed (/storage/other-lvm, Datastore.AllocateSpace)")},
		{"a blank disk added by an update: Datastore.AllocateSpace", withoutPriv(recipe, "/storage/local-lvm", "Datastore.AllocateSpace"),
			updateVM(blankDisk, func() map[string]any {
				v := with(blankDisk, "name", "x")
				delete(v, "name")
				v["disks"] = append(v["disks"].([]any), map[string]any{"interface": "scsi1", "datastoreId": "local-lvm", "size": 5.0})
				return v
			}()), forbidden("error updating VM: ", "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)")},
		{"starting a stopped VM: VM.PowerMgmt", withoutPriv(recipe, "/vms/8011", "VM.PowerMgmt"), updateVM(stopped, vm),
			forbidden("error starting VM: ", "Permission check failed (/vms/8011, VM.PowerMgmt)")},

		// Container.
		{"the recipe creates the router", recipe, createCT(routerCT()), ""},
		{"the container create without VM.Allocate names nothing", withoutPriv(recipe, "/vms/8001", "VM.Allocate"), createCT(routerCT()),
			forbidden("error creating container: ", "Permission check failed")},
		{"the container's keys: VM.Config.Options", withoutPriv(recipe, "/vms/8001", "VM.Config.Options"), createCT(routerCT()),
			forbidden("error creating container: ", "Permission check failed (/vms/8001, VM.Config.Options)")},
		{"the container's NICs: SDN.Use", without(recipe, "/sdn/zones/localnetwork/vmbr1"), createCT(routerCT()),
			forbidden("error creating container: ", "Permission check failed (/sdn/zones/localnetwork/vmbr1, SDN.Use)")},
		{"the root disk: Datastore.AllocateSpace on its store", withoutPriv(recipe, "/storage/local-lvm", "Datastore.AllocateSpace"),
			createCT(routerCT()), forbidden("error creating container: ", "Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)")},
		{"the template: Datastore.AllocateSpace or Datastore.Audit", append(without(recipe, "/storage/local"),
			engine.ACL{Path: "/storage/local", Privileges: []string{"Datastore.AllocateTemplate"}}), createCT(routerCT()),
			forbidden("error creating container: ", "Permission check failed (/storage/local, Datastore.AllocateSpace|Datastore.Audit)")},
		{"the template: Datastore.Allocate suffices", append(without(recipe, "/storage/local"),
			engine.ACL{Path: "/storage/local", Privileges: []string{"Datastore.Allocate"}}), createCT(routerCT()), ""},
		{"a container memory change: VM.Config.Memory", withoutPriv(recipe, "/vms/8001", "VM.Config.Memory"),
			updateCT(with(routerCT(), "memory.dedicated", 1024)),
			forbidden("error updating container: ", "Permission check failed (/vms/8001, VM.Config.Memory)")},
		{"a container memory change reboots it: VM.PowerMgmt", withoutPriv(recipe, "/vms/8001", "VM.PowerMgmt"),
			updateCT(with(routerCT(), "memory.dedicated", 1024)),
			forbidden("error rebooting container: ", "Permission check failed (/vms/8001, VM.PowerMgmt)")},
		{"every container update sends the description: VM.Config.Options", withoutPriv(recipe, "/vms/8001", "VM.Config.Options"),
			updateCT(with(routerCT(), "tags", []any{"sda"})),
			forbidden("error updating container: ", "Permission check failed (/vms/8001, VM.Config.Options)")},
		{"a container NIC moved: SDN.Use on the old bridge", without(recipe, "/sdn/zones/localnetwork/vmbr1"),
			updateCT(with(routerCT(), "networkInterfaces[1].bridge", "vmbr0")),
			forbidden("error updating container: ", "Permission check failed (/sdn/zones/localnetwork/vmbr1, SDN.Use)")},
		{"nesting changed: VM.Allocate", withoutPriv(recipe, "/vms/8001", "VM.Allocate"),
			updateCT(with(routerCT(), "features.nesting", false)),
			forbidden("error updating container: ", "Permission check failed (/vms/8001, VM.Allocate)")},

		// Downloads.
		{"the recipe downloads", recipe, createDL("talos2.img"), ""},
		{"query-url-metadata without Sys.AccessNetwork names nothing", withoutPriv(recipe, "/nodes/pve1", "Sys.AccessNetwork"),
			createDL("talos2.img"), forbidden("Error initiating file download: Could not get file metadata, unexpected error: "+
				"error retrieving URL metadata for 0xc000a1c0b0: ", "Permission check failed")},
		{"Sys.Audit and Sys.Modify on / stand in for Sys.AccessNetwork", append(withoutPriv(recipe, "/nodes/pve1", "Sys.AccessNetwork"),
			engine.ACL{Path: "/", Privileges: []string{"Sys.Audit", "Sys.Modify"}, Propagate: boolPtr(false)}), createDL("talos2.img"), ""},
		{"download-url needs Datastore.AllocateTemplate", withoutPriv(recipe, "/storage/local", "Datastore.AllocateTemplate"),
			createDL("talos2.img"), forbidden("Error downloading file from url: Could not download file 'talos2.img', unexpected error: "+
				"error download file by URL: ", "Permission check failed (/storage/local, Datastore.AllocateTemplate)")},

		// Bridges and VLAN interfaces.
		{"the recipe creates a bridge", recipe, netCreate(proxmox.TokenBridge, map[string]any{"nodeName": "pve1", "name": "vmbr2"}), ""},
		{"a bridge needs Sys.Modify on the node", withoutPriv(recipe, "/nodes/pve1", "Sys.Modify"),
			netCreate(proxmox.TokenBridge, map[string]any{"nodeName": "pve1", "name": "vmbr2"}),
			forbidden(`Error creating Linux Bridge interface: Could not create Linux Bridge, unexpected error: failed to create network interface "vmbr2" for node "pve1": `,
				"Permission check failed (/nodes/pve1, Sys.Modify)")},
		{"a bridge update needs Sys.Modify on the node", withoutPriv(recipe, "/nodes/pve1", "Sys.Modify"),
			netUpdate(proxmox.TokenBridge, map[string]any{"nodeName": "pve1", "name": "vmbr2"}, map[string]any{"nodeName": "pve1", "name": "vmbr2", "mtu": 9000}),
			forbidden(`Error updating Linux Bridge interface: Could not update Linux Bridge, unexpected error: failed to update network interface "vmbr2" for node "pve1": `,
				"Permission check failed (/nodes/pve1, Sys.Modify)")},
		{"a VLAN interface needs Sys.Modify on the node", withoutPriv(recipe, "/nodes/pve1", "Sys.Modify"),
			netCreate(proxmox.TokenVLAN, map[string]any{"nodeName": "pve1", "name": "eno1.42"}),
			forbidden(`Error creating Linux VLAN interface: Could not create Linux VLAN, unexpected error: failed to create network interface "eno1.42" for node "pve1": `,
				"Permission check failed (/nodes/pve1, Sys.Modify)")},
		{"a VLAN update needs Sys.Modify on the node", withoutPriv(recipe, "/nodes/pve1", "Sys.Modify"),
			netUpdate(proxmox.TokenVLAN, map[string]any{"nodeName": "pve1", "name": "eno1.42"}, map[string]any{"nodeName": "pve1", "name": "eno1.42", "mtu": 1400}),
			forbidden(`Error updating Linux VLAN interface: Could not update Linux VLAN, unexpected error: failed to update network interface "eno1.42" for node "pve1": `,
				"Permission check failed (/nodes/pve1, Sys.Modify)")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tokens map[string][]engine.ACL
			if c.acls != nil {
				tokens = map[string][]engine.ACL{aclToken: c.acls}
			}
			s := newACLServer(t, tokens)
			err := c.op(s)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
			case err == nil:
				t.Fatalf("allowed, want %q", c.want)
			case !strings.Contains(err.Error(), c.want):
				t.Fatalf("error\n%v\nwant it to contain\n%s", err, c.want)
			case strings.HasPrefix(c.want, "error creating container") || strings.HasPrefix(c.want, "error updating") ||
				strings.HasPrefix(c.want, "error starting") || strings.HasPrefix(c.want, "error rebooting") ||
				strings.HasPrefix(c.want, "error moving") || strings.HasPrefix(c.want, "Error "):
				if err.Error() != c.want {
					t.Fatalf("error\n%v\nwant exactly\n%s", err, c.want)
				}
			}
			if err != nil && strings.Contains(err.Error(), aclSecret) {
				t.Fatalf("the error shows the token's secret: %v", err)
			}
		})
	}
}

// A refused create or update changes nothing; a token the World does not
// list (another token, or a user and password) is not checked.
func TestTokenPermissionsRefusalChangesNothing(t *testing.T) {
	s := newACLServer(t, map[string][]engine.ACL{aclToken: without(recipeACLs(), "/sdn/zones/zprod/vprod")})
	if _, _, err := simtest.Create(t, s, proxmox.TokenVM, "vm", talosVM("vprod")); err == nil {
		t.Fatal("allowed")
	}
	st, err := engine.ReadState(s.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Guests) != 0 || len(st.Objects) != 0 {
		t.Fatalf("a refused create left guests %v, objects %v", st.Guests, st.Objects)
	}
	useToken(s, "other@pve!t")
	if _, _, err := simtest.Create(t, s, proxmox.TokenVM, "vm", talosVM("vprod")); err != nil {
		t.Fatalf("a token the World does not list was refused: %v", err)
	}
}

func TestTokenPrivileges(t *testing.T) {
	w := engine.World{Tokens: map[string][]engine.ACL{aclToken: {
		{Path: "/", Privileges: []string{"Sys.Audit"}, Propagate: boolPtr(false)},
		{Path: "/vms", Privileges: []string{"VM.Audit"}, Propagate: boolPtr(false)},
		{Path: "/vms", Privileges: []string{"VM.PowerMgmt"}},
		{Path: "/vms/8011", Privileges: []string{"VM.Allocate", "VM.Audit"}, Propagate: boolPtr(false)},
		{Path: "/storage/", Privileges: []string{"Datastore.Audit"}},
		{Path: "/storage/local-lvm", Privileges: nil},
		{Path: "/sdn/zones/localnetwork/vmbr0", Privileges: []string{"SDN.Use"}},
	}}}
	cases := []struct {
		path string
		want map[string]bool
	}{
		{"/", map[string]bool{"Sys.Audit": false}},
		{"/nodes/pve1", map[string]bool{}},                                      // / does not propagate
		{"/vms", map[string]bool{"VM.Audit": false, "VM.PowerMgmt": true}},      // both roles on the path itself
		{"/vms/8012", map[string]bool{"VM.PowerMgmt": true}},                    // only the propagating one reaches below
		{"/vms/8011", map[string]bool{"VM.Allocate": false, "VM.Audit": false}}, // the deeper grant replaces /vms's
		{"//vms//8011/", map[string]bool{"VM.Allocate": false, "VM.Audit": false}},
		{"/storage/local", map[string]bool{"Datastore.Audit": true}},
		{"/storage/local-lvm", map[string]bool{}}, // an empty role still replaces (like NoAccess)
		{"/sdn/zones/localnetwork/vmbr0/42", map[string]bool{"SDN.Use": true}},
		{"/sdn/zones/localnetwork/vmbr1", map[string]bool{}},
	}
	for _, c := range cases {
		got := proxmox.TokenPrivileges(w, aclToken, c.path)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("TokenPrivileges(%q) = %v, want %v", c.path, got, c.want)
		}
	}
	root := proxmox.TokenPrivileges(w, "root@pam!other", "/vms/1")
	if len(root) != len(proxmox.PvePrivileges) || !root["VM.Allocate"] || !root["Permissions.Modify"] {
		t.Errorf("an unlisted token gets %v, want every privilege, propagated", root)
	}
}
