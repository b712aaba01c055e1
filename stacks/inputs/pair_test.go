package inputs

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/config"
)

// prodRouters are the shipped prod stack's routers.
func prodRouters(t *testing.T) []spec.Router {
	t.Helper()
	c, p, err := config.LoadStack("../../testdata/stacks", "prod")
	if err != nil {
		t.Fatal(err)
	}
	routers, err := Routers(c, p)
	if err != nil {
		t.Fatal(err)
	}
	return routers
}

// prod's pair: two routers on pve1 and pve2 with the shared addresses as
// InternalAddress and ExternalAddress, each with its own addresses and its
// peer's, and SSH to its own node; the rendered pair halves the DHCP range.
func TestRoutersOfProdArePair(t *testing.T) {
	routers := prodRouters(t)
	if len(routers) != 2 {
		t.Fatalf("%d routers, want 2", len(routers))
	}
	want := []struct {
		node, host, ssh, own, peer, ownExt string
		vmid                               int
	}{
		{"pve1", "router", "192.168.1.11", "10.20.0.2", "10.20.0.3", "192.168.1.61", 9001},
		{"pve2", "router2", "192.168.1.12", "10.20.0.3", "10.20.0.2", "192.168.1.62", 9002},
	}
	for i, r := range routers {
		w := want[i]
		if r.ProxmoxNode != w.node || r.Hostname != w.host || r.VMID != w.vmid || r.SSH.Host != w.ssh {
			t.Errorf("router %d on %s (%s, %d, ssh %s), want %s (%s, %d, ssh %s)", i, r.ProxmoxNode, r.Hostname, r.VMID, r.SSH.Host, w.node, w.host, w.vmid, w.ssh)
		}
		if r.InternalAddress != "10.20.0.1/24" || r.ExternalAddress != "192.168.1.60/24" {
			t.Errorf("router %d shares %s and %s, want 10.20.0.1/24 and 192.168.1.60/24", i, r.InternalAddress, r.ExternalAddress)
		}
		if pr := r.Pair; pr == nil || pr.Index != i || pr.OwnInternalAddress != w.own || pr.PeerInternalAddress != w.peer || pr.OwnExternalAddress != w.ownExt || pr.VRID != 51 {
			t.Errorf("router %d pair = %+v", i, r.Pair)
		}
		ext, in := r.ContainerAddresses()
		if ext != w.ownExt+"/24" || in != w.own+"/24" {
			t.Errorf("router %d container addresses %s, %s; want its own", i, ext, in)
		}
		f, err := r.Files()
		if err != nil {
			t.Fatal(err)
		}
		if f.Pair == nil || f.RouterInternal != netip.MustParseAddr("10.20.0.1") || f.Pair.OwnInternal.String() != w.own {
			t.Errorf("router %d files: gateway %s, pair %+v", i, f.RouterInternal, f.Pair)
		}
	}
}

// A pair's own addresses are parsed like every other router address: each
// mistake names its field.
func TestRouterPairParseErrors(t *testing.T) {
	routers := prodRouters(t)
	for _, tc := range []struct {
		name, want string
		edit       func(*struct{ own, peer, ownExt string })
	}{
		{"own internal is the gateway", "Pair.OwnInternalAddress = 10.20.0.1 is the address the pair shares", func(a *struct{ own, peer, ownExt string }) { a.own = "10.20.0.1" }},
		{"peer outside the internal network", "Pair.PeerInternalAddress = 10.99.0.3 is outside the internal network", func(a *struct{ own, peer, ownExt string }) { a.peer = "10.99.0.3" }},
		{"own external not an address", "Pair.OwnExternalAddress = \"eth0\" is not an IPv4 address", func(a *struct{ own, peer, ownExt string }) { a.ownExt = "eth0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := routers[0]
			pr := *r.Pair
			a := struct{ own, peer, ownExt string }{pr.OwnInternalAddress, pr.PeerInternalAddress, pr.OwnExternalAddress}
			tc.edit(&a)
			pr.OwnInternalAddress, pr.PeerInternalAddress, pr.OwnExternalAddress = a.own, a.peer, a.ownExt
			r.Pair = &pr
			if _, err := r.Files(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Files() = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
