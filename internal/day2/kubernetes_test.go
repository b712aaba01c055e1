package day2

import (
	"fmt"
	"strings"
	"testing"

	talosmachine "github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
)

// generated is Talos's own generated configuration for role at a
// Kubernetes version, with a hostname patch as each node's own.
func generated(t *testing.T, b *secrets.Bundle, role machine.Type, k8s, hostname string) config.Provider {
	t.Helper()
	in, err := generate.NewInput("lab", "https://10.0.0.10:6443", k8s, generate.WithSecretsBundle(b))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := in.Config(role)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cfg.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	out, err := MachineConfig(string(raw), []string{fmt.Sprintf("machine:\n  network:\n    hostname: %s\n", hostname)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A Kubernetes patch upgrade of two control planes and a worker rolls in
// upgrade-k8s's order: each control-plane component over the control
// planes in turn, kube-proxy's image, then the kubelets, control planes
// first; an image patched into a node's old configuration changes nothing
// else in it.
func TestPlanKubernetesOrder(t *testing.T) {
	b, err := secrets.NewBundle(secrets.NewClock(), config.TalosVersionCurrent)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []NodeChange
	for _, n := range []struct {
		name string
		role machine.Type
	}{{"cp1", machine.TypeControlPlane}, {"w1", machine.TypeWorker}, {"cp2", machine.TypeControlPlane}} {
		nodes = append(nodes, NodeChange{
			Node: Node{Hostname: n.name, Address: "10.0.0." + n.name, ControlPlane: n.role == machine.TypeControlPlane},
			Old:  generated(t, b, n.role, "1.35.0", n.name),
			New:  generated(t, b, n.role, "1.35.1", n.name),
		})
	}
	var got []string
	for _, s := range PlanKubernetes(nodes) {
		got = append(got, string(s.Component)+"@"+s.Node.Hostname)
		if ImageTag(s.From) != "v1.35.0" || ImageTag(s.To) != "v1.35.1" {
			t.Errorf("%s: %s -> %s, want the v1.35.0 image to the v1.35.1 one", s, s.From, s.To)
		}
	}
	want := []string{
		"kube-apiserver@cp1", "kube-apiserver@cp2",
		"kube-controller-manager@cp1", "kube-controller-manager@cp2",
		"kube-scheduler@cp1", "kube-scheduler@cp2",
		"kube-proxy@cp1", "kube-proxy@cp2",
		"kubelet@cp1", "kubelet@cp2", "kubelet@w1",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("steps\n %v\nwant\n %v", got, want)
	}

	// Patching every new image into the old configuration gives the new
	// configuration: images are all a patch release changes.
	staged, err := WithImages(nodes[0].Old, Images(nodes[0].New))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := staged.EncodeString()
	w, _ := nodes[0].New.EncodeString()
	if a != w {
		t.Errorf("old configuration with the new images differs from the new configuration")
	}
	// One image patched in leaves the others on the old release.
	one, err := WithImages(nodes[0].Old, map[Component]string{APIServer: Images(nodes[0].New)[APIServer]})
	if err != nil {
		t.Fatal(err)
	}
	im := Images(one)
	if ImageTag(im[APIServer]) != "v1.35.1" || ImageTag(im[Kubelet]) != "v1.35.0" || ImageTag(im[Scheduler]) != "v1.35.0" {
		t.Errorf("one step's configuration has images %v", im)
	}
	if PlanKubernetes([]NodeChange{{Node: nodes[0].Node, Old: nodes[0].Old, New: nodes[0].Old}}) != nil {
		t.Error("an unchanged configuration must plan no step")
	}
}

// Kubernetes moves within a minor release or to the next one, as
// upgrade-k8s allows; the refusal says which release to go to first.
func TestCheckKubernetesPath(t *testing.T) {
	for _, ok := range [][2]string{{"v1.35.0", "v1.35.1"}, {"v1.35.2", "v1.35.0"}, {"v1.34.3", "v1.35.0"}} {
		if err := CheckKubernetesPath(ok[0], ok[1]); err != nil {
			t.Errorf("%s -> %s refused: %v", ok[0], ok[1], err)
		}
	}
	for _, bad := range []struct{ from, to, want string }{
		{"v1.33.1", "v1.35.0", "set kubernetesVersion to a v1.34.x release"},
		{"v1.35.0", "v1.34.2", "downgrade across minor releases"},
		{"v1.35.0", "2.0.0", `want v1.X.Y`},
	} {
		err := CheckKubernetesPath(bad.from, bad.to)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s -> %s: got %v, want an error saying %q", bad.from, bad.to, err, bad.want)
		}
	}
}

// A component runs when Talos lists its container running: a static pod's
// by name in CRI's state CONTAINER_RUNNING, the kubelet's by ID in
// containerd's state RUNNING; a stopped container or another name is not it.
func TestRunningIn(t *testing.T) {
	cri := []*talosmachine.ContainerInfo{
		{Name: "kube-apiserver", Image: "registry.k8s.io/kube-apiserver:v1.35.0", Status: "CONTAINER_EXITED"},
		{Name: "kube-apiserver", Image: "registry.k8s.io/kube-apiserver:v1.35.1", Status: "CONTAINER_RUNNING"},
		{Name: "kube-scheduler", Image: "registry.k8s.io/kube-scheduler:v1.35.0", Status: "CONTAINER_CREATED"},
	}
	system := []*talosmachine.ContainerInfo{
		{Id: "apid", Image: "ghcr.io/siderolabs/apid", Status: "RUNNING"},
		{Id: "kubelet", Image: "ghcr.io/siderolabs/kubelet:v1.35.1", Status: "RUNNING"},
	}
	for _, c := range []struct {
		cs    []*talosmachine.ContainerInfo
		comp  Component
		image string
		ok    bool
	}{
		{cri, APIServer, "registry.k8s.io/kube-apiserver:v1.35.1", true},
		{cri, Scheduler, "", false},
		{cri, ControllerManager, "", false},
		{system, Kubelet, "ghcr.io/siderolabs/kubelet:v1.35.1", true},
		{cri, Kubelet, "", false},
	} {
		if image, ok := runningIn(c.cs, c.comp); image != c.image || ok != c.ok {
			t.Errorf("%s: got %q %t, want %q %t", c.comp, image, ok, c.image, c.ok)
		}
	}
}
