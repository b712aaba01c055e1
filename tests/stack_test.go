package tests

import (
	"encoding/json"
	"fmt"
	"github.com/sda-platform/sda/stacks/inputs"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/components/sdn"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks"
)

// The whole program, configuration to resources, for the shipped stacks
// (testdata/stacks):
// what is registered, how many, under which parent, in which order.
func TestStackResources(t *testing.T) {
	cases := []struct {
		name, stack string
		// override replaces sections of the stack's configuration.
		override map[string]string
		want     map[string]int
		// invokes: role configurations, talosconfig, health checks.
		getConfigs, healthChecks int
	}{
		{"dev", "dev", nil, map[string]int{
			"pulumi:providers:proxmoxve":                          1,
			"sda:index:InternalNetwork":                           1,
			"sda:index:RouterLXC":                                 1,
			"sda:index:TalosCluster":                              1,
			"sda:index:TalosNode":                                 2,
			"sda:index:TalosNodeVersion":                          2,
			"sda:index:KnownHost":                                 1,
			"sda:index:KubernetesVersion":                         1,
			"sda:index:OverlayNetwork":                            1,
			"proxmoxve:Network/networkBridge:NetworkBridge":       1,
			"proxmoxve:Download/file:File":                        2, // LXC template + Talos image
			"proxmoxve:CT/container:Container":                    1,
			"proxmoxve:VM/virtualMachine:VirtualMachine":          2,
			"command:remote:Command":                              4, // packages, configuration, one per node
			"talos:machine/secrets:Secrets":                       1,
			"talos:imageFactory/schematic:Schematic":              1,
			"talos:machine/configurationApply:ConfigurationApply": 2,
			"talos:machine/bootstrap:Bootstrap":                   1,
			"talos:cluster/kubeconfig:Kubeconfig":                 1,
			"sda:index:ClusterMembers":                            1, // etcd/Kubernetes membership
			"sda:index:NodeDrain":                                 2, // rolled restarts: before each VM
			"sda:index:NodeReady":                                 2, // and after it
		}, 2, 2},
		{"prod", "prod", nil, map[string]int{
			"pulumi:providers:proxmoxve":                          1,
			"sda:index:InternalNetwork":                           1,
			"sda:index:RouterLXC":                                 2, // the router pair
			"sda:index:TalosCluster":                              1,
			"sda:index:TalosNode":                                 6,
			"sda:index:TalosNodeVersion":                          6,
			"sda:index:KnownHost":                                 3,
			"sda:index:KubernetesVersion":                         1,
			"sda:index:OverlayNetwork":                            1,
			"proxmoxve:Download/file:File":                        5, // a template per router + an image per node
			"proxmoxve:CT/container:Container":                    2,
			"proxmoxve:VM/virtualMachine:VirtualMachine":          6,
			"command:remote:Command":                              21, // per router packages, config, handover, serving and 6 nodes; the SDN zone and VNet
			"talos:machine/secrets:Secrets":                       1,
			"talos:imageFactory/schematic:Schematic":              1,
			"talos:machine/configurationApply:ConfigurationApply": 6,
			"talos:machine/bootstrap:Bootstrap":                   1,
			"talos:cluster/kubeconfig:Kubeconfig":                 1,
			"sda:index:ClusterMembers":                            1, // etcd/Kubernetes membership
			"sda:index:NodeDrain":                                 6, // rolled restarts: before each VM
			"sda:index:NodeReady":                                 6, // and after it
			"pulumi:providers:kubernetes":                         1,
			"kubernetes:helm.sh/v3:Release":                       1,
		}, 2, 2},
		{"prod on a VLAN", "prod", map[string]string{"sda:network": prodVLANNetwork}, map[string]int{
			"pulumi:providers:proxmoxve":                          1,
			"sda:index:InternalNetwork":                           1,
			"sda:index:RouterLXC":                                 2, // the router pair
			"sda:index:TalosCluster":                              1,
			"sda:index:TalosNode":                                 6,
			"sda:index:TalosNodeVersion":                          6,
			"sda:index:KnownHost":                                 3,
			"sda:index:KubernetesVersion":                         1,
			"sda:index:OverlayNetwork":                            1,
			"proxmoxve:Network/networkVlan:NetworkVlan":           3, // one per Proxmox node
			"proxmoxve:Network/networkBridge:NetworkBridge":       3, // its only port the VLAN
			"proxmoxve:Download/file:File":                        5,
			"proxmoxve:CT/container:Container":                    2,
			"proxmoxve:VM/virtualMachine:VirtualMachine":          6,
			"command:remote:Command":                              20,
			"talos:machine/secrets:Secrets":                       1,
			"talos:imageFactory/schematic:Schematic":              1,
			"talos:machine/configurationApply:ConfigurationApply": 6,
			"talos:machine/bootstrap:Bootstrap":                   1,
			"talos:cluster/kubeconfig:Kubeconfig":                 1,
			"sda:index:ClusterMembers":                            1, // etcd/Kubernetes membership
			"sda:index:NodeDrain":                                 6, // rolled restarts: before each VM
			"sda:index:NodeReady":                                 6, // and after it
			"pulumi:providers:kubernetes":                         1,
			"kubernetes:helm.sh/v3:Release":                       1,
		}, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setStackConfig(t, tc.stack, tc.override)
			m, err := run(t, tc.stack, stacks.Program)
			if err != nil {
				t.Fatal(err)
			}
			got := m.countByType()
			for _, typ := range sortedKeys(got) {
				if got[typ] != tc.want[typ] {
					t.Errorf("%s: %d registered, want %d", typ, got[typ], tc.want[typ])
				}
			}
			for _, typ := range sortedKeys(tc.want) {
				if got[typ] == 0 {
					t.Errorf("%s: none registered, want %d", typ, tc.want[typ])
				}
			}
			if n := m.callsOf("talos:machine/getConfiguration:getConfiguration"); n != tc.getConfigs {
				t.Errorf("%d role configurations generated, want %d", n, tc.getConfigs)
			}
			if n := m.callsOf("talos:cluster/getHealth:getHealth"); n != tc.healthChecks {
				t.Errorf("%d health checks, want %d (Talos/etcd, then Kubernetes after the CNI)", n, tc.healthChecks)
			}
			checkParents(t, m)
			checkOrdering(t, m, tc.stack)
			checkRouterHosts(t, m, tc.stack)
			checkProxmoxProvider(t, m, tc.stack)
			checkInternalNetwork(t, m, tc.stack, tc.override)
		})
	}
}

// The router gets one command per node of the stack's plan, running exactly
// HostScript and RemoveHostScript of the hosts routerfiles derives.
func checkRouterHosts(t *testing.T, m *mocks, stack string) {
	t.Helper()
	c, p, err := config.LoadStack(repoRoot, stack)
	if err != nil {
		t.Fatal(err)
	}
	routers, err := inputs.Routers(c, p)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range routers {
		name := stack + "-router"
		if i > 0 {
			name += fmt.Sprint(i + 1)
		}
		spec, err := r.Files()
		if err != nil {
			t.Fatal(err)
		}
		if len(spec.Hosts) != len(p.Machines()) {
			t.Fatalf("%s: %d router hosts for %d machines", name, len(spec.Hosts), len(p.Machines()))
		}
		for i, h := range spec.Hosts {
			if h.Name != p.Machines()[i].Hostname {
				t.Errorf("%s: router host %d is %s, want %s", name, i, h.Name, p.Machines()[i].Hostname)
			}
		}
		checkHostCommands(t, m, name, r.VMID, spec.Hosts)
		// The stack hands the router its Args, which the component parses
		// back: the files it applies are those `sda render` writes.
		want := routerfiles.ApplyScript(routerfiles.Render(spec), routerfiles.DebianLayout())
		if got := decodePct(t, m.named(t, name+"-config").Inputs["create"].StringValue(), r.VMID); got != want {
			t.Errorf("%s applies other files than sda render writes:\n%.300s", name, got)
		}
	}
	if p.RouterPair != nil && len(routers) != 2 {
		t.Errorf("%d routers for a pair", len(routers))
	}
}

// Every resource but the top-level components sits under a component, and
// every child's name starts with its parent's name (no collisions between
// two instances).
func checkParents(t *testing.T, m *mocks) {
	t.Helper()
	byURN := map[string]registered{}
	for _, r := range m.res {
		byURN[r.URN] = r
	}
	for _, r := range m.res {
		// The stack's own providers sit at the top, like default providers.
		if r.Type == "pulumi:pulumi:Stack" || strings.HasPrefix(r.Type, "pulumi:providers:") && r.Name == stackProviderName(r) {
			continue
		}
		parent, ok := byURN[r.Parent]
		if !ok {
			if r.Custom {
				t.Errorf("%s %s has no component parent (parent %q)", r.Type, r.Name, r.Parent)
			}
			continue
		}
		if !strings.HasPrefix(parent.Type, "sda:index:") {
			t.Errorf("%s %s is parented to %s, not an SDA component", r.Type, r.Name, parent.Type)
		}
		if !strings.HasPrefix(r.Name, parent.Name) {
			t.Errorf("%s %s is not named after its parent %s", r.Type, r.Name, parent.Name)
		}
	}
}

// The dependencies the deployment's correctness rests on.
func checkOrdering(t *testing.T, m *mocks, stack string) {
	t.Helper()
	dependsOn := func(child, parent string) {
		t.Helper()
		c, p := m.named(t, child), m.named(t, parent)
		if !slices.Contains(c.Deps, p.URN) {
			t.Errorf("%s does not depend on %s (deps %v)", child, parent, c.Deps)
		}
	}
	for _, apply := range m.ofType("talos:machine/configurationApply:ConfigurationApply") {
		node := strings.TrimSuffix(apply.Name, "-config")
		dependsOn(apply.Name, node+"-vm")
		// Nodes pull their installer through the router.
		dependsOn(apply.Name, stack+"-router-config")
	}
	dependsOn(stack+"-bootstrap", stack+"-cp1-config")
	dependsOn(stack+"-kubeconfig", stack+"-bootstrap")
	// The membership step runs against the bootstrapped cluster, with its
	// credentials secret, and declares exactly the stack's nodes.
	dependsOn(stack+"-members", stack+"-bootstrap")
	dependsOn(stack+"-members", stack+"-kubeconfig")
	members := m.named(t, stack+"-members")
	for _, k := range []resource.PropertyKey{"talosconfig", "kubeconfig"} {
		if !members.Inputs[k].IsSecret() {
			t.Errorf("the membership step's %s is not secret: %v", k, members.Inputs[k])
		}
	}
	var declared, listed []string
	for _, vm := range m.ofType("proxmoxve:VM/virtualMachine:VirtualMachine") {
		declared = append(declared, vm.Inputs["name"].StringValue())
	}
	for _, n := range members.Inputs["nodes"].ArrayValue() {
		listed = append(listed, n.ObjectValue()["hostname"].StringValue())
	}
	slices.Sort(declared)
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		t.Errorf("the membership step declares %v, want exactly the VMs %v", listed, declared)
	}
	// No VM waits for another: all are created in parallel. A restart a VM
	// update causes is rolled by its NodeDrain (before it) and NodeReady
	// (after it), which share the node's restart-relevant settings.
	vms := m.ofType("proxmoxve:VM/virtualMachine:VirtualMachine")
	for _, vm := range vms {
		for _, other := range vms {
			if slices.Contains(vm.Deps, other.URN) {
				t.Errorf("%s waits for %s", vm.Name, other.Name)
			}
		}
		node := strings.TrimSuffix(vm.Name, "-vm")
		dependsOn(vm.Name, node+"-drain")
		dependsOn(node+"-ready", vm.Name)
		drain, ready := m.named(t, node+"-drain"), m.named(t, node+"-ready")
		spec := drain.Inputs["restartSpec"].StringValue()
		if spec == "" || spec != ready.Inputs["restartSpec"].StringValue() {
			t.Errorf("%s: drain and ready restart specs %q and %v differ", node, spec, ready.Inputs["restartSpec"])
		}
		for _, want := range []string{fmt.Sprintf("memory=%v", vm.Inputs["memory"].ObjectValue()["dedicated"].V), fmt.Sprintf("cpu=%v/", vm.Inputs["cpu"].ObjectValue()["cores"].V)} {
			if !strings.Contains(spec, want) {
				t.Errorf("%s: the restart spec %q does not carry the VM's %s", node, spec, want)
			}
		}
		if !drain.Inputs["talosconfig"].IsSecret() {
			t.Errorf("%s-drain: the talosconfig is not secret", node)
		}
	}
	dependsOn(stack+"-router-config", stack+"-router-packages")
	dependsOn(stack+"-router-packages", stack+"-router-ct")
	for _, vm := range m.ofType("proxmoxve:VM/virtualMachine:VirtualMachine") {
		node := vm.Inputs["nodeName"].StringValue()
		dependsOn(vm.Name, fmt.Sprintf("%s-image-%s", stack, node))
		// A guest waits for what makes its bridge: the node's bridge, or
		// the SDN command that makes the VNet's bridge on every node.
		if len(m.ofType("proxmoxve:Network/networkBridge:NetworkBridge")) > 0 {
			dependsOn(vm.Name, fmt.Sprintf("%s-net-%s", stack, node))
		} else {
			dependsOn(vm.Name, stack+"-net-sdn")
		}
	}
	if releases := m.ofType("kubernetes:helm.sh/v3:Release"); len(releases) > 0 {
		provider := m.named(t, stack+"-overlay-k8s")
		if !slices.Contains(provider.Deps, m.named(t, stack+"-kubeconfig").URN) {
			t.Errorf("the Kubernetes provider does not wait for the kubeconfig: %v", provider.Deps)
		}
		if !strings.HasPrefix(releases[0].Provider, provider.URN+"::") {
			t.Errorf("the Helm release does not use the cluster's provider: %s", releases[0].Provider)
		}
	}
	bootstraps := m.ofType("talos:machine/bootstrap:Bootstrap")
	if len(bootstraps) != 1 || bootstraps[0].Inputs["node"].StringValue() != m.named(t, stack+"-cp1-config").Inputs["node"].StringValue() {
		t.Errorf("bootstrap must run once, on the first control plane: %+v", bootstraps)
	}
	if !m.named(t, stack+"-secrets").Protect {
		t.Error("the machine secrets must be protected against deletion")
	}
}

// Credentials are secret wherever they surface: the stack's outputs, the
// components' outputs and the inputs that carry them.
func TestCredentialsAreSecret(t *testing.T) {
	setStackConfig(t, "prod", nil)
	var checked []string
	m, err := run(t, "prod", func(ctx *pulumi.Context) error {
		c, err := loadConfig(ctx)
		if err != nil {
			return err
		}
		s, err := stacks.Deploy(ctx, c, stacks.DeployOptions{SSHPrivateKey: pulumi.ToSecret(pulumi.String("KEY")).(pulumi.StringOutput)})
		if err != nil {
			return err
		}
		for name, out := range map[string]pulumi.Output{
			"kubeconfig":                s.Cluster.Kubeconfig,
			"talosconfig":               s.Cluster.Talosconfig,
			"node machineConfiguration": s.Cluster.Nodes[0].MachineConfiguration,
		} {
			res, err := internals.UnsafeAwaitOutput(ctx.Context(), out)
			if err != nil {
				return err
			}
			if !res.Secret || !res.Known {
				t.Errorf("%s: secret=%v known=%v, want a known secret", name, res.Secret, res.Known)
			}
			if s, _ := res.Value.(string); s == "" {
				t.Errorf("%s is empty", name)
			}
			checked = append(checked, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(checked) != 3 {
		t.Fatalf("checked %v", checked)
	}
	for _, cmd := range m.ofType("command:remote:Command") {
		conn := cmd.Inputs["connection"]
		if !conn.IsSecret() && !conn.ObjectValue()["privateKey"].IsSecret() {
			t.Errorf("%s: SSH private key is not secret", cmd.Name)
		}
	}
	for _, typ := range []string{"talos:machine/secrets:Secrets", "talos:cluster/kubeconfig:Kubeconfig", "talos:machine/configurationApply:ConfigurationApply"} {
		for _, r := range m.ofType(typ) {
			if len(r.SecretOutputs) == 0 {
				t.Errorf("%s %s declares no secret outputs", typ, r.Name)
			}
		}
	}
	provider := m.named(t, "prod-overlay-k8s")
	if !provider.Inputs["kubeconfig"].IsSecret() {
		t.Error("the Kubernetes provider's kubeconfig input is not secret")
	}
}

// Invalid configuration fails before anything is registered, with every
// problem named.
func TestInvalidConfigurationRegistersNothing(t *testing.T) {
	cases := []struct {
		name     string
		override map[string]string
		want     []string
	}{
		{"even control planes and unknown CNI",
			map[string]string{"sda:cluster": `{"name":"dev","controlPlanes":2,"workers":1,"cni":"weave"}`},
			[]string{`sda:cluster.controlPlanes = "2"`, `sda:cluster.cni = "weave"`}},
		{"overlapping networks",
			map[string]string{"sda:network": `{"external":{"cidr":"10.0.0.0/8","routerAddress":"dhcp"},"internal":{"cidr":"10.10.0.0/24"}}`},
			[]string{`sda:network.internal.cidr = "10.10.0.0/24"`, "overlap"}},
		{"typo in a key",
			map[string]string{"sda:nodes": `{"wroker":{"cores":2}}`},
			[]string{`unknown field "wroker"`}},
		{"missing Proxmox endpoint and token",
			map[string]string{"proxmoxve:endpoint": "", "proxmoxve:apiToken": ""},
			[]string{"proxmoxve:endpoint", "proxmoxve:apiToken"}},
		{"the provider's own ssh block",
			map[string]string{"proxmoxve:ssh": `{"username":"root"}`},
			[]string{`proxmoxve:ssh = "(set)"`, "sda:proxmox.sshUser"}},
		{"a Talos patch Talos cannot load",
			map[string]string{"sda:cluster": `{"name":"dev","controlPlanes":1,"workers":1,"patches":["machine:\n  kubelett: {}\n"]}`},
			[]string{`sda:cluster.patches[0]`, "Talos cannot load it"}},
		{"service network over the internal one",
			map[string]string{"sda:cluster": `{"name":"dev","controlPlanes":1,"workers":1,"serviceCidr":"10.10.0.0/16"}`},
			[]string{`sda:cluster.serviceCidr = "10.10.0.0/16"`, "sda:network.internal.cidr"}},
		{"Kubernetes newer than Talos supports",
			map[string]string{"sda:cluster": `{"name":"dev","controlPlanes":1,"workers":1,"kubernetesVersion":"v1.37.0"}`},
			[]string{`sda:cluster.kubernetesVersion = "v1.37.0"`, "1.30 to 1.35"}},
		{"the Talos API forwarded to everyone",
			map[string]string{"sda:network": `{"external":{"cidr":"192.168.1.0/24","routerAddress":"192.168.1.50","gateway":"192.168.1.1"},"adminCidrs":["192.168.1.0/24"],"portForwards":[{"name":"talos","port":50000,"target":"dev-cp1"}]}`},
			[]string{`sda:network.portForwards[0].allowFrom`, "Talos API"}},
		{"missing cluster section",
			map[string]string{"sda:cluster": ""},
			[]string{"sda:cluster.name", "sda:cluster.controlPlanes"}},
		{"a Proxmox node's host key not pinned",
			map[string]string{"sda:proxmox": `{"nodes":[{"name":"pve","sshHost":"192.168.1.10"}]}`},
			[]string{`sda:proxmox.nodes[0].sshHostKey = ""`, "sda trust --stack", "insecureIgnoreHostKeys"}},
		{"an RSA host key pinned",
			map[string]string{"sda:proxmox": `{"nodes":[{"name":"pve","sshHostKey":"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"}]}`},
			[]string{`sda:proxmox.nodes[0].sshHostKey`}},
		{"the router template over http",
			map[string]string{"sda:router": `{"templateUrl":"http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst"}`},
			[]string{`sda:router.templateUrl`, "https://"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setStackConfig(t, "dev", tc.override)
			m, err := run(t, "dev", stacks.Program)
			if err == nil {
				t.Fatal("invalid configuration accepted")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			var registered []string
			for _, r := range m.res {
				if r.Type != "pulumi:pulumi:Stack" {
					registered = append(registered, r.Type+" "+r.Name)
				}
			}
			if len(registered) != 0 {
				t.Errorf("registered before failing: %v", registered)
			}
		})
	}
}

// stackProviderName is the name the program gives its explicit provider of
// r's package: "<cluster>-<package>".
func stackProviderName(r registered) string {
	pkg := strings.TrimPrefix(r.Type, "pulumi:providers:")
	if strings.HasSuffix(r.Name, "-"+pkg) {
		return r.Name
	}
	return ""
}

// Every Proxmox resource uses the program's explicit proxmoxve provider,
// whose SSH settings are SDA's own (user, key, every node's sshHost) and
// which is aliased to the default provider a deployed stack has, so that
// switching to it replaces nothing.
func checkProxmoxProvider(t *testing.T, m *mocks, stack string) {
	t.Helper()
	c, _, err := config.LoadStack(repoRoot, stack)
	if err != nil {
		t.Fatal(err)
	}
	prov := m.named(t, stack+"-proxmoxve")
	if prov.Parent != "" && !strings.HasSuffix(prov.Parent, "pulumi:pulumi:Stack::"+project+"-"+stack) {
		t.Errorf("the proxmoxve provider is parented to %s, want the stack", prov.Parent)
	}
	wantAlias := stacks.DefaultProxmoxProviderURN(stack, project)
	if !slices.Contains(prov.Aliases, wantAlias) {
		t.Errorf("the proxmoxve provider's aliases %v lack the default provider %s", prov.Aliases, wantAlias)
	}
	for _, r := range m.res {
		if strings.HasPrefix(r.Type, "proxmoxve:") && !strings.HasPrefix(r.Provider, prov.URN+"::") {
			t.Errorf("%s %s uses provider %q, not %s", r.Type, r.Name, r.Provider, prov.URN)
		}
	}
	for key, want := range map[string]string{"endpoint": "https://pve.example.test:8006/"} {
		if v := prov.Inputs[resource.PropertyKey(key)]; !v.IsString() || v.StringValue() != want {
			t.Errorf("provider %s = %v, want %s", key, v, want)
		}
	}
	if tok := prov.Inputs["apiToken"]; !tok.IsSecret() {
		t.Errorf("the provider's apiToken is not secret: %v", tok)
	}
	ssh := prov.Inputs["ssh"]
	sshSecret := ssh.IsSecret()
	if sshSecret {
		ssh = ssh.SecretValue().Element
	}
	if !ssh.IsObject() {
		t.Fatalf("provider ssh = %v, want an object", ssh)
	}
	o := ssh.ObjectValue()
	if o["username"].StringValue() != c.Proxmox.SSHUser {
		t.Errorf("provider ssh.username = %v, want %s", o["username"], c.Proxmox.SSHUser)
	}
	if !sshSecret && !o["privateKey"].IsSecret() {
		t.Errorf("provider ssh.privateKey is not a secret: %v", o["privateKey"])
	}
	nodes := o["nodes"].ArrayValue()
	if len(nodes) != len(c.Proxmox.Nodes) {
		t.Fatalf("provider ssh.nodes = %v, want %d", nodes, len(c.Proxmox.Nodes))
	}
	for i, n := range c.Proxmox.Nodes {
		got := nodes[i].ObjectValue()
		if got["name"].StringValue() != n.Name || got["address"].StringValue() != n.SSHHost {
			t.Errorf("provider ssh.nodes[%d] = %v, want %s at %s", i, got, n.Name, n.SSHHost)
		}
	}
}

func hasNamed(m *mocks, name string) bool {
	for _, r := range m.res {
		if r.Name == name {
			return true
		}
	}
	return false
}

// prodVLANNetwork is prod's network section on VLAN 42 of eno1.
const prodVLANNetwork = `{"external":{"bridge":"vmbr0","cidr":"192.168.1.0/24","routerAddress":"192.168.1.60","gateway":"192.168.1.1"},` +
	`"internal":{"bridge":"vmbr2","mode":"vlan","vlan":{"uplink":"eno1","id":42},"cidr":"10.20.0.0/24","domain":"prod.sda.internal"},` +
	`"adminCidrs":["192.168.1.0/24"],"talosApiCidrs":["192.168.1.5/32"],` +
	`"portForwards":[{"name":"kube-api","port":6443,"target":"vip","targetPort":6443,"allowFrom":["192.168.1.0/24"]},` +
	`{"name":"https","port":443,"target":"prod-worker1","targetPort":30443}]}`

// loadWith loads a stack's configuration with sections replaced.
func loadWith(t *testing.T, stack string, override map[string]string) (config.Config, config.Plan) {
	t.Helper()
	files, err := config.StackFiles(repoRoot, stack)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(func(key string) (string, bool) {
		if v, ok := override[key]; ok {
			return v, v != ""
		}
		return files(key)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, p, err := config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

// The internal network the plan describes is what is registered: the
// mode's resources, every guest on its bridge, and the mode's MTU on every
// guest NIC, the router's internal NIC and Cilium (only when it is not
// 1500, so 1500 stacks see no change).
func checkInternalNetwork(t *testing.T, m *mocks, stack string, override map[string]string) {
	t.Helper()
	c, p := loadWith(t, stack, override)
	n := p.Network
	switch n.Mode {
	case config.ModeBridge:
		for _, node := range n.Nodes {
			br := m.named(t, fmt.Sprintf("%s-net-%s", stack, node))
			if br.Inputs.HasValue("ports") {
				t.Errorf("%s: a bridge-mode bridge has no ports: %v", br.Name, br.Inputs["ports"])
			}
		}
	case config.ModeVLAN:
		for _, node := range n.Nodes {
			vlan := m.named(t, fmt.Sprintf("%s-net-vlan-%s", stack, node))
			if vlan.Inputs["name"].StringValue() != n.VLAN.Interface || vlan.Inputs["interface"].StringValue() != n.VLAN.Uplink ||
				vlan.Inputs["vlan"].NumberValue() != float64(n.VLAN.ID) || vlan.Inputs["nodeName"].StringValue() != node {
				t.Errorf("%s = %v, want %s (VLAN %d of %s) on %s", vlan.Name, vlan.Inputs, n.VLAN.Interface, n.VLAN.ID, n.VLAN.Uplink, node)
			}
			br := m.named(t, fmt.Sprintf("%s-net-%s", stack, node))
			if ports := br.Inputs["ports"]; !ports.IsArray() || len(ports.ArrayValue()) != 1 || ports.ArrayValue()[0].StringValue() != n.VLAN.Interface {
				t.Errorf("%s ports = %v, want [%s]", br.Name, ports, n.VLAN.Interface)
			}
			if !slices.Contains(br.Deps, vlan.URN) {
				t.Errorf("%s does not wait for %s", br.Name, vlan.Name)
			}
		}
	case config.ModeVXLAN:
		cmd := m.named(t, stack+"-net-sdn")
		x := sdn.VXLAN{Zone: n.VXLAN.Zone, VNet: n.VXLAN.VNet, VNI: n.VXLAN.VNI, MTU: n.MTU, Nodes: n.Nodes}
		for _, peer := range n.VXLAN.Peers {
			x.Peers = append(x.Peers, peer.Address.String())
		}
		if len(x.Peers) != len(n.Nodes) {
			t.Errorf("%d peers for %d nodes: every node must be a peer", len(x.Peers), len(n.Nodes))
		}
		for key, want := range map[string]string{"create": sdn.ApplyScript(x), "update": sdn.ApplyScript(x), "delete": sdn.DeleteScript(x)} {
			if got := cmd.Inputs[resource.PropertyKey(key)]; !got.IsString() || got.StringValue() != want {
				t.Errorf("%s %s = %v, want\n%s", cmd.Name, key, got, want)
			}
		}
		if host := connectionOf(cmd)["host"].StringValue(); host != c.Proxmox.Nodes[0].SSHHost {
			t.Errorf("%s runs on %s, want the first node's SSH host %s", cmd.Name, host, c.Proxmox.Nodes[0].SSHHost)
		}
	}
	wantMTU := func(what string, v resource.PropertyValue) {
		t.Helper()
		if n.MTU == 1500 {
			if v.HasValue() {
				t.Errorf("%s: mtu %v set on a 1500 network", what, v)
			}
		} else if !v.IsNumber() || v.NumberValue() != float64(n.MTU) {
			t.Errorf("%s: mtu = %v, want %d", what, v, n.MTU)
		}
	}
	for _, vm := range m.ofType("proxmoxve:VM/virtualMachine:VirtualMachine") {
		nic := vm.Inputs["networkDevices"].ArrayValue()[0].ObjectValue()
		if got := nic["bridge"].StringValue(); got != n.Bridge {
			t.Errorf("%s is on bridge %s, want %s", vm.Name, got, n.Bridge)
		}
		wantMTU(vm.Name, nic["mtu"])
	}
	ct := m.named(t, stack+"-router-ct")
	internal := ct.Inputs["networkInterfaces"].ArrayValue()[1].ObjectValue()
	if got := internal["bridge"].StringValue(); got != n.Bridge {
		t.Errorf("the router's internal NIC is on %s, want %s", got, n.Bridge)
	}
	wantMTU("the router's internal NIC", internal["mtu"])
	for _, rel := range m.ofType("kubernetes:helm.sh/v3:Release") {
		wantMTU(rel.Name+" values", rel.Inputs["values"].ObjectValue()["MTU"])
	}
}

// Every SSH connection SDA makes pins the host key of the Proxmox node it
// reaches: the router's commands (packages, configuration, each host's
// entries) and prod's SDN command. With the deliberate opt-out none is
// pinned (config.Warnings, tested in config, warns about it).
func TestHostKeysReachEveryConnection(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			setStackConfig(t, stack, nil)
			c, _ := loadWith(t, stack, nil)
			m, err := run(t, stack, stacks.Program)
			if err != nil {
				t.Fatal(err)
			}
			keyOf := map[string]string{}
			for _, n := range c.Proxmox.Nodes {
				keyOf[n.SSHHost] = testHostKey(t, n.Name)
			}
			cmds := m.ofType("command:remote:Command")
			if len(cmds) < 3 {
				t.Fatalf("%d remote commands, want at least the router's three", len(cmds))
			}
			for _, cmd := range cmds {
				conn := connectionOf(cmd)
				host := conn["host"].StringValue()
				if got := conn["hostKey"]; !got.IsString() || got.StringValue() != keyOf[host] || keyOf[host] == "" {
					t.Errorf("%s connects to %s with hostKey %v, want that node's pinned key", cmd.Name, host, got)
				}
			}
			// The Proxmox provider's disk import: each node's key is
			// pinned in known_hosts before a VM of that node is created.
			pins := map[string]registered{}
			for _, pin := range m.ofType("sda:index:KnownHost") {
				host := pin.Inputs["host"].StringValue()
				if pin.Inputs["hostKey"].StringValue() != keyOf[host] || keyOf[host] == "" {
					t.Errorf("%s pins %v for %s, want that node's key", pin.Name, pin.Inputs["hostKey"], host)
				}
				pins[strings.TrimPrefix(pin.Name, c.Cluster.Name+"-known-host-")] = pin
			}
			for _, vm := range m.ofType("proxmoxve:VM/virtualMachine:VirtualMachine") {
				pin, ok := pins[vm.Inputs["nodeName"].StringValue()]
				if !ok || !slices.Contains(vm.Deps, pin.URN) {
					t.Errorf("%s on %s does not wait for its node's host-key pin (pins: %d)", vm.Name, vm.Inputs["nodeName"].StringValue(), len(pins))
				}
			}
		})
	}
	t.Run("opt-out", func(t *testing.T) {
		var px map[string]any
		files, _ := config.StackFiles(repoRoot, "dev")
		raw, _ := files("sda:proxmox")
		_ = json.Unmarshal([]byte(raw), &px)
		px["insecureIgnoreHostKeys"] = true
		for _, n := range px["nodes"].([]any) {
			delete(n.(map[string]any), "sshHostKey")
		}
		optOut, _ := json.Marshal(px)
		setStackConfig(t, "dev", map[string]string{"sda:proxmox": string(optOut)})
		m, err := run(t, "dev", stacks.Program)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range m.ofType("command:remote:Command") {
			if got := connectionOf(cmd)["hostKey"]; got.IsString() {
				t.Errorf("%s pins %v although the stack opted out", cmd.Name, got)
			}
		}
	})
}

// connectionOf is a remote command's connection (secret when it carries a key).
func connectionOf(cmd registered) resource.PropertyMap {
	conn := cmd.Inputs["connection"]
	if conn.IsSecret() {
		conn = conn.SecretValue().Element
	}
	return conn.ObjectValue()
}
