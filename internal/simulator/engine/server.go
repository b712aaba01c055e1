package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Faults reads the fault settings; a broken file counts as none here (the
// server's before() reports it on every call already).
func (s *Server) Faults() Faults {
	f, _ := s.Store.Faults()
	return f
}

// ConfigObject is an object-typed provider setting ("ssh"). Configure
// stores the engine's values as they come: an object, or a JSON string
// (older engines and flat "proxmoxve:config:ssh" variables).
func (s *Server) ConfigObject(key string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch v := s.Config[key].(type) {
	case map[string]any:
		return v
	case string:
		var m map[string]any
		if json.Unmarshal([]byte(v), &m) == nil {
			return m
		}
	}
	return nil
}

// Kind is one resource type of a simulated provider.
type Kind struct {
	Token string
	// Replace lists the input paths whose change replaces the resource, as
	// the real provider does ("nodeName", "disks[*].fileId"). A path covers
	// everything inside it; a path ending in "!" ("efiDisk!") only the
	// block itself being added or removed (Terraform's ForceNew on a block).
	Replace []string
	// SecretOutputs are outputs the real provider marks secret.
	SecretOutputs []string
	// Check may add defaults (kept stable from olds) and report failures.
	Check func(name string, olds, news map[string]any) (map[string]any, []*pulumirpc.CheckFailure)
	// Create does what the real system does and returns the ID and the
	// outputs besides the inputs.
	Create func(s *Server, tx *Tx, name string, in Props) (id string, outs map[string]any, err error)
	// Prepare may be nil. It does the expensive work that needs no state
	// (key generation, parsing and validating Talos configurations) before
	// the state lock is taken, so parallel calls do not queue behind it; its
	// result reaches create and update as Props.Prepared.
	Prepare func(values map[string]any) (any, error)
	// Update may be nil: then an update only records the new inputs.
	Update func(s *Server, tx *Tx, id string, olds *Object, news Props) (outs map[string]any, err error)
	// Delete may be nil: then deleting forgets the object only.
	Delete func(s *Server, tx *Tx, obj *Object) error
	// Read may be nil: then a read returns what is stored. It may change
	// obj.Outputs (what the real provider reads back), set tx.Wait, or
	// report the object gone (refresh then drops it).
	Read func(s *Server, tx *Tx, obj *Object) (gone bool, err error)
	// ForceNew may be nil. It returns the top-level keys that force a
	// replacement by rules the replace paths cannot say (conditional
	// ForceNew, list elements added or removed, computed values that
	// drifted); oldOutputs are the outputs in the engine's state.
	ForceNew func(s *Server, urn, id string, oldOutputs, olds, news map[string]any) []string
	// ReplaceWhen may be nil. It asks for a replacement where a plan
	// modifier of the real provider decides by value (a Talos downgrade),
	// besides the fixed paths in replace.
	ReplaceWhen func(path string, oldV, newV any) bool
	// Exec may be nil. It runs what the real provider runs on another
	// machine (a remote command's script) for method "create", "update" or
	// "delete", outside the state lock, after the injected faults and the
	// await: the simulated tools the script calls take the lock
	// themselves. Its result reaches create and update as Props.Prepared
	// (kinds with exec have no prepare); an error fails the call before
	// the state changes.
	Exec func(ctx context.Context, s *Server, method string, v map[string]any) (any, error)
	// Await may be nil. It returns how long to wait, outside the state
	// lock, before create or update: the time until a node that the real
	// provider would retry comes back (a reboot in progress), if that is
	// within window. See Server.await.
	Await func(tx *Tx, v map[string]any, window time.Duration) time.Duration
}

// CommittedError is an error after the simulated system already changed:
// the transaction is kept (the world changed as it would for real) while
// the call fails and the object keeps its old inputs. The real providers
// fail half way like this, e.g. a VM update that applied the new
// configuration before it refused to remove a disk.
type CommittedError struct{ Err error }

func (e *CommittedError) Error() string { return e.Err.Error() }
func (e *CommittedError) Unwrap() error { return e.Err }

// wait spends d (the time a real operation blocks, e.g. waiting for a
// reboot or for the guest agent) outside the state lock.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Invoke is one function of a simulated provider.
type Invoke struct {
	Token string
	// Fn reads the world and state; it must not change them.
	Fn func(s *Server, tx *Tx, args map[string]any) (map[string]any, error)
	// Stateless functions get a nil Tx and run without the state lock.
	Stateless bool
	// Secret outputs of the function.
	Secret []string
	// Await is as Kind.Await, for functions that retry (talos.GetHealth).
	Await func(tx *Tx, v map[string]any, window time.Duration) time.Duration
}

// Server is one simulated provider plugin.
type Server struct {
	pulumirpc.UnimplementedResourceProviderServer

	Name    string
	Version string
	Store   *Store

	Kinds   map[string]*Kind
	Invokes map[string]*Invoke
	// DiffConfigRule may be nil: then DiffConfig never replaces the
	// provider. A provider whose real DiffConfig can ask for a replacement
	// (the kubernetes provider) sets it.
	DiffConfigRule func(olds, news Props) *pulumirpc.DiffResponse
	// ConfigureRule may be nil. It checks, at Configure, what the real
	// provider needs before it can reach its system (the proxmoxve
	// provider's endpoint and credentials).
	ConfigureRule func(config Props) error

	mu sync.Mutex
	// Config is this provider instance's configuration (Configure).
	Config  map[string]any
	unknown map[string]bool
}

// typeOf returns the type token of a request: its Type field, or the last
// type in its URN (urn:pulumi:stack::project::parent$type::name).
func typeOf(typ, urn string) string {
	if typ != "" {
		return typ
	}
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return ""
	}
	chain := parts[len(parts)-2]
	return chain[strings.LastIndex(chain, "$")+1:]
}

func nameOf(name, urn string) string {
	if name != "" {
		return name
	}
	return urn[strings.LastIndex(urn, "::")+2:]
}

func (s *Server) kindOf(typ string) (*Kind, error) {
	k, ok := s.Kinds[typ]
	if !ok {
		return nil, fmt.Errorf("simulated %s provider: resource type %q is not simulated", s.Name, typ)
	}
	return k, nil
}

// record logs a call; logging problems never fail the operation.
func (s *Server) record(method, typ, name, id string, start time.Time, err error) {
	c := Call{Time: start, Provider: s.Name, Method: method, Type: typ, Name: name, ID: id,
		Millis: time.Since(start).Milliseconds()}
	if err != nil {
		c.Error = err.Error()
	}
	_ = s.Store.Log(c)
}

// before applies the configured latency and the one-shot failures for
// method on typ. The latency is spent outside the state lock, so calls run
// in parallel as they would against real systems.
func (s *Server) before(ctx context.Context, typ, method string) error {
	return s.Store.Before(ctx, typ, method)
}

// Before is Server.before for any caller of the simulation directory (the
// provider plugins and the Talos API).
func (s *Store) Before(ctx context.Context, typ, method string) error {
	faults, err := s.Faults()
	if err != nil {
		return fmt.Errorf("simulation faults file: %w", err)
	}
	if d := faults.LatencyOf(typ, method); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var injected error
	err = s.counters(func(c *counters) error {
		counter := typ + "#" + method
		c.Calls[counter]++
		n := c.Calls[counter]
		for _, f := range faults.FailOnce {
			if f.Type == typ && f.Method == method && f.Ordinal == n && !c.Fired[f.key()] {
				c.Fired[f.key()] = true
				injected = fmt.Errorf("simulated failure injected into %s #%d of %s", method, n, typ)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return injected
}

// prepare starts a kind's prepare step at once and returns a function that
// waits for its result. It runs while the configured latency passes: its
// CPU time is the simulation's own cost, not the simulated system's, and
// must not add to the operation's duration.
func (s *Server) prepare(k *Kind, values map[string]any) func() (any, error) {
	if k.Prepare == nil {
		return func() (any, error) { return nil, nil }
	}
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := k.Prepare(values)
		ch <- result{v, err}
	}()
	return func() (any, error) {
		r := <-ch
		return r.v, r.err
	}
}

// await waits, outside the state lock, for as long as fn says: the real
// talos provider retries an unreachable node for its timeout, and a node
// inside a reboot comes back by itself.
func (s *Server) await(ctx context.Context, fn func(tx *Tx, v map[string]any, window time.Duration) time.Duration, v map[string]any) error {
	if fn == nil {
		return nil
	}
	faults, err := s.Store.Faults()
	if err != nil {
		return fmt.Errorf("simulation faults file: %w", err)
	}
	// The real providers retry until their timeout: a node that goes down
	// while the call waits for another (a reboot that starts meanwhile) is
	// waited for too, within what is left of the retry window.
	budget := faults.TalosRetryDuration()
	for budget > 0 {
		var d time.Duration
		if err := s.Store.Update(func(tx *Tx) error { d = fn(tx, v, budget); return nil }); err != nil {
			return err
		}
		if d <= 0 {
			return nil
		}
		if err := wait(ctx, d); err != nil {
			return err
		}
		budget -= d
	}
	return nil
}

// GetPluginInfo reports the version the SDKs ask for.
func (s *Server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.Version}, nil
}

// GetSchema returns a minimal schema: the engine needs it only for
// languages that generate SDKs, not for the Go SDKs used here.
func (s *Server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	resources := map[string]any{}
	for tok := range s.Kinds {
		resources[tok] = map[string]any{"description": "simulated"}
	}
	b, err := json.Marshal(map[string]any{"name": s.Name, "version": s.Version, "resources": resources})
	return &pulumirpc.GetSchemaResponse{Schema: string(b)}, err
}

// CheckConfig accepts the configuration as given.
func (s *Server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// DiffConfig reports changed keys; a provider's configuration never
// replaces the resources it manages here.
func (s *Server) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds := FromStruct(req.GetOldInputs())
	if len(olds.Values) == 0 {
		olds = FromStruct(req.GetOlds())
	}
	news := FromStruct(req.GetNews())
	if s.DiffConfigRule != nil {
		if old := FromStruct(req.GetOlds()); len(old.Values) > 0 {
			olds = old // the real providers diff against the old state
		}
		return s.DiffConfigRule(olds, news), nil
	}
	delete(olds.Values, "version")
	delete(news.Values, "version")
	changed := ChangedPaths(olds.Values, news.Values)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	if len(changed) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
		resp.Diffs = TopKeys(changed)
	}
	return resp, nil
}

// Configure records the provider's configuration and checks what the real
// provider needs before it can reach its system.
func (s *Server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	start := time.Now()
	p := FromStruct(req.GetArgs())
	if len(p.Values) == 0 && len(req.GetVariables()) > 0 {
		// Older engines send flat "pkg:config:key" variables only.
		for k, v := range req.GetVariables() {
			p.Values[k[strings.LastIndex(k, ":")+1:]] = v
		}
	}
	s.mu.Lock()
	s.Config, s.unknown = p.Values, p.Unknown
	s.mu.Unlock()
	var err error
	if s.ConfigureRule != nil {
		err = s.ConfigureRule(p)
	}
	s.record("Configure", "pulumi:providers:"+s.Name, "", "", start, err)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: false}, nil
}

// ConfigValue is the provider configuration's string value of key, whether
// it is unknown, and whether the provider is configured at all.
func (s *Server) ConfigValue(key string) (string, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, _ := s.Config[key].(string)
	return v, s.unknown[key], s.Config != nil
}

// Check returns the inputs with the defaults the real provider adds.
func (s *Server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	news := FromStruct(req.GetNews())
	olds := FromStruct(req.GetOlds())
	values := news.Values
	var failures []*pulumirpc.CheckFailure
	if k.Check != nil {
		values, failures = k.Check(nameOf(req.GetName(), req.GetUrn()), olds.Values, news.Values)
	}
	inputs, err := ToStruct(values, news.Secret)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

// Diff compares old and new inputs, path by path, and asks for a
// replacement exactly where the real provider would.
func (s *Server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	olds := FromStruct(req.GetOldInputs())
	if req.GetOldInputs() == nil {
		olds = FromStruct(req.GetOlds())
	}
	news := FromStruct(req.GetNews())
	return s.DiffAll(k, req.GetUrn(), req.GetId(), FromStruct(req.GetOlds()).Values, olds.Values, news.Values), nil
}

// DiffAll is diff plus the kind's conditional replacements (forceNew).
func (s *Server) DiffAll(k *Kind, urn, id string, oldOutputs, olds, news map[string]any) *pulumirpc.DiffResponse {
	resp := Diff(k, olds, news)
	if k.ForceNew != nil {
		for _, key := range k.ForceNew(s, urn, id, oldOutputs, olds, news) {
			markReplace(resp, key)
		}
	}
	return resp
}

// markReplace makes key a replacement in a diff response.
func markReplace(resp *pulumirpc.DiffResponse, key string) {
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	if !slices.Contains(resp.Diffs, key) {
		resp.Diffs = append(resp.Diffs, key)
		sort.Strings(resp.Diffs)
	}
	if !slices.Contains(resp.Replaces, key) {
		resp.Replaces = append(resp.Replaces, key)
		sort.Strings(resp.Replaces)
	}
	found := false
	for path, d := range resp.DetailedDiff {
		if TopKey(path) != key {
			continue
		}
		found = true
		switch d.Kind {
		case pulumirpc.PropertyDiff_ADD:
			d.Kind = pulumirpc.PropertyDiff_ADD_REPLACE
		case pulumirpc.PropertyDiff_DELETE:
			d.Kind = pulumirpc.PropertyDiff_DELETE_REPLACE
		case pulumirpc.PropertyDiff_UPDATE:
			d.Kind = pulumirpc.PropertyDiff_UPDATE_REPLACE
		}
	}
	if !found {
		resp.DetailedDiff[key] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE}
	}
}

// Diff is the detailed diff of a kind's inputs: changed paths, and which
// replace the resource (Kind.Replace, Kind.ReplaceWhen).
func Diff(k *Kind, olds, news map[string]any) *pulumirpc.DiffResponse {
	changed := ChangedPaths(olds, news)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true,
		DetailedDiff: map[string]*pulumirpc.PropertyDiff{}}
	if len(changed) == 0 {
		return resp
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	resp.Diffs = TopKeys(changed)
	replaces := map[string]bool{}
	for _, path := range changed {
		replace := false
		for _, rule := range k.Replace {
			replace = replace || ruleReplaces(path, rule, olds, news)
		}
		oldV, newV := Get(olds, path), Get(news, path)
		if k.ReplaceWhen != nil && k.ReplaceWhen(path, oldV, newV) {
			replace = true
		}
		kd := pulumirpc.PropertyDiff_UPDATE
		switch {
		case oldV == nil && replace:
			kd = pulumirpc.PropertyDiff_ADD_REPLACE
		case oldV == nil:
			kd = pulumirpc.PropertyDiff_ADD
		case newV == nil && replace:
			kd = pulumirpc.PropertyDiff_DELETE_REPLACE
		case newV == nil:
			kd = pulumirpc.PropertyDiff_DELETE
		case replace:
			kd = pulumirpc.PropertyDiff_UPDATE_REPLACE
		}
		resp.DetailedDiff[path] = &pulumirpc.PropertyDiff{Kind: kd, InputDiff: true}
		if replace {
			replaces[TopKey(path)] = true
		}
	}
	for key := range replaces {
		resp.Replaces = append(resp.Replaces, key)
	}
	sort.Strings(resp.Replaces)
	return resp
}

// TopKeys are the sorted top-level keys of paths.
func TopKeys(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		if k := TopKey(p); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Create does what the real system would, or refuses as it would.
func (s *Server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	start := time.Now()
	typ := typeOf(req.GetType(), req.GetUrn())
	name := nameOf(req.GetName(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		return nil, fmt.Errorf("simulated %s provider does not create during preview", s.Name)
	}
	in := FromStruct(req.GetProperties())
	var id string
	var outs map[string]any
	var blocked time.Duration
	prepared := s.prepare(k, in.Values)
	err = s.before(ctx, typ, "Create")
	if err == nil {
		in.Prepared, err = prepared()
	}
	if err == nil {
		err = s.await(ctx, k.Await, in.Values)
	}
	if err == nil && k.Exec != nil {
		in.Prepared, err = k.Exec(ctx, s, "create", in.Values)
	}
	if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			var err error
			id, outs, err = k.Create(s, tx, name, in)
			blocked = tx.Wait
			if err != nil {
				return err
			}
			obj := &Object{URN: req.GetUrn(), Type: typ, ID: id, Name: name, Inputs: in.Values, Outputs: outs,
				Secret: secretKeys(in.Secret, k.SecretOutputs)}
			tx.State.Objects[ObjectKey(req.GetUrn(), id)] = obj
			outs = Merge(in.Values, outs)
			return nil
		})
	}
	if err := wait(ctx, blocked); err != nil {
		return nil, err
	}
	s.record("Create", typ, name, id, start, err)
	if err != nil {
		return nil, err
	}
	props, err := ToStruct(outs, secretKeys(in.Secret, k.SecretOutputs))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Read returns what the simulated system holds, or an empty ID when the
// object is gone (so refresh drops it from the state).
func (s *Server) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	start := time.Now()
	typ := typeOf(req.GetType(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	var obj *Object
	var blocked time.Duration
	err = s.Store.Update(func(tx *Tx) error {
		var key string
		key, obj = tx.Object(req.GetUrn(), req.GetId(), typ)
		if obj == nil || k.Read == nil {
			return nil
		}
		gone, err := k.Read(s, tx, obj)
		blocked = tx.Wait
		if gone {
			delete(tx.State.Objects, key)
			obj = nil
		}
		return err
	})
	if err == nil {
		err = wait(ctx, blocked)
	}
	s.record("Read", typ, nameOf(req.GetName(), req.GetUrn()), req.GetId(), start, err)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return &pulumirpc.ReadResponse{}, nil
	}
	props, err := ToStruct(Merge(obj.Inputs, obj.Outputs), obj.Secret)
	if err != nil {
		return nil, err
	}
	inputs, err := ToStruct(obj.Inputs, obj.Secret)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: obj.ID, Properties: props, Inputs: inputs}, nil
}

// Update changes the object in place.
func (s *Server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	start := time.Now()
	typ := typeOf(req.GetType(), req.GetUrn())
	name := nameOf(req.GetName(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		return nil, fmt.Errorf("simulated %s provider does not update during preview", s.Name)
	}
	news := FromStruct(req.GetNews())
	var outs map[string]any
	var blocked time.Duration
	var failed error
	prepared := s.prepare(k, news.Values)
	err = s.before(ctx, typ, "Update")
	if err == nil {
		news.Prepared, err = prepared()
	}
	if err == nil {
		err = s.await(ctx, k.Await, news.Values)
	}
	if err == nil && k.Exec != nil {
		news.Prepared, err = k.Exec(ctx, s, "update", news.Values)
	}
	if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			_, obj := tx.Object(req.GetUrn(), req.GetId(), typ)
			if obj == nil {
				return fmt.Errorf("%s %s does not exist any more (deleted outside Pulumi?): run refresh", typ, req.GetId())
			}
			var extra map[string]any
			if k.Update != nil {
				var err error
				extra, err = k.Update(s, tx, req.GetId(), obj, news)
				blocked = tx.Wait
				var committed *CommittedError
				if errors.As(err, &committed) {
					failed = committed.Err // keep what changed, fail the call
					return nil
				}
				if err != nil {
					return err
				}
			} else {
				// Computed outputs stay as they were.
				extra = obj.Outputs
			}
			obj.Inputs = news.Values
			obj.Outputs = extra
			obj.Secret = secretKeys(news.Secret, k.SecretOutputs)
			outs = Merge(news.Values, extra)
			return nil
		})
	}
	if err == nil {
		err = failed
	}
	if werr := wait(ctx, blocked); werr != nil && err == nil {
		err = werr
	}
	s.record("Update", typ, name, req.GetId(), start, err)
	if err != nil {
		return nil, err
	}
	props, err := ToStruct(outs, secretKeys(news.Secret, k.SecretOutputs))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Delete removes the object from the simulated system.
func (s *Server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	start := time.Now()
	typ := typeOf(req.GetType(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	err = s.before(ctx, typ, "Delete")
	if err == nil && k.Exec != nil {
		// The stored state's values (inputs and outputs), as the real
		// provider reads its connection and script from the old state.
		olds := FromStruct(req.GetOldInputs())
		_, err = k.Exec(ctx, s, "delete", Merge(FromStruct(req.GetProperties()).Values, olds.Values))
	}
	if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			key, obj := tx.Object(req.GetUrn(), req.GetId(), typ)
			if obj == nil {
				return nil // already gone: deleting is idempotent, as in the real providers
			}
			if k.Delete != nil {
				if err := k.Delete(s, tx, obj); err != nil {
					return err
				}
			}
			delete(tx.State.Objects, key)
			return nil
		})
	}
	s.record("Delete", typ, nameOf(req.GetName(), req.GetUrn()), req.GetId(), start, err)
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Invoke runs a provider function.
func (s *Server) Invoke(ctx context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	start := time.Now()
	inv, ok := s.Invokes[req.GetTok()]
	if !ok {
		return nil, fmt.Errorf("simulated %s provider: function %q is not simulated", s.Name, req.GetTok())
	}
	args := FromStruct(req.GetArgs())
	var out map[string]any
	err := s.before(ctx, req.GetTok(), "Invoke")
	if err == nil && !inv.Stateless {
		err = s.await(ctx, inv.Await, args.Values)
	}
	if err == nil && inv.Stateless {
		out, err = inv.Fn(s, nil, args.Values)
	} else if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			var err error
			out, err = inv.Fn(s, tx, args.Values)
			return err
		})
	}
	s.record("Invoke", req.GetTok(), "", "", start, err)
	if err != nil {
		return nil, err
	}
	ret, err := ToStruct(Merge(args.Values, out), secretKeys(args.Secret, inv.Secret))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: ret}, nil
}

// Cancel has nothing to stop: calls end on their own context.
func (s *Server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Merge is a copied, b's keys over a's.
func Merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func secretKeys(in map[string]bool, extra []string) map[string]bool {
	out := map[string]bool{}
	for k, v := range in {
		out[k] = v
	}
	for _, k := range extra {
		out[k] = true
	}
	return out
}
