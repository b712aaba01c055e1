package talos

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	stdx509 "crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"github.com/siderolabs/crypto/x509"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	talosconfig "github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"github.com/siderolabs/talos/pkg/machinery/role"
	"gopkg.in/yaml.v3"
)

// Type tokens of the talos resources and functions the simulation knows.
const (
	TokenSchematic       = "talos:imageFactory/schematic:Schematic"
	TokenSecrets         = "talos:machine/secrets:Secrets"
	TokenApply           = "talos:machine/configurationApply:ConfigurationApply"
	TokenBootstrap       = "talos:machine/bootstrap:Bootstrap"
	TokenKubeconfig      = "talos:cluster/kubeconfig:Kubeconfig"
	TokenGetMachineCfg   = "talos:machine/getConfiguration:getConfiguration"
	TokenGetClientCfg    = "talos:client/getConfiguration:getConfiguration"
	TokenGetHealth       = "talos:cluster/getHealth:getHealth"
	TokenGetImageURLs    = "talos:imageFactory/getUrls:getUrls"
	defaultTalosContract = "v1.12.0"
)

func Kinds() ([]*engine.Kind, []*engine.Invoke) {
	// No talos resource replaces on a fixed input path at
	// terraform-provider-talos v0.10.1: none of their schemas uses
	// RequiresReplace; only the secrets' talos_version plan modifier asks
	// for a replacement, on a downgrade (secretsDowngrade).
	kinds := []*engine.Kind{
		{Token: TokenSchematic, Create: createSchematic, Update: updateSchematic},
		{Token: TokenSecrets, ReplaceWhen: secretsDowngrade, Prepare: newSecrets, Create: createSecrets,
			SecretOutputs: []string{"machineSecrets", "clientConfiguration"}},
		{Token: TokenApply, Prepare: prepareConfiguration, Create: applyConfiguration, Update: updateConfiguration,
			Delete: resetOnDestroy, Await: AwaitNodes("node", "endpoint"),
			SecretOutputs: []string{"machineConfiguration", "machineConfigurationInput", "clientConfiguration"}},
		{Token: TokenBootstrap, Create: bootstrap, Await: AwaitNodes("node", "endpoint")},
		{Token: TokenKubeconfig, Create: kubeconfig, Update: renewKubeconfig, Await: AwaitNodes("node", "endpoint"),
			SecretOutputs: []string{"kubeconfigRaw", "kubernetesClientConfiguration", "clientConfiguration"}},
	}
	invokes := []*engine.Invoke{
		{Token: TokenGetMachineCfg, Fn: GetMachineConfiguration, Stateless: true, Secret: []string{"machineConfiguration", "machineSecrets"}},
		{Token: TokenGetClientCfg, Fn: getClientConfiguration, Stateless: true, Secret: []string{"talosConfig", "clientConfiguration"}},
		{Token: TokenGetHealth, Fn: GetHealth, Await: AwaitNodes("controlPlaneNodes", "workerNodes", "endpoints"), Secret: []string{"clientConfiguration"}},
		{Token: TokenGetImageURLs, Fn: getImageURLs, Stateless: true},
	}
	return kinds, invokes
}

// schematicDoc is the part of an Image Factory schematic the simulation
// reads: its official system extensions.
type schematicDoc struct {
	Customization struct {
		SystemExtensions struct {
			OfficialExtensions []string `yaml:"officialExtensions"`
		} `yaml:"systemExtensions"`
	} `yaml:"customization"`
}

// postSchematic is POST /schematics to the simulated Image Factory: it
// checks the schematic, and returns and records its ID, computed as the
// real factory does (talospatch.SchematicID).
func postSchematic(tx *engine.Tx, text string) (string, error) {
	var doc schematicDoc
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("image factory: invalid schematic: %v", err)
	}
	for _, e := range doc.Customization.SystemExtensions.OfficialExtensions {
		if !strings.HasPrefix(e, "siderolabs/") {
			return "", fmt.Errorf("image factory: unknown official extension %q", e)
		}
	}
	id, err := talospatch.SchematicID(text)
	if err != nil {
		return "", fmt.Errorf("image factory: %v", err)
	}
	tx.State.Schematics[id] = text
	return id, nil
}

func createSchematic(_ *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	id, err := postSchematic(tx, engine.Str(in.Values, "schematic"))
	return id, nil, err
}

// updateSchematic posts the new schematic, as the provider's Update does
// (talos_image_factory_schematic_resource.go Update), but a Pulumi update
// cannot change a resource's ID: the resource keeps the old schematic's ID
// while the factory now also knows the new one.
func updateSchematic(_ *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	if _, err := postSchematic(tx, engine.Str(news.Values, "schematic")); err != nil {
		return nil, fmt.Errorf("failed to update schematic: %w", err)
	}
	return old.Outputs, nil
}

// defaultSecretsVersion is what the talos_version plan modifier stores when
// none is given: semver.MajorMinor(gendata.VersionTag) of machinery v1.12.0.
const defaultSecretsVersion = "v1.12"

// secretsDowngrade is talosMachineFeaturesVersionPlanModifier: a
// replacement only when the planned talos_version is lower than the stored
// one (semver.Compare(plan, state) < 0); an upgrade updates in place and
// keeps the secrets. An unknown planned value never replaces.
func secretsDowngrade(path string, oldV, newV any) bool {
	if path != "talosVersion" {
		return false
	}
	if _, unknown := newV.(engine.UnknownMarker); unknown {
		return false
	}
	version := func(v any) string {
		s, _ := v.(string)
		if s == "" {
			return defaultSecretsVersion
		}
		return s
	}
	return compareVersions(version(newV), version(oldV)) < 0
}

// compareVersions compares vMAJOR.MINOR.PATCH versions as semver.Compare
// does for releases (a missing part counts as 0; pre-release tags are not
// compared).
func compareVersions(a, b string) int {
	parts := func(v string) [3]int {
		var out [3]int
		v = strings.TrimPrefix(v, "v")
		if i := strings.IndexAny(v, "-+"); i >= 0 {
			v = v[:i]
		}
		for i, p := range strings.SplitN(v, ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	pa, pb := parts(a), parts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func contract(version string) (*talosconfig.VersionContract, error) {
	if version == "" {
		version = defaultTalosContract
	}
	vc, err := talosconfig.ParseContractFromVersion(version)
	if err != nil {
		return nil, fmt.Errorf("talosVersion %q: %w", version, err)
	}
	return vc, nil
}

func B64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func Unb64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func certKey(p *x509.PEMEncodedCertificateAndKey) map[string]any {
	return map[string]any{"cert": B64(p.Crt), "key": B64(p.Key)}
}

// bundleToSDK maps a Talos secrets bundle to the SDK's MachineSecrets shape.
func bundleToSDK(b *secrets.Bundle) map[string]any {
	return map[string]any{
		"certs": map[string]any{
			"etcd":              certKey(b.Certs.Etcd),
			"k8s":               certKey(b.Certs.K8s),
			"k8sAggregator":     certKey(b.Certs.K8sAggregator),
			"k8sServiceaccount": map[string]any{"key": B64(b.Certs.K8sServiceAccount.Key)},
			"os":                certKey(b.Certs.OS),
		},
		"cluster": map[string]any{"id": b.Cluster.ID, "secret": b.Cluster.Secret},
		"secrets": map[string]any{
			"bootstrapToken":            b.Secrets.BootstrapToken,
			"secretboxEncryptionSecret": b.Secrets.SecretboxEncryptionSecret,
			"aescbcEncryptionSecret":    b.Secrets.AESCBCEncryptionSecret,
		},
		"trustdinfo": map[string]any{"token": b.TrustdInfo.Token},
	}
}

// bundleFromSDK is the inverse of bundleToSDK.
func bundleFromSDK(v map[string]any) (*secrets.Bundle, error) {
	pair := func(p string) *x509.PEMEncodedCertificateAndKey {
		return &x509.PEMEncodedCertificateAndKey{Crt: Unb64(engine.Str(v, p+".cert")), Key: Unb64(engine.Str(v, p+".key"))}
	}
	b := &secrets.Bundle{
		Clock:   secrets.NewFixedClock(time.Now()),
		Cluster: &secrets.Cluster{ID: engine.Str(v, "cluster.id"), Secret: engine.Str(v, "cluster.secret")},
		Secrets: &secrets.Secrets{
			BootstrapToken:            engine.Str(v, "secrets.bootstrapToken"),
			SecretboxEncryptionSecret: engine.Str(v, "secrets.secretboxEncryptionSecret"),
			AESCBCEncryptionSecret:    engine.Str(v, "secrets.aescbcEncryptionSecret"),
		},
		TrustdInfo: &secrets.TrustdInfo{Token: engine.Str(v, "trustdinfo.token")},
		Certs: &secrets.Certs{
			Etcd: pair("certs.etcd"), K8s: pair("certs.k8s"), K8sAggregator: pair("certs.k8sAggregator"),
			K8sServiceAccount: &x509.PEMEncodedKey{Key: Unb64(engine.Str(v, "certs.k8sServiceaccount.key"))},
			OS:                pair("certs.os"),
		},
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("machineSecrets: %w", err)
	}
	return b, nil
}

func clientConfigurationFor(b *secrets.Bundle) (map[string]any, error) {
	admin, err := b.GenerateTalosAPIClientCertificate(role.MakeSet(role.Admin))
	if err != nil {
		return nil, err
	}
	return map[string]any{"caCertificate": B64(b.Certs.OS.Crt), "clientCertificate": B64(admin.Crt), "clientKey": B64(admin.Key)}, nil
}

// newSecrets generates the bundle (CA keys and tokens) outside the lock.
func newSecrets(v map[string]any) (any, error) {
	vc, err := contract(engine.Str(v, "talosVersion"))
	if err != nil {
		return nil, err
	}
	b, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), vc)
	if err != nil {
		return nil, err
	}
	cc, err := clientConfigurationFor(b)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id": "machine_secrets_" + b.Cluster.ID[:8], "machineSecrets": bundleToSDK(b), "clientConfiguration": cc}, nil
}

func createSecrets(_ *engine.Server, _ *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	out := in.Prepared.(map[string]any)
	return out["id"].(string), map[string]any{"machineSecrets": out["machineSecrets"], "clientConfiguration": out["clientConfiguration"]}, nil
}

// runtimeMode is what Talos validates a configuration against. Generated
// configurations are validated without install requirements; a node booted
// from the nocloud image runs in cloud mode, where RequiresInstall is false
// (talos v1.12.0 internal/app/machined/pkg/runtime/mode.go:54, nocloud.go:114),
// so apply-config neither requires nor checks an install disk.
type runtimeMode struct{ install bool }

func (m runtimeMode) String() string {
	if m.install {
		return "metal"
	}
	return "cloud"
}
func (m runtimeMode) RequiresInstall() bool { return m.install }
func (runtimeMode) InContainer() bool       { return false }

// patchAndValidate applies patches with Talos's configpatcher and validates
// the result as Talos would before accepting it.
func patchAndValidate(base []byte, patches []string, mode runtimeMode) (talosconfig.Provider, string, error) {
	cfg, err := configloader.NewFromBytes(base)
	if err != nil {
		return nil, "", fmt.Errorf("machine configuration: %w", err)
	}
	if len(patches) > 0 {
		loaded, err := configpatcher.LoadPatches(patches)
		if err != nil {
			return nil, "", fmt.Errorf("config patch: %w", err)
		}
		out, err := configpatcher.Apply(configpatcher.WithConfig(cfg), loaded)
		if err != nil {
			return nil, "", fmt.Errorf("config patch: %w", err)
		}
		if cfg, err = out.Config(); err != nil {
			return nil, "", fmt.Errorf("config patch: %w", err)
		}
	}
	if _, err := cfg.Validate(mode); err != nil {
		return nil, "", fmt.Errorf("machine configuration is invalid: %w", err)
	}
	text, err := cfg.EncodeString(encoder.WithComments(encoder.CommentsDisabled))
	if err != nil {
		return nil, "", err
	}
	return cfg, text, nil
}

func GetMachineConfiguration(_ *engine.Server, _ *engine.Tx, args map[string]any) (map[string]any, error) {
	sec, _ := args["machineSecrets"].(map[string]any)
	b, err := bundleFromSDK(sec)
	if err != nil {
		return nil, err
	}
	vc, err := contract(engine.Str(args, "talosVersion"))
	if err != nil {
		return nil, err
	}
	k8s := strings.TrimPrefix(engine.Str(args, "kubernetesVersion"), "v")
	if k8s == "" {
		k8s = constants.DefaultKubernetesVersion
	}
	endpoint := engine.Str(args, "clusterEndpoint")
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("clusterEndpoint %q: must be an https URL such as https://10.0.0.10:6443", endpoint)
	}
	mt, err := machine.ParseType(engine.Str(args, "machineType"))
	if err != nil || (mt != machine.TypeControlPlane && mt != machine.TypeWorker) {
		return nil, fmt.Errorf("machineType %q: use controlplane or worker", engine.Str(args, "machineType"))
	}
	input, err := generate.NewInput(engine.Str(args, "clusterName"), endpoint, k8s,
		generate.WithSecretsBundle(b), generate.WithVersionContract(vc))
	if err != nil {
		return nil, err
	}
	cfg, err := input.Config(mt)
	if err != nil {
		return nil, err
	}
	raw, err := cfg.Bytes()
	if err != nil {
		return nil, err
	}
	_, text, err := patchAndValidate(raw, engine.StrList(args, "configPatches"), runtimeMode{install: false})
	if err != nil {
		return nil, err
	}
	return map[string]any{"machineConfiguration": text, "id": engine.Str(args, "clusterName")}, nil
}

// caMatches reports whether the client's CA is the node's Talos API CA: a
// configured node accepts only clients with certificates from its own CA.
func caMatches(clientConfig map[string]any, osCA string) bool {
	return bytes.Equal(bytes.TrimSpace(Unb64(engine.Str(clientConfig, "caCertificate"))), bytes.TrimSpace([]byte(osCA)))
}

// v1alpha1Doc returns the main document of a machine configuration as
// plain YAML values, for the checks the typed API does not expose simply.
func V1alpha1Doc(text string) map[string]any {
	dec := yaml.NewDecoder(strings.NewReader(text))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil
		}
		if doc["version"] == "v1alpha1" {
			return doc
		}
	}
}

// patched is a configuration with its patches applied and validated.
type patched struct {
	cfg  talosconfig.Provider
	text string
}

func prepareConfiguration(v map[string]any) (any, error) {
	cfg, text, err := patchAndValidate([]byte(engine.Str(v, "machineConfigurationInput")), engine.StrList(v, "configPatches"), runtimeMode{install: false})
	if err != nil {
		return nil, err
	}
	return patched{cfg: cfg, text: text}, nil
}

// applyID is the ID terraform-provider-talos v0.10.1 gives every
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

// awaitNodes returns a kind's await: the time until the last of the nodes
// named by keys (strings or lists of strings) finishes a reboot in
// progress, if that is within the retry window. The real provider retries
// such a node until its timeout (10 minutes); the simulation waits only as
// long as the reboot lasts, and fails at once on anything else.
func AwaitNodes(keys ...string) func(tx *engine.Tx, v map[string]any, window time.Duration) time.Duration {
	return func(tx *engine.Tx, v map[string]any, window time.Duration) time.Duration {
		now := time.Now()
		var wait time.Duration
		for _, key := range keys {
			addrs := engine.StrList(v, key)
			if a := engine.Str(v, key); a != "" {
				addrs = []string{a}
			}
			for _, a := range addrs {
				g, err := network.VmAt(tx, a)
				if err != nil {
					continue
				}
				if end, down := tx.DownUntil(g.VMID, now); down && end.Sub(now) <= window && end.Sub(now) > wait {
					wait = end.Sub(now)
				}
				// A rebooting router is retried like a rebooting node.
				if end, ok := network.RouterBack(tx, g, a, now); ok && end.Sub(now) <= window && end.Sub(now) > wait {
					wait = end.Sub(now)
				}
			}
		}
		if wait > 0 {
			wait += time.Millisecond
		}
		return wait
	}
}

// retried marks an error the real provider retries (any gRPC code but
// InvalidArgument) as having outlasted the retry timeout.
func retried(err error) error {
	return fmt.Errorf("%w (retried until the 10m timeout)", err)
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

// appliedConfig is the configuration the node at address runs: the last
// one that took effect (Talos API or ConfigurationApply), else the last a
// ConfigurationApply object applied.
func AppliedConfig(tx *engine.Tx, address string) string {
	if m := tx.State.Machines[address]; m != nil && m.Config != "" {
		return m.Config
	}
	for _, obj := range tx.State.Objects {
		if obj.Type == TokenApply && engine.Str(obj.Inputs, "node") == address {
			if text := engine.Str(obj.Outputs, "machineConfiguration"); text != "" {
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
	node := engine.Str(v, "node")
	endpoint := engine.Str(v, "endpoint")
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
	cc, _ := v["clientConfiguration"].(map[string]any)
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
	mode := engine.Str(v, "applyMode")
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

// linkMTU is the MTU a configuration sets on the link of the VM's NIC
// that carries address (0: unset).
func LinkMTU(g *engine.Guest, address, text string) int {
	linkMTU := 0
	doc := V1alpha1Doc(text)
	for i := range engine.List(doc, "machine.network.interfaces") {
		mac := engine.Str(doc, fmt.Sprintf("machine.network.interfaces[%d].deviceSelector.hardwareAddr", i))
		mtu := engine.Num(doc, fmt.Sprintf("machine.network.interfaces[%d].mtu", i))
		nic := g.NicOf(address)
		if mtu > 0 && nic < len(g.MACs) && (mac == "" || strings.EqualFold(mac, g.MACs[nic]) || strings.Contains(mac, "*")) {
			linkMTU = mtu
		}
	}
	return linkMTU
}

// applyTo is machined's side of an apply, wherever it comes from (the
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

// componentImage is the image a running configuration gives a component
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

// componentChanges logs the components whose image an apply changed: each
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

// nodeName is the Kubernetes node name of a machine: its configured
// hostname, else the VM's name (Proxmox's cloud-init gives it as the
// nocloud local-hostname; inferred), else the address.
func nodeName(m *engine.TalosMachine, g *engine.Guest) string {
	switch {
	case m.Hostname != "":
		return m.Hostname
	case g != nil && g.Name != "":
		return g.Name
	}
	return m.Address
}

// join makes a configured machine part of its bootstrapped cluster: a
// control plane joins etcd, and every node's kubelet registers a Node.
func Join(tx *engine.Tx, c *engine.TalosCluster, m *engine.TalosMachine, g *engine.Guest) {
	m.JoinBlocked = network.JoinBlocked(tx, c, m, g, time.Now())
	if m.JoinBlocked != "" {
		return
	}
	if m.Type == "controlplane" && !slices.Contains(c.EtcdMembers, m.Address) {
		c.EtcdMembers = append(c.EtcdMembers, m.Address)
	}
	if c.Nodes == nil {
		c.Nodes = map[string]*engine.K8sNode{}
	}
	name := nodeName(m, g)
	if n := c.Nodes[name]; n != nil {
		n.Address, n.Role = m.Address, m.Type
		return
	}
	c.Nodes[name] = &engine.K8sNode{Name: name, Address: m.Address, Role: m.Type}
}

// configured returns the machine at node, reachable and configured, that
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

// resetOnDestroy is the ConfigurationApply Delete: nothing unless
// onDestroy.reset; then a Reset (graceful by default) that wipes STATE and
// EPHEMERAL and halts the machine unless onDestroy.reboot. Graceful: the
// node is cordoned and drained and a control plane leaves etcd, which etcd
// refuses when the remaining started members would be below quorum (the
// last member cannot leave). The Node object stays behind either way.
func resetOnDestroy(s *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	v := obj.Inputs
	if reset, _ := engine.Get(v, "onDestroy.reset").(bool); !reset {
		return nil
	}
	graceful := true
	if b, ok := engine.Get(v, "onDestroy.graceful").(bool); ok {
		graceful = b
	}
	reboot, _ := engine.Get(v, "onDestroy.reboot").(bool)
	cc, _ := v["clientConfiguration"].(map[string]any)
	faults, err := s.Store.Faults()
	if err != nil {
		return err
	}
	if err := Reset(tx, engine.Str(v, "node"), cc, graceful, reboot, faults); err != nil {
		return fmt.Errorf("Error resetting machine: %w", err)
	}
	return nil
}

// reset is Talos's MachineService.Reset as `talosctl reset` and the
// configuration apply's onDestroy send it: the node must be reachable from
// Pulumi's machine and accept the client's CA; then resetMachine.
func Reset(tx *engine.Tx, node string, cc map[string]any, graceful, reboot bool, f engine.Faults) error {
	m, err := Configured(tx, node, cc)
	if err != nil {
		return err
	}
	return ResetMachine(tx, m, graceful, reboot, f)
}

// resetMachine is Talos's reset sequence on a configured machine (talos
// v1.12.0 v1alpha1_sequencer.go:258-341): a graceful reset cordons and
// drains the node, stops its pods and kubelet, then makes a control plane
// leave etcd (refused when the remaining members would lose quorum, see
// removeEtcdMember). A refused leave fails the sequence: machined reboots
// the node FatalRebootDelay later (internal/app/machined/main.go:100-151),
// and it boots configured again, its STATE untouched (the wipe comes after
// the leave). Otherwise the whole system disk is wiped (mode ALL without a
// partition list: resetMachine's default) and the machine halts, or
// reboots into nothing bootable: the boot partition went with the rest,
// so a reset VM never comes back on its own (wipedDisk). The Node object
// stays: deleting it is the Kubernetes API's business.
func ResetMachine(tx *engine.Tx, m *engine.TalosMachine, graceful, reboot bool, f engine.Faults) error {
	now := time.Now()
	node := m.Address
	g, err := network.VmAt(tx, node)
	if err != nil {
		return err
	}
	if c := tx.State.Clusters[m.ClusterID]; c != nil && graceful {
		for _, n := range c.Nodes {
			if n.Address == node {
				n.Cordoned = true
			}
		}
		if m.Type == "controlplane" && slices.Contains(c.EtcdMembers, node) {
			if err := RemoveEtcdMember(tx, c, node, now); err != nil {
				start := now.Add(f.FatalReboot())
				tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
					Cause: `fatal sequencer error in "reset" sequence`, Start: start, End: start.Add(f.RebootDuration())})
				// The phases before "leave" ran: "cleanup" removed every pod
				// and stopped the kubelet (v1alpha1_sequencer.go:258-341,
				// RemoveAllPods), until the node boots again.
				m.KubeletStoppedUntil = start.Add(f.RebootDuration())
				return fmt.Errorf("failed to leave cluster: %w", err)
			}
		}
	}
	delete(tx.State.Machines, node)
	g.TalosVersion, g.TalosSchematic, g.DiskWiped = "", "", true
	if reboot {
		tx.State.Reboots = append(tx.State.Reboots, engine.Reboot{VMID: g.VMID, Kind: "qemu", Name: g.Name,
			Cause: "talos reset", Start: now, End: now.Add(f.RebootDuration())})
	} else {
		g.Started = false // halted
	}
	return nil
}

// etcdMemberID is the etcd member ID of the control plane at address. Real
// etcd derives it from the peer URLs, the cluster token and the time the
// member was added; here it is the first 8 bytes of SHA-256 of the
// address: stable, distinct per address, never 0.
func EtcdMemberID(address string) uint64 {
	sum := sha256.Sum256([]byte(address))
	var id uint64
	for _, b := range sum[:8] {
		id = id<<8 | uint64(b)
	}
	if id == 0 {
		id = 1
	}
	return id
}

// etcdStarted counts the members of c other than except whose etcd is up:
// the machine is configured into c and answers (talosUp).
func EtcdStarted(tx *engine.Tx, c *engine.TalosCluster, except string, now time.Time) (started, total int) {
	for _, a := range c.EtcdMembers {
		if a == except {
			continue
		}
		total++
		if EtcdUp(tx, c, a, now) {
			started++
		}
	}
	return started, total
}

// etcdUp reports whether member a of c runs: its machine is configured
// into c and answers.
func EtcdUp(tx *engine.Tx, c *engine.TalosCluster, a string, now time.Time) bool {
	om := tx.State.Machines[a]
	if om == nil || om.ClusterID != c.ID {
		return false
	}
	_, err := network.TalosUp(tx, a, now)
	return err == nil
}

// removeEtcdMember is etcd's MemberRemove of the member at address (Talos's
// LeaveCluster and RemoveMemberByMemberID send it): refused when the
// remaining started members would be below the quorum of the remaining
// cluster (the last member never can leave).
func RemoveEtcdMember(tx *engine.Tx, c *engine.TalosCluster, address string, now time.Time) error {
	started, others := EtcdStarted(tx, c, address, now)
	if started < others/2+1 {
		return fmt.Errorf("failed to remove member %d: etcdserver: re-configuration failed due to not enough started members (%s leaving; %d of the %d other members started)",
			EtcdMemberID(address), address, started, others)
	}
	c.EtcdMembers = slices.DeleteFunc(c.EtcdMembers, func(a string) bool { return a == address })
	if c.EtcdLeader == address {
		c.EtcdLeader = ""
	}
	return nil
}

// etcdLeader is the member that leads etcd: the one leadership was last
// moved to while it runs, else the first running member in member-ID
// order; "" when fewer than a quorum of the members run (no leader).
func EtcdLeader(tx *engine.Tx, c *engine.TalosCluster, now time.Time) string {
	started, total := EtcdStarted(tx, c, "", now)
	if total == 0 || started < total/2+1 {
		return ""
	}
	if c.EtcdLeader != "" && slices.Contains(c.EtcdMembers, c.EtcdLeader) && EtcdUp(tx, c, c.EtcdLeader, now) {
		return c.EtcdLeader
	}
	for _, a := range SortedMembers(c) {
		if EtcdUp(tx, c, a, now) {
			return a
		}
	}
	return ""
}

// sortedMembers are c's etcd members in member-ID order, the order etcd
// lists them in.
func SortedMembers(c *engine.TalosCluster) []string {
	out := slices.Clone(c.EtcdMembers)
	slices.SortFunc(out, func(a, b string) int {
		ia, ib := EtcdMemberID(a), EtcdMemberID(b)
		switch {
		case ia < ib:
			return -1
		case ia > ib:
			return 1
		}
		return 0
	})
	return out
}

// bootstrapID is the ID terraform-provider-talos v0.10.1 gives a bootstrap.
const BootstrapID = "machine_bootstrap"

func bootstrap(_ *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	node := engine.Str(in.Values, "node")
	cc, _ := in.Values["clientConfiguration"].(map[string]any)
	m, err := Configured(tx, node, cc)
	if err != nil {
		return "", nil, fmt.Errorf("Error bootstrapping node: %w", retried(err))
	}
	if m.Type != "controlplane" {
		return "", nil, fmt.Errorf("Error bootstrapping node: %w", retried(fmt.Errorf("rpc error: code = FailedPrecondition desc = bootstrap can only be performed on a control plane node (%s is a %s)", node, m.Type)))
	}
	if c, done := tx.State.Clusters[m.ClusterID]; done {
		return "", nil, fmt.Errorf("Error bootstrapping node: %w", retried(fmt.Errorf("rpc error: code = AlreadyExists desc = etcd data directory is not empty (cluster %s was bootstrapped on %s)", c.Name, c.BootstrapNode)))
	}
	cfgCA, err := K8sCA(tx, m)
	if err != nil {
		return "", nil, err
	}
	c := &engine.TalosCluster{ID: m.ClusterID, Name: m.Cluster, BootstrapNode: node, EtcdMembers: []string{node},
		Endpoint: m.Endpoint, K8sCA: string(cfgCA.Crt), K8sCAKey: string(cfgCA.Key), CNI: m.CNI, ProxyDisabled: m.ProxyDisabled}
	tx.State.Clusters[m.ClusterID] = c
	// The other configured control planes were waiting for etcd and join
	// now; every configured node's kubelet registers.
	now := time.Now()
	for _, addr := range slices.Sorted(maps.Keys(tx.State.Machines)) {
		om := tx.State.Machines[addr]
		if om.ClusterID != c.ID {
			continue
		}
		if g, err := network.TalosUp(tx, addr, now); err == nil {
			Join(tx, c, om, g)
		}
	}
	return BootstrapID, nil, nil
}

// k8sCA reads the Kubernetes CA (certificate and key) from the
// configuration applied to a control plane.
func K8sCA(tx *engine.Tx, m *engine.TalosMachine) (*x509.PEMEncodedCertificateAndKey, error) {
	for _, obj := range tx.State.Objects {
		if obj.Type == TokenApply && engine.Str(obj.Inputs, "node") == m.Address {
			cfg, err := configloader.NewFromBytes([]byte(engine.Str(obj.Outputs, "machineConfiguration")))
			if err == nil && cfg.Cluster().IssuingCA() != nil {
				return cfg.Cluster().IssuingCA(), nil
			}
		}
	}
	return nil, fmt.Errorf("control plane %s has no Kubernetes CA in its configuration", m.Address)
}

func Bootstrapped(tx *engine.Tx, node string, cc map[string]any) (*engine.TalosMachine, *engine.TalosCluster, error) {
	m, err := Configured(tx, node, cc)
	if err != nil {
		return nil, nil, err
	}
	c := tx.State.Clusters[m.ClusterID]
	if c == nil {
		return nil, nil, fmt.Errorf("rpc error: code = FailedPrecondition desc = etcd is not bootstrapped on cluster %s: bootstrap a control plane first", m.Cluster)
	}
	return m, c, nil
}

func kubeconfig(_ *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	c, outs, err := IssueKubeconfig(tx, in.Values)
	if err != nil {
		return "", nil, err
	}
	// The ID is the kubeconfig's cluster name (talos_cluster_kubeconfig_resource.go Create).
	return c.Name, outs, nil
}

func IssueKubeconfig(tx *engine.Tx, v map[string]any) (*engine.TalosCluster, map[string]any, error) {
	node := engine.Str(v, "node")
	cc, _ := v["clientConfiguration"].(map[string]any)
	m, c, err := Bootstrapped(tx, node, cc)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to retrieve kubeconfig: %w", retried(err))
	}
	if m.Type != "controlplane" {
		return nil, nil, fmt.Errorf("failed to retrieve kubeconfig: %w", retried(fmt.Errorf("kubeconfig is served by control planes only; %s is a %s", node, m.Type)))
	}
	admin, err := adminKeyPair(c)
	if err != nil {
		return nil, nil, err
	}
	c.Kubeconfigs++
	raw := RenderKubeconfig(c.Name, c.Endpoint, []byte(c.K8sCA), admin.CrtPEM, admin.KeyPEM)
	return c, map[string]any{
		"kubeconfigRaw": raw,
		"kubernetesClientConfiguration": map[string]any{
			"host": c.Endpoint, "caCertificate": B64([]byte(c.K8sCA)),
			"clientCertificate": B64(admin.CrtPEM), "clientKey": B64(admin.KeyPEM),
		},
	}, nil
}

// renewKubeconfig is the Kubeconfig Update: it fetches a new kubeconfig
// only when the client certificate expires within
// certificateRenewalDuration (default 720h); otherwise the outputs stay.
func renewKubeconfig(_ *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	renewal := 720 * time.Hour
	if d := engine.Str(news.Values, "certificateRenewalDuration"); d != "" {
		var err error
		if renewal, err = time.ParseDuration(d); err != nil {
			return nil, fmt.Errorf("failed to parse certificate renewal duration: %w", err)
		}
	}
	if block, _ := pem.Decode(Unb64(engine.Str(old.Outputs, "kubernetesClientConfiguration.clientCertificate"))); block != nil {
		if crt, err := stdx509.ParseCertificate(block.Bytes); err == nil && !crt.NotAfter.Before(time.Now().Add(renewal)) {
			return old.Outputs, nil
		}
	}
	_, outs, err := IssueKubeconfig(tx, news.Values)
	return outs, err
}

// adminKeyPair is an admin client certificate of the cluster's Kubernetes
// CA (CN admin, O system:masters), as Talos issues admin kubeconfigs: to
// the provider's Kubeconfig resource and through MachineService.Kubeconfig.
func adminKeyPair(c *engine.TalosCluster) (*x509.KeyPair, error) {
	ca, err := x509.NewCertificateAuthorityFromCertificateAndKey(&x509.PEMEncodedCertificateAndKey{Crt: []byte(c.K8sCA), Key: []byte(c.K8sCAKey)})
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return x509.NewKeyPair(ca, x509.CommonName("admin"), x509.Organization("system:masters"),
		x509.NotAfter(time.Now().Add(365*24*time.Hour)),
		x509.ExtKeyUsage([]stdx509.ExtKeyUsage{stdx509.ExtKeyUsageClientAuth}))
}

// issueCert signs a key pair with ca as a TLS certificate: the simulated
// servers' (apid's, the kube-apiserver's) certificates.
func IssueCert(ca *x509.CertificateAuthority, opts ...x509.Option) (*tls.Certificate, error) {
	kp, err := x509.NewKeyPair(ca, opts...)
	if err != nil {
		return nil, err
	}
	crt, err := tls.X509KeyPair(kp.CrtPEM, kp.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &crt, nil
}

func RenderKubeconfig(cluster, endpoint string, ca, crt, key []byte) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: admin@%[1]s
  user:
    client-certificate-data: %[4]s
    client-key-data: %[5]s
contexts:
- name: admin@%[1]s
  context:
    cluster: %[1]s
    namespace: default
    user: admin@%[1]s
current-context: admin@%[1]s
`, cluster, endpoint, B64(ca), B64(crt), B64(key))
}

func getClientConfiguration(_ *engine.Server, _ *engine.Tx, args map[string]any) (map[string]any, error) {
	cc, _ := args["clientConfiguration"].(map[string]any)
	ca, crt, key := Unb64(engine.Str(cc, "caCertificate")), Unb64(engine.Str(cc, "clientCertificate")), Unb64(engine.Str(cc, "clientKey"))
	if len(ca) == 0 || len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("clientConfiguration: caCertificate, clientCertificate and clientKey are required (base64 PEM)")
	}
	endpoints := engine.StrList(args, "endpoints")
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("endpoints: at least one Talos endpoint is required")
	}
	cfg := clientconfig.NewConfig(engine.Str(args, "clusterName"), endpoints, ca, &x509.PEMEncodedCertificateAndKey{Crt: crt, Key: key})
	cfg.Contexts[cfg.Context].Nodes = engine.StrList(args, "nodes")
	b, err := cfg.Bytes()
	if err != nil {
		return nil, err
	}
	return map[string]any{"talosConfig": string(b), "id": engine.Str(args, "clusterName")}, nil
}

// getHealth is the talos_cluster_health data source (v0.10.1): Talos's
// cluster checks from pkg/cluster/check at v1.12.0, run against the
// simulated state. With skipKubernetesChecks it runs
// PreBootSequenceChecks and K8sComponentsReadinessChecks, otherwise
// DefaultClusterChecks. A real check polls until its timeout; here a check
// that fails fails the call at once (after waiting for reboots in progress,
// see awaitNodes), with the data source's error and the reporter's last line.
func GetHealth(_ *engine.Server, tx *engine.Tx, args map[string]any) (map[string]any, error) {
	now := time.Now()
	cc, _ := args["clientConfiguration"].(map[string]any)
	cps, workers := engine.StrList(args, "controlPlaneNodes"), engine.StrList(args, "workerNodes")
	if len(cps) == 0 {
		return nil, fmt.Errorf("health: controlPlaneNodes is required")
	}
	fail := func(check string, err error) error {
		return fmt.Errorf("cluster health check failed: context deadline exceeded: waiting for %s: %v", check, err)
	}
	// The client talks to the cluster through the endpoints; the etcd
	// member list without a node target comes from the first one.
	endpoints := engine.StrList(args, "endpoints")
	for _, e := range endpoints {
		if _, err := Configured(tx, e, cc); err != nil {
			return nil, fmt.Errorf("cluster health check failed: endpoint: %w", err)
		}
	}
	via := cps[0]
	if len(endpoints) > 0 {
		via = endpoints[0]
	}
	var cluster *engine.TalosCluster
	if m := tx.State.Machines[via]; m != nil {
		cluster = tx.State.Clusters[m.ClusterID]
	}
	hostname := func(addr string) string {
		m := tx.State.Machines[addr]
		if m == nil {
			return addr
		}
		g, _ := network.VmAt(tx, addr)
		return nodeName(m, g)
	}

	// etcd to be healthy: ServiceHealthAssertion(etcd) on the control planes.
	var services int
	for _, n := range cps {
		m, err := Configured(tx, n, cc)
		if err != nil {
			return nil, fail("etcd to be healthy", err)
		}
		if m.Type == "controlplane" {
			services++
		}
	}
	if services != len(cps) {
		return nil, fail("etcd to be healthy", fmt.Errorf("expected a response with %d node(s), got %d", len(cps), services))
	}
	for _, n := range cps {
		m := tx.State.Machines[n]
		if c := tx.State.Clusters[m.ClusterID]; c == nil || !slices.Contains(c.EtcdMembers, n) {
			return nil, fail("etcd to be healthy", fmt.Errorf("%s: service %q not in expected state %q: current state [%s] %s%s", hostname(n), "etcd", "Running", "Preparing", "Running pre state", blocked(m)))
		}
	}
	// etcd members to be consistent across nodes: every control plane
	// reports its cluster's member list.
	for _, n := range cps {
		c := tx.State.Clusters[tx.State.Machines[n].ClusterID]
		if cluster == nil || c.ID != cluster.ID {
			var expected, actual []string
			if cluster != nil {
				expected = mapStrings(cluster.EtcdMembers, hostname)
			}
			actual = mapStrings(c.EtcdMembers, hostname)
			return nil, fail("etcd members to be consistent across nodes", fmt.Errorf("%s: expected to have %v members, got %v", hostname(n), expected, actual))
		}
	}
	// etcd members to be control plane nodes.
	if !isSubset(cluster.EtcdMembers, cps) {
		return nil, fail("etcd members to be control plane nodes", fmt.Errorf("etcd member ips %q are not subset of control plane node ips %q", cluster.EtcdMembers, cps))
	}
	// apid to be ready (and the nodes booted) on every listed node.
	all := append(slices.Clone(cps), workers...)
	for _, n := range workers {
		if _, err := Configured(tx, n, cc); err != nil {
			return nil, fail("apid to be ready", err)
		}
	}
	// kubelet to be healthy and nodes booted follow from the above.
	// all k8s nodes to report: cluster.NodesMatch.
	remaining := map[string]bool{}
	for _, n := range cluster.Nodes {
		remaining[n.Address] = true
	}
	for _, ip := range all {
		if !remaining[ip] {
			return nil, fail("all k8s nodes to report", fmt.Errorf("can't find expected node with IPs %q%s", []string{ip}, blocked(tx.State.Machines[ip])))
		}
		delete(remaining, ip)
	}
	if len(remaining) > 0 {
		ips := slices.Sorted(maps.Keys(remaining))
		return nil, fail("all k8s nodes to report", fmt.Errorf("unexpected nodes with IPs %q", ips))
	}
	skipK8s, _ := args["skipKubernetesChecks"].(bool)
	if !skipK8s {
		var notReady, unschedulable []string
		for _, name := range slices.Sorted(maps.Keys(cluster.Nodes)) {
			n := cluster.Nodes[name]
			if !NodeReady(tx, cluster, n, now) {
				notReady = append(notReady, n.Name)
			}
			if n.Cordoned && len(unschedulable) == 0 {
				unschedulable = append(unschedulable, n.Name)
			}
		}
		if len(notReady) > 0 {
			return nil, fail("all k8s nodes to report ready", fmt.Errorf("some nodes are not ready: %v", notReady))
		}
		if len(unschedulable) > 0 {
			return nil, fail("all k8s nodes to report schedulable", fmt.Errorf("some nodes are not schedulable: %v", unschedulable))
		}
	}
	return map[string]any{"id": "cluster_health"}, nil
}

// blocked is the network reason a machine did not join, for messages.
func blocked(m *engine.TalosMachine) string {
	if m == nil || m.JoinBlocked == "" {
		return ""
	}
	return " (" + m.JoinBlocked + ")"
}

// nodeReady is the Node's Ready condition: its machine is configured into
// the cluster and answering, its kubelet runs (see KubeletStoppedUntil),
// and pods have a network (a CNI).
func NodeReady(tx *engine.Tx, c *engine.TalosCluster, n *engine.K8sNode, now time.Time) bool {
	m := tx.State.Machines[n.Address]
	if m == nil || m.ClusterID != c.ID {
		return false
	}
	if _, err := network.TalosUp(tx, n.Address, now); err != nil {
		return false
	}
	if now.Before(m.KubeletStoppedUntil) {
		return false
	}
	return c.CNI != "none" || HasCNI(c)
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

func isSubset(sub, set []string) bool {
	for _, s := range sub {
		if !slices.Contains(set, s) {
			return false
		}
	}
	return true
}

func HasCNI(c *engine.TalosCluster) bool {
	for _, chart := range c.Releases {
		if chart == "cilium" || chart == "flannel" || chart == "calico" || chart == "tigera-operator" {
			return true
		}
	}
	return false
}

func getImageURLs(_ *engine.Server, _ *engine.Tx, args map[string]any) (map[string]any, error) {
	id, version := engine.Str(args, "schematicId"), engine.Str(args, "talosVersion")
	if len(id) != 64 {
		return nil, fmt.Errorf("schematicId %q: not a schematic ID", id)
	}
	platform, arch := engine.Str(args, "platform"), engine.Str(args, "architecture")
	if platform == "" {
		platform = "metal"
	}
	if arch == "" {
		arch = "amd64"
	}
	base := fmt.Sprintf("https://factory.talos.dev/image/%s/%s", id, version)
	return map[string]any{
		"platform": platform, "architecture": arch, "id": id,
		"urls": map[string]any{
			"diskImage":           fmt.Sprintf("%s/%s-%s.raw.zst", base, platform, arch),
			"diskImageSecureboot": fmt.Sprintf("%s/%s-%s-secureboot.raw.zst", base, platform, arch),
			"iso":                 fmt.Sprintf("%s/%s-%s.iso", base, platform, arch),
			"isoSecureboot":       fmt.Sprintf("%s/%s-%s-secureboot.iso", base, platform, arch),
			"installer":           fmt.Sprintf("factory.talos.dev/installer/%s:%s", id, version),
			"installerSecureboot": fmt.Sprintf("factory.talos.dev/installer-secureboot/%s:%s", id, version),
			"kernel":              fmt.Sprintf("%s/kernel-%s", base, arch),
			"kernelCommandLine":   fmt.Sprintf("%s/cmdline-%s-%s", base, platform, arch),
			"initramfs":           fmt.Sprintf("%s/initramfs-%s.xz", base, arch),
			"pxe":                 fmt.Sprintf("https://pxe.factory.talos.dev/pxe/%s/%s/%s-%s", id, version, platform, arch),
			"uki":                 fmt.Sprintf("%s/%s-%s-secureboot-uki.efi", base, platform, arch),
		},
	}, nil
}
