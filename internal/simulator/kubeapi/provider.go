package kubeapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/talos"
	"gopkg.in/yaml.v3"
)

// TokenHelmRelease is the Helm release resource of the kubernetes provider.
const TokenHelmRelease = "kubernetes:helm.sh/v3:Release"

// Kinds are the kubernetes provider's resources (Helm releases).
func Kinds() []*engine.Kind {
	return []*engine.Kind{{
		Token:   TokenHelmRelease,
		Replace: []string{"name", "namespace"},
		Check:   checkRelease,
		Create:  createRelease,
		Update:  updateRelease,
		Delete:  deleteRelease,
	}}
}

// checkRelease gives a release without a name the provider's generated
// one, kept from the previous inputs so it never changes by itself.
func checkRelease(name string, olds, news map[string]any) (map[string]any, []*pulumirpc.CheckFailure) {
	out := engine.Merge(news, nil)
	if keyName.In(out) == "" {
		if old := keyName.In(olds); old != "" {
			out["name"] = old
		} else {
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			out["name"] = name + "-" + hex.EncodeToString(b)
		}
	}
	if keyNamespace.In(out) == "" {
		out["namespace"] = "default"
	}
	var failures []*pulumirpc.CheckFailure
	if _, unknown := out["chart"].(engine.UnknownMarker); !unknown && keyChart.In(out) == "" {
		failures = append(failures, &pulumirpc.CheckFailure{Property: "chart", Reason: "chart is required"})
	}
	return out, failures
}

// Cluster finds the bootstrapped cluster the provider's kubeconfig points
// at: same CA, and a server that is the cluster endpoint.
func Cluster(s *engine.Server, tx *engine.Tx) (*engine.TalosCluster, error) {
	raw, unknown, configured := s.ConfigValue("kubeconfig")
	if !configured || unknown {
		return nil, fmt.Errorf("kubernetes: the provider has no kubeconfig")
	}
	if raw == "" {
		return nil, fmt.Errorf("kubernetes: no kubeconfig given to the provider (the default provider would use ~/.kube/config): pass the cluster's kubeconfig to an explicit provider")
	}
	return ClusterOf(tx, raw)
}

// ClusterOf is the cluster a kubeconfig reaches: same CA, its server the
// cluster's endpoint, and a control plane up to answer.
func ClusterOf(tx *engine.Tx, raw string) (*engine.TalosCluster, error) {
	var kc struct {
		Clusters []struct {
			Cluster struct {
				Server string `yaml:"server"`
				CA     string `yaml:"certificate-authority-data"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal([]byte(raw), &kc); err != nil || len(kc.Clusters) == 0 {
		return nil, fmt.Errorf("kubernetes: the kubeconfig does not parse or has no cluster")
	}
	server, ca := kc.Clusters[0].Cluster.Server, strings.TrimSpace(string(talos.Unb64(kc.Clusters[0].Cluster.CA)))
	for _, c := range tx.State.Clusters {
		if strings.TrimSpace(c.K8sCA) != ca {
			continue
		}
		if c.Kubeconfigs == 0 {
			return nil, fmt.Errorf("kubernetes: cluster %s has issued no kubeconfig", c.Name)
		}
		up := false
		for _, m := range tx.State.Machines {
			if m.ClusterID == c.ID && m.Type == "controlplane" {
				if _, err := network.TalosUp(tx, m.Address, time.Now()); err == nil {
					up = true
				}
			}
		}
		if !up {
			return nil, fmt.Errorf("kubernetes: Get %q: dial tcp: connect: no route to host (no control plane of cluster %s answers)", server, c.Name)
		}
		want, _ := url.Parse(c.Endpoint)
		got, err := url.Parse(server)
		if err != nil || want == nil || got.Host != want.Host {
			return nil, fmt.Errorf("kubernetes: Get %q: dial tcp: no route to host (cluster %s serves %s)", server, c.Name, c.Endpoint)
		}
		if err := network.KubeAPIReachable(tx, c, time.Now()); err != nil {
			return nil, fmt.Errorf("kubernetes: Get %q: %w", server, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("kubernetes: Get %q: dial tcp: connect: no route to host (no bootstrapped cluster has this kubeconfig's CA)", server)
}

func releaseKey(v map[string]any) string {
	return keyNamespace.In(v) + "/" + keyName.In(v)
}

func Install(s *engine.Server, tx *engine.Tx, v map[string]any, revision int) (map[string]any, error) {
	c, err := Cluster(s, tx)
	if err != nil {
		return nil, err
	}
	chart := keyChart.In(v)
	isRef := strings.Contains(chart, "://") || strings.HasPrefix(chart, "./") || strings.HasPrefix(chart, "/")
	if !isRef && keyRepositoryOptsRepo.In(v) == "" && !strings.Contains(chart, "/") {
		return nil, fmt.Errorf("helm: chart %q not found: set repositoryOpts.repo", chart)
	}
	base := chart[strings.LastIndex(chart, "/")+1:]
	if base == "cilium" && c.ProxyDisabled {
		kpr := fmt.Sprint(keyValuesKubeProxyReplacement.In(v))
		if kpr != "true" || keyValuesK8sServiceHost.In(v) == "" {
			return nil, fmt.Errorf("cilium: kube-proxy is disabled in the Talos configuration, so the agent needs kubeProxyReplacement=true and k8sServiceHost/k8sServicePort (KubePrism: localhost:7445)")
		}
	}
	if c.Releases == nil {
		c.Releases = map[string]string{}
	}
	c.Releases[releaseKey(v)] = base
	return map[string]any{"status": map[string]any{
		"name": keyName.In(v), "namespace": keyNamespace.In(v), "chart": base, "version": keyVersion.In(v),
		"revision": float64(revision), "status": "deployed", "appVersion": keyVersion.In(v),
	}}, nil
}

// The Helm release provider refuses every operation on an unreachable
// cluster (pulumi-kubernetes v4.32.0 helm_release.go:990 and :1170,
// provider.go:2546-2551 for Delete). deleteUnreachable does not apply to
// Helm releases: it is checked only for other resources (provider.go:2574).

func createRelease(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	if _, err := Cluster(s, tx); err != nil {
		return "", nil, fmt.Errorf("can't create Helm Release with unreachable cluster: %w", err)
	}
	outs, err := Install(s, tx, in.Values, 1)
	return releaseKey(in.Values), outs, err
}

func updateRelease(s *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	if _, err := Cluster(s, tx); err != nil {
		return nil, fmt.Errorf("can't update Helm Release with unreachable cluster: %w", err)
	}
	return Install(s, tx, news.Values, keyStatusRevision.In(old.Outputs)+1)
}

func deleteRelease(s *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	c, err := Cluster(s, tx)
	if err != nil {
		return fmt.Errorf("can't delete Helm Release with unreachable cluster. Reason: %q", err.Error())
	}
	delete(c.Releases, releaseKey(obj.Inputs))
	return nil
}

// kubernetesDiffConfig is pulumi-kubernetes v4.32.0 DiffConfig
// (provider/pkg/provider/provider.go:454-573): an unknown kubeconfig,
// context or cluster (a kubeconfig computed by another resource, during
// preview) replaces the provider, and with it every resource it manages;
// a known kubeconfig replaces it only when the active cluster (server, CA,
// ...) changed; renderYamlToDirectory replaces; a clusterIdentifier that
// changes replaces, one that stays the same suppresses all replacements.
func DiffConfig(olds, news engine.Props) *pulumirpc.DiffResponse {
	o, n := engine.Merge(olds.Values, nil), engine.Merge(news.Values, nil)
	// The engine adds the plugin version to the provider's inputs; it is
	// not a setting of the provider.
	delete(o, "version")
	delete(n, "version")
	changed := engine.TopKeys(engine.ChangedPaths(o, n))
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	const ci = "clusterIdentifier"
	var replaces []string
	_, hadCI := o[ci]
	_, hasCI := n[ci]
	if hadCI && hasCI && slices.Contains(changed, ci) {
		replaces = append(replaces, ci)
	}
	keepCI := hasCI && hadCI && !slices.Contains(changed, ci)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME}
	for _, key := range []string{keyKubeconfig.Path(), keyContext.Path(), keyCluster.Path()} {
		if _, unknown := n[key].(engine.UnknownMarker); unknown || news.Unknown[key] {
			resp.Diffs = []string{key}
			resp.Replaces = append(replaces, key)
			if keepCI {
				resp.Replaces = nil
			}
			return resp
		}
	}
	resp.Diffs = changed
	if slices.Contains(changed, "renderYamlToDirectory") {
		replaces = append(replaces, "renderYamlToDirectory")
	}
	oldCluster, oldFound := activeCluster(o)
	newCluster, found := activeCluster(n)
	if oldFound && found && !reflect.DeepEqual(oldCluster, newCluster) {
		for _, key := range []string{keyKubeconfig.Path(), keyContext.Path(), keyCluster.Path()} {
			if slices.Contains(changed, key) {
				replaces = append(replaces, key)
			}
		}
	}
	if !keepCI {
		resp.Replaces = replaces
	}
	return resp
}

// activeCluster is getActiveClusterFromConfig (provider/pkg/provider/util.go:201):
// the cluster entry of the current context, with the provider's context and
// cluster overrides.
func activeCluster(config map[string]any) (map[string]any, bool) {
	raw := keyKubeconfig.In(config)
	var kc struct {
		CurrentContext string `yaml:"current-context"`
		Contexts       []struct {
			Name    string `yaml:"name"`
			Context struct {
				Cluster string `yaml:"cluster"`
			} `yaml:"context"`
		} `yaml:"contexts"`
		Clusters []struct {
			Name    string         `yaml:"name"`
			Cluster map[string]any `yaml:"cluster"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal([]byte(raw), &kc); err != nil || len(kc.Clusters) == 0 {
		return nil, false
	}
	current := kc.CurrentContext
	if v, ok := keyContext.In(config).(string); ok {
		current = v
	}
	name, found := "", false
	for _, c := range kc.Contexts {
		if c.Name == current {
			name, found = c.Context.Cluster, true
		}
	}
	if !found {
		return nil, false
	}
	if v, ok := keyCluster.In(config).(string); ok {
		name = v
	}
	for _, c := range kc.Clusters {
		if c.Name == name {
			return c.Cluster, true
		}
	}
	return nil, false
}
