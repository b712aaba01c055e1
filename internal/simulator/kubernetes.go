package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"gopkg.in/yaml.v3"
)

// TokenHelmRelease is the Helm release resource of the kubernetes provider.
const TokenHelmRelease = "kubernetes:helm.sh/v3:Release"

func kubernetesKinds() []*kind {
	return []*kind{{
		token:   TokenHelmRelease,
		replace: []string{"name", "namespace"},
		check:   checkRelease,
		create:  createRelease,
		update:  updateRelease,
		delete:  deleteRelease,
	}}
}

// checkRelease gives a release without a name the provider's generated
// one, kept from the previous inputs so it never changes by itself.
func checkRelease(name string, olds, news map[string]any) (map[string]any, []*pulumirpc.CheckFailure) {
	out := merge(news, nil)
	if str(out, "name") == "" {
		if old := str(olds, "name"); old != "" {
			out["name"] = old
		} else {
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			out["name"] = name + "-" + hex.EncodeToString(b)
		}
	}
	if str(out, "namespace") == "" {
		out["namespace"] = "default"
	}
	var failures []*pulumirpc.CheckFailure
	if _, unknown := out["chart"].(unknownMarker); !unknown && str(out, "chart") == "" {
		failures = append(failures, &pulumirpc.CheckFailure{Property: "chart", Reason: "chart is required"})
	}
	return out, failures
}

// cluster finds the bootstrapped cluster the provider's kubeconfig points
// at: same CA, and a server that is the cluster endpoint.
func (s *Server) cluster(tx *Tx) (*TalosCluster, error) {
	raw, unknown, configured := s.configValue("kubeconfig")
	if !configured || unknown {
		return nil, fmt.Errorf("kubernetes: the provider has no kubeconfig")
	}
	if raw == "" {
		return nil, fmt.Errorf("kubernetes: no kubeconfig given to the provider (the default provider would use ~/.kube/config): pass the cluster's kubeconfig to an explicit provider")
	}
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
	server, ca := kc.Clusters[0].Cluster.Server, strings.TrimSpace(string(unb64(kc.Clusters[0].Cluster.CA)))
	for _, c := range tx.State.Clusters {
		if strings.TrimSpace(c.K8sCA) != ca {
			continue
		}
		if c.Kubeconfigs == 0 {
			return nil, fmt.Errorf("kubernetes: cluster %s has issued no kubeconfig", c.Name)
		}
		want, _ := url.Parse(c.Endpoint)
		got, err := url.Parse(server)
		if err != nil || want == nil || got.Host != want.Host {
			return nil, fmt.Errorf("kubernetes: Get %q: dial tcp: no route to host (cluster %s serves %s)", server, c.Name, c.Endpoint)
		}
		return c, nil
	}
	return nil, fmt.Errorf("kubernetes: Get %q: dial tcp: connect: no route to host (no bootstrapped cluster has this kubeconfig's CA)", server)
}

func releaseKey(v map[string]any) string { return str(v, "namespace") + "/" + str(v, "name") }

func (s *Server) install(tx *Tx, v map[string]any, revision int) (map[string]any, error) {
	c, err := s.cluster(tx)
	if err != nil {
		return nil, err
	}
	chart := str(v, "chart")
	isRef := strings.Contains(chart, "://") || strings.HasPrefix(chart, "./") || strings.HasPrefix(chart, "/")
	if !isRef && str(v, "repositoryOpts.repo") == "" && !strings.Contains(chart, "/") {
		return nil, fmt.Errorf("helm: chart %q not found: set repositoryOpts.repo", chart)
	}
	base := chart[strings.LastIndex(chart, "/")+1:]
	if base == "cilium" && c.ProxyDisabled {
		kpr := fmt.Sprint(get(v, "values.kubeProxyReplacement"))
		if kpr != "true" || str(v, "values.k8sServiceHost") == "" {
			return nil, fmt.Errorf("cilium: kube-proxy is disabled in the Talos configuration, so the agent needs kubeProxyReplacement=true and k8sServiceHost/k8sServicePort (KubePrism: localhost:7445)")
		}
	}
	if c.Releases == nil {
		c.Releases = map[string]string{}
	}
	c.Releases[releaseKey(v)] = base
	return map[string]any{"status": map[string]any{
		"name": str(v, "name"), "namespace": str(v, "namespace"), "chart": base, "version": str(v, "version"),
		"revision": float64(revision), "status": "deployed", "appVersion": str(v, "version"),
	}}, nil
}

func createRelease(s *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	outs, err := s.install(tx, in.Values, 1)
	return releaseKey(in.Values), outs, err
}

func updateRelease(s *Server, tx *Tx, _ string, old *Object, news Props) (map[string]any, error) {
	return s.install(tx, news.Values, num(old.Outputs, "status.revision")+1)
}

func deleteRelease(s *Server, tx *Tx, obj *Object) error {
	c, err := s.cluster(tx)
	if err != nil {
		// The cluster is gone (its VMs were deleted): nothing to uninstall.
		return nil
	}
	delete(c.Releases, releaseKey(obj.Inputs))
	return nil
}
