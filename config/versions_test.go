package config

import (
	"fmt"
	"testing"

	"github.com/siderolabs/talos/pkg/machinery/compatibility/talos112"
	"github.com/siderolabs/talos/pkg/machinery/compatibility/talos12"
)

// A Kubernetes version is checked against the Talos version with machinery's
// compatibility package before anything is created: the shipped stacks and
// the defaults pass, a pair Talos does not support is refused with the range
// it does support, and a Talos release machinery has no data for is refused
// (nothing could vouch for its Kubernetes version).
func TestKubernetesVersionCompatibility(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stack      string // a stack of testdata/stacks, else valid()
		talos, k8s string // set when not ""
		want       string // the one problem, "" when accepted
	}{
		{name: "dev stack", stack: "dev"},
		{name: "prod stack", stack: "prod"},
		{name: "defaults", talos: DefaultTalosVersion, k8s: DefaultKubernetesVersion},
		{name: "lowest for Talos 1.12", talos: "v1.12.0", k8s: "v1.30.0"},
		{name: "patch release of the highest", talos: "v1.12.1", k8s: "v1.35.4"},
		{name: "too new", talos: "v1.12.0", k8s: "v1.40.0",
			want: `sda:cluster.kubernetesVersion = "v1.40.0": too new for Talos v1.12.0, which supports Kubernetes 1.30 to 1.35: use one of those, such as v1.35.0`},
		{name: "too old", talos: "v1.12.0", k8s: "v1.20.0",
			want: `sda:cluster.kubernetesVersion = "v1.20.0": too old for Talos v1.12.0, which supports Kubernetes 1.30 to 1.35: use one of those, such as v1.35.0`},
		{name: "next minor, with the Talos releases that support it", talos: "v1.11.3", k8s: "v1.35.0",
			want: `sda:cluster.kubernetesVersion = "v1.35.0": too new for Talos v1.11.3, which supports Kubernetes 1.29 to 1.34: use one of those, such as v1.34.0, or a Talos release that supports v1.35.0: v1.12`},
		{name: "past machinery's exclusive maximum 1.35.99", talos: "v1.12.0", k8s: "v1.35.99",
			want: `sda:cluster.kubernetesVersion = "v1.35.99": too new for Talos v1.12.0, which supports Kubernetes 1.30 to 1.35: use one of those, such as v1.35.0`},
		{name: "Talos release machinery does not know", talos: "v1.13.0", k8s: DefaultKubernetesVersion,
			want: `sda:cluster.talosVersion = "v1.13.0": SDA's Talos machinery has compatibility data for Talos v1.2 to v1.12 only, so it cannot check sda:cluster.kubernetesVersion against it: use one of those releases, such as v1.12.0 (a newer Talos needs SDA built with a newer github.com/siderolabs/talos/pkg/machinery)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			if tc.stack != "" {
				var err error
				if c, _, err = LoadStack(repoRoot, tc.stack); err != nil {
					t.Fatal(err)
				}
			}
			if tc.talos != "" {
				c.Cluster.TalosVersion = tc.talos
			}
			if tc.k8s != "" {
				c.Cluster.KubernetesVersion = tc.k8s
			}
			c = WithDefaults(c)
			err := Validate(c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Talos %s with Kubernetes %s refused: %v", c.Cluster.TalosVersion, c.Cluster.KubernetesVersion, err)
			case tc.want == "":
				return
			case err == nil:
				t.Fatalf("Talos %s with Kubernetes %s accepted", c.Cluster.TalosVersion, c.Cluster.KubernetesVersion)
			}
			problems := err.(*Error).Problems
			if len(problems) != 1 || problems[0].String() != tc.want {
				t.Fatalf("got %v\nwant %s", problems, tc.want)
			}
		})
	}
}

// The range in the messages is computed through SupportedWith; it matches
// machinery's own constants (exclusive maximum x.y.99) for the newest and the
// oldest Talos release it knows.
func TestKubernetesRangeMatchesMachinery(t *testing.T) {
	m112, x112 := talos112.MinimumKubernetesVersion, talos112.MaximumKubernetesVersion
	m12, x12 := talos12.MinimumKubernetesVersion, talos12.MaximumKubernetesVersion
	for _, tc := range []struct {
		talos          string
		wantLo, wantHi string
	}{
		{"v1.12.0", fmt.Sprintf("%d.%d", m112.Major, m112.Minor), fmt.Sprintf("%d.%d", x112.Major, x112.Minor)},
		{"v1.2.8", fmt.Sprintf("%d.%d", m12.Major, m12.Minor), fmt.Sprintf("%d.%d", x12.Major, x12.Minor)},
	} {
		tv, err := talosVersion(tc.talos)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := KubernetesRange(tv)
		if lo != tc.wantLo || hi != tc.wantHi {
			t.Errorf("Talos %s: KubernetesRange = %s to %s, machinery's constants say %s to %s", tc.talos, lo, hi, tc.wantLo, tc.wantHi)
		}
	}
}

// Malformed versions are refused with an example of a release.
func TestVersionProblems(t *testing.T) {
	runProblemCases(t, []problemCase{
		{"Talos version not a version", func(c *Config) { c.Cluster.TalosVersion = "latest" }, "sda:cluster.talosVersion", "latest", "v1.12.0"},
		{"Kubernetes version not a version", func(c *Config) { c.Cluster.KubernetesVersion = "1.35" }, "sda:cluster.kubernetesVersion", "1.35", "v1.35.0"},
	})
}

// The Cilium chart version is checked only when Cilium is the CNI, and
// then must be a bare chart version (no "v").
func TestCiliumVersion(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"chart version with a v",
			func(c *Config) { c.Cluster.CNI, c.Cluster.Cilium.Version = CNICilium, "v1.16.5" },
			"sda:cluster.cilium.version", "v1.16.5", []string{"chart version such as " + DefaultCiliumVersion}},
	})
	c := valid()
	c.Cluster.CNI, c.Cluster.Cilium.Version = CNIFlannel, "whatever"
	if _, _, err := Resolve(c); err != nil {
		t.Errorf("a Cilium version with flannel refused: %v", err)
	}
	c.Cluster.CNI, c.Cluster.Cilium.Version = CNICilium, "1.16.5"
	if _, _, err := Resolve(c); err != nil {
		t.Errorf("Cilium 1.16.5 refused: %v", err)
	}
}

func TestVersionRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{"Kubernetes too new for Talos 1.12",
			func(c *Config) { c.Cluster.KubernetesVersion = "v1.36.2" },
			"sda:cluster.kubernetesVersion", "v1.36.2",
			[]string{"too new", "Talos v1.12.0, which supports Kubernetes 1.30 to 1.35", "v1.35.0"}},
		{"Kubernetes too old for Talos 1.12",
			func(c *Config) { c.Cluster.KubernetesVersion = "v1.27.4" },
			"sda:cluster.kubernetesVersion", "v1.27.4",
			[]string{"too old", "1.30 to 1.35", "a Talos release that supports v1.27.4: v1.4, v1.5, v1.6, v1.7, v1.8, v1.9"}},
		{"older Talos with a Kubernetes it predates",
			func(c *Config) { c.Cluster.TalosVersion, c.Cluster.KubernetesVersion = "v1.9.5", "v1.34.1" },
			"sda:cluster.kubernetesVersion", "v1.34.1",
			[]string{"too new for Talos v1.9.5, which supports Kubernetes 1.27 to 1.32", "supports v1.34.1: v1.11, v1.12"}},
		{"Talos release machinery does not know",
			func(c *Config) { c.Cluster.TalosVersion = "v1.14.0" },
			"sda:cluster.talosVersion", "v1.14.0",
			[]string{"for Talos v1.2 to v1.12 only", DefaultTalosVersion}},
		{"Talos 2.x",
			func(c *Config) { c.Cluster.TalosVersion = "v2.0.0" },
			"sda:cluster.talosVersion", "v2.0.0", []string{"v1.12"}},
	})
	// Matching pairs pass.
	for _, pair := range [][2]string{{"v1.12.1", "v1.30.0"}, {"v1.11.5", "v1.34.3"}, {"v1.10.0", "v1.33.0"}} {
		c := valid()
		c.Cluster.TalosVersion, c.Cluster.KubernetesVersion = pair[0], pair[1]
		if _, _, err := Resolve(c); err != nil {
			t.Errorf("Talos %s with Kubernetes %s refused: %v", pair[0], pair[1], err)
		}
	}
}
