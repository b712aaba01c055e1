// Package talospatch builds what SDA hands to Talos: the Image Factory
// schematic and its ID, the installer and boot image references, and the
// machine-configuration patches (YAML strategic-merge documents) for the
// whole cluster and for each machine.
//
// It is pure (no Pulumi import): the Pulumi components hand these exact
// strings to the Talos provider, and `sda render` applies the same strings
// offline with Talos's own configpatcher and validator, so what the render
// tests validate is what gets deployed.
package talospatch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ImageFactory is the public Talos Image Factory.
const ImageFactory = "factory.talos.dev"

// NocloudImageDecompression is the Proxmox download decompression
// (`decompression_algorithm` of the download-file resource) that matches
// NocloudImageURL. Image Factory's default for nocloud is .raw.xz, which
// Proxmox cannot decompress (it knows gz, lzo, zst and bz2), so SDA asks the
// factory for the gzip variant.
const NocloudImageDecompression = "gz"

// schematic mirrors Image Factory's pkg/schematic data model field for field
// (names, order, yaml tags, omitempty): the schematic ID is the sha256 of
// yaml.v3's marshaling of that struct, so any difference here changes the ID.
type schematic struct {
	Overlay       schematicOverlay       `yaml:"overlay,omitempty"`
	Customization schematicCustomization `yaml:"customization"`
}

type schematicCustomization struct {
	ExtraKernelArgs  []string            `yaml:"extraKernelArgs,omitempty"`
	Meta             []schematicMeta     `yaml:"meta,omitempty"`
	SystemExtensions schematicExtensions `yaml:"systemExtensions,omitempty"`
	SecureBoot       schematicSecureBoot `yaml:"secureboot,omitempty"`
}

type schematicMeta struct {
	Key   uint8  `yaml:"key"`
	Value string `yaml:"value"`
}

type schematicExtensions struct {
	OfficialExtensions []string `yaml:"officialExtensions,omitempty"`
}

type schematicOverlay struct {
	Image   string         `yaml:"image"`
	Name    string         `yaml:"name"`
	Options map[string]any `yaml:"options,omitempty"`
}

type schematicSecureBoot struct {
	IncludeWellKnownCertificates bool `yaml:"includeWellKnownCertificates,omitempty"`
}

// SchematicYAML is the Image Factory schematic with the given official
// system extensions (customization.systemExtensions.officialExtensions).
func SchematicYAML(extensions []string) string {
	var s schematic
	s.Customization.SystemExtensions.OfficialExtensions = append([]string(nil), extensions...)
	out, err := yaml.Marshal(s)
	if err != nil {
		// Marshaling a struct of strings cannot fail.
		panic(err)
	}
	return string(out)
}

// SchematicID computes the schematic ID exactly as Image Factory does: it
// decodes the schematic strictly (unknown fields are errors, as in
// POST /schematics), re-marshals it canonically and hashes that with sha256.
// Equivalent schematics (JSON or YAML, any key order) get the same ID.
func SchematicID(schematicYAML string) (string, error) {
	dec := yaml.NewDecoder(bytes.NewReader([]byte(schematicYAML)))
	dec.KnownFields(true)
	var s schematic
	if err := dec.Decode(&s); err != nil {
		return "", fmt.Errorf("invalid Image Factory schematic: %w", err)
	}
	canonical, err := yaml.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("invalid Image Factory schematic: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:]), nil
}

// InstallerImage is the platform-specific installer Image Factory serves for
// the schematic: factory.talos.dev/nocloud-installer/<id>:<talosVersion>.
// Since Talos 1.10 installers are per platform; the nocloud one matches the
// nocloud boot image, so upgrades keep reading Proxmox's cloud-init data.
func InstallerImage(schematicID, talosVersion string) string {
	return fmt.Sprintf("%s/nocloud-installer/%s:%s", ImageFactory, schematicID, talosVersion)
}

// NocloudImageURL is the Image Factory URL of the nocloud amd64 raw disk
// image, gzip-compressed: Proxmox downloads it with decompression
// NocloudImageDecompression ("gz") and imports the raw disk.
func NocloudImageURL(schematicID, talosVersion string) string {
	return fmt.Sprintf("https://%s/image/%s/%s/nocloud-amd64.raw.gz", ImageFactory, schematicID, talosVersion)
}
