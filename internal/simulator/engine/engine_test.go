package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/sig"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/sda-platform/sda/internal/simulator/simtest"
	"google.golang.org/protobuf/types/known/structpb"
)

// An injected failure fires on exactly the configured call, once; the call
// log records every call with its error.
func TestFailOnceAndCallLog(t *testing.T) {
	s := simtest.NewTestServer(t, "proxmoxve", engine.DefaultWorld(engine.WorldNode{Name: "pve"}))
	if err := engine.WriteFaults(s.Store.Dir, engine.Faults{FailOnce: []engine.FailOnce{{Type: proxmox.TokenBridge, Method: "Create", Ordinal: 2}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var errs []string
	for i, name := range []string{"vmbr1", "vmbr2", "vmbr2", "vmbr3"} {
		props, _ := structpb.NewStruct(map[string]any{"nodeName": "pve", "name": name})
		_, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: "urn:pulumi:s::p::" + proxmox.TokenBridge + "::b" + name + string(rune('a'+i)), Type: proxmox.TokenBridge, Properties: props})
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			errs = append(errs, "")
		}
	}
	if errs[0] != "" || !strings.Contains(errs[1], "simulated failure") || errs[2] != "" || errs[3] != "" {
		t.Fatalf("want only the second call to fail (and the retry to succeed): %q", errs)
	}
	calls, err := engine.ReadCalls(s.Store.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 4 || calls[1].Error == "" || calls[2].Error != "" {
		t.Fatalf("call log: %+v", calls)
	}
}

// Secrets cross the wire wrapped, in both directions, and the keys that
// held a secret stay secret in the outputs.
func TestSecretWrapping(t *testing.T) {
	in, _ := structpb.NewStruct(map[string]any{
		"plain":  "a",
		"token":  map[string]any{sig.Key: sig.Secret, "value": "s3cret"},
		"nested": map[string]any{"key": map[string]any{sig.Key: sig.Secret, "value": "k"}},
		"later":  sig.UnknownStringValue,
	})
	p := engine.FromStruct(in)
	if p.Values["token"] != "s3cret" || !p.Secret["token"] || !p.Secret["nested"] || p.Secret["plain"] {
		t.Fatalf("secrets not unwrapped and recorded: %+v", p)
	}
	if !p.Unknown["later"] {
		t.Fatalf("unknown value not recorded: %+v", p)
	}
	out, err := engine.ToStruct(p.Values, p.Secret)
	if err != nil {
		t.Fatal(err)
	}
	tok := out.AsMap()["token"].(map[string]any)
	if tok[sig.Key] != sig.Secret || tok["value"] != "s3cret" {
		t.Fatalf("secret not wrapped on the way out: %v", tok)
	}
	if out.AsMap()["later"] != sig.UnknownStringValue {
		t.Fatalf("unknown not sent back as unknown: %v", out.AsMap()["later"])
	}
}

// A resource moved by an alias keeps its ID and gets a new URN: the
// providers address it by ID, so an update and a delete under the new URN
// reach the same object (moved to the new URN), as on a real system.
func TestObjectsAddressedByID(t *testing.T) {
	s := simtest.NewTestServer(t, "proxmoxve", engine.DefaultWorld(engine.WorldNode{Name: "pve"}))
	ctx := context.Background()
	old := "urn:pulumi:s::p::" + proxmox.TokenBridge + "::old-name"
	moved := "urn:pulumi:s::p::" + proxmox.TokenBridge + "::new-name"
	props, _ := structpb.NewStruct(map[string]any{"nodeName": "pve", "name": "vmbr7", "comment": "a"})
	res, err := s.Create(ctx, &pulumirpc.CreateRequest{Urn: old, Type: proxmox.TokenBridge, Properties: props})
	if err != nil {
		t.Fatal(err)
	}
	news, _ := structpb.NewStruct(map[string]any{"nodeName": "pve", "name": "vmbr7", "comment": "b"})
	if _, err := s.Update(ctx, &pulumirpc.UpdateRequest{Urn: moved, Type: proxmox.TokenBridge, Id: res.GetId(), Olds: props, OldInputs: props, News: news}); err != nil {
		t.Fatalf("update under the alias's new URN: %v", err)
	}
	st, err := engine.ReadState(s.Store.Dir)
	simtest.NoErr(t, err)
	if st.Objects[engine.ObjectKey(moved, res.GetId())] == nil || st.Objects[engine.ObjectKey(old, res.GetId())] != nil {
		t.Fatalf("objects after the update: %v; want the bridge under %s only", simtest.Keys(st.Objects), moved)
	}
	if _, err := s.Delete(ctx, &pulumirpc.DeleteRequest{Urn: moved, Type: proxmox.TokenBridge, Id: res.GetId(), Properties: news, OldInputs: news}); err != nil {
		t.Fatal(err)
	}
	st, _ = engine.ReadState(s.Store.Dir)
	if len(st.Objects) != 0 || st.Bridges["pve/vmbr7"] {
		t.Errorf("after the delete: objects %v, bridges %v", simtest.Keys(st.Objects), st.Bridges)
	}
}

// A retrying call waits for every node that is down when it looks, and
// looks again after each wait: a node whose reboot starts while the call
// waits for another is waited for too (the real providers retry until
// their timeout), and the call runs only once none is down.
func TestAwaitLooksAgainAfterEachWait(t *testing.T) {
	s := simtest.NewTestServer(t, "talos", engine.DefaultWorld(engine.WorldNode{Name: "pve"}))
	waits := []time.Duration{30 * time.Millisecond, 20 * time.Millisecond, 0}
	looked, ranAfter := 0, 0
	s.Invokes = map[string]*engine.Invoke{"test:index:await": {
		Token: "test:index:await",
		Await: func(*engine.Tx, map[string]any, time.Duration) time.Duration {
			d := waits[looked]
			looked++
			return d
		},
		Fn: func(*engine.Server, *engine.Tx, map[string]any) (map[string]any, error) {
			ranAfter = looked
			return map[string]any{}, nil
		},
	}}
	start := time.Now()
	if _, err := s.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: "test:index:await"}); err != nil {
		t.Fatal(err)
	}
	if looked != 3 || ranAfter != 3 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("looked %d times, ran after %d looks, in %s: want 3 looks (30 ms, 20 ms, none down) before the call", looked, ranAfter, time.Since(start))
	}
}
