package talos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
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
// provider's ConfigurationApply (ApplyTo), so both change the same running
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

// ApplyID is the ID terraform-provider-talos v0.10.1 gives every
// configuration apply (talos_machine_configuration_apply_resource.go Create).
const ApplyID = "machine_configuration_apply"

func applyConfiguration(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	outs, err := apply(s, tx, in.Values, in.Prepared.(patched))
	return ApplyID, outs, err
}

// updateConfiguration applies again: the resource is never replaced, so a
// new node, endpoint or configuration is an in-place apply.
func updateConfiguration(s *engine.Server, tx *engine.Tx, _ string, _ *engine.Object, news engine.Props) (map[string]any, error) {
	return apply(s, tx, news.Values, news.Prepared.(patched))
}

// immediateKeys are the v1alpha1 paths whose change Talos applies without a
// reboot: Runtime.CanApplyImmediate (talos v1.12.0
// internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go:119-190)
// copies exactly these from the running configuration before comparing.
var immediateKeys = []string{
	"debug", "cluster",
	"machine.ca", "machine.acceptedCAs", "machine.time", "machine.certSANs", "machine.install",
	"machine.network", "machine.sysfs", "machine.sysctls", "machine.logging", "machine.controlPlane",
	"machine.kubelet", "machine.kernel", "machine.registries", "machine.pods", "machine.seccompProfiles",
	"machine.nodeAnnotations", "machine.nodeLabels", "machine.nodeTaints",
	"machine.features.kubernetesTalosAPIAccess", "machine.features.kubePrism", "machine.features.hostDNS",
	"machine.features.imageCache", "machine.features.nodeAddressSortAlgorithm",
}

// rebootField returns the first changed v1alpha1 path that cannot be
// applied immediately, or "" when the change applies without a reboot.
// Documents other than v1alpha1 are not compared, as in CanApplyImmediate.
func rebootField(oldText, newText string) string {
	strip := func(doc map[string]any) map[string]any {
		doc = engine.Normalise(doc).(map[string]any)
		for _, k := range immediateKeys {
			parts := strings.Split(k, ".")
			m := doc
			for _, p := range parts[:len(parts)-1] {
				m, _ = m[p].(map[string]any)
			}
			if m != nil {
				delete(m, parts[len(parts)-1])
			}
		}
		return doc
	}
	o, n := V1alpha1Doc(oldText), V1alpha1Doc(newText)
	if o == nil || n == nil {
		return ""
	}
	changed := engine.ChangedPaths(strip(o), strip(n))
	if len(changed) == 0 {
		return ""
	}
	sort.Strings(changed)
	return changed[0]
}

// AppliedConfig is the configuration the node at address runs: the last
// one that took effect (Talos API or ConfigurationApply), else the last a
// ConfigurationApply object applied.
func AppliedConfig(tx *engine.Tx, address string) string {
	if m := tx.State.Machines[address]; m != nil && m.Config != "" {
		return m.Config
	}
	for _, obj := range tx.State.Objects {
		if obj.Type == TokenApply && keyNode.In(obj.Inputs) == address {
			if text := keyMachineConfiguration.In(obj.Outputs); text != "" {
				return text
			}
		}
	}
	return ""
}

// apply is `talosctl apply-config` against the simulated node; the
// configuration was patched and validated by prepareConfiguration.
func apply(s *engine.Server, tx *engine.Tx, v map[string]any, p patched) (map[string]any, error) {
	now := time.Now()
	node := keyNode.In(v)
	endpoint := keyEndpoint.In(v)
	if endpoint == "" {
		endpoint = node
	}
	g, err := network.TalosReachable(tx, node, now)
	if err != nil {
		return nil, retried(err)
	}
	if endpoint != node {
		if _, err := network.TalosReachable(tx, endpoint, now); err != nil {
			return nil, retried(fmt.Errorf("endpoint: %w", err))
		}
	}
	cc := keyClientConfiguration.In(v)
	prev := tx.State.Machines[node]
	linkMTU := LinkMTU(g, node, p.text)
	// A NIC sending frames above its segment's MTU: the first connection
	// that carries a full-size frame (the TLS handshake) stalls.
	if prev == nil {
		if err := network.CheckMTU(tx, g, node, linkMTU); err != nil {
			return nil, retried(err)
		}
	}
	// A node in maintenance mode takes a configuration without client
	// authentication; a configured one demands a certificate of its CA.
	if prev != nil && !caMatches(cc, prev.OSCA) {
		return nil, retried(fmt.Errorf("rpc error: code = Unavailable desc = connection error: tls: failed to verify certificate: x509: certificate signed by unknown authority (node %s belongs to another cluster's CA)", node))
	}
	mode := keyApplyMode.In(v)
	if mode == "" {
		mode = "auto"
	}
	faults, err := s.Store.Faults()
	if err != nil {
		return nil, err
	}
	resolved, err := ApplyTo(tx, node, g, p, mode, linkMTU, "talos apply", faults, now)
	if err != nil {
		return nil, err
	}
	return map[string]any{"machineConfiguration": p.text, "resolvedApplyMode": resolved}, nil
}

// LinkMTU is the MTU a configuration sets on the link of the VM's NIC
// that carries address (0: unset).
func LinkMTU(g *engine.Guest, address, text string) int {
	linkMTU := 0
	doc := V1alpha1Doc(text)
	for i := range engine.List(doc, "machine.network.interfaces") {
		mac := engine.Str(doc, fmt.Sprintf("machine.network.interfaces[%d].deviceSelector.hardwareAddr", i))
		mtu := engine.Num(doc, fmt.Sprintf("machine.network.interfaces[%d].mtu", i))
		nic := g.NICOf(address)
		if mtu > 0 && nic < len(g.MACs) && (mac == "" || strings.EqualFold(mac, g.MACs[nic]) || strings.Contains(mac, "*")) {
			linkMTU = mtu
		}
	}
	return linkMTU
}

// ApplyTo is machined's side of an apply, wherever it comes from (the
// provider's ConfigurationApply, the Talos API's ApplyConfiguration): the
// mode decides, from the fields that changed (rebootField), whether the
// node takes the configuration now, at the next boot, or after a reboot.
// It returns the mode that took effect. cause names the caller in the
// reboot and component logs.
func ApplyTo(tx *engine.Tx, node string, g *engine.Guest, p patched, mode string, linkMTU int, cause string, faults engine.Faults, now time.Time) (string, error) {
	prev := tx.State.Machines[node]
	cfg, text := p.cfg, p.text
	typ := cfg.Machine().Type().String()
	if prev != nil && prev.Type != typ {
		return "", fmt.Errorf("rpc error: code = InvalidArgument desc = machine type can't be changed from %s to %s", prev.Type, typ)
	}
	// In cloud mode (nocloud) the install disk is neither required nor
	// matched against the machine's disks at apply time.
	doc := V1alpha1Doc(text)
	var unmatched []string
	for i := range engine.List(doc, "machine.network.interfaces") {
		mac := engine.Str(doc, fmt.Sprintf("machine.network.interfaces[%d].deviceSelector.hardwareAddr", i))
		if mac != "" && !strings.Contains(mac, "*") && !slices.Contains(g.MACs, strings.ToUpper(mac)) {
			// DeviceConfigController logs "no matching network device for
			// defined selector" and leaves the link unconfigured.
			unmatched = append(unmatched, "hardwareAddr "+mac)
		}
	}
	running := ""
	field := ""
	if prev != nil {
		running = AppliedConfig(tx, node)
		field = rebootField(running, text)
	}
	resolved := mode
	if mode == "staged_if_needing_reboot" {
		// handleRebootPrevention: a dry run in mode auto decides.
		resolved = "auto"
		if field != "" {
			resolved = "staged"
		}
	}
	reboot := false
	switch resolved {
	case "no_reboot":
		if field != "" {
			return "", fmt.Errorf("rpc error: code = InvalidArgument desc = this config change can't be applied in immediate mode\ndiff: %s", field)
		}
	case "staged":
		// Persisted for the next boot; the running machine is unchanged.
		if prev != nil {
			prev.Applies++
			return resolved, nil
		}
	case "reboot":
		reboot = prev != nil
		if field == "" {
			field = "(apply mode reboot)"
		}
	default: // auto
		reboot = field != ""
	}
	ca := cfg.Machine().Security().IssuingCA()
	m := &engine.TalosMachine{Address: node, VMID: g.VMID, Type: typ, ClusterID: cfg.Cluster().ID(), Cluster: cfg.Cluster().Name(),
		Hostname: engine.Str(doc, "machine.network.hostname"), CNI: "flannel", Endpoint: cfg.Cluster().Endpoint().String(),
		UnmatchedLinks: unmatched, LinkMTU: linkMTU, Config: text}
	if ca != nil {
		m.OSCA = string(ca.Crt)
	}
	m.ProxyDisabled, _ = engine.Get(doc, "cluster.proxy.disabled").(bool)
	if cni := cfg.Cluster().Network().CNI(); cni != nil && cni.Name() != "" {
		m.CNI = cni.Name()
	}
	sum := sha256.Sum256([]byte(text))
	m.ConfigHash = hex.EncodeToString(sum[:8])
	if prev != nil {
		m.Applies = prev.Applies
		m.Version, m.Schematic = prev.Version, prev.Schematic
		m.StaticPodConfigs = prev.StaticPodConfigs
	}
	if m.Version == "" {
		m.Version, m.Schematic = BootVersion(tx, g, doc)
	}
	m.Applies++
	tx.State.Machines[node] = m
	if running != "" {
		ComponentChanges(tx, m, nodeName(m, g), running, text, cause, faults, now)
	}
	if reboot {
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
			Cause: cause + ": " + field, Start: now, End: now.Add(faults.RebootDuration())})
	}
	if c := tx.State.Clusters[m.ClusterID]; c != nil {
		Join(tx, c, m, g)
	}
	return resolved, nil
}

// componentImages are where a v1alpha1 configuration names the image of
// each Kubernetes component Talos runs: the control plane's static pods,
// kube-proxy (a DaemonSet Talos renders from the control planes'
// configuration) and the kubelet (every node).
var componentImages = []struct{ component, path string }{
	{"kube-apiserver", "cluster.apiServer.image"},
	{"kube-controller-manager", "cluster.controllerManager.image"},
	{"kube-scheduler", "cluster.scheduler.image"},
	{"kube-proxy", "cluster.proxy.image"},
	{"kubelet", "machine.kubelet.image"},
}

// ComponentImage is the image a running configuration gives a component
// ("" when it has none: a worker has no control-plane components).
func ComponentImage(m *engine.TalosMachine, doc map[string]any, component string) string {
	if m.Type != "controlplane" && component != "kubelet" {
		return ""
	}
	for _, c := range componentImages {
		if c.component == component {
			return engine.Str(doc, c.path)
		}
	}
	return ""
}

// ComponentChanges logs the components whose image an apply changed: each
// restarts on its new image (talos v1.12: the static pod controllers
// rewrite a changed pod's manifest and the kubelet restarts it; a changed
// kubelet image restarts the kubelet service), and is back after the
// simulation's component restart time.
func ComponentChanges(tx *engine.Tx, m *engine.TalosMachine, node, oldText, newText, cause string, faults engine.Faults, now time.Time) {
	o, n := V1alpha1Doc(oldText), V1alpha1Doc(newText)
	for _, c := range componentImages {
		from, to := ComponentImage(m, o, c.component), ComponentImage(m, n, c.component)
		if from == to || to == "" {
			continue
		}
		ready := now.Add(faults.ComponentRestart())
		if c.component == "kube-proxy" {
			// A DaemonSet's image, rendered into a manifest: nothing on
			// this node restarts.
			ready = now
		}
		tx.State.ComponentChanges = append(tx.State.ComponentChanges, engine.ComponentChange{Address: m.Address, Hostname: node,
			Component: c.component, From: from, To: to, Cause: cause, Start: now, Ready: ready})
		if slices.Contains(StaticPods, c.component) {
			// Its configuration resource changed: a new config version.
			BumpStaticPodConfig(tx, m, c.component, now)
		}
	}
}

// Configured returns the machine at node, reachable and configured, that
// accepts the client's certificate.
func Configured(tx *engine.Tx, node string, cc map[string]any) (*engine.TalosMachine, error) {
	if _, err := network.TalosReachable(tx, node, time.Now()); err != nil {
		return nil, err
	}
	m := tx.State.Machines[node]
	if m == nil {
		return nil, fmt.Errorf("rpc error: code = Unimplemented desc = method not implemented: node %s is in maintenance mode (no configuration applied)", node)
	}
	if !caMatches(cc, m.OSCA) {
		return nil, fmt.Errorf("rpc error: code = Unavailable desc = tls: failed to verify certificate: x509: certificate signed by unknown authority (node %s)", node)
	}
	return m, nil
}
