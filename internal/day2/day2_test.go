package day2

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The installer image's tag is the Talos version it installs; Converge
// refuses an image whose tag is not the version it is asked for.
func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"factory.talos.dev/nocloud-installer/ce4c98:v1.12.1":           "v1.12.1",
		"ghcr.io/siderolabs/installer:v1.12.0":                         "v1.12.0",
		"registry.lan:5000/installer:v1.11.5":                          "v1.11.5",
		"registry.lan:5000/installer":                                  "",
		"ghcr.io/siderolabs/installer:v1.12.0@sha256:0123456789abcdef": "v1.12.0",
	} {
		if got := ImageTag(image); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", image, got, want)
		}
	}
	u := Upgrade{Node: Node{Address: "10.0.0.11"}, Cluster: []Node{{Address: "10.0.0.11"}},
		Version: "v1.12.1", Image: "ghcr.io/siderolabs/installer:v1.12.0"}
	if err := u.check(); err == nil || !strings.Contains(err.Error(), "does not carry version v1.12.1") {
		t.Errorf("a mismatched installer must be refused, got %v", err)
	}
	u.Image = "ghcr.io/siderolabs/installer:v1.12.1"
	u.Cluster = nil
	if err := u.check(); err == nil || !strings.Contains(err.Error(), "not one of the cluster's declared nodes") {
		t.Errorf("a node outside the declared cluster must be refused, got %v", err)
	}
}

// Control planes leave one at a time, and each removal needs a quorum of
// the members that stay started; removing every member is refused.
func TestCheckRemovals(t *testing.T) {
	cp := func(n string, started bool) EtcdMember {
		return EtcdMember{Hostname: "cp" + n, Address: "10.0.0.1" + n, Started: started}
	}
	cases := []struct {
		name     string
		members  []EtcdMember
		declared []string
		refused  string // "" when allowed
	}{
		{"nothing leaves", []EtcdMember{cp("1", true), cp("2", true), cp("3", true)}, []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, ""},
		{"3 to 1, all started", []EtcdMember{cp("1", true), cp("2", true), cp("3", true)}, []string{"10.0.0.11"}, ""},
		{"5 to 3, all started", []EtcdMember{cp("1", true), cp("2", true), cp("3", true), cp("4", true), cp("5", true)},
			[]string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, ""},
		{"3 to 1 with the staying cp3 down", []EtcdMember{cp("1", true), cp("2", true), cp("3", false)}, []string{"10.0.0.11", "10.0.0.13"},
			"removing control plane cp2 (10.0.0.12) would lose etcd quorum: 1 of the 2 other members answer and etcd needs 2 (not answering: cp3); bring them back first, or keep cp2 in sda:cluster.controlPlanes"},
		{"a dead member leaving first keeps quorum", []EtcdMember{cp("1", true), cp("2", false), cp("3", true)}, []string{"10.0.0.11", "10.0.0.13"}, ""},
		{"3 to 1 with the leaving cp3 down: cp3 goes first", []EtcdMember{cp("1", true), cp("2", true), cp("3", false)}, []string{"10.0.0.11"}, ""},
		{"5 to 3 with two stayers down (cp4 leaves first)", []EtcdMember{cp("1", true), cp("2", false), cp("3", false), cp("4", true), cp("5", true)},
			[]string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, "removing control plane cp4 (10.0.0.14) would lose etcd quorum: 2 of the 4 other members answer and etcd needs 3 (not answering: cp2, cp3)"},
		{"every member", []EtcdMember{cp("1", true)}, []string{"10.0.0.21"},
			"removing every etcd member (cp1) would leave no control plane"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRemovals(tc.members, tc.declared)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.refused)):
				t.Fatalf("got %v, want a refusal starting %q", err, tc.refused)
			}
		})
	}
}

// Talos's installer refuses, after draining the node, a host its release
// cannot upgrade from (machinery's compatibility data: 1.12 accepts hosts
// from 1.10 on and refuses downgrades past its bound); Upgradeable says so
// first, with Talos's own message.
func TestUpgradeable(t *testing.T) {
	for _, tc := range []struct{ running, target, refused string }{
		{"v1.11.5", "v1.12.1", ""},
		{"v1.10.0", "v1.12.0", ""},
		{"v1.12.0", "v1.12.0", ""}, // an installer change at the same version
		{"v1.9.5", "v1.12.1", "host version 1.9.5 is too old to upgrade to Talos 1.12.1"},
		{"v1.12.0", "not-a-version", "Short version cannot contain"},
	} {
		err := Upgradeable(tc.running, tc.target)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s → %s refused: %v", tc.running, tc.target, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s → %s: got %v, want %q", tc.running, tc.target, err, tc.refused)
		}
	}
}

// A node is done when it runs the version and, for an Image Factory
// installer, the installer's schematic: an extension change at the same
// version is not done until the node reports the new schematic.
func TestRunningSatisfies(t *testing.T) {
	const a = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
	const b = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
	if got := SchematicOf("factory.talos.dev/nocloud-installer/" + b + ":v1.12.0"); got != b {
		t.Fatalf("SchematicOf = %q, want %q", got, b)
	}
	if got := SchematicOf("ghcr.io/siderolabs/installer:v1.12.0"); got != "" {
		t.Fatalf("a vanilla installer has no schematic, got %q", got)
	}
	for _, tc := range []struct {
		running, want Running
		done          bool
	}{
		{Running{"v1.12.0", a}, Running{"v1.12.0", a}, true},
		{Running{"v1.12.0", a}, Running{"v1.12.0", b}, false},
		{Running{"v1.12.0", ""}, Running{"v1.12.0", b}, false},
		{Running{"v1.12.0", a}, Running{"v1.12.1", a}, false},
		{Running{"v1.12.0", a}, Running{"v1.12.0", ""}, true},
	} {
		if got := tc.running.Satisfies(tc.want); got != tc.done {
			t.Errorf("%v satisfies %v = %v, want %v", tc.running, tc.want, got, tc.done)
		}
	}
}

// Only a call that never reached the node is sent again: a refused
// connection. A node that answered, whatever it said, is not.
func TestConnectionRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.20.0.12:50000: connect: connection refused"`), true},
		{fmt.Errorf("upgrading: %w", status.Error(codes.Unavailable, "dial tcp 10.20.0.12:50000: connect: connection refused")), true},
		{status.Error(codes.Unavailable, "transport is closing"), false},
		{status.Error(codes.FailedPrecondition, "connection refused"), false},
		{errors.New("connect: connection refused"), false},
	} {
		if got := connectionRefused(tc.err); got != tc.want {
			t.Errorf("connectionRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
