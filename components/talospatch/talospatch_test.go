package talospatch

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sda-platform/sda/stacks/config"
)

// The schematic ID names the image Proxmox boots and the installer Talos
// upgrades to; a wrong ID silently gives a node without the guest agent.
// The vectors are Image Factory's own (its README and pkg/schematic tests).
func TestSchematicID(t *testing.T) {
	cases := []struct {
		name      string
		schematic string
		want      string
	}{
		{"qemu-guest-agent (SDA default)", SchematicYAML([]string{"siderolabs/qemu-guest-agent"}),
			"ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"},
		{"no extensions is the default schematic", SchematicYAML(nil),
			"376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"},
		{"empty JSON object", `{}`, "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"},
		{"empty lists are dropped", `customization: {"extraKernelArgs": []}`,
			"376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"},
		{"extra kernel args, JSON", `{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}`,
			"9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"},
		{"meta", `{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}`,
			"d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"},
		{"overlay", `{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}`,
			"ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"},
		{"secureboot", `{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}`,
			"fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"},
		{"hand-written YAML, other indentation", "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/qemu-guest-agent]\n",
			"ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SchematicID(tc.schematic)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("SchematicID(%q) = %s, want %s", tc.schematic, got, tc.want)
			}
		})
	}
}

// Image Factory rejects unknown fields; computing an ID for a schematic the
// factory refuses would point Proxmox at an image that does not exist.
func TestSchematicIDRejectsInvalid(t *testing.T) {
	for _, in := range []string{"customization:\n  systemExtension: {}\n", "customization: [", "foo: bar\n"} {
		if id, err := SchematicID(in); err == nil {
			t.Errorf("SchematicID(%q) = %s, want an error", in, id)
		} else if !strings.Contains(err.Error(), "invalid Image Factory schematic") {
			t.Errorf("error %q does not say what is invalid", err)
		}
	}
}

func TestSchematicYAML(t *testing.T) {
	got := SchematicYAML([]string{"siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"})
	want := "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n            - siderolabs/iscsi-tools\n"
	if got != want {
		t.Errorf("SchematicYAML = %q, want %q", got, want)
	}
}

// The installer image is written into every machine config; the boot image
// URL is what Proxmox downloads and must carry a compression Proxmox knows.
func TestImageReferences(t *testing.T) {
	id := "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
	if got, want := InstallerImage(id, "v1.12.0"), "factory.talos.dev/nocloud-installer/"+id+":v1.12.0"; got != want {
		t.Errorf("InstallerImage = %s, want %s", got, want)
	}
	url := NocloudImageURL(id, "v1.12.0")
	if want := "https://factory.talos.dev/image/" + id + "/v1.12.0/nocloud-amd64.raw.gz"; url != want {
		t.Errorf("NocloudImageURL = %s, want %s", url, want)
	}
	if !strings.HasSuffix(url, "."+NocloudImageDecompression) {
		t.Errorf("URL %s does not end in the decompression %q Proxmox is told to use", url, NocloudImageDecompression)
	}
}

func loadStack(t *testing.T, stack string) (config.Config, config.Plan) {
	t.Helper()
	c, p, err := config.LoadStack("../../testdata/stacks", stack)
	if err != nil {
		t.Fatalf("loading stack %s: %v", stack, err)
	}
	return c, p
}

func decode(t *testing.T, patch string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(patch), &m); err != nil {
		t.Fatalf("patch is not YAML: %v\n%s", err, patch)
	}
	return m
}

// dig follows a path of map keys and list indexes through a decoded patch.
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not a map: %#v", k, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at [%d]: not a list that long: %#v", k, v)
			}
			v = l[k]
		}
	}
	return v
}

func TestClusterPatches(t *testing.T) {
	dev, devPlan := loadStack(t, "dev")
	prod, prodPlan := loadStack(t, "prod")
	noWorkers := dev
	noWorkers.Cluster.Workers = 0
	noWorkers, noWorkersPlan, err := config.Resolve(noWorkers)
	if err != nil {
		t.Fatal(err)
	}
	withUser := dev
	withUser.Cluster.Patches = []string{"machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n"}
	prodNoAPIForward := prod
	prodNoAPIForward.Network.PortForwards = prod.Network.PortForwards[1:] // only https to a worker

	cases := []struct {
		name     string
		c        config.Config
		p        config.Plan
		wantSANs []any
		count    int
		last     string
	}{
		// dev: no VIP, so the API is the first control plane; nothing forwards 6443.
		{"dev", dev, devPlan, []any{"10.10.0.11"}, 3, ""},
		// prod forwards 6443 to the VIP: the router's external address must verify.
		{"prod", prod, prodPlan, []any{"10.20.0.10", "192.168.1.60"}, 3, ""},
		{"prod without an API forward", prodNoAPIForward, prodPlan, []any{"10.20.0.10"}, 3, ""},
		{"no workers makes control planes schedulable", noWorkers, noWorkersPlan, []any{"10.10.0.11"}, 4,
			"cluster:\n    allowSchedulingOnControlPlanes: true\n"},
		{"user patches come last, unchanged", withUser, devPlan, []any{"10.10.0.11"}, 4, withUser.Cluster.Patches[0]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patches := ClusterPatches(tc.c, tc.p)
			if len(patches) != tc.count {
				t.Fatalf("%d patches, want %d: %q", len(patches), tc.count, patches)
			}
			kp := decode(t, patches[0])
			if dig(t, kp, "machine", "features", "kubePrism", "enabled") != true ||
				dig(t, kp, "machine", "features", "kubePrism", "port") != 7445 {
				t.Errorf("first patch does not turn KubePrism on at 7445: %s", patches[0])
			}
			sans := dig(t, decode(t, patches[1]), "cluster", "apiServer", "certSANs")
			if !reflect.DeepEqual(sans, tc.wantSANs) {
				t.Errorf("certSANs = %v, want %v", sans, tc.wantSANs)
			}
			nets := decode(t, patches[2])
			if dig(t, nets, "cluster", "network", "podSubnets", 0) != tc.c.Cluster.PodCIDR ||
				dig(t, nets, "cluster", "network", "serviceSubnets", 0) != tc.c.Cluster.ServiceCIDR {
				t.Errorf("third patch does not set the pod and service networks %s, %s: %s", tc.c.Cluster.PodCIDR, tc.c.Cluster.ServiceCIDR, patches[2])
			}
			if tc.last != "" && patches[len(patches)-1] != tc.last {
				t.Errorf("last patch = %q, want %q", patches[len(patches)-1], tc.last)
			}
		})
	}
}

// A forward to a control plane's own address counts as publishing the API;
// a forward to 6443 on a worker does not.
func TestForwardsKubernetesAPI(t *testing.T) {
	prod, p := loadStack(t, "prod")
	cases := []struct {
		target string
		port   int
		want   bool
	}{
		{"vip", 6443, true},
		{"prod-cp2", 6443, true},
		{"10.20.0.13", 6443, true},
		{"prod-worker1", 6443, false},
		{"vip", 443, false},
	}
	for _, tc := range cases {
		c := prod
		c.Network.PortForwards = []config.PortForward{{Name: "x", Protocol: "tcp", Port: 7000, Target: tc.target, TargetPort: tc.port}}
		if got := ForwardsKubernetesAPI(c, p); got != tc.want {
			t.Errorf("forward to %s:%d: ForwardsKubernetesAPI = %v, want %v", tc.target, tc.port, got, tc.want)
		}
	}
}

func TestNodePatches(t *testing.T) {
	prod, p := loadStack(t, "prod")
	virtio := prod
	virtio.Nodes.DiskInterface = config.DiskVirtIO
	old := prod
	old.Cluster.TalosVersion = "v1.11.5"
	const image = "factory.talos.dev/nocloud-installer/abc:v1.12.0"

	cases := []struct {
		name     string
		c        config.Config
		m        config.Machine
		disk     string
		wantVIP  any
		multidoc bool
	}{
		{"control plane carries the VIP", prod, p.ControlPlanes[1], "/dev/sda", "10.20.0.10", true},
		{"worker has no VIP", prod, p.Workers[0], "/dev/sda", nil, true},
		{"virtio disk installs to vda", virtio, p.Workers[2], "/dev/vda", nil, true},
		{"Talos 1.11 takes the legacy hostname", old, p.ControlPlanes[0], "/dev/sda", "10.20.0.10", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patches := NodePatches(tc.c, p, tc.m, image)
			if len(patches) != 3 {
				t.Fatalf("%d patches, want 3", len(patches))
			}
			host := decode(t, patches[0])
			if tc.multidoc {
				if host["kind"] != "HostnameConfig" || host["hostname"] != tc.m.Hostname || host["auto"] != "off" {
					t.Errorf("hostname patch = %v, want HostnameConfig %s with auto off", host, tc.m.Hostname)
				}
			} else if got := dig(t, host, "machine", "network", "hostname"); got != tc.m.Hostname {
				t.Errorf("legacy hostname = %v, want %s", got, tc.m.Hostname)
			}

			install := decode(t, patches[1])
			if got := dig(t, install, "machine", "install", "disk"); got != tc.disk {
				t.Errorf("install disk = %v, want %s", got, tc.disk)
			}
			if got := dig(t, install, "machine", "install", "image"); got != image {
				t.Errorf("install image = %v, want %s", got, image)
			}

			nw := decode(t, patches[2])
			iface := dig(t, nw, "machine", "network", "interfaces", 0)
			if got, want := dig(t, iface, "deviceSelector", "hardwareAddr"), strings.ToLower(tc.m.MAC); got != want {
				t.Errorf("hardwareAddr = %v, want %s (lowercase, as Talos compares)", got, want)
			}
			if got, want := dig(t, iface, "addresses", 0), tc.m.Address.String()+"/24"; got != want {
				t.Errorf("address = %v, want %s", got, want)
			}
			if got := dig(t, iface, "routes", 0, "gateway"); got != "10.20.0.1" {
				t.Errorf("default route via %v, want the router 10.20.0.1", got)
			}
			if got := dig(t, iface, "routes", 0, "network"); got != "0.0.0.0/0" {
				t.Errorf("route network = %v, want 0.0.0.0/0", got)
			}
			var vip any
			if v, ok := iface.(map[string]any)["vip"]; ok {
				vip = dig(t, v, "ip")
			}
			if vip != tc.wantVIP {
				t.Errorf("vip = %v, want %v", vip, tc.wantVIP)
			}
			if got := dig(t, nw, "machine", "network", "nameservers", 0); got != "10.20.0.1" {
				t.Errorf("nameserver = %v, want the router", got)
			}
		})
	}
}

func TestMultidocNetworkConfig(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.12.0": true, "v1.12.1": true, "v1.13.0-alpha.1": true, "v2.0.0": true,
		"v1.11.5": false, "v1.9.0": false, "garbage": true,
	} {
		if got := multidocNetworkConfig(v); got != want {
			t.Errorf("multidocNetworkConfig(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestNodePatchesLinkMTU(t *testing.T) {
	prod, pp := loadStack(t, "prod")
	dev, dp := loadStack(t, "dev")
	for _, tc := range []struct {
		name string
		c    config.Config
		p    config.Plan
		want any // nil: no mtu key, so 1500 stacks keep their configuration
	}{
		{"prod on VXLAN gets the mode's MTU", prod, pp, 1450},
		{"dev on 1500 has no mtu", dev, dp, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want != nil && tc.p.Network.MTU != tc.want {
				t.Fatalf("plan MTU = %d, want %v", tc.p.Network.MTU, tc.want)
			}
			for _, m := range tc.p.Machines() {
				nw := decode(t, NodePatches(tc.c, tc.p, m, "img")[2])
				iface := dig(t, nw, "machine", "network", "interfaces", 0).(map[string]any)
				if got := iface["mtu"]; got != tc.want {
					t.Errorf("%s: link mtu = %v, want %v", m.Hostname, got, tc.want)
				}
			}
		})
	}
}
