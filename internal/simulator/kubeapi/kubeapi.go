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

	"github.com/google/uuid"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/crypto/x509"
	"gopkg.in/yaml.v3"
)

// GVR is a Kubernetes group, version and resource ("" is the core group).
type GVR struct{ Group, Version, Resource string }

// apiVersion is the group/version an object of g carries.
func (g GVR) apiVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

// groupResource is how errors name a resource ("configmaps",
// "daemonsets.apps").
func (g GVR) groupResource() string {
	if g.Group == "" {
		return g.Resource
	}
	return g.Resource + "." + g.Group
}


// The simulated Kubernetes API: each bootstrapped cluster's kube-apiserver,
// reached as the real one is from Pulumi's machine, through the same HTTP
// CONNECT proxy as the Talos API (talosapi.go): a CONNECT to a control
// plane's address, or to the cluster endpoint's host (a VIP), on port 6443
// is answered by TLS with a server certificate of the cluster's Kubernetes
// CA, client certificates of that CA required. Behind it, a REST server
// for the requests SDA makes: Nodes (list, get, cordon by patch, delete),
// Pods (list, get, evict, delete), and server-side apply of any object.
// See docs/simulation.md, "The Kubernetes API (kube-apiserver)".

// TokenKubeAPI is the Kubernetes API's type in the call log (provider
// "kube-apiserver") and in faults.json (latency, failOnce with the verbs
// "list", "get", "patch", "apply", "delete", "evict").
const TokenKubeAPI = "kubernetes:api:APIServer"

const kubeAPIPort = talospatch.KubernetesAPIPort

func kubeObjectKey(g GVR, ns, name string) string {
	return strings.Join([]string{g.Group, g.Version, g.Resource, ns, name}, "/")
}

// object is the object server-side apply stored under g, ns, name (nil
// when there is none); the caller must not modify it.
func Object(c *engine.TalosCluster, g GVR, ns, name string) map[string]any {
	if o := c.KubeObjects[kubeObjectKey(g, ns, name)]; o != nil {
		return o.Object
	}
	return nil
}

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

// serve runs the HTTP server until close.
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

// mux splits the CONNECT proxy's listener: a CONNECT to port 6443 is
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
// on 6443. The kube-apiserver must be serving there (kubeServing); then it
// presents a certificate of the cluster's Kubernetes CA and demands a
// client certificate of that CA.
func (k *Server) accept(target string) (*tls.Config, kubeConn, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, kubeConn{}, fmt.Errorf("dial tcp %s: %v", target, err)
	}
	var c *engine.TalosCluster
	err = k.api.St().View(func(tx *engine.Tx) error {
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

// kubeServing is the cluster whose kube-apiserver answers on host:6443
// from Pulumi's machine, or the dial error. The cluster endpoint's host
// goes to the control plane holding it (apiHolder: the node itself, or
// the VIP's holder) through the data plane's rules (kubeAPIReachable); a
// node address must be reachable as the Talos API is (talosUp, a route
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
		if _, err := network.VmAt(tx, host); err != nil {
			// A VIP: whichever control plane holds it answers.
			if err := network.KubeAPIReachable(tx, vipOf, now); err != nil {
				return nil, port(err)
			}
			_, addr, _, _ := network.ApiHolder(tx, vipOf, now)
			if err := ApiServerUp(tx, vipOf, addr, now); err != nil {
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
	if err := ApiServerUp(tx, c, host, now); err != nil {
		return nil, refused(err.Error())
	}
	return c, nil
}

// apiServerUp says why the control plane at addr runs no kube-apiserver
// of c (nil when it does).
func ApiServerUp(tx *engine.Tx, c *engine.TalosCluster, addr string, now time.Time) error {
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
		_ = k.api.St().Log(c)
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
		_ = k.api.St().Log(c)
		writeJSONResponse(w, ks.code, ks.object())
		return
	}
	_ = k.api.St().Log(c)
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
	st := k.api.St()
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

// nextRV is the next resourceVersion of the cluster's API.
func NextRV(c *engine.TalosCluster) uint64 {
	c.ResourceVersion++
	return c.ResourceVersion
}

func ListRV(c *engine.TalosCluster) string { return strconv.FormatUint(max(c.ResourceVersion, 1), 10) }

func kubeUID(parts ...string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(strings.Join(parts, "\x00"))).String()
}

func listOf(kind, rv string, items []map[string]any) map[string]any {
	if items == nil {
		items = []map[string]any{}
	}
	return map[string]any{"kind": kind + "List", "apiVersion": "v1", "metadata": map[string]any{"resourceVersion": rv}, "items": items}
}

// ---- nodes ----

// nodeCondition is the Node's Ready condition: True when its kubelet
// posts ready (tx.nodeReady); False when the kubelet runs but pods have no
// network (no CNI); Unknown when the kubelet stopped posting: the machine
// is down, reset or gone (the node lifecycle controller sets Unknown after
// its grace period, here at once).
func NodeCondition(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) (status, reason, message string) {
	m := tx.State.Machines[n.Address]
	if m == nil || m.ClusterID != c.ID {
		return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	if _, err := network.TalosUp(tx, n.Address, now); err != nil {
		return "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
	}
	if !talos.NodeReady(tx, c, n, now) {
		return "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
	}
	return "True", "KubeletReady", "kubelet is posting ready status"
}

// nodeUp reports whether the node's kubelet runs (its machine is up and
// configured into the cluster), whatever the CNI.
func NodeUp(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) bool {
	s, _, _ := NodeCondition(tx, c, n, now)
	return s != "Unknown"
}

// schedulable reports whether the scheduler places pods on n: Ready and
// not cordoned.
func Schedulable(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) bool {
	return !n.Cordoned && talos.NodeReady(tx, c, n, now)
}

// nodeObject is the Node as the API serves it.
func NodeObject(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) map[string]any {
	m := tx.State.Machines[n.Address]
	var doc map[string]any
	if m != nil && m.ClusterID == c.ID {
		doc = talos.V1alpha1Doc(talos.AppliedConfig(tx, n.Address))
	}
	labels := map[string]any{"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
	var taints []any
	if n.Role == "controlplane" {
		labels["node-role.kubernetes.io/control-plane"] = ""
		if allow, _ := engine.Get(doc, "cluster.allowSchedulingOnControlPlanes").(bool); !allow {
			taints = append(taints, map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
		}
	}
	if extra, ok := engine.Get(doc, "machine.nodeLabels").(map[string]any); ok {
		for k, v := range extra {
			labels[k] = fmt.Sprint(v)
		}
	}
	status, reason, message := NodeCondition(tx, c, n, now)
	switch status {
	case "Unknown":
		taints = append(taints, map[string]any{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
			map[string]any{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"})
	case "False":
		taints = append(taints, map[string]any{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
	}
	spec := map[string]any{}
	if n.Cordoned {
		spec["unschedulable"] = true
		taints = append(taints, map[string]any{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
	}
	if len(taints) > 0 {
		spec["taints"] = taints
	}
	kubelet := ""
	osImage := "Talos"
	if m != nil && m.ClusterID == c.ID {
		kubelet = talos.ImageTag(RunningImage(tx, m, doc, "kubelet", now))
		osImage = "Talos (" + m.Version + ")"
	}
	ts := now.UTC().Format(time.RFC3339)
	return map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": n.Name, "uid": kubeUID(c.ID, "node", n.Name),
			"resourceVersion": strconv.FormatUint(max(n.ResourceVersion, 1), 10), "labels": labels},
		"spec": spec,
		"status": map[string]any{
			"addresses": []any{map[string]any{"type": "InternalIP", "address": n.Address}, map[string]any{"type": "Hostname", "address": n.Name}},
			"conditions": []any{map[string]any{"type": "Ready", "status": status, "reason": reason, "message": message,
				"lastHeartbeatTime": ts, "lastTransitionTime": ts}},
			"nodeInfo": map[string]any{"kubeletVersion": kubelet, "kubeProxyVersion": "", "osImage": osImage,
				"operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "containerd://2.1.5"},
		},
	}
}

// runningImage is the image a component runs: the previous one while a
// change restarts it, else the configuration's.
func RunningImage(tx *engine.Tx, m *engine.TalosMachine, doc map[string]any, component string, now time.Time) string {
	if ch := LastChange(tx, m.Address, component, time.Time{}); ch != nil && now.Before(ch.Ready) {
		return ch.From
	}
	return talos.ComponentImage(m, doc, component)
}

func (q *kubeRequest) listNodes() (int, any, error) {
	sel, err := parseSelector(q.r.URL.Query().Get("labelSelector"))
	if err != nil {
		return 0, nil, err
	}
	fields, err := parseFieldSelector(q.r.URL.Query().Get("fieldSelector"), "metadata.name", "spec.unschedulable")
	if err != nil {
		return 0, nil, err
	}
	var items []map[string]any
	for _, name := range slices.Sorted(maps.Keys(q.c.Nodes)) {
		n := NodeObject(q.tx, q.c, q.c.Nodes[name], q.now)
		if sel.matches(n) && fields.matches(n) {
			items = append(items, n)
		}
	}
	return http.StatusOK, listOf("Node", ListRV(q.c), items), nil
}

var nodesGVR = GVR{"", "v1", "nodes"}

func (q *kubeRequest) node(name string) (*engine.K8sNode, error) {
	n := q.c.Nodes[name]
	if n == nil {
		return nil, notFound(nodesGVR, name)
	}
	return n, nil
}

func (q *kubeRequest) getNode(name string) (int, any, error) {
	n, err := q.node(name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, NodeObject(q.tx, q.c, n, q.now), nil
}

// patchNode is a merge or strategic merge patch of a Node: what
// `kubectl cordon`/`uncordon` send ({"spec":{"unschedulable":true}}). A
// metadata.resourceVersion in the patch is a precondition (409 Conflict
// when the Node has changed since). Only spec.unschedulable is simulated.
func (q *kubeRequest) patchNode(name string) (int, any, error) {
	ct := q.r.Header.Get("Content-Type")
	if i := strings.Index(ct, ";"); i > 0 {
		ct = ct[:i]
	}
	if ct != "application/merge-patch+json" && ct != "application/strategic-merge-patch+json" {
		e := statusErr(http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (simulation: json-patch is not simulated)")
		return 0, nil, e
	}
	if q.r.URL.Query().Has("force") {
		return 0, nil, invalidOptions("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch")
	}
	n, err := q.node(name)
	if err != nil {
		return 0, nil, err
	}
	var patch map[string]any
	if err := json.Unmarshal(q.body, &patch); err != nil {
		return 0, nil, badRequest("error decoding patch: %v", err)
	}
	if rv, ok := engine.Get(patch, "metadata.resourceVersion").(string); ok && rv != strconv.FormatUint(max(n.ResourceVersion, 1), 10) {
		e := statusErr(http.StatusConflict, "Conflict", "Operation cannot be fulfilled on nodes %q: the object has been modified; please apply your changes to the latest version and try again", name)
		e.details = map[string]any{"name": name, "kind": "nodes"}
		return 0, nil, e
	}
	for key, v := range patch {
		switch key {
		case "metadata":
			md, _ := v.(map[string]any)
			for mk := range md {
				if mk != "resourceVersion" && mk != "name" {
					return 0, nil, notSimulatedPatch(name)
				}
			}
		case "spec":
			spec, _ := v.(map[string]any)
			for sk, sv := range spec {
				if sk != "unschedulable" {
					return 0, nil, notSimulatedPatch(name)
				}
				u, _ := sv.(bool) // null removes the field: schedulable
				if u != n.Cordoned {
					n.Cordoned = u
					n.ResourceVersion = NextRV(q.c)
				}
			}
		default:
			return 0, nil, notSimulatedPatch(name)
		}
	}
	return http.StatusOK, NodeObject(q.tx, q.c, n, q.now), nil
}

func notSimulatedPatch(name string) error {
	return statusErr(http.StatusUnprocessableEntity, "Invalid",
		"Node %q is invalid: simulation: only spec.unschedulable (and metadata.resourceVersion as a precondition) can be patched", name)
}

// invalidOptions is ValidatePatchOptions' refusal (422 Invalid, kind
// PatchOptions.meta.k8s.io) of one field.
func invalidOptions(field, causeReason, detail string) error {
	e := statusErr(http.StatusUnprocessableEntity, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: %s: %s", field, detail)
	e.details = map[string]any{"group": "meta.k8s.io", "kind": "PatchOptions",
		"causes": []any{map[string]any{"reason": causeReason, "message": detail, "field": field}}}
	return e
}

// deleteNode removes the Node object (what `kubectl delete node` does):
// its pods go with it (the pod garbage collector; here at once) and a
// running kubelet does not register it again. The reply is the Node.
func (q *kubeRequest) deleteNode(name string) (int, any, error) {
	n, err := q.node(name)
	if err != nil {
		return 0, nil, err
	}
	obj := NodeObject(q.tx, q.c, n, q.now)
	delete(q.c.Nodes, name)
	NextRV(q.c)
	return http.StatusOK, obj, nil
}

// ---- selectors ----

type selectorTerm struct {
	key, op string
	values  []string
}

type labelSelector []selectorTerm

// parseSelector parses a label selector: "key", "!key", "key=value",
// "key==value", "key!=value", "key in (a,b)", "key notin (a,b)", joined
// by commas (all must hold).
func parseSelector(s string) (labelSelector, error) {
	var out labelSelector
	for _, t := range splitTerms(s) {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		switch {
		case strings.HasPrefix(t, "!"):
			out = append(out, selectorTerm{key: strings.TrimSpace(t[1:]), op: "!"})
		case strings.Contains(t, "!="):
			k, v, _ := strings.Cut(t, "!=")
			out = append(out, selectorTerm{key: strings.TrimSpace(k), op: "!=", values: []string{strings.TrimSpace(v)}})
		case strings.Contains(t, "="):
			k, v, _ := strings.Cut(t, "=")
			out = append(out, selectorTerm{key: strings.TrimSpace(k), op: "=", values: []string{strings.TrimSpace(strings.TrimPrefix(v, "="))}})
		case strings.Contains(t, " in ") || strings.Contains(t, " notin "):
			op := "in"
			k, v, _ := strings.Cut(t, " in ")
			if strings.Contains(t, " notin ") {
				op = "notin"
				k, v, _ = strings.Cut(t, " notin ")
			}
			v = strings.TrimSpace(v)
			if !strings.HasPrefix(v, "(") || !strings.HasSuffix(v, ")") {
				return nil, badRequest("unable to parse requirement: %q", t)
			}
			var vals []string
			for _, x := range strings.Split(v[1:len(v)-1], ",") {
				vals = append(vals, strings.TrimSpace(x))
			}
			out = append(out, selectorTerm{key: strings.TrimSpace(k), op: op, values: vals})
		default:
			if strings.ContainsAny(t, " ()<>") {
				return nil, badRequest("unable to parse requirement: %q", t)
			}
			out = append(out, selectorTerm{key: t, op: "exists"})
		}
	}
	return out, nil
}

func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func (sel labelSelector) matches(obj map[string]any) bool {
	labels, _ := engine.Get(obj, "metadata.labels").(map[string]any)
	for _, t := range sel {
		v, has := labels[t.key]
		val := fmt.Sprint(v)
		switch t.op {
		case "exists":
			if !has {
				return false
			}
		case "!":
			if has {
				return false
			}
		case "=":
			if !has || val != t.values[0] {
				return false
			}
		case "!=":
			if has && val == t.values[0] {
				return false
			}
		case "in":
			if !has || !slices.Contains(t.values, val) {
				return false
			}
		case "notin":
			if has && slices.Contains(t.values, val) {
				return false
			}
		}
	}
	return true
}

type fieldSelector []selectorTerm

// parseFieldSelector parses "field=value", "field==value" and
// "field!=value" terms over the fields the resource supports (others:
// 400 "field label not supported").
func parseFieldSelector(s string, supported ...string) (fieldSelector, error) {
	var out fieldSelector
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		op, sep := "=", "="
		if strings.Contains(t, "!=") {
			op, sep = "!=", "!="
		}
		k, v, ok := strings.Cut(t, sep)
		if !ok {
			return nil, badRequest("invalid selector: '%s'; can't understand '%s'", s, t)
		}
		k = strings.TrimSpace(k)
		if !slices.Contains(supported, k) {
			return nil, badRequest("field label not supported: %s", k)
		}
		out = append(out, selectorTerm{key: k, op: op, values: []string{strings.TrimSpace(strings.TrimPrefix(v, "="))}})
	}
	return out, nil
}

func (sel fieldSelector) matches(obj map[string]any) bool {
	for _, t := range sel {
		v := engine.Get(obj, t.key)
		val := ""
		if v != nil {
			val = fmt.Sprint(v)
		}
		if t.key == "spec.unschedulable" && val == "" {
			val = "false"
		}
		if (val == t.values[0]) != (t.op == "=") {
			return false
		}
	}
	return true
}

// ---- server-side apply ----

// kubeKinds are the built-in resources the simulated API serves, by
// group/version/resource: their kind and whether they are namespaced.
// Custom resources are those of an applied CustomResourceDefinition.
var kubeKinds = map[GVR]struct {
	kind       string
	namespaced bool
}{
	{"", "v1", "pods"}: {"Pod", true}, {"", "v1", "nodes"}: {"Node", false}, {"", "v1", "namespaces"}: {"Namespace", false},
	{"", "v1", "configmaps"}: {"ConfigMap", true}, {"", "v1", "secrets"}: {"Secret", true}, {"", "v1", "services"}: {"Service", true},
	{"", "v1", "serviceaccounts"}: {"ServiceAccount", true}, {"", "v1", "endpoints"}: {"Endpoints", true},
	{"", "v1", "persistentvolumeclaims"}: {"PersistentVolumeClaim", true}, {"", "v1", "persistentvolumes"}: {"PersistentVolume", false},
	{"", "v1", "limitranges"}: {"LimitRange", true}, {"", "v1", "resourcequotas"}: {"ResourceQuota", true},
	{"apps", "v1", "deployments"}: {"Deployment", true}, {"apps", "v1", "daemonsets"}: {"DaemonSet", true},
	{"apps", "v1", "statefulsets"}: {"StatefulSet", true}, {"apps", "v1", "replicasets"}: {"ReplicaSet", true},
	{"batch", "v1", "jobs"}: {"Job", true}, {"batch", "v1", "cronjobs"}: {"CronJob", true},
	{"policy", "v1", "poddisruptionbudgets"}:     {"PodDisruptionBudget", true},
	{"rbac.authorization.k8s.io", "v1", "roles"}: {"Role", true}, {"rbac.authorization.k8s.io", "v1", "rolebindings"}: {"RoleBinding", true},
	{"rbac.authorization.k8s.io", "v1", "clusterroles"}: {"ClusterRole", false}, {"rbac.authorization.k8s.io", "v1", "clusterrolebindings"}: {"ClusterRoleBinding", false},
	{"apiextensions.k8s.io", "v1", "customresourcedefinitions"}: {"CustomResourceDefinition", false},
	{"networking.k8s.io", "v1", "networkpolicies"}:              {"NetworkPolicy", true}, {"networking.k8s.io", "v1", "ingresses"}: {"Ingress", true},
	{"networking.k8s.io", "v1", "ingressclasses"}: {"IngressClass", false}, {"storage.k8s.io", "v1", "storageclasses"}: {"StorageClass", false},
	{"scheduling.k8s.io", "v1", "priorityclasses"}: {"PriorityClass", false}, {"coordination.k8s.io", "v1", "leases"}: {"Lease", true},
	{"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"}: {"ValidatingWebhookConfiguration", false},
	{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"}:   {"MutatingWebhookConfiguration", false},
}

// kindOf is the kind of g and whether it is namespaced: built in, or
// defined by an applied CustomResourceDefinition (spec.group,
// spec.names.plural/kind, spec.scope, spec.versions[].name).
func KindOf(c *engine.TalosCluster, g GVR) (string, bool, bool) {
	if k, ok := kubeKinds[g]; ok {
		return k.kind, k.namespaced, true
	}
	crds := GVR{"apiextensions.k8s.io", "v1", "customresourcedefinitions"}
	for _, o := range c.KubeObjects {
		obj := o.Object
		if engine.Str(obj, "apiVersion") != crds.apiVersion() || engine.Str(obj, "kind") != "CustomResourceDefinition" ||
			engine.Str(obj, "spec.group") != g.Group || engine.Str(obj, "spec.names.plural") != g.Resource {
			continue
		}
		for i := range engine.List(obj, "spec.versions") {
			if engine.Str(obj, fmt.Sprintf("spec.versions[%d].name", i)) == g.Version {
				return engine.Str(obj, "spec.names.kind"), engine.Str(obj, "spec.scope") != "Cluster", true
			}
		}
	}
	return "", false, false
}

// gvrOfKind is the resource of apiVersion and kind (for applyObject).
func GvrOfKind(c *engine.TalosCluster, apiVersion, kind string) (GVR, bool) {
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	for g, k := range kubeKinds {
		if g.Group == group && g.Version == version && k.kind == kind {
			return g, true
		}
	}
	for _, o := range c.KubeObjects {
		obj := o.Object
		if engine.Str(obj, "kind") == "CustomResourceDefinition" && engine.Str(obj, "spec.group") == group && engine.Str(obj, "spec.names.kind") == kind {
			return GVR{group, version, engine.Str(obj, "spec.names.plural")}, true
		}
	}
	return GVR{}, false
}

// scope checks that g exists and ns fits its scope.
func Scope(c *engine.TalosCluster, g GVR, ns string) (string, error) {
	kind, namespaced, ok := KindOf(c, g)
	if !ok || g == (GVR{"", "v1", "pods"}) || g == nodesGVR {
		if ok {
			return "", statusErr(http.StatusMethodNotAllowed, "MethodNotAllowed", "simulation: %s are derived from the simulation; only the requests docs/simulation.md lists are simulated", g.Resource)
		}
		return "", statusErr(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
	if namespaced != (ns != "") {
		return "", statusErr(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
	return kind, nil
}

func (q *kubeRequest) getObject(g GVR, ns, name string) (int, any, error) {
	if _, err := Scope(q.c, g, ns); err != nil {
		return 0, nil, err
	}
	obj := Object(q.c, g, ns, name)
	if obj == nil {
		return 0, nil, notFound(g, name)
	}
	return http.StatusOK, obj, nil
}

func (q *kubeRequest) listObjects(g GVR, ns string) (int, any, error) {
	kind, namespaced, ok := KindOf(q.c, g)
	if !ok || g == (GVR{"", "v1", "pods"}) || g == nodesGVR || !namespaced && ns != "" {
		return q.getObject(g, ns, "")
	}
	sel, err := parseSelector(q.r.URL.Query().Get("labelSelector"))
	if err != nil {
		return 0, nil, err
	}
	var items []map[string]any
	for _, key := range slices.Sorted(maps.Keys(q.c.KubeObjects)) {
		o := q.c.KubeObjects[key].Object
		parts := strings.Split(key, "/")
		if len(parts) == 5 && (GVR{parts[0], parts[1], parts[2]}) == g && (ns == "" || parts[3] == ns) && sel.matches(o) {
			items = append(items, o)
		}
	}
	out := listOf(kind, ListRV(q.c), items)
	out["apiVersion"] = g.apiVersion()
	return http.StatusOK, out, nil
}

// apply is server-side apply (PATCH, Content-Type
// application/apply-patch+yaml, fieldManager required, force optional).
func (q *kubeRequest) apply(g GVR, ns, name string) (int, any, error) {
	query := q.r.URL.Query()
	manager := query.Get("fieldManager")
	if manager == "" {
		return 0, nil, invalidOptions("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")
	}
	force := query.Get("force") == "true"
	if _, err := Scope(q.c, g, ns); err != nil {
		return 0, nil, err
	}
	var patch map[string]any
	if err := yaml.Unmarshal(q.body, &patch); err != nil {
		return 0, nil, badRequest("error decoding YAML: %v", err)
	}
	patch, _ = engine.Normalise(patch).(map[string]any)
	obj, created, err := ApplyAt(q.c, g, ns, name, patch, manager, force, q.now)
	if err != nil {
		return 0, nil, err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return code, obj, nil
}

// applyObject is server-side apply of obj (apiVersion, kind, metadata
// name and namespace) by manager, as the Kubernetes API does it: for
// code that applies objects without a request (Talos's bootstrap
// manifests, applied by its manifest controller with the field manager
// "talos" and force).
func ApplyObject(c *engine.TalosCluster, obj map[string]any, manager string, force bool, now time.Time) (map[string]any, error) {
	g, ok := GvrOfKind(c, engine.Str(obj, "apiVersion"), engine.Str(obj, "kind"))
	if !ok {
		return nil, fmt.Errorf("no matches for kind %q in version %q", engine.Str(obj, "kind"), engine.Str(obj, "apiVersion"))
	}
	out, _, err := ApplyAt(c, g, engine.Str(obj, "metadata.namespace"), engine.Str(obj, "metadata.name"), obj, manager, force, now)
	return out, err
}

// applyAt applies patch to the object g/ns/name: the patch's apiVersion,
// kind and name must be the path's; fields another manager owns with
// another value conflict (409) unless force, which takes them over;
// fields this manager applied before and no longer applies are removed
// unless another manager owns them; lists are atomic. A change takes the
// next resourceVersion (and metadata.generation when more than metadata
// changed); an apply that changes nothing keeps it.
func ApplyAt(c *engine.TalosCluster, g GVR, ns, name string, patch map[string]any, manager string, force bool, now time.Time) (map[string]any, bool, error) {
	if v := engine.Str(patch, "apiVersion"); v != g.apiVersion() {
		return nil, false, badRequest("Incorrect version specified in apply patch. Specified patch version: %s, expected: %s", v, g.apiVersion())
	}
	kind, _, _ := KindOf(c, g)
	if k := engine.Str(patch, "kind"); k != kind {
		return nil, false, badRequest("the kind in the data (%s) does not match the expected kind (%s)", k, kind)
	}
	if n := engine.Str(patch, "metadata.name"); n != name {
		return nil, false, badRequest("the name of the object (%s) does not match the name on the URL (%s)", n, name)
	}
	if pns := engine.Str(patch, "metadata.namespace"); pns != "" && pns != ns {
		return nil, false, badRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if engine.Get(patch, "metadata.managedFields") != nil {
		return nil, false, badRequest("metadata.managedFields must be nil")
	}
	if c.KubeObjects == nil {
		c.KubeObjects = map[string]*engine.KubeObject{}
	}
	key := kubeObjectKey(g, ns, name)
	stored := c.KubeObjects[key]
	created := stored == nil
	if created {
		stored = &engine.KubeObject{Object: map[string]any{}, Managers: map[string][]string{}}
	}
	applied := map[string]any{}
	leafPaths(patch, nil, applied)
	for _, p := range []string{"apiVersion", "kind", "metadata\x1fname", "metadata\x1fnamespace", "metadata\x1fresourceVersion",
		"metadata\x1fuid", "metadata\x1fcreationTimestamp", "metadata\x1fgeneration"} {
		delete(applied, p)
	}
	live := map[string]any{}
	leafPaths(stored.Object, nil, live)
	var conflicts []string
	for _, other := range slices.Sorted(maps.Keys(stored.Managers)) {
		if other == manager {
			continue
		}
		for _, p := range stored.Managers[other] {
			if v, ok := applied[p]; ok && !jsonEqual(v, live[p]) {
				conflicts = append(conflicts, other+"\x00"+p)
			}
		}
	}
	if len(conflicts) > 0 && !force {
		var causes []any
		var lines []string
		for _, cf := range conflicts {
			mgr, p, _ := strings.Cut(cf, "\x00")
			field := "." + strings.ReplaceAll(p, "\x1f", ".")
			causes = append(causes, map[string]any{"reason": "FieldManagerConflict", "message": fmt.Sprintf("conflict with %q using %s", mgr, g.apiVersion()), "field": field})
			lines = append(lines, fmt.Sprintf("conflict with %q using %s: %s", mgr, g.apiVersion(), field))
		}
		noun := "conflict"
		if len(lines) > 1 {
			noun = "conflicts"
		}
		e := statusErr(http.StatusConflict, "Conflict", "Apply failed with %d %s: %s", len(lines), noun, strings.Join(lines, "\n"))
		e.details = map[string]any{"causes": causes}
		return nil, false, e
	}
	before, _ := json.Marshal(stored.Object)
	next := deepCopyMap(stored.Object)
	delete(next, "metadata")
	md := map[string]any{}
	if m, ok := stored.Object["metadata"].(map[string]any); ok {
		md = deepCopyMap(m)
	}
	next["metadata"] = md
	owned := map[string]bool{}
	for other, paths := range stored.Managers {
		if other != manager {
			for _, p := range paths {
				owned[p] = true
			}
		}
	}
	for _, p := range stored.Managers[manager] {
		if _, still := applied[p]; !still && !owned[p] {
			removePath(next, strings.Split(p, "\x1f"))
		}
	}
	for p, v := range applied {
		setPath(next, strings.Split(p, "\x1f"), v)
	}
	// Ownership: the applier owns what it applied; force takes conflicting
	// fields from their owners; equal values are shared.
	for other, paths := range stored.Managers {
		if other == manager || !force {
			continue
		}
		stored.Managers[other] = slices.DeleteFunc(paths, func(p string) bool {
			_, ok := applied[p]
			return ok && !jsonEqual(applied[p], live[p])
		})
		if len(stored.Managers[other]) == 0 {
			delete(stored.Managers, other)
		}
	}
	stored.Managers[manager] = slices.Sorted(maps.Keys(applied))
	md = next["metadata"].(map[string]any)
	md["name"] = name
	if ns != "" {
		md["namespace"] = ns
	}
	next["apiVersion"], next["kind"] = g.apiVersion(), kind
	delete(md, "managedFields")
	after, _ := json.Marshal(withoutManaged(next))
	if created || !bytes.Equal(before, after) {
		if created {
			md["uid"] = uuid.NewString()
			md["creationTimestamp"] = now.UTC().Format(time.RFC3339)
			md["generation"] = 1
		} else if specChanged(stored.Object, next) {
			md["generation"] = engine.Num(stored.Object, "metadata.generation") + 1
		}
		md["resourceVersion"] = strconv.FormatUint(NextRV(c), 10)
	}
	md["managedFields"] = managedFields(stored.Managers, g.apiVersion(), now)
	stored.Object = next
	c.KubeObjects[key] = stored
	return next, created, nil
}

func withoutManaged(obj map[string]any) map[string]any {
	out := deepCopyMap(obj)
	if md, ok := out["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
	return out
}

func specChanged(a, b map[string]any) bool {
	x, y := deepCopyMap(a), deepCopyMap(b)
	delete(x, "metadata")
	delete(y, "metadata")
	delete(x, "status")
	delete(y, "status")
	return !jsonEqual(x, y)
}

// managedFields renders field ownership as the API does (FieldsV1:
// "f:<key>" per level).
func managedFields(managers map[string][]string, apiVersion string, now time.Time) []any {
	var out []any
	for _, mgr := range slices.Sorted(maps.Keys(managers)) {
		fields := map[string]any{}
		for _, p := range managers[mgr] {
			cur := fields
			for _, k := range strings.Split(p, "\x1f") {
				next, ok := cur["f:"+k].(map[string]any)
				if !ok {
					next = map[string]any{}
					cur["f:"+k] = next
				}
				cur = next
			}
		}
		out = append(out, map[string]any{"manager": mgr, "operation": "Apply", "apiVersion": apiVersion,
			"time": now.UTC().Format(time.RFC3339), "fieldsType": "FieldsV1", "fieldsV1": fields})
	}
	return out
}

// leafPaths collects the leaves of v (maps are descended; lists and
// scalars are leaves) by "\x1f"-joined key path.
func leafPaths(v map[string]any, prefix []string, out map[string]any) {
	for k, x := range v {
		p := append(slices.Clone(prefix), k)
		if m, ok := x.(map[string]any); ok && len(m) > 0 {
			leafPaths(m, p, out)
			continue
		}
		out[strings.Join(p, "\x1f")] = x
	}
}

func setPath(m map[string]any, p []string, v any) {
	for _, k := range p[:len(p)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[p[len(p)-1]] = v
}

func removePath(m map[string]any, p []string) {
	if len(p) == 1 {
		delete(m, p[0])
		return
	}
	if next, ok := m[p[0]].(map[string]any); ok {
		removePath(next, p[1:])
		if len(next) == 0 {
			delete(m, p[0])
		}
	}
}

func deepCopyMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
