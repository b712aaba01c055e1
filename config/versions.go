package config

// Version checks: the Talos, Kubernetes and Cilium versions are well formed,
// and the Talos and Kubernetes releases are a pair Talos's machinery knows
// to work together.

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"
)

var (
	versionRE      = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	chartVersionRE = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
)

// versionSyntax checks that the Talos and Kubernetes versions are release
// tags; versions checks the pair against machinery.
func (v *validator) versionSyntax(cl Cluster) {
	if !versionRE.MatchString(cl.TalosVersion) {
		v.add("sda:cluster.talosVersion", cl.TalosVersion, "use a Talos release such as %s", DefaultTalosVersion)
	}
	if !versionRE.MatchString(cl.KubernetesVersion) {
		v.add("sda:cluster.kubernetesVersion", cl.KubernetesVersion, "use a Kubernetes release such as %s", DefaultKubernetesVersion)
	}
}

// ciliumVersion checks the Cilium chart version when Cilium is the CNI.
func (v *validator) ciliumVersion(cl Cluster) {
	if cl.CNI == CNICilium && !chartVersionRE.MatchString(cl.Cilium.Version) {
		v.add("sda:cluster.cilium.version", cl.Cilium.Version, "use a Cilium chart version such as %s", DefaultCiliumVersion)
	}
}

// versions checks the Talos and Kubernetes versions against what Talos's
// machinery knows: the Talos release must be one machinery has a version
// contract for, and the Kubernetes release one that Talos release supports.
// Both messages name the versions that would work.
func (v *validator) versions(c Config) {
	cl := c.Cluster
	if !versionRE.MatchString(cl.TalosVersion) || !versionRE.MatchString(cl.KubernetesVersion) {
		return // reported by versionSyntax
	}
	talos, err := talosVersion(cl.TalosVersion)
	if err != nil {
		v.add("sda:cluster.talosVersion", cl.TalosVersion, "not a Talos version: %v", err)
		return
	}
	k8s, err := compatibility.ParseKubernetesVersion(cl.KubernetesVersion)
	if err != nil {
		v.add("sda:cluster.kubernetesVersion", cl.KubernetesVersion, "not a Kubernetes version: %v", err)
		return
	}
	known := KnownTalosMinors()
	if err := k8s.SupportedWith(talos); err != nil && !supportsAny(talos) {
		// Refused, not warned: without compatibility data nothing vouches
		// for the Kubernetes version, and the check is what stops a cluster
		// being created with a pair that Talos refuses to run.
		v.add("sda:cluster.talosVersion", cl.TalosVersion,
			"SDA's Talos machinery has compatibility data for Talos %s to %s only, so it cannot check sda:cluster.kubernetesVersion against it: use one of those releases, such as %s (a newer Talos needs SDA built with a newer github.com/siderolabs/talos/pkg/machinery)",
			known[0], known[len(known)-1], DefaultTalosVersion)
		return
	} else if err != nil {
		lo, hi := KubernetesRange(talos)
		age := "too old"
		if !minorBelow(strings.TrimPrefix(cl.KubernetesVersion, "v"), hi) {
			age = "too new"
		}
		fix := fmt.Sprintf("%s for Talos %s, which supports Kubernetes %s to %s: use one of those, such as v%s.0", age, cl.TalosVersion, lo, hi, hi)
		if works := TalosFor(k8s); len(works) > 0 {
			fix += fmt.Sprintf(", or a Talos release that supports %s: %s", cl.KubernetesVersion, strings.Join(works, ", "))
		}
		v.add("sda:cluster.kubernetesVersion", cl.KubernetesVersion, "%s", fix)
	}
}

// minorBelow reports whether version ("1.27.4") is of a lower major.minor
// than bound ("1.35"): a refused version not below the highest supported
// minor is too new (1.35.99 is, machinery's maximum being exclusive).
func minorBelow(version, bound string) bool {
	var vMajor, vMinor, bMajor, bMinor int
	fmt.Sscanf(version, "%d.%d", &vMajor, &vMinor)
	fmt.Sscanf(bound, "%d.%d", &bMajor, &bMinor)
	return vMajor < bMajor || vMajor == bMajor && vMinor < bMinor
}

func talosVersion(v string) (*compatibility.TalosVersion, error) {
	return compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: v})
}

// probed Kubernetes minors: far wider than any Talos release supports.
const minProbeMinor, maxProbeMinor = 10, 60

func supportsAny(t *compatibility.TalosVersion) bool {
	lo, _ := KubernetesRange(t)
	return lo != ""
}

// KubernetesRange is the lowest and highest Kubernetes minor ("1.30",
// "1.35") a Talos release supports, "" when machinery does not know it.
func KubernetesRange(t *compatibility.TalosVersion) (lo, hi string) {
	for m := minProbeMinor; m <= maxProbeMinor; m++ {
		k, _ := compatibility.ParseKubernetesVersion(fmt.Sprintf("1.%d.0", m))
		if k.SupportedWith(t) == nil {
			if lo == "" {
				lo = fmt.Sprintf("1.%d", m)
			}
			hi = fmt.Sprintf("1.%d", m)
		}
	}
	return lo, hi
}

// KnownTalosMinors are the Talos minors ("v1.2" ... "v1.12") Talos's
// machinery has compatibility data for.
func KnownTalosMinors() []string {
	var out []string
	for m := 0; m <= 40; m++ {
		t, err := talosVersion(fmt.Sprintf("v1.%d.0", m))
		if err == nil && supportsAny(t) {
			out = append(out, fmt.Sprintf("v1.%d", m))
		}
	}
	return out
}

// TalosFor lists the Talos minors that support a Kubernetes version.
func TalosFor(k *compatibility.KubernetesVersion) []string {
	var out []string
	for _, minor := range KnownTalosMinors() {
		t, _ := talosVersion(minor + ".0")
		if k.SupportedWith(t) == nil {
			out = append(out, minor)
		}
	}
	return out
}
