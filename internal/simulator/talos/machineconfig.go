package talos

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
	talosconfig "github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/constants"
	"gopkg.in/yaml.v3"
)

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

// GetMachineConfiguration is the machine/getConfiguration function.
func GetMachineConfiguration(_ *engine.Server, _ *engine.Tx, args map[string]any) (map[string]any, error) {
	sec := keyMachineSecrets.In(args)
	b, err := bundleFromSDK(sec)
	if err != nil {
		return nil, err
	}
	vc, err := contract(keyTalosVersion.In(args))
	if err != nil {
		return nil, err
	}
	k8s := strings.TrimPrefix(keyKubernetesVersion.In(args), "v")
	if k8s == "" {
		k8s = constants.DefaultKubernetesVersion
	}
	endpoint := keyClusterEndpoint.In(args)
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("clusterEndpoint %q: must be an https URL such as https://10.0.0.10:6443", endpoint)
	}
	mt, err := machine.ParseType(keyMachineType.In(args))
	if err != nil || (mt != machine.TypeControlPlane && mt != machine.TypeWorker) {
		return nil, fmt.Errorf("machineType %q: use controlplane or worker", keyMachineType.In(args))
	}
	input, err := generate.NewInput(keyClusterName.In(args), endpoint, k8s,
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
	_, text, err := patchAndValidate(raw, keyConfigPatches.In(args), runtimeMode{install: false})
	if err != nil {
		return nil, err
	}
	return map[string]any{"machineConfiguration": text, "id": keyClusterName.In(args)}, nil
}

// caMatches reports whether the client's CA is the node's Talos API CA: a
// configured node accepts only clients with certificates from its own CA.
func caMatches(clientConfig map[string]any, osCA string) bool {
	return bytes.Equal(bytes.TrimSpace(Unb64(keyCACertificate.In(clientConfig))), bytes.TrimSpace([]byte(osCA)))
}

// V1alpha1Doc returns the main document of a machine configuration as
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
	cfg, text, err := patchAndValidate([]byte(keyMachineConfigurationInput.In(v)), keyConfigPatches.In(v), runtimeMode{install: false})
	if err != nil {
		return nil, err
	}
	return patched{cfg: cfg, text: text}, nil
}

func getImageURLs(_ *engine.Server, _ *engine.Tx, args map[string]any) (map[string]any, error) {
	id, version := keySchematicID.In(args), keyTalosVersion.In(args)
	if len(id) != 64 {
		return nil, fmt.Errorf("schematicId %q: not a schematic ID", id)
	}
	platform, arch := keyPlatform.In(args), keyArchitecture.In(args)
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
