package kubeapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	stdx509 "crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/crypto/x509"
)

// TokenKubeAPI is the Kubernetes API's type in the call log (provider
// "kube-apiserver") and in faults.json (latency, failOnce with the verbs
// "list", "get", "patch", "apply", "delete", "evict").
const TokenKubeAPI = "kubernetes:api:APIServer"

const kubeAPIPort = talospatch.KubernetesAPIPort

// ---- reaching it ----

// Server serves the Kubernetes API of every simulated cluster on
// the connections the CONNECT proxy hands it.
type Server struct {
	api   *talos.API
	conns chan net.Conn
	done  chan struct{}
	info  sync.Map // *tls.Conn -> kubeConn
	srv   *http.Server

	mu    sync.Mutex
	certs map[string]*tls.Certificate
}

// kubeConn is what a request knows of its connection: the host the client
// dialed and the cluster (ID and Kubernetes CA) that answered it.
type kubeConn struct {
	host, cluster, ca string
}

type kubeConnKey struct{}

// NewServer is the clusters' kube-apiservers behind the Talos API's
// listener (see talos.Colocated).
func NewServer(api *talos.API) *Server {
	k := &Server{api: api, conns: make(chan net.Conn), done: make(chan struct{}), certs: map[string]*tls.Certificate{}}
	k.srv = &http.Server{Handler: k, ReadHeaderTimeout: time.Minute,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if v, ok := k.info.Load(c); ok {
				return context.WithValue(ctx, kubeConnKey{}, v)
			}
			return ctx
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				k.info.Delete(c)
			}
		}}
	return k
}

// Serve runs the HTTP server until close.
func (k *Server) Serve() { _ = k.srv.Serve(kubeConnListener{k}) }

func (k *Server) Close() {
	select {
	case <-k.done:
	default:
		close(k.done)
	}
	_ = k.srv.Close()
}

// kubeConnListener hands the HTTP server the TLS connections serveConn
// accepted.
type kubeConnListener struct{ k *Server }

func (l kubeConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.k.conns:
		return c, nil
	case <-l.k.done:
		return nil, net.ErrClosed
	}
}
func (l kubeConnListener) Close() error   { return nil }
func (l kubeConnListener) Addr() net.Addr { return &net.TCPAddr{} }

// Mux splits the CONNECT proxy's listener: a CONNECT to port 6443 is
// answered here, by a cluster's kube-apiserver; every other connection
// goes on to the Talos API's gRPC server, its CONNECT request intact.
func (k *Server) Mux(lis net.Listener) net.Listener {
	m := &connectMux{Listener: lis, k: k, conns: make(chan net.Conn), done: make(chan struct{})}
	go m.loop()
	return m
}

type connectMux struct {
	net.Listener
	k     *Server
	conns chan net.Conn
	done  chan struct{}
	err   error
}

func (m *connectMux) loop() {
	for {
		c, err := m.Listener.Accept()
		if err != nil {
			m.err = err
			close(m.done)
			return
		}
		go m.route(c)
	}
}

func (m *connectMux) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, m.err
	}
}

func (m *connectMux) route(c net.Conn) {
	var seen bytes.Buffer
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(c, &seen)))
	_ = c.SetReadDeadline(time.Time{})
	if err == nil && req.Method == http.MethodConnect {
		if _, port, _ := net.SplitHostPort(req.Host); port == strconv.Itoa(kubeAPIPort) {
			m.k.serveConn(c, req.Host)
			return
		}
	}
	// The client waits for the CONNECT reply, so what was read is the
	// request; the gRPC server's handshake reads it again.
	select {
	case m.conns <- &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(seen.Bytes()), c)}:
	case <-m.done:
		c.Close()
	}
}

type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveConn answers a CONNECT to target (host:6443): 502 with the dial
// error Pulumi's machine would get, or 200 and the kube-apiserver's TLS.
func (k *Server) serveConn(raw net.Conn, target string) {
	cfg, info, err := k.accept(target)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		// The reason phrase carries the error: net/http reports a refused
		// CONNECT by it.
		fmt.Fprintf(raw, "HTTP/1.1 502 %s\r\nContent-Length: %d\r\n\r\n%s", msg, len(msg), msg)
		raw.Close()
		return
	}
	if _, err := io.WriteString(raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		raw.Close()
		return
	}
	tc := tls.Server(raw, cfg)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	k.info.Store(tc, info)
	select {
	case k.conns <- tc:
	case <-k.done:
		tc.Close()
	}
}

// accept is a connection from Pulumi's machine to target: the cluster
// endpoint's host (a VIP, or a node address) or a control plane's address,
// on 6443. The kube-apiserver must be serving there (KubeServing); then it
// presents a certificate of the cluster's Kubernetes CA and demands a
// client certificate of that CA.
func (k *Server) accept(target string) (*tls.Config, kubeConn, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, kubeConn{}, fmt.Errorf("dial tcp %s: %v", target, err)
	}
	var c *engine.TalosCluster
	err = k.api.Store().View(func(tx *engine.Tx) error {
		c, err = KubeServing(tx, host, time.Now())
		return err
	})
	if err != nil {
		return nil, kubeConn{}, err
	}
	crt, err := k.serverCert(c, host)
	if err != nil {
		return nil, kubeConn{}, err
	}
	pool := stdx509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(c.K8sCA))
	return &tls.Config{Certificates: []tls.Certificate{*crt}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS12}, kubeConn{host: host, cluster: c.ID, ca: c.K8sCA}, nil
}

// KubeServing is the cluster whose kube-apiserver answers on host:6443
// from Pulumi's machine, or the dial error. The cluster endpoint's host
// goes to the control plane holding it (apiHolder: the node itself, or
// the VIP's holder) through the data plane's rules (network.KubeAPIReachable); a
// node address must be reachable as the Talos API is (network.TalosUp, a route
// from Pulumi's segment) and run a kube-apiserver: a configured control
// plane of a bootstrapped cluster whose etcd is a member (the static pod
// is rendered only once etcd runs), not restarting it for a new image.
func KubeServing(tx *engine.Tx, host string, now time.Time) (*engine.TalosCluster, error) {
	target := net.JoinHostPort(host, strconv.Itoa(kubeAPIPort))
	port := func(err error) error {
		return errors.New(strings.ReplaceAll(err.Error(), host+":50000", target))
	}
	refused := func(why string) error {
		return fmt.Errorf("dial tcp %s: connect: connection refused (%s)", target, why)
	}
	var vipOf *engine.TalosCluster
	for _, id := range slices.Sorted(maps.Keys(tx.State.Clusters)) {
		if c := tx.State.Clusters[id]; network.EndpointHost(c.Endpoint) == host {
			vipOf = c
		}
	}
	if vipOf != nil {
		if _, err := network.VMAt(tx, host); err != nil {
			// A VIP: whichever control plane holds it answers.
			if err := network.KubeAPIReachable(tx, vipOf, now); err != nil {
				return nil, port(err)
			}
			_, addr, _, _ := network.APIHolder(tx, vipOf, now)
			if err := APIServerUp(tx, vipOf, addr, now); err != nil {
				return nil, refused(err.Error())
			}
			return vipOf, nil
		}
	}
	g, err := network.TalosUp(tx, host, now)
	if err != nil {
		return nil, port(err)
	}
	if err := network.RouteFromCaller(tx, host, kubeAPIPort, g.Label(), network.GuestSegment(tx, g, host), now); err != nil {
		return nil, err
	}
	m := tx.State.Machines[host]
	switch {
	case m == nil:
		return nil, refused("node " + host + " is in maintenance mode: nothing listens on 6443")
	case m.Type != "controlplane":
		return nil, refused("node " + host + " is a worker: it runs no kube-apiserver")
	}
	c := tx.State.Clusters[m.ClusterID]
	if c == nil {
		return nil, refused("cluster " + m.Cluster + " is not bootstrapped: the kube-apiserver static pod waits for etcd")
	}
	if err := APIServerUp(tx, c, host, now); err != nil {
		return nil, refused(err.Error())
	}
	return c, nil
}

// APIServerUp says why the control plane at addr runs no kube-apiserver
// of c (nil when it does).
func APIServerUp(tx *engine.Tx, c *engine.TalosCluster, addr string, now time.Time) error {
	m := tx.State.Machines[addr]
	switch {
	case m == nil || m.ClusterID != c.ID || m.Type != "controlplane":
		return fmt.Errorf("%s is not a control plane of cluster %s", addr, c.Name)
	case m.JoinBlocked != "":
		return fmt.Errorf("%s has not joined the cluster: %s", addr, m.JoinBlocked)
	case !slices.Contains(c.EtcdMembers, addr):
		return fmt.Errorf("etcd on %s is not a member of the cluster: the kube-apiserver static pod is not rendered", addr)
	}
	if ch := LastChange(tx, addr, "kube-apiserver", time.Time{}); ch != nil && !now.Before(ch.Start) && now.Before(ch.Ready) {
		return fmt.Errorf("kube-apiserver on %s is restarting on its new image until %s", addr, ch.Ready.Format(time.RFC3339Nano))
	}
	return nil
}

// serverCert is the kube-apiserver's serving certificate for host, issued
// by the cluster's Kubernetes CA (Talos's apiserver certificate carries
// the node's addresses, the endpoint and the kubernetes service names).
func (k *Server) serverCert(c *engine.TalosCluster, host string) (*tls.Certificate, error) {
	sum := sha256.Sum256([]byte(c.K8sCA))
	key := host + "\x00" + string(sum[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	if crt := k.certs[key]; crt != nil {
		return crt, nil
	}
	ca, err := x509.NewCertificateAuthorityFromCertificateAndKey(&x509.PEMEncodedCertificateAndKey{Crt: []byte(c.K8sCA), Key: []byte(c.K8sCAKey)})
	if err != nil {
		return nil, fmt.Errorf("cluster %s Kubernetes CA: %w", c.Name, err)
	}
	opts := []x509.Option{x509.CommonName("kube-apiserver"),
		x509.DNSNames([]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}),
		x509.NotAfter(time.Now().Add(365 * 24 * time.Hour)),
		x509.ExtKeyUsage([]stdx509.ExtKeyUsage{stdx509.ExtKeyUsageServerAuth})}
	if ip := net.ParseIP(host); ip != nil {
		opts = append(opts, x509.IPAddresses([]net.IP{ip}))
	} else {
		opts = append(opts, x509.DNSNames([]string{host, "kubernetes"}))
	}
	crt, err := talos.IssueCert(ca, opts...)
	if err != nil {
		return nil, err
	}
	k.certs[key] = crt
	return crt, nil
}

// ---- requests ----

// kubeStatus is an error as the API serves it: a Status object.
type kubeStatus struct {
	code    int
	reason  string
	message string
	details map[string]any
}

func (e *kubeStatus) Error() string { return e.message }

func statusErr(code int, reason, format string, args ...any) *kubeStatus {
	return &kubeStatus{code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

func notFound(g GVR, name string) *kubeStatus {
	e := statusErr(http.StatusNotFound, "NotFound", "%s %q not found", g.groupResource(), name)
	e.details = map[string]any{"name": name, "kind": g.Resource}
	if g.Group != "" {
		e.details["group"] = g.Group
	}
	return e
}

func badRequest(format string, args ...any) *kubeStatus {
	return statusErr(http.StatusBadRequest, "BadRequest", format, args...)
}

func (e *kubeStatus) object() map[string]any {
	out := map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": e.message, "reason": e.reason, "code": e.code}
	if e.details != nil {
		out["details"] = e.details
	}
	return out
}

func writeJSONResponse(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errDropped is a request on a connection whose kube-apiserver has gone
// away since it was accepted: the connection is closed, as a real one
// breaks.
var errDropped = errors.New("the kube-apiserver behind this connection went away")

// kubeRequest is one request in a transaction: the cluster that answers,
// the time, the faults, and whether the state must be saved.
type kubeRequest struct {
	tx     *engine.Tx
	c      *engine.TalosCluster
	now    time.Time
	faults engine.Faults
	r      *http.Request
	body   []byte
	write  bool
}

func (k *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info, _ := r.Context().Value(kubeConnKey{}).(kubeConn)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 3<<20))
	verb := kubeVerb(r)
	code, out, err := k.handle(r, info, body, verb)
	c := engine.Call{Time: start, Provider: "kube-apiserver", Method: verb, Type: TokenKubeAPI, Name: r.Method + " " + r.URL.RequestURI(),
		ID: info.host, Millis: time.Since(start).Milliseconds()}
	if errors.Is(err, errDropped) {
		c.Error = err.Error()
		_ = k.api.Store().Log(c)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		writeJSONResponse(w, http.StatusServiceUnavailable, statusErr(http.StatusServiceUnavailable, "ServiceUnavailable", "%v", err).object())
		return
	}
	var ks *kubeStatus
	if err != nil && !errors.As(err, &ks) {
		ks = statusErr(http.StatusInternalServerError, "InternalError", "Internal error occurred: %v", err)
	}
	if ks != nil {
		c.Error = ks.message
		_ = k.api.Store().Log(c)
		writeJSONResponse(w, ks.code, ks.object())
		return
	}
	_ = k.api.Store().Log(c)
	writeJSONResponse(w, code, out)
}

// kubeVerb is the request's Kubernetes verb (for faults and the call log).
func kubeVerb(r *http.Request) string {
	parts := pathParts(r.URL.Path)
	switch r.Method {
	case http.MethodGet:
		if len(parts)%2 == 0 && !slices.Contains(parts, "namespaces") || len(parts) == 4 && parts[2] == "namespaces" && parts[0] == "api" ||
			len(parts) == 5 && parts[0] == "api" || len(parts) == 4 && parts[0] == "apis" || len(parts) == 6 && parts[0] == "apis" {
			return "list"
		}
		return "get"
	case http.MethodPatch:
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/apply-patch") {
			return "apply"
		}
		return "patch"
	case http.MethodDelete:
		return "delete"
	case http.MethodPost:
		if strings.HasSuffix(r.URL.Path, "/eviction") {
			return "evict"
		}
		return "create"
	}
	return strings.ToLower(r.Method)
}

func pathParts(p string) []string {
	var out []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// handle runs a request in a transaction: a read in a View, unless the
// pods must be scheduled first or the request writes (then an Update).
func (k *Server) handle(r *http.Request, info kubeConn, body []byte, verb string) (int, any, error) {
	st := k.api.Store()
	if err := st.Before(r.Context(), TokenKubeAPI, verb); err != nil {
		return 0, nil, statusErr(http.StatusInternalServerError, "InternalError", "Internal error occurred: %v", err)
	}
	faults, err := st.Faults()
	if err != nil {
		return 0, nil, err
	}
	write := r.Method != http.MethodGet
	for {
		var code int
		var out any
		again := false
		txn := st.View
		if write {
			txn = st.Update
		}
		err := txn(func(tx *engine.Tx) error {
			now := time.Now()
			c, err := KubeServing(tx, info.host, now)
			if err != nil || c.ID != info.cluster || c.K8sCA != info.ca {
				return errDropped
			}
			if !write && SchedulePods(tx, c, now, faults, true) {
				again = true
				return nil
			}
			SchedulePods(tx, c, now, faults, false)
			req := &kubeRequest{tx: tx, c: c, now: now, faults: faults, r: r, body: body, write: write}
			code, out, err = req.route()
			if err == nil {
				// Pods follow the write (a deleted node's pods, an evicted
				// pod's replacement).
				SchedulePods(tx, c, now, faults, false)
			}
			return err
		})
		if again {
			write = true
			continue
		}
		return code, out, err
	}
}

// route dispatches a request by its path.
func (q *kubeRequest) route() (int, any, error) {
	r := q.r
	p := pathParts(r.URL.Path)
	switch {
	case len(p) == 1 && p[0] == "version":
		return q.version()
	case len(p) == 1 && (p[0] == "readyz" || p[0] == "livez" || p[0] == "healthz"):
		return http.StatusOK, "ok", nil
	case len(p) >= 2 && p[0] == "api" && p[1] == "v1":
		return q.resource(GVR{"", "v1", ""}, p[2:])
	case len(p) >= 3 && p[0] == "apis":
		return q.resource(GVR{p[1], p[2], ""}, p[3:])
	}
	return 0, nil, statusErr(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
}

// resource dispatches rest (after /api/v1 or /apis/G/V): [namespaces/NS/]
// RESOURCE[/NAME[/SUBRESOURCE]].
func (q *kubeRequest) resource(g GVR, rest []string) (int, any, error) {
	ns := ""
	if len(rest) >= 3 && rest[0] == "namespaces" {
		ns, rest = rest[1], rest[2:]
	}
	if len(rest) == 0 || len(rest) > 3 {
		return 0, nil, statusErr(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
	g.Resource = rest[0]
	name, sub := "", ""
	if len(rest) > 1 {
		name = rest[1]
	}
	if len(rest) > 2 {
		sub = rest[2]
	}
	m := q.r.Method
	switch {
	case g == GVR{"", "v1", "nodes"} && ns == "" && sub == "":
		switch {
		case name == "" && m == http.MethodGet:
			return q.listNodes()
		case m == http.MethodGet:
			return q.getNode(name)
		case m == http.MethodPatch && !isApply(q.r):
			return q.patchNode(name)
		case m == http.MethodDelete:
			return q.deleteNode(name)
		}
	case g == GVR{"", "v1", "pods"}:
		switch {
		case name == "" && m == http.MethodGet:
			return q.listPods(ns)
		case sub == "" && m == http.MethodGet && ns != "":
			return q.getPod(ns, name)
		case sub == "" && m == http.MethodDelete && ns != "":
			return q.deletePod(ns, name)
		case sub == "eviction" && m == http.MethodPost && ns != "":
			return q.evict(ns, name)
		}
	default:
		if sub != "" {
			break
		}
		switch {
		case name == "" && m == http.MethodGet:
			return q.listObjects(g, ns)
		case name != "" && m == http.MethodGet:
			return q.getObject(g, ns, name)
		case name != "" && m == http.MethodPatch && isApply(q.r):
			return q.apply(g, ns, name)
		}
	}
	return 0, nil, statusErr(http.StatusMethodNotAllowed, "MethodNotAllowed",
		"simulation: %s %s is not simulated (see docs/simulation.md, \"The Kubernetes API\")", m, q.r.URL.Path)
}

func isApply(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/apply-patch+yaml")
}

// version is /version: the serving kube-apiserver's version (its image tag).
func (q *kubeRequest) version() (int, any, error) {
	tag := ""
	for _, m := range q.tx.State.Machines {
		if m.ClusterID == q.c.ID && m.Type == "controlplane" {
			if t := talos.ImageTag(talos.ComponentImage(m, talos.V1alpha1Doc(talos.AppliedConfig(q.tx, m.Address)), "kube-apiserver")); t != "" {
				tag = t
			}
		}
	}
	parts := strings.SplitN(strings.TrimPrefix(tag, "v"), ".", 3)
	for len(parts) < 2 {
		parts = append(parts, "")
	}
	return http.StatusOK, map[string]any{"major": parts[0], "minor": parts[1], "gitVersion": tag, "platform": "linux/amd64"}, nil
}
