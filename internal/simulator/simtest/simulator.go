package simtest

import (
	"context"
	"testing"

	"github.com/sda-platform/sda/internal/simulator"
	"github.com/sda-platform/sda/internal/simulator/engine"
)

// NewTestServer is a simulated provider on a fresh simulation directory
// with one or two Proxmox nodes.
func NewTestServer(t *testing.T, name string, w engine.World) *engine.Server {
	t.Helper()
	dir := t.TempDir()
	if err := engine.WriteWorld(dir, w); err != nil {
		t.Fatal(err)
	}
	s, err := simulator.New(name, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Prepared runs what Server runs before the state lock for method (the
// kind's prepare, then its exec step) and returns the props to hand on.
func Prepared(s *engine.Server, k *engine.Kind, method string, v map[string]any) (engine.Props, error) {
	in := engine.Props{Values: engine.Normalise(v).(map[string]any)}
	var err error
	if k.Prepare != nil {
		if in.Prepared, err = k.Prepare(in.Values); err != nil {
			return in, err
		}
	}
	if k.Exec != nil {
		in.Prepared, err = k.Exec(context.Background(), s, method, in.Values)
	}
	return in, err
}

// Create runs a kind's create in one transaction, as Server.Create does.
func Create(t *testing.T, s *engine.Server, token, name string, v map[string]any) (string, map[string]any, error) {
	t.Helper()
	k := s.Kinds[token]
	in, err := Prepared(s, k, "create", v)
	if err != nil {
		return "", nil, err
	}
	var id string
	var outs map[string]any
	err = s.Store.Update(func(tx *engine.Tx) error {
		var err error
		id, outs, err = k.Create(s, tx, name, in)
		if err == nil {
			tx.State.Objects[engine.ObjectKey(name, id)] = &engine.Object{URN: name, Type: token, ID: id, Inputs: in.Values, Outputs: outs}
		}
		return err
	})
	return id, outs, err
}

// VMArgs are a VirtualMachine's inputs with one disk, NIC and address.
func VMArgs(node string, vmid int, address, bridge, fileID string, cores, memory int) map[string]any {
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

// NewHostKey is a fresh ed25519 host key as an authorized_keys line.
func NewHostKey(t *testing.T) string {
	t.Helper()
	k, err := engine.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Keys are the keys of m (in map order).
func Keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
