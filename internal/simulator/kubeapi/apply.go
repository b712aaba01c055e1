package kubeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"gopkg.in/yaml.v3"
)

// ---- server-side apply ----

// kubeKinds are the built-in resources the simulated API serves, by
// group/version/resource: their kind and whether they are namespaced.
// Custom resources are those of an applied CustomResourceDefinition.
var kubeKinds = map[GVR]struct {
	kind       string
	namespaced bool
}{
	{"", "v1", "pods"}: {"Pod", true}, {"", "v1", "nodes"}: {"Node", false}, {"", "v1", "namespaces"}: {"Namespace", false},
	{"", "v1", "configmaps"}: {"ConfigMap", true}, {"", "v1", "secrets"}: {"Secret", true}, {"", "v1", "services"}: {"Service", true},
	{"", "v1", "serviceaccounts"}: {"ServiceAccount", true}, {"", "v1", "endpoints"}: {"Endpoints", true},
	{"", "v1", "persistentvolumeclaims"}: {"PersistentVolumeClaim", true}, {"", "v1", "persistentvolumes"}: {"PersistentVolume", false},
	{"", "v1", "limitranges"}: {"LimitRange", true}, {"", "v1", "resourcequotas"}: {"ResourceQuota", true},
	{"apps", "v1", "deployments"}: {"Deployment", true}, {"apps", "v1", "daemonsets"}: {"DaemonSet", true},
	{"apps", "v1", "statefulsets"}: {"StatefulSet", true}, {"apps", "v1", "replicasets"}: {"ReplicaSet", true},
	{"batch", "v1", "jobs"}: {"Job", true}, {"batch", "v1", "cronjobs"}: {"CronJob", true},
	{"policy", "v1", "poddisruptionbudgets"}:     {"PodDisruptionBudget", true},
	{"rbac.authorization.k8s.io", "v1", "roles"}: {"Role", true}, {"rbac.authorization.k8s.io", "v1", "rolebindings"}: {"RoleBinding", true},
	{"rbac.authorization.k8s.io", "v1", "clusterroles"}: {"ClusterRole", false}, {"rbac.authorization.k8s.io", "v1", "clusterrolebindings"}: {"ClusterRoleBinding", false},
	{"apiextensions.k8s.io", "v1", "customresourcedefinitions"}: {"CustomResourceDefinition", false},
	{"networking.k8s.io", "v1", "networkpolicies"}:              {"NetworkPolicy", true}, {"networking.k8s.io", "v1", "ingresses"}: {"Ingress", true},
	{"networking.k8s.io", "v1", "ingressclasses"}: {"IngressClass", false}, {"storage.k8s.io", "v1", "storageclasses"}: {"StorageClass", false},
	{"scheduling.k8s.io", "v1", "priorityclasses"}: {"PriorityClass", false}, {"coordination.k8s.io", "v1", "leases"}: {"Lease", true},
	{"admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"}: {"ValidatingWebhookConfiguration", false},
	{"admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"}:   {"MutatingWebhookConfiguration", false},
}

// KindOf is the kind of g and whether it is namespaced: built in, or
// defined by an applied CustomResourceDefinition (spec.group,
// spec.names.plural/kind, spec.scope, spec.versions[].name).
func KindOf(c *engine.TalosCluster, g GVR) (string, bool, bool) {
	if k, ok := kubeKinds[g]; ok {
		return k.kind, k.namespaced, true
	}
	crds := GVR{"apiextensions.k8s.io", "v1", "customresourcedefinitions"}
	for _, o := range c.KubeObjects {
		obj := o.Object
		if engine.Str(obj, "apiVersion") != crds.apiVersion() || engine.Str(obj, "kind") != "CustomResourceDefinition" ||
			engine.Str(obj, "spec.group") != g.Group || engine.Str(obj, "spec.names.plural") != g.Resource {
			continue
		}
		for i := range engine.List(obj, "spec.versions") {
			if engine.Str(obj, fmt.Sprintf("spec.versions[%d].name", i)) == g.Version {
				return engine.Str(obj, "spec.names.kind"), engine.Str(obj, "spec.scope") != "Cluster", true
			}
		}
	}
	return "", false, false
}

// GVROfKind is the resource of apiVersion and kind (for ApplyObject).
func GVROfKind(c *engine.TalosCluster, apiVersion, kind string) (GVR, bool) {
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		group, version = "", apiVersion
	}
	for g, k := range kubeKinds {
		if g.Group == group && g.Version == version && k.kind == kind {
			return g, true
		}
	}
	for _, o := range c.KubeObjects {
		obj := o.Object
		if engine.Str(obj, "kind") == "CustomResourceDefinition" && engine.Str(obj, "spec.group") == group && engine.Str(obj, "spec.names.kind") == kind {
			return GVR{group, version, engine.Str(obj, "spec.names.plural")}, true
		}
	}
	return GVR{}, false
}

// Scope checks that g exists and ns fits its scope.
func Scope(c *engine.TalosCluster, g GVR, ns string) (string, error) {
	kind, namespaced, ok := KindOf(c, g)
	if !ok || g == (GVR{"", "v1", "pods"}) || g == nodesGVR {
		if ok {
			return "", statusErr(http.StatusMethodNotAllowed, "MethodNotAllowed", "simulation: %s are derived from the simulation; only the requests docs/simulation.md lists are simulated", g.Resource)
		}
		return "", statusErr(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
	if namespaced != (ns != "") {
		return "", statusErr(http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
	return kind, nil
}

func (q *kubeRequest) getObject(g GVR, ns, name string) (int, any, error) {
	if _, err := Scope(q.c, g, ns); err != nil {
		return 0, nil, err
	}
	obj := Object(q.c, g, ns, name)
	if obj == nil {
		return 0, nil, notFound(g, name)
	}
	return http.StatusOK, obj, nil
}

func (q *kubeRequest) listObjects(g GVR, ns string) (int, any, error) {
	kind, namespaced, ok := KindOf(q.c, g)
	if !ok || g == (GVR{"", "v1", "pods"}) || g == nodesGVR || !namespaced && ns != "" {
		return q.getObject(g, ns, "")
	}
	sel, err := parseSelector(q.r.URL.Query().Get("labelSelector"))
	if err != nil {
		return 0, nil, err
	}
	var items []map[string]any
	for _, key := range slices.Sorted(maps.Keys(q.c.KubeObjects)) {
		o := q.c.KubeObjects[key].Object
		parts := strings.Split(key, "/")
		if len(parts) == 5 && (GVR{parts[0], parts[1], parts[2]}) == g && (ns == "" || parts[3] == ns) && sel.matches(o) {
			items = append(items, o)
		}
	}
	out := listOf(kind, ListRV(q.c), items)
	out["apiVersion"] = g.apiVersion()
	return http.StatusOK, out, nil
}

// apply is server-side apply (PATCH, Content-Type
// application/apply-patch+yaml, fieldManager required, force optional).
func (q *kubeRequest) apply(g GVR, ns, name string) (int, any, error) {
	query := q.r.URL.Query()
	manager := query.Get("fieldManager")
	if manager == "" {
		return 0, nil, invalidOptions("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")
	}
	force := query.Get("force") == "true"
	if _, err := Scope(q.c, g, ns); err != nil {
		return 0, nil, err
	}
	var patch map[string]any
	if err := yaml.Unmarshal(q.body, &patch); err != nil {
		return 0, nil, badRequest("error decoding YAML: %v", err)
	}
	patch, _ = engine.Normalise(patch).(map[string]any)
	obj, created, err := ApplyAt(q.c, g, ns, name, patch, manager, force, q.now)
	if err != nil {
		return 0, nil, err
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	return code, obj, nil
}

// ApplyObject is server-side apply of obj (apiVersion, kind, metadata
// name and namespace) by manager, as the Kubernetes API does it: for
// code that applies objects without a request (Talos's bootstrap
// manifests, applied by its manifest controller with the field manager
// "talos" and force).
func ApplyObject(c *engine.TalosCluster, obj map[string]any, manager string, force bool, now time.Time) (map[string]any, error) {
	g, ok := GVROfKind(c, engine.Str(obj, "apiVersion"), engine.Str(obj, "kind"))
	if !ok {
		return nil, fmt.Errorf("no matches for kind %q in version %q", engine.Str(obj, "kind"), engine.Str(obj, "apiVersion"))
	}
	out, _, err := ApplyAt(c, g, engine.Str(obj, "metadata.namespace"), engine.Str(obj, "metadata.name"), obj, manager, force, now)
	return out, err
}

// ApplyAt applies patch to the object g/ns/name: the patch's apiVersion,
// kind and name must be the path's; fields another manager owns with
// another value conflict (409) unless force, which takes them over;
// fields this manager applied before and no longer applies are removed
// unless another manager owns them; lists are atomic. A change takes the
// next resourceVersion (and metadata.generation when more than metadata
// changed); an apply that changes nothing keeps it.
func ApplyAt(c *engine.TalosCluster, g GVR, ns, name string, patch map[string]any, manager string, force bool, now time.Time) (map[string]any, bool, error) {
	if v := engine.Str(patch, "apiVersion"); v != g.apiVersion() {
		return nil, false, badRequest("Incorrect version specified in apply patch. Specified patch version: %s, expected: %s", v, g.apiVersion())
	}
	kind, _, _ := KindOf(c, g)
	if k := engine.Str(patch, "kind"); k != kind {
		return nil, false, badRequest("the kind in the data (%s) does not match the expected kind (%s)", k, kind)
	}
	if n := engine.Str(patch, "metadata.name"); n != name {
		return nil, false, badRequest("the name of the object (%s) does not match the name on the URL (%s)", n, name)
	}
	if pns := engine.Str(patch, "metadata.namespace"); pns != "" && pns != ns {
		return nil, false, badRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if engine.Get(patch, "metadata.managedFields") != nil {
		return nil, false, badRequest("metadata.managedFields must be nil")
	}
	if c.KubeObjects == nil {
		c.KubeObjects = map[string]*engine.KubeObject{}
	}
	key := kubeObjectKey(g, ns, name)
	stored := c.KubeObjects[key]
	created := stored == nil
	if created {
		stored = &engine.KubeObject{Object: map[string]any{}, Managers: map[string][]string{}}
	}
	applied := map[string]any{}
	leafPaths(patch, nil, applied)
	for _, p := range []string{"apiVersion", "kind", "metadata\x1fname", "metadata\x1fnamespace", "metadata\x1fresourceVersion",
		"metadata\x1fuid", "metadata\x1fcreationTimestamp", "metadata\x1fgeneration"} {
		delete(applied, p)
	}
	live := map[string]any{}
	leafPaths(stored.Object, nil, live)
	var conflicts []string
	for _, other := range slices.Sorted(maps.Keys(stored.Managers)) {
		if other == manager {
			continue
		}
		for _, p := range stored.Managers[other] {
			if v, ok := applied[p]; ok && !jsonEqual(v, live[p]) {
				conflicts = append(conflicts, other+"\x00"+p)
			}
		}
	}
	if len(conflicts) > 0 && !force {
		var causes []any
		var lines []string
		for _, cf := range conflicts {
			mgr, p, _ := strings.Cut(cf, "\x00")
			field := "." + strings.ReplaceAll(p, "\x1f", ".")
			causes = append(causes, map[string]any{"reason": "FieldManagerConflict", "message": fmt.Sprintf("conflict with %q using %s", mgr, g.apiVersion()), "field": field})
			lines = append(lines, fmt.Sprintf("conflict with %q using %s: %s", mgr, g.apiVersion(), field))
		}
		noun := "conflict"
		if len(lines) > 1 {
			noun = "conflicts"
		}
		e := statusErr(http.StatusConflict, "Conflict", "Apply failed with %d %s: %s", len(lines), noun, strings.Join(lines, "\n"))
		e.details = map[string]any{"causes": causes}
		return nil, false, e
	}
	before, _ := json.Marshal(stored.Object)
	next := deepCopyMap(stored.Object)
	delete(next, "metadata")
	md := map[string]any{}
	if m, ok := stored.Object["metadata"].(map[string]any); ok {
		md = deepCopyMap(m)
	}
	next["metadata"] = md
	owned := map[string]bool{}
	for other, paths := range stored.Managers {
		if other != manager {
			for _, p := range paths {
				owned[p] = true
			}
		}
	}
	for _, p := range stored.Managers[manager] {
		if _, still := applied[p]; !still && !owned[p] {
			removePath(next, strings.Split(p, "\x1f"))
		}
	}
	for p, v := range applied {
		setPath(next, strings.Split(p, "\x1f"), v)
	}
	// Ownership: the applier owns what it applied; force takes conflicting
	// fields from their owners; equal values are shared.
	for other, paths := range stored.Managers {
		if other == manager || !force {
			continue
		}
		stored.Managers[other] = slices.DeleteFunc(paths, func(p string) bool {
			_, ok := applied[p]
			return ok && !jsonEqual(applied[p], live[p])
		})
		if len(stored.Managers[other]) == 0 {
			delete(stored.Managers, other)
		}
	}
	stored.Managers[manager] = slices.Sorted(maps.Keys(applied))
	md = next["metadata"].(map[string]any)
	md["name"] = name
	if ns != "" {
		md["namespace"] = ns
	}
	next["apiVersion"], next["kind"] = g.apiVersion(), kind
	delete(md, "managedFields")
	after, _ := json.Marshal(withoutManaged(next))
	if created || !bytes.Equal(before, after) {
		if created {
			md["uid"] = uuid.NewString()
			md["creationTimestamp"] = now.UTC().Format(time.RFC3339)
			md["generation"] = 1
		} else if specChanged(stored.Object, next) {
			md["generation"] = engine.Num(stored.Object, "metadata.generation") + 1
		}
		md["resourceVersion"] = strconv.FormatUint(NextRV(c), 10)
	}
	md["managedFields"] = managedFields(stored.Managers, g.apiVersion(), now)
	stored.Object = next
	c.KubeObjects[key] = stored
	return next, created, nil
}

func withoutManaged(obj map[string]any) map[string]any {
	out := deepCopyMap(obj)
	if md, ok := out["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
	return out
}

func specChanged(a, b map[string]any) bool {
	x, y := deepCopyMap(a), deepCopyMap(b)
	delete(x, "metadata")
	delete(y, "metadata")
	delete(x, "status")
	delete(y, "status")
	return !jsonEqual(x, y)
}

// managedFields renders field ownership as the API does (FieldsV1:
// "f:<key>" per level).
func managedFields(managers map[string][]string, apiVersion string, now time.Time) []any {
	var out []any
	for _, mgr := range slices.Sorted(maps.Keys(managers)) {
		fields := map[string]any{}
		for _, p := range managers[mgr] {
			cur := fields
			for _, k := range strings.Split(p, "\x1f") {
				next, ok := cur["f:"+k].(map[string]any)
				if !ok {
					next = map[string]any{}
					cur["f:"+k] = next
				}
				cur = next
			}
		}
		out = append(out, map[string]any{"manager": mgr, "operation": "Apply", "apiVersion": apiVersion,
			"time": now.UTC().Format(time.RFC3339), "fieldsType": "FieldsV1", "fieldsV1": fields})
	}
	return out
}

// leafPaths collects the leaves of v (maps are descended; lists and
// scalars are leaves) by "\x1f"-joined key path.
func leafPaths(v map[string]any, prefix []string, out map[string]any) {
	for k, x := range v {
		p := append(slices.Clone(prefix), k)
		if m, ok := x.(map[string]any); ok && len(m) > 0 {
			leafPaths(m, p, out)
			continue
		}
		out[strings.Join(p, "\x1f")] = x
	}
}

func setPath(m map[string]any, p []string, v any) {
	for _, k := range p[:len(p)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[p[len(p)-1]] = v
}

func removePath(m map[string]any, p []string) {
	if len(p) == 1 {
		delete(m, p[0])
		return
	}
	if next, ok := m[p[0]].(map[string]any); ok {
		removePath(next, p[1:])
		if len(next) == 0 {
			delete(m, p[0])
		}
	}
}

func deepCopyMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
