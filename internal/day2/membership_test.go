package day2

import (
	"fmt"
	"testing"

	"github.com/sda-platform/sda/internal/kube"
)

// What leaves and in which order: every undeclared Node and etcd member
// (an unnamed member that never started too), workers first, then control
// planes that do not answer, then those that do; addresses from SDA's
// previous declaration, never a declared node's address from what a Node
// reports about itself; declared nodes are never listed.
func TestLeavingMembers(t *testing.T) {
	cp := "node-role.kubernetes.io/control-plane"
	m := Membership{
		Declared: []Node{{"prod-cp1", "10.20.0.11", true}, {"prod-worker1", "10.20.0.21", false}},
		Previous: []Node{{"prod-cp1", "10.20.0.11", true}, {"prod-cp2", "10.20.0.12", true}, {"prod-cp3", "10.20.0.13", true},
			{"prod-worker1", "10.20.0.21", false}, {"prod-worker2", "10.20.0.22", false}},
	}
	nodes := []kube.Node{
		{Name: "prod-cp1", InternalIP: "10.20.0.11", Labels: map[string]string{cp: ""}},
		{Name: "prod-cp2", InternalIP: "10.20.0.99", Labels: map[string]string{cp: ""}}, // reports a wrong address
		{Name: "prod-cp3", InternalIP: "10.20.0.13", Labels: map[string]string{cp: ""}},
		{Name: "prod-worker1", InternalIP: "10.20.0.21"},
		{Name: "prod-worker2", InternalIP: "10.20.0.22"},
		{Name: "stray", InternalIP: "10.20.0.21"}, // claims a declared node's address
	}
	members := []EtcdMember{
		{Hostname: "prod-cp1", Address: "10.20.0.11", ID: 1},
		{Hostname: "prod-cp2", Address: "10.20.0.12", ID: 2},
		{Hostname: "prod-cp3", Address: "10.20.0.13", ID: 3},
		{Hostname: "", Address: "10.20.0.14", ID: 4}, // added, never started
	}
	answering := map[string]bool{"10.20.0.12": true, "10.20.0.22": true, "10.20.0.21": true}
	var asked []string
	got := m.leaving(nodes, members, func(a string) bool { asked = append(asked, a); return answering[a] })
	var out []string
	for _, l := range got {
		out = append(out, fmt.Sprintf("%s cp=%v answers=%v node=%v id=%d", l, l.ControlPlane, l.Answers, l.HasNode, l.MemberID))
	}
	want := []string{
		"prod-worker2 (10.20.0.22) cp=false answers=true node=true id=0",
		"stray cp=false answers=false node=true id=0",
		"unnamed etcd member 0000000000000004 (10.20.0.14) cp=true answers=false node=false id=4",
		"prod-cp3 (10.20.0.13) cp=true answers=false node=true id=3",
		"prod-cp2 (10.20.0.12) cp=true answers=true node=true id=2",
	}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("leaving =\n%q\nwant\n%q", out, want)
	}
	for _, a := range asked {
		if a == "10.20.0.21" || a == "10.20.0.11" {
			t.Errorf("a declared node's address %s was asked as a leaving node's", a)
		}
	}
}
