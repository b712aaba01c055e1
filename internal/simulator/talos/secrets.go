package talos

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/crypto/x509"
	clientconfig "github.com/siderolabs/talos/pkg/machinery/client/config"
	talosconfig "github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/role"
)

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

// B64 is standard base64, as the SDK's secrets carry PEM.
func B64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Unb64 decodes B64 (nil on an error).
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
	pair := func(k engine.Key[map[string]any]) *x509.PEMEncodedCertificateAndKey {
		p := k.In(v)
		return &x509.PEMEncodedCertificateAndKey{Crt: Unb64(keyCert.In(p)), Key: Unb64(keyKey.In(p))}
	}
	b := &secrets.Bundle{
		Clock:   secrets.NewFixedClock(time.Now()),
		Cluster: &secrets.Cluster{ID: keyClusterID.In(v), Secret: keyClusterSecret.In(v)},
		Secrets: &secrets.Secrets{
			BootstrapToken:            keySecretsBootstrapToken.In(v),
			SecretboxEncryptionSecret: keySecretsSecretboxEncryptionSecret.In(v),
			AESCBCEncryptionSecret:    keySecretsAescbcEncryptionSecret.In(v),
		},
		TrustdInfo: &secrets.TrustdInfo{Token: keyTrustdinfoToken.In(v)},
		Certs: &secrets.Certs{
			Etcd: pair(keyCertsEtcd), K8s: pair(keyCertsK8s), K8sAggregator: pair(keyCertsK8sAggregator),
			K8sServiceAccount: &x509.PEMEncodedKey{Key: Unb64(keyCertsK8sServiceaccountKey.In(v))},
			OS:                pair(keyCertsOS),
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
	vc, err := contract(keyTalosVersion.In(v))
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

func getClientConfiguration(_ *engine.Server, _ *engine.Tx, args map[string]any) (map[string]any, error) {
	cc := keyClientConfiguration.In(args)
	ca, crt, key := Unb64(keyCACertificate.In(cc)), Unb64(keyClientCertificate.In(cc)), Unb64(keyClientKey.In(cc))
	if len(ca) == 0 || len(crt) == 0 || len(key) == 0 {
		return nil, fmt.Errorf("clientConfiguration: caCertificate, clientCertificate and clientKey are required (base64 PEM)")
	}
	endpoints := keyEndpoints.In(args)
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("endpoints: at least one Talos endpoint is required")
	}
	cfg := clientconfig.NewConfig(keyClusterName.In(args), endpoints, ca, &x509.PEMEncodedCertificateAndKey{Crt: crt, Key: key})
	cfg.Contexts[cfg.Context].Nodes = keyNodes.In(args)
	b, err := cfg.Bytes()
	if err != nil {
		return nil, err
	}
	return map[string]any{"talosConfig": string(b), "id": keyClusterName.In(args)}, nil
}
