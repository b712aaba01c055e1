package simulator

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

// kind is one resource type of a simulated provider.
type kind struct {
	token string
	// replace lists the input paths whose change replaces the resource, as
	// the real provider does ("nodeName", "disks[*].fileId"). A path covers
	// everything inside it; a path ending in "!" ("efiDisk!") only the
	// block itself being added or removed (Terraform's ForceNew on a block).
	replace []string
	// secretOutputs are outputs the real provider marks secret.
	secretOutputs []string
	// check may add defaults (kept stable from olds) and report failures.
	check func(name string, olds, news map[string]any) (map[string]any, []*pulumirpc.CheckFailure)
	// create does what the real system does and returns the ID and the
	// outputs besides the inputs.
	create func(s *Server, tx *Tx, name string, in Props) (id string, outs map[string]any, err error)
	// prepare may be nil. It does the expensive work that needs no state
	// (key generation, parsing and validating Talos configurations) before
	// the state lock is taken, so parallel calls do not queue behind it; its
	// result reaches create and update as Props.Prepared.
	prepare func(values map[string]any) (any, error)
	// update may be nil: then an update only records the new inputs.
	update func(s *Server, tx *Tx, id string, olds *Object, news Props) (outs map[string]any, err error)
	// delete may be nil: then deleting forgets the object only.
	delete func(s *Server, tx *Tx, obj *Object) error
	// read may be nil: then a read returns what is stored. It may change
	// obj.Outputs (what the real provider reads back), set tx.Wait, or
	// report the object gone (refresh then drops it).
	read func(s *Server, tx *Tx, obj *Object) (gone bool, err error)
	// forceNew may be nil. It returns the top-level keys that force a
	// replacement by rules the replace paths cannot say (conditional
	// ForceNew, list elements added or removed, computed values that
	// drifted); oldOutputs are the outputs in the engine's state.
	forceNew func(s *Server, urn, id string, oldOutputs, olds, news map[string]any) []string
	// replaceWhen may be nil. It asks for a replacement where a plan
	// modifier of the real provider decides by value (a Talos downgrade),
	// besides the fixed paths in replace.
	replaceWhen func(path string, oldV, newV any) bool
	// exec may be nil. It runs what the real provider runs on another
	// machine (a remote command's script) for method "create", "update" or
	// "delete", outside the state lock, after the injected faults and the
	// await: the simulated tools the script calls take the lock
	// themselves. Its result reaches create and update as Props.Prepared
	// (kinds with exec have no prepare); an error fails the call before
	// the state changes.
	exec func(ctx context.Context, s *Server, method string, v map[string]any) (any, error)
	// await may be nil. It returns how long to wait, outside the state
	// lock, before create or update: the time until a node that the real
	// provider would retry comes back (a reboot in progress), if that is
	// within window. See Server.await.
	await func(tx *Tx, v map[string]any, window time.Duration) time.Duration
}

// committedError is an error after the simulated system already changed:
// the transaction is kept (the world changed as it would for real) while
// the call fails and the object keeps its old inputs. The real providers
// fail half way like this, e.g. a VM update that applied the new
// configuration before it refused to remove a disk.
type committedError struct{ err error }

func (e *committedError) Error() string { return e.err.Error() }
func (e *committedError) Unwrap() error { return e.err }

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

// invoke is one function of a simulated provider.
type invoke struct {
	token string
	// fn reads the world and state; it must not change them.
	fn func(s *Server, tx *Tx, args map[string]any) (map[string]any, error)
	// stateless functions get a nil Tx and run without the state lock.
	stateless bool
	// secret outputs of the function.
	secret []string
	// await is as kind.await, for functions that retry (getHealth).
	await func(tx *Tx, v map[string]any, window time.Duration) time.Duration
}

// Server is one simulated provider plugin.
type Server struct {
	pulumirpc.UnimplementedResourceProviderServer

	Name    string
	Version string
	Store   *Store

	kinds   map[string]*kind
	invokes map[string]*invoke
	// diffConfig may be nil: then DiffConfig never replaces the provider.
	// A provider whose real DiffConfig can ask for a replacement (the
	// kubernetes provider) sets it.
	diffConfig func(olds, news Props) *pulumirpc.DiffResponse

	mu sync.Mutex
	// config is this provider instance's configuration (Configure).
	config  map[string]any
	unknown map[string]bool
}

// Providers lists the simulated providers and the plugin version each
// reports: the versions the SDKs in go.mod ask for.
var Providers = map[string]string{
	"proxmoxve":  "6.18.1",
	"talos":      "0.7.1",
	"kubernetes": "4.32.0",
	"command":    "1.1.0",
}

// New returns the simulated provider called name, keeping its state in dir.
func New(name, dir string) (*Server, error) {
	version, ok := Providers[name]
	if !ok {
		return nil, fmt.Errorf("no simulated provider %q (have proxmoxve, talos, kubernetes, command)", name)
	}
	s := &Server{Name: name, Version: version, Store: &Store{Dir: dir},
		kinds: map[string]*kind{}, invokes: map[string]*invoke{}}
	var ks []*kind
	var is []*invoke
	switch name {
	case "proxmoxve":
		ks = proxmoxKinds()
	case "talos":
		ks, is = talosKinds()
	case "kubernetes":
		ks = kubernetesKinds()
		s.diffConfig = kubernetesDiffConfig
	case "command":
		ks = commandKinds()
	}
	for _, k := range ks {
		s.kinds[k.token] = k
	}
	for _, i := range is {
		s.invokes[i.token] = i
	}
	return s, nil
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

func (s *Server) kindOf(typ string) (*kind, error) {
	k, ok := s.kinds[typ]
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
	return s.Store.before(ctx, typ, method)
}

// before is Server.before for any caller of the simulation directory (the
// provider plugins and the Talos API).
func (s *Store) before(ctx context.Context, typ, method string) error {
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
func (s *Server) prepare(k *kind, values map[string]any) func() (any, error) {
	if k.prepare == nil {
		return func() (any, error) { return nil, nil }
	}
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := k.prepare(values)
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
	var d time.Duration
	if err := s.Store.Update(func(tx *Tx) error { d = fn(tx, v, faults.TalosRetryDuration()); return nil }); err != nil {
		return err
	}
	return wait(ctx, d)
}

// GetPluginInfo reports the version the SDKs ask for.
func (s *Server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.Version}, nil
}

// GetSchema returns a minimal schema: the engine needs it only for
// languages that generate SDKs, not for the Go SDKs used here.
func (s *Server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	resources := map[string]any{}
	for tok := range s.kinds {
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
	olds := fromStruct(req.GetOldInputs())
	if len(olds.Values) == 0 {
		olds = fromStruct(req.GetOlds())
	}
	news := fromStruct(req.GetNews())
	if s.diffConfig != nil {
		if old := fromStruct(req.GetOlds()); len(old.Values) > 0 {
			olds = old // the real providers diff against the old state
		}
		return s.diffConfig(olds, news), nil
	}
	delete(olds.Values, "version")
	delete(news.Values, "version")
	changed := changedPaths(olds.Values, news.Values)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	if len(changed) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
		resp.Diffs = topKeys(changed)
	}
	return resp, nil
}

// Configure records the provider's configuration and checks what the real
// provider needs before it can reach its system.
func (s *Server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	start := time.Now()
	p := fromStruct(req.GetArgs())
	if len(p.Values) == 0 && len(req.GetVariables()) > 0 {
		// Older engines send flat "pkg:config:key" variables only.
		for k, v := range req.GetVariables() {
			p.Values[k[strings.LastIndex(k, ":")+1:]] = v
		}
	}
	s.mu.Lock()
	s.config, s.unknown = p.Values, p.Unknown
	s.mu.Unlock()
	var err error
	if s.Name == "proxmoxve" {
		err = checkProxmoxConfig(p)
	}
	s.record("Configure", "pulumi:providers:"+s.Name, "", "", start, err)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: false}, nil
}

func (s *Server) configValue(key string) (string, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, _ := s.config[key].(string)
	return v, s.unknown[key], s.config != nil
}

// Check returns the inputs with the defaults the real provider adds.
func (s *Server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ := typeOf(req.GetType(), req.GetUrn())
	k, err := s.kindOf(typ)
	if err != nil {
		return nil, err
	}
	news := fromStruct(req.GetNews())
	olds := fromStruct(req.GetOlds())
	values := news.Values
	var failures []*pulumirpc.CheckFailure
	if k.check != nil {
		values, failures = k.check(nameOf(req.GetName(), req.GetUrn()), olds.Values, news.Values)
	}
	inputs, err := toStruct(values, news.Secret)
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
	olds := fromStruct(req.GetOldInputs())
	if req.GetOldInputs() == nil {
		olds = fromStruct(req.GetOlds())
	}
	news := fromStruct(req.GetNews())
	return s.diffAll(k, req.GetUrn(), req.GetId(), fromStruct(req.GetOlds()).Values, olds.Values, news.Values), nil
}

// diffAll is diff plus the kind's conditional replacements (forceNew).
func (s *Server) diffAll(k *kind, urn, id string, oldOutputs, olds, news map[string]any) *pulumirpc.DiffResponse {
	resp := diff(k, olds, news)
	if k.forceNew != nil {
		for _, key := range k.forceNew(s, urn, id, oldOutputs, olds, news) {
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
		if topKey(path) != key {
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

func diff(k *kind, olds, news map[string]any) *pulumirpc.DiffResponse {
	changed := changedPaths(olds, news)
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true,
		DetailedDiff: map[string]*pulumirpc.PropertyDiff{}}
	if len(changed) == 0 {
		return resp
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	resp.Diffs = topKeys(changed)
	replaces := map[string]bool{}
	for _, path := range changed {
		replace := false
		for _, rule := range k.replace {
			replace = replace || ruleReplaces(path, rule, olds, news)
		}
		oldV, newV := get(olds, path), get(news, path)
		if k.replaceWhen != nil && k.replaceWhen(path, oldV, newV) {
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
			replaces[topKey(path)] = true
		}
	}
	for key := range replaces {
		resp.Replaces = append(resp.Replaces, key)
	}
	sort.Strings(resp.Replaces)
	return resp
}

func topKeys(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		if k := topKey(p); !seen[k] {
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
	in := fromStruct(req.GetProperties())
	var id string
	var outs map[string]any
	var blocked time.Duration
	prepared := s.prepare(k, in.Values)
	err = s.before(ctx, typ, "Create")
	if err == nil {
		in.Prepared, err = prepared()
	}
	if err == nil {
		err = s.await(ctx, k.await, in.Values)
	}
	if err == nil && k.exec != nil {
		in.Prepared, err = k.exec(ctx, s, "create", in.Values)
	}
	if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			var err error
			id, outs, err = k.create(s, tx, name, in)
			blocked = tx.Wait
			if err != nil {
				return err
			}
			obj := &Object{URN: req.GetUrn(), Type: typ, ID: id, Name: name, Inputs: in.Values, Outputs: outs,
				Secret: secretKeys(in.Secret, k.secretOutputs)}
			tx.State.Objects[objectKey(req.GetUrn(), id)] = obj
			outs = merge(in.Values, outs)
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
	props, err := toStruct(outs, secretKeys(in.Secret, k.secretOutputs))
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
		key, obj = tx.object(req.GetUrn(), req.GetId(), typ)
		if obj == nil || k.read == nil {
			return nil
		}
		gone, err := k.read(s, tx, obj)
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
	props, err := toStruct(merge(obj.Inputs, obj.Outputs), obj.Secret)
	if err != nil {
		return nil, err
	}
	inputs, err := toStruct(obj.Inputs, obj.Secret)
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
	news := fromStruct(req.GetNews())
	var outs map[string]any
	var blocked time.Duration
	var failed error
	prepared := s.prepare(k, news.Values)
	err = s.before(ctx, typ, "Update")
	if err == nil {
		news.Prepared, err = prepared()
	}
	if err == nil {
		err = s.await(ctx, k.await, news.Values)
	}
	if err == nil && k.exec != nil {
		news.Prepared, err = k.exec(ctx, s, "update", news.Values)
	}
	if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			_, obj := tx.object(req.GetUrn(), req.GetId(), typ)
			if obj == nil {
				return fmt.Errorf("%s %s does not exist any more (deleted outside Pulumi?): run refresh", typ, req.GetId())
			}
			var extra map[string]any
			if k.update != nil {
				var err error
				extra, err = k.update(s, tx, req.GetId(), obj, news)
				blocked = tx.Wait
				var committed *committedError
				if errors.As(err, &committed) {
					failed = committed.err // keep what changed, fail the call
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
			obj.Secret = secretKeys(news.Secret, k.secretOutputs)
			outs = merge(news.Values, extra)
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
	props, err := toStruct(outs, secretKeys(news.Secret, k.secretOutputs))
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
	if err == nil && k.exec != nil {
		// The stored state's values (inputs and outputs), as the real
		// provider reads its connection and script from the old state.
		olds := fromStruct(req.GetOldInputs())
		_, err = k.exec(ctx, s, "delete", merge(fromStruct(req.GetProperties()).Values, olds.Values))
	}
	if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			key, obj := tx.object(req.GetUrn(), req.GetId(), typ)
			if obj == nil {
				return nil // already gone: deleting is idempotent, as in the real providers
			}
			if k.delete != nil {
				if err := k.delete(s, tx, obj); err != nil {
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
	inv, ok := s.invokes[req.GetTok()]
	if !ok {
		return nil, fmt.Errorf("simulated %s provider: function %q is not simulated", s.Name, req.GetTok())
	}
	args := fromStruct(req.GetArgs())
	var out map[string]any
	err := s.before(ctx, req.GetTok(), "Invoke")
	if err == nil && !inv.stateless {
		err = s.await(ctx, inv.await, args.Values)
	}
	if err == nil && inv.stateless {
		out, err = inv.fn(s, nil, args.Values)
	} else if err == nil {
		err = s.Store.Update(func(tx *Tx) error {
			var err error
			out, err = inv.fn(s, tx, args.Values)
			return err
		})
	}
	s.record("Invoke", req.GetTok(), "", "", start, err)
	if err != nil {
		return nil, err
	}
	ret, err := toStruct(merge(args.Values, out), secretKeys(args.Secret, inv.secret))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: ret}, nil
}

// Cancel has nothing to stop: calls end on their own context.
func (s *Server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func merge(a, b map[string]any) map[string]any {
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
