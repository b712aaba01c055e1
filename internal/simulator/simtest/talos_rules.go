package simtest

import (
	"context"
	"testing"

	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/talos"
)

// TalosFixture is a simulated Proxmox with Talos VMs, their configurations
// applied, and (optionally) the cluster bootstrapped on the first control
// plane. Control planes are 10.0.0.11.., workers 10.0.0.21...
type TalosFixture struct {
	T                      *testing.T
	Px, Talos, K8s         *engine.Server
	ClientConfig           any
	CPConfig, WorkerConfig string
	CPs, Workers           []string
}

// NewTalosFixture builds a TalosFixture of cps control planes and workers
// workers, bootstrapped when boot.
func NewTalosFixture(t *testing.T, cps, workers int, boot bool) *TalosFixture {
	t.Helper()
	px := NewTestServer(t, "proxmoxve", engine.DefaultWorld(engine.WorldNode{Name: "pve", SSHHost: "192.0.2.10"}))
	tl, _ := simulator.New("talos", px.Store.Dir)
	k8s, _ := simulator.New("kubernetes", px.Store.Dir)
	f := &TalosFixture{T: t, Px: px, Talos: tl, K8s: k8s}
	_, sec, err := Create(t, tl, talos.TokenSecrets, "secrets", map[string]any{"talosVersion": "v1.12.0"})
	if err != nil {
		t.Fatal(err)
	}
	f.ClientConfig = sec["clientConfiguration"]
	gen := func(typ string) string {
		args := engine.Normalise(map[string]any{"clusterName": "lab", "clusterEndpoint": "https://10.0.0.11:6443", "machineType": typ,
			"machineSecrets": sec["machineSecrets"], "talosVersion": "v1.12.0", "kubernetesVersion": "v1.35.0"}).(map[string]any)
		out, err := talos.GetMachineConfiguration(tl, nil, args)
		if err != nil {
			t.Fatal(err)
		}
		return out["machineConfiguration"].(string)
	}
	f.CPConfig, f.WorkerConfig = gen("controlplane"), gen("worker")
	for i := 0; i < cps; i++ {
		f.CPs = append(f.CPs, "10.0.0.1"+string(rune('1'+i)))
	}
	for i := 0; i < workers; i++ {
		f.Workers = append(f.Workers, "10.0.0.2"+string(rune('1'+i)))
	}
	for i, a := range append(append([]string{}, f.CPs...), f.Workers...) {
		if _, _, err := Create(t, px, proxmox.TokenVM, "vm-"+a, VMArgs("pve", 8011+i, a, "vmbr0", "", 2, 2048)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Apply(a, nil); err != nil {
			t.Fatal(err)
		}
	}
	if boot {
		if _, _, err := Create(t, tl, talos.TokenBootstrap, "bootstrap", map[string]any{"node": f.CPs[0], "clientConfiguration": f.ClientConfig}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *TalosFixture) Args(addr string, extra map[string]any, patches ...string) map[string]any {
	cfg := f.WorkerConfig
	for _, c := range f.CPs {
		if c == addr {
			cfg = f.CPConfig
		}
	}
	v := map[string]any{"node": addr, "clientConfiguration": f.ClientConfig, "machineConfigurationInput": cfg, "configPatches": patches}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// Apply creates the ConfigurationApply "apply-<addr>".
func (f *TalosFixture) Apply(addr string, extra map[string]any, patches ...string) (map[string]any, error) {
	_, outs, err := Create(f.T, f.Talos, talos.TokenApply, "apply-"+addr, f.Args(addr, extra, patches...))
	return outs, err
}

func (f *TalosFixture) State() *engine.State {
	st, err := engine.ReadState(f.Px.Store.Dir)
	if err != nil {
		f.T.Fatal(err)
	}
	return st
}

func (f *TalosFixture) Cluster() *engine.TalosCluster {
	for _, c := range f.State().Clusters {
		return c
	}
	return nil
}

func (f *TalosFixture) Health(cps, workers []string, skip bool) error {
	args := engine.Normalise(map[string]any{"clientConfiguration": f.ClientConfig, "controlPlaneNodes": cps, "workerNodes": workers,
		"endpoints": cps[:1], "skipKubernetesChecks": skip}).(map[string]any)
	return f.Px.Store.Update(func(tx *engine.Tx) error { _, err := talos.GetHealth(f.Talos, tx, args); return err })
}

func (f *TalosFixture) Faults(fl engine.Faults) {
	if err := engine.WriteFaults(f.Px.Store.Dir, fl); err != nil {
		f.T.Fatal(err)
	}
}

// Remove runs a kind's delete on a stored object, as Server.Delete does.
func Remove(t *testing.T, s *engine.Server, token, name, id string) error {
	t.Helper()
	k := s.Kinds[token]
	if k.Exec != nil {
		st, err := engine.ReadState(s.Store.Dir)
		NoErr(t, err)
		if obj := st.Objects[engine.ObjectKey(name, id)]; obj != nil {
			if _, err := k.Exec(context.Background(), s, "delete", engine.Merge(obj.Outputs, obj.Inputs)); err != nil {
				return err
			}
		}
	}
	return s.Store.Update(func(tx *engine.Tx) error {
		obj := tx.State.Objects[engine.ObjectKey(name, id)]
		if obj == nil {
			t.Fatalf("no object %s#%s", name, id)
		}
		if k.Delete != nil {
			if err := k.Delete(s, tx, obj); err != nil {
				return err
			}
		}
		delete(tx.State.Objects, engine.ObjectKey(name, id))
		return nil
	})
}

// NoErr fails t now on err.
func NoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
