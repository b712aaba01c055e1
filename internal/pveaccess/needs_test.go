package pveaccess

import (
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/config"
)

// small is a valid one-node configuration (as config's own tests use).
func small() config.Config {
	return config.Config{
		Cluster: config.Cluster{Name: "lab", ControlPlanes: 1, Workers: 2},
		Proxmox: config.Proxmox{Nodes: []config.ProxmoxNode{{Name: "pve"}}},
		Network: config.Network{External: config.External{CIDR: "192.168.1.0/24", RouterAddress: "192.168.1.50", Gateway: "192.168.1.1"}},
	}
}

// spread puts the guests of small on three nodes in the given mode.
func spread(mode string) config.Config {
	c := small()
	c.Cluster.ControlPlanes, c.Cluster.VIP = 3, "10.10.0.10"
	c.Proxmox.Nodes = []config.ProxmoxNode{{Name: "pve1", SSHHost: "192.0.2.11"}, {Name: "pve2", SSHHost: "192.0.2.12"}, {Name: "pve3", SSHHost: "192.0.2.13"}}
	c.Network.Internal.Mode = mode
	switch mode {
	case config.ModeVLAN:
		c.Network.Internal.VLAN = &config.InternalVLAN{Uplink: "eno1", ID: 42}
	case config.ModeVXLAN:
		c.Network.Internal.VXLAN = &config.InternalVXLAN{VNI: 4242}
	}
	return c
}

// grants is needs as "path privilege" strings, for comparisons.
func grants(needs []Need) []string {
	var out []string
	for _, n := range needs {
		out = append(out, n.Path+" "+n.Privilege)
	}
	return out
}

// onPaths keeps the grants whose path starts with prefix.
func onPaths(needs []Need, prefix string) []string {
	var out []string
	for _, g := range grants(needs) {
		if strings.HasPrefix(g, prefix) {
			out = append(out, g)
		}
	}
	return out
}

func TestNeedsByNetworkMode(t *testing.T) {
	sharedImages := spread(config.ModeVXLAN)
	sharedImages.Proxmox.SharedImageDatastore = true
	externalVLAN := small()
	externalVLAN.Network.External.VLAN = 30
	existing := small()
	existing.Network.Internal.Mode = config.ModeExisting
	existing.Network.Internal.Bridge = "vmbr7"
	stores := small()
	stores.Proxmox.Datastore, stores.Proxmox.ImageDatastore = "ceph", "cephfs"

	for _, tc := range []struct {
		name        string
		c           config.Config
		nodes, sdn  []string
		storage     []string
		noSysModify bool
	}{
		{name: "bridge, one node", c: small(),
			nodes: []string{"/nodes/pve Sys.AccessNetwork", "/nodes/pve Sys.Modify"},
			sdn:   []string{"/sdn/zones/localnetwork/vmbr0 SDN.Use", "/sdn/zones/localnetwork/vmbr1 SDN.Use"}},
		{name: "vlan: bridges and VLAN ports on every node", c: spread(config.ModeVLAN),
			nodes: []string{"/nodes/pve1 Sys.AccessNetwork", "/nodes/pve2 Sys.AccessNetwork", "/nodes/pve3 Sys.AccessNetwork",
				"/nodes/pve1 Sys.Modify", "/nodes/pve2 Sys.Modify", "/nodes/pve3 Sys.Modify"},
			sdn: []string{"/sdn/zones/localnetwork/vmbr0 SDN.Use", "/sdn/zones/localnetwork/vmbr1 SDN.Use"}},
		{name: "vxlan: the VNet's path, no bridge to create", c: spread(config.ModeVXLAN),
			nodes: []string{"/nodes/pve1 Sys.AccessNetwork", "/nodes/pve2 Sys.AccessNetwork", "/nodes/pve3 Sys.AccessNetwork"},
			sdn:   []string{"/sdn/zones/localnetwork/vmbr0 SDN.Use", "/sdn/zones/zlab/vlab SDN.Use"}, noSysModify: true},
		{name: "shared image datastore: the image once, the template on the router's node", c: sharedImages,
			nodes: []string{"/nodes/pve1 Sys.AccessNetwork"},
			sdn:   []string{"/sdn/zones/localnetwork/vmbr0 SDN.Use", "/sdn/zones/zlab/vlab SDN.Use"}, noSysModify: true},
		{name: "existing bridge", c: existing,
			nodes: []string{"/nodes/pve Sys.AccessNetwork"},
			sdn:   []string{"/sdn/zones/localnetwork/vmbr0 SDN.Use", "/sdn/zones/localnetwork/vmbr7 SDN.Use"}, noSysModify: true},
		{name: "tagged external NIC: the tag's path", c: externalVLAN,
			nodes: []string{"/nodes/pve Sys.AccessNetwork", "/nodes/pve Sys.Modify"},
			sdn:   []string{"/sdn/zones/localnetwork/vmbr0/30 SDN.Use", "/sdn/zones/localnetwork/vmbr1 SDN.Use"}},
		{name: "datastores by name", c: stores,
			nodes: []string{"/nodes/pve Sys.AccessNetwork", "/nodes/pve Sys.Modify"},
			sdn:   []string{"/sdn/zones/localnetwork/vmbr0 SDN.Use", "/sdn/zones/localnetwork/vmbr1 SDN.Use"},
			storage: []string{"/storage/cephfs Datastore.AllocateTemplate", "/storage/cephfs Datastore.Audit", "/storage/cephfs Datastore.Allocate",
				"/storage/ceph Datastore.AllocateSpace", "/storage/ceph Datastore.Audit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needs, err := Needs(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			nodes := onPaths(needs, "/nodes/")
			slices.Sort(nodes)
			want := slices.Clone(tc.nodes)
			slices.Sort(want)
			if !slices.Equal(nodes, want) {
				t.Errorf("node grants %q, want %q", nodes, want)
			}
			if sdn := onPaths(needs, "/sdn/"); !slices.Equal(sdn, tc.sdn) {
				t.Errorf("SDN grants %q, want %q", sdn, tc.sdn)
			}
			storage := tc.storage
			if storage == nil {
				storage = []string{"/storage/local Datastore.AllocateTemplate", "/storage/local Datastore.Audit", "/storage/local Datastore.Allocate",
					"/storage/local-lvm Datastore.AllocateSpace", "/storage/local-lvm Datastore.Audit"}
			}
			if got := onPaths(needs, "/storage/"); !slices.Equal(got, storage) {
				t.Errorf("storage grants %q, want %q", got, storage)
			}
			for _, n := range needs {
				if n.Privilege == "SDN.Allocate" || n.Path == "/" || n.Path == "/vms" {
					t.Errorf("%s: SDA's token never needs this (SDN is created over SSH; grants are per guest)", n)
				}
				if n.Why == "" || !slices.Contains(Roles, n.Role) {
					t.Errorf("%s: every need says why and names one of Roles (role %q)", n, n.Role)
				}
				if n.Privilege == "Sys.AccessNetwork" && !slices.Equal(n.Instead, []Grant{{"/", "Sys.Audit"}, {"/", "Sys.Modify"}}) {
					t.Errorf("%s: the pre-8.1 alternative is Sys.Audit and Sys.Modify on /, got %v", n, n.Instead)
				}
			}
		})
	}
}

// Every VM gets the QEMU privileges on its own /vms/<id>, the router the
// container's; the IDs are the plan's.
func TestNeedsPerGuest(t *testing.T) {
	c := small()
	c.Router.VMID = 8100
	needs, err := Needs(c)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string][]string{}
	for _, n := range needs {
		if strings.HasPrefix(n.Path, "/vms/") {
			byPath[n.Path] = append(byPath[n.Path], n.Privilege)
			if n.Role != RoleGuest {
				t.Errorf("%s: role %s, want %s", n, n.Role, RoleGuest)
			}
		}
	}
	qemu := []string{"VM.Allocate", "VM.Audit", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Disk", "VM.Config.Network",
		"VM.Config.Cloudinit", "VM.Config.CDROM", "VM.Config.HWType", "VM.Config.Options", "VM.PowerMgmt", "VM.Monitor"}
	lxc := []string{"VM.Allocate", "VM.Audit", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Disk", "VM.Config.Network",
		"VM.Config.Options", "VM.PowerMgmt"}
	want := map[string][]string{"/vms/8011": qemu, "/vms/8021": qemu, "/vms/8022": qemu, "/vms/8100": lxc}
	if len(byPath) != len(want) {
		t.Errorf("guest paths %v, want %v", byPath, want)
	}
	for path, privs := range want {
		if !slices.Equal(byPath[path], privs) {
			t.Errorf("%s: %q, want %q", path, byPath[path], privs)
		}
	}
}

// One datastore for both: each privilege is asked once, with both reasons.
func TestNeedsMergesSharedDatastore(t *testing.T) {
	c := small()
	c.Proxmox.Datastore, c.Proxmox.ImageDatastore = "tank", "tank"
	needs, err := Needs(c)
	if err != nil {
		t.Fatal(err)
	}
	got := onPaths(needs, "/storage/")
	want := []string{"/storage/tank Datastore.AllocateTemplate", "/storage/tank Datastore.Audit", "/storage/tank Datastore.Allocate", "/storage/tank Datastore.AllocateSpace"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, n := range needs {
		if n.Path == "/storage/tank" && n.Privilege == "Datastore.Audit" && !(strings.Contains(n.Why, "downloads") && strings.Contains(n.Why, "volume's attributes")) {
			t.Errorf("merged need keeps one reason only: %s", n.Why)
		}
	}
}

func TestNeedsRefusesInvalidConfig(t *testing.T) {
	c := small()
	c.Cluster.ControlPlanes = 2
	if _, err := Needs(c); err == nil || !strings.Contains(err.Error(), "sda:cluster.controlPlanes") {
		t.Errorf("Needs of an invalid configuration: %v; want config's validation error", err)
	}
}
