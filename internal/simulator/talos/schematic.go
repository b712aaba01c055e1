package talos

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"gopkg.in/yaml.v3"
)

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
	id, err := postSchematic(tx, keySchematic.In(in.Values))
	return id, nil, err
}

// updateSchematic posts the new schematic, as the provider's Update does
// (talos_image_factory_schematic_resource.go Update), but a Pulumi update
// cannot change a resource's ID: the resource keeps the old schematic's ID
// while the factory now also knows the new one.
func updateSchematic(_ *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	if _, err := postSchematic(tx, keySchematic.In(news.Values)); err != nil {
		return nil, fmt.Errorf("failed to update schematic: %w", err)
	}
	return old.Outputs, nil
}
