package day2

import (
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/siderolabs/crypto/x509"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// manifestsCluster is a simulated world with one bootstrapped control
// plane (10.0.0.11) and one worker (10.0.0.21), made through the simulated
// providers as Pulumi would make it, its Talos API served on a listener
// the process reaches through HTTPS_PROXY (as talosctl reaches nodes
// behind a proxy). It returns the talosconfig of the cluster.
func manifestsCluster(t *testing.T) *clientconfig.Config {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	failOn(t, engine.WriteWorld(dir, engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "192.0.2.10"})))
	px, err := simulator.New("proxmoxve", dir)
	failOn(t, err)
	tl, err := simulator.New("talos", dir)
	failOn(t, err)
	create := func(s *engine.Server, typ, name string, props map[string]any) map[string]any {
		t.Helper()
		in, err := structpb.NewStruct(props)
		failOn(t, err)
		resp, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: "urn:pulumi:dev::sda::" + typ + "::" + name, Properties: in})
		if err != nil {
			t.Fatalf("creating %s %s: %v", typ, name, err)
		}
		return withoutSecretWrappers(resp.GetProperties().AsMap()).(map[string]any)
	}
	sec := create(tl, talos.TokenSecrets, "secrets", map[string]any{"talosVersion": "v1.12.0"})
	cc := sec["clientConfiguration"].(map[string]any)
	configFor := func(role string) string {
		args, err := structpb.NewStruct(map[string]any{"clusterName": "lab", "clusterEndpoint": "https://10.0.0.11:6443",
			"machineType": role, "machineSecrets": sec["machineSecrets"], "talosVersion": "v1.12.0", "kubernetesVersion": "v1.35.0"})
		failOn(t, err)
		resp, err := tl.Invoke(ctx, &pulumirpc.InvokeRequest{Tok: talos.TokenGetMachineCfg, Args: args})
		failOn(t, err)
		return withoutSecretWrappers(resp.GetReturn().AsMap()).(map[string]any)["machineConfiguration"].(string)
	}
	nodes := map[string]string{"10.0.0.11": configFor("controlplane"), "10.0.0.21": configFor("worker")}
	vmid := 8011
	for _, addr := range []string{"10.0.0.11", "10.0.0.21"} {
		create(px, proxmox.TokenVM, "vm-"+addr, map[string]any{
			"nodeName": "pve", "vmId": vmid,
			"cpu":            map[string]any{"cores": 2},
			"memory":         map[string]any{"dedicated": 2048},
			"disks":          []any{map[string]any{"interface": "scsi0", "datastoreId": "local-lvm", "size": 10}},
			"networkDevices": []any{map[string]any{"bridge": "vmbr0", "macAddress": "02:00:00:00:00:01"}},
			"initialization": map[string]any{"datastoreId": "local-lvm",
				"ipConfigs": []any{map[string]any{"ipv4": map[string]any{"address": addr + "/24", "gateway": "10.0.0.1"}}}},
		})
		vmid++
		create(tl, talos.TokenApply, "apply-"+addr, map[string]any{"node": addr, "clientConfiguration": cc,
			"machineConfigurationInput": nodes[addr], "configPatches": []any{}})
	}
	create(tl, talos.TokenBootstrap, "bootstrap", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc})

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	failOn(t, err)
	srvCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- simulator.ServeTalosAPI(srvCtx, dir, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTalosAPI: %v", err)
		}
	})
	// Go reads the proxy settings once per process: another test of this
	// package reaching nodes through a proxy would have to share this
	// listener (simulator.ServeTalosAPIOf serves changing directories).
	for _, k := range []string{"HTTPS_PROXY", "https_proxy"} {
		t.Setenv(k, "http://"+lis.Addr().String())
	}
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
	return clientconfig.NewConfig("lab", []string{"10.0.0.11"}, decodeB64(t, cc["caCertificate"]),
		&x509.PEMEncodedCertificateAndKey{Crt: decodeB64(t, cc["clientCertificate"]), Key: decodeB64(t, cc["clientKey"])})
}

// withoutSecretWrappers strips the Pulumi engine's secret wrappers from provider
// outputs.
func withoutSecretWrappers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["4dabf18193072939515e22adb298388d"]; ok {
			return withoutSecretWrappers(t["value"])
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = withoutSecretWrappers(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = withoutSecretWrappers(e)
		}
		return out
	}
	return v
}

func decodeB64(t *testing.T, v any) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(v.(string))
	failOn(t, err)
	return b
}

func failOn(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// firstImage is the first container's image of a workload's pod template.
func firstImage(m Manifest) string {
	spec, _ := m.Object["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	ps, _ := tmpl["spec"].(map[string]any)
	cs, _ := ps["containers"].([]any)
	if len(cs) == 0 {
		return ""
	}
	img, _ := cs[0].(map[string]any)["image"].(string)
	return img
}

// BootstrapManifests reads a control plane's manifests through the Talos
// API in upstream's order (resource ID order, each resource's objects in
// their order): the bootstrap token Secret first, flannel (05) before
// kube-proxy (10) before CoreDNS (11), with the images of the running
// configuration; every object has its identity and a path to apply it
// to. A worker has none.
func TestBootstrapManifestsFromSimulatedControlPlane(t *testing.T) {
	cfg := manifestsCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := BootstrapManifests(ctx, cfg, "10.0.0.11")
	failOn(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.String())
		if _, err := ApplyPath(m); err != nil {
			t.Errorf("no apply path for a bootstrap manifest: %v", err)
		}
	}
	index := func(s string) int {
		for i, g := range got {
			if g == s {
				return i
			}
		}
		t.Fatalf("%q not among %v", s, got)
		return -1
	}
	if !strings.HasPrefix(got[0], "v1 Secret kube-system/bootstrap-token-") {
		t.Errorf("first object %q, want the kubelet bootstrap token", got[0])
	}
	flannel := index("apps/v1 DaemonSet kube-system/kube-flannel")
	proxy := index("apps/v1 DaemonSet kube-system/kube-proxy")
	coredns := index("apps/v1 Deployment kube-system/coredns")
	svc := index("v1 Service kube-system/kube-dns")
	if !(flannel < proxy && proxy < coredns && coredns < svc) {
		t.Errorf("order %v", got)
	}
	for i, want := range map[int]string{
		flannel: "ghcr.io/siderolabs/flannel:v0.27.4",
		proxy:   "registry.k8s.io/kube-proxy:v1.35.0",
		coredns: "registry.k8s.io/coredns/coredns:v1.13.2",
	} {
		if img := firstImage(ms[i]); img != want {
			t.Errorf("%s runs %q, want %q", ms[i], img, want)
		}
	}
	if ms[proxy].Namespace != "kube-system" || ms[proxy].Name != "kube-proxy" || ms[proxy].APIVersion != "apps/v1" || ms[proxy].Kind != "DaemonSet" {
		t.Errorf("kube-proxy's identity %+v", ms[proxy])
	}

	w, err := BootstrapManifests(ctx, cfg, "10.0.0.21")
	failOn(t, err)
	if len(w) != 0 {
		t.Errorf("a worker has manifests: %v", w)
	}
}

// ApplyPath gives each kind of Talos's manifests its REST path (core group
// under /api/v1, others under /apis/<group>/<version>, namespaced objects
// under their namespace, cluster-scoped ones not even when a namespace is
// set, a namespaced one without a namespace under "default" as Talos
// created it), applied with upgrade-k8s's query (field manager talos,
// forced); an unknown kind or a malformed apiVersion is refused, naming
// what is wrong.
func TestApplyPathManifest(t *testing.T) {
	if FieldManager != "talos" || !ForceConflicts {
		t.Errorf("apply as %q force %t, want upstream's talos, forced", FieldManager, ForceConflicts)
	}
	for _, tc := range []struct {
		m    Manifest
		want string
	}{
		{Manifest{APIVersion: "apps/v1", Kind: "DaemonSet", Namespace: "kube-system", Name: "kube-proxy"},
			"/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy"},
		{Manifest{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "kube-system", Name: "coredns"},
			"/apis/apps/v1/namespaces/kube-system/deployments/coredns"},
		{Manifest{APIVersion: "v1", Kind: "Service", Namespace: "kube-system", Name: "kube-dns"},
			"/api/v1/namespaces/kube-system/services/kube-dns"},
		{Manifest{APIVersion: "v1", Kind: "ConfigMap", Namespace: "kube-system", Name: "coredns"},
			"/api/v1/namespaces/kube-system/configmaps/coredns"},
		{Manifest{APIVersion: "v1", Kind: "Secret", Namespace: "kube-system", Name: "bootstrap-token-abcdef"},
			"/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef"},
		{Manifest{APIVersion: "v1", Kind: "ServiceAccount", Namespace: "kube-system", Name: "flannel"},
			"/api/v1/namespaces/kube-system/serviceaccounts/flannel"},
		{Manifest{APIVersion: "v1", Kind: "Namespace", Name: "extra"}, "/api/v1/namespaces/extra"},
		// An inline manifest's object without a namespace: Talos created it in "default".
		{Manifest{APIVersion: "v1", Kind: "ConfigMap", Name: "settings"}, "/api/v1/namespaces/default/configmaps/settings"},
		{Manifest{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "system:coredns"},
			"/apis/rbac.authorization.k8s.io/v1/clusterroles/system:coredns"},
		{Manifest{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Namespace: "ignored", Name: "kube-proxy"},
			"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kube-proxy"},
		{Manifest{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding", Namespace: "extra", Name: "reader"},
			"/apis/rbac.authorization.k8s.io/v1/namespaces/extra/rolebindings/reader"},
		{Manifest{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "serviceaccounts.talos.dev"},
			"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/serviceaccounts.talos.dev"},
	} {
		got, err := ApplyPath(tc.m)
		if err != nil || got != tc.want {
			t.Errorf("ApplyPath(%s) = %q, %v; want %q", tc.m, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		m    Manifest
		want string
	}{
		{Manifest{APIVersion: "batch/v1", Kind: "CronJob", Namespace: "kube-system", Name: "x"},
			`batch/v1 CronJob kube-system/x: SDA does not know the REST resource of kind CronJob in API group "batch"`},
		{Manifest{APIVersion: "v1", Kind: "Pod", Namespace: "kube-system", Name: "x"},
			`v1 Pod kube-system/x: SDA does not know the REST resource of kind Pod in API group ""`},
		{Manifest{APIVersion: "v2", Kind: "DaemonSet", Namespace: "kube-system", Name: "x"},
			`kind DaemonSet in API group ""`},
		{Manifest{APIVersion: "apps/", Kind: "DaemonSet", Namespace: "kube-system", Name: "x"},
			`apiVersion "apps/" is not <group>/<version> or <version>`},
	} {
		_, err := ApplyPath(tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ApplyPath(%s) = %v, want an error containing %q", tc.m, err, tc.want)
		}
	}
}
