// Package backup keeps a stack's etcd snapshots (issue 21, its first
// piece): each one encrypted at rest with age for recipients the user
// holds the keys of, since a snapshot holds every Secret of the cluster;
// described by a manifest with the plaintext's SHA-256, so that a restore
// checks a snapshot before anything is wiped; and pruned to a retention.
//
// The store here is a directory on the deployer (the default, which needs
// no set-up). Taking the snapshot through the Talos API, the S3 store, the
// in-cluster schedule and `sda backup`/`sda restore` build on it and are
// not here yet.
package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"filippo.io/age"
)

// Manifest describes one stored snapshot.
type Manifest struct {
	// ID names the snapshot: its UTC creation time, then its reason, such
	// as 20261208T012345Z-talos-upgrade. IDs sort by time.
	ID      string    `json:"id"`
	Cluster string    `json:"cluster"`
	Reason  string    `json:"reason"`
	Created time.Time `json:"created"`
	// SHA256 and Size are the plaintext snapshot's (etcd's database file),
	// checked after decryption.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

var (
	idRE     = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[a-z0-9][a-z0-9-]{0,62}$`)
	reasonRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// ValidID reports whether id is a snapshot ID: nothing in it can name
// another file (no separators, no dots).
func ValidID(id string) bool { return idRE.MatchString(id) }

// NewManifest describes snapshot, taken for reason at now.
func NewManifest(cluster, reason string, snapshot []byte, now time.Time) (Manifest, error) {
	if !reasonRE.MatchString(reason) {
		return Manifest{}, fmt.Errorf("backup: reason %q: use lowercase letters, digits and '-', such as talos-upgrade", reason)
	}
	sum := sha256.Sum256(snapshot)
	now = now.UTC().Truncate(time.Second)
	return Manifest{
		ID:      now.Format("20060102T150405Z") + "-" + reason,
		Cluster: cluster, Reason: reason, Created: now,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(snapshot)),
	}, nil
}

// ParseRecipients parses age recipients (age1… X25519 public keys). At
// least one is required: a snapshot is never stored in the clear.
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	if len(keys) == 0 {
		return nil, errors.New("backup: no age recipient: snapshots hold every Secret of the cluster, so they are stored encrypted; generate a key with age-keygen and give its public key (age1…)")
	}
	var out []age.Recipient
	for i, k := range keys {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("backup: recipient [%d] %q is not an age public key (age1…): %v", i, k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Seal encrypts snapshot for recipients.
func Seal(snapshot []byte, recipients []age.Recipient) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, errors.New("backup: no age recipient: refusing to store a snapshot in the clear")
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(snapshot); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Open decrypts a sealed snapshot and checks it against its manifest: a
// snapshot that was altered, truncated or swapped for another fails here,
// before a restore wipes anything.
func Open(m Manifest, sealed []byte, identities ...age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), identities...)
	if err != nil {
		return nil, fmt.Errorf("backup: snapshot %s cannot be decrypted with the given key: %w", m.ID, err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("backup: snapshot %s is damaged: %w", m.ID, err)
	}
	sum := sha256.Sum256(plain)
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 || int64(len(plain)) != m.Size {
		return nil, fmt.Errorf("backup: snapshot %s does not match its manifest (SHA-256 %s, %d bytes; the manifest says %s, %d bytes): it is not the snapshot that was taken", m.ID, got, len(plain), m.SHA256, m.Size)
	}
	return plain, nil
}
