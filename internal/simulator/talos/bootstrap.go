package talos

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
)

// nodeName is the Kubernetes node name of a machine: its configured
// hostname, else the VM's name (Proxmox's cloud-init gives it as the
// nocloud local-hostname; inferred), else the address.
func nodeName(m *engine.TalosMachine, g *engine.Guest) string {
	switch {
	case m.Hostname != "":
		return m.Hostname
	case g != nil && g.Name != "":
		return g.Name
	}
	return m.Address
}

// Join makes a configured machine part of its bootstrapped cluster: a
// control plane joins etcd, and every node's kubelet registers a Node.
func Join(tx *engine.Tx, c *engine.TalosCluster, m *engine.TalosMachine, g *engine.Guest) {
	m.JoinBlocked = network.JoinBlocked(tx, c, m, g, time.Now())
	if m.JoinBlocked != "" {
		return
	}
	if m.Type == "controlplane" && !slices.Contains(c.EtcdMembers, m.Address) {
		c.EtcdMembers = append(c.EtcdMembers, m.Address)
	}
	if c.Nodes == nil {
		c.Nodes = map[string]*engine.K8sNode{}
	}
	name := nodeName(m, g)
	if n := c.Nodes[name]; n != nil {
		n.Address, n.Role = m.Address, m.Type
		return
	}
	c.Nodes[name] = &engine.K8sNode{Name: name, Address: m.Address, Role: m.Type}
}

// BootstrapID is the ID terraform-provider-talos v0.10.1 gives a bootstrap.
const BootstrapID = "machine_bootstrap"

func bootstrap(_ *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	node := keyNode.In(in.Values)
	cc := keyClientConfiguration.In(in.Values)
	m, err := Configured(tx, node, cc)
	if err != nil {
		return "", nil, fmt.Errorf("Error bootstrapping node: %w", retried(err))
	}
	if m.Type != "controlplane" {
		return "", nil, fmt.Errorf("Error bootstrapping node: %w", retried(fmt.Errorf("rpc error: code = FailedPrecondition desc = bootstrap can only be performed on a control plane node (%s is a %s)", node, m.Type)))
	}
	if c, done := tx.State.Clusters[m.ClusterID]; done {
		return "", nil, fmt.Errorf("Error bootstrapping node: %w", retried(fmt.Errorf("rpc error: code = AlreadyExists desc = etcd data directory is not empty (cluster %s was bootstrapped on %s)", c.Name, c.BootstrapNode)))
	}
	cfgCA, err := K8sCA(tx, m)
	if err != nil {
		return "", nil, err
	}
	c := &engine.TalosCluster{ID: m.ClusterID, Name: m.Cluster, BootstrapNode: node, EtcdMembers: []string{node},
		Endpoint: m.Endpoint, K8sCA: string(cfgCA.Crt), K8sCAKey: string(cfgCA.Key), CNI: m.CNI, ProxyDisabled: m.ProxyDisabled}
	tx.State.Clusters[m.ClusterID] = c
	// The other configured control planes were waiting for etcd and join
	// now; every configured node's kubelet registers.
	now := time.Now()
	for _, addr := range slices.Sorted(maps.Keys(tx.State.Machines)) {
		om := tx.State.Machines[addr]
		if om.ClusterID != c.ID {
			continue
		}
		if g, err := network.TalosUp(tx, addr, now); err == nil {
			Join(tx, c, om, g)
		}
	}
	return BootstrapID, nil, nil
}

// K8sCA reads the Kubernetes CA (certificate and key) from the
// configuration applied to a control plane.
func K8sCA(tx *engine.Tx, m *engine.TalosMachine) (*x509.PEMEncodedCertificateAndKey, error) {
	for _, obj := range tx.State.Objects {
		if obj.Type == TokenApply && keyNode.In(obj.Inputs) == m.Address {
			cfg, err := configloader.NewFromBytes([]byte(keyMachineConfiguration.In(obj.Outputs)))
			if err == nil && cfg.Cluster().IssuingCA() != nil {
				return cfg.Cluster().IssuingCA(), nil
			}
		}
	}
	return nil, fmt.Errorf("control plane %s has no Kubernetes CA in its configuration", m.Address)
}

// Bootstrapped is Configured plus a bootstrapped cluster: the machine at
// node and its cluster, or the error Talos gives before bootstrap.
func Bootstrapped(tx *engine.Tx, node string, cc map[string]any) (*engine.TalosMachine, *engine.TalosCluster, error) {
	m, err := Configured(tx, node, cc)
	if err != nil {
		return nil, nil, err
	}
	c := tx.State.Clusters[m.ClusterID]
	if c == nil {
		return nil, nil, fmt.Errorf("rpc error: code = FailedPrecondition desc = etcd is not bootstrapped on cluster %s: bootstrap a control plane first", m.Cluster)
	}
	return m, c, nil
}
