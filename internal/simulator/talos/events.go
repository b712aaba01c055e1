package talos

import (
	"fmt"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

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
	_ = a.Store().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "Events", Type: TokenTalosAPI, Name: target})
	if err := srv.Send(&machine.Event{}); err != nil {
		return err
	}
	sent := 0
	if in.GetTailEvents() >= 0 {
		sent = -1 // past events are skipped below, once
	}
	for {
		var batch []*machine.Event
		err := a.Store().View(func(tx *engine.Tx) error {
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
