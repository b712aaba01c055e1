package talos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/google/uuid"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A node's upgrade as Talos v1.12.0 runs it, and what a client watches it
// by: the Upgrade call, the upgrade sequence after its reply, the node's
// event stream, its services (etcd's health) and its system extensions
// (the schematic it runs). See docs/simulation.md, "The Talos API".

// UpgradeSequenceFailure is the error machined publishes when the
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
// upgrade sequence runs after it (RunUpgradeSequence).
func (a *API) Upgrade(ctx context.Context, in *machine.UpgradeRequest) (*machine.UpgradeResponse, error) {
	// The installer's own failure inside the sequence (an injected failure
	// of method "UpgradeSequence", counted per Upgrade call).
	installerFails := a.Store().Before(ctx, TokenTalosAPI, "UpgradeSequence")
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

// RunUpgradeSequence is the upgrade sequence machined runs after Upgrade's
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

// BootedAt is when VM vmid last came up: the end of its last reboot that
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
