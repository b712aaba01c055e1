package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sda-platform/sda/components/spec"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks/inputs"
)

// NodeTotals is what one Proxmox node hosts for the stack.
type NodeTotals struct {
	Node      string
	Guests    int // VMs and the router container
	Cores     int
	MemoryMiB int
	DiskGiB   int
}

// Totals sums the stack's guests per Proxmox node, the router included, in
// the order the nodes are configured: from the components' inputs, as the
// deployment creates them.
func Totals(in inputs.Stack) []NodeTotals {
	byNode := map[string]*NodeTotals{}
	var out []*NodeTotals
	add := func(node string, cores, mem, disk int) {
		t := byNode[node]
		t.Guests++
		t.Cores += cores
		t.MemoryMiB += mem
		t.DiskGiB += disk
	}
	for _, n := range in.Network.ProxmoxNodes {
		byNode[n] = &NodeTotals{Node: n}
		out = append(out, byNode[n])
	}
	for _, r := range in.Routers {
		add(r.ProxmoxNode, r.Cores, r.MemoryMiB, r.DiskGiB)
	}
	for _, m := range in.Cluster.Nodes {
		add(m.ProxmoxNode, m.Cores, m.MemoryMiB, m.DiskGiB)
	}
	result := make([]NodeTotals, len(out))
	for i, t := range out {
		result[i] = *t
	}
	return result
}

// WritePlan prints the stack's plan: the router's two sides, the VIP and the
// API endpoint, every guest with its placement, IDs, addresses and size, the
// port-forwards, the images, and the totals per Proxmox node. The guests
// are the components' inputs (stacks/inputs), what `pulumi up` creates.
func WritePlan(w io.Writer, stack string, c config.Config, p config.Plan, warnings []config.Warning) error {
	in, err := inputs.Build(c, p)
	if err != nil {
		return err
	}
	pw := &planWriter{}
	cl := c.Cluster
	pw.line("Stack %s: cluster %q, Talos %s, Kubernetes %s, CNI %s", stack, cl.Name, cl.TalosVersion, cl.KubernetesVersion, cniLabel(cl))
	pw.line("")
	pw.table(0, func(row func(...string)) { writeNetwork(row, c, p) })
	pw.line("")
	pw.table(0, func(row func(...string)) { writeGuests(row, in) })
	if len(c.Network.PortForwards) > 0 {
		pw.line("")
		pw.line("Port-forwards on the router's external address:")
		pw.table(0, func(row func(...string)) { writeForwards(row, c, in.Routers[0]) })
	}
	if err := writeImages(pw, in.Cluster); err != nil {
		return err
	}
	pw.line("Totals per Proxmox node (the router container counted):")
	pw.table(tabwriter.AlignRight, func(row func(...string)) { writeTotals(row, in) })
	pw.line("")
	writeNotes(pw, c, p, warnings)
	_, err = io.WriteString(w, pw.b.String())
	return err
}

// planWriter collects the plan's lines and tables.
type planWriter struct{ b strings.Builder }

func (pw *planWriter) line(format string, args ...any) { fmt.Fprintf(&pw.b, format+"\n", args...) }

// table writes the rows fill adds, aligned in columns.
func (pw *planWriter) table(flags uint, fill func(row func(...string))) {
	tw := tabwriter.NewWriter(&pw.b, 0, 0, 2, ' ', flags)
	fill(func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) })
	_ = tw.Flush() // writes into a strings.Builder, which does not fail
}

// writeNetwork is the router's two sides, the networks and the APIs.
func writeNetwork(row func(...string), c config.Config, p config.Plan) {
	routerExternal := "DHCP"
	if p.RouterExternal.IsValid() {
		routerExternal = fmt.Sprintf("%s/%d, gateway %s", p.RouterExternal, p.External.Bits(), p.ExternalGateway)
	}
	row("Router external", fmt.Sprintf("%s on %s (%s)%s", routerExternal, c.Network.External.Bridge, p.External, vlanLabel(c)))
	row("Router internal", fmt.Sprintf("%s/%d on %s%s, domain %s", p.RouterInternal, p.Internal.Bits(), p.Network.Bridge, createdLabel(p.Network), c.Network.Internal.Domain))
	if pr := p.RouterPair; pr != nil {
		a, b := pr.Routers[0], pr.Routers[1]
		row("Router pair", fmt.Sprintf("%s on %s (own %s, %s) and %s on %s (own %s, %s) share both addresses above by VRRP (ID %d, unicast, no preemption); conntrackd syncs their connections",
			a.Hostname, a.ProxmoxNode, a.Internal, a.External, b.Hostname, b.ProxmoxNode, b.Internal, b.External, pr.VRID))
	}
	row("Internal network", p.Network.Describe())
	vip := "none (the API is on the first control plane)"
	if p.VIP.IsValid() {
		vip = p.VIP.String() + " (control planes only)"
	}
	row("VIP", vip)
	row("Kubernetes API", p.KubernetesEndpoint())
	row("Talos API", strings.Join(p.TalosEndpoints(), ", "))
	row("DHCP range", fmt.Sprintf("%s - %s", p.DHCPStart, p.DHCPEnd))
	row("Admin CIDRs", orNone(strings.Join(c.Network.AdminCIDRs, ", ")))
	if len(c.Network.TalosAPICIDRs) > 0 {
		row("Talos API CIDRs", strings.Join(c.Network.TalosAPICIDRs, ", "))
	}
	row("Pod network", c.Cluster.PodCIDR)
	row("Service network", c.Cluster.ServiceCIDR)
}

// writeGuests is every guest with its placement, IDs, address and size.
func writeGuests(row func(...string), in inputs.Stack) {
	row("ROLE", "HOSTNAME", "PROXMOX", "VMID", "MAC", "ADDRESS", "VCPU", "MEMORY", "DISK")
	for _, r := range in.Routers {
		role, address := "router (LXC)", r.InternalAddress
		if r.Pair != nil {
			// Its own address; the shared one is the network table's.
			role, address = fmt.Sprintf("router %d of 2 (LXC)", r.Pair.Index+1), r.Pair.OwnInternalAddress
		}
		address, _, _ = strings.Cut(address, "/")
		row(role, r.Hostname, r.ProxmoxNode, fmt.Sprint(r.VMID), "-", address,
			fmt.Sprint(r.Cores), mib(r.MemoryMiB), gib(r.DiskGiB))
	}
	for _, m := range in.Cluster.Nodes {
		row(m.Role, m.Hostname, m.ProxmoxNode, fmt.Sprint(m.VMID), m.MAC, m.Address,
			fmt.Sprint(m.Cores), mib(m.MemoryMiB), gib(m.DiskGiB))
	}
}

// writeForwards is each port-forward as configured (its target's name)
// and as the router gets it (the resolved address).
func writeForwards(row func(...string), c config.Config, r spec.Router) {
	for i, f := range c.Network.PortForwards {
		from := "anyone"
		if len(f.AllowFrom) > 0 {
			from = strings.Join(f.AllowFrom, ", ")
		}
		row("  "+f.Name, fmt.Sprintf("%s/%d", f.Protocol, f.Port), fmt.Sprintf("-> %s (%s):%d", f.Target, r.Forwards[i].Target, f.TargetPort), "from "+from)
	}
}

// writeImages is the Image Factory schematic and its images.
func writeImages(pw *planWriter, cl spec.Cluster) error {
	id, err := talospatch.SchematicID(talospatch.SchematicYAML(cl.Extensions))
	if err != nil {
		return err
	}
	pw.line("")
	pw.line("Image Factory schematic %s (extensions: %s)", id, strings.Join(cl.Extensions, ", "))
	pw.line("  boot image  %s (Proxmox decompression: %s)", talospatch.NocloudImageURL(id, cl.TalosVersion), talospatch.NocloudImageDecompression)
	pw.line("  installer   %s", talospatch.InstallerImage(id, cl.TalosVersion))
	pw.line("")
	return nil
}

// writeTotals is the guests' totals per Proxmox node, and for all.
func writeTotals(row func(...string), in inputs.Stack) {
	row("PROXMOX", "GUESTS", "VCPU", "MEMORY", "DISK", "")
	var sum NodeTotals
	for _, t := range Totals(in) {
		row(t.Node, fmt.Sprint(t.Guests), fmt.Sprint(t.Cores), mib(t.MemoryMiB), gib(t.DiskGiB), "")
		sum.Guests += t.Guests
		sum.Cores += t.Cores
		sum.MemoryMiB += t.MemoryMiB
		sum.DiskGiB += t.DiskGiB
	}
	row("all", fmt.Sprint(sum.Guests), fmt.Sprint(sum.Cores), mib(sum.MemoryMiB), gib(sum.DiskGiB), "")
}

// writeNotes is what restarts guests later, the warnings (legal but
// probably wrong: said, never fatal), and what `sda up` refuses until it
// is done (not a plan problem: the plan does not need it).
func writeNotes(pw *planWriter, c config.Config, p config.Plan, warnings []config.Warning) {
	pw.line("Changes that restart guests (what `pulumi up` does when these keys change later):")
	for _, n := range RestartNotes(c, p) {
		pw.line("  - %s", n)
	}
	if len(warnings) > 0 {
		pw.line("")
		pw.line("Warnings (%d):", len(warnings))
		for _, wr := range warnings {
			pw.line("  - %s", wr)
		}
	}
	if todo := config.HostKeyProblems(c, p); len(todo) > 0 {
		pw.line("")
		pw.line("Before `sda up` (%d):", len(todo))
		for _, pr := range todo {
			pw.line("  - %s: %s", pr.Key, pr.Fix)
		}
	}
}

func cniLabel(cl config.Cluster) string {
	if cl.CNI != config.CNICilium {
		return "flannel (Talos default)"
	}
	if cl.Cilium.KubeProxyReplacementEnabled() {
		return fmt.Sprintf("cilium %s (kube-proxy replacement)", cl.Cilium.Version)
	}
	return fmt.Sprintf("cilium %s (with kube-proxy)", cl.Cilium.Version)
}

func vlanLabel(c config.Config) string {
	if c.Network.External.VLAN == 0 {
		return ""
	}
	return fmt.Sprintf(", VLAN %d", c.Network.External.VLAN)
}

func createdLabel(n config.NetworkPlan) string {
	switch n.Mode {
	case config.ModeExisting:
		return " (existing)"
	case config.ModeVXLAN:
		return " (the SDN VNet's bridge)"
	}
	return " (created by SDA)"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func mib(v int) string { return fmt.Sprintf("%d MiB", v) }
func gib(v int) string { return fmt.Sprintf("%d GiB", v) }

// RestartNotes says which later configuration changes reboot or replace
// which guests, as the pinned providers do them (bpg v0.69.1: a VM or
// container update of cpu, memory, NICs or cloud-init reboots it; a
// container's disk or template is a replacement) and as SDA orders them
// (Talos nodes' restarts rolled, the router deleted before it is created
// again).
func RestartNotes(c config.Config, p config.Plan) []string {
	var cps, workers []string
	for _, m := range p.Machines() {
		if m.Role == config.RoleControlPlane {
			cps = append(cps, m.Hostname)
		} else {
			workers = append(workers, m.Hostname)
		}
	}
	workerParallel := "one at a time"
	if n := c.Cluster.Upgrade.WorkerParallelism; n > 1 {
		workerParallel = fmt.Sprintf("%d at a time", n)
	}
	// A restart of a Talos node is rolled (NodeDrain, NodeReady): drained
	// first, waited for until Ready after, health-gated.
	const rolled = "each drained first and waited for until Ready, with a health check before and after"
	notes := []string{
		fmt.Sprintf("sda:nodes.controlPlane cores/memoryMiB, sda:nodes.cpuType: reboot %s one at a time, %s", strings.Join(cps, ", "), rolled),
	}
	if len(workers) > 0 {
		notes = append(notes, fmt.Sprintf("sda:nodes.worker cores/memoryMiB: reboot %s %s, never while a control plane reboots, %s", strings.Join(workers, ", "), workerParallel, rolled))
	}
	notes = append(notes,
		routerNotes(c, p)[0],
		fmt.Sprintf("sda:network.internal mode/bridge/mtu/vxlan.vnet: every guest's NIC changes: the Talos nodes reboot rolled (control planes one at a time, then workers "+workerParallel+"), and the router reboots; the old bridges or SDN zone go last (the internal network's MTU now %d)", p.Network.MTU),
		routerNotes(c, p)[1],
		"sda:cluster.patches: fields Talos cannot apply live reboot every node the patch reaches, rolled: control planes one at a time, then workers "+workerParallel+", "+rolled+" (see the warnings); other fields apply without a reboot",
		"sda:cluster.talosVersion, sda:cluster.extensions: new images for new VMs; running nodes are upgraded in place, rolling: control planes one at a time, then workers "+workerParallel+", each after a health check",
		"sda:cluster.kubernetesVersion: rolled over the running nodes as talosctl upgrade-k8s does, nothing reboots: kube-apiserver, then kube-controller-manager, then kube-scheduler on each control plane in turn, kube-proxy's image, then the kubelet node by node; one minor release at a time, and not in the same up as a change of the nodes",
		"sda:nodes.rebuild.<hostname>: a changed number rebuilds that node: it leaves the cluster quorum-safely (a graceful reset, or its etcd member removed by ID when it is dead), its VM is recreated with the same name, ID and address, and it joins again, in its turn; nothing else changes",
		"sda:nodes.*.diskGiB may grow; shrinking it, or changing sda:nodes.diskInterface, is refused for existing VMs before anything changes (the Proxmox provider would fail half way)",
	)
	return notes
}

// routerNotes are what a change of the router's size, and of its disk or
// template, does: to a single router, and to a pair.
func routerNotes(c config.Config, p config.Plan) [2]string {
	pr := p.RouterPair
	if pr == nil {
		return [2]string{
			fmt.Sprintf("sda:router cores/memoryMiB: reboot the router (%s): the internal network has no gateway, DNS or DHCP until it is back", c.Router.Hostname),
			fmt.Sprintf("sda:router diskGiB/templateUrl: replace the router, deleting it first (same VM ID %d): the internal network is cut off until the new one is configured", p.RouterVMID),
		}
	}
	a, b := pr.Routers[0].Hostname, pr.Routers[1].Hostname
	return [2]string{
		fmt.Sprintf("sda:router cores/memoryMiB: reboot %s, then %s once %s serves again; the shared addresses move to the router that is up (at once when keepalived stops cleanly, else after VRRP's master-down interval of about 3 s) and established connections carry on (conntrackd)", a, b, a),
		fmt.Sprintf("sda:router diskGiB/templateUrl: replace %s, then %s once the new %s serves, each deleted first (same VM IDs %d, %d) after handing the shared addresses to the other: the internal network keeps its gateway throughout", a, b, a, pr.Routers[0].VMID, pr.Routers[1].VMID),
	}
}
