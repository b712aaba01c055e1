package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzResolve feeds hostile strings to the configuration's address and
// network fields: Resolve must never panic, and must return either a plan
// or problems that each name an sda: key. go test runs the seeds below and
// the committed corpus (testdata/fuzz/FuzzResolve); go test -fuzz
// FuzzResolve ./config searches for more.
func FuzzResolve(f *testing.F) {
	f.Add("10.10.0.10", "10.10.0.200", "10.10.0.250", "10.10.0.0/24", "192.168.1.0/24", "192.168.1.50", "192.168.1.1", 3)
	f.Add("not-an-ip", "", "", "10.10.0.0/24", "192.168.1.0/24", "dhcp", "", 3)
	f.Add("10.10.0.10", "10.10.0.x", "::1", "10.10.0.0/24", "192.168.1.0/24", "dhcp", "", 1)
	f.Add("fe80::1%eth0", "10.10.0.250", "10.10.0.200", "10.10.0.0/30", "10.10.0.0/16", "10.10.0.5", "10.10.0.1", 5)
	f.Add("", "", "", "bogus", "192.168.1.0/33", "192.168.1.256", "gw\n", -1)
	f.Fuzz(func(t *testing.T, vip, dhcpStart, dhcpEnd, internalCIDR, externalCIDR, routerAddress, gateway string, cps int) {
		c := valid()
		c.Cluster.ControlPlanes = cps
		c.Cluster.VIP = vip
		c.Network.Internal.DHCPStart = dhcpStart
		c.Network.Internal.DHCPEnd = dhcpEnd
		c.Network.Internal.CIDR = internalCIDR
		c.Network.External.CIDR = externalCIDR
		c.Network.External.RouterAddress = routerAddress
		c.Network.External.Gateway = gateway
		_, p, err := Resolve(c)
		if err == nil {
			if len(p.ControlPlanes) != cps {
				t.Fatalf("a plan with %d control planes for controlPlanes %d", len(p.ControlPlanes), cps)
			}
			return
		}
		var cfgErr *Error
		if !errors.As(err, &cfgErr) || len(cfgErr.Problems) == 0 {
			t.Fatalf("not a configuration error with problems: %v", err)
		}
		for _, pr := range cfgErr.Problems {
			if !strings.HasPrefix(pr.Key, "sda:") || pr.Fix == "" {
				t.Fatalf("a problem without a key or a fix: %+v", pr)
			}
		}
	})
}
