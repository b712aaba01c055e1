package talos

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	cosi "github.com/cosi-project/runtime/api/v1alpha1"
	"github.com/cosi-project/runtime/pkg/state"
	"github.com/cosi-project/runtime/pkg/state/impl/inmem"
	"github.com/cosi-project/runtime/pkg/state/impl/namespaced"
	cosiserver "github.com/cosi-project/runtime/pkg/state/protobuf/server"
	"github.com/distribution/reference"
	"github.com/google/uuid"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"
	"github.com/siderolabs/talos/pkg/machinery/extensions"
	talosruntime "github.com/siderolabs/talos/pkg/machinery/resources/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gopkg.in/yaml.v3"
)

// A node's upgrade as Talos v1.12.0 runs it, and what a client watches it
// by: the Upgrade call, the upgrade sequence after its reply, the node's
// event stream, its services (etcd's health) and its system extensions
// (the schematic it runs). See docs/simulation.md, "The Talos API".

// upgradeSequenceFailure is the error machined publishes when the
// installer exits non-zero inside the upgrade sequence (talos v1.12.0
// v1alpha1_controller.go:141-156 "sequence failed: " + the phase error
// :280, :316; internal/pkg/install/install.go:261): machined sees only
// the exit code, the installer's own reason goes to the console.
const UpgradeSequenceFailure = `sequence failed: error running phase 9 in upgrade sequence: task 1/1: failed, task "upgrade" failed: exit code 1`

// Upgrade is machined's Upgrade (talos v1.12.0 v1alpha1_server.go:486-575).
// Inside the call: the installer image must be a valid reference and is
// pulled into the system containerd (install.PullAndValidateInstallerImage;
// an injected failure of method "Upgrade" is a failed pull); a control
// plane, unless force, must pass etcd's ValidateForUpgrade
// (internal/pkg/etcd/etcd.go:95-121). The reply carries the actor ID; the
// upgrade sequence runs after it (runUpgradeSequence).
func (a *API) Upgrade(ctx context.Context, in *machine.UpgradeRequest) (*machine.UpgradeResponse, error) {
	// The installer's own failure inside the sequence (an injected failure
	// of method "UpgradeSequence", counted per Upgrade call).
	installerFails := a.St().Before(ctx, TokenTalosAPI, "UpgradeSequence")
	msgs, err := apiCall(ctx, a, "Upgrade", true, func(nc *nodeCall) (*machine.Upgrade, error) {
		image := in.GetImage()
		named, err := reference.ParseDockerRef(image)
		if err != nil {
			return nil, fmt.Errorf("error validating installer image %q: failed to parse image reference %q: %w", image, image, err)
		}
		version := ImageTag(named.String())
		if version == "" || !strings.HasPrefix(version, "v") {
			return nil, status.Errorf(codes.InvalidArgument, "simulation: the Talos version of installer image %q is its tag, which must be a version (vX.Y.Z)", image)
		}
		if nc.m.Type != "worker" && !in.GetForce() {
			if err := ValidateForUpgrade(nc.tx, nc.m, nc.now, nc.faults); err != nil {
				return nil, err
			}
		}
		actor := uuid.New().String()
		nc.log = RunUpgradeSequence(nc.tx, nc, named.String(), version, actor, installerFails)
		return &machine.Upgrade{Ack: "Upgrade request received", ActorId: actor}, nil
	}, func(err error) error {
		// The transient failure of an upgrade call: the installer image
		// cannot be pulled (image.Pull, "failed to pull image %q: %w").
		return fmt.Errorf("error validating installer image %q: failed to pull image %q: %w", in.GetImage(), in.GetImage(), err)
	})
	if err != nil {
		return nil, err
	}
	return &machine.UpgradeResponse{Messages: msgs}, nil
}

// runUpgradeSequence is the upgrade sequence machined runs after Upgrade's
// reply (v1alpha1_sequencer.go:423-475): drain, stop services, install,
// reboot, publishing a start and stop event per sequence, phase and task
// (v1alpha1_controller.go:231-356). The installer refuses, in its
// preflight, a host older than the target's UpgradeableFrom
// (cmd/installer/pkg/install/preflight.go:89-110); that, or an injected
// installer failure, fails the sequence: machined publishes the failure,
// then reboots the node after FatalRebootDelay (internal/app/machined/
// main.go:100-151, 282-309), and it boots its old version again (the
// bootloader is reverted). Otherwise the node reboots at once into the
// installer's version and schematic. Every event carries the actor ID of
// the Upgrade call (Events.Publish reads it from the sequence's context,
// v1alpha1_events.go:214-220). It returns the installer's console reason
// of a failure, for the call log.
func RunUpgradeSequence(tx *engine.Tx, nc *nodeCall, image, version, actor string, installerFails error) error {
	m, g, now := nc.m, nc.g, nc.now
	ev := func(kind, name, action string) {
		tx.State.TalosEvents = append(tx.State.TalosEvents, engine.TalosEvent{Address: m.Address, ID: strconv.Itoa(len(tx.State.TalosEvents) + 1),
			ActorID: actor, Kind: kind, Name: name, Action: action, Time: now})
	}
	ev("sequence", "upgrade", "start")
	for _, step := range [][2]string{{"drain", "cordonAndDrainNode"}, {"stopServices", "stopServicesForUpgrade"}, {"upgrade", "upgrade"}} {
		ev("phase", step[0], "start")
		ev("task", step[1], "start")
		ev("task", step[1], "stop")
		ev("phase", step[0], "stop")
	}
	reason := installerFails
	if reason == nil {
		reason = preflight(m.Version, version)
	}
	ev("sequence", "upgrade", "stop")
	if reason != nil {
		ev("sequence", "upgrade", "noop")
		tx.State.TalosEvents[len(tx.State.TalosEvents)-1].Error = UpgradeSequenceFailure
		start := now.Add(nc.faults.FatalReboot())
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
			Cause: "fatal sequencer error in \"upgrade\" sequence", Start: start, End: start.Add(nc.faults.RebootDuration())})
		return fmt.Errorf("upgrade sequence failed on the node (installer: %w)", reason)
	}
	tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
		Cause: "talos upgrade: " + image, Start: now, End: now.Add(nc.faults.RebootDuration())})
	schematic := schematicOfImage(image)
	m.Version, g.TalosVersion = version, version
	m.Schematic, g.TalosSchematic = schematic, schematic
	return nil
}

// preflight is the installer's version check (preflight.go:89-110): the
// target version's UpgradeableFrom the host's (machinery compatibility).
func preflight(host, target string) error {
	h, err := compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: host})
	if err != nil {
		return fmt.Errorf("pre-flight checks failed: %w", err)
	}
	t, err := compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: target})
	if err != nil {
		return fmt.Errorf("pre-flight checks failed: %w", err)
	}
	if err := t.UpgradeableFrom(h); err != nil {
		return fmt.Errorf("pre-flight checks failed: %w", err)
	}
	return nil
}

// validateForUpgrade is etcd's ValidateForUpgrade as machined runs it for a
// control plane: an etcd client on the control planes (none before
// bootstrap), two members refuse (an upgrade would lose quorum), and every
// member must be started and answer etcd's health check
// (validateMemberHealth, etcd.go:95-149): etcdHealthy.
func ValidateForUpgrade(tx *engine.Tx, m *engine.TalosMachine, now time.Time, f engine.Faults) error {
	c := tx.State.Clusters[m.ClusterID]
	if c == nil || len(c.EtcdMembers) == 0 {
		return errors.New("failed to create etcd client: no controlplane endpoints discovered yet")
	}
	if EtcdLeader(tx, c, now) == "" {
		return errors.New("failed to acquire upgrade mutex: etcdserver: no leader")
	}
	members := SortedMembers(c)
	if len(members) == 2 {
		return fmt.Errorf("error validating etcd for upgrade: etcd member count(%d) is insufficient to maintain quorum if upgrade commences", len(members))
	}
	for _, addr := range members {
		if err := EtcdHealthy(tx, c, addr, now, f); err != nil {
			return fmt.Errorf("error validating etcd for upgrade: etcd member %016x is not healthy; all members must be healthy to perform an upgrade: context deadline exceeded (%s: %v)",
				EtcdMemberID(addr), addr, err)
		}
	}
	return nil
}

// etcdHealthy says why member addr of c does not answer etcd's health
// check, or nil: its machine is configured into c and up (etcdUp), and
// its etcd has had EtcdStartTime since the machine last booted.
func EtcdHealthy(tx *engine.Tx, c *engine.TalosCluster, addr string, now time.Time, f engine.Faults) error {
	if !EtcdUp(tx, c, addr, now) {
		if _, err := network.TalosUp(tx, addr, now); err != nil {
			return err
		}
		return errors.New("its machine is not configured into the cluster")
	}
	g, err := network.VmAt(tx, addr)
	if err != nil {
		return err
	}
	if ready := BootedAt(tx, g.VMID, now).Add(f.EtcdStart()); now.Before(ready) {
		return fmt.Errorf("etcd is starting after the node's boot (healthy at %s)", ready.Format(time.RFC3339Nano))
	}
	return nil
}

// bootedAt is when VM vmid last came up: the end of its last reboot that
// has ended (the zero time if it never rebooted).
func BootedAt(tx *engine.Tx, vmid int, now time.Time) time.Time {
	var at time.Time
	for _, r := range tx.State.Reboots {
		if r.VMID == vmid && !now.Before(r.End) && r.End.After(at) {
			at = r.End
		}
	}
	return at
}

// ServiceList is machined's ServiceList (v1alpha1_server.go ServiceList)
// for the services the simulation has: apid, the kubelet and, on a
// control plane, etcd, whose health is etcdHealthy (what `talosctl
// health`'s "etcd to be healthy" reads, pkg/cluster/check/service.go:
// 101-139).
func (a *API) ServiceList(ctx context.Context, _ *emptypb.Empty) (*machine.ServiceListResponse, error) {
	msgs, err := apiCall(ctx, a, "ServiceList", false, func(nc *nodeCall) (*machine.ServiceList, error) {
		running := func(id string, healthy bool, msg string) *machine.ServiceInfo {
			return &machine.ServiceInfo{Id: id, State: "Running",
				Events: &machine.ServiceEvents{Events: []*machine.ServiceEvent{{Msg: "Health check successful", State: "Running", Ts: timestamppb.New(nc.now)}}},
				Health: &machine.ServiceHealth{Healthy: healthy, LastMessage: msg}}
		}
		out := &machine.ServiceList{Services: []*machine.ServiceInfo{running("apid", true, ""), running("kubelet", true, "")}}
		if nc.m.Type == "controlplane" {
			c := nc.tx.State.Clusters[nc.m.ClusterID]
			err := errors.New("etcd is waiting to join the cluster")
			if c != nil {
				err = EtcdHealthy(nc.tx, c, nc.m.Address, nc.now, nc.faults)
			}
			svc := running("etcd", err == nil, "")
			if err != nil {
				svc.Health.LastMessage = err.Error()
			}
			out.Services = append(out.Services, svc)
		}
		return out, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.ServiceListResponse{Messages: msgs}, nil
}

// streamTarget is apid's routing for a streaming call, which reaches one
// node: the caller's roles must admit method; "nodes" metadata is refused
// with many; the target is the "node" metadata, or "" for the endpoint.
func (a *API) streamTarget(ctx context.Context, method string, many error) (apidInfo, string, error) {
	info, roles, err := a.caller(ctx)
	if err != nil {
		return info, "", err
	}
	if !roles.IncludesAny(methodRoles[method]) {
		return info, "", status.Error(codes.PermissionDenied, "not authorized")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if _, ok := md["nodes"]; ok {
		return info, "", many
	}
	if node := md["node"]; len(node) == 1 {
		return info, node[0], nil
	}
	return info, "", nil
}

// eventsPoll is how often an event stream looks for new events.
const eventsPoll = 100 * time.Millisecond

// Events is machined's Events (v1alpha1_server.go Events): an empty event
// first (the watch is established; machinery's EventsWatchV2 reads and
// drops it), then the node's buffered events (all with tail_events -1,
// filtered by with_actor_id), then new ones as they are published, until
// the client goes away or the node does (a reboot ends the stream with
// the transport error, and the buffer does not survive it: only events
// since the node's last boot are kept). One node per stream: the endpoint,
// or the "node" metadata.
func (a *API) Events(in *machine.EventsRequest, srv grpc.ServerStreamingServer[machine.Event]) error {
	ctx := srv.Context()
	info, target, err := a.streamTarget(ctx, "Events", status.Error(codes.Unimplemented, "simulation: events of several nodes in one stream are not simulated"))
	if err != nil {
		return err
	}
	_ = a.St().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "Events", Type: TokenTalosAPI, Name: target})
	if err := srv.Send(&machine.Event{}); err != nil {
		return err
	}
	sent := 0
	if in.GetTailEvents() >= 0 {
		sent = -1 // past events are skipped below, once
	}
	for {
		var batch []*machine.Event
		err := a.St().View(func(tx *engine.Tx) error {
			nc, err := a.target(tx, info, target)
			if err != nil {
				return err
			}
			var evs []engine.TalosEvent
			since := BootedAt(tx, nc.g.VMID, nc.now)
			for _, e := range tx.State.TalosEvents {
				if e.Address == nc.m.Address && !e.Time.Before(since) && !nc.now.Before(e.Time) &&
					(in.GetWithActorId() == "" || e.ActorID == in.GetWithActorId()) {
					evs = append(evs, e)
				}
			}
			if sent < 0 {
				sent = max(0, len(evs)-int(in.GetTailEvents()))
			}
			for _, e := range evs[min(sent, len(evs)):] {
				msg, err := eventMessage(e)
				if err != nil {
					return err
				}
				batch = append(batch, msg)
			}
			sent = max(sent, len(evs))
			return nil
		})
		if err != nil {
			return err
		}
		for _, msg := range batch {
			if err := srv.Send(msg); err != nil {
				return err
			}
		}
		if err := sleep(ctx, eventsPoll); err != nil {
			return status.FromContextError(err).Err()
		}
	}
}

// eventMessage is an event on the wire: its payload as an Any of type
// "talos/runtime/<message name>" (the type URL machinery's UnmarshalEvent
// decodes, runtime/events.go).
func eventMessage(e engine.TalosEvent) (*machine.Event, error) {
	var payload proto.Message
	switch e.Kind {
	case "sequence":
		se := &machine.SequenceEvent{Sequence: e.Name, Action: machine.SequenceEvent_Action(machine.SequenceEvent_Action_value[strings.ToUpper(e.Action)])}
		if e.Error != "" {
			se.Error = &common.Error{Code: common.Code_FATAL, Message: e.Error}
		}
		payload = se
	case "phase":
		payload = &machine.PhaseEvent{Phase: e.Name, Action: machine.PhaseEvent_Action(machine.PhaseEvent_Action_value[strings.ToUpper(e.Action)])}
	case "task":
		payload = &machine.TaskEvent{Task: e.Name, Action: machine.TaskEvent_Action(machine.TaskEvent_Action_value[strings.ToUpper(e.Action)])}
	default:
		return nil, fmt.Errorf("simulation: unknown event kind %q", e.Kind)
	}
	value, err := proto.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return &machine.Event{Id: e.ID, ActorId: e.ActorID,
		Data: &anypb.Any{TypeUrl: "talos/runtime/" + string(payload.ProtoReflect().Descriptor().FullName()), Value: value}}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// factorySchematic finds an Image Factory schematic ID in an image
// reference or URL: the installer ".../installer/<id>:<version>" or the
// disk image ".../image/<id>/<version>/...".
var factorySchematic = regexp.MustCompile(`/([0-9a-f]{64})(?:[:/@]|$)`)

// schematicOfImage is the schematic ID in an image reference or URL ("" for
// an image not built by Image Factory).
func schematicOfImage(ref string) string {
	if m := factorySchematic.FindStringSubmatch(ref); m != nil {
		return m[1]
	}
	return ""
}

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
	err = a.St().View(func(tx *engine.Tx) error {
		nc, err := a.target(tx, info, target)
		if err != nil {
			return err
		}
		exts = ExtensionStatuses(tx, nc.m)
		return nil
	})
	_ = a.St().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "COSI.List", Type: TokenTalosAPI, Name: target, Error: errString(err)})
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
// components' configurations (kubeapi_pods.go, getStaticPodConfig);
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

// extensionStatuses are the system extensions a machine runs, as Talos
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

// versionInURL finds the Talos version in an image URL (Image Factory
// .../image/<schematic>/v1.12.0/nocloud-amd64.raw.zst, GitHub releases
// .../download/v1.12.0/...).
var versionInURL = regexp.MustCompile(`/(v\d+\.\d+\.\d+[^/]*)/`)

// bootVersion is the Talos version and Image Factory schematic a VM boots
// before any upgrade through the API: what an upgrade installed on its
// disk (Guest.TalosVersion, TalosSchematic); else the version and
// schematic in the URL of the image its disk was imported from; else those
// of the installer image in its configuration (machine.install.image);
// else the simulation's default version (v1.12.0) and no schematic.
func BootVersion(tx *engine.Tx, g *engine.Guest, doc map[string]any) (version, schematic string) {
	if g.TalosVersion != "" {
		return g.TalosVersion, g.TalosSchematic
	}
	for _, obj := range tx.State.Objects {
		if obj.Type != proxmox.TokenVM || obj.ID != strconv.Itoa(g.VMID) {
			continue
		}
		for i := range engine.List(obj.Inputs, "disks") {
			id := engine.Str(obj.Inputs, fmt.Sprintf("disks[%d].fileId", i))
			if f := tx.State.Files[proxmox.FileKey(tx, g.Node, id)]; id != "" && f != nil {
				if m := versionInURL.FindStringSubmatch(f.URL); m != nil {
					return m[1], schematicOfImage(f.URL)
				}
			}
		}
	}
	installer := engine.Str(doc, "machine.install.image")
	if tag := ImageTag(installer); strings.HasPrefix(tag, "v") {
		return tag, schematicOfImage(installer)
	}
	return defaultTalosContract, ""
}
