package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/sda-platform/sda/components/talospatch"
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
	if c.Proxmox.InsecureIgnoreHostKeys {
		add("sda:proxmox.insecureIgnoreHostKeys", "true",
			"SSH to the Proxmox nodes accepts any host key: whoever answers on a node's address receives SDA's root scripts (router firewall, SDN) and can report them applied; pin the keys with `sda trust --stack <stack>` and remove this setting")
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
	talosKey, talosSources := "sda:network.adminCidrs", nw.AdminCIDRs
	if len(nw.TalosAPICIDRs) > 0 {
		talosKey, talosSources = "sda:network.talosApiCidrs", nw.TalosAPICIDRs
	}
	if n := AddressesCovered(parsePrefixes(talosSources)); n > 1 {
		add(talosKey, strings.Join(talosSources, ","),
			"%d addresses may reach the Talos API (50000), and a node in maintenance mode (its first boot, or after a reset) accepts an unauthenticated machine configuration there from any of them: set sda:network.talosApiCidrs to the address of the machine that runs Pulumi (a /32); the admins keep the Kubernetes API", n)
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
		what, management := ManagementPorts[f.TargetPort]
		if covered := AddressesCovered(parsePrefixes(f.AllowFrom)); management && p.External.IsValid() &&
			covered > 1<<(32-p.External.Bits()) {
			add(fmt.Sprintf("sda:network.portForwards[%d].allowFrom", i), strings.Join(f.AllowFrom, ","),
				"together admit %d addresses, more than the external network %s holds, to %s: list the admins' own networks", covered, p.External, what)
		}
		for j, s := range f.AllowFrom {
			a, err := netip.ParsePrefix(s)
			if err == nil && a.Overlaps(p.Internal) {
				add(fmt.Sprintf("sda:network.portForwards[%d].allowFrom[%d]", i, j), s,
					"overlaps the internal network %s, whose hosts never come through the router's external side: list external sources only", p.Internal)
			}
		}
	}
	if x := p.Network.VXLAN; x != nil && p.External.IsValid() {
		var exposed []string
		for _, peer := range x.Peers {
			if p.External.Contains(peer.Address) {
				exposed = append(exposed, fmt.Sprintf("%s %s", peer.Node, peer.Address))
			}
		}
		if len(exposed) > 0 {
			add("sda:proxmox.nodes[].clusterAddress", strings.Join(exposed, ", "),
				"VXLAN peers on the external network %s: VXLAN has no authentication, so any host there can send UDP 4789 with VNI %d and inject frames into the internal network, past the router's firewall; put the peers on a separate Proxmox cluster network (clusterAddress) or drop UDP 4789 on every Proxmox host except from the peers (README, \"Choosing an internal network mode\")",
				p.External, x.VNI)
		}
	}
	return append(out, rebootWarnings(c)...)
}

// rebootWarnings warns about user patches Talos applies only with a reboot:
// a configuration apply in mode auto reboots every node it changes, and
// Pulumi applies them in parallel, control planes included.
func rebootWarnings(c Config) []Warning {
	var out []Warning
	for i, p := range c.Cluster.Patches {
		if fields := talospatch.RebootingPatchFields(p); len(fields) > 0 {
			out = append(out, Warning{Key: fmt.Sprintf("sda:cluster.patches[%d]", i), Value: strings.Join(fields, ", "),
				Reason: "Talos applies these fields only with a reboot: adding or changing this patch on a running cluster reboots every node it applies to, rolled by SDA (each node drained, restarted by its configuration apply and waited for until Ready; control planes one at a time, workers workerParallelism at a time)"})
		}
	}
	return out
}
