package tests

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/stacks"
	"github.com/sda-platform/sda/stacks/config"
)

// The whole program, configuration to resources, for the repo's stacks:
// what is registered, how many, under which parent, in which order.
func TestStackResources(t *testing.T) {
	cases := []struct {
		stack string
		want  map[string]int
		// invokes: role configurations, talosconfig, health checks.
		getConfigs, healthChecks int
	}{
		{"dev", map[string]int{
			"sda:index:InternalNetwork":                           1,
			"sda:index:RouterLXC":                                 1,
			"sda:index:TalosCluster":                              1,
			"sda:index:TalosNode":                                 2,
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
		}, 2, 2},
		{"prod", map[string]int{
			"sda:index:InternalNetwork":                           1,
			"sda:index:RouterLXC":                                 1,
			"sda:index:TalosCluster":                              1,
			"sda:index:TalosNode":                                 6,
			"sda:index:OverlayNetwork":                            1,
			"proxmoxve:Network/networkBridge:NetworkBridge":       3, // one per Proxmox node
			"proxmoxve:Download/file:File":                        4, // template + an image per node
			"proxmoxve:CT/container:Container":                    1,
			"proxmoxve:VM/virtualMachine:VirtualMachine":          6,
			"command:remote:Command":                              8, // 2 + 6 nodes
			"talos:machine/secrets:Secrets":                       1,
			"talos:imageFactory/schematic:Schematic":              1,
			"talos:machine/configurationApply:ConfigurationApply": 6,
			"talos:machine/bootstrap:Bootstrap":                   1,
			"talos:cluster/kubeconfig:Kubeconfig":                 1,
			"pulumi:providers:kubernetes":                         1,
			"kubernetes:helm.sh/v3:Release":                       1,
		}, 2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.stack, func(t *testing.T) {
			setStackConfig(t, tc.stack, nil)
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
	spec, err := routerfiles.FromConfig(c, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Hosts) != len(p.Machines()) {
		t.Fatalf("%d router hosts for %d machines", len(spec.Hosts), len(p.Machines()))
	}
	for i, h := range spec.Hosts {
		if h.Name != p.Machines()[i].Hostname {
			t.Errorf("router host %d is %s, want %s", i, h.Name, p.Machines()[i].Hostname)
		}
	}
	checkHostCommands(t, m, stack+"-router", p.RouterVMID, spec.Hosts)
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
		if r.Type == "pulumi:pulumi:Stack" {
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
	dependsOn(stack+"-router-config", stack+"-router-packages")
	dependsOn(stack+"-router-packages", stack+"-router-ct")
	for _, vm := range m.ofType("proxmoxve:VM/virtualMachine:VirtualMachine") {
		node := vm.Inputs["nodeName"].StringValue()
		dependsOn(vm.Name, fmt.Sprintf("%s-image-%s", stack, node))
		dependsOn(vm.Name, fmt.Sprintf("%s-net-%s", stack, node))
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
		{"missing cluster section",
			map[string]string{"sda:cluster": ""},
			[]string{"sda:cluster.name", "sda:cluster.controlPlanes"}},
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
