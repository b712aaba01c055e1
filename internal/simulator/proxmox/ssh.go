package proxmox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func envAny(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// SSHLogin is the SSH login the provider uses on node, resolved as
// proxmoxtf/provider/provider.go does: ssh.username, else
// PROXMOX_VE_SSH_USERNAME, else the user part of the API username
// (password login); with an API token alone it is empty. The disk import
// then fails to authenticate (proxmox/ssh/client.go openNodeShell).
func SSHLogin(s *engine.Server, tx *engine.Tx, node string) error {
	conf := s.ConfigObject("ssh")
	user := keyUsername.In(conf)
	password := keyPassword.In(conf)
	key := keyPrivateKey.In(conf)
	agent := keyAgent.In(conf)
	apiUser, _, _ := s.ConfigValue("username")
	apiPassword, _, _ := s.ConfigValue("password")
	if user == "" {
		user = envAny("PROXMOX_VE_SSH_USERNAME", "PM_VE_SSH_USERNAME")
	}
	if user == "" {
		user, _, _ = strings.Cut(apiUser, "@")
	}
	if password == "" {
		password = envAny("PROXMOX_VE_SSH_PASSWORD", "PM_VE_SSH_PASSWORD")
	}
	if password == "" {
		password = apiPassword
	}
	if key == "" {
		key = os.Getenv("PROXMOX_VE_SSH_PRIVATE_KEY")
	}
	if env := envAny("PROXMOX_VE_SSH_AGENT", "PM_VE_SSH_AGENT"); env == "true" || env == "1" {
		agent = true
	}
	host := node
	if n, err := Node(tx, node); err == nil && n.SSHHost != "" {
		host = n.SSHHost
	}
	port := 22
	for _, e := range keyNodes.In(conf) {
		if m, ok := e.(map[string]any); ok && keyName.In(m) == node {
			host = keyAddress.In(m)
			if p := keyPort.In(m); p > 0 {
				port = p
			}
		}
	}
	sshHost := fmt.Sprintf("%s:%d", host, port)
	if user != "" && (agent || key != "" || password != "") {
		return providerKnownHosts(tx, host, port)
	}
	return fmt.Errorf("unable to authenticate user %q over SSH to %q. Please verify that ssh-agent is "+
		"correctly loaded with an authorized key via 'ssh-add -L' (NOTE: configurations in ~/.ssh/config are "+
		"not considered by the provider): failed to dial %s: ssh: handshake failed: ssh: unable to authenticate, "+
		"attempted methods [none password], no supported methods remain", user, sshHost, sshHost)
}

// providerKnownHosts is the provider's host-key rule for its own SSH client
// (bpg v0.69.1 proxmox/ssh/client.go:470-530): it reads $HOME/.ssh/known_hosts
// of the machine it runs on (creating it empty), refuses a host whose
// recorded key differs, and records an unknown host's key on first use.
// The key the host shows is the first of what answers at host (the world
// node with that SSH address; its impostor when a test says so) whose type
// the client asks for: the recorded types when the host is known
// (knownhosts HostKeyAlgorithms), else any.
func providerKnownHosts(tx *engine.Tx, host string, port int) error {
	var offered []string
	for _, n := range tx.World.Nodes {
		if n.SSHHost == host || n.Name == host {
			offered = n.HostKeys
		}
	}
	if len(offered) == 0 {
		return nil // a node without keys in the world: nothing to check
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return err
	}
	file := filepath.Join(home, ".ssh", "known_hosts")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	check, err := knownhosts.New(file)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", file, err)
	}
	addr := fmt.Sprintf("%s:%d", host, port)
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: port}
	var keys []ssh.PublicKey
	for _, line := range offered {
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// A known host is asked for its recorded key types only.
	shown := keys[0]
	var known *knownhosts.KeyError
	if err := check(addr, remote, shown); errors.As(err, &known) && len(known.Want) > 0 {
		for _, k := range keys {
			if slices.ContainsFunc(known.Want, func(w knownhosts.KnownKey) bool { return w.Key.Type() == k.Type() }) {
				shown = k
				break
			}
		}
	}
	var keyErr *knownhosts.KeyError
	switch err := check(addr, remote, shown); {
	case err == nil:
		return nil
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return fmt.Errorf("failed to dial %s: ssh: handshake failed: REMOTE HOST IDENTIFICATION HAS CHANGED for host %s! This may indicate a MitM attack", addr, addr)
	}
	w, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer w.Close()
	_, err = fmt.Fprintln(w, knownhosts.Line([]string{knownhosts.Normalize(addr)}, shown))
	return err
}

// ImportDisks is disk.CreateCustomDisks: every disk with a fileId is
// imported over SSH (qm importdisk on the node).
func ImportDisks(s *engine.Server, tx *engine.Tx, node string, disks []diskSpec) error {
	for _, d := range disks {
		if d.fileID == "" {
			continue
		}
		if err := SSHLogin(s, tx, node); err != nil {
			return fmt.Errorf("creating custom disk: %w", err)
		}
	}
	return nil
}
