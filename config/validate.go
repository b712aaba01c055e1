package config

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// Problem is one thing wrong with a configuration: the key, the offending
// value and how to fix it.
type Problem struct {
	Key   string
	Value string
	Fix   string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s = %q: %s", p.Key, p.Value, p.Fix)
}

// Error carries every problem found, so a user fixes them all in one pass.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid SDA configuration (%d problem(s)):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

var (
	versionRE = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	bridgeRE  = regexp.MustCompile(`^vmbr\d{1,4}$`)
)

// Resolve applies defaults, validates, and derives the plan: the one entry
// point for everything that deploys or renders a stack.
func Resolve(c Config) (Config, Plan, error) {
	c = WithDefaults(c)
	if err := Validate(c); err != nil {
		return c, Plan{}, err
	}
	return c, buildPlan(c), nil
}

// Validate checks a configuration that already has its defaults and reports
// every problem at once.
func Validate(c Config) error {
	v := &validator{}
	v.cluster(c)
	v.proxmox(c)
	inOK, extOK := v.network(c)
	v.kubernetesNetworks(c)
	v.versions(c)
	v.nodes(c)
	v.router(c)
	// The plan checks need parseable CIDRs, addresses and a node list.
	if inOK && extOK && len(c.Proxmox.Nodes) > 0 && len(v.problems) == 0 {
		p := buildPlan(c)
		v.plan(c, p)
		v.networkMode(c, p)
		v.rebuild(c, p)
	}
	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	return nil
}

type validator struct{ problems []Problem }

func (v *validator) add(key string, value any, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Value: fmt.Sprint(value), Fix: fmt.Sprintf(format, args...)})
}

func (v *validator) cluster(c Config) {
	cl := c.Cluster
	switch {
	case cl.Name == "":
		v.add("sda:cluster.name", "", "required: set a DNS label such as \"homelab\" (pulumi config set --path cluster.name homelab)")
	case len(cl.Name) > 40 || !grammar.DNSLabel(cl.Name):
		v.add("sda:cluster.name", cl.Name, "use lowercase letters, digits and '-', at most 40 characters; it prefixes every hostname")
	}
	if !versionRE.MatchString(cl.TalosVersion) {
		v.add("sda:cluster.talosVersion", cl.TalosVersion, "use a Talos release such as %s", DefaultTalosVersion)
	}
	if !versionRE.MatchString(cl.KubernetesVersion) {
		v.add("sda:cluster.kubernetesVersion", cl.KubernetesVersion, "use a Kubernetes release such as %s", DefaultKubernetesVersion)
	}
	if cl.ControlPlanes <= 0 || cl.ControlPlanes%2 == 0 {
		v.add("sda:cluster.controlPlanes", cl.ControlPlanes, "use an odd number (1, 3 or 5) so etcd keeps quorum")
	}
	if cl.Workers < 0 {
		v.add("sda:cluster.workers", cl.Workers, "use 0 or more")
	}
	switch cl.CNI {
	case CNIFlannel, CNICilium:
	default:
		v.add("sda:cluster.cni", cl.CNI, "use %q or %q", CNIFlannel, CNICilium)
	}
	if cl.CNI == CNICilium && !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(cl.Cilium.Version) {
		v.add("sda:cluster.cilium.version", cl.Cilium.Version, "use a Cilium chart version such as %s", DefaultCiliumVersion)
	}
	hasAgent := false
	for _, e := range cl.Extensions {
		hasAgent = hasAgent || e == QemuGuestAgentExtension
	}
	if !hasAgent {
		v.add("sda:cluster.extensions", strings.Join(cl.Extensions, ","),
			"include %q: the VMs run with the guest agent on, and without the extension Proxmox waits for an agent that never answers", QemuGuestAgentExtension)
	}
	up := cl.Upgrade
	if up.WorkerParallelism < 0 {
		v.add("sda:cluster.upgrade.workerParallelism", up.WorkerParallelism, "use 1 or more workers at a time (0 or unset means 1)")
	}
	if up.TimeoutSeconds < 0 {
		v.add("sda:cluster.upgrade.timeoutSeconds", up.TimeoutSeconds, "use a number of seconds (0 or unset means 900)")
	}
	if up.PollSeconds < 0 || (up.TimeoutSeconds > 0 && up.PollSeconds > up.TimeoutSeconds) {
		v.add("sda:cluster.upgrade.pollSeconds", up.PollSeconds, "use a number of seconds below the timeout (0 or unset means 5)")
	}
}

func (v *validator) proxmox(c Config) {
	px := c.Proxmox
	if len(px.Nodes) == 0 {
		v.add("sda:proxmox.nodes", "[]", "list at least one Proxmox node, e.g. [{name: pve}]")
	}
	seen := map[string]bool{}
	for i, n := range px.Nodes {
		key := fmt.Sprintf("sda:proxmox.nodes[%d].name", i)
		switch {
		case n.Name == "":
			v.add(key, "", "required: the Proxmox node name as shown by `pvecm nodes`")
		case seen[n.Name]:
			v.add(key, n.Name, "each Proxmox node may be listed once")
		}
		seen[n.Name] = true
		if n.SSHHostKey != "" {
			if _, err := grammar.SSHHostKey(n.SSHHostKey); err != nil {
				v.add(fmt.Sprintf("sda:proxmox.nodes[%d].sshHostKey", i), n.SSHHostKey, "%v; `sda trust --stack <stack>` fetches and pins it", err)
			}
		}
	}
	if px.VMIDBase < 100 || px.VMIDBase > 999_000_000 {
		v.add("sda:proxmox.vmIdBase", px.VMIDBase, "use a number from 100 to 999000000; Proxmox VM IDs start at 100")
	}
	if px.Datastore == "" {
		v.add("sda:proxmox.datastore", "", "name the datastore for VM disks, e.g. local-lvm")
	}
	if px.ImageDatastore == "" {
		v.add("sda:proxmox.imageDatastore", "", "name a datastore with content types iso and vztmpl, e.g. local")
	}
}

// network validates both networks; it returns whether the internal and
// external CIDRs parsed, which the plan checks need.
func (v *validator) network(c Config) (internalOK, externalOK bool) {
	nw := c.Network
	in, err := netip.ParsePrefix(nw.Internal.CIDR)
	switch {
	case err != nil || !in.Addr().Is4():
		v.add("sda:network.internal.cidr", nw.Internal.CIDR, "use an IPv4 CIDR such as 10.10.0.0/24")
	case in.Bits() > 28:
		v.add("sda:network.internal.cidr", nw.Internal.CIDR, "use a prefix of /28 or shorter; /24 is typical")
	case in.Masked() != in:
		v.add("sda:network.internal.cidr", nw.Internal.CIDR, "use the network address, %s", in.Masked())
	default:
		internalOK = true
	}
	ext, err := netip.ParsePrefix(nw.External.CIDR)
	switch {
	case nw.External.CIDR == "":
		v.add("sda:network.external.cidr", "", "required: the CIDR of the network on %s, e.g. 192.168.1.0/24", nw.External.Bridge)
	case err != nil || !ext.Addr().Is4():
		v.add("sda:network.external.cidr", nw.External.CIDR, "use an IPv4 CIDR such as 192.168.1.0/24")
	case ext.Masked() != ext:
		v.add("sda:network.external.cidr", nw.External.CIDR, "use the network address, %s", ext.Masked())
	default:
		externalOK = true
	}
	if internalOK && externalOK && in.Overlaps(ext) {
		v.add("sda:network.internal.cidr", nw.Internal.CIDR, "must not overlap sda:network.external.cidr (%s): pick another private range such as 10.10.0.0/24", nw.External.CIDR)
		internalOK = false
	}
	if !bridgeRE.MatchString(nw.External.Bridge) {
		v.add("sda:network.external.bridge", nw.External.Bridge, "use a Proxmox bridge name such as vmbr0")
	}
	if !bridgeRE.MatchString(nw.Internal.Bridge) {
		v.add("sda:network.internal.bridge", nw.Internal.Bridge, "use a Proxmox bridge name such as vmbr1")
	} else if nw.Internal.Bridge == nw.External.Bridge {
		v.add("sda:network.internal.bridge", nw.Internal.Bridge, "must differ from sda:network.external.bridge: the internal network is isolated")
	}
	if !grammar.Domain(nw.Internal.Domain) {
		v.add("sda:network.internal.domain", nw.Internal.Domain, "use a DNS domain such as sda.internal")
	}
	if nw.External.VLAN < 0 || nw.External.VLAN > 4094 {
		v.add("sda:network.external.vlan", nw.External.VLAN, "use 0 (untagged) or a VLAN ID from 1 to 4094")
	}
	if ra := nw.External.RouterAddress; ra != "dhcp" {
		a, err := netip.ParseAddr(ra)
		switch {
		case err != nil || !a.Is4():
			v.add("sda:network.external.routerAddress", ra, "use \"dhcp\" or an IPv4 address inside sda:network.external.cidr")
		case externalOK && !ext.Contains(a):
			v.add("sda:network.external.routerAddress", ra, "must be inside sda:network.external.cidr (%s)", ext)
		case externalOK && (a == ext.Addr() || a == lastAddr(ext)):
			v.add("sda:network.external.routerAddress", ra, "must not be the network or broadcast address of %s", ext)
		}
		if nw.External.Gateway == "" {
			v.add("sda:network.external.gateway", "", "required with a static router address: the external default gateway")
		}
	}
	if gw := nw.External.Gateway; gw != "" {
		a, err := netip.ParseAddr(gw)
		switch {
		case err != nil || !a.Is4():
			v.add("sda:network.external.gateway", gw, "use an IPv4 address inside sda:network.external.cidr")
		case externalOK && !ext.Contains(a):
			v.add("sda:network.external.gateway", gw, "must be inside sda:network.external.cidr (%s)", ext)
		case a.String() == nw.External.RouterAddress:
			v.add("sda:network.external.gateway", gw, "must differ from sda:network.external.routerAddress")
		}
	}
	// The plan parses these; their place in the network is checked there,
	// their syntax here, so a typo is a problem, not a panic.
	for _, a := range []struct{ key, value string }{
		{"sda:cluster.vip", c.Cluster.VIP},
		{"sda:network.internal.dhcpStart", nw.Internal.DHCPStart},
		{"sda:network.internal.dhcpEnd", nw.Internal.DHCPEnd},
	} {
		if ip, err := netip.ParseAddr(a.value); a.value != "" && (err != nil || !ip.Is4()) {
			v.add(a.key, a.value, "use an IPv4 address inside sda:network.internal.cidr")
		}
	}
	if len(nw.DNSServers) == 0 {
		v.add("sda:network.dnsServers", "[]", "list at least one upstream DNS server, e.g. [1.1.1.1]")
	}
	for i, s := range nw.DNSServers {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
			v.add(fmt.Sprintf("sda:network.dnsServers[%d]", i), s, "use an IPv4 address")
		}
	}
	for i, s := range nw.AdminCIDRs {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() {
			v.add(fmt.Sprintf("sda:network.adminCidrs[%d]", i), s, "use an IPv4 CIDR such as 192.168.1.0/24 (a single host is /32)")
		}
	}
	for i, s := range nw.TalosAPICIDRs {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() {
			v.add(fmt.Sprintf("sda:network.talosApiCidrs[%d]", i), s, "use an IPv4 CIDR: the address of the machine that runs Pulumi, such as 192.168.1.5/32")
		}
	}
	ports := map[string]string{}
	for i, f := range nw.PortForwards {
		key := fmt.Sprintf("sda:network.portForwards[%d]", i)
		if !grammar.DNSLabel(f.Name) {
			v.add(key+".name", f.Name, "name each port-forward with lowercase letters, digits and '-'")
		}
		if f.Protocol != "tcp" && f.Protocol != "udp" {
			v.add(key+".protocol", f.Protocol, "use \"tcp\" or \"udp\"")
		}
		if f.Port < 1 || f.Port > 65535 {
			v.add(key+".port", f.Port, "use a port from 1 to 65535")
		}
		if f.TargetPort < 1 || f.TargetPort > 65535 {
			v.add(key+".targetPort", f.TargetPort, "use a port from 1 to 65535")
		}
		pk := fmt.Sprintf("%s/%d", f.Protocol, f.Port)
		if other, dup := ports[pk]; dup {
			v.add(key+".port", f.Port, "%s %d is already forwarded by %q: use another external port", f.Protocol, f.Port, other)
		}
		ports[pk] = f.Name
		for j, a := range f.AllowFrom {
			if p, err := netip.ParsePrefix(a); err != nil || !p.Addr().Is4() {
				v.add(fmt.Sprintf("%s.allowFrom[%d]", key, j), a, "use an IPv4 CIDR such as 192.168.1.0/24")
			}
		}
		if f.Target == "" {
			v.add(key+".target", "", "name a node hostname, \"vip\", or an internal IPv4 address")
		}
	}
	return internalOK, externalOK
}

func (v *validator) nodes(c Config) {
	n := c.Nodes
	for _, s := range []struct {
		key  string
		size VMSize
	}{{"sda:nodes.controlPlane", n.ControlPlane}, {"sda:nodes.worker", n.Worker}} {
		if s.size.Cores < 2 {
			v.add(s.key+".cores", s.size.Cores, "Talos needs at least 2 cores")
		}
		if s.size.MemoryMiB < 2048 {
			v.add(s.key+".memoryMiB", s.size.MemoryMiB, "Talos needs at least 2048 MiB")
		}
		if s.size.DiskGiB < 10 {
			v.add(s.key+".diskGiB", s.size.DiskGiB, "Talos needs a disk of at least 10 GiB")
		}
	}
	if n.DiskInterface != DiskSCSI && n.DiskInterface != DiskVirtIO {
		v.add("sda:nodes.diskInterface", n.DiskInterface, "use %q (install disk /dev/sda) or %q (/dev/vda)", DiskSCSI, DiskVirtIO)
	}
	if n.CPUType != "host" && n.CPUType != "x86-64-v2-AES" && n.CPUType != "x86-64-v3" && n.CPUType != "x86-64-v4" {
		v.add("sda:nodes.cpuType", n.CPUType, "Talos needs x86-64-v2: use \"host\" or \"x86-64-v2-AES\"")
	}
}

// rebuild checks sda:nodes.rebuild: every entry names a node the stack
// declares, with a number of at least 0.
func (v *validator) rebuild(c Config, p Plan) {
	declared := map[string]bool{}
	var names []string
	for _, m := range p.Machines() {
		declared[m.Hostname] = true
		names = append(names, m.Hostname)
	}
	for _, host := range slices.Sorted(maps.Keys(c.Nodes.Rebuild)) {
		n := c.Nodes.Rebuild[host]
		switch {
		case !declared[host]:
			v.add("sda:nodes.rebuild."+host, n, "%s is no node of this stack: name one of %s", host, strings.Join(names, ", "))
		case n < 0:
			v.add("sda:nodes.rebuild."+host, n, "use 0 or more: raise the number by one to rebuild the node")
		}
	}
}

func (v *validator) router(c Config) {
	r := c.Router
	if !grammar.DNSLabel(r.Hostname) {
		v.add("sda:router.hostname", r.Hostname, "use lowercase letters, digits and '-'")
	}
	if r.Cores < 1 {
		v.add("sda:router.cores", r.Cores, "use 1 or more")
	}
	if r.MemoryMiB < 128 {
		v.add("sda:router.memoryMiB", r.MemoryMiB, "use at least 128 MiB")
	}
	if r.DiskGiB < 1 {
		v.add("sda:router.diskGiB", r.DiskGiB, "use at least 1 GiB")
	}
	// The template is the firewall's whole operating system: it travels
	// over https and Proxmox checks its digest before using it.
	if !grammar.TemplateURL(r.TemplateURL) {
		v.add("sda:router.templateUrl", r.TemplateURL, "use the https:// URL of a Debian LXC template (.tar.zst, .tar.xz, .tar.gz), such as %s", DefaultRouterTemplateURL)
	}
	if _, ok := grammar.ChecksumAlgorithm(r.TemplateChecksum); !ok {
		v.add("sda:router.templateChecksum", r.TemplateChecksum, "give the template's SHA-256, SHA-384 or SHA-512 in hex (from the signed index: `pveam available` on a Proxmox node, or the publisher's SHA512SUMS); MD5 and SHA-1 are not accepted")
	}
}

// plan checks what only the derived plan shows: addresses inside the
// internal network and unique, the DHCP range disjoint from static
// addresses, unique VM IDs and hostnames, port-forward targets that exist.
func (v *validator) plan(c Config, p Plan) {
	in := p.Internal
	first, last := in.Addr(), lastAddr(in)
	type owner struct{ key, what string }
	taken := map[netip.Addr]owner{}
	claim := func(a netip.Addr, key, what string) {
		switch {
		case !in.Contains(a):
			v.add(key, a, "%s must be inside sda:network.internal.cidr (%s): lower the count or widen the CIDR", what, in)
			return
		case a == first || a == last:
			v.add(key, a, "%s must not be the network or broadcast address of %s", what, in)
			return
		}
		if o, dup := taken[a]; dup {
			v.add(key, a, "%s collides with %s (%s): choose another address or offset", what, o.what, o.key)
			return
		}
		taken[a] = owner{key, what}
	}
	claim(p.RouterInternal, "sda:network.internal.routerOffset", "the router's internal address (the gateway)")
	if p.VIP.IsValid() {
		claim(p.VIP, "sda:cluster.vip", "the VIP")
	} else if c.Cluster.ControlPlanes > 1 {
		v.add("sda:cluster.vip", "", "set a VIP inside %s for %d control planes, so the Kubernetes API survives the loss of one", in, c.Cluster.ControlPlanes)
	}
	for _, m := range p.ControlPlanes {
		claim(m.Address, "sda:cluster.controlPlanes", "control plane "+m.Hostname)
	}
	for _, m := range p.Workers {
		claim(m.Address, "sda:cluster.workers", "worker "+m.Hostname)
	}

	// DHCP range: inside, ordered, disjoint from every static address.
	switch {
	case !in.Contains(p.DHCPStart) || p.DHCPStart == first || p.DHCPStart == last:
		v.add("sda:network.internal.dhcpStart", p.DHCPStart, "must be a host address inside %s", in)
	case !in.Contains(p.DHCPEnd) || p.DHCPEnd == first || p.DHCPEnd == last:
		v.add("sda:network.internal.dhcpEnd", p.DHCPEnd, "must be a host address inside %s", in)
	case p.DHCPEnd.Less(p.DHCPStart):
		v.add("sda:network.internal.dhcpEnd", p.DHCPEnd, "must not be below sda:network.internal.dhcpStart (%s)", p.DHCPStart)
	default:
		var inRange []string
		for a, o := range taken {
			if !a.Less(p.DHCPStart) && !p.DHCPEnd.Less(a) {
				inRange = append(inRange, fmt.Sprintf("%s (%s)", a, o.what))
			}
		}
		sort.Strings(inRange)
		if len(inRange) > 0 {
			v.add("sda:network.internal.dhcpStart", p.DHCPStart, "the DHCP range %s-%s holds static addresses %s: move the range above them or lower the node counts",
				p.DHCPStart, p.DHCPEnd, strings.Join(inRange, ", "))
		}
	}

	ids := map[int]string{p.RouterVMID: "the router"}
	names := map[string]string{c.Router.Hostname: "the router"}
	for _, m := range p.Machines() {
		if o, dup := ids[m.VMID]; dup {
			v.add("sda:proxmox.vmIdBase", c.Proxmox.VMIDBase, "VM ID %d of %s collides with %s: change sda:router.vmId or the base", m.VMID, m.Hostname, o)
		}
		ids[m.VMID] = m.Hostname
		if o, dup := names[m.Hostname]; dup {
			v.add("sda:router.hostname", c.Router.Hostname, "hostname %s is used by %s too: choose another router hostname", m.Hostname, o)
		}
		names[m.Hostname] = m.Hostname
	}

	for i, f := range c.Network.PortForwards {
		if _, err := ForwardTarget(p, f.Target); err != nil {
			v.add(fmt.Sprintf("sda:network.portForwards[%d].target", i), f.Target, "%v", err)
		}
	}
	v.exposure(c, p)
}

// ForwardTarget resolves a port-forward target (hostname, "vip" or an
// internal address) against the plan.
func ForwardTarget(p Plan, target string) (netip.Addr, error) {
	if target == "vip" {
		if !p.VIP.IsValid() {
			return netip.Addr{}, fmt.Errorf("no VIP is configured: set sda:cluster.vip or target a node")
		}
		return p.VIP, nil
	}
	for _, m := range p.Machines() {
		if m.Hostname == target {
			return m.Address, nil
		}
	}
	a, err := netip.ParseAddr(target)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not a node hostname of this stack, \"vip\", or an IPv4 address")
	}
	if !p.Internal.Contains(a) {
		return netip.Addr{}, fmt.Errorf("must be inside the internal network %s", p.Internal)
	}
	return a, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	return hostAt(p, hostCount(p)-1)
}

// HostKeyProblems names each Proxmox node the stack reaches over SSH
// (every node in the plan: `pct` for the router, pvesh for SDN, the
// provider's disk import) whose host key is not pinned, unless
// sda:proxmox.insecureIgnoreHostKeys opts out. Without a pin whoever
// answers on the node's address receives SDA's root scripts. It is apart
// from Resolve so that `sda plan` still plans a stack not yet pinned; the
// program and Deploy refuse to register anything while it reports one.
func HostKeyProblems(c Config, p Plan) []Problem {
	if c.Proxmox.InsecureIgnoreHostKeys {
		return nil
	}
	var out []Problem
	for i, n := range c.Proxmox.Nodes {
		if n.SSHHostKey != "" {
			continue
		}
		for _, used := range p.ProxmoxNodes {
			if used.Name == n.Name {
				out = append(out, Problem{Key: fmt.Sprintf("sda:proxmox.nodes[%d].sshHostKey", i), Value: "",
					Fix: fmt.Sprintf("pin the SSH host key of %s (%s): run `sda trust --stack <stack>` and compare the fingerprints with the node's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), or set sda:proxmox.insecureIgnoreHostKeys to true to connect unverified", n.Name, used.SSHHost)})
			}
		}
	}
	return out
}
