package talos

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cosi "github.com/cosi-project/runtime/api/v1alpha1"
	"github.com/cosi-project/runtime/pkg/state"
	"github.com/cosi-project/runtime/pkg/state/impl/inmem"
	"github.com/cosi-project/runtime/pkg/state/impl/namespaced"
	cosiserver "github.com/cosi-project/runtime/pkg/state/protobuf/server"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"github.com/siderolabs/talos/pkg/machinery/resources/k8s"
	"google.golang.org/grpc"
	"gopkg.in/yaml.v3"
)

// The bootstrap manifests a control plane holds as COSI resources
// (Manifests.kubernetes.talos.dev in namespace controlplane), which
// `talosctl upgrade-k8s` reads to sync them into Kubernetes. See
// docs/simulation.md, "Bootstrap manifests".

// isManifestList is a List request for the Manifest resources.
func isManifestList(req *cosi.ListRequest) bool {
	return req.GetNamespace() == k8s.ControlPlaneNamespaceName && req.GetType() == k8s.ManifestType
}

// listManifests answers a List of Manifests for the target node from an
// in-memory COSI state holding what its controllers would have rendered
// from its running configuration, served by cosi-project/runtime's protobuf
// server (which sorts by ID, as machined's in-memory state does).
func (s *cosiState) listManifests(info apidInfo, target string, req *cosi.ListRequest, srv grpc.ServerStreamingServer[cosi.ListResponse]) error {
	ctx := srv.Context()
	a := s.api
	var manifests []renderedManifest
	err := a.Store().View(func(tx *engine.Tx) error {
		nc, err := a.target(tx, info, target)
		if err != nil {
			return err
		}
		manifests, err = bootstrapManifests(nc.m.Config)
		return err
	})
	_ = a.Store().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "COSI.List", Type: TokenTalosAPI, Name: target, Error: errString(err)})
	if err != nil {
		return err
	}
	st := state.WrapCore(namespaced.NewState(inmem.Build))
	for _, m := range manifests {
		r := k8s.NewManifest(k8s.ControlPlaneNamespaceName, m.id)
		for _, obj := range m.objects {
			r.TypedSpec().Items = append(r.TypedSpec().Items, k8s.SingleManifest{Object: obj})
		}
		if err := st.Create(ctx, r, state.WithCreateOwner(m.owner)); err != nil {
			return err
		}
	}
	return cosiserver.NewState(st).List(req, srv)
}

// renderedManifest is one Manifest resource: its ID, the controller that
// owns it, and its objects in order.
type renderedManifest struct {
	id, owner string
	objects   []map[string]any
}

const (
	manifestController      = "k8s.ManifestController"
	extraManifestController = "k8s.ExtraManifestController"
)

// bootstrapManifests are the Manifest resources a node with configuration
// text holds (talos v1.12.0 controllers/k8s): none on a worker, as the
// configuration controllers that feed them run only on control planes
// (control_plane.go:40-56 controlplaneMapFunc); on a control plane, those
// of ManifestController.render (manifest.go:150-256) from the
// BootstrapManifestsConfig the configuration gives (control_plane.go:
// 279-362), then an inline manifest "99-<name>" per
// cluster.inlineManifests (control_plane.go:403-409, extra_manifest.go:
// 147-156, 227-241). The objects carry the kinds, names, namespaces,
// labels and images Talos renders, not every field of its templates.
// Manifests downloaded from URLs (cluster.extraManifests,
// cluster.network.cni.urls, the external cloud provider's) are not
// simulated.
func bootstrapManifests(text string) ([]renderedManifest, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	cfg, err := configloader.NewFromBytes([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("simulation: the running configuration does not load: %w", err)
	}
	if cfg.Machine() == nil || cfg.Cluster() == nil || !cfg.Machine().Type().IsControlPlane() {
		return nil, nil
	}
	c := cfg.Cluster()
	tokenID := ""
	if t := c.Token(); t != nil {
		tokenID = t.ID()
	}
	own := func(id string, objs ...map[string]any) renderedManifest {
		return renderedManifest{id: id, owner: manifestController, objects: objs}
	}
	out := []renderedManifest{
		own("00-kubelet-bootstrapping-token", object("v1", "Secret", "kube-system", "bootstrap-token-"+tokenID, nil,
			"type", "bootstrap.kubernetes.io/token")),
		own("01-csr-node-bootstrap", object(rbacV1, "ClusterRoleBinding", "", "system-bootstrap-node-bootstrapper", nil)),
		own("01-csr-approver-role-binding", object(rbacV1, "ClusterRoleBinding", "", "system-bootstrap-approve-node-client-csr", nil)),
		own("01-csr-renewal-role-binding", object(rbacV1, "ClusterRoleBinding", "", "system-bootstrap-node-renewal", nil)),
		own("11-kube-config-in-cluster", object("v1", "ConfigMap", "kube-system", "kubeconfig-in-cluster", nil)),
		own("11-talos-node-rbac-template",
			object(rbacV1, "ClusterRoleBinding", "", "system:talos-nodes", nil),
			object(rbacV1, "ClusterRole", "", "system:talos-nodes", nil)),
	}
	if c.CoreDNS().Enabled() {
		labels := map[string]any{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
		out = append(out,
			own("11-core-dns",
				object("v1", "ServiceAccount", "kube-system", "coredns", nil),
				object(rbacV1, "ClusterRole", "", "system:coredns", map[string]any{"kubernetes.io/bootstrapping": "rbac-defaults"}),
				object(rbacV1, "ClusterRoleBinding", "", "system:coredns", map[string]any{"kubernetes.io/bootstrapping": "rbac-defaults"}),
				object("v1", "ConfigMap", "kube-system", "coredns", nil),
				object("apps/v1", "Deployment", "kube-system", "coredns", labels,
					"spec", podSpec(labels, "coredns", c.CoreDNS().Image()))),
			own("11-core-dns-svc", object("v1", "Service", "kube-system", "kube-dns", labels)))
	}
	if c.Network().CNI().Name() == constants.FlannelCNI {
		labels := map[string]any{"k8s-app": "flannel", "tier": "node"}
		out = append(out, own("05-flannel",
			object(rbacV1, "ClusterRole", "", "flannel", map[string]any{"k8s-app": "flannel"}),
			object(rbacV1, "ClusterRoleBinding", "", "flannel", map[string]any{"k8s-app": "flannel"}),
			object("v1", "ServiceAccount", "kube-system", "flannel", nil),
			object("v1", "ConfigMap", "kube-system", "kube-flannel-cfg", labels),
			object("apps/v1", "DaemonSet", "kube-system", "kube-flannel", labels,
				// pkg/images/list.go:43, mirrored from docker.io/flannelcni/flannel.
				"spec", podSpec(labels, "kube-flannel", "ghcr.io/siderolabs/flannel:"+constants.FlannelVersion))))
	}
	if c.Proxy().Enabled() {
		labels := map[string]any{"k8s-app": "kube-proxy", "tier": "node"}
		out = append(out, own("10-kube-proxy",
			object("apps/v1", "DaemonSet", "kube-system", "kube-proxy", labels,
				"spec", podSpec(labels, "kube-proxy", c.Proxy().Image())),
			object("v1", "ServiceAccount", "kube-system", "kube-proxy", nil),
			object(rbacV1, "ClusterRoleBinding", "", "kube-proxy", nil)))
	}
	if cfg.Machine().Features().KubernetesTalosAPIAccess().Enabled() {
		out = append(out, own("13-talos-service-account-crd",
			object("apiextensions.k8s.io/v1", "CustomResourceDefinition", "",
				constants.ServiceAccountResourcePlural+"."+constants.ServiceAccountResourceGroup, nil)))
	}
	for _, im := range c.InlineManifests() {
		objs, err := yamlObjects(im.Contents())
		if err != nil {
			return nil, fmt.Errorf("simulation: inline manifest %q: %w", im.Name(), err)
		}
		out = append(out, renderedManifest{id: "99-" + im.Name(), owner: extraManifestController, objects: objs})
	}
	return out, nil
}

const rbacV1 = "rbac.authorization.k8s.io/v1"

// object is a Kubernetes object as Talos's manifest adapter stores it
// (runtime.DefaultUnstructuredConverter: maps and slices of any, which is
// also what the COSI wire form, a protobuf Struct, can carry), with extra
// top-level fields as key/value pairs.
func object(apiVersion, kind, namespace, name string, labels map[string]any, extra ...any) map[string]any {
	meta := map[string]any{"name": name}
	if namespace != "" {
		meta["namespace"] = namespace
	}
	if labels != nil {
		meta["labels"] = labels
	}
	obj := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta}
	for i := 0; i+1 < len(extra); i += 2 {
		obj[extra[i].(string)] = extra[i+1]
	}
	return obj
}

// podSpec is a DaemonSet's or Deployment's spec with its selector and one
// container.
func podSpec(labels map[string]any, container, image string) map[string]any {
	return map[string]any{
		"selector": map[string]any{"matchLabels": labels},
		"template": map[string]any{
			"metadata": map[string]any{"labels": labels},
			"spec": map[string]any{"containers": []any{
				map[string]any{"name": container, "image": image},
			}},
		},
	}
}

// yamlObjects are the objects of a multi-document YAML manifest as Talos's
// adapter reads them (adapters/k8s/manifest.go SetYAML): empty documents
// skipped, a List unwrapped into its items.
func yamlObjects(text string) ([]map[string]any, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var out []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(doc) == 0 {
			continue
		}
		if kind, _ := doc["kind"].(string); strings.HasSuffix(kind, "List") {
			if items, ok := doc["items"].([]any); ok {
				for _, it := range items {
					if m, ok := it.(map[string]any); ok {
						out = append(out, m)
					}
				}
				continue
			}
		}
		out = append(out, doc)
	}
}
