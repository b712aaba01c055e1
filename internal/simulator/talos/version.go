package talos

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/proxmox"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Version is machined's Version (talos v1.12.0 v1alpha1_server.go:1178-1206):
// the running Talos version, the platform (nocloud, in cloud mode) and
// features.rbac on a configured machine.
func (a *API) Version(ctx context.Context, _ *emptypb.Empty) (*machine.VersionResponse, error) {
	msgs, err := apiCall(ctx, a, "Version", false, func(nc *nodeCall) (*machine.Version, error) {
		return &machine.Version{
			Version:  &machine.VersionInfo{Tag: nc.m.Version, Os: "linux", Arch: "amd64"},
			Platform: &machine.PlatformInfo{Name: "nocloud", Mode: "cloud"},
			Features: &machine.FeaturesInfo{Rbac: true},
		}, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return &machine.VersionResponse{Messages: msgs}, nil
}

// ImageTag is the tag of an image reference ("" without one).
func ImageTag(ref string) string {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ""
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// factorySchematic finds an Image Factory schematic ID in an image
// reference or URL: the installer ".../installer/<id>:<version>" or the
// disk image ".../image/<id>/<version>/...".
var factorySchematic = regexp.MustCompile(`/([0-9a-f]{64})(?:[:/@]|$)`)

// schematicOfImage is the schematic ID in an image reference or URL ("" for
// an image not built by Image Factory).
func schematicOfImage(ref string) string {
	if m := factorySchematic.FindStringSubmatch(ref); m != nil {
		return m[1]
	}
	return ""
}

// versionInURL finds the Talos version in an image URL (Image Factory
// .../image/<schematic>/v1.12.0/nocloud-amd64.raw.zst, GitHub releases
// .../download/v1.12.0/...).
var versionInURL = regexp.MustCompile(`/(v\d+\.\d+\.\d+[^/]*)/`)

// BootVersion is the Talos version and Image Factory schematic a VM boots
// before any upgrade through the API: what an upgrade installed on its
// disk (Guest.TalosVersion, TalosSchematic); else the version and
// schematic in the URL of the image its disk was imported from; else those
// of the installer image in its configuration (machine.install.image);
// else the simulation's default version (v1.12.0) and no schematic.
func BootVersion(tx *engine.Tx, g *engine.Guest, doc map[string]any) (version, schematic string) {
	if g.TalosVersion != "" {
		return g.TalosVersion, g.TalosSchematic
	}
	for _, obj := range tx.State.Objects {
		if obj.Type != proxmox.TokenVM || obj.ID != strconv.Itoa(g.VMID) {
			continue
		}
		for _, e := range keyDisks.In(obj.Inputs) {
			disk, _ := e.(map[string]any)
			id := keyFileID.In(disk)
			if f := tx.State.Files[proxmox.FileKey(tx, g.Node, id)]; id != "" && f != nil {
				if m := versionInURL.FindStringSubmatch(f.URL); m != nil {
					return m[1], schematicOfImage(f.URL)
				}
			}
		}
	}
	installer := engine.Str(doc, "machine.install.image")
	if tag := ImageTag(installer); strings.HasPrefix(tag, "v") {
		return tag, schematicOfImage(installer)
	}
	return defaultTalosContract, ""
}
