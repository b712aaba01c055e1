package talos_test

import (
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// reapply updates "apply-<addr>" in place, as Server.Update does.
func reapply(f *simtest.TalosFixture, addr string, extra map[string]any, patches ...string) (map[string]any, error) {
	return update(f.T, f.Talos, talos.TokenApply, "apply-"+addr, talos.ApplyID, f.Args(addr, extra, patches...))
}

// update runs a kind's update on a stored object, as Server.Update does.
func update(t *testing.T, s *engine.Server, token, name, id string, v map[string]any) (map[string]any, error) {
	t.Helper()
	k := s.Kinds[token]
	in, err := simtest.Prepared(s, k, "update", v)
	if err != nil {
		return nil, err
	}
	var outs map[string]any
	err = s.Store.Update(func(tx *engine.Tx) error {
		obj := tx.State.Objects[engine.ObjectKey(name, id)]
		if obj == nil {
			t.Fatalf("no object %s#%s", name, id)
		}
		outs = obj.Outputs
		if k.Update != nil {
			var err error
			if outs, err = k.Update(s, tx, id, obj, in); err != nil {
				return err
			}
		}
		obj.Inputs, obj.Outputs = in.Values, outs
		return nil
	})
	return outs, err
}

const (
	tfTalos = "siderolabs/terraform-provider-talos@v0.10.1 pkg/talos/"
	talosV  = "siderolabs/talos@v1.12.0 "
	k8sV    = "pulumi/pulumi-kubernetes@v4.32.0 provider/pkg/provider/"
	cmdV    = "pulumi/pulumi-command@v1.1.0 provider/pkg/provider/"
)

// TestTalosRules checks, rule by rule, that the simulated talos,
// kubernetes and command providers behave as the real ones at the pinned
// versions. Each row names its rule and the upstream source it follows
// (docs/simulation.md lists them).
func TestTalosRules(t *testing.T) {
	kinds := map[string]*engine.Kind{}
	ks, _ := talos.Kinds()
	for _, k := range append(append(ks, kubeapi.Kinds()...), clis.Kinds()...) {
		kinds[k.Token] = k
	}
	replaces := func(t *testing.T, token string, olds, news map[string]any) []string {
		t.Helper()
		d := engine.Diff(kinds[token], olds, news)
		if d.Changes != pulumirpc.DiffResponse_DIFF_SOME {
			t.Fatalf("want a change, got %v", d.Changes)
		}
		return d.Replaces
	}
	rows := []struct {
		rule, source string
		run          func(t *testing.T)
	}{
		{"schematic: a new schematic updates in place", tfTalos + "talos_image_factory_schematic_resource.go:50-64 (no RequiresReplace)", func(t *testing.T) {
			if r := replaces(t, talos.TokenSchematic, map[string]any{"schematic": "a"}, map[string]any{"schematic": "b"}); len(r) != 0 {
				t.Fatalf("replaces %v", r)
			}
		}},
		{"schematic: ID is the Image Factory ID; update posts the new one, the ID stays", tfTalos + "talos_image_factory_schematic_resource.go:101-108,141-148", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 0, 0, false)
			a := "customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/qemu-guest-agent\n"
			b := a + "      - siderolabs/iscsi-tools\n"
			id, _, err := simtest.Create(t, f.Talos, talos.TokenSchematic, "schematic", map[string]any{"schematic": a})
			simtest.NoErr(t, err)
			if want, _ := talospatch.SchematicID(a); id != want {
				t.Fatalf("ID %s, want the factory's %s", id, want)
			}
			_, err = update(t, f.Talos, talos.TokenSchematic, "schematic", id, map[string]any{"schematic": b})
			simtest.NoErr(t, err)
			st := f.State()
			newID, _ := talospatch.SchematicID(b)
			if st.Schematics[id] != a || st.Schematics[newID] != b {
				t.Fatalf("factory schematics %v", st.Schematics)
			}
			if st.Objects[engine.ObjectKey("schematic", id)] == nil {
				t.Fatal("the resource must keep its old ID")
			}
		}},
		{"secrets: an upgrade updates in place", tfTalos + "talos_machine_secrets_resource.go:536-538", func(t *testing.T) {
			if r := replaces(t, talos.TokenSecrets, map[string]any{"talosVersion": "v1.11.0"}, map[string]any{"talosVersion": "v1.12.1"}); len(r) != 0 {
				t.Fatalf("replaces %v", r)
			}
		}},
		{"secrets: a downgrade replaces (unset counts as v1.12)", tfTalos + "talos_machine_secrets_resource.go:521-538", func(t *testing.T) {
			if r := replaces(t, talos.TokenSecrets, map[string]any{}, map[string]any{"talosVersion": "v1.11.5"}); len(r) != 1 {
				t.Fatalf("replaces %v", r)
			}
			if r := replaces(t, talos.TokenSecrets, map[string]any{"talosVersion": "v1.12.0"}, map[string]any{"talosVersion": engine.UnknownMarker{}}); len(r) != 0 {
				t.Fatalf("an unknown version must not replace: %v", r)
			}
		}},
		{"apply: never replaced; ID machine_configuration_apply", tfTalos + "talos_machine_configuration_apply_resource.go:90-190,261", func(t *testing.T) {
			if r := replaces(t, talos.TokenApply, map[string]any{"node": "a", "endpoint": "a"}, map[string]any{"node": "b", "endpoint": "b"}); len(r) != 0 {
				t.Fatalf("replaces %v", r)
			}
			for _, tok := range []string{talos.TokenBootstrap, talos.TokenKubeconfig} {
				if r := replaces(t, tok, map[string]any{"node": "a"}, map[string]any{"node": "b"}); len(r) != 0 {
					t.Fatalf("%s replaces %v", tok, r)
				}
			}
			f := simtest.NewTalosFixture(t, 1, 0, false)
			if f.State().Objects[engine.ObjectKey("apply-10.0.0.11", talos.ApplyID)] == nil {
				t.Fatal("apply ID is not machine_configuration_apply")
			}
		}},
		{"apply: resolvedApplyMode is applyMode (default auto)", tfTalos + "talos_machine_configuration_apply_resource.go:110,470-477", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			outs, err := reapply(f, "10.0.0.11", nil, "machine:\n  sysctls:\n    a.b: \"1\"\n")
			simtest.NoErr(t, err)
			if outs["resolvedApplyMode"] != "auto" {
				t.Fatalf("resolvedApplyMode %v", outs["resolvedApplyMode"])
			}
			outs, err = reapply(f, "10.0.0.11", map[string]any{"applyMode": "staged_if_needing_reboot"}, "machine:\n  env:\n    A: b\n")
			simtest.NoErr(t, err)
			if outs["resolvedApplyMode"] != "staged" || len(f.State().Reboots) != 0 {
				t.Fatalf("staged_if_needing_reboot with a reboot-only change: %v, reboots %v", outs["resolvedApplyMode"], f.State().Reboots)
			}
		}},
		{"apply: mode auto reboots for a change CanApplyImmediate refuses", talosV + "internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go:227-236; v1alpha1_runtime.go:119-203", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			f.Faults(engine.Faults{RebootTime: "1h"})
			_, err := reapply(f, "10.0.0.11", nil, "machine:\n  env:\n    A: b\n")
			simtest.NoErr(t, err)
			rs := f.State().Reboots
			if len(rs) != 1 || rs[0].VMID != 8011 || rs[0].Kind != "qemu" || rs[0].Cause != "talos apply: machine.env" || rs[0].End.Sub(rs[0].Start) != time.Hour {
				t.Fatalf("reboots %+v", rs)
			}
			// The node is unreachable until the reboot ends.
			_, err = reapply(f, "10.0.0.11", nil, "machine:\n  env:\n    A: c\n")
			simtest.WantErr(t, err, "is rebooting until")
		}},
		{"apply: immediate changes (sysctls, network, kubelet, cluster) do not reboot", talosV + "internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go:137-190", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			_, err := reapply(f, "10.0.0.11", nil, "machine:\n  sysctls:\n    a.b: \"1\"\n  kubelet:\n    extraArgs:\n      v: \"2\"\n", "cluster:\n  proxy:\n    disabled: true\n")
			simtest.NoErr(t, err)
			if rs := f.State().Reboots; len(rs) != 0 {
				t.Fatalf("reboots %+v", rs)
			}
		}},
		{"apply: mode no_reboot refuses a change that needs a reboot (InvalidArgument)", talosV + "internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go:215-221", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			_, err := reapply(f, "10.0.0.11", map[string]any{"applyMode": "no_reboot"}, "machine:\n  env:\n    A: b\n")
			simtest.WantErr(t, err, "code = InvalidArgument desc = this config change can't be applied in immediate mode")
		}},
		{"apply: a rebooting node is retried until it is back (within the retry window)", tfTalos + "talos_machine_configuration_apply_resource.go:219-248,299-328", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			f.Faults(engine.Faults{RebootTime: "1h"})
			_, err := reapply(f, "10.0.0.11", nil, "machine:\n  env:\n    A: b\n")
			simtest.NoErr(t, err)
			var inWindow, beyond time.Duration
			simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
				v := f.Args("10.0.0.11", nil)
				inWindow = f.Talos.Kinds[talos.TokenApply].Await(tx, v, 2*time.Hour)
				beyond = f.Talos.Kinds[talos.TokenApply].Await(tx, v, time.Minute)
				return nil
			}))
			if inWindow < 59*time.Minute || beyond != 0 {
				t.Fatalf("await %v within the window, %v beyond it", inWindow, beyond)
			}
		}},
		{"apply: nocloud (cloud mode) checks no install disk", talosV + "internal/app/machined/pkg/runtime/mode.go:54; platform/nocloud/nocloud.go:114; pkg/machinery/config/types/v1alpha1/v1alpha1_validation.go:100,963", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			_, err := reapply(f, "10.0.0.11", nil, "machine:\n  install:\n    disk: /dev/nvme9n1\n")
			simtest.NoErr(t, err)
		}},
		{"apply: a deviceSelector that matches no link leaves it unconfigured", talosV + "internal/app/machined/pkg/controllers/network/device_config.go:105-113,163-165", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, false)
			_, err := reapply(f, "10.0.0.11", nil, "machine:\n  network:\n    interfaces:\n      - deviceSelector:\n          hardwareAddr: 02:00:00:00:99:99\n        dhcp: false\n")
			simtest.NoErr(t, err)
			if m := f.State().Machines["10.0.0.11"]; len(m.UnmatchedLinks) != 1 {
				t.Fatalf("unmatched links %v", m.UnmatchedLinks)
			}
		}},
		{"membership: bootstrap makes the first etcd member; configured nodes register Node objects", talosV + "internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go:417-440 (inferred: joins, kubelet registration)", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 1, true)
			c := f.Cluster()
			if strings.Join(c.EtcdMembers, ",") != "10.0.0.11" || len(c.Nodes) != 2 || c.Nodes["10.0.0.21"].Role != "worker" {
				t.Fatalf("members %v nodes %v", c.EtcdMembers, c.Nodes)
			}
			// A control plane configured into the bootstrapped cluster joins.
			_, _, err := simtest.Create(t, f.Px, proxmox.TokenVM, "vm-cp2", simtest.VMArgs("pve", 8031, "10.0.0.12", "vmbr0", "", 2, 2048))
			simtest.NoErr(t, err)
			f.CPs = append(f.CPs, "10.0.0.12")
			_, err = f.Apply("10.0.0.12", nil)
			simtest.NoErr(t, err)
			if c := f.Cluster(); strings.Join(c.EtcdMembers, ",") != "10.0.0.11,10.0.0.12" || c.Nodes["10.0.0.12"] == nil {
				t.Fatalf("members %v nodes %v", c.EtcdMembers, c.Nodes)
			}
		}},
		{"bootstrap: a second bootstrap fails (AlreadyExists is retried, not tolerated); update is a no-op", tfTalos + "talos_machine_bootstrap_resource.go:142-170,177-194; " + talosV + "v1alpha1_server.go:435", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, true)
			_, _, err := simtest.Create(t, f.Talos, talos.TokenBootstrap, "again", map[string]any{"node": "10.0.0.11", "clientConfiguration": f.ClientConfig})
			simtest.WantErr(t, err, "code = AlreadyExists desc = etcd data directory is not empty")
			if kinds[talos.TokenBootstrap].Update != nil {
				t.Fatal("bootstrap update must only record inputs")
			}
			if f.State().Objects[engine.ObjectKey("bootstrap", talos.BootstrapID)] == nil {
				t.Fatal("bootstrap ID is not machine_bootstrap")
			}
		}},
		{"kubeconfig: ID is the cluster name; renewed only within certificateRenewalDuration (720h)", tfTalos + "talos_cluster_kubeconfig_resource.go:153-154,260,640-705", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, true)
			id, outs, err := simtest.Create(t, f.Talos, talos.TokenKubeconfig, "kc", map[string]any{"node": "10.0.0.11", "clientConfiguration": f.ClientConfig})
			simtest.NoErr(t, err)
			if id != "lab" {
				t.Fatalf("ID %s", id)
			}
			same, err := update(t, f.Talos, talos.TokenKubeconfig, "kc", id, map[string]any{"node": "10.0.0.11", "clientConfiguration": f.ClientConfig})
			simtest.NoErr(t, err)
			if same["kubeconfigRaw"] != outs["kubeconfigRaw"] {
				t.Fatal("a kubeconfig far from expiry must not be renewed")
			}
			renewed, err := update(t, f.Talos, talos.TokenKubeconfig, "kc", id, map[string]any{"node": "10.0.0.11", "clientConfiguration": f.ClientConfig, "certificateRenewalDuration": "9000h"})
			simtest.NoErr(t, err)
			if renewed["kubeconfigRaw"] == outs["kubeconfigRaw"] {
				t.Fatal("a kubeconfig within the renewal duration must be renewed")
			}
		}},
		{"reset: delete does nothing without onDestroy.reset", tfTalos + "talos_machine_configuration_apply_resource.go:360-372", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 1, true)
			simtest.NoErr(t, simtest.Remove(t, f.Talos, talos.TokenApply, "apply-10.0.0.21", talos.ApplyID))
			if f.State().Machines["10.0.0.21"] == nil {
				t.Fatal("the machine must stay configured")
			}
		}},
		{"reset: graceful reset cordons, wipes (maintenance), halts; the Node object stays", tfTalos + "talos_machine_configuration_apply_resource.go:370-455; " + talosV + "internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer.go:290-340", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 1, true)
			_, err := reapply(f, "10.0.0.21", map[string]any{"onDestroy": map[string]any{"reset": true}})
			simtest.NoErr(t, err)
			simtest.NoErr(t, simtest.Remove(t, f.Talos, talos.TokenApply, "apply-10.0.0.21", talos.ApplyID))
			st := f.State()
			var c *engine.TalosCluster
			for _, c = range st.Clusters {
			}
			if st.Machines["10.0.0.21"] != nil || st.Guests[8012].Started || c.Nodes["10.0.0.21"] == nil || !c.Nodes["10.0.0.21"].Cordoned {
				t.Fatalf("machine %v started %v node %+v", st.Machines["10.0.0.21"], st.Guests[8012].Started, c.Nodes["10.0.0.21"])
			}
		}},
		{"reset: a control plane leaves etcd; the last member cannot (etcd refuses)", talosV + "internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer_tasks.go:893-940; etcd-io/etcd membership IsReadyToRemoveVotingMember (inferred)", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 2, 0, true)
			reset := map[string]any{"onDestroy": map[string]any{"reset": true, "reboot": true}}
			for _, a := range f.CPs {
				_, err := reapply(f, a, reset)
				simtest.NoErr(t, err)
			}
			simtest.NoErr(t, simtest.Remove(t, f.Talos, talos.TokenApply, "apply-10.0.0.12", talos.ApplyID))
			if c := f.Cluster(); strings.Join(c.EtcdMembers, ",") != "10.0.0.11" {
				t.Fatalf("members %v", c.EtcdMembers)
			}
			if rs := f.State().Reboots; len(rs) != 1 || rs[0].Cause != "talos reset" {
				t.Fatalf("reset with reboot must reboot: %+v", rs)
			}
			simtest.WantErr(t, simtest.Remove(t, f.Talos, talos.TokenApply, "apply-10.0.0.11", talos.ApplyID), "not enough started members")
		}},
		{"reset: graceful=false wipes without leaving etcd", talosV + "internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_sequencer.go:305-309", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, true)
			_, err := reapply(f, "10.0.0.11", map[string]any{"onDestroy": map[string]any{"reset": true, "graceful": false}})
			simtest.NoErr(t, err)
			simtest.NoErr(t, simtest.Remove(t, f.Talos, talos.TokenApply, "apply-10.0.0.11", talos.ApplyID))
			if c := f.Cluster(); len(c.EtcdMembers) != 1 || f.State().Machines["10.0.0.11"] != nil {
				t.Fatalf("members %v", c.EtcdMembers)
			}
		}},
		{"health: a healthy cluster passes both check sets", tfTalos + "talos_cluster_health_data_source.go:252-256; " + talosV + "pkg/cluster/check/default.go", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 2, 1, true)
			simtest.NoErr(t, f.Health(f.CPs, f.Workers, true))
			simtest.NoErr(t, f.Health(f.CPs, f.Workers, false))
		}},
		{"health: etcd members must be a subset of the listed control planes", talosV + "pkg/cluster/check/etcd.go:94-128", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 2, 0, true)
			simtest.WantErr(t, f.Health(f.CPs[:1], nil, true), `waiting for etcd members to be control plane nodes: etcd member ips ["10.0.0.11" "10.0.0.12"] are not subset of control plane node ips ["10.0.0.11"]`)
		}},
		{"health: a deleted control plane VM leaves its etcd member behind", talosV + "pkg/cluster/check/etcd.go:125; pkg/cluster/check/service.go:75-110", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 2, 0, true)
			simtest.NoErr(t, simtest.Remove(t, f.Px, proxmox.TokenVM, "vm-10.0.0.12", "8012"))
			simtest.WantErr(t, f.Health(f.CPs[:1], nil, true), "are not subset of control plane node ips")
			simtest.WantErr(t, f.Health(f.CPs, nil, true), "waiting for etcd to be healthy: dial tcp 10.0.0.12:50000")
		}},
		{"health: Node objects must match the listed nodes, even with skipKubernetesChecks", tfTalos + "talos_cluster_health_data_source.go:252; " + talosV + "pkg/cluster/check/kubernetes.go:30-80; pkg/cluster/cluster.go:101-135", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 2, true)
			simtest.WantErr(t, f.Health(f.CPs, f.Workers[:1], true), `waiting for all k8s nodes to report: unexpected nodes with IPs ["10.0.0.22"]`)
			simtest.NoErr(t, simtest.Remove(t, f.Px, proxmox.TokenVM, "vm-10.0.0.22", "8013"))
			simtest.WantErr(t, f.Health(f.CPs, f.Workers[:1], true), `unexpected nodes with IPs ["10.0.0.22"]`)
			_, _, err := simtest.Create(t, f.Px, proxmox.TokenVM, "vm-w3", simtest.VMArgs("pve", 8040, "10.0.0.23", "vmbr0", "", 2, 2048))
			simtest.NoErr(t, err)
			f.Workers = append(f.Workers, "10.0.0.23")
			// Not configured yet: apid is not ready on it.
			simtest.WantErr(t, f.Health(f.CPs, []string{"10.0.0.21", "10.0.0.23"}, true), "waiting for apid to be ready")
		}},
		{"health: NotReady nodes fail the Kubernetes checks (no CNI, machine gone, rebooting)", talosV + "pkg/cluster/check/kubernetes.go:216-246; default.go:19-27", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 2, true)
			simtest.NoErr(t, simtest.Remove(t, f.Px, proxmox.TokenVM, "vm-10.0.0.22", "8013"))
			err := f.Health(f.CPs, f.Workers[:1], false)
			simtest.WantErr(t, err, "waiting for all k8s nodes to report: unexpected nodes with IPs")
			simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
				for _, c := range tx.State.Clusters {
					c.CNI = "none"
					delete(c.Nodes, "10.0.0.22")
				}
				return nil
			}))
			simtest.NoErr(t, f.Health(f.CPs, f.Workers[:1], true))
			simtest.WantErr(t, f.Health(f.CPs, f.Workers[:1], false), "waiting for all k8s nodes to report ready: some nodes are not ready: [10.0.0.11 10.0.0.21]")
			f2 := simtest.NewTalosFixture(t, 1, 1, true)
			f2.Faults(engine.Faults{RebootTime: "1h"})
			_, err = reapply(f2, "10.0.0.21", nil, "machine:\n  env:\n    A: b\n")
			simtest.NoErr(t, err)
			simtest.WantErr(t, f2.Health(f2.CPs, f2.Workers, true), "waiting for apid to be ready: dial tcp 10.0.0.21:50000: connect: connection refused")
		}},
		{"health: cordoned nodes fail the schedulable check", talosV + "pkg/cluster/check/kubernetes.go:249-275", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 1, true)
			simtest.NoErr(t, f.Px.Store.Update(func(tx *engine.Tx) error {
				for _, c := range tx.State.Clusters {
					c.Nodes["10.0.0.21"].Cordoned = true
				}
				return nil
			}))
			simtest.NoErr(t, f.Health(f.CPs, f.Workers, true))
			simtest.WantErr(t, f.Health(f.CPs, f.Workers, false), "waiting for all k8s nodes to report schedulable: some nodes are not schedulable: [10.0.0.21]")
		}},
		{"kubernetes DiffConfig: an unknown kubeconfig replaces the provider", k8sV + "provider.go:503-516", func(t *testing.T) {
			olds := engine.Props{Values: map[string]any{"kubeconfig": "a"}}
			news := engine.Props{Values: map[string]any{"kubeconfig": engine.UnknownMarker{}}, Unknown: map[string]bool{"kubeconfig": true}}
			if d := kubeapi.DiffConfig(olds, news); strings.Join(d.Replaces, ",") != "kubeconfig" {
				t.Fatalf("replaces %v", d.Replaces)
			}
			news.Values["clusterIdentifier"], olds.Values["clusterIdentifier"] = "lab", "lab"
			if d := kubeapi.DiffConfig(olds, news); len(d.Replaces) != 0 {
				t.Fatalf("an unchanged clusterIdentifier must suppress replacement: %v", d.Replaces)
			}
		}},
		{"kubernetes DiffConfig: a known kubeconfig replaces only when the active cluster changes", k8sV + "provider.go:518-566; util.go:201-226", func(t *testing.T) {
			kc := func(server, user string) string {
				return talos.RenderKubeconfig("lab", server, []byte("CA"), []byte(user), []byte("key"))
			}
			d := kubeapi.DiffConfig(engine.Props{Values: map[string]any{"kubeconfig": kc("https://10.0.0.11:6443", "u1")}},
				engine.Props{Values: map[string]any{"kubeconfig": kc("https://10.0.0.11:6443", "u2")}})
			if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 {
				t.Fatalf("a renewed client certificate: %v replaces %v", d.Changes, d.Replaces)
			}
			d = kubeapi.DiffConfig(engine.Props{Values: map[string]any{"kubeconfig": kc("https://10.0.0.11:6443", "u1")}},
				engine.Props{Values: map[string]any{"kubeconfig": kc("https://10.0.0.10:6443", "u1")}})
			if strings.Join(d.Replaces, ",") != "kubeconfig" {
				t.Fatalf("another server: replaces %v", d.Replaces)
			}
		}},
		{"helm: delete on an unreachable cluster fails (deleteUnreachable does not apply)", k8sV + "provider.go:2546-2551,2574-2586", func(t *testing.T) {
			f := simtest.NewTalosFixture(t, 1, 0, true)
			_, kc, err := simtest.Create(t, f.Talos, talos.TokenKubeconfig, "kc", map[string]any{"node": "10.0.0.11", "clientConfiguration": f.ClientConfig})
			simtest.NoErr(t, err)
			f.K8s.Config = map[string]any{"kubeconfig": kc["kubeconfigRaw"], "deleteUnreachable": "true"}
			id, _, err := simtest.Create(t, f.K8s, kubeapi.TokenHelmRelease, "rel", map[string]any{"name": "x", "namespace": "default", "chart": "oci://example/x"})
			simtest.NoErr(t, err)
			simtest.NoErr(t, simtest.Remove(t, f.Px, proxmox.TokenVM, "vm-10.0.0.11", "8011"))
			simtest.WantErr(t, simtest.Remove(t, f.K8s, kubeapi.TokenHelmRelease, "rel", id), "can't delete Helm Release with unreachable cluster")
		}},
		{"command: only triggers replace; a new connection is an update", cmdV + "common/inputs.go:10; remote/command.go:37-49", func(t *testing.T) {
			if r := replaces(t, clis.TokenRemoteCommand, map[string]any{"create": "a", "connection": map[string]any{"host": "h1"}},
				map[string]any{"create": "a", "connection": map[string]any{"host": "h2"}}); len(r) != 0 {
				t.Fatalf("replaces %v", r)
			}
		}},
		{"command: update runs update, else create, on the new connection; delete uses the stored one", cmdV + "remote/commandController.go:58-86", func(t *testing.T) {
			s := simtest.NewTestServer(t, "command", engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}, engine.WorldNode{Name: "pve2", SSHHost: "192.0.2.12"}))
			simtest.NoErr(t, s.Store.Update(func(tx *engine.Tx) error {
				tx.State.Guests[8001] = &engine.Guest{VMID: 8001, Kind: "lxc", Node: "pve1", Started: true}
				return nil
			}))
			id, _, err := simtest.Create(t, s, clis.TokenRemoteCommand, "cmd", map[string]any{"connection": map[string]any{"host": "192.0.2.11"},
				"create": "pct exec 8001 -- true", "delete": "pct exec 8001 -- rm x"})
			simtest.NoErr(t, err)
			// create runs again on the new host, where container 8001 is not.
			_, err = update(t, s, clis.TokenRemoteCommand, "cmd", id, map[string]any{"connection": map[string]any{"host": "192.0.2.12"},
				"create": "pct exec 8001 -- true", "delete": "pct exec 8001 -- rm x"})
			simtest.WantErr(t, err, "is on node pve1")
			// Without any script there is nothing to run and no connection.
			_, err = update(t, s, clis.TokenRemoteCommand, "cmd", id, map[string]any{"connection": map[string]any{"host": "192.0.2.99"}, "delete": "pct exec 8001 -- rm x"})
			simtest.NoErr(t, err)
			simtest.WantErr(t, simtest.Remove(t, s, clis.TokenRemoteCommand, "cmd", id), "no route to host")
		}},
		{"command: environment goes through SSH setenv, which stock sshd refuses beyond LANG/LC_*", cmdV + "remote/commandOutputs.go:42-70,110-126 (sshd AcceptEnv inferred)", func(t *testing.T) {
			s := simtest.NewTestServer(t, "command", engine.DefaultWorld(engine.WorldNode{Name: "pve1", SSHHost: "192.0.2.11"}))
			_, _, err := simtest.Create(t, s, clis.TokenRemoteCommand, "env", map[string]any{"connection": map[string]any{"host": "192.0.2.11"}, "create": "true",
				"environment": map[string]any{"LANG": "C"}})
			simtest.NoErr(t, err)
			_, _, err = simtest.Create(t, s, clis.TokenRemoteCommand, "env2", map[string]any{"connection": map[string]any{"host": "192.0.2.11"}, "create": "true",
				"environment": map[string]any{"VMID": "8001"}})
			simtest.WantErr(t, err, `could not set environment variable "VMID"`)
		}},
	}
	for _, r := range rows {
		t.Run(r.rule, func(t *testing.T) {
			t.Logf("upstream: %s", r.source)
			r.run(t)
		})
	}
}
