package talos_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"google.golang.org/grpc/codes"
)

// A control plane upgrade, unless forced, runs etcd's ValidateForUpgrade:
// two members refuse (quorum would be lost), and with three every member
// must be up, so a second control plane cannot upgrade while the first
// reboots.
func TestTalosAPIUpgradeControlPlaneQuorum(t *testing.T) {
	image := "ghcr.io/siderolabs/installer:v1.12.1"
	t.Run("two members", func(t *testing.T) {
		f := simtest.NewTalosAPIFixture(t, 2, 0, true)
		if got := f.Cluster().EtcdMembers; len(got) != 2 {
			t.Fatalf("members %v", got)
		}
		c := f.Client(f.ClientConfig, f.CPs[0])
		_, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), image, false, false)
		wantCode(t, err, codes.Unknown, "etcd member count(2) is insufficient to maintain quorum if upgrade commences")
		if st := f.State(); len(st.Reboots) != 0 || st.Machines[f.CPs[1]].Version == "v1.12.1" {
			t.Fatalf("a refused upgrade changed the node: %+v", st.Reboots)
		}
		_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), image, false, true)
		simtest.NoErr(t, err) // force skips the check
	})
	t.Run("three members", func(t *testing.T) {
		f := simtest.NewTalosAPIFixture(t, 3, 0, true)
		f.Faults(engine.Faults{RebootTime: "1m"})
		c := f.Client(f.ClientConfig, f.CPs[0])
		_, err := c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.CPs[2]), image, false, false)
		simtest.NoErr(t, err)
		_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), image, false, false)
		wantCode(t, err, codes.Unknown, "all members must be healthy to perform an upgrade")
		if !strings.Contains(err.Error(), f.CPs[2]) {
			t.Fatalf("the refusal does not name the rebooting member: %v", err)
		}
	})
}

// EtcdMemberList lists the cluster's members with stable IDs; a worker
// has no etcd API; a control plane leaves gracefully; RemoveMemberByID
// drops a member by ID; both refuse to lose quorum, with the rule the
// reset uses.
func TestTalosAPIEtcd(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 3, 1, true)
	c := f.Client(f.ClientConfig, f.CPs[0])
	list := func() []*machine.EtcdMember {
		t.Helper()
		resp, err := c.EtcdMemberList(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]), &machine.EtcdMemberListRequest{})
		simtest.NoErr(t, err)
		return resp.Messages[0].Members
	}
	members := list()
	if len(members) != 3 {
		t.Fatalf("members %v", members)
	}
	for _, m := range members {
		addr := strings.TrimSuffix(strings.TrimPrefix(m.ClientUrls[0], "https://"), ":2379")
		if m.Id != talos.EtcdMemberID(addr) || m.Hostname == "" || m.PeerUrls[0] != "https://"+addr+":2380" {
			t.Errorf("member %v", m)
		}
	}
	_, err := c.EtcdMemberList(client.WithNode(simtest.CtxTimeout(t), f.Workers[0]), &machine.EtcdMemberListRequest{})
	wantCode(t, err, codes.Unimplemented, "member list is only available on control plane nodes")

	// cp3 halts: cp1 leaving would leave one of the two others started,
	// below their quorum.
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[tx.State.Machines[f.CPs[2]].VMID].Started = false
		return nil
	}))
	err = c.EtcdLeaveCluster(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]), &machine.EtcdLeaveClusterRequest{})
	wantCode(t, err, codes.Unknown, "failed to leave cluster: failed to remove member")
	wantCode(t, err, codes.Unknown, "not enough started members")
	// Removing the halted member by ID is allowed (cp1 and cp2 run).
	err = c.EtcdRemoveMemberByID(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]), &machine.EtcdRemoveMemberByIDRequest{MemberId: 12345})
	wantCode(t, err, codes.NotFound, "member not found")
	simtest.NoErr(t, c.EtcdRemoveMemberByID(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]),
		&machine.EtcdRemoveMemberByIDRequest{MemberId: talos.EtcdMemberID(f.CPs[2])}))
	if got := f.Cluster().EtcdMembers; len(got) != 2 || slices.Contains(got, f.CPs[2]) {
		t.Fatalf("after the removal: %v", got)
	}
	// A graceful leave: cp2 leaves, cp1 stays.
	simtest.NoErr(t, c.EtcdLeaveCluster(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), &machine.EtcdLeaveClusterRequest{}))
	if got := f.Cluster().EtcdMembers; !slices.Equal(got, f.CPs[:1]) {
		t.Fatalf("after the leave: %v", got)
	}
	err = c.EtcdLeaveCluster(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), &machine.EtcdLeaveClusterRequest{})
	wantCode(t, err, codes.Unknown, "failed to get local etcd member ID")
	// The last member never leaves.
	err = c.EtcdLeaveCluster(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]), &machine.EtcdLeaveClusterRequest{})
	wantCode(t, err, codes.Unknown, "not enough started members")
	_, err = c.EtcdForfeitLeadership(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]), &machine.EtcdForfeitLeadershipRequest{})
	wantCode(t, err, codes.Unknown, "only one member")
}

// The leader forfeits leadership to the next member; a member that does
// not lead returns no member.
func TestTalosAPIEtcdForfeitLeadership(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 3, 0, true)
	c := f.Client(f.ClientConfig, f.CPs[0])
	order := talos.SortedMembers(f.Cluster())
	resp, err := c.EtcdForfeitLeadership(client.WithNode(simtest.CtxTimeout(t), order[1]), &machine.EtcdForfeitLeadershipRequest{})
	simtest.NoErr(t, err)
	if resp.Messages[0].Member != "" {
		t.Fatalf("a follower moved leadership to %q", resp.Messages[0].Member)
	}
	resp, err = c.EtcdForfeitLeadership(client.WithNode(simtest.CtxTimeout(t), order[0]), &machine.EtcdForfeitLeadershipRequest{})
	simtest.NoErr(t, err)
	if resp.Messages[0].Member == "" || f.Cluster().EtcdLeader != order[1] {
		t.Fatalf("leader %q after forfeit, reply %q", f.Cluster().EtcdLeader, resp.Messages[0].Member)
	}
}

// etcd's service on a control plane is healthy only EtcdStartTime after
// the node booted; until then ServiceList says so and Talos refuses to
// upgrade another control plane, although the member is listed.
func TestTalosAPIEtcdHealth(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 3, 0, true)
	f.Faults(engine.Faults{EtcdStartTime: "1s"})
	now := time.Now()
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		g := tx.State.Machines[f.CPs[2]]
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: "cp3", Cause: "test", Start: now.Add(-time.Second), End: now})
		return nil
	}))
	c := f.Client(f.ClientConfig, f.CPs[0])
	infos, err := c.ServiceInfo(client.WithNodes(simtest.CtxTimeout(t), f.CPs...), "etcd")
	simtest.NoErr(t, err)
	healthy := map[string]bool{}
	for _, info := range infos {
		healthy[info.Metadata.GetHostname()] = info.Service.GetHealth().GetHealthy()
		if info.Service.GetState() != "Running" {
			t.Errorf("%s: etcd %s", info.Metadata.GetHostname(), info.Service.GetState())
		}
	}
	if !healthy[f.CPs[0]] || !healthy[f.CPs[1]] || healthy[f.CPs[2]] || len(infos) != 3 {
		t.Fatalf("etcd healthy %v, want all but %s", healthy, f.CPs[2])
	}
	_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), "ghcr.io/siderolabs/installer:v1.12.1", false, false)
	wantCode(t, err, codes.Unknown, "all members must be healthy to perform an upgrade")
	if !strings.Contains(err.Error(), "etcd is starting") {
		t.Fatalf("the refusal does not say why: %v", err)
	}
	time.Sleep(time.Until(now.Add(time.Second)) + 50*time.Millisecond)
	_, err = c.Upgrade(client.WithNode(simtest.CtxTimeout(t), f.CPs[1]), "ghcr.io/siderolabs/installer:v1.12.1", false, false)
	simtest.NoErr(t, err)
}
