package simtest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"google.golang.org/grpc"
)

// TalosAPIFixture is a TalosFixture with the simulated Talos API serving
// its simulation directory on a loopback listener.
type TalosAPIFixture struct {
	*TalosFixture
	Addr string
}

// NewTalosAPIFixture is NewTalosFixture with the Talos API served on a
// loopback listener.
func NewTalosAPIFixture(t *testing.T, cps, workers int, boot bool) *TalosAPIFixture {
	t.Helper()
	f := NewTalosFixture(t, cps, workers, boot)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	NoErr(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- simulator.ServeTalosAPI(ctx, f.Px.Store.Dir, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTalosAPI: %v", err)
		}
	})
	return &TalosAPIFixture{TalosFixture: f, Addr: lis.Addr().String()}
}

// Client is machinery's client with a talosconfig made from the client
// configuration cc (the Secrets resource's clientConfiguration output),
// talking to endpoint through the simulator's dialer.
func (f *TalosAPIFixture) Client(cc any, endpoint string) *client.Client {
	f.T.Helper()
	v := cc.(map[string]any)
	cfg := clientconfig.NewConfig("lab", []string{endpoint}, talos.Unb64(engine.Str(v, "caCertificate")),
		&x509.PEMEncodedCertificateAndKey{Crt: talos.Unb64(engine.Str(v, "clientCertificate")), Key: talos.Unb64(engine.Str(v, "clientKey"))})
	c, err := client.New(context.Background(), client.WithConfig(cfg), client.WithEndpoints(endpoint),
		client.WithGRPCDialOptions(grpc.WithContextDialer(talos.APIDialer(f.Addr))))
	NoErr(f.T, err)
	f.T.Cleanup(func() { c.Close() })
	return c
}

// CtxTimeout is a context that ends with the test or after 20 seconds.
func CtxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// VersionOf is the Talos version node reports.
func VersionOf(t *testing.T, c *client.Client, node string) (string, error) {
	t.Helper()
	resp, err := c.Version(client.WithNode(CtxTimeout(t), node))
	if err != nil {
		return "", err
	}
	return resp.Messages[0].Version.Tag, nil
}

// SwapTag is text with every image tag from replaced by to on the lines
// naming component's image.
func SwapTag(text, component, from, to string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "image: ") && strings.Contains(line, "/"+component+":") {
			line = strings.Replace(line, ":"+from, ":"+to, 1)
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
