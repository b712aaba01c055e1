package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Warning is a finding that is legal but probably wrong: the key, its value
// and the reason. Warnings never fail a run; `sda plan` prints them and the
// Pulumi program logs them (ctx.Log.Warn).
type Warning struct {
	Key    string
	Value  string
	Reason string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s = %q: %s", w.Key, w.Value, w.Reason)
}

// Warnings lists what a resolved configuration probably gets wrong.
func Warnings(c Config, p Plan) []Warning {
	var out []Warning
	add := func(key, value, format string, args ...any) {
		out = append(out, Warning{Key: key, Value: value, Reason: fmt.Sprintf(format, args...)})
	}
	nw := c.Network
	if len(nw.AdminCIDRs) == 0 {
		add("sda:network.adminCidrs", "[]",
			"nobody outside the internal network may reach the Talos API (50000) or the Kubernetes API (6443), and Pulumi needs both to configure the nodes and install the CNI: unless Pulumi runs on the internal network, list its network, e.g. [%s]", exampleAdmin(c))
	}
	for i, s := range nw.AdminCIDRs {
		a, err := netip.ParsePrefix(s)
		if err == nil && p.External.IsValid() && a.Bits() < p.External.Bits() && !a.Overlaps(p.Internal) {
			add(fmt.Sprintf("sda:network.adminCidrs[%d]", i), s,
				"is wider than the external network %s: every address in it may reach the Talos and Kubernetes APIs; narrow it to the admins' own networks", p.External)
		}
	}
	if !p.RouterExternal.IsValid() && len(nw.PortForwards) > 0 {
		var names []string
		for _, f := range nw.PortForwards {
			names = append(names, f.Name)
		}
		add("sda:network.external.routerAddress", "dhcp",
			"port-forwards (%s) are published on an address DHCP may change, and it is not in the API server's certificate: give the router a static address", strings.Join(names, ", "))
	}
	for i, f := range nw.PortForwards {
		for j, s := range f.AllowFrom {
			a, err := netip.ParsePrefix(s)
			if err == nil && a.Overlaps(p.Internal) {
				add(fmt.Sprintf("sda:network.portForwards[%d].allowFrom[%d]", i, j), s,
					"overlaps the internal network %s, whose hosts never come through the router's external side: list external sources only", p.Internal)
			}
		}
	}
	return out
}
