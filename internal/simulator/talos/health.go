package talos

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
)

// GetHealth is the talos_cluster_health data source (v0.10.1): Talos's
// cluster checks from pkg/cluster/check at v1.12.0, run against the
// simulated state. With skipKubernetesChecks it runs
// PreBootSequenceChecks and K8sComponentsReadinessChecks, otherwise
// DefaultClusterChecks. A real check polls until its timeout; here a check
// that fails fails the call at once (after waiting for reboots in progress,
// see AwaitNodes), with the data source's error and the reporter's last line.
func GetHealth(_ *engine.Server, tx *engine.Tx, args map[string]any) (map[string]any, error) {
	now := time.Now()
	cc := keyClientConfiguration.In(args)
	cps, workers := keyControlPlaneNodes.In(args), keyWorkerNodes.In(args)
	if len(cps) == 0 {
		return nil, fmt.Errorf("health: controlPlaneNodes is required")
	}
	fail := func(check string, err error) error {
		return fmt.Errorf("cluster health check failed: context deadline exceeded: waiting for %s: %v", check, err)
	}
	// The client talks to the cluster through the endpoints; the etcd
	// member list without a node target comes from the first one.
	endpoints := keyEndpoints.In(args)
	for _, e := range endpoints {
		if _, err := Configured(tx, e, cc); err != nil {
			return nil, fmt.Errorf("cluster health check failed: endpoint: %w", err)
		}
	}
	via := cps[0]
	if len(endpoints) > 0 {
		via = endpoints[0]
	}
	var cluster *engine.TalosCluster
	if m := tx.State.Machines[via]; m != nil {
		cluster = tx.State.Clusters[m.ClusterID]
	}
	hostname := func(addr string) string {
		m := tx.State.Machines[addr]
		if m == nil {
			return addr
		}
		g, _ := network.VMAt(tx, addr)
		return nodeName(m, g)
	}

	// etcd to be healthy: ServiceHealthAssertion(etcd) on the control planes.
	var services int
	for _, n := range cps {
		m, err := Configured(tx, n, cc)
		if err != nil {
			return nil, fail("etcd to be healthy", err)
		}
		if m.Type == "controlplane" {
			services++
		}
	}
	if services != len(cps) {
		return nil, fail("etcd to be healthy", fmt.Errorf("expected a response with %d node(s), got %d", len(cps), services))
	}
	for _, n := range cps {
		m := tx.State.Machines[n]
		if c := tx.State.Clusters[m.ClusterID]; c == nil || !slices.Contains(c.EtcdMembers, n) {
			return nil, fail("etcd to be healthy", fmt.Errorf("%s: service %q not in expected state %q: current state [%s] %s%s", hostname(n), "etcd", "Running", "Preparing", "Running pre state", blocked(m)))
		}
	}
	// etcd members to be consistent across nodes: every control plane
	// reports its cluster's member list.
	for _, n := range cps {
		c := tx.State.Clusters[tx.State.Machines[n].ClusterID]
		if cluster == nil || c.ID != cluster.ID {
			var expected, actual []string
			if cluster != nil {
				expected = mapStrings(cluster.EtcdMembers, hostname)
			}
			actual = mapStrings(c.EtcdMembers, hostname)
			return nil, fail("etcd members to be consistent across nodes", fmt.Errorf("%s: expected to have %v members, got %v", hostname(n), expected, actual))
		}
	}
	// etcd members to be control plane nodes.
	if !isSubset(cluster.EtcdMembers, cps) {
		return nil, fail("etcd members to be control plane nodes", fmt.Errorf("etcd member ips %q are not subset of control plane node ips %q", cluster.EtcdMembers, cps))
	}
	// apid to be ready (and the nodes booted) on every listed node.
	all := append(slices.Clone(cps), workers...)
	for _, n := range workers {
		if _, err := Configured(tx, n, cc); err != nil {
			return nil, fail("apid to be ready", err)
		}
	}
	// kubelet to be healthy and nodes booted follow from the above.
	// all k8s nodes to report: cluster.NodesMatch.
	remaining := map[string]bool{}
	for _, n := range cluster.Nodes {
		remaining[n.Address] = true
	}
	for _, ip := range all {
		if !remaining[ip] {
			return nil, fail("all k8s nodes to report", fmt.Errorf("can't find expected node with IPs %q%s", []string{ip}, blocked(tx.State.Machines[ip])))
		}
		delete(remaining, ip)
	}
	if len(remaining) > 0 {
		ips := slices.Sorted(maps.Keys(remaining))
		return nil, fail("all k8s nodes to report", fmt.Errorf("unexpected nodes with IPs %q", ips))
	}
	skipK8s := keySkipKubernetesChecks.In(args)
	if !skipK8s {
		var notReady, unschedulable []string
		for _, name := range slices.Sorted(maps.Keys(cluster.Nodes)) {
			n := cluster.Nodes[name]
			if !NodeReady(tx, cluster, n, now) {
				notReady = append(notReady, n.Name)
			}
			if n.Cordoned && len(unschedulable) == 0 {
				unschedulable = append(unschedulable, n.Name)
			}
		}
		if len(notReady) > 0 {
			return nil, fail("all k8s nodes to report ready", fmt.Errorf("some nodes are not ready: %v", notReady))
		}
		if len(unschedulable) > 0 {
			return nil, fail("all k8s nodes to report schedulable", fmt.Errorf("some nodes are not schedulable: %v", unschedulable))
		}
	}
	return map[string]any{"id": "cluster_health"}, nil
}

// blocked is the network reason a machine did not join, for messages.
func blocked(m *engine.TalosMachine) string {
	if m == nil || m.JoinBlocked == "" {
		return ""
	}
	return " (" + m.JoinBlocked + ")"
}

// NodeReady is the Node's Ready condition: its machine is configured into
// the cluster and answering, its kubelet runs (see KubeletStoppedUntil),
// and pods have a network (a CNI).
func NodeReady(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) bool {
	m := tx.State.Machines[n.Address]
	if m == nil || m.ClusterID != c.ID {
		return false
	}
	if _, err := network.TalosUp(tx, n.Address, now); err != nil {
		return false
	}
	if now.Before(m.KubeletStoppedUntil) {
		return false
	}
	return c.CNI != "none" || HasCNI(c)
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

func isSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

// HasCNI reports whether a Helm release of the cluster is a CNI.
func HasCNI(c *engine.TalosCluster) bool {
	for _, chart := range c.Releases {
		if chart == "cilium" || chart == "flannel" || chart == "calico" || chart == "tigera-operator" {
			return true
		}
	}
	return false
}
