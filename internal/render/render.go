// Package render builds every machine's complete Talos configuration offline,
// with Talos's own machinery: generate from a throwaway secrets bundle, apply
// SDA's patches with Talos's configpatcher, validate with Talos's validator.
//
// The patches are the exact strings the Pulumi components hand to the Talos
// provider (both take the cluster from stacks/inputs and its patches from
// spec.Cluster.PatchCluster), so a configuration that renders and
// validates here is the one the provider applies, apart from the secrets.
package render

import (
	"errors"
	"fmt"
	"strings"
	"time"

	talosconfig "github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"github.com/siderolabs/talos/pkg/machinery/config/generate"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"
	"github.com/siderolabs/talos/pkg/machinery/config/machine"
	"github.com/siderolabs/talos/pkg/machinery/config/validation"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks/inputs"
)

// Redacted replaces every secret of the throwaway bundle in rendered
// configurations: they are not the cluster's secrets, and written-out keys
// invite being mistaken for (or used as) real ones.
const Redacted = "REDACTED-THROWAWAY-SECRET"

// Patch is one machine-config patch and where it comes from.
type Patch struct {
	// Source names the origin: "sda:kubeprism", "sda:cluster.patches[0]", ...
	Source  string
	Content string
}

// Machine is one planned machine with everything Talos gets for it.
type Machine struct {
	Machine config.Machine
	// Patches in the order they are applied: cluster, CNI, node.
	Patches []Patch
	// Config is the complete, validated machine configuration (all documents)
	// with the throwaway secrets redacted.
	Config []byte
}

// InstallerImage is the installer of the stack's schematic and Talos version.
func InstallerImage(c config.Config) (string, error) {
	id, err := talospatch.SchematicID(talospatch.SchematicYAML(c.Cluster.Extensions))
	if err != nil {
		return "", err
	}
	return talospatch.InstallerImage(id, c.Cluster.TalosVersion), nil
}

// Patches lists one machine's patches in application order, each named by
// where it comes from, so an error can point at the user's own patch. It is
// talospatch.MachinePatches of the stack's cluster as TalosCluster sees it
// (stacks/inputs and spec.Cluster.PatchCluster, the path the deployment
// takes): the list TalosCluster hands to the Talos provider.
func Patches(c config.Config, p config.Plan, m config.Machine, installerImage string) []Patch {
	var out []Patch
	cluster := inputs.Cluster(c, p)
	for _, n := range talospatch.MachinePatches(cluster.PatchCluster(installerImage), inputs.Node(c, m).PatchNode()) {
		out = append(out, Patch{Source: n.Source, Content: n.Content})
	}
	return out
}

// Machines renders and validates the configuration of every planned machine,
// control planes first. It fails on the first machine Talos rejects, naming
// the machine, the patch when a patch does not load or apply, and Talos's
// own message.
func Machines(c config.Config, p config.Plan) ([]Machine, error) {
	input, image, err := GenerateInput(c, p)
	if err != nil {
		return nil, err
	}

	var out []Machine
	for _, m := range p.Machines() {
		rendered, err := renderMachine(input, c, p, m, image)
		if err != nil {
			return nil, fmt.Errorf("machine %s: %w", m.Hostname, err)
		}
		out = append(out, rendered)
	}
	return out, nil
}

func renderMachine(input *generate.Input, c config.Config, p config.Plan, m config.Machine, image string) (Machine, error) {
	generated, err := GenerateFor(input, m)
	if err != nil {
		return Machine{}, err
	}
	patches := Patches(c, p, m, image)
	cfg := configpatcher.WithConfig(generated)
	// One patch at a time, so a failure names the patch that caused it.
	for i, patch := range patches {
		loaded, err := configpatcher.LoadPatch([]byte(patch.Content))
		if err != nil {
			return Machine{}, fmt.Errorf("patch %d (%s) does not load: %w", i+1, patch.Source, err)
		}
		if cfg, err = configpatcher.Apply(cfg, []configpatcher.Patch{loaded}); err != nil {
			return Machine{}, fmt.Errorf("patch %d (%s) does not apply: %w", i+1, patch.Source, err)
		}
	}
	final, err := cfg.Config()
	if err != nil {
		return Machine{}, fmt.Errorf("the patched configuration does not load: %w", err)
	}
	if err := Validate(final); err != nil {
		return Machine{}, err
	}
	data, err := final.RedactSecrets(Redacted).EncodeBytes(encoder.WithComments(encoder.CommentsDisabled))
	if err != nil {
		return Machine{}, fmt.Errorf("encoding the configuration: %w", err)
	}
	return Machine{Machine: m, Patches: patches, Config: data}, nil
}

// installMode is the runtime mode of a Proxmox VM booted from the nocloud
// image: Talos installs to disk and does not run in a container, the mode
// `talosctl validate --mode cloud` checks.
type installMode struct{}

func (installMode) String() string        { return "cloud" }
func (installMode) RequiresInstall() bool { return true }
func (installMode) InContainer() bool     { return false }

// Validate runs Talos's validator in strict mode for an installing VM. Strict
// turns v1alpha1 warnings into errors; warnings from the other documents are
// treated as errors too, so a deprecated setting fails here and not on a node.
func Validate(cfg talosconfig.Provider) error {
	warnings, err := cfg.Validate(installMode{}, validation.WithStrict())
	if err == nil && len(warnings) > 0 {
		err = errors.New("warning: " + strings.Join(warnings, "; warning: "))
	}
	if err != nil {
		// Talos's multierror ends in blank lines; one message, no trailing space.
		return fmt.Errorf("Talos rejects the configuration: %s", strings.TrimSpace(err.Error()))
	}
	return nil
}

// GenerateInput prepares Talos's generator for the stack, with a throwaway
// secrets bundle shared by every machine, and the installer image. Machines
// renders from it; config/check generates from it to check the user's
// patches.
func GenerateInput(c config.Config, p config.Plan) (*generate.Input, string, error) {
	contract, err := talosconfig.ParseContractFromVersion(c.Cluster.TalosVersion)
	if err != nil {
		return nil, "", fmt.Errorf("sda:cluster.talosVersion = %q: %w", c.Cluster.TalosVersion, err)
	}
	// One bundle for the whole cluster, as in a real deployment: control
	// planes and workers must share the CA and tokens to validate alike.
	bundle, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), contract)
	if err != nil {
		return nil, "", fmt.Errorf("generating throwaway Talos secrets: %w", err)
	}
	input, err := generate.NewInput(c.Cluster.Name, p.KubernetesEndpoint(),
		// Talos wants the bare Kubernetes version; it adds the "v" to image tags.
		strings.TrimPrefix(c.Cluster.KubernetesVersion, "v"),
		generate.WithVersionContract(contract),
		generate.WithSecretsBundle(bundle),
		generate.WithEndpointList(p.TalosEndpoints()),
	)
	if err != nil {
		return nil, "", fmt.Errorf("preparing Talos config generation: %w", err)
	}
	image, err := InstallerImage(c)
	if err != nil {
		return nil, "", err
	}
	return input, image, nil
}

// GenerateFor generates the configuration of the machine's role, before
// any patch.
func GenerateFor(input *generate.Input, m config.Machine) (talosconfig.Provider, error) {
	typ := machine.TypeWorker
	if m.Role == config.RoleControlPlane {
		typ = machine.TypeControlPlane
	}
	generated, err := input.Config(typ)
	if err != nil {
		return nil, fmt.Errorf("generating the %s configuration: %w", typ, err)
	}
	return generated, nil
}
