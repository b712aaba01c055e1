package talos_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cosi-project/runtime/pkg/safe"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"github.com/siderolabs/talos/pkg/machinery/resources/k8s"
	"gopkg.in/yaml.v3"
)

// manifestObject is one object of a Manifest resource as a client reads
// it: the resource's ID, then kind, namespace/name and the first
// container's image (for workloads).
type manifestObject struct {
	id, kind, name, image string
}

// manifestsOn lists node's Manifest resources as upgrade-k8s does
// (go-kubernetes manifests.GetBootstrapManifests: machinery's COSI
// client, type Manifests.kubernetes.talos.dev in namespace controlplane).
func manifestsOn(t *testing.T, c *client.Client, node string) []manifestObject {
	t.Helper()
	list, err := safe.StateListAll[*k8s.Manifest](client.WithNode(simtest.CtxTimeout(t), node), c.COSI)
	simtest.NoErr(t, err)
	var out []manifestObject
	for m := range list.All() {
		if m.Metadata().Namespace() != k8s.ControlPlaneNamespaceName {
			t.Errorf("manifest %s in namespace %q", m.Metadata().ID(), m.Metadata().Namespace())
		}
		for _, item := range m.TypedSpec().Items {
			o := item.Object
			meta, _ := o["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			if ns, _ := meta["namespace"].(string); ns != "" {
				name = ns + "/" + name
			}
			kind, _ := o["kind"].(string)
			obj := manifestObject{id: m.Metadata().ID(), kind: o["apiVersion"].(string) + " " + kind, name: name}
			if spec, ok := o["spec"].(map[string]any); ok {
				tmpl, _ := spec["template"].(map[string]any)
				ps, _ := tmpl["spec"].(map[string]any)
				if cs, _ := ps["containers"].([]any); len(cs) > 0 {
					obj.image, _ = cs[0].(map[string]any)["image"].(string)
				}
			}
			out = append(out, obj)
		}
	}
	return out
}

func imageOf(objs []manifestObject, kind, name string) string {
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o.image
		}
	}
	return "(absent)"
}

func manifestIDs(objs []manifestObject) []string {
	var ids []string
	for _, o := range objs {
		if len(ids) == 0 || ids[len(ids)-1] != o.id {
			ids = append(ids, o.id)
		}
	}
	return ids
}

// A control plane serves the bootstrap manifests Talos v1.12.0's
// ManifestController renders from its running configuration, under
// Talos's resource IDs and in ID order (the order upgrade-k8s syncs
// them): kube-proxy's DaemonSet with cluster.proxy.image, CoreDNS's
// Deployment with Talos v1.12.0's default image when cluster.coreDNS.image
// is unset, flannel's DaemonSet with Talos's flannel image. A worker has
// no manifests (an empty list, not an error).
func TestTalosAPIManifests(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	c := f.Client(f.ClientConfig, f.CPs[0])
	objs := manifestsOn(t, c, f.CPs[0])
	wantIDs := []string{"00-kubelet-bootstrapping-token", "01-csr-approver-role-binding", "01-csr-node-bootstrap",
		"01-csr-renewal-role-binding", "05-flannel", "10-kube-proxy", "11-core-dns", "11-core-dns-svc",
		"11-kube-config-in-cluster", "11-talos-node-rbac-template"}
	if got := manifestIDs(objs); !slices.Equal(got, wantIDs) {
		t.Fatalf("manifest IDs %v, want %v", got, wantIDs)
	}
	var flat []string
	for _, o := range objs {
		flat = append(flat, fmt.Sprintf("%s: %s %s", o.id, o.kind, o.name))
	}
	// Each manifest's objects in the order its template lists them.
	want := []string{
		"05-flannel: rbac.authorization.k8s.io/v1 ClusterRole flannel",
		"05-flannel: rbac.authorization.k8s.io/v1 ClusterRoleBinding flannel",
		"05-flannel: v1 ServiceAccount kube-system/flannel",
		"05-flannel: v1 ConfigMap kube-system/kube-flannel-cfg",
		"05-flannel: apps/v1 DaemonSet kube-system/kube-flannel",
		"10-kube-proxy: apps/v1 DaemonSet kube-system/kube-proxy",
		"10-kube-proxy: v1 ServiceAccount kube-system/kube-proxy",
		"10-kube-proxy: rbac.authorization.k8s.io/v1 ClusterRoleBinding kube-proxy",
		"11-core-dns: v1 ServiceAccount kube-system/coredns",
		"11-core-dns: rbac.authorization.k8s.io/v1 ClusterRole system:coredns",
		"11-core-dns: rbac.authorization.k8s.io/v1 ClusterRoleBinding system:coredns",
		"11-core-dns: v1 ConfigMap kube-system/coredns",
		"11-core-dns: apps/v1 Deployment kube-system/coredns",
		"11-core-dns-svc: v1 Service kube-system/kube-dns",
	}
	for _, w := range want {
		if !slices.Contains(flat, w) {
			t.Errorf("missing %q in %v", w, flat)
		}
	}
	if i, j := slices.Index(flat, want[0]), slices.Index(flat, want[4]); i > j {
		t.Errorf("flannel's objects out of order: %v", flat)
	}
	if got := flat[0]; got != "00-kubelet-bootstrapping-token: v1 Secret kube-system/bootstrap-token-"+bootstrapTokenID(t, f) {
		t.Errorf("first object %q", got)
	}
	for _, tc := range []struct{ kind, name, image string }{
		{"apps/v1 DaemonSet", "kube-system/kube-proxy", "registry.k8s.io/kube-proxy:v1.35.0"},
		// Talos v1.12.0 constants.DefaultCoreDNSVersion.
		{"apps/v1 Deployment", "kube-system/coredns", "registry.k8s.io/coredns/coredns:v1.13.2"},
		// Talos v1.12.0 pkg/images: ghcr.io/siderolabs/flannel:<FlannelVersion>.
		{"apps/v1 DaemonSet", "kube-system/kube-flannel", "ghcr.io/siderolabs/flannel:v0.27.4"},
	} {
		if got := imageOf(objs, tc.kind, tc.name); got != tc.image {
			t.Errorf("%s %s image %q, want %q", tc.kind, tc.name, got, tc.image)
		}
	}

	if got := manifestsOn(t, c, f.Workers[0]); len(got) != 0 {
		t.Errorf("a worker lists manifests: %v", got)
	}
}

// bootstrapTokenID is the ID part of the control plane configuration's
// cluster.token ("<id>.<secret>").
func bootstrapTokenID(t *testing.T, f *simtest.TalosAPIFixture) string {
	t.Helper()
	doc := map[string]any{}
	simtest.NoErr(t, yaml.Unmarshal([]byte(f.State().Machines[f.CPs[0]].Config), &doc))
	id, _, ok := strings.Cut(engine.Str(doc, "cluster.token"), ".")
	if !ok || id == "" {
		t.Fatal("no cluster.token in the control plane's configuration")
	}
	return id
}

// The manifests follow the running configuration: a new cluster.proxy.image
// (what a Kubernetes roll patches in) changes kube-proxy's DaemonSet, a set
// cluster.coreDNS.image changes CoreDNS's Deployment; kube-proxy disabled,
// another CNI and an inline manifest change which manifests exist; the
// Talos API access feature adds Talos's ServiceAccount CRD.
func TestTalosAPIManifestsFollowConfig(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 0, true)
	c := f.Client(f.ClientConfig, f.CPs[0])
	_, err := reapply(f.TalosFixture, f.CPs[0], nil, `cluster: {proxy: {image: "registry.k8s.io/kube-proxy:v1.35.1"}, coreDNS: {image: "registry.k8s.io/coredns/coredns:v1.12.4"}}`)
	simtest.NoErr(t, err)
	objs := manifestsOn(t, c, f.CPs[0])
	if got := imageOf(objs, "apps/v1 DaemonSet", "kube-system/kube-proxy"); got != "registry.k8s.io/kube-proxy:v1.35.1" {
		t.Errorf("kube-proxy image %q after the new cluster.proxy.image", got)
	}
	if got := imageOf(objs, "apps/v1 Deployment", "kube-system/coredns"); got != "registry.k8s.io/coredns/coredns:v1.12.4" {
		t.Errorf("coredns image %q after cluster.coreDNS.image", got)
	}

	_, err = reapply(f.TalosFixture, f.CPs[0], nil, `cluster:
  proxy: {disabled: true}
  network: {cni: {name: none}}
  inlineManifests:
    - name: extra
      contents: |
        apiVersion: v1
        kind: Namespace
        metadata: {name: extra}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings, namespace: extra}
machine: {features: {kubernetesTalosAPIAccess: {enabled: true, allowedRoles: ["os:reader"], allowedKubernetesNamespaces: [kube-system]}}}`)
	simtest.NoErr(t, err)
	objs = manifestsOn(t, c, f.CPs[0])
	wantIDs := []string{"00-kubelet-bootstrapping-token", "01-csr-approver-role-binding", "01-csr-node-bootstrap",
		"01-csr-renewal-role-binding", "11-core-dns", "11-core-dns-svc", "11-kube-config-in-cluster",
		"11-talos-node-rbac-template", "13-talos-service-account-crd", "99-extra"}
	if got := manifestIDs(objs); !slices.Equal(got, wantIDs) {
		t.Fatalf("manifest IDs %v, want %v", got, wantIDs)
	}
	last := objs[len(objs)-3:]
	want := []manifestObject{
		{id: "13-talos-service-account-crd", kind: "apiextensions.k8s.io/v1 CustomResourceDefinition", name: "serviceaccounts.talos.dev"},
		{id: "99-extra", kind: "v1 Namespace", name: "extra"},
		{id: "99-extra", kind: "v1 ConfigMap", name: "extra/settings"},
	}
	if !slices.Equal(last, want) {
		t.Errorf("last objects %+v, want %+v", last, want)
	}
}
