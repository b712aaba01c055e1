// Package sshtrust is `sda trust`: it fetches a Proxmox node's SSH host key
// in a real SSH handshake, for the user to compare with the node's console,
// and pins it in the stack file. Trust on first use, done explicitly: once
// pinned, every SSH connection SDA makes refuses any other key
// (grammar.SSHHostKey says which keys can be pinned, and why).
package sshtrust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// pinnable are the host-key algorithms SDA can pin, best first: the client
// asks for these only, so a node answers with its ed25519 key when it has
// one (Proxmox VE nodes do: /etc/ssh/ssh_host_ed25519_key).
var pinnable = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521}

// errGotKey ends the handshake once the server has shown its key: nothing
// is authenticated and no session is opened.
var errGotKey = errors.New("host key received")

// FetchHostKey connects to addr (host:port) and returns the host key the
// server proves it holds during the key exchange. The handshake stops
// there: no user authentication is attempted.
func FetchHostKey(ctx context.Context, addr string) (ssh.PublicKey, error) {
	return fetch(ctx, addr, pinnable)
}

// fetch is the handshake of FetchHostKey, asking for algorithms.
func fetch(ctx context.Context, addr string, algorithms []string) (ssh.PublicKey, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	var key ssh.PublicKey
	_, _, _, err = ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              "sda-trust",
		HostKeyAlgorithms: algorithms,
		// The callback runs after the server signed the exchange hash
		// with this key, so the key is the server's own.
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errGotKey
		},
	})
	if key != nil {
		return key, nil
	}
	if err == nil {
		err = errors.New("the server showed no host key")
	}
	return nil, fmt.Errorf("SSH handshake with %s: %w (SDA pins ed25519 or ECDSA host keys)", addr, err)
}

// Line is key as the authorized_keys line a stack pins ("ssh-ed25519 AAAA…").
func Line(key ssh.PublicKey) string {
	b := ssh.MarshalAuthorizedKey(key)
	return string(b[:len(b)-1])
}

// Fingerprint is the SHA256 fingerprint OpenSSH prints for key
// (`ssh-keygen -lf`), e.g. "SHA256:…".
func Fingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }

// VerifyHostKey connects to addr asking only for the pinned key's type,
// as the SSH clients SDA drives do, and fails unless the server proves it
// holds the pinned key; the error names both fingerprints.
func VerifyHostKey(ctx context.Context, addr, pin string) error {
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pin))
	if err != nil {
		return fmt.Errorf("the pinned host key: %w", err)
	}
	got, err := fetch(ctx, addr, []string{want.Type()})
	if err != nil {
		return err
	}
	if !bytes.Equal(got.Marshal(), want.Marshal()) {
		return fmt.Errorf("%s answers with host key %s, not the pinned %s: another machine may be answering on its address. If the node was reinstalled, compare on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin the new key with `sda trust --replace`",
			addr, Fingerprint(got), Fingerprint(want))
	}
	return nil
}
