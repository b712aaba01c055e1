package day2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/cosi-project/runtime/pkg/safe"
	"github.com/siderolabs/talos/pkg/machinery/client"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	"github.com/siderolabs/talos/pkg/machinery/resources/k8s"
)

// Talos's manifest controller creates the bootstrap manifests (kube-proxy,
// CoreDNS, flannel, RBAC, ...) once and never updates existing objects;
// `talosctl upgrade-k8s` ends by syncing them into Kubernetes. The rules
// SDA follows, with their sources, are in docs/simulation.md, "Bootstrap
// manifests".

// Manifest is one Kubernetes object of Talos's bootstrap manifests, as the
// control plane holds it (numbers are float64: the COSI wire form is a
// protobuf Struct).
type Manifest struct {
	APIVersion string
	Kind       string
	Namespace  string // "" for a cluster-scoped object
	Name       string
	Object     map[string]any
}

func (m Manifest) String() string {
	name := m.Name
	if m.Namespace != "" {
		name = m.Namespace + "/" + name
	}
	return m.APIVersion + " " + m.Kind + " " + name
}

// BootstrapManifests reads the bootstrap manifests from a control plane's
// Talos API as upgrade-k8s does (go-kubernetes v0.2.28
// manifests.GetBootstrapManifests): every Manifest resource
// (Manifests.kubernetes.talos.dev) in namespace controlplane, in resource
// ID order ("00-kubelet-bootstrapping-token", ..., "05-flannel",
// "10-kube-proxy", "11-core-dns", ..., "99-<inline manifest>"), each
// resource's objects in their order. A worker holds none.
func BootstrapManifests(ctx context.Context, cfg *clientconfig.Config, controlPlane string) ([]Manifest, error) {
	var out []Manifest
	err := onNode(ctx, cfg, controlPlane, 30*time.Second, func(ctx context.Context, c *client.Client) error {
		list, err := safe.StateListAll[*k8s.Manifest](ctx, c.COSI)
		if err != nil {
			return fmt.Errorf("listing the bootstrap manifests of %s: %w", controlPlane, err)
		}
		var resources []*k8s.Manifest
		for r := range list.All() {
			resources = append(resources, r)
		}
		// COSI lists by ID already; the order is what the sync relies on.
		sort.SliceStable(resources, func(i, j int) bool { return resources[i].Metadata().ID() < resources[j].Metadata().ID() })
		for _, r := range resources {
			for i, item := range r.TypedSpec().Items {
				m, err := manifestOf(item.Object)
				if err != nil {
					return fmt.Errorf("bootstrap manifest %s of %s, object %d: %w", r.Metadata().ID(), controlPlane, i+1, err)
				}
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

// manifestOf reads an object's identity.
func manifestOf(obj map[string]any) (Manifest, error) {
	m := Manifest{Object: obj}
	m.APIVersion, _ = obj["apiVersion"].(string)
	m.Kind, _ = obj["kind"].(string)
	if meta, ok := obj["metadata"].(map[string]any); ok {
		m.Name, _ = meta["name"].(string)
		m.Namespace, _ = meta["namespace"].(string)
	}
	if m.APIVersion == "" || m.Kind == "" || m.Name == "" {
		return m, fmt.Errorf("an object needs apiVersion, kind and metadata.name, got %q %q %q", m.APIVersion, m.Kind, m.Name)
	}
	return m, nil
}

// The query of upstream's server-side apply (talos v1.13.0
// syncManifestsSSA: ssa.NewManager with constants.KubernetesFieldManagerName;
// fluxcd/pkg/ssa applies with controller-runtime's FieldOwner and
// ForceOwnership): ?fieldManager=talos&force=true, what internal/kube's
// Client.Apply(ctx, ApplyPath(m), object, FieldManager, ForceConflicts)
// sends.
const (
	FieldManager   = "talos"
	ForceConflicts = true
)

// applyResource is a kind's REST resource: its plural name and whether it
// lives in a namespace.
type applyResource struct {
	plural     string
	namespaced bool
}

// applyResources are the kinds Talos's bootstrap manifests contain (talos
// v1.12.0 controllers/k8s/internal/k8stemplates), and Namespace, Role and
// RoleBinding, which inline manifests commonly carry, by API group ("" is
// the core group) and kind.
var applyResources = map[[2]string]applyResource{
	{"", "ConfigMap"}:      {"configmaps", true},
	{"", "Namespace"}:      {"namespaces", false},
	{"", "Secret"}:         {"secrets", true},
	{"", "Service"}:        {"services", true},
	{"", "ServiceAccount"}: {"serviceaccounts", true},
	{"apiextensions.k8s.io", "CustomResourceDefinition"}: {"customresourcedefinitions", false},
	{"apps", "DaemonSet"}:                                {"daemonsets", true},
	{"apps", "Deployment"}:                               {"deployments", true},
	{"rbac.authorization.k8s.io", "ClusterRole"}:         {"clusterroles", false},
	{"rbac.authorization.k8s.io", "ClusterRoleBinding"}:  {"clusterrolebindings", false},
	{"rbac.authorization.k8s.io", "Role"}:                {"roles", true},
	{"rbac.authorization.k8s.io", "RoleBinding"}:         {"rolebindings", true},
}

// ApplyPath is the REST path of m's server-side apply (a PATCH of content
// type application/apply-patch+yaml with FieldManager and ForceConflicts):
// the object's own path, core group /api/v1/..., others
// /apis/<group>/<version>/..., namespaced objects under
// namespaces/<namespace>/ (one without a namespace, from an inline
// manifest, under "default", where Talos's manifest apply controller
// created it), cluster-scoped ones not (a namespace they carry is ignored).
// A kind outside the table or a malformed apiVersion is refused.
func ApplyPath(m Manifest) (string, error) {
	group, version, ok := strings.Cut(m.APIVersion, "/")
	if !ok {
		group, version = "", m.APIVersion
	}
	if version == "" || strings.Contains(version, "/") {
		return "", fmt.Errorf("%s: apiVersion %q is not <group>/<version> or <version>", m, m.APIVersion)
	}
	if m.Name == "" {
		return "", fmt.Errorf("%s: no metadata.name", m)
	}
	r, ok := applyResources[[2]string{group, m.Kind}]
	if !ok {
		return "", fmt.Errorf("%s: SDA does not know the REST resource of kind %s in API group %q; it applies only %s", m, m.Kind, group, knownKinds())
	}
	path := "/apis/" + group + "/" + version
	if group == "" {
		path = "/api/" + version
	}
	if r.namespaced {
		ns := m.Namespace
		if ns == "" {
			// Talos created it there (v1.12.0 manifest_apply.go:254-257).
			ns = "default"
		}
		path += "/namespaces/" + url.PathEscape(ns)
	}
	return path + "/" + r.plural + "/" + url.PathEscape(m.Name), nil
}

// knownKinds lists the table's kinds, "group/Kind" (core kinds bare).
func knownKinds() string {
	var out []string
	for k := range applyResources {
		if k[0] == "" {
			out = append(out, k[1])
		} else {
			out = append(out, k[0]+"/"+k[1])
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// SyncManifests applies Talos's bootstrap manifests, as the first of
// controlPlanes that answers renders them now, to the cluster with
// server-side apply as Talos's field manager, forcing conflicts (Talos
// v1.13's syncManifestsSSA; v1.12.0's upgrade-k8s updates them with a
// plain get-and-replace, which SDA does not copy: an apply leaves the
// fields other managers own alone). Talos's manifest controller only ever
// creates these objects, so without this a Kubernetes upgrade leaves
// kube-proxy, CoreDNS and Flannel on their bootstrap versions. Objects go
// in Talos's order (manifest IDs: namespaces and RBAC before what uses
// them). Nothing is pruned.
func SyncManifests(ctx context.Context, cfg *clientconfig.Config, controlPlanes []string, log func(string)) error {
	var manifests []Manifest
	var last error
	for _, cp := range controlPlanes {
		ms, err := BootstrapManifests(ctx, cfg, cp)
		if err == nil {
			manifests, last = ms, nil
			break
		}
		last = err
	}
	if last != nil {
		return fmt.Errorf("reading the bootstrap manifests: %w", last)
	}
	kc, err := KubeClient(ctx, cfg, controlPlanes)
	if err != nil {
		return err
	}
	defer kc.Close()
	for _, m := range manifests {
		path, err := ApplyPath(m)
		if err != nil {
			return err
		}
		body, err := json.Marshal(m.Object)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if err := kc.Apply(ctx, path, body, FieldManager, ForceConflicts); err != nil {
			return fmt.Errorf("applying the bootstrap manifest %s: %w", m, err)
		}
		if log != nil {
			log(fmt.Sprintf("bootstrap manifest %s applied", m))
		}
	}
	return nil
}
