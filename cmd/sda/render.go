package main

import (
	"errors"
	"fmt"
	"github.com/sda-platform/sda/stacks/inputs"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sda-platform/sda/components/routerfiles"
	"github.com/sda-platform/sda/components/sdn"
	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/render"
)

// File is one rendered file; Path is relative to the output directory and
// uses forward slashes.
type File struct {
	Path    string
	Content []byte
}

// routerFiles are one router's files under dir: its configuration at the
// paths inside the Debian container, the apply script, each node's
// entries, and in a pair keepalived's and conntrackd's configurations,
// keepalived's notify script and the handover script.
func routerFiles(dir string, spec routerfiles.Spec) []File {
	rf := routerfiles.Render(spec)
	layout := routerfiles.DebianLayout()
	files := []File{
		{dir + layout.Nftables, []byte(rf.Nftables)},
		{dir + layout.Dnsmasq, []byte(rf.Dnsmasq)},
		{dir + layout.Sysctl, []byte(rf.Sysctl)},
		{dir + "/apply.sh", []byte(routerfiles.ApplyScript(rf, layout))},
	}
	if spec.Pair != nil {
		files = append(files,
			File{dir + layout.Keepalived, []byte(rf.Keepalived)},
			File{dir + layout.Conntrackd, []byte(rf.Conntrackd)},
			File{dir + layout.VRRPNotify, []byte(rf.VRRPNotify)},
			File{dir + "/handover.sh", []byte(routerfiles.HandoverScript(spec, layout))})
	}
	// Each node's own entries, which RouterLXC installs with one command per
	// node (routerfiles.HostScript).
	for _, h := range spec.Hosts {
		hf := routerfiles.RenderHost(h)
		files = append(files,
			File{dir + path.Join(layout.HostsDir, h.Name), []byte(hf.Hosts)},
			File{dir + path.Join(layout.DHCPHostsDir, h.Name), []byte(hf.DHCPHosts)},
			File{dir + path.Join(layout.NftablesHostsDir, h.Name+".nft"), []byte(hf.Nftables)})
	}
	return files
}

// Marker is written into every render output directory. Render replaces an
// existing non-empty directory only when it holds this file, so pointing
// --out at the wrong directory cannot delete someone's work.
const Marker = ".sda-render"

// Files renders everything `sda render` writes, in memory: the router's
// files (at their paths inside the Debian container, under router/), the
// apply script the RouterLXC component runs, every node's DNS, DHCP and
// firewall entry files on the router, the Image Factory schematic,
// and for every node its numbered patches and its complete validated
// machine configuration.
func Files(c config.Config, p config.Plan) ([]File, error) {
	routers, err := inputs.Routers(c, p)
	if err != nil {
		return nil, err
	}
	var files []File
	for i, r := range routers {
		spec, err := r.Files()
		if err != nil {
			return nil, err
		}
		// The first router's files under router/, a pair's second's under
		// router2/.
		dir := "router"
		if i > 0 {
			dir += fmt.Sprint(i + 1)
		}
		files = append(files, routerFiles(dir, spec)...)
	}

	// The internal network's mode, and in vxlan mode the pvesh scripts the
	// InternalNetwork component runs on the first Proxmox node.
	files = append(files, File{"network/mode.txt", []byte(p.Network.Describe() + "\n")})
	if x := p.Network.VXLAN; x != nil {
		v := sdn.VXLAN{Zone: x.Zone, VNet: x.VNet, VNI: x.VNI, MTU: p.Network.MTU}
		for _, peer := range x.Peers {
			v.Peers = append(v.Peers, peer.Address.String())
		}
		files = append(files,
			File{"network/sdn-apply.sh", []byte(sdn.ApplyScript(v))},
			File{"network/sdn-delete.sh", []byte(sdn.DeleteScript(v))})
	}

	schematic := talospatch.SchematicYAML(c.Cluster.Extensions)
	id, err := talospatch.SchematicID(schematic)
	if err != nil {
		return nil, err
	}
	files = append(files, File{"talos/schematic.yaml", []byte(fmt.Sprintf(
		"# Image Factory schematic %s\n# boot image: %s (decompression %s)\n# installer:  %s\n%s",
		id, talospatch.NocloudImageURL(id, c.Cluster.TalosVersion), talospatch.NocloudImageDecompression,
		talospatch.InstallerImage(id, c.Cluster.TalosVersion), schematic))})

	machines, err := render.Machines(c, p)
	if err != nil {
		return nil, err
	}
	for _, m := range machines {
		dir := "talos/" + m.Machine.Hostname
		for i, patch := range m.Patches {
			name := fmt.Sprintf("%s/patches/%02d-%s.yaml", dir, i+1, patchFileName(patch.Source))
			files = append(files, File{name, []byte("# " + patch.Source + "\n" + patch.Content)})
		}
		files = append(files, File{dir + "/machineconfig.yaml", append([]byte(
			"# Complete Talos machine configuration of "+m.Machine.Hostname+", validated by Talos "+
				"(strict, install mode).\n# Generated from a throwaway secrets bundle; secrets are redacted.\n"),
			m.Config...)})
	}
	files = append(files, File{Marker, []byte("written by `sda render`; the whole directory is replaced on the next render\n")})
	return files, nil
}

// patchFileName turns a patch source ("sda:cluster.patches[0]") into a
// file-name part ("cluster.patches-0").
func patchFileName(source string) string {
	s := strings.TrimPrefix(source, "sda:")
	return strings.NewReplacer("[", "-", "]", "", ":", "-", "/", "-").Replace(s)
}

// Render renders the stack and writes it to outDir all at once: everything
// is rendered in memory and written into a temporary directory beside
// outDir, which then replaces outDir. On any error outDir is left as it was
// and the temporary directory is removed.
func Render(c config.Config, p config.Plan, outDir string) ([]File, error) {
	files, err := Files(c, p)
	if err != nil {
		return nil, err
	}
	if err := writeAtomically(outDir, files); err != nil {
		return nil, err
	}
	return files, nil
}

func writeAtomically(outDir string, files []File) (err error) {
	out := filepath.Clean(outDir)
	cannot := func(err error) error {
		return fmt.Errorf("cannot write to %s: %w (choose a writable directory with --out)", outDir, unwrapPath(err))
	}
	replace, err := checkReplaceable(out)
	if err != nil {
		return err
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return cannot(err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".sda-render-")
	if err != nil {
		return cannot(err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range files {
		path := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return cannot(err)
		}
		mode := fs.FileMode(0o644)
		if strings.HasSuffix(f.Path, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(path, f.Content, mode); err != nil {
			return cannot(err)
		}
	}
	// MkdirTemp makes the directory 0700; the result is an ordinary directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return cannot(err)
	}
	if replace {
		old := tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return cannot(err)
		}
		if err := os.Rename(tmp, out); err != nil {
			// Put the previous render back rather than leave nothing.
			_ = os.Rename(old, out)
			return cannot(err)
		}
		return os.RemoveAll(old)
	}
	if err := os.Rename(tmp, out); err != nil {
		return cannot(err)
	}
	return nil
}

// checkReplaceable decides what happens to an existing out directory: it
// may be absent (created), empty (replaced), or a previous render (replaced);
// anything else is refused.
func checkReplaceable(out string) (replace bool, err error) {
	info, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cannot write to %s: %w (choose a writable directory with --out)", out, unwrapPath(err))
	case !info.IsDir():
		return false, fmt.Errorf("cannot write to %s: it is a file, not a directory (choose a new or empty directory with --out)", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return false, fmt.Errorf("cannot write to %s: %w (choose a writable directory with --out)", out, unwrapPath(err))
	}
	if len(entries) == 0 {
		return true, nil
	}
	if _, err := os.Stat(filepath.Join(out, Marker)); err != nil {
		return false, fmt.Errorf("cannot write to %s: the directory is not empty and was not written by sda render, and render replaces it as a whole (choose a new or empty directory with --out)", out)
	}
	return true, nil
}

// unwrapPath drops the *PathError's own path, which the message already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
