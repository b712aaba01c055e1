package simulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

// The diff decides update versus replace the way the real providers do;
// scaling and patching depend on it never replacing a VM by accident.
func TestDiffReplacesWhereTheProviderDoes(t *testing.T) {
	vm := map[string]any{
		"nodeName": "pve", "vmId": 8011.0,
		"cpu":   map[string]any{"cores": 2.0},
		"disks": []any{map[string]any{"interface": "scsi0", "fileId": "local:iso/a.img", "size": 10.0}},
	}
	with := func(path string, v any) map[string]any {
		out := normalise(vm).(map[string]any)
		switch path {
		case "cpu.cores":
			out["cpu"].(map[string]any)["cores"] = v
		case "disks[0].fileId":
			out["disks"].([]any)[0].(map[string]any)["fileId"] = v
		case "disks[0].interface":
			out["disks"].([]any)[0].(map[string]any)["interface"] = v
		case "disks[0].size":
			out["disks"].([]any)[0].(map[string]any)["size"] = v
		default:
			out[path] = v
		}
		return out
	}
	kinds := map[string]*kind{}
	ks, _ := talosKinds()
	for _, k := range append(append(proxmoxKinds(), ks...), commandKinds()...) {
		kinds[k.token] = k
	}
	apply := map[string]any{"node": "10.0.0.11", "configPatches": []any{"a: 1"}, "machineConfigurationInput": "x"}
	cases := []struct {
		name     string
		token    string
		olds     map[string]any
		news     map[string]any
		changes  pulumirpc.DiffResponse_DiffChanges
		replaces []string
	}{
		{"identical", TokenVM, vm, with("nodeName", "pve"), pulumirpc.DiffResponse_DIFF_NONE, nil},
		{"cores update in place", TokenVM, vm, with("cpu.cores", 4.0), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"disk size updates in place", TokenVM, vm, with("disks[0].size", 20.0), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"another node replaces", TokenVM, vm, with("nodeName", "pve2"), pulumirpc.DiffResponse_DIFF_SOME, []string{"nodeName"}},
		{"another VM ID replaces", TokenVM, vm, with("vmId", 8012.0), pulumirpc.DiffResponse_DIFF_SOME, []string{"vmId"}},
		{"another boot image replaces", TokenVM, vm, with("disks[0].fileId", "local:iso/b.img"), pulumirpc.DiffResponse_DIFF_SOME, []string{"disks"}},
		{"unknown during preview is a change", TokenVM, vm, with("cpu.cores", unknownMarker{}), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"another disk interface updates (then fails: disks cannot be removed)", TokenVM, vm, with("disks[0].interface", "virtio0"), pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"another node with migrate updates", TokenVM, with("migrate", true), func() map[string]any { m := with("migrate", true); m["nodeName"] = "pve2"; return m }(),
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"container disk size replaces", TokenContainer, map[string]any{"disk": map[string]any{"size": 4.0}}, map[string]any{"disk": map[string]any{"size": 8.0}},
			pulumirpc.DiffResponse_DIFF_SOME, []string{"disk"}},
		{"bridge on another node updates", TokenBridge, map[string]any{"nodeName": "pve", "name": "vmbr1"}, map[string]any{"nodeName": "pve2", "name": "vmbr1"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"download decompression updates", TokenDownload, map[string]any{"url": "https://e.test/a.img"}, map[string]any{"url": "https://e.test/a.img", "decompressionAlgorithm": "zst"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"new patch updates the apply", TokenApply, apply, map[string]any{"node": "10.0.0.11", "configPatches": []any{"a: 2"}, "machineConfigurationInput": "x"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		// terraform-provider-talos v0.10.1: no RequiresReplace on the apply.
		{"another node updates the apply in place", TokenApply, apply, map[string]any{"node": "10.0.0.12", "configPatches": []any{"a: 1"}, "machineConfigurationInput": "x"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		// talos_machine_secrets_resource.go:536: only a downgrade replaces.
		{"a talos upgrade updates the secrets in place", TokenSecrets, map[string]any{"talosVersion": "v1.11.0"}, map[string]any{"talosVersion": "v1.12.0"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
		{"a talos downgrade replaces the secrets", TokenSecrets, map[string]any{"talosVersion": "v1.12.0"}, map[string]any{"talosVersion": "v1.11.0"},
			pulumirpc.DiffResponse_DIFF_SOME, []string{"talosVersion"}},
		{"triggers replace a command", TokenRemoteCommand, map[string]any{"create": "a", "triggers": []any{"1"}}, map[string]any{"create": "a", "triggers": []any{"2"}},
			pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}},
		{"a new script updates a command", TokenRemoteCommand, map[string]any{"create": "a"}, map[string]any{"create": "b"},
			pulumirpc.DiffResponse_DIFF_SOME, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := (*Server)(nil).diffAll(kinds[c.token], "", "", nil, c.olds, c.news)
			if got.Changes != c.changes {
				t.Errorf("changes = %v, want %v (diffs %v)", got.Changes, c.changes, got.Diffs)
			}
			if strings.Join(got.Replaces, ",") != strings.Join(c.replaces, ",") {
				t.Errorf("replaces = %v, want %v", got.Replaces, c.replaces)
			}
		})
	}
}

// newTestServer is a simulated provider on a fresh simulation directory
// with one or two Proxmox nodes.
func newTestServer(t *testing.T, name string, w World) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := WriteWorld(dir, w); err != nil {
		t.Fatal(err)
	}
	s, err := New(name, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prepared runs what Server runs before the state lock for method (the
// kind's prepare, then its exec step) and returns the props to hand on.
func prepared(s *Server, k *kind, method string, v map[string]any) (Props, error) {
	in := Props{Values: normalise(v).(map[string]any)}
	var err error
	if k.prepare != nil {
		if in.Prepared, err = k.prepare(in.Values); err != nil {
			return in, err
		}
	}
	if k.exec != nil {
		in.Prepared, err = k.exec(context.Background(), s, method, in.Values)
	}
	return in, err
}

// create runs a kind's create in one transaction, as Server.Create does.
func create(t *testing.T, s *Server, token, name string, v map[string]any) (string, map[string]any, error) {
	t.Helper()
	k := s.kinds[token]
	in, err := prepared(s, k, "create", v)
	if err != nil {
		return "", nil, err
	}
	var id string
	var outs map[string]any
	err = s.Store.Update(func(tx *Tx) error {
		var err error
		id, outs, err = k.create(s, tx, name, in)
		if err == nil {
			tx.State.Objects[objectKey(name, id)] = &Object{URN: name, Type: token, ID: id, Inputs: in.Values, Outputs: outs}
		}
		return err
	})
	return id, outs, err
}

func vmArgs(node string, vmid int, address, bridge, fileID string, cores, memory int) map[string]any {
	return map[string]any{
		"nodeName": node, "vmId": vmid,
		"cpu":            map[string]any{"cores": cores},
		"memory":         map[string]any{"dedicated": memory},
		"disks":          []any{map[string]any{"interface": "scsi0", "datastoreId": "local-lvm", "fileId": fileID, "size": 10}},
		"networkDevices": []any{map[string]any{"bridge": bridge, "macAddress": "02:00:00:00:00:01"}},
		"initialization": map[string]any{"datastoreId": "local-lvm",
			"ipConfigs": []any{map[string]any{"ipv4": map[string]any{"address": address + "/24", "gateway": "10.0.0.1"}}}},
	}
}

// Proxmox refuses what a real cluster refuses: missing bridges, files and
// datastores, duplicate VM IDs, VMs bigger than their node.
func TestProxmoxAdmission(t *testing.T) {
	s := newTestServer(t, "proxmoxve", DefaultWorld(WorldNode{Name: "pve1", Cores: 8, MemoryMiB: 8192}, WorldNode{Name: "pve2"}))
	// Disks with a fileId are imported over SSH: the provider needs a login.
	s.config = map[string]any{"apiToken": "sda@pve!t=x", "ssh": map[string]any{"username": "root", "agent": true}}
	if _, _, err := create(t, s, TokenBridge, "br", map[string]any{"nodeName": "pve1", "name": "vmbr1"}); err != nil {
		t.Fatal(err)
	}
	img, _, err := create(t, s, TokenDownload, "img", map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
		"url": "https://factory.talos.dev/image/x/v1.12.0/nocloud-amd64.raw.zst", "fileName": "talos.img", "decompressionAlgorithm": "zst"})
	if err != nil {
		t.Fatal(err)
	}
	if img != "local:iso/talos.img" {
		t.Fatalf("file ID = %q", img)
	}
	if _, _, err := create(t, s, TokenVM, "vm1", vmArgs("pve1", 8011, "10.0.0.11", "vmbr1", img, 2, 4096)); err != nil {
		t.Fatalf("a valid VM was refused: %v", err)
	}
	cases := []struct {
		name, token string
		args        map[string]any
		want        string
	}{
		{"duplicate VM ID", TokenVM, vmArgs("pve2", 8011, "10.0.0.12", "vmbr0", "", 2, 2048), "VM ID 8011 already exists"},
		{"bridge missing on node", TokenVM, vmArgs("pve2", 8012, "10.0.0.12", "vmbr1", "", 2, 2048), `bridge "vmbr1" does not exist on node "pve2"`},
		{"image only on another node", TokenVM, vmArgs("pve2", 8012, "10.0.0.12", "vmbr0", img, 2, 2048), "does not exist on node \"pve2\""},
		{"more cores than the node", TokenVM, vmArgs("pve1", 8012, "10.0.0.12", "vmbr1", img, 16, 2048), "node \"pve1\" has only 8"},
		{"memory beyond what is left", TokenVM, vmArgs("pve1", 8012, "10.0.0.12", "vmbr1", img, 2, 6144), "has 4096 MiB of 8192 MiB left"},
		{"address already used", TokenVM, vmArgs("pve1", 8012, "10.0.0.11", "vmbr1", img, 2, 1024), "address 10.0.0.11 is already configured"},
		{"unknown node", TokenVM, vmArgs("pve9", 8012, "10.0.0.12", "vmbr0", "", 2, 1024), `node "pve9" does not exist`},
		{"iso needs .img or .iso", TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
			"url": "https://example.test/nocloud-amd64.raw.xz"}, "(filename: wrong file extension)"},
		{"xz is not a Proxmox decompression", TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
			"url": "https://example.test/a.raw.xz", "fileName": "a.img", "decompressionAlgorithm": "xz"}, `value must be one of: ["\"gz\"" "\"lzo\"" "\"zst\"" "\"bz2\""], got: "xz"`},
		{"disk store rejects templates", TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local-lvm", "contentType": "vztmpl",
			"url": "https://example.test/debian.tar.zst"}, "storage 'local-lvm' is not configured for content-type 'vztmpl'"},
		{"same file twice", TokenDownload, map[string]any{"nodeName": "pve1", "datastoreId": "local", "contentType": "iso",
			"url": "https://example.test/other.img", "fileName": "talos.img"}, "already exists"},
		{"bridge twice", TokenBridge, map[string]any{"nodeName": "pve1", "name": "vmbr1"}, "already exists"},
		{"container on a store without rootdir", TokenContainer, map[string]any{"nodeName": "pve1", "vmId": 8001,
			"disk": map[string]any{"datastoreId": "local"}}, `"local" on node "pve1" does not accept content type "rootdir"`},
		{"container without template", TokenContainer, map[string]any{"nodeName": "pve1", "vmId": 8001, "disk": map[string]any{"datastoreId": "local-lvm"},
			"operatingSystem": map[string]any{"templateFileId": "local:vztmpl/missing.tar.zst"}}, "template local:vztmpl/missing.tar.zst does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := create(t, s, c.token, "x-"+c.name, c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
	st, _ := ReadState(s.Store.Dir)
	if len(st.Guests) != 1 {
		t.Errorf("refused creations must leave nothing behind: %d guests", len(st.Guests))
	}
}

// The Talos lifecycle is enforced: configuration generated by Talos's own
// library, applied only to a VM that has the address, bootstrap once on a
// configured control plane, kubeconfig and health only afterwards, Helm
// only into a cluster that exists.
func TestTalosLifecycle(t *testing.T) {
	world := DefaultWorld(WorldNode{Name: "pve", SSHHost: "192.0.2.10"})
	px := newTestServer(t, "proxmoxve", world)
	talos, _ := New("talos", px.Store.Dir)
	k8s, _ := New("kubernetes", px.Store.Dir)

	_, sec, err := create(t, talos, TokenSecrets, "secrets", map[string]any{"talosVersion": "v1.12.0"})
	if err != nil {
		t.Fatal(err)
	}
	cc := sec["clientConfiguration"]
	gen := func(machineType string, patches ...string) (string, error) {
		args := normalise(map[string]any{"clusterName": "lab", "clusterEndpoint": "https://10.0.0.11:6443", "machineType": machineType,
			"machineSecrets": sec["machineSecrets"], "talosVersion": "v1.12.0", "kubernetesVersion": "v1.35.0", "configPatches": patches}).(map[string]any)
		out, err := getMachineConfiguration(talos, nil, args)
		if err != nil {
			return "", err
		}
		return out["machineConfiguration"].(string), nil
	}
	cpConfig, err := gen("controlplane", "cluster:\n  network:\n    cni:\n      name: none\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cpConfig, "clusterName: lab") || !strings.Contains(cpConfig, "https://10.0.0.11:6443") {
		t.Fatalf("generated configuration lacks the cluster name or endpoint:\n%s", cpConfig[:400])
	}
	if _, err := gen("worker", "machine:\n  notAField: true\n"); err == nil || !strings.Contains(err.Error(), "unknown keys found during decoding") {
		t.Fatalf("an invalid patch must fail with Talos's message, got %v", err)
	}
	workerConfig, _ := gen("worker")

	applyArgs := func(node, cfg string, patches ...string) map[string]any {
		return map[string]any{"node": node, "clientConfiguration": cc, "machineConfigurationInput": cfg, "configPatches": patches}
	}
	install := "machine:\n  install:\n    disk: /dev/sda\n"
	if _, _, err := create(t, talos, TokenApply, "apply-early", applyArgs("10.0.0.11", cpConfig, install)); err == nil || !strings.Contains(err.Error(), "no route to host") {
		t.Fatalf("applying before the VM exists must fail, got %v", err)
	}
	if _, _, err := create(t, talos, TokenBootstrap, "bootstrap-early", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc}); err == nil {
		t.Fatal("bootstrap before the VM and its configuration exist must fail")
	}
	for i, addr := range []string{"10.0.0.11", "10.0.0.21"} {
		if _, _, err := create(t, px, TokenVM, "vm"+addr, vmArgs("pve", 8011+i, addr, "vmbr0", "", 2, 2048)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := create(t, talos, TokenBootstrap, "bootstrap-maintenance", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc}); err == nil || !strings.Contains(err.Error(), "maintenance mode") {
		t.Fatalf("bootstrap of a node without configuration must fail as in maintenance mode, got %v", err)
	}
	// nocloud runs in cloud mode: Talos checks no install disk at apply
	// (talos v1.12.0 runtime/mode.go:54), so a wrong one is accepted.
	if _, _, err := create(t, talos, TokenApply, "apply-wrong-disk", applyArgs("10.0.0.11", cpConfig, "machine:\n  install:\n    disk: /dev/vda\n")); err != nil {
		t.Fatalf("an install disk the VM lacks is not checked in cloud mode, got %v", err)
	}
	if _, _, err := create(t, talos, TokenApply, "apply-cp", applyArgs("10.0.0.11", cpConfig, install)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := create(t, talos, TokenApply, "apply-worker", applyArgs("10.0.0.21", workerConfig, install)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := create(t, talos, TokenKubeconfig, "kc-early", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc}); err == nil || !strings.Contains(err.Error(), "not bootstrapped") {
		t.Fatalf("kubeconfig before bootstrap must fail, got %v", err)
	}
	if _, _, err := create(t, talos, TokenBootstrap, "bootstrap-worker", map[string]any{"node": "10.0.0.21", "clientConfiguration": cc}); err == nil || !strings.Contains(err.Error(), "worker") {
		t.Fatalf("bootstrap on a worker must fail, got %v", err)
	}
	if _, _, err := create(t, talos, TokenBootstrap, "bootstrap", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := create(t, talos, TokenBootstrap, "bootstrap-again", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc}); err == nil || !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatalf("a second bootstrap must fail with AlreadyExists, got %v", err)
	}

	health := normalise(map[string]any{"clientConfiguration": cc, "controlPlaneNodes": []string{"10.0.0.11"},
		"workerNodes": []string{"10.0.0.21"}, "endpoints": []string{"10.0.0.11"}}).(map[string]any)
	err = px.Store.Update(func(tx *Tx) error { _, err := getHealth(talos, tx, health); return err })
	if err == nil || !strings.Contains(err.Error(), "some nodes are not ready") {
		t.Fatalf("with cni none the Kubernetes health check must wait for a CNI, got %v", err)
	}

	_, kc, err := create(t, talos, TokenKubeconfig, "kc", map[string]any{"node": "10.0.0.11", "clientConfiguration": cc})
	if err != nil {
		t.Fatal(err)
	}
	release := map[string]any{"name": "cilium", "namespace": "kube-system", "chart": "cilium", "version": "1.18.4",
		"repositoryOpts": map[string]any{"repo": "https://helm.cilium.io/"}}
	k8s.config = map[string]any{}
	if _, _, err := create(t, k8s, TokenHelmRelease, "no-kubeconfig", release); err == nil || !strings.Contains(err.Error(), "no kubeconfig") {
		t.Fatalf("a release through a provider without kubeconfig must fail, got %v", err)
	}
	k8s.config = map[string]any{"kubeconfig": strings.Replace(kc["kubeconfigRaw"].(string), "10.0.0.11", "10.0.0.99", 1)}
	if _, _, err := create(t, k8s, TokenHelmRelease, "wrong-server", release); err == nil || !strings.Contains(err.Error(), "no route to host") {
		t.Fatalf("a kubeconfig pointing elsewhere must fail, got %v", err)
	}
	k8s.config = map[string]any{"kubeconfig": kc["kubeconfigRaw"]}
	if _, _, err := create(t, k8s, TokenHelmRelease, "cilium", release); err != nil {
		t.Fatal(err)
	}
	if err := px.Store.Update(func(tx *Tx) error { _, err := getHealth(talos, tx, health); return err }); err != nil {
		t.Fatalf("health after the CNI is installed: %v", err)
	}
}

// Remote commands run their scripts with sh on the Proxmox node of their
// SSH host; pct checks the container is there (and running for exec).
func TestRemoteCommandTargets(t *testing.T) {
	s := newTestServer(t, "command", DefaultWorld(WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, WorldNode{Name: "pve2", SSHHost: "192.0.2.12"}))
	err := s.Store.Update(func(tx *Tx) error {
		tx.State.Guests[8001] = &Guest{VMID: 8001, Kind: "lxc", Node: "pve1", Started: true}
		tx.State.Guests[8003] = &Guest{VMID: 8003, Kind: "lxc", Node: "pve1"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ host, script, want, stdout string }{
		{"192.0.2.11", "pct exec 8001 -- sh -c 'true'", "", ""},
		{"192.0.2.11", "printf '%s' 'ZWNobyBoaQ==' | base64 -d | pct exec 8001 -- sh -s && echo done", "", "done"},
		{"192.0.2.99", "pct exec 8001 -- true", "no route to host", ""},
		{"192.0.2.12", "pct exec 8001 -- true", "container 8001 is on node pve1, not pve2", ""},
		{"192.0.2.11", "pct exec 8002 -- true", "Configuration file 'nodes/pve1/lxc/8002.conf' does not exist", ""},
		{"192.0.2.11", "pct exec 8003 -- true", "container '8003' not running", ""},
		{"192.0.2.11", "pct start 8001", "simulated pct supports exec, push and pull", ""},
		{"192.0.2.11", "echo $SDA_SIM_NODE; hostname >/dev/null", "", "pve1"},
		{"192.0.2.11", "exit 3", "exit status 3", ""},
		{"192.0.2.11", "if pct exec 8002 -- true 2>/dev/null; then echo yes; else echo no; fi", "", "no"},
	}
	for _, c := range cases {
		_, outs, err := create(t, s, TokenRemoteCommand, "cmd", map[string]any{"connection": map[string]any{"host": c.host}, "create": c.script})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s on %s: %v", c.script, c.host, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s on %s: want %q, got %v", c.script, c.host, c.want, err)
		case c.want == "" && c.stdout != "" && outs["stdout"] != c.stdout:
			t.Errorf("%s on %s: stdout %q, want %q", c.script, c.host, outs["stdout"], c.stdout)
		}
	}
}

// An injected failure fires on exactly the configured call, once; the call
// log records every call with its error.
func TestFailOnceAndCallLog(t *testing.T) {
	s := newTestServer(t, "proxmoxve", DefaultWorld(WorldNode{Name: "pve"}))
	if err := WriteFaults(s.Store.Dir, Faults{FailOnce: []FailOnce{{Type: TokenBridge, Method: "Create", Ordinal: 2}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var errs []string
	for i, name := range []string{"vmbr1", "vmbr2", "vmbr2", "vmbr3"} {
		props, _ := structpb.NewStruct(map[string]any{"nodeName": "pve", "name": name})
		_, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: "urn:pulumi:s::p::" + TokenBridge + "::b" + name + string(rune('a'+i)), Type: TokenBridge, Properties: props})
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			errs = append(errs, "")
		}
	}
	if errs[0] != "" || !strings.Contains(errs[1], "simulated failure") || errs[2] != "" || errs[3] != "" {
		t.Fatalf("want only the second call to fail (and the retry to succeed): %q", errs)
	}
	calls, err := ReadCalls(s.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 || calls[1].Error == "" || calls[2].Error != "" {
		t.Fatalf("call log: %+v", calls)
	}
}

// Secrets cross the wire wrapped, in both directions, and the keys that
// held a secret stay secret in the outputs.
func TestSecretWrapping(t *testing.T) {
	in, _ := structpb.NewStruct(map[string]any{
		"plain":  "a",
		"token":  map[string]any{sig.Key: sig.Secret, "value": "s3cret"},
		"nested": map[string]any{"key": map[string]any{sig.Key: sig.Secret, "value": "k"}},
		"later":  sig.UnknownStringValue,
	})
	p := fromStruct(in)
	if p.Values["token"] != "s3cret" || !p.Secret["token"] || !p.Secret["nested"] || p.Secret["plain"] {
		t.Fatalf("secrets not unwrapped and recorded: %+v", p)
	}
	if !p.Unknown["later"] {
		t.Fatalf("unknown value not recorded: %+v", p)
	}
	out, err := toStruct(p.Values, p.Secret)
	if err != nil {
		t.Fatal(err)
	}
	tok := out.AsMap()["token"].(map[string]any)
	if tok[sig.Key] != sig.Secret || tok["value"] != "s3cret" {
		t.Fatalf("secret not wrapped on the way out: %v", tok)
	}
	if out.AsMap()["later"] != sig.UnknownStringValue {
		t.Fatalf("unknown not sent back as unknown: %v", out.AsMap()["later"])
	}
}

// A remote command checks the SSH host key as pulumi-command v1.1.0 does:
// without a pin anything is accepted; with one, only the pinned key, of
// the pinned type. A refused host gets no script: it never runs.
func TestRemoteCommandHostKey(t *testing.T) {
	node, impostor := newHostKey(t), newHostKey(t)
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := ssh.NewPublicKey(&ecPriv.PublicKey)
	ecdsaPin := string(ssh.MarshalAuthorizedKey(ecPub))
	s := newTestServer(t, "command", DefaultWorld(WorldNode{Name: "pve1", SSHHost: "192.0.2.11", HostKeys: []string{node}}))
	marker := filepath.Join(t.TempDir(), "ran")
	for _, c := range []struct{ name, pin, want string }{
		{"no pin: any key is accepted", "", ""},
		{"the node's own key", node + " root@pve1", ""},
		{"an impostor's key is pinned", impostor, "ssh: host key mismatch"},
		{"a key type the node does not offer", ecdsaPin, "no common algorithm for host key"},
		{"a pin that is no key", "ssh-ed25519 garbage", "failed to parse host key"},
	} {
		_ = os.Remove(marker)
		conn := map[string]any{"host": "192.0.2.11"}
		if c.pin != "" {
			conn["hostKey"] = c.pin
		}
		_, _, err := create(t, s, TokenRemoteCommand, "cmd", map[string]any{"connection": conn, "create": "touch " + marker})
		_, statErr := os.Stat(marker)
		switch {
		case c.want == "" && (err != nil || statErr != nil):
			t.Errorf("%s: %v (script ran: %v); want it accepted and run", c.name, err, statErr == nil)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		case c.want != "" && statErr == nil:
			t.Errorf("%s: refused, yet the script ran", c.name)
		}
	}
}

// newHostKey is a fresh ed25519 host key as an authorized_keys line.
func newHostKey(t *testing.T) string {
	t.Helper()
	k, err := NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A resource moved by an alias keeps its ID and gets a new URN: the
// providers address it by ID, so an update and a delete under the new URN
// reach the same object (moved to the new URN), as on a real system.
func TestObjectsAddressedByID(t *testing.T) {
	s := newTestServer(t, "proxmoxve", DefaultWorld(WorldNode{Name: "pve"}))
	ctx := context.Background()
	old := "urn:pulumi:s::p::" + TokenBridge + "::old-name"
	moved := "urn:pulumi:s::p::" + TokenBridge + "::new-name"
	props, _ := structpb.NewStruct(map[string]any{"nodeName": "pve", "name": "vmbr7", "comment": "a"})
	res, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: old, Type: TokenBridge, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	news, _ := structpb.NewStruct(map[string]any{"nodeName": "pve", "name": "vmbr7", "comment": "b"})
	if _, err := s.Update(ctx, &pulumirpc.UpdateRequest{Urn: moved, Type: TokenBridge, Id: res.GetId(), Olds: props, OldInputs: props, News: news}); err != nil {
		t.Fatalf("update under the alias's new URN: %v", err)
	}
	st, err := ReadState(s.Store.Dir)
	noErr(t, err)
	if st.Objects[objectKey(moved, res.GetId())] == nil || st.Objects[objectKey(old, res.GetId())] != nil {
		t.Fatalf("objects after the update: %v; want the bridge under %s only", keys(st.Objects), moved)
	}
	if _, err := s.Delete(ctx, &pulumirpc.DeleteRequest{Urn: moved, Type: TokenBridge, Id: res.GetId(), Properties: news, OldInputs: news}); err != nil {
		t.Fatal(err)
	}
	st, _ = ReadState(s.Store.Dir)
	if len(st.Objects) != 0 || st.Bridges["pve/vmbr7"] {
		t.Errorf("after the delete: objects %v, bridges %v", keys(st.Objects), st.Bridges)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
