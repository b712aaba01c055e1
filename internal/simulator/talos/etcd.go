package talos

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// EtcdClient is what machined's etcd client on the control planes needs:
// a bootstrapped cluster (endpoints) and a leader (WithRequireLeader).
func EtcdClient(tx *engine.Tx, m *engine.TalosMachine, now time.Time) (*engine.TalosCluster, error) {
	c := tx.State.Clusters[m.ClusterID]
	if c == nil || len(c.EtcdMembers) == 0 {
		return nil, errors.New("failed to create etcd client: no controlplane endpoints discovered yet")
	}
	if EtcdLeader(tx, c, now) == "" {
		return nil, status.Error(codes.Unavailable, "etcdserver: no leader")
	}
	return c, nil
}

// MemberName is an etcd member's name: the node's hostname (its Node
// object's name, which outlives the machine), else its address.
func MemberName(tx *engine.Tx, c *engine.TalosCluster, addr string) string {
	if m := tx.State.Machines[addr]; m != nil && m.ClusterID == c.ID {
		// The name is the member's own, given when it joined (Talos names
		// its etcd after the hostname): a stopped node keeps it.
		var g *engine.Guest
		for _, cand := range tx.State.Guests {
			if cand.Kind == "qemu" && slices.Contains(cand.Addresses, addr) {
				g = cand
			}
		}
		return nodeName(m, g)
	}
	for _, n := range c.Nodes {
		if n.Address == addr {
			return n.Name
		}
	}
	return addr
}

// localMember is GetLocalMemberID (internal/pkg/etcd/local.go:19-34): a
// control plane whose etcd is not a member waits 3 minutes and fails.
func localMember(c *engine.TalosCluster, m *engine.TalosMachine) error {
	for _, a := range c.EtcdMembers {
		if a == m.Address {
			return nil
		}
	}
	return fmt.Errorf("failed to get local etcd member ID: context deadline exceeded (%s is not an etcd member)", m.Address)
}

// EtcdMemberList is machined's EtcdMemberList (v1alpha1_server.go:1762-1808):
// control planes only; members in ID order, named by hostname, with peer
// (2380) and client (2379) URLs. Member IDs: see EtcdMemberID.
func (a *API) EtcdMemberList(ctx context.Context, in *machine.EtcdMemberListRequest) (*machine.EtcdMemberListResponse, error) {
	msgs, err := apiCall(ctx, a, "EtcdMemberList", false, func(nc *nodeCall) (*machine.EtcdMembers, error) {
		if err := checkControlplane(nc.m, "member list"); err != nil {
			return nil, err
		}
		c, err := EtcdClient(nc.tx, nc.m, nc.now)
		if err != nil {
			return nil, err
		}
		if in.GetQueryLocal() {
			if err := localMember(c, nc.m); err != nil {
				return nil, err
			}
		}
		out := &machine.EtcdMembers{}
		for _, addr := range SortedMembers(c) {
			name := MemberName(nc.tx, c, addr)
			out.LegacyMembers = append(out.LegacyMembers, name)
			out.Members = append(out.Members, &machine.EtcdMember{Id: EtcdMemberID(addr), Hostname: name,
				PeerUrls:   []string{"https://" + net.JoinHostPort(addr, "2380")},
				ClientUrls: []string{"https://" + net.JoinHostPort(addr, "2379")}})
		}
		return out, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.EtcdMemberListResponse{Messages: msgs}, nil
}

// EtcdLeaveCluster is machined's EtcdLeaveCluster (v1alpha1_server.go:1841-1864;
// etcd.go:152-194 LeaveCluster): the node's own member is removed, under
// etcd's quorum rule (RemoveEtcdMember, shared with reset), and its etcd
// stops.
func (a *API) EtcdLeaveCluster(ctx context.Context, _ *machine.EtcdLeaveClusterRequest) (*machine.EtcdLeaveClusterResponse, error) {
	msgs, err := apiCall(ctx, a, "EtcdLeaveCluster", true, func(nc *nodeCall) (*machine.EtcdLeaveCluster, error) {
		if err := checkControlplane(nc.m, "etcd leave"); err != nil {
			return nil, err
		}
		c, err := EtcdClient(nc.tx, nc.m, nc.now)
		if err != nil {
			return nil, err
		}
		if err := localMember(c, nc.m); err != nil {
			return nil, fmt.Errorf("failed to leave cluster: %w", err)
		}
		if err := RemoveEtcdMember(nc.tx, c, nc.m.Address, nc.now); err != nil {
			return nil, fmt.Errorf("failed to leave cluster: %w", err)
		}
		return &machine.EtcdLeaveCluster{}, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.EtcdLeaveClusterResponse{Messages: msgs}, nil
}

// EtcdRemoveMemberByID is machined's EtcdRemoveMemberByID
// (v1alpha1_server.go:1811-1838): any member by ID (the way to drop the
// member of a control plane that is gone), NotFound for an unknown ID,
// under the same quorum rule.
func (a *API) EtcdRemoveMemberByID(ctx context.Context, in *machine.EtcdRemoveMemberByIDRequest) (*machine.EtcdRemoveMemberByIDResponse, error) {
	msgs, err := apiCall(ctx, a, "EtcdRemoveMemberByID", true, func(nc *nodeCall) (*machine.EtcdRemoveMemberByID, error) {
		if err := checkControlplane(nc.m, "etcd remove member"); err != nil {
			return nil, err
		}
		c, err := EtcdClient(nc.tx, nc.m, nc.now)
		if err != nil {
			return nil, err
		}
		for _, addr := range c.EtcdMembers {
			if EtcdMemberID(addr) == in.GetMemberId() {
				if err := RemoveEtcdMember(nc.tx, c, addr, nc.now); err != nil {
					return nil, fmt.Errorf("failed to remove member: %w", err)
				}
				return &machine.EtcdRemoveMemberByID{}, nil
			}
		}
		return nil, status.Error(codes.NotFound, "etcdserver: member not found")
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.EtcdRemoveMemberByIDResponse{Messages: msgs}, nil
}

// EtcdForfeitLeadership is machined's EtcdForfeitLeadership
// (v1alpha1_server.go:1867-1898; etcd.go:220-290 ForfeitLeadership): a
// lone member cannot; a member that does not lead returns no member; the
// leader moves leadership to the first other member in list order and
// returns its name. A move to a member that is down times out (etcd's
// ErrTimeoutLeaderTransfer, inferred).
func (a *API) EtcdForfeitLeadership(ctx context.Context, _ *machine.EtcdForfeitLeadershipRequest) (*machine.EtcdForfeitLeadershipResponse, error) {
	msgs, err := apiCall(ctx, a, "EtcdForfeitLeadership", true, func(nc *nodeCall) (*machine.EtcdForfeitLeadership, error) {
		if err := checkControlplane(nc.m, "etcd forfeit leadership"); err != nil {
			return nil, err
		}
		c, err := EtcdClient(nc.tx, nc.m, nc.now)
		if err != nil {
			return nil, err
		}
		if err := localMember(c, nc.m); err != nil {
			return nil, err
		}
		members := SortedMembers(c)
		if len(members) == 1 {
			return nil, errors.New("failed to forfeit leadership: cannot forfeit leadership, only one member")
		}
		if EtcdLeader(nc.tx, c, nc.now) != nc.m.Address {
			return &machine.EtcdForfeitLeadership{}, nil
		}
		for _, addr := range members {
			if addr == nc.m.Address {
				continue
			}
			if !EtcdUp(nc.tx, c, addr, nc.now) {
				return nil, errors.New("failed to forfeit leadership: etcdserver: request timed out, leader transfer took too long")
			}
			c.EtcdLeader = addr
			return &machine.EtcdForfeitLeadership{Member: MemberName(nc.tx, c, addr)}, nil
		}
		return &machine.EtcdForfeitLeadership{}, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.EtcdForfeitLeadershipResponse{Messages: msgs}, nil
}

// EtcdMemberID is the etcd member ID of the control plane at address. Real
// etcd derives it from the peer URLs, the cluster token and the time the
// member was added; here it is the first 8 bytes of SHA-256 of the
// address: stable, distinct per address, never 0.
func EtcdMemberID(address string) uint64 {
	sum := sha256.Sum256([]byte(address))
	var id uint64
	for _, b := range sum[:8] {
		id = id<<8 | uint64(b)
	}
	if id == 0 {
		id = 1
	}
	return id
}

// EtcdStarted counts the members of c other than except whose etcd is up:
// the machine is configured into c and answers (network.TalosUp).
func EtcdStarted(tx *engine.Tx, c *engine.TalosCluster, except string, now time.Time) (started, total int) {
	for _, a := range c.EtcdMembers {
		if a == except {
			continue
		}
		total++
		if EtcdUp(tx, c, a, now) {
			started++
		}
	}
	return started, total
}

// EtcdUp reports whether member a of c runs: its machine is configured
// into c and answers.
func EtcdUp(tx *engine.Tx, c *engine.TalosCluster, a string, now time.Time) bool {
	om := tx.State.Machines[a]
	if om == nil || om.ClusterID != c.ID {
		return false
	}
	_, err := network.TalosUp(tx, a, now)
	return err == nil
}

// RemoveEtcdMember is etcd's MemberRemove of the member at address (Talos's
// LeaveCluster and RemoveMemberByMemberID send it): refused when the
// remaining started members would be below the quorum of the remaining
// cluster (the last member never can leave).
func RemoveEtcdMember(tx *engine.Tx, c *engine.TalosCluster, address string, now time.Time) error {
	started, others := EtcdStarted(tx, c, address, now)
	if started < others/2+1 {
		return fmt.Errorf("failed to remove member %d: etcdserver: re-configuration failed due to not enough started members (%s leaving; %d of the %d other members started)",
			EtcdMemberID(address), address, started, others)
	}
	c.EtcdMembers = slices.DeleteFunc(c.EtcdMembers, func(a string) bool { return a == address })
	if c.EtcdLeader == address {
		c.EtcdLeader = ""
	}
	return nil
}

// EtcdLeader is the member that leads etcd: the one leadership was last
// moved to while it runs, else the first running member in member-ID
// order; "" when fewer than a quorum of the members run (no leader).
func EtcdLeader(tx *engine.Tx, c *engine.TalosCluster, now time.Time) string {
	started, total := EtcdStarted(tx, c, "", now)
	if total == 0 || started < total/2+1 {
		return ""
	}
	if c.EtcdLeader != "" && slices.Contains(c.EtcdMembers, c.EtcdLeader) && EtcdUp(tx, c, c.EtcdLeader, now) {
		return c.EtcdLeader
	}
	for _, a := range SortedMembers(c) {
		if EtcdUp(tx, c, a, now) {
			return a
		}
	}
	return ""
}

// SortedMembers are c's etcd members in member-ID order, the order etcd
// lists them in.
func SortedMembers(c *engine.TalosCluster) []string {
	out := slices.Clone(c.EtcdMembers)
	slices.SortFunc(out, func(a, b string) int {
		ia, ib := EtcdMemberID(a), EtcdMemberID(b)
		switch {
		case ia < ib:
			return -1
		case ia > ib:
			return 1
		}
		return 0
	})
	return out
}

// ValidateForUpgrade is etcd's ValidateForUpgrade as machined runs it for a
// control plane: an etcd client on the control planes (none before
// bootstrap), two members refuse (an upgrade would lose quorum), and every
// member must be started and answer etcd's health check
// (validateMemberHealth, etcd.go:95-149): EtcdHealthy.
func ValidateForUpgrade(tx *engine.Tx, m *engine.TalosMachine, now time.Time, f engine.Faults) error {
	c := tx.State.Clusters[m.ClusterID]
	if c == nil || len(c.EtcdMembers) == 0 {
		return errors.New("failed to create etcd client: no controlplane endpoints discovered yet")
	}
	if EtcdLeader(tx, c, now) == "" {
		return errors.New("failed to acquire upgrade mutex: etcdserver: no leader")
	}
	members := SortedMembers(c)
	if len(members) == 2 {
		return fmt.Errorf("error validating etcd for upgrade: etcd member count(%d) is insufficient to maintain quorum if upgrade commences", len(members))
	}
	for _, addr := range members {
		if err := EtcdHealthy(tx, c, addr, now, f); err != nil {
			return fmt.Errorf("error validating etcd for upgrade: etcd member %016x is not healthy; all members must be healthy to perform an upgrade: context deadline exceeded (%s: %v)",
				EtcdMemberID(addr), addr, err)
		}
	}
	return nil
}

// EtcdHealthy says why member addr of c does not answer etcd's health
// check, or nil: its machine is configured into c and up (EtcdUp), and
// its etcd has had EtcdStartTime since the machine last booted.
func EtcdHealthy(tx *engine.Tx, c *engine.TalosCluster, addr string, now time.Time, f engine.Faults) error {
	if !EtcdUp(tx, c, addr, now) {
		if _, err := network.TalosUp(tx, addr, now); err != nil {
			return err
		}
		return errors.New("its machine is not configured into the cluster")
	}
	g, err := network.VMAt(tx, addr)
	if err != nil {
		return err
	}
	if ready := BootedAt(tx, g.VMID, now).Add(f.EtcdStart()); now.Before(ready) {
		return fmt.Errorf("etcd is starting after the node's boot (healthy at %s)", ready.Format(time.RFC3339Nano))
	}
	return nil
}

// ServiceList is machined's ServiceList (v1alpha1_server.go ServiceList)
// for the services the simulation has: apid, the kubelet and, on a
// control plane, etcd, whose health is EtcdHealthy (what `talosctl
// health`'s "etcd to be healthy" reads, pkg/cluster/check/service.go:
// 101-139).
func (a *API) ServiceList(ctx context.Context, _ *emptypb.Empty) (*machine.ServiceListResponse, error) {
	msgs, err := apiCall(ctx, a, "ServiceList", false, func(nc *nodeCall) (*machine.ServiceList, error) {
		running := func(id string, healthy bool, msg string) *machine.ServiceInfo {
			return &machine.ServiceInfo{Id: id, State: "Running",
				Events: &machine.ServiceEvents{Events: []*machine.ServiceEvent{{Msg: "Health check successful", State: "Running", Ts: timestamppb.New(nc.now)}}},
				Health: &machine.ServiceHealth{Healthy: healthy, LastMessage: msg}}
		}
		out := &machine.ServiceList{Services: []*machine.ServiceInfo{running("apid", true, ""), running("kubelet", true, "")}}
		if nc.m.Type == "controlplane" {
			c := nc.tx.State.Clusters[nc.m.ClusterID]
			err := errors.New("etcd is waiting to join the cluster")
			if c != nil {
				err = EtcdHealthy(nc.tx, c, nc.m.Address, nc.now, nc.faults)
			}
			svc := running("etcd", err == nil, "")
			if err != nil {
				svc.Health.LastMessage = err.Error()
			}
			out.Services = append(out.Services, svc)
		}
		return out, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.ServiceListResponse{Messages: msgs}, nil
}
