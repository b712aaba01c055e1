package offline

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
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
// the order the nodes are configured.
func Totals(c config.Config, p config.Plan) []NodeTotals {
	byNode := map[string]*NodeTotals{}
	var out []*NodeTotals
	add := func(node string, cores, mem, disk int) {
		t := byNode[node]
		if t == nil {
			t = &NodeTotals{Node: node}
			byNode[node] = t
			out = append(out, t)
		}
		t.Guests++
		t.Cores += cores
		t.MemoryMiB += mem
		t.DiskGiB += disk
	}
	for _, n := range p.ProxmoxNodesUsed() {
		byNode[n] = &NodeTotals{Node: n}
		out = append(out, byNode[n])
	}
	add(p.RouterNode, c.Router.Cores, c.Router.MemoryMiB, c.Router.DiskGiB)
	for _, m := range p.Machines() {
		add(m.ProxmoxNode, m.Size.Cores, m.Size.MemoryMiB, m.Size.DiskGiB)
	}
	result := make([]NodeTotals, len(out))
	for i, t := range out {
		result[i] = *t
	}
	return result
}

// WritePlan prints the stack's plan: the router's two sides, the VIP and the
// API endpoint, every guest with its placement, IDs, addresses and size, the
// port-forwards, the images, and the totals per Proxmox node.
func WritePlan(w io.Writer, stack string, c config.Config, p config.Plan) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	cl := c.Cluster
	line("Stack %s: cluster %q, Talos %s, Kubernetes %s, CNI %s", stack, cl.Name, cl.TalosVersion, cl.KubernetesVersion, cniLabel(cl))
	line("")

	routerExternal := "DHCP"
	if p.RouterExternal.IsValid() {
		routerExternal = fmt.Sprintf("%s/%d, gateway %s", p.RouterExternal, p.External.Bits(), p.ExternalGateway)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	row("Router external", fmt.Sprintf("%s on %s (%s)%s", routerExternal, c.Network.External.Bridge, p.External, vlanLabel(c)))
	row("Router internal", fmt.Sprintf("%s/%d on %s%s, domain %s", p.RouterInternal, p.Internal.Bits(), p.Network.Bridge, createdLabel(p.Network), c.Network.Internal.Domain))
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
	row("Pod network", cl.PodCIDR)
	row("Service network", cl.ServiceCIDR)
	if err := tw.Flush(); err != nil {
		return err
	}
	line("")

	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	row("ROLE", "HOSTNAME", "PROXMOX", "VMID", "MAC", "ADDRESS", "VCPU", "MEMORY", "DISK")
	row("router (LXC)", c.Router.Hostname, p.RouterNode, fmt.Sprint(p.RouterVMID), "-", p.RouterInternal.String(),
		fmt.Sprint(c.Router.Cores), mib(c.Router.MemoryMiB), gib(c.Router.DiskGiB))
	for _, m := range p.Machines() {
		row(string(m.Role), m.Hostname, m.ProxmoxNode, fmt.Sprint(m.VMID), m.MAC, m.Address.String(),
			fmt.Sprint(m.Size.Cores), mib(m.Size.MemoryMiB), gib(m.Size.DiskGiB))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(c.Network.PortForwards) > 0 {
		line("")
		line("Port-forwards on the router's external address:")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, f := range c.Network.PortForwards {
			target, err := config.ForwardTarget(p, f.Target)
			if err != nil {
				return fmt.Errorf("sda:network.portForwards %s: %w", f.Name, err)
			}
			from := "anyone"
			if len(f.AllowFrom) > 0 {
				from = strings.Join(f.AllowFrom, ", ")
			}
			row("  "+f.Name, fmt.Sprintf("%s/%d", f.Protocol, f.Port), fmt.Sprintf("-> %s (%s):%d", f.Target, target, f.TargetPort), "from "+from)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	id, err := talospatch.SchematicID(talospatch.SchematicYAML(cl.Extensions))
	if err != nil {
		return err
	}
	line("")
	line("Image Factory schematic %s (extensions: %s)", id, strings.Join(cl.Extensions, ", "))
	line("  boot image  %s (Proxmox decompression: %s)", talospatch.NocloudImageURL(id, cl.TalosVersion), talospatch.NocloudImageDecompression)
	line("  installer   %s", talospatch.InstallerImage(id, cl.TalosVersion))
	line("")

	line("Totals per Proxmox node (the router container counted):")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	row("PROXMOX", "GUESTS", "VCPU", "MEMORY", "DISK", "")
	var sum NodeTotals
	for _, t := range Totals(c, p) {
		row(t.Node, fmt.Sprint(t.Guests), fmt.Sprint(t.Cores), mib(t.MemoryMiB), gib(t.DiskGiB), "")
		sum.Guests += t.Guests
		sum.Cores += t.Cores
		sum.MemoryMiB += t.MemoryMiB
		sum.DiskGiB += t.DiskGiB
	}
	row("all", fmt.Sprint(sum.Guests), fmt.Sprint(sum.Cores), mib(sum.MemoryMiB), gib(sum.DiskGiB), "")
	if err := tw.Flush(); err != nil {
		return err
	}
	line("")
	line("Changes that restart guests (what `pulumi up` does when these keys change later):")
	for _, n := range RestartNotes(c, p) {
		line("  - %s", n)
	}
	// Legal but probably wrong: said, never fatal.
	if warnings := config.Warnings(c, p); len(warnings) > 0 {
		line("")
		line("Warnings (%d):", len(warnings))
		for _, wr := range warnings {
			line("  - %s", wr)
		}
	}
	// What `sda up` refuses until it is done (not a plan problem: the
	// plan does not need it).
	if todo := config.HostKeyProblems(c, p); len(todo) > 0 {
		line("")
		line("Before `sda up` (%d):", len(todo))
		for _, pr := range todo {
			line("  - %s: %s", pr.Key, pr.Fix)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
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
		fmt.Sprintf("sda:router cores/memoryMiB: reboot the router (%s): the internal network has no gateway, DNS or DHCP until it is back", c.Router.Hostname),
		fmt.Sprintf("sda:network.internal mode/bridge/mtu/vxlan.vnet: every guest's NIC changes: the Talos nodes reboot rolled (control planes one at a time, then workers "+workerParallel+"), and the router reboots; the old bridges or SDN zone go last (the internal network's MTU now %d)", p.Network.MTU),
		fmt.Sprintf("sda:router diskGiB/templateUrl: replace the router, deleting it first (same VM ID %d): the internal network is cut off until the new one is configured", p.RouterVMID),
		"sda:cluster.patches: fields Talos cannot apply live reboot every node the patch reaches, rolled: control planes one at a time, then workers "+workerParallel+", "+rolled+" (see the warnings); other fields apply without a reboot",
		"sda:cluster.talosVersion, sda:cluster.extensions: new images for new VMs; running nodes are upgraded in place, rolling: control planes one at a time, then workers "+workerParallel+", each after a health check",
		"sda:cluster.kubernetesVersion: rolled over the running nodes as talosctl upgrade-k8s does, nothing reboots: kube-apiserver, then kube-controller-manager, then kube-scheduler on each control plane in turn, kube-proxy's image, then the kubelet node by node; one minor release at a time, and not in the same up as a change of the nodes",
		"sda:nodes.rebuild.<hostname>: a changed number rebuilds that node: it leaves the cluster quorum-safely (a graceful reset, or its etcd member removed by ID when it is dead), its VM is recreated with the same name, ID and address, and it joins again, in its turn; nothing else changes",
		"sda:nodes.*.diskGiB may grow; shrinking it, or changing sda:nodes.diskInterface, is refused for existing VMs before anything changes (the Proxmox provider would fail half way)",
	)
	return notes
}
