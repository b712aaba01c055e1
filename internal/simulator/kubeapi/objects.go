package kubeapi

import (
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/sda-platform/sda/internal/simulator/engine"
)

// GVR is a Kubernetes group, version and resource ("" is the core group).
type GVR struct{ Group, Version, Resource string }

// apiVersion is the group/version an object of g carries.
func (g GVR) apiVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

// groupResource is how errors name a resource ("configmaps",
// "daemonsets.apps").
func (g GVR) groupResource() string {
	if g.Group == "" {
		return g.Resource
	}
	return g.Resource + "." + g.Group
}

func kubeObjectKey(g GVR, ns, name string) string {
	return strings.Join([]string{g.Group, g.Version, g.Resource, ns, name}, "/")
}

// Object is the object server-side apply stored under g, ns, name (nil
// when there is none); the caller must not modify it.
func Object(c *engine.TalosCluster, g GVR, ns, name string) map[string]any {
	if o := c.KubeObjects[kubeObjectKey(g, ns, name)]; o != nil {
		return o.Object
	}
	return nil
}

// NextRV is the next resourceVersion of the cluster's API.
func NextRV(c *engine.TalosCluster) uint64 {
	c.ResourceVersion++
	return c.ResourceVersion
}

func ListRV(c *engine.TalosCluster) string { return strconv.FormatUint(max(c.ResourceVersion, 1), 10) }

func kubeUID(parts ...string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte(strings.Join(parts, "\x00"))).String()
}

func listOf(kind, rv string, items []map[string]any) map[string]any {
	if items == nil {
		items = []map[string]any{}
	}
	return map[string]any{"kind": kind + "List", "apiVersion": "v1", "metadata": map[string]any{"resourceVersion": rv}, "items": items}
}
