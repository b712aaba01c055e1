package inputs

import (
	"slices"
	"testing"

	"github.com/sda-platform/sda/config"
)

func loadStack(t *testing.T, stack string) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := config.LoadStack("../../testdata/stacks", stack)
	if err != nil {
		t.Fatalf("loading stack %s: %v", stack, err)
	}
	return c, p
}

// The router's external address is a certificate name only when a
// port-forward publishes the API there; a forward to 6443 on a worker or
// to another port does not.
func TestCertSANs(t *testing.T) {
	prod, p := loadStack(t, "prod")
	dev, dp := loadStack(t, "dev")
	if got := CertSANs(dev, dp); got != nil {
		t.Errorf("dev forwards nothing to the API: extra SANs %v", got)
	}
	cases := []struct {
		target string
		port   int
		want   bool
	}{
		{"vip", 6443, true},
		{"prod-cp2", 6443, true},
		{"10.20.0.13", 6443, true},
		{"prod-worker1", 6443, false},
		{"vip", 443, false},
	}
	for _, tc := range cases {
		c := prod
		c.Network.PortForwards = []config.PortForward{{Name: "x", Protocol: "tcp", Port: 7000, Target: tc.target, TargetPort: tc.port}}
		if got := ForwardsKubernetesAPI(c, p); got != tc.want {
			t.Errorf("forward to %s:%d: ForwardsKubernetesAPI = %v, want %v", tc.target, tc.port, got, tc.want)
		}
		if got := CertSANs(c, p); slices.Equal(got, []string{"192.168.1.60"}) != tc.want {
			t.Errorf("forward to %s:%d: extra SANs %v", tc.target, tc.port, got)
		}
	}
}

