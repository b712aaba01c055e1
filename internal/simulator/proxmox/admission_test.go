package proxmox_test

import (
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// Proxmox refuses what a real cluster refuses: missing bridges, files and
// datastores, duplicate VM IDs, VMs bigger than their node.
func TestProxmoxAdmission(t *testing.T) {
	s := simtest.NewTestServer(t, "proxmoxve", engine.DefaultWorld(engine.WorldNode{Name: "pve1", Cores: 8, MemoryMiB: 8192}, engine.WorldNode{Name: "pve2"}))
	// Disks with a fileId are imported over SSH: the provider needs a login.
	s.Config = map[string]any{"apiToken": "sda@pve!t=x", "ssh": map[string]any{"username": "root", "agent": true}}
	if _, _, err := simtest.Create(t, s, proxmox.TokenBridge, "br", map[string]any{"nodeName": "pve1", "name": "vmbr1"}); err != nil {
		t.Fatal(err)
	}
	img, _, err := simtest.Create(t, s, proxmox.TokenDownload, "img", map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
		"url": "https://factory.talos.dev/image/x/v1.12.0/nocloud-amd64.raw.zst", "fileName": "talos.img", "decompressionAlgorithm": "zst"})
	if err != nil {
		t.Fatal(err)
	}
	if img != "local:iso/talos.img" {
		t.Fatalf("file ID = %q", img)
	}
	if _, _, err := simtest.Create(t, s, proxmox.TokenVM, "vm1", simtest.VMArgs("pve1", 8011, "10.0.0.11", "vmbr1", img, 2, 4096)); err != nil {
		t.Fatalf("a valid VM was refused: %v", err)
	}
	cases := []struct {
		name, token string
		args        map[string]any
		want        string
	}{
		{"duplicate VM ID", proxmox.TokenVM, simtest.VMArgs("pve2", 8011, "10.0.0.12", "vmbr0", "", 2, 2048), "VM ID 8011 already exists"},
		{"bridge missing on node", proxmox.TokenVM, simtest.VMArgs("pve2", 8012, "10.0.0.12", "vmbr1", "", 2, 2048), `bridge "vmbr1" does not exist on node "pve2"`},
		{"image only on another node", proxmox.TokenVM, simtest.VMArgs("pve2", 8012, "10.0.0.12", "vmbr0", img, 2, 2048), "does not exist on node \"pve2\""},
		{"more cores than the node", proxmox.TokenVM, simtest.VMArgs("pve1", 8012, "10.0.0.12", "vmbr1", img, 16, 2048), "node \"pve1\" has only 8"},
		{"memory beyond what is left", proxmox.TokenVM, simtest.VMArgs("pve1", 8012, "10.0.0.12", "vmbr1", img, 2, 6144), "has 4096 MiB of 8192 MiB left"},
		{"address already used", proxmox.TokenVM, simtest.VMArgs("pve1", 8012, "10.0.0.11", "vmbr1", img, 2, 1024), "address 10.0.0.11 is already configured"},
		{"unknown node", proxmox.TokenVM, simtest.VMArgs("pve9", 8012, "10.0.0.12", "vmbr0", "", 2, 1024), `node "pve9" does not exist`},
		{"iso needs .img or .iso", proxmox.TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
			"url": "https://example.test/nocloud-amd64.raw.xz"}, "(filename: wrong file extension)"},
		{"xz is not a Proxmox decompression", proxmox.TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
			"url": "https://example.test/a.raw.xz", "fileName": "a.img", "decompressionAlgorithm": "xz"}, `value must be one of: ["\"gz\"" "\"lzo\"" "\"zst\"" "\"bz2\""], got: "xz"`},
		{"disk store rejects templates", proxmox.TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local-lvm", "contentType": "vztmpl",
			"url": "https://example.test/debian.tar.zst"}, "storage 'local-lvm' is not configured for content-type 'vztmpl'"},
		{"same file twice", proxmox.TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
			"url": "https://example.test/other.img", "fileName": "talos.img"}, "already exists"},
		{"bridge twice", proxmox.TokenBridge, map[string]any{"nodeName": "pve1", "name": "vmbr1"}, "already exists"},
		{"container on a store without rootdir", proxmox.TokenContainer, map[string]any{"nodeName": "pve1", "vmId": 8001,
			"disk": map[string]any{"datastoreId": "local"}}, `"local" on node "pve1" does not accept content type "rootdir"`},
		{"container without template", proxmox.TokenContainer, map[string]any{"nodeName": "pve1", "vmId": 8001, "disk": map[string]any{"datastoreId": "local-lvm"},
			"operatingSystem": map[string]any{"templateFileId": "local:vztmpl/missing.tar.zst"}}, "template local:vztmpl/missing.tar.zst does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := simtest.Create(t, s, c.token, "x-"+c.name, c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
	st, _ := engine.ReadState(s.Store.Dir)
	if len(st.Guests) != 1 {
		t.Errorf("refused creations must leave nothing behind: %d guests", len(st.Guests))
	}
}
