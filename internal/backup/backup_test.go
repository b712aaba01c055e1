package backup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func identity(t *testing.T) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A snapshot sealed for a recipient opens with its identity, byte for
// byte, and its manifest carries the plaintext's hash and size; the sealed
// bytes do not contain the plaintext.
func TestSealOpenRoundTrip(t *testing.T) {
	id := identity(t)
	snapshot := []byte("etcd db: secret/kube-system/bootstrap-token-abcdef")
	m, err := NewManifest("prod", "talos-upgrade", snapshot, time.Date(2026, 12, 8, 1, 23, 45, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "20261208T012345Z-talos-upgrade" || m.Size != int64(len(snapshot)) || len(m.SHA256) != 64 {
		t.Errorf("manifest = %+v", m)
	}
	recipients, err := ParseRecipients([]string{id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(snapshot, recipients)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("bootstrap-token")) {
		t.Fatal("the sealed snapshot contains its plaintext")
	}
	got, err := Open(m, sealed, id)
	if err != nil || !bytes.Equal(got, snapshot) {
		t.Fatalf("Open = %q, %v; want the snapshot back", got, err)
	}
}

// What a restore must refuse before it wipes anything: another key, a
// damaged ciphertext, and a snapshot that is not the one its manifest
// describes; and nothing is sealed without a recipient.
func TestOpenRefuses(t *testing.T) {
	id := identity(t)
	snapshot := []byte("etcd db")
	m, _ := NewManifest("prod", "on-demand", snapshot, time.Now())
	sealed, err := Seal(snapshot, []age.Recipient{id.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(m, sealed, identity(t)); err == nil || !strings.Contains(err.Error(), "cannot be decrypted") {
		t.Errorf("another key: %v", err)
	}
	damaged := bytes.Clone(sealed)
	damaged[len(damaged)-3] ^= 0xff
	if _, err := Open(m, damaged, id); err == nil {
		t.Error("a damaged ciphertext opened")
	}
	other := m
	other.SHA256 = strings.Repeat("0", 64)
	if _, err := Open(other, sealed, id); err == nil || !strings.Contains(err.Error(), "does not match its manifest") {
		t.Errorf("a manifest of another snapshot: %v", err)
	}
	if _, err := Seal(snapshot, nil); err == nil {
		t.Error("sealed without a recipient")
	}
	if _, err := ParseRecipients(nil); err == nil || !strings.Contains(err.Error(), "age-keygen") {
		t.Errorf("no recipients: %v", err)
	}
	if _, err := ParseRecipients([]string{"ssh-ed25519 AAAA"}); err == nil || !strings.Contains(err.Error(), `recipient [0] "ssh-ed25519 AAAA"`) {
		t.Errorf("a non-age key: %v", err)
	}
	if _, err := NewManifest("prod", "../x", snapshot, time.Now()); err == nil {
		t.Error("a reason that names a path was accepted")
	}
}

// The directory store keeps each snapshot readable by the owner only,
// lists them oldest first, refuses IDs that could name another file, and
// prunes to the newest keep.
func TestDirStore(t *testing.T) {
	d := DirStore{Dir: filepath.Join(t.TempDir(), "backups")}
	id := identity(t)
	base := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		snap := []byte{byte(i)}
		m, _ := NewManifest("prod", "on-demand", snap, base.Add(time.Duration(i)*time.Hour))
		sealed, err := Seal(snap, []age.Recipient{id.Recipient()})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Put(m, sealed); err != nil {
			t.Fatal(err)
		}
	}
	all, err := d.List()
	if err != nil || len(all) != 4 || all[0].ID != "20261208T000000Z-on-demand" || all[3].ID != "20261208T030000Z-on-demand" {
		t.Fatalf("List = %+v, %v", all, err)
	}
	for _, name := range []string{all[0].ID + ".age", all[0].ID + ".json"} {
		if fi, err := os.Stat(filepath.Join(d.Dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", name, fi.Mode().Perm(), err)
		}
	}
	m, sealed, err := d.Get(all[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(m, sealed, id); err != nil || !bytes.Equal(got, []byte{2}) {
		t.Errorf("Get+Open = %v, %v; want [2]", got, err)
	}
	if _, _, err := d.Get("../../etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a snapshot ID") {
		t.Errorf("a path as ID: %v", err)
	}
	pruned, err := d.Prune(2)
	if err != nil || len(pruned) != 2 || pruned[0].ID != all[0].ID || pruned[1].ID != all[1].ID {
		t.Fatalf("Prune(2) = %+v, %v; want the two oldest", pruned, err)
	}
	if left, _ := d.List(); len(left) != 2 || left[0].ID != all[2].ID {
		t.Errorf("after Prune(2): %+v", left)
	}
	if _, err := d.Prune(0); err == nil {
		t.Error("Prune(0) would delete the newest snapshot")
	}
}
