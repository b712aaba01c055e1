package talos

import (
	"context"
	"fmt"
	"strconv"
	"time"

	cosi "github.com/cosi-project/runtime/api/v1alpha1"
	"github.com/cosi-project/runtime/pkg/resource"
	"github.com/cosi-project/runtime/pkg/resource/protobuf"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"github.com/siderolabs/talos/pkg/machinery/resources/k8s"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StaticPods are the control plane's static pods, in the kube-system
// namespace, as Talos renders them (k8s-app label and pod name
// "<component>-<node name>").
var StaticPods = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// Containers is machined's Containers (talos v1.12.0 v1alpha1_server.go
// Containers): the CRI containers in namespace k8s.io (`talosctl
// containers -k`: the static pods, named by component, pod
// "kube-system/<component>-<node>") or the system containerd namespace
// (`talosctl containers`: Talos's own services, the kubelet among them).
// A component whose image a configuration just changed is not listed
// while it restarts (ComponentChange.Ready); static pods run once the node
// has joined its bootstrapped cluster.
func (a *API) Containers(ctx context.Context, in *machine.ContainersRequest) (*machine.ContainersResponse, error) {
	switch {
	case in.GetNamespace() == constants.K8sContainerdNamespace && in.GetDriver() == common.ContainerDriver_CRI,
		in.GetNamespace() == constants.SystemContainerdNamespace && in.GetDriver() == common.ContainerDriver_CONTAINERD:
	default:
		return nil, status.Errorf(codes.Unimplemented, "simulation: containers of namespace %q with driver %s are not simulated: use k8s.io with CRI or system with CONTAINERD", in.GetNamespace(), in.GetDriver())
	}
	msgs, err := apiCall(ctx, a, "Containers", false, func(nc *nodeCall) (*machine.Container, error) {
		m := nc.m
		doc := V1alpha1Doc(AppliedConfig(nc.tx, m.Address))
		restarting := func(component string) bool {
			for _, c := range nc.tx.State.ComponentChanges {
				if c.Address == m.Address && c.Component == component && nc.now.Before(c.Ready) {
					return true
				}
			}
			return false
		}
		out := &machine.Container{}
		if in.GetNamespace() == constants.SystemContainerdNamespace {
			if !restarting("kubelet") && !nc.now.Before(m.KubeletStoppedUntil) {
				out.Containers = append(out.Containers, &machine.ContainerInfo{Namespace: constants.SystemContainerdNamespace,
					Id: "kubelet", Image: ComponentImage(m, doc, "kubelet"), Status: "RUNNING"})
			}
			return out, nil
		}
		c := nc.tx.State.Clusters[m.ClusterID]
		if m.Type != "controlplane" || c == nil || m.JoinBlocked != "" {
			return out, nil
		}
		node := nodeName(m, nc.g)
		for _, pod := range StaticPods {
			if restarting(pod) {
				continue
			}
			out.Containers = append(out.Containers, &machine.ContainerInfo{Namespace: constants.K8sContainerdNamespace,
				Id: fmt.Sprintf("%x", EtcdMemberID(m.Address+pod)), PodId: "kube-system/" + pod + "-" + node, Name: pod,
				Image: ComponentImage(m, doc, pod), Status: "CONTAINER_RUNNING"})
		}
		return out, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.ContainersResponse{Messages: msgs}, nil
}

// StaticPodConfigVersion is the version of machine m's configuration
// resource for component (COSI: created at 1, +1 per change of its spec;
// pkg/state/impl/inmem/collection.go:152, pkg/state/wrap.go:52 skips
// an update that changes nothing).
func StaticPodConfigVersion(tx *engine.Tx, m *engine.TalosMachine, component string, now time.Time) uint64 {
	cv := m.StaticPodConfigs[component]
	if cv == nil || BootedAt(tx, m.VMID, now).After(cv.Boot) {
		return 1
	}
	return cv.Version
}

// BumpStaticPodConfig records a change of component's rendered
// configuration on m (a new image: ComponentChanges).
func BumpStaticPodConfig(tx *engine.Tx, m *engine.TalosMachine, component string, now time.Time) {
	v := StaticPodConfigVersion(tx, m, component, now)
	if m.StaticPodConfigs == nil {
		m.StaticPodConfigs = map[string]*engine.StaticPodConfig{}
	}
	m.StaticPodConfigs[component] = &engine.StaticPodConfig{Version: v + 1, Boot: BootedAt(tx, m.VMID, now)}
}

// ---- the components' configurations on the Talos API (COSI) ----

// staticPodConfigTypes are the COSI types of the control plane
// components' configurations (pkg/machinery/resources/k8s at v1.12.0),
// in namespace controlplane, ID the component (controlplaneConfigResourceType,
// pkg/cluster/kubernetes/talos_managed.go:264-276).
var staticPodConfigTypes = map[resource.Type]string{
	k8s.APIServerConfigType:         "kube-apiserver",
	k8s.ControllerManagerConfigType: "kube-controller-manager",
	k8s.SchedulerConfigType:         "kube-scheduler",
}

func isStaticPodConfigGet(req *cosi.GetRequest) bool {
	_, ok := staticPodConfigTypes[req.GetType()]
	return ok
}

// getStaticPodConfig is COSI Get of a component's configuration resource
// on a node: on a configured control plane, the resource with the
// component's image and its version (StaticPodConfigVersion); elsewhere
// (a worker, another ID or namespace) NotFound, as COSI reports it.
func (s *cosiState) getStaticPodConfig(ctx context.Context, req *cosi.GetRequest) (*cosi.GetResponse, error) {
	a := s.api
	info, target, err := a.streamTarget(ctx, "COSI.List", status.Error(codes.InvalidArgument, "one-2-many proxying is not supported for COSI methods"))
	if err != nil {
		return nil, err
	}
	component := staticPodConfigTypes[req.GetType()]
	var r resource.Resource
	err = a.Store().View(func(tx *engine.Tx) error {
		nc, err := a.target(tx, info, target)
		if err != nil {
			return err
		}
		if nc.m.Type != "controlplane" || req.GetNamespace() != k8s.ControlPlaneNamespaceName || req.GetId() != component {
			return status.Errorf(codes.NotFound, "resource %s(%s/%s@undefined) doesn't exist", req.GetType(), req.GetNamespace(), req.GetId())
		}
		image := ComponentImage(nc.m, V1alpha1Doc(AppliedConfig(nc.tx, nc.m.Address)), component)
		switch req.GetType() {
		case k8s.APIServerConfigType:
			res := k8s.NewAPIServerConfig()
			res.TypedSpec().Image = image
			r = res
		case k8s.ControllerManagerConfigType:
			res := k8s.NewControllerManagerConfig()
			res.TypedSpec().Image = image
			r = res
		default:
			res := k8s.NewSchedulerConfig()
			res.TypedSpec().Image = image
			r = res
		}
		v, err := resource.ParseVersion(strconv.FormatUint(StaticPodConfigVersion(nc.tx, nc.m, component, nc.now), 10))
		if err != nil {
			return err
		}
		r.Metadata().SetVersion(v)
		return nil
	})
	_ = a.Store().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "COSI.Get", Type: TokenTalosAPI, Name: target, Error: errString(err)})
	if err != nil {
		return nil, err
	}
	pr, err := protobuf.FromResource(r)
	if err != nil {
		return nil, err
	}
	m, err := pr.Marshal()
	if err != nil {
		return nil, err
	}
	return &cosi.GetResponse{Resource: m}, nil
}
