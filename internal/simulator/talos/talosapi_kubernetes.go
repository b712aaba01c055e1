package talos

import (
	"context"
	"fmt"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The Talos API's view of Kubernetes on a node: applying a configuration
// (which is how `talosctl upgrade-k8s` changes a component's image) and
// listing the containers that run the components.

// applyModes are the ApplyConfigurationRequest modes the simulation runs,
// by the names the provider's applyMode uses for the same behaviour.
var applyModes = map[machine.ApplyConfigurationRequest_Mode]string{
	machine.ApplyConfigurationRequest_REBOOT:    "reboot",
	machine.ApplyConfigurationRequest_AUTO:      "auto",
	machine.ApplyConfigurationRequest_NO_REBOOT: "no_reboot",
	machine.ApplyConfigurationRequest_STAGED:    "staged",
}

// ApplyConfiguration is machined's ApplyConfiguration (talos v1.12.0
// internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go
// ApplyConfiguration): the configuration is loaded and validated for the
// node's runtime mode (cloud, nocloud) before anything changes; NO_REBOOT
// refuses a change Runtime.CanApplyImmediate does not allow ("this config
// change can't be applied in immediate mode"); AUTO reboots for such a
// change; STAGED keeps it for the next boot. It is the same apply as the
// provider's ConfigurationApply (applyTo), so both change the same running
// configuration and the same components. TRY and dry runs are not
// simulated and are refused as such.
func (a *API) ApplyConfiguration(ctx context.Context, in *machine.ApplyConfigurationRequest) (*machine.ApplyConfigurationResponse, error) {
	mode, ok := applyModes[in.GetMode()]
	if !ok || in.GetDryRun() {
		return nil, status.Errorf(codes.Unimplemented, "simulation: apply mode %s (dry run %t) is not simulated: use REBOOT, AUTO, NO_REBOOT or STAGED", in.GetMode(), in.GetDryRun())
	}
	msgs, err := apiCall(ctx, a, "ApplyConfiguration", true, func(nc *nodeCall) (*machine.ApplyConfiguration, error) {
		cfg, text, err := patchAndValidate(in.GetData(), nil, runtimeMode{install: false})
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "configuration validation failed: %v", err)
		}
		reboots := len(nc.tx.State.Reboots)
		resolved, err := ApplyTo(nc.tx, nc.m.Address, nc.g, patched{cfg: cfg, text: text}, mode,
			LinkMTU(nc.g, nc.m.Address, text), "talos-apid ApplyConfiguration", nc.faults, nc.now)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, strings.TrimPrefix(err.Error(), "rpc error: code = InvalidArgument desc = "))
		}
		out := &machine.ApplyConfiguration{Mode: in.GetMode(), ModeDetails: "Applied configuration without a reboot"}
		switch {
		case resolved == "staged":
			out.ModeDetails = "Staged configuration to be applied after the next reboot"
		case len(nc.tx.State.Reboots) > reboots:
			out.ModeDetails = "Applied configuration with a reboot"
		}
		return out, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.ApplyConfigurationResponse{Messages: msgs}, nil
}

// staticPods are the control plane's static pods, in the kube-system
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
