package overlay

import (
	"strings"
	"testing"
)

// The patch decides whether Talos installs flannel and kube-proxy; a wrong
// patch leaves a cluster with two CNIs or no service routing.
func TestMachinePatch(t *testing.T) {
	cases := []struct {
		name string
		cni  string
		kpr  bool
		want string
	}{
		{"flannel needs no patch", CNIFlannel, true, ""},
		{"cilium with kube-proxy replacement", CNICilium, true,
			"cluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n"},
		{"cilium keeping kube-proxy", CNICilium, false,
			"cluster:\n  network:\n    cni:\n      name: none\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := MachinePatch(tc.cni, tc.kpr); got != tc.want {
				t.Fatalf("MachinePatch = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCiliumValuesFollowTalosDocs(t *testing.T) {
	v := CiliumValues(true, 0)
	if v["k8sServiceHost"] != "localhost" || v["k8sServicePort"] != 7445 || v["kubeProxyReplacement"] != true {
		t.Fatalf("kube-proxy replacement must use KubePrism: %v", v)
	}
	if got := v["ipam"].(map[string]any)["mode"]; got != "kubernetes" {
		t.Fatalf("ipam.mode = %v", got)
	}
	caps := v["securityContext"].(map[string]any)["capabilities"].(map[string]any)
	if n := len(caps["ciliumAgent"].([]any)); n != 11 {
		t.Fatalf("ciliumAgent capabilities: %d, want the 11 Talos documents", n)
	}
	if v["cgroup"].(map[string]any)["autoMount"].(map[string]any)["enabled"] != false {
		t.Fatal("cgroup.autoMount must be off on Talos")
	}
	noKPR := CiliumValues(false, 0)
	if _, ok := noKPR["k8sServiceHost"]; ok || noKPR["kubeProxyReplacement"] != false {
		t.Fatalf("without replacement kube-proxy serves the API ClusterIP: %v", noKPR)
	}
	if !strings.Contains(MachinePatch(CNICilium, true), "name: none") {
		t.Fatal("cilium must turn off the built-in CNI")
	}
}

func TestCiliumMTUFollowsTheInternalNetwork(t *testing.T) {
	for _, tc := range []struct {
		mtu  int
		want any
	}{{0, nil}, {1500, nil}, {1450, 1450}, {8950, 8950}} {
		if got := CiliumValues(true, tc.mtu)["MTU"]; got != tc.want {
			t.Errorf("MTU %d: Helm value MTU = %v, want %v", tc.mtu, got, tc.want)
		}
	}
}
