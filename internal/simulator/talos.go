package simulator

import (
	"bytes"
	"crypto/sha256"
	stdx509 "crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

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

func talosKinds() ([]*kind, []*invoke) {
	kinds := []*kind{
		{token: TokenSchematic, replace: []string{"schematic"}, create: createSchematic},
		{token: TokenSecrets, replace: []string{"talosVersion"}, prepare: newSecrets, create: createSecrets,
			secretOutputs: []string{"machineSecrets", "clientConfiguration"}},
		{token: TokenApply, replace: []string{"node"}, prepare: prepareConfiguration, create: applyConfiguration, update: updateConfiguration,
			secretOutputs: []string{"machineConfiguration", "machineConfigurationInput", "clientConfiguration"}},
		{token: TokenBootstrap, replace: []string{"node", "endpoint", "clientConfiguration"}, create: bootstrap},
		{token: TokenKubeconfig, replace: []string{"node", "endpoint", "clientConfiguration"}, create: kubeconfig,
			secretOutputs: []string{"kubeconfigRaw", "kubernetesClientConfiguration", "clientConfiguration"}},
	}
	invokes := []*invoke{
		{token: TokenGetMachineCfg, fn: getMachineConfiguration, stateless: true, secret: []string{"machineConfiguration", "machineSecrets"}},
		{token: TokenGetClientCfg, fn: getClientConfiguration, stateless: true, secret: []string{"talosConfig", "clientConfiguration"}},
		{token: TokenGetHealth, fn: getHealth, secret: []string{"clientConfiguration"}},
		{token: TokenGetImageURLs, fn: getImageURLs, stateless: true},
	}
	return kinds, invokes
}

func createSchematic(_ *Server, _ *Tx, _ string, in Props) (string, map[string]any, error) {
	text := str(in.Values, "schematic")
	var doc struct {
		Customization struct {
			SystemExtensions struct {
				OfficialExtensions []string `yaml:"officialExtensions"`
			} `yaml:"systemExtensions"`
		} `yaml:"customization"`
	}
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return "", nil, fmt.Errorf("image factory: invalid schematic: %v", err)
	}
	for _, e := range doc.Customization.SystemExtensions.OfficialExtensions {
		if !strings.HasPrefix(e, "siderolabs/") {
			return "", nil, fmt.Errorf("image factory: unknown official extension %q", e)
		}
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:]), nil, nil
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

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func certKey(p *x509.PEMEncodedCertificateAndKey) map[string]any {
	return map[string]any{"cert": b64(p.Crt), "key": b64(p.Key)}
}

// bundleToSDK maps a Talos secrets bundle to the SDK's MachineSecrets shape.
func bundleToSDK(b *secrets.Bundle) map[string]any {
	return map[string]any{
		"certs": map[string]any{
			"etcd":              certKey(b.Certs.Etcd),
			"k8s":               certKey(b.Certs.K8s),
			"k8sAggregator":     certKey(b.Certs.K8sAggregator),
			"k8sServiceaccount": map[string]any{"key": b64(b.Certs.K8sServiceAccount.Key)},
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
		return &x509.PEMEncodedCertificateAndKey{Crt: unb64(str(v, p+".cert")), Key: unb64(str(v, p+".key"))}
	}
	b := &secrets.Bundle{
		Clock:   secrets.NewFixedClock(time.Now()),
		Cluster: &secrets.Cluster{ID: str(v, "cluster.id"), Secret: str(v, "cluster.secret")},
		Secrets: &secrets.Secrets{
			BootstrapToken:            str(v, "secrets.bootstrapToken"),
			SecretboxEncryptionSecret: str(v, "secrets.secretboxEncryptionSecret"),
			AESCBCEncryptionSecret:    str(v, "secrets.aescbcEncryptionSecret"),
		},
		TrustdInfo: &secrets.TrustdInfo{Token: str(v, "trustdinfo.token")},
		Certs: &secrets.Certs{
			Etcd: pair("certs.etcd"), K8s: pair("certs.k8s"), K8sAggregator: pair("certs.k8sAggregator"),
			K8sServiceAccount: &x509.PEMEncodedKey{Key: unb64(str(v, "certs.k8sServiceaccount.key"))},
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
	return map[string]any{"caCertificate": b64(b.Certs.OS.Crt), "clientCertificate": b64(admin.Crt), "clientKey": b64(admin.Key)}, nil
}

// newSecrets generates the bundle (CA keys and tokens) outside the lock.
func newSecrets(v map[string]any) (any, error) {
	vc, err := contract(str(v, "talosVersion"))
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

func createSecrets(_ *Server, _ *Tx, _ string, in Props) (string, map[string]any, error) {
	out := in.Prepared.(map[string]any)
	return out["id"].(string), map[string]any{"machineSecrets": out["machineSecrets"], "clientConfiguration": out["clientConfiguration"]}, nil
}

// runtimeMode is what Talos validates a configuration against. A node
// booted from the nocloud image installs to disk, so the configuration it
// accepts must name an install disk; a generated configuration need not yet
// (per-node patches usually add it at apply time).
type runtimeMode struct{ install bool }

func (runtimeMode) String() string          { return "nocloud" }
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

func getMachineConfiguration(_ *Server, _ *Tx, args map[string]any) (map[string]any, error) {
	sec, _ := args["machineSecrets"].(map[string]any)
	b, err := bundleFromSDK(sec)
	if err != nil {
		return nil, err
	}
	vc, err := contract(str(args, "talosVersion"))
	if err != nil {
		return nil, err
	}
	k8s := strings.TrimPrefix(str(args, "kubernetesVersion"), "v")
	if k8s == "" {
		k8s = constants.DefaultKubernetesVersion
	}
	endpoint := str(args, "clusterEndpoint")
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("clusterEndpoint %q: must be an https URL such as https://10.0.0.10:6443", endpoint)
	}
	mt, err := machine.ParseType(str(args, "machineType"))
	if err != nil || (mt != machine.TypeControlPlane && mt != machine.TypeWorker) {
		return nil, fmt.Errorf("machineType %q: use controlplane or worker", str(args, "machineType"))
	}
	input, err := generate.NewInput(str(args, "clusterName"), endpoint, k8s,
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
	_, text, err := patchAndValidate(raw, strList(args, "configPatches"), runtimeMode{install: false})
	if err != nil {
		return nil, err
	}
	return map[string]any{"machineConfiguration": text, "id": str(args, "clusterName")}, nil
}

// caMatches reports whether the client's CA is the node's Talos API CA: a
// configured node accepts only clients with certificates from its own CA.
func caMatches(clientConfig map[string]any, osCA string) bool {
	return bytes.Equal(bytes.TrimSpace(unb64(str(clientConfig, "caCertificate"))), bytes.TrimSpace([]byte(osCA)))
}

func (tx *Tx) vmAt(address string) (*Guest, error) {
	for _, g := range tx.State.Guests {
		if g.Kind == "qemu" && slices.Contains(g.Addresses, address) {
			if !g.Started {
				return nil, fmt.Errorf("dial tcp %s:50000: connect: no route to host (VM %d is stopped)", address, g.VMID)
			}
			return g, nil
		}
	}
	return nil, fmt.Errorf("dial tcp %s:50000: connect: no route to host (no VM of the simulated Proxmox has address %s)", address, address)
}

// v1alpha1Doc returns the main document of a machine configuration as
// plain YAML values, for the checks the typed API does not expose simply.
func v1alpha1Doc(text string) map[string]any {
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
	cfg, text, err := patchAndValidate([]byte(str(v, "machineConfigurationInput")), strList(v, "configPatches"), runtimeMode{install: true})
	if err != nil {
		return nil, err
	}
	return patched{cfg: cfg, text: text}, nil
}

func applyConfiguration(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	outs, err := apply(tx, in.Values, in.Prepared.(patched), false)
	return str(in.Values, "node"), outs, err
}

func updateConfiguration(_ *Server, tx *Tx, _ string, _ *Object, news Props) (map[string]any, error) {
	return apply(tx, news.Values, news.Prepared.(patched), true)
}

// apply is `talosctl apply-config` against the simulated node; the
// configuration was patched and validated by prepareConfiguration.
func apply(tx *Tx, v map[string]any, p patched, update bool) (map[string]any, error) {
	node := str(v, "node")
	endpoint := str(v, "endpoint")
	if endpoint == "" {
		endpoint = node
	}
	g, err := tx.vmAt(node)
	if err != nil {
		return nil, err
	}
	if endpoint != node {
		if _, err := tx.vmAt(endpoint); err != nil {
			return nil, fmt.Errorf("endpoint: %w", err)
		}
	}
	cc, _ := v["clientConfiguration"].(map[string]any)
	prev := tx.State.Machines[node]
	// A node in maintenance mode takes a configuration without client
	// authentication; a configured one demands a certificate of its CA.
	if prev != nil && !caMatches(cc, prev.OSCA) {
		return nil, fmt.Errorf("rpc error: code = Unavailable desc = connection error: tls: failed to verify certificate: x509: certificate signed by unknown authority (node %s belongs to another cluster's CA)", node)
	}
	cfg, text := p.cfg, p.text
	typ := cfg.Machine().Type().String()
	if prev != nil && prev.Type != typ {
		return nil, fmt.Errorf("rpc error: code = InvalidArgument desc = machine type can't be changed from %s to %s", prev.Type, typ)
	}
	want := "/dev/sda"
	if g.DiskInterface == "virtio" {
		want = "/dev/vda"
	}
	if disk := cfg.Machine().Install().Disk(); disk != "" && disk != want {
		return nil, fmt.Errorf("install disk %s does not exist on %s: its boot disk is %s (%s)", disk, node, want, g.DiskInterface)
	}
	doc := v1alpha1Doc(text)
	for i := range list(doc, "machine.network.interfaces") {
		mac := str(doc, fmt.Sprintf("machine.network.interfaces[%d].deviceSelector.hardwareAddr", i))
		if mac != "" && !strings.Contains(mac, "*") && !slices.Contains(g.MACs, strings.ToUpper(mac)) {
			return nil, fmt.Errorf("no link matches deviceSelector hardwareAddr %s on %s (VM %d has %s)", mac, node, g.VMID, strings.Join(g.MACs, ", "))
		}
	}
	os := cfg.Machine().Security().IssuingCA()
	m := &TalosMachine{Address: node, VMID: g.VMID, Type: typ, ClusterID: cfg.Cluster().ID(), Cluster: cfg.Cluster().Name(),
		Hostname: str(doc, "machine.network.hostname"), CNI: "flannel", Endpoint: cfg.Cluster().Endpoint().String()}
	if os != nil {
		m.OSCA = string(os.Crt)
	}
	m.ProxyDisabled, _ = get(doc, "cluster.proxy.disabled").(bool)
	if cni := cfg.Cluster().Network().CNI(); cni != nil && cni.Name() != "" {
		m.CNI = cni.Name()
	}
	sum := sha256.Sum256([]byte(text))
	m.ConfigHash = hex.EncodeToString(sum[:8])
	if prev != nil {
		m.Applies = prev.Applies
	}
	m.Applies++
	tx.State.Machines[node] = m
	mode := "auto"
	if update {
		mode = "no_reboot"
	}
	return map[string]any{"machineConfiguration": text, "resolvedApplyMode": mode}, nil
}

func (tx *Tx) configured(node string, cc map[string]any) (*TalosMachine, error) {
	m := tx.State.Machines[node]
	if m == nil {
		if _, err := tx.vmAt(node); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("rpc error: code = Unimplemented desc = method not implemented: node %s is in maintenance mode (no configuration applied)", node)
	}
	if !caMatches(cc, m.OSCA) {
		return nil, fmt.Errorf("rpc error: code = Unavailable desc = tls: failed to verify certificate: x509: certificate signed by unknown authority (node %s)", node)
	}
	return m, nil
}

func bootstrap(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	node := str(in.Values, "node")
	cc, _ := in.Values["clientConfiguration"].(map[string]any)
	m, err := tx.configured(node, cc)
	if err != nil {
		return "", nil, err
	}
	if m.Type != "controlplane" {
		return "", nil, fmt.Errorf("rpc error: code = FailedPrecondition desc = bootstrap is not available on worker node %s", node)
	}
	if c, done := tx.State.Clusters[m.ClusterID]; done {
		return "", nil, fmt.Errorf("rpc error: code = AlreadyExists desc = etcd data directory is not empty (cluster %s was bootstrapped on %s)", c.Name, c.BootstrapNode)
	}
	cfgCA, err := tx.k8sCA(m)
	if err != nil {
		return "", nil, err
	}
	tx.State.Clusters[m.ClusterID] = &TalosCluster{ID: m.ClusterID, Name: m.Cluster, BootstrapNode: node,
		Endpoint: m.Endpoint, K8sCA: string(cfgCA.Crt), K8sCAKey: string(cfgCA.Key), CNI: m.CNI, ProxyDisabled: m.ProxyDisabled}
	return "bootstrap_" + node, nil, nil
}

// k8sCA reads the Kubernetes CA (certificate and key) from the
// configuration applied to a control plane.
func (tx *Tx) k8sCA(m *TalosMachine) (*x509.PEMEncodedCertificateAndKey, error) {
	for _, obj := range tx.State.Objects {
		if obj.Type == TokenApply && str(obj.Inputs, "node") == m.Address {
			cfg, err := configloader.NewFromBytes([]byte(str(obj.Outputs, "machineConfiguration")))
			if err == nil && cfg.Cluster().IssuingCA() != nil {
				return cfg.Cluster().IssuingCA(), nil
			}
		}
	}
	return nil, fmt.Errorf("control plane %s has no Kubernetes CA in its configuration", m.Address)
}

func (tx *Tx) bootstrapped(node string, cc map[string]any) (*TalosMachine, *TalosCluster, error) {
	m, err := tx.configured(node, cc)
	if err != nil {
		return nil, nil, err
	}
	c := tx.State.Clusters[m.ClusterID]
	if c == nil {
		return nil, nil, fmt.Errorf("rpc error: code = FailedPrecondition desc = etcd is not bootstrapped on cluster %s: bootstrap a control plane first", m.Cluster)
	}
	return m, c, nil
}

func kubeconfig(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	node := str(in.Values, "node")
	cc, _ := in.Values["clientConfiguration"].(map[string]any)
	m, c, err := tx.bootstrapped(node, cc)
	if err != nil {
		return "", nil, err
	}
	if m.Type != "controlplane" {
		return "", nil, fmt.Errorf("kubeconfig is served by control planes only; %s is a %s", node, m.Type)
	}
	ca, err := x509.NewCertificateAuthorityFromCertificateAndKey(&x509.PEMEncodedCertificateAndKey{Crt: []byte(c.K8sCA), Key: []byte(c.K8sCAKey)})
	if err != nil {
		return "", nil, fmt.Errorf("cluster CA: %w", err)
	}
	admin, err := x509.NewKeyPair(ca, x509.CommonName("admin"), x509.Organization("system:masters"),
		x509.NotAfter(time.Now().Add(365*24*time.Hour)),
		x509.ExtKeyUsage([]stdx509.ExtKeyUsage{stdx509.ExtKeyUsageClientAuth}))
	if err != nil {
		return "", nil, err
	}
	c.Kubeconfigs++
	raw := renderKubeconfig(c.Name, c.Endpoint, []byte(c.K8sCA), admin.CrtPEM, admin.KeyPEM)
	return "kubeconfig_" + node, map[string]any{
		"kubeconfigRaw": raw,
		"kubernetesClientConfiguration": map[string]any{
			"host": c.Endpoint, "caCertificate": b64([]byte(c.K8sCA)),
			"clientCertificate": b64(admin.CrtPEM), "clientKey": b64(admin.KeyPEM),
		},
	}, nil
}

func renderKubeconfig(cluster, endpoint string, ca, crt, key []byte) string {
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
`, cluster, endpoint, b64(ca), b64(crt), b64(key))
}

func getClientConfiguration(_ *Server, _ *Tx, args map[string]any) (map[string]any, error) {
	cc, _ := args["clientConfiguration"].(map[string]any)
	ca, crt, key := unb64(str(cc, "caCertificate")), unb64(str(cc, "clientCertificate")), unb64(str(cc, "clientKey"))
	if len(ca) == 0 || len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("clientConfiguration: caCertificate, clientCertificate and clientKey are required (base64 PEM)")
	}
	endpoints := strList(args, "endpoints")
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("endpoints: at least one Talos endpoint is required")
	}
	cfg := clientconfig.NewConfig(str(args, "clusterName"), endpoints, ca, &x509.PEMEncodedCertificateAndKey{Crt: crt, Key: key})
	cfg.Contexts[cfg.Context].Nodes = strList(args, "nodes")
	b, err := cfg.Bytes()
	if err != nil {
		return nil, err
	}
	return map[string]any{"talosConfig": string(b), "id": str(args, "clusterName")}, nil
}

// getHealth is `talosctl health`: every listed node configured into one
// bootstrapped cluster, with the right roles; the Kubernetes part also
// needs a CNI, which with `cni: none` exists only once it is installed.
func getHealth(_ *Server, tx *Tx, args map[string]any) (map[string]any, error) {
	cc, _ := args["clientConfiguration"].(map[string]any)
	var cluster *TalosCluster
	check := func(node, role string) error {
		m, c, err := tx.bootstrapped(node, cc)
		if err != nil {
			return err
		}
		if m.Type != role {
			return fmt.Errorf("health: node %s is a %s, listed as %s", node, m.Type, role)
		}
		if cluster != nil && cluster.ID != c.ID {
			return fmt.Errorf("health: node %s belongs to cluster %s, not %s", node, c.Name, cluster.Name)
		}
		cluster = c
		return nil
	}
	cps := strList(args, "controlPlaneNodes")
	if len(cps) == 0 {
		return nil, fmt.Errorf("health: controlPlaneNodes is required")
	}
	for _, n := range cps {
		if err := check(n, "controlplane"); err != nil {
			return nil, err
		}
	}
	for _, n := range strList(args, "workerNodes") {
		if err := check(n, "worker"); err != nil {
			return nil, err
		}
	}
	for _, e := range strList(args, "endpoints") {
		if _, err := tx.configured(e, cc); err != nil {
			return nil, fmt.Errorf("health: endpoint: %w", err)
		}
	}
	skipK8s, _ := args["skipKubernetesChecks"].(bool)
	if !skipK8s && cluster.CNI == "none" && !cluster.hasCNI() {
		return nil, fmt.Errorf("health: waiting for all k8s nodes to report ready: nodes are NotReady: the cluster has cni none and no CNI is installed yet (skip the Kubernetes checks until it is)")
	}
	return map[string]any{"id": cluster.Name}, nil
}

func (c *TalosCluster) hasCNI() bool {
	for _, chart := range c.Releases {
		if chart == "cilium" || chart == "flannel" || chart == "calico" || chart == "tigera-operator" {
			return true
		}
	}
	return false
}

func getImageURLs(_ *Server, _ *Tx, args map[string]any) (map[string]any, error) {
	id, version := str(args, "schematicId"), str(args, "talosVersion")
	if len(id) != 64 {
		return nil, fmt.Errorf("schematicId %q: not a schematic ID", id)
	}
	platform, arch := str(args, "platform"), str(args, "architecture")
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
