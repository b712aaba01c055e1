package talospatch

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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

// A cluster as TalosCluster would describe it: three control planes behind
// a VIP on a VXLAN network.
var prodLike = Cluster{
	TalosVersion: "v1.12.0", APIAddress: "10.20.0.10", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12",
	InstallDisk: "/dev/sda", InstallerImage: "factory.talos.dev/nocloud-installer/abc:v1.12.0",
	PrefixLen: 24, Gateway: "10.20.0.1", VIP: "10.20.0.10", MTU: 1450,
}

func TestClusterPatches(t *testing.T) {
	schedulable := prodLike
	schedulable.SchedulableControlPlanes = true
	withExtra := prodLike
	withExtra.ExtraCertSANs = []string{"192.168.1.60"}
	withExtra.Extra = []Named{{"user[0]", "machine:\n  sysctls:\n    vm.max_map_count: \"262144\"\n"}, {"cni", "cluster:\n  network:\n    cni:\n      name: none\n"}}
	defaults := prodLike
	defaults.PodCIDR, defaults.ServiceCIDR = "", ""

	cases := []struct {
		name     string
		c        Cluster
		wantSANs []any
		sources  []string
	}{
		{"the API address alone", prodLike, []any{"10.20.0.10"}, []string{"sda:kubeprism", "sda:apiserver-certsans", "sda:kubernetes-networks"}},
		{"Talos's networks by default", defaults, []any{"10.20.0.10"}, []string{"sda:kubeprism", "sda:apiserver-certsans", "sda:kubernetes-networks"}},
		{"schedulable control planes", schedulable, []any{"10.20.0.10"},
			[]string{"sda:kubeprism", "sda:apiserver-certsans", "sda:kubernetes-networks", "sda:schedule-on-control-planes"}},
		{"extra names, then the caller's patches last, in order", withExtra, []any{"10.20.0.10", "192.168.1.60"},
			[]string{"sda:kubeprism", "sda:apiserver-certsans", "sda:kubernetes-networks", "user[0]", "cni"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patches := ClusterPatches(tc.c)
			var sources []string
			for _, p := range patches {
				sources = append(sources, p.Source)
			}
			if !reflect.DeepEqual(sources, tc.sources) {
				t.Fatalf("patches %v, want %v", sources, tc.sources)
			}
			kp := decode(t, patches[0].Content)
			if dig(t, kp, "machine", "features", "kubePrism", "enabled") != true ||
				dig(t, kp, "machine", "features", "kubePrism", "port") != 7445 {
				t.Errorf("first patch does not turn KubePrism on at 7445: %s", patches[0].Content)
			}
			sans := dig(t, decode(t, patches[1].Content), "cluster", "apiServer", "certSANs")
			if !reflect.DeepEqual(sans, tc.wantSANs) {
				t.Errorf("certSANs = %v, want %v", sans, tc.wantSANs)
			}
			nets := decode(t, patches[2].Content)
			if dig(t, nets, "cluster", "network", "podSubnets", 0) != DefaultPodCIDR ||
				dig(t, nets, "cluster", "network", "serviceSubnets", 0) != DefaultServiceCIDR {
				t.Errorf("third patch does not set the pod and service networks: %s", patches[2].Content)
			}
			for i, e := range tc.c.Extra {
				if got := patches[len(patches)-len(tc.c.Extra)+i]; got != e {
					t.Errorf("extra patch %d = %v, want %v unchanged", i, got, e)
				}
			}
			if all := MachinePatches(tc.c, Node{Hostname: "n"}); !reflect.DeepEqual(all[:len(patches)], patches) || len(all) != len(patches)+3 {
				t.Errorf("MachinePatches must be the cluster's patches then the node's three")
			}
		})
	}
}

func TestNodePatches(t *testing.T) {
	virtio := prodLike
	virtio.InstallDisk = InstallDisk("virtio")
	old := prodLike
	old.TalosVersion = "v1.11.5"
	cp := Node{Hostname: "prod-cp2", MAC: "02:AB:CD:EF:01:02", Address: "10.20.0.12", ControlPlane: true}
	worker := Node{Hostname: "prod-worker1", MAC: "02:11:22:33:44:55", Address: "10.20.0.21"}

	cases := []struct {
		name     string
		c        Cluster
		n        Node
		disk     string
		wantVIP  any
		multidoc bool
	}{
		{"control plane carries the VIP", prodLike, cp, "/dev/sda", "10.20.0.10", true},
		{"worker has no VIP", prodLike, worker, "/dev/sda", nil, true},
		{"virtio disk installs to vda", virtio, worker, "/dev/vda", nil, true},
		{"Talos 1.11 takes the legacy hostname", old, cp, "/dev/sda", "10.20.0.10", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patches := NodePatches(tc.c, tc.n)
			if len(patches) != 3 || patches[0].Source != "sda:hostname" || patches[1].Source != "sda:install" || patches[2].Source != "sda:network" {
				t.Fatalf("patches %v, want hostname, install, network", patches)
			}
			host := decode(t, patches[0].Content)
			if tc.multidoc {
				if host["kind"] != "HostnameConfig" || host["hostname"] != tc.n.Hostname || host["auto"] != "off" {
					t.Errorf("hostname patch = %v, want HostnameConfig %s with auto off", host, tc.n.Hostname)
				}
			} else if got := dig(t, host, "machine", "network", "hostname"); got != tc.n.Hostname {
				t.Errorf("legacy hostname = %v, want %s", got, tc.n.Hostname)
			}

			install := decode(t, patches[1].Content)
			if got := dig(t, install, "machine", "install", "disk"); got != tc.disk {
				t.Errorf("install disk = %v, want %s", got, tc.disk)
			}
			if got := dig(t, install, "machine", "install", "image"); got != tc.c.InstallerImage {
				t.Errorf("install image = %v, want %s", got, tc.c.InstallerImage)
			}

			nw := decode(t, patches[2].Content)
			iface := dig(t, nw, "machine", "network", "interfaces", 0)
			if got, want := dig(t, iface, "deviceSelector", "hardwareAddr"), strings.ToLower(tc.n.MAC); got != want {
				t.Errorf("hardwareAddr = %v, want %s (lowercase, as Talos compares)", got, want)
			}
			if got, want := dig(t, iface, "addresses", 0), tc.n.Address+"/24"; got != want {
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
	for _, tc := range []struct {
		name string
		mtu  int
		want any // nil: no mtu key, so 1500 networks keep their configuration
	}{
		{"VXLAN's MTU is set", 1450, 1450},
		{"1500 is not written", 1500, nil},
		{"0 is the default", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := prodLike
			c.MTU = tc.mtu
			nw := decode(t, NodePatches(c, Node{Hostname: "n", MAC: "02:00:00:00:00:01", Address: "10.20.0.21"})[2].Content)
			iface := dig(t, nw, "machine", "network", "interfaces", 0).(map[string]any)
			if got := iface["mtu"]; got != tc.want {
				t.Errorf("link mtu = %v, want %v", got, tc.want)
			}
		})
	}
}
