package proxmox_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"google.golang.org/protobuf/types/known/structpb"
)

// The simulated proxmoxve provider follows the rules of the real one at the
// pinned version: pulumi-proxmoxve v6.18.1 = bpg/terraform-provider-proxmox
// v0.69.1. Every row names its rule and where upstream says so (paths
// relative to the bpg repository at v0.69.1 unless another repository is
// named). docs/simulation.md lists the same rows.

const rebootTime = 150 * time.Millisecond

type rules struct {
	t  *testing.T
	px *engine.Server
}

func urnOf(token, name string) string { return "urn:pulumi:s::p::" + token + "::" + name }

func pb(t *testing.T, v map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(engine.Normalise(v).(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r rules) create(token, name string, v map[string]any) (string, map[string]any, error) {
	resp, err := r.px.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urnOf(token, name), Type: token, Properties: pb(r.t, v)})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), resp.GetProperties().AsMap(), nil
}

func (r rules) mustCreate(token, name string, v map[string]any) string {
	r.t.Helper()
	id, _, err := r.create(token, name, v)
	if err != nil {
		r.t.Fatalf("create %s: %v", name, err)
	}
	return id
}

func (r rules) update(token, name, id string, olds, news map[string]any) (map[string]any, error) {
	resp, err := r.px.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: urnOf(token, name), Type: token, Id: id,
		OldInputs: pb(r.t, olds), News: pb(r.t, news)})
	if err != nil {
		return nil, err
	}
	return resp.GetProperties().AsMap(), nil
}

func (r rules) read(token, name, id string) (*pulumirpc.ReadResponse, error) {
	return r.px.Read(context.Background(), &pulumirpc.ReadRequest{Urn: urnOf(token, name), Type: token, Id: id})
}

func (r rules) diff(token, name, id string, oldOutputs, olds, news map[string]any) *pulumirpc.DiffResponse {
	r.t.Helper()
	if oldOutputs == nil {
		oldOutputs = olds
	}
	resp, err := r.px.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: urnOf(token, name), Type: token, Id: id,
		Olds: pb(r.t, oldOutputs), OldInputs: pb(r.t, olds), News: pb(r.t, news)})
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

func (r rules) state() *engine.State {
	r.t.Helper()
	st, err := engine.ReadState(r.px.Store.Dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// expectReplace checks a diff: a change, and exactly these replace keys.
func expectReplace(t *testing.T, d *pulumirpc.DiffResponse, replaces ...string) {
	t.Helper()
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME {
		t.Fatalf("want a change, got %v", d.GetChanges())
	}
	if strings.Join(d.GetReplaces(), ",") != strings.Join(replaces, ",") {
		t.Fatalf("replaces = %v, want %v", d.GetReplaces(), replaces)
	}
}

// clone copies a property map deeply and sets path = v ("cpu.cores").
func with(v map[string]any, path string, val any) map[string]any {
	b, _ := json.Marshal(engine.Normalise(v))
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	parts := strings.Split(path, ".")
	cur := out
	for _, p := range parts[:len(parts)-1] {
		name, idx, indexed := strings.Cut(p, "[")
		next, _ := cur[name].(map[string]any)
		if indexed {
			i := int(idx[0] - '0')
			next = cur[name].([]any)[i].(map[string]any)
		} else if next == nil {
			next = map[string]any{}
			cur[name] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = engine.Normalise(val)
	return out
}

func newRules(t *testing.T, faults engine.Faults) rules {
	t.Helper()
	px := simtest.NewTestServer(t, "proxmoxve", engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "192.0.2.10"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.11"}))
	if err := engine.WriteFaults(px.Store.Dir, faults); err != nil {
		t.Fatal(err)
	}
	px.Config = map[string]any{"endpoint": "https://192.0.2.10:8006/", "apiToken": "sda@pve!t=x",
		"ssh": map[string]any{"username": "root", "agent": true}}
	return rules{t: t, px: px}
}

const talosSchematic = "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n"

// talosImage creates a schematic with the guest agent extension and its
// Image Factory disk image on pve; it returns the file ID.
func (r rules) talosImage() string {
	r.t.Helper()
	tl, _ := simulator.New("talos", r.px.Store.Dir)
	sid, _, err := simtest.Create(r.t, tl, talos.TokenSchematic, "schematic", map[string]any{"schematic": talosSchematic})
	if err != nil {
		r.t.Fatal(err)
	}
	return r.mustCreate(proxmox.TokenDownload, "img", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "iso",
		"url": "https://factory.talos.dev/image/" + sid + "/v1.12.0/nocloud-amd64.raw.zst", "fileName": "talos.img",
		"decompressionAlgorithm": "zst"})
}

func ruleVM(vmid int, address, fileID string) map[string]any {
	return simtest.VMArgs("pve", vmid, address, "vmbr0", fileID, 2, 2048)
}

func TestProxmoxRules(t *testing.T) {
	cases := []struct {
		rule, cite string
		run        func(t *testing.T, r rules)
	}{
		// 1. Replacement paths.
		{"VM disk interface change is an update, not a replacement", "vm/disk/schema.go:84-88 (interface has no ForceNew; file_id has, :133)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "local:iso/a.img")
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, with(vm, "disks[0].interface", "virtio0")))
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, with(vm, "disks[0].fileId", "local:iso/b.img")), "disks")
			}},
		{"VM disk added with a fileId replaces, a blank one updates", "vm/disk/schema.go:133 (ForceNew file_id diffs from \"\" on a new list element)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "local:iso/a.img")
				add := func(d map[string]any) map[string]any {
					out := with(vm, "name", "x")
					delete(out, "name")
					out["disks"] = append(out["disks"].([]any), engine.Normalise(d))
					return out
				}
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, add(map[string]any{"interface": "scsi1", "size": 20})))
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, add(map[string]any{"interface": "scsi1", "fileId": "local:iso/b.img"})), "disks")
			}},
		{"VM nodeName replaces unless migrate", "vm/vm.go:1546-1554 (customdiff.ForceNewIf node_name, !migrate)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, with(vm, "nodeName", "pve2")), "nodeName")
				mig := with(vm, "migrate", true)
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, mig, with(mig, "nodeName", "pve2")))
			}},
		{"VM efiDisk block added replaces, cpu updates", "vm/vm.go:629 (efi_disk ForceNew), :4985-5055 (cpu in place)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, with(vm, "efiDisk.type", "4m")), "efiDisk")
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, with(vm, "cpu.cores", 4)))
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", "8011", nil, vm, with(vm, "initialization.userAccount.username", "talos")), "initialization")
			}},
		{"container disk.size replaces", "container/container.go:336 (disk.size ForceNew)",
			func(t *testing.T, r rules) {
				ct := map[string]any{"nodeName": "pve", "vmId": 8001, "disk": map[string]any{"datastoreId": "local-lvm", "size": 4}}
				expectReplace(t, r.diff(proxmox.TokenContainer, "ct", "8001", nil, ct, with(ct, "disk.size", 8)), "disk")
			}},
		{"container operatingSystem.type updates, templateFileId replaces", "container/container.go:758-772 (block and template_file_id ForceNew, type not)",
			func(t *testing.T, r rules) {
				ct := map[string]any{"nodeName": "pve", "vmId": 8001, "operatingSystem": map[string]any{"templateFileId": "local:vztmpl/a.tar.zst", "type": "debian"}}
				expectReplace(t, r.diff(proxmox.TokenContainer, "ct", "8001", nil, ct, with(ct, "operatingSystem.type", "alpine")))
				expectReplace(t, r.diff(proxmox.TokenContainer, "ct", "8001", nil, ct, with(ct, "operatingSystem.templateFileId", "local:vztmpl/b.tar.zst")), "operatingSystem")
			}},
		{"bridge nodeName updates, name replaces", "fwprovider/network/resource_linux_bridge.go:178-181 (node_name no RequiresReplace), :193",
			func(t *testing.T, r rules) {
				br := map[string]any{"nodeName": "pve", "name": "vmbr1"}
				expectReplace(t, r.diff(proxmox.TokenBridge, "br", "pve:vmbr1", nil, br, with(br, "nodeName", "pve2")))
				expectReplace(t, r.diff(proxmox.TokenBridge, "br", "pve:vmbr1", nil, br, with(br, "name", "vmbr2")), "name")
			}},
		{"download decompressionAlgorithm updates, url replaces", "fwprovider/resource_download_file.go:269-282 (no RequiresReplace), :255",
			func(t *testing.T, r rules) {
				dl := map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "iso", "url": "https://e.test/a.img"}
				expectReplace(t, r.diff(proxmox.TokenDownload, "dl", "local:iso/a.img", nil, dl, with(dl, "decompressionAlgorithm", "zst")))
				expectReplace(t, r.diff(proxmox.TokenDownload, "dl", "local:iso/a.img", nil, dl, with(dl, "url", "https://e.test/b.img")), "url")
			}},

		// 2. Reboots on update.
		{"VM cpu change reboots the running VM and the update waits for it", "vm/vm.go:5054 (cpu sets rebootRequired), :5599-5613 (RebootVM unless stopped)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				id := r.mustCreate(proxmox.TokenVM, "vm", vm)
				start := time.Now()
				if _, err := r.update(proxmox.TokenVM, "vm", id, vm, with(vm, "cpu.cores", 4)); err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took < rebootTime {
					t.Fatalf("update returned after %v, before the %v reboot ended", took, rebootTime)
				}
				st := r.state()
				if len(st.Reboots) != 1 || st.Reboots[0].Cause != "proxmox update: cpu.cores" || st.Reboots[0].VMID != 8011 ||
					st.Reboots[0].End.Sub(st.Reboots[0].Start) != rebootTime {
					t.Fatalf("reboots = %+v", st.Reboots)
				}
				tx := &engine.Tx{State: st}
				if until, down := tx.DownUntil(8011, st.Reboots[0].Start.Add(rebootTime/2)); !down || !until.Equal(st.Reboots[0].End) {
					t.Fatalf("DownUntil inside the reboot = %v, %v", until, down)
				}
				if _, down := tx.DownUntil(8011, st.Reboots[0].End); down {
					t.Fatal("DownUntil at the reboot's end must be false")
				}
			}},
		{"VM description, tags, onBoot change do not reboot", "vm/vm.go:4821-4834 (no rebootRequired)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				id := r.mustCreate(proxmox.TokenVM, "vm", vm)
				news := with(with(vm, "description", "d"), "onBoot", true)
				if _, err := r.update(proxmox.TokenVM, "vm", id, vm, news); err != nil {
					t.Fatal(err)
				}
				if n := len(r.state().Reboots); n != 0 {
					t.Fatalf("%d reboots, want none", n)
				}
			}},
		{"VM memory, networkDevices and initialization reboot together", "vm/vm.go:5155, :5238, :5259",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				id := r.mustCreate(proxmox.TokenVM, "vm", vm)
				news := with(with(with(vm, "memory.dedicated", 4096), "networkDevices[0].mtu", 1450), "initialization.dns.servers", []any{"10.0.0.1"})
				if _, err := r.update(proxmox.TokenVM, "vm", id, vm, news); err != nil {
					t.Fatal(err)
				}
				st := r.state()
				if len(st.Reboots) != 1 || st.Reboots[0].Cause != "proxmox update: initialization.dns, memory.dedicated, networkDevices[0].mtu" {
					t.Fatalf("reboots = %+v", st.Reboots)
				}
			}},
		{"VM stopped by the same update is not rebooted", "vm/vm.go:5373-5387 (shutdown sets rebootRequired = false)",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				id := r.mustCreate(proxmox.TokenVM, "vm", vm)
				if _, err := r.update(proxmox.TokenVM, "vm", id, vm, with(with(vm, "cpu.cores", 4), "started", false)); err != nil {
					t.Fatal(err)
				}
				if n := len(r.state().Reboots); n != 0 {
					t.Fatalf("%d reboots, want none", n)
				}
			}},
		{"container memory change reboots a started container, tags do not", "container/container.go:2860, :3101-3113",
			func(t *testing.T, r rules) {
				r.mustCreate(proxmox.TokenDownload, "tmpl", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "vztmpl", "url": "https://e.test/debian.tar.zst"})
				ct := map[string]any{"nodeName": "pve", "vmId": 8001, "disk": map[string]any{"datastoreId": "local-lvm"},
					"initialization": map[string]any{"hostname": "router"}, "operatingSystem": map[string]any{"templateFileId": "local:vztmpl/debian.tar.zst"}}
				id := r.mustCreate(proxmox.TokenContainer, "ct", ct)
				if _, err := r.update(proxmox.TokenContainer, "ct", id, ct, with(ct, "tags", []any{"a"})); err != nil {
					t.Fatal(err)
				}
				if n := len(r.state().Reboots); n != 0 {
					t.Fatalf("tags: %d reboots", n)
				}
				if _, err := r.update(proxmox.TokenContainer, "ct", id, ct, with(ct, "memory.dedicated", 1024)); err != nil {
					t.Fatal(err)
				}
				st := r.state()
				if len(st.Reboots) != 1 || st.Reboots[0].Cause != "proxmox update: memory" || st.Reboots[0].Kind != "lxc" || st.Reboots[0].Name != "router" {
					t.Fatalf("reboots = %+v", st.Reboots)
				}
			}},

		// 3. VM disks.
		{"VM disk cannot shrink", "vm/vm.go:5557-5563",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				id := r.mustCreate(proxmox.TokenVM, "vm", vm)
				_, err := r.update(proxmox.TokenVM, "vm", id, vm, with(with(vm, "disks[0].size", 5), "cpu.cores", 4))
				simtest.WantErr(t, err, "Cannot shrink local-lvm:vm-8011-disk-0 in VM 8011, it is not supported!")
				st := r.state()
				if st.Guests[8011].Cores != 4 {
					t.Fatalf("the configuration is applied before the disk check fails: cores = %d", st.Guests[8011].Cores)
				}
				if len(st.Reboots) != 0 {
					t.Fatal("the failed update must not reboot")
				}
			}},
		{"VM disk cannot be removed", "vm/vm.go:5505-5510",
			func(t *testing.T, r rules) {
				vm := ruleVM(8011, "10.0.0.11", "")
				two := with(vm, "name", "x")
				delete(two, "name")
				two["disks"] = append(two["disks"].([]any), map[string]any{"interface": "scsi1", "size": 4.0})
				id := r.mustCreate(proxmox.TokenVM, "vm", two)
				_, err := r.update(proxmox.TokenVM, "vm", id, two, vm)
				simtest.WantErr(t, err, `deletion of disks not supported. Please delete disk by hand. Old interface was "scsi1"`)
			}},
		{"VM disk interface change adds the disk (SSH import) then fails", "vm/disk/disk.go:583-593, vm/vm.go:5505-5510",
			func(t *testing.T, r rules) {
				img := r.talosImage()
				vm := ruleVM(8011, "10.0.0.11", img)
				id := r.mustCreate(proxmox.TokenVM, "vm", vm)
				news := with(vm, "disks[0].interface", "virtio0")
				expectReplace(t, r.diff(proxmox.TokenVM, "vm", id, nil, vm, news))
				_, err := r.update(proxmox.TokenVM, "vm", id, vm, news)
				simtest.WantErr(t, err, `deletion of disks not supported. Please delete disk by hand. Old interface was "scsi0"`)
				r.px.Config = map[string]any{"apiToken": "sda@pve!t=x"}
				_, err = r.update(proxmox.TokenVM, "vm", id, vm, news)
				simtest.WantErr(t, err, `creating custom disk: creating custom disk: unable to authenticate user ""`)
			}},

		// 4. Disk import over SSH.
		{"VM disk with fileId needs an SSH login: an API token alone has none", "proxmoxtf/provider/provider.go:135-143, proxmox/ssh/client.go:566, vm/disk/disk.go:348-354",
			func(t *testing.T, r rules) {
				img := r.talosImage()
				r.px.Config = map[string]any{"endpoint": "https://192.0.2.10:8006/", "apiToken": "sda@pve!t=x"}
				_, _, err := r.create(proxmox.TokenVM, "vm", ruleVM(8011, "10.0.0.11", img))
				simtest.WantErr(t, err, `creating custom disk: unable to authenticate user "" over SSH to "192.0.2.10:22"`)
				if _, _, err := r.create(proxmox.TokenVM, "blank", ruleVM(8012, "10.0.0.12", "")); err != nil {
					t.Fatalf("a VM without fileId needs no SSH: %v", err)
				}
				// Object-typed config may arrive as a JSON string.
				r.px.Config["ssh"] = `{"username":"root","agent":true,"nodes":[{"name":"pve","address":"198.51.100.7"}]}`
				if _, _, err := r.create(proxmox.TokenVM, "vm", ruleVM(8011, "10.0.0.11", img)); err != nil {
					t.Fatalf("with ssh.username: %v", err)
				}
				r.px.Config["ssh"] = `{"nodes":[{"name":"pve","address":"198.51.100.7","port":2222}]}`
				_, _, err = r.create(proxmox.TokenVM, "vm2", ruleVM(8013, "10.0.0.13", img))
				simtest.WantErr(t, err, `over SSH to "198.51.100.7:2222"`)
			}},

		// 5. Guest agent.
		{"agent enabled but not answering: create and read wait agent.timeout, then succeed without IPs", "vm/network/network.go:240-276, proxmox/nodes/vms/vms.go:524-613, vm/vm.go:4500-4510",
			func(t *testing.T, r rules) {
				img := r.talosImage()
				vm := with(with(ruleVM(8011, "10.0.0.11", img), "agent.enabled", true), "agent.timeout", "10m")
				wait := 10 * time.Minute / 5000 // AgentWaitScale 0.0002
				start := time.Now()
				id, outs, err := r.create(proxmox.TokenVM, "vm", vm)
				if err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took < wait {
					t.Fatalf("create took %v, want at least the scaled agent timeout %v (node in maintenance mode: no agent)", took, wait)
				}
				if len(outs["ipv4Addresses"].([]any)) != 0 || len(outs["macAddresses"].([]any)) != 0 {
					t.Fatalf("after an agent timeout the provider reports no addresses and no MACs: %v %v", outs["ipv4Addresses"], outs["macAddresses"])
				}
				// Configured (out of maintenance mode): the agent answers at once.
				if err := r.px.Store.Update(func(tx *engine.Tx) error {
					tx.State.Machines["10.0.0.11"] = &engine.TalosMachine{Address: "10.0.0.11", VMID: 8011}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				start = time.Now()
				resp, err := r.read(proxmox.TokenVM, "vm", id)
				if err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took >= wait {
					t.Fatalf("read with a running agent took %v", took)
				}
				ips, _ := json.Marshal(resp.GetProperties().AsMap()["ipv4Addresses"])
				if string(ips) != `[["127.0.0.1"],["10.0.0.11"]]` {
					t.Fatalf("ipv4Addresses = %s", ips)
				}
			}},
		{"agent wait is skipped for a VM that is not started", "vm/network/network.go:240 (if started), vm/vm.go:2776-2778",
			func(t *testing.T, r rules) {
				img := r.talosImage()
				vm := with(with(with(ruleVM(8011, "10.0.0.11", img), "agent.enabled", true), "agent.timeout", "10m"), "started", false)
				start := time.Now()
				r.mustCreate(proxmox.TokenVM, "vm", vm)
				if took := time.Since(start); took >= 10*time.Minute/5000 {
					t.Fatalf("create of a stopped VM waited %v for the agent", took)
				}
			}},

		// 6. Download file.
		{"download contentType is iso or vztmpl only", "fwprovider/resource_download_file.go:193-203",
			func(t *testing.T, r rules) {
				_, _, err := r.create(proxmox.TokenDownload, "dl", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "import", "url": "https://e.test/a.qcow2"})
				simtest.WantErr(t, err, `value must be one of: ["\"iso\"" "\"vztmpl\""], got: "import"`)
			}},
		{"download decompression only for iso", "pve-storage src/PVE/API2/Storage/Status.pm:899-900 (HEAD, not pinned)",
			func(t *testing.T, r rules) {
				_, _, err := r.create(proxmox.TokenDownload, "dl", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "vztmpl",
					"url": "https://e.test/a.tar.gz", "decompressionAlgorithm": "gz"})
				simtest.WantErr(t, err, "decompression not supported for vztmpl")
			}},
		{"template names follow Proxmox: .tar.bz2 and .tar allowed, .tgz refused", "pve-storage src/PVE/Storage.pm:118 ($VZTMPL_EXT_RE_1), Status.pm:843-844",
			func(t *testing.T, r rules) {
				for _, name := range []string{"a.tar.bz2", "b.tar", "c.TAR.ZST"} {
					if _, _, err := r.create(proxmox.TokenDownload, "dl-"+name, map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "vztmpl", "url": "https://e.test/" + name}); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
				}
				_, _, err := r.create(proxmox.TokenDownload, "dl-tgz", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "vztmpl", "url": "https://e.test/d.tgz"})
				simtest.WantErr(t, err, "(filename: wrong file extension)")
			}},
		{"existing file: refused unless overwriteUnmanaged", "fwprovider/resource_download_file.go:406-429",
			func(t *testing.T, r rules) {
				dl := map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "iso", "url": "https://e.test/a.img"}
				r.mustCreate(proxmox.TokenDownload, "first", dl)
				_, _, err := r.create(proxmox.TokenDownload, "second", dl)
				simtest.WantErr(t, err, "refusing to override existing file 'a.img'")
				if _, _, err := r.create(proxmox.TokenDownload, "third", with(dl, "overwriteUnmanaged", true)); err != nil {
					t.Fatal(err)
				}
			}},
		{"overwrite: after a read, a URL whose size changed replaces the file; overwrite=false ignores it", "fwprovider/resource_download_file.go:544-561 (Read), :102-131 (sizeRequiresReplaceModifier)",
			func(t *testing.T, r rules) {
				dl := map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "iso", "url": "https://e.test/a.img"}
				id, _, err := r.create(proxmox.TokenDownload, "dl", dl)
				if err != nil {
					t.Fatal(err)
				}
				if d := r.diff(proxmox.TokenDownload, "dl", id, nil, dl, dl); len(d.GetReplaces()) != 0 {
					t.Fatalf("before a read nothing is replaced: %v", d.GetReplaces())
				}
				w := engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "192.0.2.10"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.11"})
				w.URLSizes = map[string]int64{"https://e.test/a.img": 1234}
				if err := engine.WriteWorld(r.px.Store.Dir, w); err != nil {
					t.Fatal(err)
				}
				resp, err := r.read(proxmox.TokenDownload, "dl", id)
				if err != nil || resp.GetId() != id {
					t.Fatalf("read: %v %v", resp, err)
				}
				state := resp.GetProperties().AsMap()
				d := r.diff(proxmox.TokenDownload, "dl", id, state, dl, dl)
				expectReplace(t, d, "size")
				off := with(dl, "overwrite", false)
				if d := r.diff(proxmox.TokenDownload, "dl", id, state, off, off); len(d.GetReplaces()) != 0 {
					t.Fatalf("overwrite=false must not replace: %v", d.GetReplaces())
				}
			}},
		{"download read drops a file that is gone", "fwprovider/resource_download_file.go:527-541",
			func(t *testing.T, r rules) {
				id := r.mustCreate(proxmox.TokenDownload, "dl", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "iso", "url": "https://e.test/a.img"})
				_ = r.px.Store.Update(func(tx *engine.Tx) error { tx.State.Files = map[string]*engine.StoredFile{}; return nil })
				resp, err := r.read(proxmox.TokenDownload, "dl", id)
				if err != nil || resp.GetId() != "" {
					t.Fatalf("want an empty read, got %v %v", resp, err)
				}
			}},

		// 7. Network bridge.
		{"bridge create, update and delete each reload the node's network", "fwprovider/network/resource_linux_bridge.go:300, :419, :460",
			func(t *testing.T, r rules) {
				br := map[string]any{"nodeName": "pve", "name": "vmbr1"}
				id := r.mustCreate(proxmox.TokenBridge, "br", br)
				if _, err := r.update(proxmox.TokenBridge, "br", id, br, with(br, "mtu", 1450)); err != nil {
					t.Fatal(err)
				}
				if _, err := r.px.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urnOf(proxmox.TokenBridge, "br"), Type: proxmox.TokenBridge, Id: id}); err != nil {
					t.Fatal(err)
				}
				if n := r.state().NetworkReloads["pve"]; n != 3 {
					t.Fatalf("network reloads on pve = %d, want 3", n)
				}
			}},
		{"bridge still used by a guest is deleted anyway", "pve-manager PVE/API2/Network.pm:953-996 (delete_network: no guest check)",
			func(t *testing.T, r rules) {
				br := map[string]any{"nodeName": "pve", "name": "vmbr1"}
				id := r.mustCreate(proxmox.TokenBridge, "br", br)
				r.mustCreate(proxmox.TokenVM, "vm", simtest.VMArgs("pve", 8011, "10.0.0.11", "vmbr1", "", 2, 2048))
				if _, err := r.px.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urnOf(proxmox.TokenBridge, "br"), Type: proxmox.TokenBridge, Id: id}); err != nil {
					t.Fatalf("Proxmox deletes a bridge in use: %v", err)
				}
				if r.state().Bridges["pve/vmbr1"] {
					t.Fatal("bridge still there")
				}
			}},
		{"bridge moved to another node: the update fails there", "fwprovider/network/resource_linux_bridge.go:396-405, pve-manager PVE/API2/Network.pm:749-750",
			func(t *testing.T, r rules) {
				br := map[string]any{"nodeName": "pve", "name": "vmbr1"}
				id := r.mustCreate(proxmox.TokenBridge, "br", br)
				_, err := r.update(proxmox.TokenBridge, "br", id, br, with(br, "nodeName", "pve2"))
				simtest.WantErr(t, err, "interface does not exist")
			}},
		{"bridge name is vmbrN with N up to 9999", "fwprovider/network/resource_linux_bridge.go:186-190",
			func(t *testing.T, r rules) {
				_, _, err := r.create(proxmox.TokenBridge, "br", map[string]any{"nodeName": "pve", "name": "vmbr10000"})
				simtest.WantErr(t, err, `must be "vmbrN", where N is a number between 0 and 9999`)
			}},

		// 8. Privileges.
		{"(inferred) container feature flags other than nesting need root@pam, not an API token", "docs/resources/virtual_environment_container.md:229, docs/index.md:385",
			func(t *testing.T, r rules) {
				r.mustCreate(proxmox.TokenDownload, "tmpl", map[string]any{"nodeName": "pve", "datastoreId": "local", "contentType": "vztmpl", "url": "https://e.test/debian.tar.zst"})
				ct := map[string]any{"nodeName": "pve", "vmId": 8001, "disk": map[string]any{"datastoreId": "local-lvm"},
					"operatingSystem": map[string]any{"templateFileId": "local:vztmpl/debian.tar.zst"}, "features": map[string]any{"nesting": true}}
				r.mustCreate(proxmox.TokenContainer, "ct", ct)
				_, _, err := r.create(proxmox.TokenContainer, "ct2", with(with(ct, "vmId", 8002), "features.keyctl", true))
				simtest.WantErr(t, err, "changing feature flags for privileged container is only allowed for root@pam")
			}},
	}
	for _, c := range cases {
		t.Run(c.rule+" ["+c.cite+"]", func(t *testing.T) {
			c.run(t, newRules(t, engine.Faults{RebootTime: rebootTime.String(), AgentWaitScale: 0.0002}))
		})
	}
}
