package day2

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
)

// EtcdMember is one member of the cluster's etcd as the cluster reports it.
type EtcdMember struct {
	Hostname string
	Address  string
	// ID is etcd's member ID (what EtcdRemoveMemberByID takes).
	ID uint64
	// Started is whether the member's node answers.
	Started bool
}

// QuorumError is CheckRemovals' refusal: a removal etcd cannot survive.
type QuorumError struct{ msg string }

func (e *QuorumError) Error() string { return e.msg }

// CheckRemovals refuses a removal of control planes that etcd cannot survive,
// before anything is removed. members are etcd's members now; declared the
// control-plane addresses the stack keeps. The members not declared leave one
// at a time in the membership step's order: those that do not answer first
// (removed by member ID), then the others in hostname order (`talosctl reset
// --graceful`); and etcd removes a member only while a quorum
// of the members that stay is started: removing one of n members needs
// floor((n-1)/2)+1 of the other n-1 started (etcd's strict reconfiguration
// check, which Talos's leave runs into). Removing every member is refused
// too: nothing would keep the cluster's state.
func CheckRemovals(members []EtcdMember, declared []string) error {
	var leaving, staying []EtcdMember
	for _, m := range members {
		if slices.Contains(declared, m.Address) {
			staying = append(staying, m)
		} else {
			leaving = append(leaving, m)
		}
	}
	if len(leaving) == 0 {
		return nil
	}
	if len(staying) == 0 {
		return &QuorumError{fmt.Sprintf("removing every etcd member (%s) would leave no control plane to keep the cluster's state: keep at least one of them in sda:cluster.controlPlanes", names(leaving))}
	}
	slices.SortFunc(leaving, func(a, b EtcdMember) int {
		if a.Started != b.Started {
			if !a.Started {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Hostname, b.Hostname)
	})
	current := slices.Clone(members)
	for _, m := range leaving {
		others, started := 0, 0
		var down []string
		for _, o := range current {
			if o.Address == m.Address {
				continue
			}
			others++
			if o.Started {
				started++
			} else {
				down = append(down, o.Hostname)
			}
		}
		if need := others/2 + 1; started < need {
			return &QuorumError{fmt.Sprintf("removing control plane %s (%s) would lose etcd quorum: %d of the %d other members answer and etcd needs %d (not answering: %s); bring them back first, or keep %s in sda:cluster.controlPlanes",
				m.Hostname, m.Address, started, others, need, strings.Join(down, ", "), m.Hostname)}
		}
		current = slices.DeleteFunc(current, func(o EtcdMember) bool { return o.Address == m.Address })
	}
	return nil
}

func names(ms []EtcdMember) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Hostname)
	}
	return strings.Join(out, ", ")
}

// LiveEtcdMembers asks the cluster for its etcd members and which of them
// answer, through the first of the endpoints (control-plane addresses) that
// answers.
func LiveEtcdMembers(ctx context.Context, cfg *clientconfig.Config, endpoints []string) ([]EtcdMember, error) {
	var lastErr error
	for _, ep := range endpoints {
		members, err := liveEtcdMembers(ctx, cfg, ep)
		if err == nil {
			return members, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no control plane answered: %w", lastErr)
}

func liveEtcdMembers(ctx context.Context, cfg *clientconfig.Config, endpoint string) ([]EtcdMember, error) {
	c, err := connect(ctx, cfg, endpoint)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.EtcdMemberList(client.WithNode(callCtx, endpoint), &machine.EtcdMemberListRequest{})
	if err != nil {
		return nil, err
	}
	var out []EtcdMember
	for _, msg := range resp.Messages {
		for _, m := range msg.Members {
			addr := peerAddress(m.PeerUrls)
			if addr == "" {
				continue
			}
			_, verr := c.Version(client.WithNode(callCtx, addr))
			out = append(out, EtcdMember{Hostname: m.Hostname, Address: addr, ID: m.Id, Started: verr == nil})
		}
	}
	return out, nil
}
