package talos

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	stdx509 "crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	cosi "github.com/cosi-project/runtime/api/v1alpha1"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/role"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const (
	// TokenTalosAPI is the type token of the Talos API in faults.json
	// (latency, failOnce with method "Upgrade", "Reset", ...) and in the
	// call log (provider "talos-apid").
	TokenTalosAPI = "talos:api:MachineService"

	apidPort = 50000
)

// APIDialer returns a gRPC context dialer (grpc.WithContextDialer) that
// reaches any node address through the simulated Talos API listening on
// listenAddr, with the HTTP CONNECT exchange a proxied client makes. A dial
// the simulated network refuses fails with the error a real dial would
// ("dial tcp 10.0.0.21:50000: connect: connection refused (…)"), which gRPC
// reports as codes.Unavailable. Clients built with machinery's default
// dialer get the same through HTTPS_PROXY.
func APIDialer(listenAddr string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", listenAddr)
		if err != nil {
			return nil, fmt.Errorf("simulated Talos API at %s: %w", listenAddr, err)
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", addr, addr); err != nil {
			conn.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("simulated Talos API at %s: %w", listenAddr, err)
		}
		if resp.StatusCode != http.StatusOK {
			// A refusal carries its reason as the body; a 200's body is
			// the tunnel itself and must not be read here.
			body, _ := io.ReadAll(resp.Body)
			conn.Close()
			return nil, errors.New(strings.TrimSpace(string(body)))
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	}
}

// Colocated is a server that shares the Talos API's listener (the
// clusters' kube-apiservers, on CONNECTs to port 6443): Mux takes its
// connections from the listener and returns the rest, Serve serves them
// until Close.
type Colocated interface {
	Mux(lis net.Listener) net.Listener
	Serve()
	Close()
}

// ServeAPIOf serves the simulated Talos API of the simulation directory
// dir() on lis until ctx ends: each call works on dir()'s simulation.
// colocated may be nil; else the server it returns shares lis.
func ServeAPIOf(ctx context.Context, dir func() string, lis net.Listener, colocated func(*API) Colocated) error {
	api, err := newAPI(dir)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.Creds(&apidCreds{api: api}))
	machine.RegisterMachineServiceServer(srv, api)
	cosi.RegisterStateServer(srv, &cosiState{api: api})
	var co Colocated
	if colocated != nil {
		co = colocated(api)
		lis = co.Mux(lis)
		go co.Serve()
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			srv.Stop()
		case <-stopped:
		}
	}()
	err = srv.Serve(lis)
	close(stopped)
	if co != nil {
		co.Close()
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// API is the simulated Talos API: apid in front of every node, serving
// machined's MachineService and COSI state.
type API struct {
	machine.UnimplementedMachineServiceServer

	// dir is the simulation directory a call works on (one directory for
	// ServeTalosAPI; the directory of the moment for ServeTalosAPIOf).
	dir    func() string
	stores sync.Map // dir -> *Store, so in-process calls share its mutex
	// maintenance is the self-signed certificate of a node in maintenance
	// mode (no configuration): a client with a talosconfig does not trust it.
	maintenance tls.Certificate

	mu    sync.Mutex
	certs map[string]*tls.Certificate // by address and CA
}

// Store is the store of the current simulation directory.
func (a *API) Store() *engine.Store {
	dir := a.dir()
	s, _ := a.stores.LoadOrStore(dir, &engine.Store{Dir: dir})
	return s.(*engine.Store)
}

func newAPI(dir func() string) (*API, error) {
	ca, err := x509.NewSelfSignedCertificateAuthority(x509.Organization("talos maintenance"))
	if err != nil {
		return nil, err
	}
	crt, err := tls.X509KeyPair(ca.CrtPEM, ca.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &API{dir: dir, maintenance: crt, certs: map[string]*tls.Certificate{}}, nil
}

// apidCreds are the server's transport credentials: the dial preamble,
// then TLS as the endpoint node's apid.
type apidCreds struct{ api *API }

// apidInfo is what a call knows of its connection: the TLS state and the
// endpoint node the client dialed, with the CA that verified the client.
type apidInfo struct {
	credentials.TLSInfo
	endpoint string
	ca       string
}

func (c *apidCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	// The client waits for the CONNECT reply before it starts TLS, so the
	// buffered reader cannot have read past the request.
	req, err := http.ReadRequest(bufio.NewReader(raw))
	if err != nil || req.Method != http.MethodConnect {
		raw.Close()
		return nil, nil, fmt.Errorf("simulated Talos API: expected an HTTP CONNECT (set HTTPS_PROXY to this listener, or dial through simulator.APIDialer): %v", err)
	}
	target := req.Host
	cfg, endpoint, ca, err := c.api.accept(target)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		fmt.Fprintf(raw, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
		raw.Close()
		return nil, nil, err
	}
	if _, err := io.WriteString(raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		raw.Close()
		return nil, nil, err
	}
	conn, info, err := credentials.NewTLS(cfg).ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	return conn, apidInfo{TLSInfo: info.(credentials.TLSInfo), endpoint: endpoint, ca: ca}, nil
}

func (c *apidCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("simulated Talos API: server credentials only")
}
func (c *apidCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2"}
}
func (c *apidCreds) Clone() credentials.TransportCredentials { return &apidCreds{api: c.api} }
func (c *apidCreds) OverrideServerName(string) error         { return nil }

// accept is a connection to target (host:port) from Pulumi's machine: the
// node must run, answer on the Talos API port and be reachable through the
// simulated network (network.TalosReachable); its apid then presents a certificate
// from its cluster's OS CA and demands a client certificate of that CA. A
// node in maintenance mode presents a self-signed certificate.
func (a *API) accept(target string) (*tls.Config, string, string, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, "", "", fmt.Errorf("dial tcp %s: %v", target, err)
	}
	var cfg *tls.Config
	var ca string
	err = a.Store().View(func(tx *engine.Tx) error {
		if port != strconv.Itoa(apidPort) {
			if _, err := network.VMAt(tx, host); err != nil {
				return err
			}
			return fmt.Errorf("dial tcp %s: connect: connection refused (the Talos API listens on %d)", target, apidPort)
		}
		g, err := network.TalosReachable(tx, host, time.Now())
		if err != nil {
			return err
		}
		m := tx.State.Machines[host]
		if m == nil {
			cfg = &tls.Config{Certificates: []tls.Certificate{a.maintenance}, MinVersion: tls.VersionTLS12}
			return nil
		}
		crt, err := a.serverCert(tx, m, g)
		if err != nil {
			return err
		}
		pool := stdx509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(m.OSCA))
		ca = m.OSCA
		cfg = &tls.Config{Certificates: []tls.Certificate{*crt}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: pool, MinVersion: tls.VersionTLS12}
		return nil
	})
	return cfg, host, ca, err
}

// serverCert is the apid certificate of machine m: issued by its cluster's
// OS CA for the VM's addresses. A control plane's configuration carries
// the CA key; a worker's does not, and gets its certificate from a control
// plane's trustd, so the key is taken from any configuration of the same
// cluster that has it.
func (a *API) serverCert(tx *engine.Tx, m *engine.TalosMachine, g *engine.Guest) (*tls.Certificate, error) {
	sum := sha256.Sum256([]byte(m.OSCA))
	key := m.Address + "\x00" + string(sum[:])
	a.mu.Lock()
	defer a.mu.Unlock()
	if crt := a.certs[key]; crt != nil {
		return crt, nil
	}
	var issuer *x509.PEMEncodedCertificateAndKey
	try := func(addr string) {
		if issuer != nil {
			return
		}
		cfg, err := configloader.NewFromBytes([]byte(AppliedConfig(tx, addr)))
		if err != nil || cfg.Machine() == nil || cfg.Cluster() == nil || cfg.Cluster().ID() != m.ClusterID {
			return
		}
		if ca := cfg.Machine().Security().IssuingCA(); ca != nil && len(ca.Key) > 0 && string(ca.Crt) == m.OSCA {
			issuer = ca
		}
	}
	try(m.Address)
	for addr, om := range tx.State.Machines {
		if om.ClusterID == m.ClusterID && om.Type == "controlplane" {
			try(addr)
		}
	}
	if issuer == nil {
		return nil, fmt.Errorf("dial tcp %s:%d: connect: connection refused (apid has no certificate: no control plane of cluster %s holds the OS CA key for trustd)", m.Address, apidPort, m.Cluster)
	}
	ca, err := x509.NewCertificateAuthorityFromCertificateAndKey(issuer)
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, s := range g.Addresses {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	crt, err := IssueCert(ca, x509.CommonName(nodeName(m, g)), x509.IPAddresses(ips),
		x509.NotAfter(time.Now().Add(365*24*time.Hour)),
		x509.ExtKeyUsage([]stdx509.ExtKeyUsage{stdx509.ExtKeyUsageServerAuth, stdx509.ExtKeyUsageClientAuth}))
	if err != nil {
		return nil, err
	}
	a.certs[key] = crt
	return crt, nil
}

// methodRoles are the roles each simulated method admits (talos v1.12.0
// internal/app/machined/pkg/system/services/machined.go:53-95).
var methodRoles = map[string]role.Set{
	"Version":               role.MakeSet(role.Admin, role.Operator, role.Reader),
	"Upgrade":               role.MakeSet(role.Admin),
	"Events":                role.MakeSet(role.Admin, role.Operator, role.Reader),
	"ServiceList":           role.MakeSet(role.Admin, role.Operator, role.Reader),
	"COSI.List":             role.MakeSet(role.Admin, role.Operator, role.Reader),
	"Reset":                 role.MakeSet(role.Admin),
	"EtcdMemberList":        role.MakeSet(role.Admin, role.Operator, role.Reader, role.EtcdBackup),
	"EtcdLeaveCluster":      role.MakeSet(role.Admin),
	"EtcdRemoveMemberByID":  role.MakeSet(role.Admin),
	"EtcdForfeitLeadership": role.MakeSet(role.Admin),
	"ApplyConfiguration":    role.MakeSet(role.Admin),
	"Containers":            role.MakeSet(role.Admin, role.Operator, role.Reader),
	"Kubeconfig":            role.MakeSet(role.Admin),
}

// nodeCall is one node's part of a call: the target machine, in a locked
// transaction.
type nodeCall struct {
	tx  *engine.Tx
	m   *engine.TalosMachine
	g   *engine.Guest
	now time.Time
	// faults are the simulation's fault settings (reboot time).
	faults engine.Faults
	// log, when set, is an error to record in the call log without
	// failing the call (a reset sequence that fails after its reply).
	log error
}

// unavailable is how a client sees a hop to a node that does not answer:
// the gRPC connection error.
func unavailable(err error) error {
	return status.Errorf(codes.Unavailable, "connection error: desc = %q", "transport: Error while dialing: "+err.Error())
}

// apiCall is apid's routing (talos v1.12.0 internal/app/apid/pkg/director/
// director.go:50-135) with machined's handler fn on each target:
//   - no "node"/"nodes" metadata: the endpoint itself answers;
//   - "node" (client.WithNode): one target, one-to-one proxying: its reply
//     or its error as the call's (grpc-proxy handler_one2one.go);
//   - "nodes" (client.WithNodes): every target answers; replies get
//     metadata.hostname, failures become messages with metadata.error and
//     metadata.status (internal/app/apid/pkg/backend/apid.go:173-257),
//     which machinery's FilterMessages turns back into errors.
//
// The endpoint proxies to a target over the cluster network (network.PeerReach on
// 50000), authenticated with its own certificate, which a node of another
// CA (or in maintenance mode) refuses. write runs fn in a saved transaction.
//
// An injected failure (faults.json failOnce, type TokenTalosAPI) fails
// one target's call before it does anything, with faultErr's wrapping
// when given.
func apiCall[M proto.Message](ctx context.Context, a *API, method string, write bool, fn func(nc *nodeCall) (M, error), faultErr func(error) error) ([]M, error) {
	info, roles, err := a.caller(ctx)
	if err != nil {
		return nil, err
	}
	if !roles.IncludesAny(methodRoles[method]) {
		return nil, status.Error(codes.PermissionDenied, "not authorized")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	node, okNode := md["node"]
	nodes, okNodes := md["nodes"]
	if okNode && len(node) != 1 {
		return nil, status.Error(codes.InvalidArgument, "node metadata must be single-valued")
	}
	one := func(target string) (M, error) {
		start := time.Now()
		var out M
		err := a.Store().Before(ctx, TokenTalosAPI, method)
		var logged error
		if err == nil {
			txn := a.Store().View
			if write {
				txn = a.Store().Update
			}
			err = txn(func(tx *engine.Tx) error {
				nc, err := a.target(tx, info, target)
				if err != nil {
					return err
				}
				if nc.faults, err = a.Store().Faults(); err != nil {
					return err
				}
				out, err = fn(nc)
				logged = nc.log
				return err
			})
		} else if faultErr != nil {
			err = faultErr(err)
		}
		c := engine.Call{Time: start, Provider: "talos-apid", Method: method, Type: TokenTalosAPI, Name: target,
			Millis: time.Since(start).Milliseconds()}
		if c.Name == "" {
			c.Name = info.endpoint
		}
		if err != nil {
			c.Error = err.Error()
		} else if logged != nil {
			c.Error = logged.Error()
		}
		_ = a.Store().Log(c)
		return out, err
	}
	switch {
	case okNodes:
		var out []M
		for _, target := range nodes {
			msg, err := one(target)
			if err != nil {
				var zero M
				msg = zero.ProtoReflect().New().Interface().(M)
				setMetadata(msg, &common.Metadata{Hostname: target, Error: err.Error(), Status: status.Convert(err).Proto()})
			} else {
				setMetadata(msg, &common.Metadata{Hostname: target})
			}
			out = append(out, msg)
		}
		return out, nil
	case okNode:
		msg, err := one(node[0])
		if err != nil {
			return nil, err
		}
		return []M{msg}, nil
	default:
		msg, err := one("")
		if err != nil {
			return nil, err
		}
		return []M{msg}, nil
	}
}

func setMetadata(msg proto.Message, md *common.Metadata) {
	r := msg.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("metadata")
	if fd != nil {
		r.Set(fd, protoreflect.ValueOfMessage(md.ProtoReflect()))
	}
}

// caller is the connection's endpoint and the roles of the client
// certificate (its Organization, as Talos reads it).
func (a *API) caller(ctx context.Context) (apidInfo, role.Set, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return apidInfo{}, role.Set{}, status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(apidInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return apidInfo{}, role.Set{}, status.Error(codes.Unauthenticated, "no client certificate")
	}
	roles, _ := role.Parse(info.State.PeerCertificates[0].Subject.Organization)
	return info, roles, nil
}

// target checks, at the time of the call, the connection's endpoint (still
// up and reachable, still of the CA that verified the client) and the hop
// from it to target ("" for the endpoint itself), and returns the target's
// machine.
func (a *API) target(tx *engine.Tx, info apidInfo, target string) (*nodeCall, error) {
	now := time.Now()
	eg, err := network.TalosReachable(tx, info.endpoint, now)
	if err != nil {
		return nil, unavailable(err)
	}
	em := tx.State.Machines[info.endpoint]
	if em == nil || em.OSCA != info.ca {
		return nil, status.Errorf(codes.Unavailable, "connection error: desc = %q", "error reading from server: EOF (endpoint "+info.endpoint+" was reset or reconfigured with another CA)")
	}
	if target == "" || target == info.endpoint {
		return &nodeCall{tx: tx, m: em, g: eg, now: now}, nil
	}
	tg, err := network.TalosUp(tx, target, now)
	if err != nil {
		return nil, unavailable(err)
	}
	if err := network.PeerReach(tx, eg, info.endpoint, tg, target, target, apidPort); err != nil {
		return nil, unavailable(err)
	}
	tm := tx.State.Machines[target]
	if tm == nil || tm.OSCA != em.OSCA {
		why := "node " + target + " is in maintenance mode"
		if tm != nil {
			why = "node " + target + " belongs to another cluster's CA"
		}
		return nil, status.Errorf(codes.Unavailable, "connection error: desc = %q",
			"transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority ("+why+")")
	}
	return &nodeCall{tx: tx, m: tm, g: tg, now: now}, nil
}

// checkControlplane is machined's checkControlplane (v1alpha1_server.go:132-142).
func checkControlplane(m *engine.TalosMachine, api string) error {
	if m.Type != "controlplane" {
		return status.Errorf(codes.Unimplemented, "%s is only available on control plane nodes", api)
	}
	return nil
}
