package render

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/types/v1alpha1"

	"github.com/sda-platform/sda/components/overlay"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks/inputs"
)

func loadStack(t *testing.T, stack string) config.Config {
	t.Helper()
	c, _, err := config.LoadStack("../../testdata/stacks", stack)
	if err != nil {
		t.Fatalf("loading stack %s: %v", stack, err)
	}
	return c
}

func resolve(t *testing.T, c config.Config) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := config.Resolve(c)
	if err != nil {
		t.Fatalf("variant does not resolve: %v", err)
	}
	return c, p
}

func boolPtr(b bool) *bool { return &b }

// variants covers both stacks with both CNIs and both disk interfaces, plus
// Cilium without kube-proxy replacement and an older Talos (legacy hostname).
func variants(t *testing.T) map[string]config.Config {
	dev, prod := loadStack(t, "dev"), loadStack(t, "prod")
	devCilium := dev
	devCilium.Cluster.CNI = config.CNICilium
	devCilium.Nodes.DiskInterface = config.DiskVirtIO
	prodFlannel := prod
	prodFlannel.Cluster.CNI = config.CNIFlannel
	prodFlannel.Nodes.DiskInterface = config.DiskVirtIO
	prodKeepProxy := prod
	prodKeepProxy.Cluster.Cilium.KubeProxyReplacement = boolPtr(false)
	devTalos111 := dev
	devTalos111.Cluster.TalosVersion = "v1.11.5"
	devTalos111.Cluster.KubernetesVersion = "v1.34.1"
	return map[string]config.Config{
		"dev (flannel, scsi)":               dev,
		"dev with cilium on virtio":         devCilium,
		"prod (cilium, VIP, API forwarded)": prod,
		"prod with flannel on virtio":       prodFlannel,
		"prod cilium keeping kube-proxy":    prodKeepProxy,
		"dev on Talos 1.11":                 devTalos111,
	}
}

// Every planned machine gets a configuration Talos itself accepts in strict
// mode, and that configuration carries what SDA promises.
func TestMachines(t *testing.T) {
	for name, c := range variants(t) {
		t.Run(name, func(t *testing.T) {
			c, p := resolve(t, c)
			machines, err := Machines(c, p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(machines), len(p.Machines()); got != want {
				t.Fatalf("%d machines rendered, want %d", got, want)
			}
			schematicID, err := talospatch.SchematicID(talospatch.SchematicYAML(c.Cluster.Extensions))
			if err != nil {
				t.Fatal(err)
			}
			wantImage := "factory.talos.dev/nocloud-installer/" + schematicID + ":" + c.Cluster.TalosVersion
			wantDisk := map[string]string{config.DiskSCSI: "/dev/sda", config.DiskVirtIO: "/dev/vda"}[c.Nodes.DiskInterface]
			for _, rm := range machines {
				checkMachine(t, c, p, rm, wantImage, wantDisk)
			}
		})
	}
}

func checkMachine(t *testing.T, c config.Config, p config.Plan, rm Machine, wantImage, wantDisk string) {
	t.Helper()
	m := rm.Machine
	cfg, err := configloader.NewFromBytes(rm.Config)
	if err != nil {
		t.Fatalf("%s: rendered config does not load back: %v", m.Hostname, err)
	}
	// What is written must itself pass Talos's validator, not only what was
	// validated before redaction.
	if err := Validate(cfg); err != nil {
		t.Errorf("%s: written config: %v", m.Hostname, err)
	}
	raw := cfg.RawV1Alpha1()
	wantType := map[config.Role]string{config.RoleControlPlane: "controlplane", config.RoleWorker: "worker"}[m.Role]
	if got := cfg.Machine().Type().String(); got != wantType {
		t.Errorf("%s: machine type %s, want %s", m.Hostname, got, wantType)
	}
	if got := cfg.NetworkHostnameConfig().Hostname(); got != m.Hostname {
		t.Errorf("%s: hostname %q", m.Hostname, got)
	}
	if got := cfg.Machine().Install().Disk(); got != wantDisk {
		t.Errorf("%s: install disk %s, want %s (diskInterface %s)", m.Hostname, got, wantDisk, c.Nodes.DiskInterface)
	}
	if got := cfg.Machine().Install().Image(); got != wantImage {
		t.Errorf("%s: installer %s, want %s", m.Hostname, got, wantImage)
	}

	devices := cfg.Machine().Network().Devices()
	if len(devices) != 1 {
		t.Fatalf("%s: %d network devices, want exactly the one selected by MAC", m.Hostname, len(devices))
	}
	dev := devices[0]
	if got := dev.Selector().HardwareAddress(); got != strings.ToLower(m.MAC) {
		t.Errorf("%s: interface selected by %q, want MAC %s in lowercase", m.Hostname, got, m.MAC)
	}
	if got, want := dev.Addresses(), []string{m.Address.String() + "/" + strconv.Itoa(p.Internal.Bits())}; !slices.Equal(got, want) {
		t.Errorf("%s: addresses %v, want %v", m.Hostname, got, want)
	}
	if r := dev.Routes(); len(r) != 1 || r[0].Network() != "0.0.0.0/0" || r[0].Gateway() != p.RouterInternal.String() {
		t.Errorf("%s: routes %+v, want only a default route via the router %s", m.Hostname, r, p.RouterInternal)
	}
	if dev.DHCP() {
		t.Errorf("%s: DHCP on the static interface", m.Hostname)
	}
	vip := ""
	if v := dev.VIPConfig(); v != nil {
		vip = v.IP()
	}
	switch {
	case m.Role == config.RoleControlPlane && p.VIP.IsValid():
		if vip != p.VIP.String() {
			t.Errorf("%s: control plane VIP %q, want %s", m.Hostname, vip, p.VIP)
		}
	default:
		if vip != "" {
			t.Errorf("%s: %s carries VIP %s; only control planes may", m.Hostname, m.Role, vip)
		}
	}
	if got := raw.MachineConfig.MachineNetwork.NameServers; !slices.Equal(got, []string{p.RouterInternal.String()}) {
		t.Errorf("%s: nameservers %v, want the router", m.Hostname, got)
	}

	kp := cfg.Machine().Features().KubePrism()
	if !kp.Enabled() || kp.Port() != overlay.KubePrismPort {
		t.Errorf("%s: KubePrism enabled=%v port=%d, want on at %d", m.Hostname, kp.Enabled(), kp.Port(), overlay.KubePrismPort)
	}

	cni, proxy := cfg.Cluster().Network().CNI().Name(), cfg.Cluster().Proxy().Enabled()
	switch {
	case c.Cluster.CNI == config.CNIFlannel:
		if cni != "flannel" || !proxy {
			t.Errorf("%s: flannel stack got cni %q, kube-proxy %v; want Talos's flannel with kube-proxy", m.Hostname, cni, proxy)
		}
	case c.Cluster.Cilium.KubeProxyReplacementEnabled():
		if cni != "none" || proxy {
			t.Errorf("%s: cilium stack got cni %q, kube-proxy %v; want none and kube-proxy disabled", m.Hostname, cni, proxy)
		}
	default:
		if cni != "none" || !proxy {
			t.Errorf("%s: cilium without replacement got cni %q, kube-proxy %v; want none with kube-proxy", m.Hostname, cni, proxy)
		}
	}

	sans := raw.ClusterConfig.APIServerConfig.CertSANs
	if !slices.Contains(sans, p.KubernetesAPIAddress().String()) {
		t.Errorf("%s: API server certSANs %v lack the API address %s", m.Hostname, sans, p.KubernetesAPIAddress())
	}
	forwarded := inputs.ForwardsKubernetesAPI(c, p)
	if slices.Contains(sans, p.RouterExternal.String()) != forwarded {
		t.Errorf("%s: certSANs %v: router external %s present should be %v (6443 forwarded)", m.Hostname, sans, p.RouterExternal, forwarded)
	}
	if got := cfg.Cluster().Endpoint().String(); got != p.KubernetesEndpoint() {
		t.Errorf("%s: cluster endpoint %s, want %s", m.Hostname, got, p.KubernetesEndpoint())
	}

	// The throwaway keys never reach disk.
	// (Workers carry no CA key at all.)
	if key := string(raw.MachineConfig.MachineCA.Key); (key != Redacted && key != "") || raw.MachineConfig.MachineToken != Redacted {
		t.Errorf("%s: machine CA key or token not redacted", m.Hostname)
	}
	if m.Role == config.RoleControlPlane && string(raw.ClusterConfig.ClusterCA.Key) != Redacted {
		t.Errorf("%s: Kubernetes CA key not redacted", m.Hostname)
	}
	if strings.Contains(string(rm.Config), "PRIVATE KEY") {
		t.Errorf("%s: a private key is in the written config", m.Hostname)
	}
}

// The stack's patches, named and in order: SDA's cluster patches, the
// user's, the CNI's, then the node's. The names are what a failing patch is
// reported by; tests/patches_test.go checks that TalosCluster hands the
// Talos provider this very list.
func TestPatchOrder(t *testing.T) {
	prod := loadStack(t, "prod")
	prod.Cluster.Patches = []string{"machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n"}
	dev := loadStack(t, "dev")
	dev.Cluster.Workers = 0
	for _, tc := range []struct {
		name string
		c    config.Config
		want []string
	}{
		{"prod with a user patch", prod, []string{"sda:kubeprism", "sda:apiserver-certsans", "sda:kubernetes-networks",
			"sda:cluster.patches[0]", "sda:cni-cilium", "sda:hostname", "sda:install", "sda:network"}},
		{"dev without workers", dev, []string{"sda:kubeprism", "sda:apiserver-certsans", "sda:kubernetes-networks",
			"sda:schedule-on-control-planes", "sda:hostname", "sda:install", "sda:network"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := resolve(t, tc.c)
			var sources []string
			for _, patch := range Patches(c, p, p.ControlPlanes[0], "img") {
				sources = append(sources, patch.Source)
			}
			if !slices.Equal(sources, tc.want) {
				t.Errorf("patch sources %v, want %v", sources, tc.want)
			}
		})
	}
}

// A user's cluster.patches entry that Talos refuses stops the render with
// Talos's own message, the machine and the offending patch named.
func TestInvalidUserPatch(t *testing.T) {
	cases := []struct {
		name  string
		patch string
		want  []string
	}{
		{"unknown field", "machine:\n  instal:\n    disk: /dev/sdb\n",
			[]string{"machine dev-cp1", "sda:cluster.patches[0]", "does not load", "instal"}},
		{"address that is not an address", "machine:\n  network:\n    interfaces:\n      - interface: eth1\n        addresses: [not-an-address]\n",
			[]string{"machine dev-cp1", "Talos rejects the configuration", "not-an-address"}},
		{"bad install disk", "machine:\n  install:\n    disk: \"\"\n    diskSelector: {size: \">= nonsense\"}\n",
			[]string{"machine dev-cp1", "sda:cluster.patches[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := loadStack(t, "dev")
			c.Cluster.Patches = []string{tc.patch}
			c, p := resolve(t, c)
			_, err := Machines(c, p)
			if err == nil {
				t.Fatal("render accepted an invalid patch")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A valid user patch lands in the final configuration, after SDA's own.
func TestUserPatchApplied(t *testing.T) {
	c := loadStack(t, "dev")
	c.Cluster.Patches = []string{"machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n"}
	c, p := resolve(t, c)
	machines, err := Machines(c, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, rm := range machines {
		cfg, err := configloader.NewFromBytes(rm.Config)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Machine().Sysctls()["vm.max_map_count"]; got != "262144" {
			t.Errorf("%s: user sysctl = %q", rm.Machine.Hostname, got)
		}
	}
}

// The validator must be able to fail: a config without install instructions
// is invalid for a VM that installs to disk.
func TestValidateRejects(t *testing.T) {
	c, p := resolve(t, loadStack(t, "dev"))
	machines, err := Machines(c, p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configloader.NewFromBytes(machines[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := cfg.PatchV1Alpha1(func(raw *v1alpha1.Config) error {
		raw.MachineConfig.MachineInstall = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(broken); err == nil || !strings.Contains(err.Error(), "install instructions are required") {
		t.Errorf("Validate = %v, want Talos's install-required error", err)
	}
}
