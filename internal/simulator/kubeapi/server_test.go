package kubeapi_test

import (
	"bytes"
	"crypto/tls"
	stdx509 "crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosi-project/runtime/pkg/safe"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"github.com/siderolabs/talos/pkg/machinery/resources/k8s"
)

// kubeFixture is a Talos API fixture with the admin kubeconfig's client
// certificate, talking to the cluster endpoint through the listener as a
// proxied net/http client does (CONNECT host:6443).
type kubeFixture struct {
	*simtest.TalosAPIFixture
	kc       map[string]any
	endpoint string
}

func newKubeFixture(t *testing.T, cps, workers int) *kubeFixture {
	t.Helper()
	f := simtest.NewTalosAPIFixture(t, cps, workers, true)
	_, outs, err := simtest.Create(t, f.Talos, talos.TokenKubeconfig, "kubeconfig", map[string]any{"node": f.CPs[0], "clientConfiguration": f.ClientConfig})
	simtest.NoErr(t, err)
	return &kubeFixture{TalosAPIFixture: f, kc: outs["kubernetesClientConfiguration"].(map[string]any), endpoint: "https://10.0.0.11:6443"}
}

// httpClient is a plain net/http client through the simulator's proxy
// with the client certificate of kc, trusting caPEM.
func (f *kubeFixture) httpClient(kc map[string]any, caPEM []byte) *http.Client {
	crt, err := tls.X509KeyPair(talos.Unb64(engine.Str(kc, "clientCertificate")), talos.Unb64(engine.Str(kc, "clientKey")))
	simtest.NoErr(f.T, err)
	pool := stdx509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	proxy, _ := url.Parse("http://" + f.Addr)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{crt}}}}
}

// do sends a request to the cluster endpoint and decodes the JSON reply.
func (f *kubeFixture) do(method, path, ctype, body string) (int, map[string]any) {
	f.T.Helper()
	return f.doWith(f.httpClient(f.kc, talos.Unb64(engine.Str(f.kc, "caCertificate"))), f.endpoint, method, path, ctype, body)
}

func (f *kubeFixture) doWith(c *http.Client, base, method, path, ctype, body string) (int, map[string]any) {
	f.T.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewBufferString(body))
	simtest.NoErr(f.T, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	simtest.NoErr(f.T, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		f.T.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

func (f *kubeFixture) items(path string) []map[string]any {
	f.T.Helper()
	code, out := f.do("GET", path, "", "")
	if code != 200 {
		f.T.Fatalf("GET %s: %d %v", path, code, out)
	}
	var items []map[string]any
	for _, it := range engine.List(out, "items") {
		items = append(items, it.(map[string]any))
	}
	return items
}

func names(objs []map[string]any) []string {
	var out []string
	for _, o := range objs {
		out = append(out, engine.Str(o, "metadata.name"))
	}
	return out
}

func condition(obj map[string]any, typ string) string {
	for i := range engine.List(obj, "status.conditions") {
		c := engine.Get(obj, "status.conditions").([]any)[i].(map[string]any)
		if c["type"] == typ {
			return c["status"].(string)
		}
	}
	return ""
}

func (f *kubeFixture) nodeNamed(addr string) string {
	for _, n := range f.Cluster().Nodes {
		if n.Address == addr {
			return n.Name
		}
	}
	f.T.Fatalf("no node for %s", addr)
	return ""
}

// Nodes are served with the labels, addresses, Ready condition and kubelet
// version the simulation gives them; label selectors filter them; a node
// whose VM stopped reports Ready Unknown (the kubelet stopped posting).
func TestKubeAPINodes(t *testing.T) {
	f := newKubeFixture(t, 1, 2)
	nodes := f.items("/api/v1/nodes")
	if len(nodes) != 3 {
		t.Fatalf("nodes %v", names(nodes))
	}
	for _, n := range nodes {
		if condition(n, "Ready") != "True" || engine.Str(n, "status.nodeInfo.kubeletVersion") != "v"+constants.DefaultKubernetesVersion ||
			engine.Str(n, "metadata.resourceVersion") == "" || engine.Str(n, "status.addresses[0].type") != "InternalIP" {
			t.Errorf("node %s: %v", engine.Str(n, "metadata.name"), n["status"])
		}
	}
	cp := f.items("/api/v1/nodes?labelSelector=" + url.QueryEscape("node-role.kubernetes.io/control-plane"))
	workers := f.items("/api/v1/nodes?labelSelector=" + url.QueryEscape("!node-role.kubernetes.io/control-plane"))
	if len(cp) != 1 || engine.Str(cp[0], "status.addresses[0].address") != f.CPs[0] || len(workers) != 2 {
		t.Fatalf("control planes %v, workers %v", names(cp), names(workers))
	}
	w := f.nodeNamed(f.Workers[0])
	if got := f.items("/api/v1/nodes?labelSelector=" + url.QueryEscape("kubernetes.io/hostname="+w)); len(got) != 1 {
		t.Fatalf("hostname selector: %v", names(got))
	}
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[tx.State.Machines[f.Workers[0]].VMID].Started = false
		return nil
	}))
	code, n := f.do("GET", "/api/v1/nodes/"+w, "", "")
	if code != 200 || condition(n, "Ready") != "Unknown" {
		t.Fatalf("stopped worker: %d Ready=%q", code, condition(n, "Ready"))
	}
	code, st := f.do("GET", "/api/v1/nodes/nope", "", "")
	if code != 404 || st["reason"] != "NotFound" || st["message"] != `nodes "nope" not found` {
		t.Fatalf("unknown node: %d %v", code, st)
	}
}

// Cordon is a merge patch of spec.unschedulable (stored as Cordoned, what
// talos.GetHealth's schedulable check reads), uncordon a strategic merge patch;
// a stale resourceVersion precondition is a 409; deleting a node removes
// it and its pods.
func TestKubeAPICordonAndDelete(t *testing.T) {
	f := newKubeFixture(t, 1, 1)
	w := f.nodeNamed(f.Workers[0])
	_, before := f.do("GET", "/api/v1/nodes/"+w, "", "")
	code, n := f.do("PATCH", "/api/v1/nodes/"+w, "application/merge-patch+json", `{"spec":{"unschedulable":true}}`)
	if code != 200 || engine.Get(n, "spec.unschedulable") != true || !f.Cluster().Nodes[w].Cordoned {
		t.Fatalf("cordon: %d %v", code, n["spec"])
	}
	err := f.Health(f.CPs, f.Workers, false)
	if err == nil || !strings.Contains(err.Error(), "some nodes are not schedulable: ["+w+"]") {
		t.Fatalf("getHealth after the cordon: %v", err)
	}
	code, st := f.do("PATCH", "/api/v1/nodes/"+w, "application/merge-patch+json",
		`{"metadata":{"resourceVersion":"`+engine.Str(before, "metadata.resourceVersion")+`"},"spec":{"unschedulable":false}}`)
	if code != 409 || st["reason"] != "Conflict" {
		t.Fatalf("stale resourceVersion: %d %v", code, st)
	}
	code, n = f.do("PATCH", "/api/v1/nodes/"+w, "application/strategic-merge-patch+json", `{"spec":{"unschedulable":null}}`)
	if code != 200 || engine.Get(n, "spec.unschedulable") != nil || f.Cluster().Nodes[w].Cordoned {
		t.Fatalf("uncordon: %d %v", code, n["spec"])
	}
	simtest.NoErr(t, f.Health(f.CPs, f.Workers, false))

	if got := f.items("/api/v1/pods?fieldSelector=spec.nodeName%3D" + w); len(got) == 0 {
		t.Fatal("no pods on the worker before its deletion")
	}
	code, _ = f.do("DELETE", "/api/v1/nodes/"+w, "", "")
	if code != 200 || f.Cluster().Nodes[w] != nil {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := f.do("GET", "/api/v1/nodes/"+w, "", ""); code != 404 {
		t.Fatalf("deleted node: %d", code)
	}
	if got := f.items("/api/v1/pods?fieldSelector=spec.nodeName%3D" + w); len(got) != 0 {
		t.Fatalf("pods of the deleted node remain: %v", names(got))
	}
}

// The API is reached like the real one: only a control plane (or the
// endpoint) answers on 6443, with the dial error otherwise; a client
// certificate of another CA is refused at the TLS layer; the Talos API
// keeps port 50000.
func TestKubeAPIReach(t *testing.T) {
	f := newKubeFixture(t, 1, 1)
	ca := talos.Unb64(engine.Str(f.kc, "caCertificate"))
	_, err := f.httpClient(f.kc, ca).Get("https://" + f.Workers[0] + ":6443/api/v1/nodes")
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "is a worker") {
		t.Fatalf("a worker's 6443: %v", err)
	}
	// Another cluster's kubeconfig: its certificate is refused.
	other := newKubeFixture(t, 1, 0)
	_, err = f.httpClient(other.kc, ca).Get(f.endpoint + "/api/v1/nodes")
	if err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
	if _, err := simtest.VersionOf(t, f.Client(f.ClientConfig, f.CPs[0]), f.CPs[0]); err != nil {
		t.Fatalf("the Talos API behind the same listener: %v", err)
	}
	simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
		tx.State.Guests[tx.State.Machines[f.CPs[0]].VMID].Started = false
		return nil
	}))
	_, err = f.httpClient(f.kc, ca).Get(f.endpoint + "/api/v1/nodes")
	if err == nil || !strings.Contains(err.Error(), "dial tcp 10.0.0.11:6443: connect: no route to host") {
		t.Fatalf("a stopped control plane: %v", err)
	}
}

// Pods: the mirror pods of the static pods and the DaemonSets' pods on
// every node, CoreDNS's two replicas on schedulable Ready nodes. Evicting
// a CoreDNS pod on a cordoned node moves it (new name, another node); an
// eviction the fault refuses is a 429; a mirror pod's eviction succeeds
// and the kubelet recreates it.
func TestKubeAPIPodsAndEviction(t *testing.T) {
	f := newKubeFixture(t, 1, 2)
	cp := f.nodeNamed(f.CPs[0])
	onCP := names(f.items("/api/v1/pods?fieldSelector=spec.nodeName%3D" + cp))
	for _, want := range []string{"kube-apiserver-" + cp, "kube-controller-manager-" + cp, "kube-scheduler-" + cp} {
		if !slices.Contains(onCP, want) {
			t.Errorf("pods on %s: %v, want %s", cp, onCP, want)
		}
	}
	for _, ds := range []string{"kube-proxy", "flannel"} {
		if got := f.items("/api/v1/namespaces/kube-system/pods?labelSelector=" + url.QueryEscape("k8s-app="+ds)); len(got) != 3 ||
			engine.Get(got[0], "metadata.ownerReferences").([]any)[0].(map[string]any)["kind"] != "DaemonSet" {
			t.Errorf("%s pods: %v", ds, names(got))
		}
	}
	dns := f.items("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns")
	if len(dns) != 2 || engine.Str(dns[0], "spec.nodeName") == engine.Str(dns[1], "spec.nodeName") || condition(dns[0], "Ready") != "True" {
		t.Fatalf("coredns pods %v", dns)
	}
	victim, from := engine.Str(dns[0], "metadata.name"), engine.Str(dns[0], "spec.nodeName")
	f.do("PATCH", "/api/v1/nodes/"+from, "application/strategic-merge-patch+json", `{"spec":{"unschedulable":true}}`)

	f.Faults(engine.Faults{EvictionRefusals: []engine.EvictionRefusal{{Pod: "coredns-*", Budget: "coredns"}}})
	eviction := `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"` + victim + `","namespace":"kube-system"}}`
	code, st := f.do("POST", "/api/v1/namespaces/kube-system/pods/"+victim+"/eviction", "application/json", eviction)
	if code != 429 || st["reason"] != "TooManyRequests" || !strings.Contains(engine.Str(st, "details.causes[0].message"), "The disruption budget coredns needs") {
		t.Fatalf("refused eviction: %d %v", code, st)
	}
	f.Faults(engine.Faults{})
	code, st = f.do("POST", "/api/v1/namespaces/kube-system/pods/"+victim+"/eviction", "application/json", eviction)
	if code != 201 || st["status"] != "Success" {
		t.Fatalf("eviction: %d %v", code, st)
	}
	if code, _ := f.do("GET", "/api/v1/namespaces/kube-system/pods/"+victim, "", ""); code != 404 {
		t.Fatalf("the evicted pod is still served: %d", code)
	}
	dns = f.items("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns")
	if len(dns) != 2 || slices.Contains(names(dns), victim) {
		t.Fatalf("after the eviction: %v", names(dns))
	}
	for _, p := range dns {
		if engine.Str(p, "spec.nodeName") == from || engine.Str(p, "spec.nodeName") == "" {
			t.Fatalf("a coredns pod on the cordoned node or pending: %v", p["spec"])
		}
	}
	mirror := "kube-apiserver-" + cp
	code, _ = f.do("POST", "/api/v1/namespaces/kube-system/pods/"+mirror+"/eviction", "application/json",
		`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"`+mirror+`"}}`)
	if code != 201 {
		t.Fatalf("mirror pod eviction: %d", code)
	}
	if code, _ := f.do("GET", "/api/v1/namespaces/kube-system/pods/"+mirror, "", ""); code != 200 {
		t.Fatalf("the mirror pod was not recreated: %d", code)
	}
}

// Server-side apply: fieldManager is required (422), the body's name must
// be the path's (400); an apply creates (201) then updates (200, next
// resourceVersion) the stored object, GET returns it; another manager's
// differing field conflicts (409) unless force; an unknown object is 404.
func TestKubeAPIServerSideApply(t *testing.T) {
	f := newKubeFixture(t, 1, 0)
	path := "/api/v1/namespaces/kube-system/configmaps/settings"
	cm := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: kube-system\ndata:\n  mode: " + v + "\n"
	}
	const apply = "application/apply-patch+yaml"
	code, st := f.do("PATCH", path, apply, cm("a"))
	if code != 422 || st["reason"] != "Invalid" || !strings.Contains(engine.Str(st, "message"), "fieldManager: Required value") {
		t.Fatalf("no fieldManager: %d %v", code, st)
	}
	code, st = f.do("PATCH", "/api/v1/namespaces/kube-system/configmaps/other?fieldManager=sda", apply, cm("a"))
	if code != 400 || !strings.Contains(engine.Str(st, "message"), "does not match the name on the URL") {
		t.Fatalf("name mismatch: %d %v", code, st)
	}
	if code, _ := f.do("GET", path, "", ""); code != 404 {
		t.Fatalf("before the apply: %d", code)
	}
	code, obj := f.do("PATCH", path+"?fieldManager=sda&force=true", apply, cm("a"))
	if code != 201 || engine.Str(obj, "data.mode") != "a" {
		t.Fatalf("create: %d %v", code, obj)
	}
	rv1 := engine.Str(obj, "metadata.resourceVersion")
	code, obj = f.do("PATCH", path+"?fieldManager=sda&force=true", apply, cm("b"))
	if code != 200 || engine.Str(obj, "data.mode") != "b" || engine.Str(obj, "metadata.resourceVersion") == rv1 ||
		engine.Str(obj, "metadata.managedFields[0].manager") != "sda" {
		t.Fatalf("update: %d %v", code, obj)
	}
	code, got := f.do("GET", path, "", "")
	if code != 200 || engine.Str(got, "data.mode") != "b" || engine.Str(got, "metadata.resourceVersion") != engine.Str(obj, "metadata.resourceVersion") {
		t.Fatalf("get: %d %v", code, got)
	}
	code, st = f.do("PATCH", path+"?fieldManager=other", apply, cm("c"))
	if code != 409 || st["reason"] != "Conflict" || !strings.Contains(engine.Str(st, "message"), `conflict with "sda"`) {
		t.Fatalf("conflict: %d %v", code, st)
	}
	if code, obj = f.do("PATCH", path+"?fieldManager=other&force=true", apply, cm("c")); code != 200 || engine.Str(obj, "data.mode") != "c" {
		t.Fatalf("forced: %d %v", code, obj)
	}
	if code, _ := f.do("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets/nope", "", ""); code != 404 {
		t.Fatalf("unknown object: %d", code)
	}
	if got := kubeapi.Object(f.Cluster(), kubeapi.GVR{"", "v1", "configmaps"}, "kube-system", "settings"); engine.Str(got, "data.mode") != "c" {
		t.Fatalf("TalosCluster.object: %v", got)
	}
}

// staticPod is the mirror pod of component on node.
func (f *kubeFixture) staticPod(component, node string) map[string]any {
	f.T.Helper()
	code, p := f.do("GET", "/api/v1/namespaces/kube-system/pods/"+component+"-"+node, "", "")
	if code != 200 {
		f.T.Fatalf("%s-%s: %d %v", component, node, code, p)
	}
	return p
}

// What `talosctl upgrade-k8s` waits for: the component's configuration
// resource (COSI Get, KubeSchedulerConfigs) has version 1 after boot and 2
// after a new image; the mirror pod's talos.dev/config-version follows,
// and it is Ready only once the component has restarted on the new image.
func TestKubeAPIStaticPodConfigVersion(t *testing.T) {
	f := newKubeFixture(t, 1, 0)
	f.Faults(engine.Faults{ComponentRestartTime: "400ms"})
	cp := f.CPs[0]
	node := f.nodeNamed(cp)
	c := f.Client(f.ClientConfig, cp)
	version := func() string {
		t.Helper()
		r, err := safe.StateGet[*k8s.SchedulerConfig](client.WithNode(simtest.CtxTimeout(t), cp), c.COSI, k8s.NewSchedulerConfig().Metadata())
		simtest.NoErr(t, err)
		return r.Metadata().Version().String()
	}
	configVersion := func(p map[string]any) string {
		a, _ := engine.Get(p, "metadata.annotations").(map[string]any)
		s, _ := a[constants.AnnotationStaticPodConfigVersion].(string)
		return s
	}
	p := f.staticPod("kube-scheduler", node)
	if v := version(); v != "1" || configVersion(p) != "1" || condition(p, "Ready") != "True" {
		t.Fatalf("before: version %s, annotation %q, Ready %s", v, configVersion(p), condition(p, "Ready"))
	}
	k8sTag := "v" + constants.DefaultKubernetesVersion
	_, err := c.ApplyConfiguration(client.WithNode(simtest.CtxTimeout(t), cp), &machine.ApplyConfigurationRequest{
		Data: []byte(simtest.SwapTag(f.State().Machines[cp].Config, "kube-scheduler", k8sTag, "v1.35.9")), Mode: machine.ApplyConfigurationRequest_NO_REBOOT})
	simtest.NoErr(t, err)
	p = f.staticPod("kube-scheduler", node)
	if v := version(); v != "2" || configVersion(p) != "2" || condition(p, "Ready") != "False" {
		t.Fatalf("restarting: version %s, annotation %q, Ready %s", v, configVersion(p), condition(p, "Ready"))
	}
	if other := f.staticPod("kube-apiserver", node); configVersion(other) != "1" {
		t.Fatalf("kube-apiserver's version moved: %q", configVersion(other))
	}
	time.Sleep(time.Until(f.State().ComponentChanges[0].Ready) + 30*time.Millisecond)
	p = f.staticPod("kube-scheduler", node)
	if configVersion(p) != "2" || condition(p, "Ready") != "True" || !strings.HasSuffix(engine.Str(p, "spec.containers[0].image"), ":v1.35.9") {
		t.Fatalf("after the restart: annotation %q, Ready %s, image %s", configVersion(p), condition(p, "Ready"), engine.Str(p, "spec.containers[0].image"))
	}
}

// A crash-looping component (faults.json crashLoops): after the change to
// the faulty image the Talos API lists its container CONTAINER_RUNNING, yet
// its mirror pod's PodReady stays False and restartCount grows.
func TestKubeAPICrashLoop(t *testing.T) {
	f := newKubeFixture(t, 1, 0)
	cp := f.CPs[0]
	node := f.nodeNamed(cp)
	f.Faults(engine.Faults{CrashLoops: []engine.CrashLoop{{Node: node, Component: "kube-scheduler", Image: ":v1.35.9", BackOff: "40ms"}}})
	c := f.Client(f.ClientConfig, cp)
	k8sTag := "v" + constants.DefaultKubernetesVersion
	_, err := c.ApplyConfiguration(client.WithNode(simtest.CtxTimeout(t), cp), &machine.ApplyConfigurationRequest{
		Data: []byte(simtest.SwapTag(f.State().Machines[cp].Config, "kube-scheduler", k8sTag, "v1.35.9")), Mode: machine.ApplyConfigurationRequest_NO_REBOOT})
	simtest.NoErr(t, err)
	resp, err := c.Containers(client.WithNode(simtest.CtxTimeout(t), cp), constants.K8sContainerdNamespace, common.ContainerDriver_CRI)
	simtest.NoErr(t, err)
	running := false
	for _, ct := range resp.Messages[0].Containers {
		if ct.Name == "kube-scheduler" && ct.Status == "CONTAINER_RUNNING" && strings.HasSuffix(ct.Image, ":v1.35.9") {
			running = true
		}
	}
	if !running {
		t.Fatalf("kube-scheduler is not CONTAINER_RUNNING on v1.35.9: %v", resp.Messages[0].Containers)
	}
	time.Sleep(100 * time.Millisecond)
	p := f.staticPod("kube-scheduler", node)
	first := engine.Num(p, "status.containerStatuses[0].restartCount")
	if condition(p, "Ready") != "False" || condition(p, "ContainersReady") != "False" || first < 1 {
		t.Fatalf("crash-looping pod: Ready %s, ContainersReady %s, restartCount %d", condition(p, "Ready"), condition(p, "ContainersReady"), first)
	}
	time.Sleep(200 * time.Millisecond)
	if n := engine.Num(f.staticPod("kube-scheduler", node), "status.containerStatuses[0].restartCount"); n <= first {
		t.Fatalf("restartCount %d, then %d: not growing", first, n)
	}
	// Without the fault the same change ends Ready.
	f.Faults(engine.Faults{})
	if p := f.staticPod("kube-scheduler", node); condition(p, "Ready") != "True" {
		t.Fatalf("without the fault: Ready %s", condition(p, "Ready"))
	}
}
