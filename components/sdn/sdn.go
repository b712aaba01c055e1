// Package sdn renders the shell scripts that create, update and remove a
// Proxmox SDN VXLAN zone and its VNet with pvesh. The proxmoxve SDK SDA
// pins (v6.18.1) has no SDN resources, so InternalNetwork runs these
// scripts over SSH on one Proxmox node; SDN configuration is cluster-wide,
// and `pvesh set /cluster/sdn` applies it on every node, where the VNet
// appears as a bridge named after it.
//
// The scripts use only these pvesh forms (the simulator's fake pvesh
// accepts exactly these):
//
//	pvesh get /cluster/sdn/zones/<zone>
//	pvesh create /cluster/sdn/zones --zone <zone> --type vxlan --peers <a,b> --mtu <mtu>
//	pvesh set /cluster/sdn/zones/<zone> --peers <a,b> --mtu <mtu>
//	pvesh get /cluster/sdn/vnets/<vnet>
//	pvesh create /cluster/sdn/vnets --vnet <vnet> --zone <zone> --tag <vni>
//	pvesh set /cluster/sdn/vnets/<vnet> --zone <zone> --tag <vni>
//	pvesh set /cluster/sdn
//	pvesh delete /cluster/sdn/vnets/<vnet>
//	pvesh delete /cluster/sdn/zones/<zone>
package sdn

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// VXLAN is one zone with one VNet.
type VXLAN struct {
	// Zone and VNet are Proxmox SDN IDs: a lowercase letter, then lowercase
	// letters and digits, 8 characters at most.
	Zone string
	VNet string
	// VNI is the VNet's tag, 1-16777215.
	VNI int
	// Peers are the IPv4 addresses of every node of the zone on the Proxmox
	// cluster network, in the order they are passed to Proxmox.
	Peers []string
	// MTU of the zone: what guests on the VNet get (underlay MTU - 50).
	MTU int
}

var idRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}$`)

// Validate checks every value that goes into the scripts; nothing else is
// quoted, so nothing else may reach them.
func (x VXLAN) Validate() error {
	var problems []string
	if !idRE.MatchString(x.Zone) {
		problems = append(problems, fmt.Sprintf("zone %q is not an SDN ID (a lowercase letter, then letters and digits, 8 at most)", x.Zone))
	}
	if !idRE.MatchString(x.VNet) {
		problems = append(problems, fmt.Sprintf("vnet %q is not an SDN ID (a lowercase letter, then letters and digits, 8 at most)", x.VNet))
	}
	if x.VNI < 1 || x.VNI > 1<<24-1 {
		problems = append(problems, fmt.Sprintf("vni %d is outside 1-16777215", x.VNI))
	}
	if len(x.Peers) == 0 {
		problems = append(problems, "no peers: every node of the zone must be one")
	}
	seen := map[string]bool{}
	for _, p := range x.Peers {
		a, err := netip.ParseAddr(p)
		if err != nil || !a.Is4() || a.String() != p {
			problems = append(problems, fmt.Sprintf("peer %q is not an IPv4 address", p))
		} else if seen[p] {
			problems = append(problems, fmt.Sprintf("peer %s is listed twice", p))
		}
		seen[p] = true
	}
	if x.MTU < 1280 || x.MTU > 9000 {
		problems = append(problems, fmt.Sprintf("mtu %d is outside 1280-9000", x.MTU))
	}
	if len(problems) > 0 {
		return fmt.Errorf("SDN VXLAN: %s", strings.Join(problems, "; "))
	}
	return nil
}

// ApplyScript creates the zone and the VNet, or sets them to x when they
// exist, then applies the SDN configuration. Running it again changes
// nothing, so it serves as both Create and Update.
func ApplyScript(x VXLAN) string {
	peers := strings.Join(x.Peers, ",")
	var b strings.Builder
	b.WriteString("set -eu\n")
	fmt.Fprintf(&b, "if pvesh get /cluster/sdn/zones/%s >/dev/null 2>&1; then\n", x.Zone)
	fmt.Fprintf(&b, "  pvesh set /cluster/sdn/zones/%s --peers %s --mtu %d\n", x.Zone, peers, x.MTU)
	b.WriteString("else\n")
	fmt.Fprintf(&b, "  pvesh create /cluster/sdn/zones --zone %s --type vxlan --peers %s --mtu %d\n", x.Zone, peers, x.MTU)
	b.WriteString("fi\n")
	fmt.Fprintf(&b, "if pvesh get /cluster/sdn/vnets/%s >/dev/null 2>&1; then\n", x.VNet)
	fmt.Fprintf(&b, "  pvesh set /cluster/sdn/vnets/%s --zone %s --tag %d\n", x.VNet, x.Zone, x.VNI)
	b.WriteString("else\n")
	fmt.Fprintf(&b, "  pvesh create /cluster/sdn/vnets --vnet %s --zone %s --tag %d\n", x.VNet, x.Zone, x.VNI)
	b.WriteString("fi\n")
	// Zones and VNets are pending until applied; applying reloads the
	// network of every node (ifupdown2), which creates the VNet's bridge.
	b.WriteString("pvesh set /cluster/sdn\n")
	return b.String()
}

// DeleteScript removes the VNet, then the zone (Proxmox refuses to delete
// a zone that still has VNets), and applies the change. What is already
// gone is skipped, so it also finishes a removal that stopped halfway.
func DeleteScript(x VXLAN) string {
	var b strings.Builder
	b.WriteString("set -eu\n")
	fmt.Fprintf(&b, "if pvesh get /cluster/sdn/vnets/%s >/dev/null 2>&1; then\n", x.VNet)
	fmt.Fprintf(&b, "  pvesh delete /cluster/sdn/vnets/%s\n", x.VNet)
	b.WriteString("fi\n")
	fmt.Fprintf(&b, "if pvesh get /cluster/sdn/zones/%s >/dev/null 2>&1; then\n", x.Zone)
	fmt.Fprintf(&b, "  pvesh delete /cluster/sdn/zones/%s\n", x.Zone)
	b.WriteString("fi\n")
	b.WriteString("pvesh set /cluster/sdn\n")
	return b.String()
}
