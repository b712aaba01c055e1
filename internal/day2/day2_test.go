package day2

import (
	"strings"
	"testing"
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
