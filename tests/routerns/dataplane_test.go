package routerns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sda-platform/sda/config"
)

// The data-plane lab: the internal network of a stack across its Proxmox
// nodes, built from the rendered plan (config.Resolve of the repository's
// stack files) the way each internal network mode builds it, with a
// namespace per Proxmox node, per VM, the router (the real rendered files,
// applied as RouterLXC applies them) and the external side. See
// docs/network-lab.md.

// labStack resolves the shipped stack files (testdata/stacks) for stack (as the Pulumi
// CLI hands them to the program, before defaults) with the external side
// moved to the test's documentation range, as testStack does; mod changes
// more (the internal network mode of a variant) before Resolve.
func labStack(t *testing.T, stack string, mod func(*config.Config)) (config.Config, config.Plan) {
	t.Helper()
	lookup, err := config.StackFiles(stacksDir(t), stack)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(lookup)
	if err != nil {
		t.Fatal(err)
	}
	// One router: the pair has a lab of its own (pair_lab_test.go).
	c.Router.Pair = nil
	c.Network.External.CIDR = extCIDR
	c.Network.External.RouterAddress = routerExt
	c.Network.External.Gateway = extHost
	c.Network.DNSServers = []string{extHost}
	c.Network.AdminCIDRs = []string{adminCIDR}
	c.Network.TalosAPICIDRs = []string{adminSrc + "/32"}
	for i := range c.Network.PortForwards { // restricted forwards: to the admins
		if len(c.Network.PortForwards[i].AllowFrom) > 0 {
			c.Network.PortForwards[i].AllowFrom = []string{adminCIDR}
		}
	}
	if mod != nil {
		mod(&c)
	}
	c, p, err := config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// Variants of a stack's internal network: only the mode's own keys change.
func inVLAN(c *config.Config) {
	c.Network.Internal.Mode = config.ModeVLAN
	c.Network.Internal.VXLAN = nil
	c.Network.Internal.VLAN = &config.InternalVLAN{Uplink: "eno1", ID: 120}
}

func inExisting(c *config.Config) {
	c.Network.Internal.Mode = config.ModeExisting
	c.Network.Internal.VXLAN = nil
}

// dataPlane is one lab: the namespaces of a plan's Proxmox nodes and VMs,
// the router and the external side.
type dataPlane struct {
	*testNet
	c config.Config
	p config.Plan
	// node: Proxmox node name -> namespace; vm: hostname -> namespace.
	node, vm map[string]string
	// tap: hostname -> the VM's port on its node's internal bridge.
	tap map[string]string
	// underlay is the namespace of the shared switch (vlan, existing) or
	// cluster network (vxlan); empty in mode bridge.
	underlay string
	// vipHolder is the control plane holding the VIP now.
	vipHolder config.Machine
	// vlan says how mode vlan's tag is carried.
	vlan string
}

const (
	switchBridge = "sw"
	vxlanPort    = 4789
)

// vxlanDevice is the name Proxmox SDN (ifupdown2) gives a VNet's VXLAN device.
func vxlanDevice(vnet string) string { return "vxlan_" + vnet }

// buildDataPlane builds the lab for plan p (its Network.Mode decides how the
// nodes' internal bridges are built and joined), applies the router's
// rendered files and starts every VM's listeners.
func buildDataPlane(t *testing.T, c config.Config, p config.Plan) *dataPlane {
	t.Helper()
	l := newLab(t)
	d := &dataPlane{
		testNet: &testNet{lab: l, ext: l.ns("ext"), router: l.ns("router")},
		c:       c, p: p, node: map[string]string{}, vm: map[string]string{}, tap: map[string]string{},
	}
	nw := p.Network
	l.addNS("ext", "router")
	for i, name := range nw.Nodes {
		role := fmt.Sprintf("pve%d", i+1)
		l.addNS(role)
		d.node[name] = l.ns(role)
	}
	for _, m := range p.Machines() {
		if d.node[m.ProxmoxNode] == "" {
			t.Fatalf("%s is on %s, which the plan's network does not span (%v)", m.Hostname, m.ProxmoxNode, nw.Nodes)
		}
		role := fmt.Sprintf("vm%d", m.VMID)
		l.addNS(role)
		d.vm[m.Hostname] = l.ns(role)
	}
	if d.node[p.RouterNode] == "" {
		t.Fatalf("the router is on %s, which the plan's network does not span (%v)", p.RouterNode, nw.Nodes)
	}
	if nw.Mode != config.ModeBridge {
		l.addNS("underlay")
		d.underlay = l.ns("underlay")
		l.ip(t, "-n", d.underlay, "link", "add", switchBridge, "type", "bridge")
		l.ip(t, "-n", d.underlay, "link", "set", switchBridge, "up")
	}
	for i, name := range nw.Nodes {
		d.internalBridge(t, i, name)
	}

	mtu := fmt.Sprint(nw.MTU)
	bits := p.Internal.Bits()
	for _, m := range p.Machines() {
		vm, node := d.vm[m.Hostname], d.node[m.ProxmoxNode]
		// What Proxmox makes of the VM's NIC (bridge, macaddr, mtu) and
		// Talos of its link (address, MTU, default route).
		tap := fmt.Sprintf("tap%di0", m.VMID)
		d.tap[m.Hostname] = tap
		l.ip(t, "-n", vm, "link", "add", "eth0", "type", "veth", "peer", "name", tap, "netns", node)
		l.ip(t, "-n", node, "link", "set", tap, "mtu", mtu, "master", nw.Bridge, "up")
		l.ip(t, "-n", vm, "link", "set", "eth0", "address", strings.ToLower(m.MAC), "mtu", mtu)
		l.ip(t, "-n", vm, "addr", "add", fmt.Sprintf("%s/%d", m.Address, bits), "dev", "eth0")
		l.ip(t, "-n", vm, "link", "set", "eth0", "up")
		l.ip(t, "-n", vm, "route", "add", "default", "via", p.RouterInternal.String())
	}
	if p.VIP.IsValid() { // Talos puts the VIP on one control plane, as a /32
		d.vipHolder = p.ControlPlanes[0]
		l.ip(t, "-n", d.vm[d.vipHolder.Hostname], "addr", "add", p.VIP.String()+"/32", "dev", "eth0")
	}

	// The router: net0 on the external side, net1 on its node's internal bridge.
	routerNode := d.node[p.RouterNode]
	veth := fmt.Sprintf("veth%di1", p.RouterVMID)
	l.ip(t, "-n", d.router, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", d.ext)
	l.ip(t, "-n", d.router, "link", "add", "eth1", "type", "veth", "peer", "name", veth, "netns", routerNode)
	l.ip(t, "-n", routerNode, "link", "set", veth, "mtu", mtu, "master", nw.Bridge, "up")
	d.configureRouter(t, p)
	d.apply(t, c, p)

	for _, m := range p.Machines() {
		d.serve(t, d.vm[m.Hostname], "@"+m.Hostname, "0.0.0.0:50000", "0.0.0.0:6443", "0.0.0.0:2379", "0.0.0.0:2380", "0.0.0.0:10250")
	}
	d.serve(t, d.ext, fmt.Sprintf("0.0.0.0:%d", observerPort))
	return d
}

// internalBridge builds node i's internal bridge the way the mode does.
func (d *dataPlane) internalBridge(t *testing.T, i int, name string) {
	t.Helper()
	l, nw, ns := d.lab, d.p.Network, d.node[name]
	mtu := fmt.Sprint(nw.MTU)
	// uplink joins the node to the shared switch/underlay with a veth named
	// dev in the node.
	uplink := func(dev string, mtu int) {
		port := fmt.Sprintf("up%d", i+1)
		l.ip(t, "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", port, "netns", d.underlay)
		l.ip(t, "-n", ns, "link", "set", dev, "mtu", fmt.Sprint(mtu), "up")
		l.ip(t, "-n", d.underlay, "link", "set", port, "mtu", fmt.Sprint(mtu), "master", switchBridge, "up")
	}
	bridge := func(ports ...string) {
		l.ip(t, "-n", ns, "link", "add", nw.Bridge, "type", "bridge")
		l.ip(t, "-n", ns, "link", "set", nw.Bridge, "mtu", mtu)
		for _, port := range ports {
			l.ip(t, "-n", ns, "link", "set", port, "master", nw.Bridge, "up")
		}
		l.ip(t, "-n", ns, "link", "set", nw.Bridge, "up")
	}
	switch nw.Mode {
	case config.ModeBridge: // no ports: local to the node
		bridge()
	case config.ModeExisting: // the user's own connection: a NIC on a shared switch
		uplink("nic0", max(nw.MTU, 1500))
		bridge("nic0")
	case config.ModeVLAN: // network.NetworkVlan <uplink>.<id>, the bridge's only port
		v := nw.VLAN
		uplink(v.Uplink, max(nw.MTU, 1500))
		out, err := run(context.Background(), "ip", "-n", ns, "link", "add", "link", v.Uplink, "name", v.Interface, "type", "vlan", "id", fmt.Sprint(v.ID))
		switch {
		case err == nil:
			d.vlan = "802.1Q"
		case strings.Contains(out, "Unknown device type"):
			// This kernel has no 802.1Q (CONFIG_VLAN_8021Q unset, and no
			// VLAN-filtering bridge either): the switch carries the VLAN
			// as a bridge of its own, which <uplink>.<id> joins.
			d.vlan = "the switch's VLAN bridge (the kernel lacks 802.1Q)"
			vbr := fmt.Sprintf("vlan%d", v.ID)
			if _, err := run(context.Background(), "ip", "-n", d.underlay, "link", "show", vbr); err != nil {
				l.ip(t, "-n", d.underlay, "link", "add", vbr, "type", "bridge")
				l.ip(t, "-n", d.underlay, "link", "set", vbr, "up")
			}
			port := fmt.Sprintf("v%dp%d", v.ID, i+1)
			l.ip(t, "-n", ns, "link", "add", v.Interface, "type", "veth", "peer", "name", port, "netns", d.underlay)
			l.ip(t, "-n", ns, "link", "set", v.Interface, "mtu", mtu)
			l.ip(t, "-n", d.underlay, "link", "set", port, "mtu", mtu, "master", vbr, "up")
		default:
			t.Fatalf("ip -n %s link add link %s name %s type vlan id %d: %v\n%s", ns, v.Uplink, v.Interface, v.ID, err, out)
		}
		bridge(v.Interface)
	case config.ModeVXLAN:
		// The cluster network: the node's peer address on the underlay, a
		// host route to every other peer.
		x := nw.VXLAN
		var self string
		var others []string
		for _, peer := range x.Peers {
			if peer.Node == name {
				self = peer.Address.String()
			} else {
				others = append(others, peer.Address.String())
			}
		}
		if self == "" {
			t.Fatalf("node %s is not a VXLAN peer: %v", name, x.Peers)
		}
		uplink("underlay", x.UnderlayMTU)
		l.ip(t, "-n", ns, "addr", "add", self+"/32", "dev", "underlay")
		for _, o := range others {
			l.ip(t, "-n", ns, "route", "add", o+"/32", "dev", "underlay", "src", self)
		}
		// What Proxmox SDN's ifupdown2 configuration creates: the VXLAN
		// device with the VNet's tag, head-end replication to every other
		// peer (static all-zero FDB entries), enslaved to a bridge named
		// after the VNet.
		dev := vxlanDevice(x.VNet)
		l.ip(t, "-n", ns, "link", "add", dev, "type", "vxlan", "id", fmt.Sprint(x.VNI), "dstport", fmt.Sprint(vxlanPort), "local", self, "dev", "underlay")
		// The kernel caps a VXLAN device at its underlay's MTU minus the
		// encapsulation: setting the plan's MTU fails if it does not fit.
		l.ip(t, "-n", ns, "link", "set", dev, "mtu", mtu)
		for _, o := range others {
			l.must(t, ns, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", o)
		}
		bridge(dev)
	default:
		t.Fatalf("no lab for mode %q", nw.Mode)
	}
}

// joined says whether guests on Proxmox nodes a and b share the segment:
// always, except for portless bridges on different nodes.
func (d *dataPlane) joined(a, b string) bool {
	return a == b || d.p.Network.Mode != config.ModeBridge
}

// probe runs a helper in ns and returns its lines; want lines, or an
// "error: ..." line per wanted line when it fails. Safe in goroutines.
func (d *dataPlane) probe(ns string, want int, mode string, args ...string) []string {
	exe, err := os.Executable()
	lines := make([]string, want)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, exe, mode}, args...)...)
		cmd.Env = append(os.Environ(), helperEnv+"="+mode)
		cmd.WaitDelay = time.Second
		var out []byte
		if out, err = cmd.Output(); err == nil {
			got := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(got) == want {
				return got
			}
			err = fmt.Errorf("%d lines for %d probes: %q", len(got), want, out)
		}
	}
	for i := range lines {
		lines[i] = fmt.Sprintf("error: helper %s in %s: %v", mode, ns, err)
	}
	return lines
}

// reach is one expected TCP connection.
type reach struct {
	what    string
	ns, src string // from namespace ns, source address src ("-": the default)
	dst     string // host:port
	// want is "peer=<src> at=<hostname>", "timeout" (dropped) or
	// "unreachable" (no path: a timeout or no ARP answer, EHOSTUNREACH).
	want string
}

// checkReach dials every case, at once (grouped into one helper per
// namespace, source and expectation), and reports each that differs.
func (d *dataPlane) checkReach(t *testing.T, cases []reach) {
	t.Helper()
	type key struct {
		ns, src string
		blocked bool
	}
	groups := map[key][]int{}
	for i, c := range cases {
		k := key{c.ns, c.src, c.want == "timeout" || c.want == "unreachable"}
		groups[k] = append(groups[k], i)
	}
	got := make([]string, len(cases))
	var wg sync.WaitGroup
	for k, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := openWait
			if k.blocked {
				wait = blockedWait
			}
			args := []string{k.src, wait}
			for _, i := range idx {
				args = append(args, cases[i].dst)
			}
			for j, line := range d.probe(k.ns, len(idx), "dials", args...) {
				got[idx[j]] = line
			}
		}()
	}
	wg.Wait()
	for i, c := range cases {
		if got[i] != c.want && !(c.want == "unreachable" && got[i] == "timeout") {
			t.Errorf("%s (%s): %s, want %s", c.what, c.dst, got[i], c.want)
		}
	}
}

func hostPort(a any, port int) string { return fmt.Sprintf("%v:%d", a, port) }

// answer is what a listener of m says to a connection from src.
func answer(src any, m config.Machine) string { return fmt.Sprintf("peer=%v at=%s", src, m.Hostname) }

// expect is the answer when the path exists, else "unreachable".
func expect(ok bool, src any, m config.Machine) string {
	if ok {
		return answer(src, m)
	}
	return "unreachable"
}

// ping sends one ICMP echo of size bytes of payload from ns to dst, with
// DF set when df; it returns ping's output and whether a reply came.
func (d *dataPlane) ping(ns, dst string, size int, df bool, wait string) (string, bool) {
	args := []string{"ping", "-n", "-c", "1", "-W", wait, "-s", fmt.Sprint(size)}
	if df {
		args = append(args, "-M", "do")
	}
	out, err := d.exec(ns, append(args, dst)...)
	return out, err == nil
}

// checkDataPlane runs every check of the lab against its plan.
func checkDataPlane(t *testing.T, d *dataPlane) {
	p, c := d.p, d.c
	machines := p.Machines()
	gw := p.RouterInternal.String()

	t.Run("every node reaches its gateway and the outside, and resolves every name through the router", func(t *testing.T) {
		names := []string{c.Router.Hostname + "." + c.Network.Internal.Domain + "."}
		addrs := []string{gw}
		for _, m := range machines {
			names = append(names, m.Hostname+"."+c.Network.Internal.Domain+".", m.Hostname+".")
			addrs = append(addrs, m.Address.String(), m.Address.String())
		}
		var wg sync.WaitGroup
		var cases []reach
		for _, m := range machines {
			ok := d.joined(m.ProxmoxNode, p.RouterNode)
			ns := d.vm[m.Hostname]
			want := "peer=" + routerExt // through the router's NAT
			if !ok {
				want = "unreachable"
			}
			cases = append(cases, reach{m.Hostname + " to the external host through its gateway", ns, m.Address.String(), hostPort(extHost, observerPort), want})
			wg.Add(2)
			go func() {
				defer wg.Done()
				wait := "2"
				if !ok {
					wait = "1"
				}
				out, replied := d.ping(ns, gw, 56, false, wait)
				if replied != ok {
					t.Errorf("%s on %s pings its gateway %s on %s: replied=%v, want %v\n%s", m.Hostname, m.ProxmoxNode, gw, p.RouterNode, replied, ok, out)
				}
			}()
			go func() {
				defer wg.Done()
				wait := openWait
				if !ok {
					wait = blockedWait
				}
				got := d.probe(ns, len(names), "lookups", append([]string{m.Address.String(), gw, wait}, names...)...)
				for i, name := range names {
					want := "a=" + addrs[i]
					if !ok {
						want = "unreachable"
					}
					if got[i] != want && !(want == "unreachable" && got[i] == "timeout") {
						t.Errorf("%s on %s resolves %s through %s: %s, want %s", m.Hostname, m.ProxmoxNode, name, gw, got[i], want)
					}
				}
			}()
		}
		wg.Add(1)
		go func() { defer wg.Done(); d.checkReach(t, cases) }()
		wg.Wait()
	})

	var crossCP []reach
	for _, a := range p.ControlPlanes {
		for _, b := range p.ControlPlanes {
			if a.ProxmoxNode == b.ProxmoxNode {
				continue
			}
			for _, port := range []int{2379, 2380} {
				crossCP = append(crossCP, reach{fmt.Sprintf("%s on %s to etcd of %s on %s", a.Hostname, a.ProxmoxNode, b.Hostname, b.ProxmoxNode),
					d.vm[a.Hostname], a.Address.String(), hostPort(b.Address, port), expect(d.joined(a.ProxmoxNode, b.ProxmoxNode), a.Address, b)})
			}
		}
	}
	if len(crossCP) == 0 {
		t.Logf("all %d control plane(s) on one Proxmox node: no etcd traffic crosses nodes", len(p.ControlPlanes))
	} else {
		t.Run("control planes on different Proxmox nodes reach each other on 2379 and 2380", func(t *testing.T) {
			// and every kubelet (10250) from the first control plane
			cp := p.ControlPlanes[0]
			for _, m := range machines[1:] {
				crossCP = append(crossCP, reach{fmt.Sprintf("%s on %s to the kubelet of %s on %s", cp.Hostname, cp.ProxmoxNode, m.Hostname, m.ProxmoxNode),
					d.vm[cp.Hostname], cp.Address.String(), hostPort(m.Address, 10250), expect(d.joined(cp.ProxmoxNode, m.ProxmoxNode), cp.Address, m)})
			}
			d.checkReach(t, crossCP)
		})
	}

	t.Run("the admin reaches every Talos API and the Kubernetes API through the router, the outsider neither", func(t *testing.T) {
		api := p.KubernetesAPIAddress()
		apiHolder := p.ControlPlanes[0]
		if p.VIP.IsValid() {
			apiHolder = d.vipHolder
		}
		var cases []reach
		for _, m := range machines {
			ok := d.joined(m.ProxmoxNode, p.RouterNode)
			cases = append(cases,
				reach{fmt.Sprintf("admin to the Talos API of %s on %s", m.Hostname, m.ProxmoxNode), d.ext, adminSrc, hostPort(m.Address, 50000), expect(ok, adminSrc, m)},
				reach{fmt.Sprintf("outsider to the Talos API of %s", m.Hostname), d.ext, outsider, hostPort(m.Address, 50000), "timeout"})
		}
		cases = append(cases,
			reach{fmt.Sprintf("admin to the Kubernetes API on %s, held by %s", api, apiHolder.Hostname), d.ext, adminSrc, hostPort(api, 6443), expect(d.joined(apiHolder.ProxmoxNode, p.RouterNode), adminSrc, apiHolder)},
			reach{"outsider to the Kubernetes API", d.ext, outsider, hostPort(api, 6443), "timeout"})
		d.checkReach(t, cases)
	})

	// The VIP moves to a control plane on another Proxmox node.
	var target *config.Machine
	for i, m := range p.ControlPlanes {
		if p.VIP.IsValid() && m.ProxmoxNode != d.vipHolder.ProxmoxNode {
			target = &p.ControlPlanes[i]
			break
		}
	}
	if target == nil {
		t.Logf("no VIP, or no control plane on another Proxmox node: the VIP does not move between nodes")
	} else {
		t.Run("the VIP moved to a control plane on another Proxmox node stays reachable after a gratuitous ARP", func(t *testing.T) {
			from := d.vipHolder
			vip := hostPort(p.VIP, 6443)
			observers := func(holder config.Machine) []reach {
				cases := []reach{{fmt.Sprintf("admin to the VIP held by %s on %s", holder.Hostname, holder.ProxmoxNode), d.ext, adminSrc, vip, expect(d.joined(holder.ProxmoxNode, p.RouterNode), adminSrc, holder)}}
				for _, w := range p.Workers {
					cases = append(cases, reach{fmt.Sprintf("%s on %s to the VIP held by %s on %s", w.Hostname, w.ProxmoxNode, holder.Hostname, holder.ProxmoxNode),
						d.vm[w.Hostname], w.Address.String(), vip, expect(d.joined(w.ProxmoxNode, holder.ProxmoxNode), w.Address, holder)})
				}
				return cases
			}
			d.checkReach(t, observers(from)) // the router and the workers learn the holder's MAC

			d.ip(t, "-n", d.vm[from.Hostname], "addr", "del", p.VIP.String()+"/32", "dev", "eth0")
			d.ip(t, "-n", d.vm[target.Hostname], "addr", "add", p.VIP.String()+"/32", "dev", "eth0")
			d.vipHolder = *target
			if d.joined(from.ProxmoxNode, p.RouterNode) && d.joined(target.ProxmoxNode, p.RouterNode) {
				// Without the announcement the router still sends to the
				// old holder's MAC: the gratuitous ARP is what moves it.
				d.checkReach(t, []reach{{"admin to the moved VIP before the gratuitous ARP", d.ext, adminSrc, vip, "timeout"}})
			}
			// What Talos does when it takes the VIP: announce it.
			if out, err := d.exec(d.vm[target.Hostname], "arping", "-U", "-c", "1", "-I", "eth0", "-s", p.VIP.String(), p.VIP.String()); err != nil {
				t.Fatalf("arping -U from %s: %v\n%s", target.Hostname, err, out)
			}
			d.checkReach(t, observers(*target))
		})
	}

	t.Run("a packet of the full MTU with DF set crosses Proxmox nodes, one byte more does not", func(t *testing.T) {
		mtu := p.Network.MTU
		// A pair of VMs on different Proxmox nodes that share the segment
		// (on one node when there is only one).
		var a, b *config.Machine
		for _, cross := range []bool{true, false} {
			for i := range machines {
				for j := range machines {
					x, y := machines[i], machines[j]
					if a == nil && i != j && (x.ProxmoxNode != y.ProxmoxNode) == cross && d.joined(x.ProxmoxNode, y.ProxmoxNode) {
						a, b = &machines[i], &machines[j]
					}
				}
			}
		}
		if a == nil {
			t.Fatal("no two VMs share a segment")
		}
		if a.ProxmoxNode == b.ProxmoxNode {
			t.Logf("every VM is on %s: the packets stay on the node", a.ProxmoxNode)
		}
		va, dst := d.vm[a.Hostname], b.Address.String()
		full, more := pingCase{mtu - 28, true}, pingCase{mtu - 27, false}
		cases := []pingCheck{
			{fmt.Sprintf("%s on %s to %s on %s", a.Hostname, a.ProxmoxNode, b.Hostname, b.ProxmoxNode), va, dst, full},
			{fmt.Sprintf("%s to %s", a.Hostname, b.Hostname), va, dst, more},
		}
		// The router's internal NIC carries the full MTU to a node on
		// another Proxmox node, and not a byte more.
		for _, m := range machines {
			if m.ProxmoxNode == p.RouterNode && len(p.Network.Nodes) > 1 || !d.joined(m.ProxmoxNode, p.RouterNode) {
				continue
			}
			what := fmt.Sprintf("the router on %s to %s on %s", p.RouterNode, m.Hostname, m.ProxmoxNode)
			cases = append(cases, pingCheck{what, d.router, m.Address.String(), full}, pingCheck{what, d.router, m.Address.String(), more})
			break
		}
		d.checkPings(t, mtu, cases)

		if p.Network.Mode == config.ModeVXLAN && a.ProxmoxNode != b.ProxmoxNode {
			// The tunnel's own limit: a guest left at the underlay's MTU
			// loses its full-size packets silently at the VXLAN port.
			under := p.Network.VXLAN.UnderlayMTU
			d.ip(t, "-n", d.node[a.ProxmoxNode], "link", "set", d.tap[a.Hostname], "mtu", fmt.Sprint(under))
			d.ip(t, "-n", va, "link", "set", "eth0", "mtu", fmt.Sprint(under))
			what := fmt.Sprintf("%s at the underlay's MTU %d to %s across the VXLAN", a.Hostname, under, b.Hostname)
			d.checkPings(t, under, []pingCheck{{what, va, dst, pingCase{under - 28, false}}, {what, va, dst, full}})
			d.ip(t, "-n", va, "link", "set", "eth0", "mtu", fmt.Sprint(mtu))
			d.ip(t, "-n", d.node[a.ProxmoxNode], "link", "set", d.tap[a.Hostname], "mtu", fmt.Sprint(mtu))
		}
	})
}

// pingCase is one DF ping: size bytes of payload (IP size size+28), and
// whether a reply must come.
type pingCase struct {
	size  int
	reply bool
}

type pingCheck struct {
	what, ns, dst string
	pingCase
}

// checkPings sends every DF ping at once. A ping that must not get through
// from a sender whose MTU is senderMTU must either be refused by the sender
// (its MTU is smaller) or get no reply.
func (d *dataPlane) checkPings(t *testing.T, senderMTU int, cases []pingCheck) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait := "2"
			if !c.reply {
				wait = "1"
			}
			out, replied := d.ping(c.ns, c.dst, c.size, true, wait)
			switch {
			case replied != c.reply:
				t.Errorf("%s: %d bytes with DF: replied=%v, want %v\n%s", c.what, c.size+28, replied, c.reply, out)
			case !c.reply && c.size+28 > senderMTU && !strings.Contains(out, fmt.Sprintf("mtu=%d", senderMTU)):
				t.Errorf("%s: %d bytes with DF: the sender did not refuse it for its MTU %d\n%s", c.what, c.size+28, senderMTU, out)
			}
		}()
	}
	wg.Wait()
}

// TestDataPlane builds the internal network of the shipped stacks in
// every mode that applies and checks what a deployment needs of it.
func TestDataPlane(t *testing.T) {
	requireNetns(t)
	if out, _ := run(context.Background(), "ping", "-V"); !strings.Contains(out, "iputils") {
		skipOrFail(t, "ping is not iputils' (needed for ping -M do): run scripts/install-test-deps.sh")
	}
	variants := []struct {
		name, stack string
		mod         func(*config.Config)
		mode        string // the mode the plan must have
		mtu         int
		forced      bool // mode bridge forced past validation
	}{
		{"prod vxlan", "prod", nil, config.ModeVXLAN, 1450, false},
		{"prod bridge spread over nodes (forced past validation)", "prod", inExisting, config.ModeBridge, 1500, true},
		{"prod vlan", "prod", inVLAN, config.ModeVLAN, 1500, false},
		{"dev bridge", "dev", nil, config.ModeBridge, 1500, false},
		{"prod existing", "prod", inExisting, config.ModeExisting, 1500, false},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel() // separate namespaces; mostly waiting on timeouts
			c, p := labStack(t, v.stack, v.mod)
			if v.forced {
				// Validation refuses a portless bridge over several nodes;
				// the plan is otherwise the same as mode existing's.
				bad := c
				bad.Network.Internal.Mode = config.ModeBridge
				err := config.Validate(bad)
				if err == nil || !strings.Contains(err.Error(), "sda:network.internal.mode") || !strings.Contains(err.Error(), strings.Join(p.Network.Nodes, ", ")) {
					t.Fatalf("validation of mode bridge over %v: %v, want a problem naming sda:network.internal.mode and the nodes", p.Network.Nodes, err)
				}
				p.Network.Mode = config.ModeBridge
			}
			if p.Network.Mode != v.mode || p.Network.MTU != v.mtu {
				t.Fatalf("%s: mode %s, MTU %d; want %s, %d", v.name, p.Network.Mode, p.Network.MTU, v.mode, v.mtu)
			}
			t.Logf("%s: %s", v.name, p.Network.Describe())
			start := time.Now()
			d := buildDataPlane(t, c, p)
			t.Logf("built %d namespaces in %v", len(d.nss), time.Since(start).Round(time.Millisecond))
			if d.vlan != "" {
				t.Logf("VLAN %d carried by %s", p.Network.VLAN.ID, d.vlan)
			}
			if p.Network.Mode == config.ModeVXLAN {
				checkVXLANDevices(t, d)
			}
			checkDataPlane(t, d)
		})
	}
}

// checkVXLANDevices checks that every node's VXLAN device is what Proxmox
// SDN makes: the VNI, port 4789, the underlay, one flood entry per other peer.
func checkVXLANDevices(t *testing.T, d *dataPlane) {
	x := d.p.Network.VXLAN
	dev := vxlanDevice(x.VNet)
	for _, peer := range x.Peers {
		ns := d.node[peer.Node]
		link := d.ip(t, "-n", ns, "-d", "link", "show", dev)
		for _, want := range []string{fmt.Sprintf("vxlan id %d ", x.VNI), "dev underlay", fmt.Sprintf("dstport %d", vxlanPort), fmt.Sprintf("mtu %d", d.p.Network.MTU), "master " + x.VNet} {
			if !strings.Contains(link, want) {
				t.Errorf("%s on %s lacks %q:\n%s", dev, peer.Node, want, link)
			}
		}
		fdb := d.must(t, ns, "bridge", "fdb", "show", "dev", dev)
		var dsts []string
		for _, line := range strings.Split(fdb, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "00:00:00:00:00:00" && f[1] == "dst" {
				dsts = append(dsts, f[2])
			}
		}
		var want []string
		for _, o := range x.Peers {
			if o.Node != peer.Node {
				want = append(want, o.Address.String())
			}
		}
		if !slices.Equal(sorted(dsts), sorted(want)) {
			t.Errorf("%s on %s floods to %v, want every other peer %v:\n%s", dev, peer.Node, dsts, want, fdb)
		}
	}
}
