package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is an API server stand-in for the client's wire behaviour: it
// records requests and answers from handlers the test sets, over TLS that
// demands the kubeconfig's client certificate.
type fakeAPI struct {
	mu       sync.Mutex
	requests []string
	handle   func(w http.ResponseWriter, r *http.Request, body string)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fmt.Sprintf("%s %s?%s %s %s", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), body))
	h := f.handle
	f.mu.Unlock()
	h(w, r, string(body))
}

func (f *fakeAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": msg, "code": code})
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// startAPI serves f over TLS with a fresh CA, requiring a client
// certificate of that CA, and returns a kubeconfig for it.
func startAPI(t *testing.T, f *fakeAPI) (*Client, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(cn string, server bool) ([]byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"system:masters"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		kd, _ := x509.MarshalECPrivateKey(k)
		return pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", kd)
	}
	srvCert, srvKey := issue("kube-apiserver", true)
	pair, _ := tls.X509KeyPair(srvCert, srvKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(f)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	crt, key := issue("admin", false)
	b64 := base64.StdEncoding.EncodeToString
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: "https://192.0.2.1:6443", certificate-authority-data: %[1]s}
- name: sim
  cluster: {server: %[2]q, certificate-authority-data: %[1]s}
contexts:
- name: other@other
  context: {cluster: other, user: other}
- name: admin@sim
  context: {cluster: sim, user: admin@sim}
current-context: admin@sim
users:
- name: admin@sim
  user: {client-certificate-data: %[3]s, client-key-data: %[4]s}
`, b64(pemOf("CERTIFICATE", caDER)), srv.URL, b64(crt), b64(key))
	c, err := New(kc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, kc
}

// The client talks to the current context's cluster with its client
// certificate and reads a Node's readiness, address and schedulability
// from the API's JSON.
func TestNodesReadTheCurrentContext(t *testing.T) {
	f := &fakeAPI{handle: func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "admin" {
			status(w, 401, "Unauthorized", "no client certificate")
			return
		}
		_, _ = io.WriteString(w, `{"kind":"NodeList","items":[
 {"metadata":{"name":"w1","labels":{"kubernetes.io/hostname":"w1"}},"spec":{"unschedulable":true},
  "status":{"addresses":[{"type":"Hostname","address":"w1"},{"type":"InternalIP","address":"10.0.0.21"}],
   "conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"Unknown"}],"nodeInfo":{"kubeletVersion":"v1.34.1"}}}]}`)
	}}
	c, _ := startAPI(t, f)
	nodes, err := c.Nodes(context.Background(), "!node-role.kubernetes.io/control-plane")
	if err != nil {
		t.Fatal(err)
	}
	want := Node{Name: "w1", Labels: map[string]string{"kubernetes.io/hostname": "w1"}, Unschedulable: true, InternalIP: "10.0.0.21", Ready: "Unknown", KubeletVersion: "v1.34.1"}
	if len(nodes) != 1 || fmt.Sprint(nodes[0]) != fmt.Sprint(want) {
		t.Fatalf("nodes = %+v, want [%+v]", nodes, want)
	}
	if got := f.log()[0]; !strings.HasPrefix(got, "GET /api/v1/nodes?labelSelector=%21node-role.kubernetes.io%2Fcontrol-plane") {
		t.Errorf("request = %q", got)
	}
}

// Cordon and uncordon are merge patches of spec.unschedulable; a missing
// Node on delete is not an error; other failures carry the API's Status.
func TestCordonUncordonDelete(t *testing.T) {
	f := &fakeAPI{handle: func(w http.ResponseWriter, r *http.Request, _ string) {
		switch {
		case r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/gone"):
			status(w, 404, "NotFound", `nodes "gone" not found`)
		case r.Method == http.MethodDelete:
			status(w, 403, "Forbidden", "nodes is forbidden")
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}}
	c, _ := startAPI(t, f)
	ctx := context.Background()
	if err := c.SetUnschedulable(ctx, "w1", true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUnschedulable(ctx, "w1", false); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNode(ctx, "gone"); err != nil {
		t.Fatalf("deleting a missing node: %v", err)
	}
	err := c.DeleteNode(ctx, "w2")
	if err == nil || !strings.Contains(err.Error(), "nodes is forbidden") || !strings.Contains(err.Error(), "403 Forbidden") {
		t.Fatalf("forbidden delete: %v", err)
	}
	log := f.log()
	if log[0] != `PATCH /api/v1/nodes/w1? application/merge-patch+json {"spec":{"unschedulable":true}}` ||
		log[1] != `PATCH /api/v1/nodes/w1? application/merge-patch+json {"spec":{"unschedulable":null}}` {
		t.Fatalf("requests = %q", log)
	}
}

// A server-side apply is a PATCH of the apply patch type with the field
// manager and force in the query.
func TestApplySendsServerSideApply(t *testing.T) {
	f := &fakeAPI{handle: func(w http.ResponseWriter, _ *http.Request, _ string) { _, _ = io.WriteString(w, `{}`) }}
	c, _ := startAPI(t, f)
	obj := `{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"kube-proxy","namespace":"kube-system"}}`
	if err := c.Apply(context.Background(), "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", []byte(obj), "talos", true); err != nil {
		t.Fatal(err)
	}
	want := "PATCH /apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy?fieldManager=talos&force=true application/apply-patch+yaml " + obj
	if got := f.log()[0]; got != want {
		t.Fatalf("request = %q, want %q", got, want)
	}
}

// A drain cordons, evicts only what Talos's drain evicts (not mirror,
// DaemonSet, unmanaged or finished pods), retries an eviction a
// PodDisruptionBudget refuses, and waits for each evicted pod to be gone.
func TestDrainEvictsWhatTalosEvicts(t *testing.T) {
	EvictRetry = 10 * time.Millisecond
	var mu sync.Mutex
	refusals := 2
	gone := map[string]bool{}
	f := &fakeAPI{}
	f.handle = func(w http.ResponseWriter, r *http.Request, _ string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/pods":
			if r.URL.Query().Get("fieldSelector") != "spec.nodeName=w1" {
				status(w, 400, "BadRequest", "selector")
				return
			}
			_, _ = io.WriteString(w, `{"items":[
 {"metadata":{"name":"kube-proxy-x","namespace":"kube-system","uid":"1","ownerReferences":[{"kind":"DaemonSet","name":"kube-proxy"}]},"spec":{"nodeName":"w1"}},
 {"metadata":{"name":"static-w1","namespace":"kube-system","uid":"2","annotations":{"kubernetes.io/config.mirror":"abc"}},"spec":{"nodeName":"w1"}},
 {"metadata":{"name":"bare","namespace":"default","uid":"3"},"spec":{"nodeName":"w1"}},
 {"metadata":{"name":"job-done","namespace":"default","uid":"4","ownerReferences":[{"kind":"Job","name":"j"}]},"spec":{"nodeName":"w1"},"status":{"phase":"Succeeded"}},
 {"metadata":{"name":"coredns-a","namespace":"kube-system","uid":"5","ownerReferences":[{"kind":"ReplicaSet","name":"coredns-1"}]},"spec":{"nodeName":"w1"}},
 {"metadata":{"name":"db-0","namespace":"apps","uid":"6","ownerReferences":[{"kind":"StatefulSet","name":"db"}]},"spec":{"nodeName":"w1"}}]}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/eviction"):
			if strings.Contains(r.URL.Path, "/db-0/") && refusals > 0 {
				refusals--
				status(w, 429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
				return
			}
			gone[r.URL.Path] = true
			_, _ = io.WriteString(w, `{"kind":"Status","status":"Success"}`)
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/"):
			if gone[r.URL.Path+"/eviction"] {
				status(w, 404, "NotFound", "gone")
				return
			}
			_, _ = io.WriteString(w, `{"metadata":{"uid":"same"}}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}
	c, _ := startAPI(t, f)
	var lines []string
	if err := c.Drain(context.Background(), "w1", func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	var evictions []string
	for _, r := range f.log() {
		if strings.HasPrefix(r, "POST ") {
			evictions = append(evictions, strings.Fields(r)[1])
		}
	}
	if f.log()[0] != `PATCH /api/v1/nodes/w1? application/merge-patch+json {"spec":{"unschedulable":true}}` {
		t.Errorf("first request %q is not the cordon", f.log()[0])
	}
	counts := map[string]int{}
	for _, e := range evictions {
		counts[strings.TrimSuffix(e, "?")]++
	}
	want := map[string]int{"/api/v1/namespaces/kube-system/pods/coredns-a/eviction": 1, "/api/v1/namespaces/apps/pods/db-0/eviction": 3}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("evictions = %v, want %v", counts, want)
	}
	if len(lines) != 2 {
		t.Errorf("log = %q, want one line per evicted pod", lines)
	}
}

// A budget that never allows the eviction fails the drain by its deadline,
// naming the pod and the fix.
func TestDrainBlockedByBudgetFails(t *testing.T) {
	EvictRetry = 10 * time.Millisecond
	f := &fakeAPI{handle: func(w http.ResponseWriter, r *http.Request, _ string) {
		switch {
		case r.Method == http.MethodGet:
			_, _ = io.WriteString(w, `{"items":[{"metadata":{"name":"db-0","namespace":"apps","uid":"6","ownerReferences":[{"kind":"StatefulSet","name":"db"}]},"spec":{"nodeName":"w1"}}]}`)
		case r.Method == http.MethodPost:
			status(w, 429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}}
	c, _ := startAPI(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Drain(ctx, "w1", nil)
	if err == nil || !strings.Contains(err.Error(), "apps/db-0") || !strings.Contains(err.Error(), "disruption budget") || !strings.Contains(err.Error(), "relax the budget") {
		t.Fatalf("err = %v", err)
	}
}

// A kubeconfig without a usable certificate is refused when read.
func TestNewRefusesBrokenKubeconfigs(t *testing.T) {
	for name, kc := range map[string]string{
		"no context": "apiVersion: v1\nkind: Config\n",
		"no server":  "contexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {}}]\n",
		"bad ca":     "contexts: [{name: a, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: 'https://x', certificate-authority-data: bm90IGEgY2VydA==}}]\n",
	} {
		if _, err := New(kc); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
