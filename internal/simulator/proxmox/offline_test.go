package proxmox_test

import (
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// A failed node (a power loss): its guests stop at once, those of the
// other node keep running; every API call about a resource on it fails as
// the cluster answers a request it cannot proxy (HTTP 595, No route to
// host), while the other node works; restored, its guests run again and
// its API answers.
func TestNodeFailure(t *testing.T) {
	s := simtest.NewTestServer(t, "proxmoxve", engine.DefaultWorld(engine.WorldNode{Name: "pve1"}, engine.WorldNode{Name: "pve2"}))
	simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[8001] = &engine.Guest{VMID: 8001, Kind: "lxc", Node: "pve1", Started: true}
		tx.State.Guests[8002] = &engine.Guest{VMID: 8002, Kind: "lxc", Node: "pve2", Started: true}
		tx.State.Guests[9001] = &engine.Guest{VMID: 9001, Kind: "qemu", Node: "pve1", Started: true}
		return nil
	}))
	simtest.NoErr(t, s.Store.FailNode("pve1"))
	if err := s.Store.FailNode("pve1"); err == nil || !strings.Contains(err.Error(), "already failed") {
		t.Errorf("failing a failed node: %v", err)
	}
	st, _ := engine.ReadState(s.Store.Dir)
	if st.Guests[8001].Started || st.Guests[9001].Started || !st.Guests[8002].Started {
		t.Errorf("after pve1 failed: 8001 %v, 9001 %v, 8002 %v; want only 8002 running",
			st.Guests[8001].Started, st.Guests[9001].Started, st.Guests[8002].Started)
	}
	if n := len(st.RouterEvents); n != 1 || st.RouterEvents[0].VMID != 8001 || st.RouterEvents[0].Kind != engine.RouterDown {
		t.Errorf("router events %+v: want 8001 down", st.RouterEvents)
	}
	file := func(node string) map[string]any {
		return map[string]any{"nodeName": node, "datastoreId": "local", "contentType": "iso", "url": "https://example.test/talos.img"}
	}
	_, _, err := simtest.Create(t, s, proxmox.TokenDownload, "img-pve1", file("pve1"))
	if err == nil || !strings.Contains(err.Error(), "error creating file: received an HTTP 595 response - Reason: No route to host") {
		t.Errorf("a download on the failed node: %v, want HTTP 595", err)
	}
	if _, _, err := simtest.Create(t, s, proxmox.TokenDownload, "img-pve2", file("pve2")); err != nil {
		t.Errorf("a download on the other node: %v", err)
	}
	simtest.NoErr(t, s.Store.RestoreNode("pve1"))
	st, _ = engine.ReadState(s.Store.Dir)
	if !st.Guests[8001].Started || !st.Guests[9001].Started {
		t.Errorf("after pve1 came back its guests should run again (onboot)")
	}
	if _, _, err := simtest.Create(t, s, proxmox.TokenDownload, "img-pve1", file("pve1")); err != nil {
		t.Errorf("a download on the restored node: %v", err)
	}
}
