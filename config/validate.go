package config

import (
	"fmt"
	"maps"
	"slices"
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
// every problem at once, in this order: the cluster, the Proxmox nodes, the
// networks and what they expose (network.go, exposure.go), the Kubernetes
// networks, the versions (versions.go), the nodes and the router (sizes in
// sizes.go); then, when those pass, what only the plan shows (addresses,
// identities, port-forward targets and exposure, the network mode, the
// rebuild counters). The user's Talos patches need Talos's machinery and
// are checked by config/check, which runs the whole sequence.
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

// cluster checks the cluster's keys: name, versions, counts, CNI,
// extensions and the upgrade's pace.
func (v *validator) cluster(c Config) {
	cl := c.Cluster
	switch {
	case cl.Name == "":
		v.add("sda:cluster.name", "", "required: set a DNS label such as \"homelab\" (pulumi config set --path cluster.name homelab)")
	case len(cl.Name) > 40 || !grammar.DNSLabel(cl.Name):
		v.add("sda:cluster.name", cl.Name, "use lowercase letters, digits and '-', at most 40 characters; it prefixes every hostname")
	}
	v.versionSyntax(cl)
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
	v.ciliumVersion(cl)
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

// proxmox checks the Proxmox nodes (names, pinned host keys), the VM ID
// base and the datastores.
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

// nodes checks the node VMs: their sizes, the disk interface and the CPU
// type.
func (v *validator) nodes(c Config) {
	n := c.Nodes
	v.nodeSizes(n)
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

// router checks the router container: hostname, size and its verified
// template.
func (v *validator) router(c Config) {
	r := c.Router
	if !grammar.DNSLabel(r.Hostname) {
		v.add("sda:router.hostname", r.Hostname, "use lowercase letters, digits and '-'")
	}
	v.routerSize(r)
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
// addresses, unique VM IDs and hostnames, port-forward targets that exist
// and what the port-forwards and source CIDRs expose.
func (v *validator) plan(c Config, p Plan) {
	taken := v.addresses(c, p)
	v.dhcpRange(p, taken)
	v.pairDHCPRange(p)
	v.identities(c, p)
	v.forwardTargets(c, p)
	v.exposure(c, p)
}

// identities checks that no two guests share a VM ID or a hostname.
func (v *validator) identities(c Config, p Plan) {
	ids := map[int]string{p.RouterVMID: "the router"}
	names := map[string]string{c.Router.Hostname: "the router"}
	if pr := p.RouterPair; pr != nil {
		second := pr.Routers[1]
		if o, dup := ids[second.VMID]; dup {
			v.add("sda:router.pair.vmId", second.VMID, "the second router's VM ID collides with %s: choose another", o)
		}
		ids[second.VMID] = "the second router " + second.Hostname
		names[second.Hostname] = "the second router"
	}
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
