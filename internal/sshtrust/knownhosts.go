package sshtrust

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The Proxmox provider (bpg v0.69.1, proxmox/ssh/client.go:470-530) has no
// host-key setting for its own SSH connections (the VM disk import): it
// reads $HOME/.ssh/known_hosts of the machine that runs it, refuses a host
// whose recorded key changed, and records an unknown host's key on first
// use. Writing the pinned key there before the provider first connects
// turns that trust-on-first-use into the pin.

// KnownHostsFile is $HOME/.ssh/known_hosts, the file the provider reads.
func KnownHostsFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".ssh", "known_hosts"), nil
}

// KnownHostState is what a known_hosts file says of a host and a key.
type KnownHostState int

const (
	// HostUnknown: no line for the host with the key's type.
	HostUnknown KnownHostState = iota
	// HostPinned: the file holds this very key for the host.
	HostPinned
	// HostKeyDiffers: the file holds another key of the same type for the
	// host: the provider would refuse the node.
	HostKeyDiffers
)

// CheckKnownHost reports what file (a known_hosts file; missing is empty)
// says of host:port and key (an authorized_keys line).
func CheckKnownHost(file, host string, port int, key string) (KnownHostState, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return HostUnknown, fmt.Errorf("host key: %w", err)
	}
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return HostUnknown, nil
	}
	check, err := knownhosts.New(file)
	if err != nil {
		return HostUnknown, fmt.Errorf("reading %s: %w", file, err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: port}
	err = check(addr, remote, pub)
	var keyErr *knownhosts.KeyError
	switch {
	case err == nil:
		return HostPinned, nil
	case errors.As(err, &keyErr):
		for _, want := range keyErr.Want {
			if want.Key.Type() == pub.Type() {
				return HostKeyDiffers, fmt.Errorf("%s:%d holds another %s key for %s: the Proxmox provider would refuse the node. If the node was reinstalled and `sda trust` showed its new key, remove the old one: ssh-keygen -f %s -R %s",
					want.Filename, want.Line, pub.Type(), knownhosts.Normalize(addr), file, knownhosts.Normalize(addr))
			}
		}
		return HostUnknown, nil
	}
	return HostUnknown, err
}

// PinKnownHost makes file hold key for host:port, as the provider would
// record it, unless it holds it already. A different key of the same type
// is refused (CheckKnownHost's error), never overwritten.
func PinKnownHost(file, host string, port int, key string) error {
	state, err := CheckKnownHost(file, host, port, key)
	if err != nil || state == HostPinned {
		return err
	}
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(key))
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))}, pub)
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
