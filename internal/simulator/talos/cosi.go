package talos

import (
	"context"
	"strconv"
	"strings"
	"time"

	cosi "github.com/cosi-project/runtime/api/v1alpha1"
	"github.com/cosi-project/runtime/pkg/state"
	"github.com/cosi-project/runtime/pkg/state/impl/inmem"
	"github.com/cosi-project/runtime/pkg/state/impl/namespaced"
	cosiserver "github.com/cosi-project/runtime/pkg/state/protobuf/server"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/talos/pkg/machinery/extensions"
	talosruntime "github.com/siderolabs/talos/pkg/machinery/resources/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"
)

// cosiState is the COSI resource API every node serves (talos v1.12.0
// v1alpha1_server.go:148-153, cosi.resource.State), for the one resource
// type SDA reads: ExtensionStatuses in namespace runtime (`talosctl get
// extensions`). apid proxies COSI one node at a time ("node" metadata);
// "nodes" is refused (director.go:60-93).
type cosiState struct {
	cosi.UnimplementedStateServer
	api *API
}

// List answers from an in-memory COSI state holding the node's extension
// statuses, served by cosi-project/runtime's own protobuf server, so the
// wire form is the real one.
func (s *cosiState) List(req *cosi.ListRequest, srv grpc.ServerStreamingServer[cosi.ListResponse]) error {
	ctx := srv.Context()
	a := s.api
	info, target, err := a.streamTarget(ctx, "COSI.List", status.Error(codes.InvalidArgument, "one-2-many proxying is not supported for COSI methods"))
	if err != nil {
		return err
	}
	if isManifestList(req) {
		return s.listManifests(info, target, req, srv)
	}
	if req.GetNamespace() != talosruntime.NamespaceName || req.GetType() != talosruntime.ExtensionStatusType {
		return status.Errorf(codes.Unimplemented, "simulation: only %s in namespace %s are simulated, not %s in %s",
			talosruntime.ExtensionStatusType, talosruntime.NamespaceName, req.GetType(), req.GetNamespace())
	}
	var exts []extensions.Metadata
	err = a.Store().View(func(tx *engine.Tx) error {
		nc, err := a.target(tx, info, target)
		if err != nil {
			return err
		}
		exts = ExtensionStatuses(tx, nc.m)
		return nil
	})
	_ = a.Store().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "COSI.List", Type: TokenTalosAPI, Name: target, Error: errString(err)})
	if err != nil {
		return err
	}
	st := state.WrapCore(namespaced.NewState(inmem.Build))
	for i, meta := range exts {
		id := strconv.Itoa(i)
		if meta.Name == "modules.dep" {
			id = "modules.dep"
		}
		r := talosruntime.NewExtensionStatus(talosruntime.NamespaceName, id)
		r.TypedSpec().Image = id + ".sqsh"
		r.TypedSpec().Metadata = meta
		if err := st.Create(ctx, r); err != nil {
			return err
		}
	}
	return cosiserver.NewState(st).List(req, srv)
}

// Get answers COSI Get for the resources it simulates: the control plane
// components' configurations (staticpods.go, getStaticPodConfig);
// other resource types are refused as not simulated.
func (s *cosiState) Get(ctx context.Context, req *cosi.GetRequest) (*cosi.GetResponse, error) {
	if isStaticPodConfigGet(req) {
		return s.getStaticPodConfig(ctx, req)
	}
	return nil, status.Errorf(codes.Unimplemented, "simulation: COSI Get of %s in namespace %s is not simulated", req.GetType(), req.GetNamespace())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ExtensionStatuses are the system extensions a machine runs, as Talos
// lists them (ExtensionStatus, controllers/runtime/extension_status.go):
// the official extensions of its Image Factory schematic in order, then
// the factory's virtual "schematic" extension whose version is the
// schematic ID (image-factory internal/artifacts/schematic.go:65-83,
// internal/profile/profile.go:534-540), then Talos's "modules.dep". A
// machine not booted from a factory image has none.
func ExtensionStatuses(tx *engine.Tx, m *engine.TalosMachine) []extensions.Metadata {
	if m.Schematic == "" {
		return nil
	}
	var s schematicDoc
	_ = yaml.Unmarshal([]byte(tx.State.Schematics[m.Schematic]), &s)
	var out []extensions.Metadata
	for _, name := range s.Customization.SystemExtensions.OfficialExtensions {
		out = append(out, extensions.Metadata{Name: name[strings.LastIndex(name, "/")+1:], Version: m.Version, Author: "Sidero Labs"})
	}
	out = append(out,
		extensions.Metadata{Name: "schematic", Version: m.Schematic, Author: "Image Factory",
			Description: "Virtual extension which specifies the schematic of the image built with schematic."},
		extensions.Metadata{Name: "modules.dep", Version: m.Version, Author: "Talos Machinery"})
	return out
}
