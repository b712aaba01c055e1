package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DirStore keeps snapshots in a directory on the deployer: <id>.age (the
// sealed snapshot) and <id>.json (its manifest), readable by the owner
// only.
type DirStore struct{ Dir string }

// Put stores a sealed snapshot and its manifest. The manifest is written
// last, so a snapshot without one (an interrupted Put) is never listed.
func (d DirStore) Put(m Manifest, sealed []byte) error {
	if !ValidID(m.ID) {
		return fmt.Errorf("backup: %q is not a snapshot ID", m.ID)
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(d.Dir, m.ID+".age"), sealed); err != nil {
		return err
	}
	return writeFile(filepath.Join(d.Dir, m.ID+".json"), append(manifest, '\n'))
}

// writeFile writes data by rename from a temporary file, mode 0600.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Get returns a snapshot's manifest and sealed bytes.
func (d DirStore) Get(id string) (Manifest, []byte, error) {
	if !ValidID(id) {
		return Manifest{}, nil, fmt.Errorf("backup: %q is not a snapshot ID (such as 20261208T012345Z-on-demand)", id)
	}
	var m Manifest
	raw, err := os.ReadFile(filepath.Join(d.Dir, id+".json"))
	if err != nil {
		return m, nil, fmt.Errorf("backup: no snapshot %s in %s: %w", id, d.Dir, err)
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.ID != id {
		return m, nil, fmt.Errorf("backup: the manifest of %s is damaged", id)
	}
	sealed, err := os.ReadFile(filepath.Join(d.Dir, id+".age"))
	return m, sealed, err
}

// List returns the stored snapshots' manifests, oldest first.
func (d DirStore) List() ([]Manifest, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !ValidID(id) {
			continue
		}
		m, _, err := d.Get(id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Manifest) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Prune deletes all but the keep newest snapshots and returns those it
// deleted. keep below 1 is refused: the newest snapshot is never deleted.
func (d DirStore) Prune(keep int) ([]Manifest, error) {
	if keep < 1 {
		return nil, fmt.Errorf("backup: retention %d: keep at least 1 snapshot", keep)
	}
	all, err := d.List()
	if err != nil || len(all) <= keep {
		return nil, err
	}
	old := all[:len(all)-keep]
	for _, m := range old {
		// The manifest first: a snapshot half deleted is not listed.
		for _, ext := range []string{".json", ".age"} {
			if err := os.Remove(filepath.Join(d.Dir, m.ID+ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
	}
	return old, nil
}
