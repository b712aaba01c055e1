package talos_test

import (
	"strings"
	"testing"

	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"github.com/siderolabs/talos/pkg/machinery/client"
	"google.golang.org/grpc/codes"
)

// Kubeconfig is served by control planes only: an admin kubeconfig for the
// cluster's endpoint, signed by its Kubernetes CA, in a .tar.gz (what
// machinery's client unpacks); a worker refuses it.
func TestTalosAPIKubeconfig(t *testing.T) {
	f := simtest.NewTalosAPIFixture(t, 1, 1, true)
	c := f.Client(f.ClientConfig, f.CPs[0])
	raw, err := c.Kubeconfig(client.WithNode(simtest.CtxTimeout(t), f.CPs[0]))
	simtest.NoErr(t, err)
	cl := f.Cluster()
	for _, want := range []string{"server: " + cl.Endpoint, "certificate-authority-data: " + talos.B64([]byte(cl.K8sCA)), "current-context: admin@" + cl.Name} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the kubeconfig lacks %q:\n%s", want, raw)
		}
	}
	_, err = c.Kubeconfig(client.WithNode(simtest.CtxTimeout(t), f.Workers[0]))
	wantCode(t, err, codes.Unimplemented, "kubeconfig is only available on control plane nodes")
}
