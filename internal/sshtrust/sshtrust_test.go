package sshtrust

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sda-platform/sda/config"
)

// sshServer serves SSH handshakes on loopback with the given host keys and
// returns its address.
func sshServer(t *testing.T, keys ...any) string {
	t.Helper()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	for _, k := range keys {
		s, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AddHostKey(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _, _, _ = ssh.NewServerConn(c, cfg)
			}()
		}
	}()
	return l.Addr().String()
}

// The key fetched is the one the server holds: ed25519 when it has one
// among others, ECDSA otherwise; a server with only RSA is refused.
func TestFetchHostKey(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	edPub, _ := ssh.NewPublicKey(ed.Public())
	ecPub, _ := ssh.NewPublicKey(ec.Public())
	ctx := context.Background()

	got, err := FetchHostKey(ctx, sshServer(t, rs, ec, ed))
	if err != nil || Line(got) != Line(edPub) {
		t.Fatalf("server with rsa, ecdsa and ed25519 keys: %v, %v; want its ed25519 key", got, err)
	}
	if !strings.HasPrefix(Fingerprint(got), "SHA256:") {
		t.Errorf("fingerprint %q", Fingerprint(got))
	}
	got, err = FetchHostKey(ctx, sshServer(t, rs, ec))
	if err != nil || Line(got) != Line(ecPub) {
		t.Fatalf("server with rsa and ecdsa keys: %v, %v; want its ECDSA key", got, err)
	}
	if _, err := FetchHostKey(ctx, sshServer(t, rs)); err == nil || !strings.Contains(err.Error(), "ed25519 or ECDSA") {
		t.Fatalf("server with only an RSA key: %v; want a refusal naming the pinnable types", err)
	}
}

const stackFile = `# dev: one node.
config:
  sda:cluster:
    name: dev
  sda:proxmox:
    nodes:
      - name: pve
        sshHost: 192.168.1.10 # the management address
      - name: pve2
        sshHostKey: ssh-ed25519 AAAAold
    vmIdBase: 8000
  sda:nodes:
    worker: {cores: 2, memoryMiB: 2048}
`

// Pinning adds the key to a node without one and replaces an old pin;
// every other line, comments included, stays byte for byte.
func TestPinInStackFile(t *testing.T) {
	out, err := PinInStackFile([]byte(stackFile), map[string]string{"pve": "ssh-ed25519 AAAAnew1", "pve2": "ssh-ed25519 AAAAnew2"})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(stackFile, "the management address\n", "the management address\n        sshHostKey: ssh-ed25519 AAAAnew1\n", 1)
	want = strings.Replace(want, "AAAAold", "AAAAnew2", 1)
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	if _, err := PinInStackFile([]byte(stackFile), map[string]string{"pve9": "ssh-ed25519 AAAA"}); err == nil || !strings.Contains(err.Error(), "pve9") {
		t.Errorf("an unknown node: %v; want an error naming it", err)
	}
	flow := strings.Replace(stackFile, "      - name: pve\n        sshHost: 192.168.1.10 # the management address\n", "      - {name: pve, sshHost: 192.168.1.10}\n", 1)
	if _, err := PinInStackFile([]byte(flow), map[string]string{"pve": "ssh-ed25519 AAAA"}); err == nil || !strings.Contains(err.Error(), "flow style") {
		t.Errorf("a flow-style node: %v; want an error saying so", err)
	}
}

// sda trust end to end against a loopback SSH server: it pins the node's
// key once confirmed, refuses to overwrite a pin the node no longer
// matches unless told --replace, and writes nothing when not confirmed.
func TestTrustCommand(t *testing.T) {
	dir := t.TempDir()
	project, err := os.ReadFile(filepath.Join("..", "..", "testdata", "stacks", "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stack := strings.Replace(stackFile, "192.168.1.10", "127.0.0.1", 1)
	stack = strings.Replace(stack, "      - name: pve2\n        sshHostKey: ssh-ed25519 AAAAold\n", "", 1)
	file := filepath.Join(dir, "Pulumi.lab.yaml")
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), project, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(stack), 0o600); err != nil {
		t.Fatal(err)
	}
	trust := func(stdin string, addr string, flags ...string) (int, string) {
		_, port, _ := net.SplitHostPort(addr)
		var out, errs strings.Builder
		code := Run(append([]string{"--stack", "lab", "--dir", dir, "--port", port}, flags...), strings.NewReader(stdin), &out, &errs)
		return code, out.String() + errs.String()
	}
	pinned := func() string {
		lookup, err := config.StackFiles(dir, "lab")
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(lookup)
		if err != nil {
			t.Fatal(err)
		}
		return c.Proxmox.Nodes[0].SSHHostKey
	}
	_, first, _ := ed25519.GenerateKey(rand.Reader)
	firstPub, _ := ssh.NewPublicKey(first.Public())
	server := sshServer(t, first)

	if code, out := trust("n\n", server); code != 1 || pinned() != "" || !strings.Contains(out, Fingerprint(firstPub)) {
		t.Fatalf("declined: exit %d, pin %q, output:\n%s\nwant exit 1, nothing pinned, the fingerprint shown", code, pinned(), out)
	}
	if code, out := trust("y\n", server); code != 0 || pinned() != Line(firstPub) {
		t.Fatalf("confirmed: exit %d, pin %q, output:\n%s", code, pinned(), out)
	}
	if code, out := trust("", server, "--yes"); code != 0 || !strings.Contains(out, "pinned already") {
		t.Fatalf("again: exit %d, output:\n%s", code, out)
	}

	_, second, _ := ed25519.GenerateKey(rand.Reader)
	secondPub, _ := ssh.NewPublicKey(second.Public())
	other := sshServer(t, second)
	if code, out := trust("", other, "--yes"); code != 1 || pinned() != Line(firstPub) || !strings.Contains(out, "CHANGED") {
		t.Fatalf("another key: exit %d, pin %q, output:\n%s\nwant exit 1, the old pin kept, CHANGED reported", code, pinned(), out)
	}
	if code, out := trust("", other, "--yes", "--replace"); code != 0 || pinned() != Line(secondPub) {
		t.Fatalf("another key with --replace: exit %d, pin %q, output:\n%s", code, pinned(), out)
	}
	if data, _ := os.ReadFile(file); !strings.Contains(string(data), "# the management address") {
		t.Errorf("the stack file lost its comments:\n%s", data)
	}
}

// Pinning into known_hosts writes the line the provider's client accepts,
// once; a recorded key of another type stays beside it; another key of
// the same type is refused with the ssh-keygen -R line, and the file is
// left as it was.
func TestPinKnownHost(t *testing.T) {
	file := filepath.Join(t.TempDir(), ".ssh", "known_hosts")
	newKey := func() (string, ssh.PublicKey) {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		pub, _ := ssh.NewPublicKey(k.Public())
		return Line(pub), pub
	}
	pin, pinPub := newKey()
	if err := PinKnownHost(file, "192.0.2.10", 22, pin); err != nil {
		t.Fatal(err)
	}
	if err := PinKnownHost(file, "192.0.2.10", 22, pin); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if strings.Count(string(data), "\n") != 1 || !strings.HasPrefix(string(data), "192.0.2.10 ssh-ed25519 ") {
		t.Fatalf("known_hosts after pinning twice:\n%s", data)
	}
	// What the provider's client does with the file: accept the pin.
	check, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := check("192.0.2.10:22", &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 22}, pinPub); err != nil {
		t.Fatalf("the pinned key is not accepted: %v", err)
	}
	other, _ := newKey()
	if err := PinKnownHost(file, "192.0.2.10", 22, other); err == nil || !strings.Contains(err.Error(), "ssh-keygen -f "+file+" -R 192.0.2.10") {
		t.Fatalf("another ed25519 key: %v; want a refusal naming ssh-keygen -R", err)
	}
	if after, _ := os.ReadFile(file); string(after) != string(data) {
		t.Fatalf("a refused pin changed the file:\n%s", after)
	}
	if state, _ := CheckKnownHost(file, "192.0.2.10", 2222, pin); state != HostUnknown {
		t.Errorf("another port: %v, want unknown", state)
	}
}

// Verification asks for the pinned type only: the node's own key passes,
// an impostor's is refused naming both fingerprints, and a server without
// a key of the pinned type fails the handshake.
func TestVerifyHostKey(t *testing.T) {
	_, node, _ := ed25519.GenerateKey(rand.Reader)
	_, impostor, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nodePub, _ := ssh.NewPublicKey(node.Public())
	impostorPub, _ := ssh.NewPublicKey(impostor.Public())
	pin := Line(nodePub)
	ctx := context.Background()
	if err := VerifyHostKey(ctx, sshServer(t, ec, node), pin); err != nil {
		t.Fatalf("the node itself: %v", err)
	}
	err := VerifyHostKey(ctx, sshServer(t, impostor), pin)
	if err == nil || !strings.Contains(err.Error(), Fingerprint(impostorPub)) || !strings.Contains(err.Error(), Fingerprint(nodePub)) {
		t.Fatalf("an impostor: %v; want both fingerprints named", err)
	}
	if err := VerifyHostKey(ctx, sshServer(t, ec), pin); err == nil {
		t.Fatal("a server without an ed25519 key passed an ed25519 pin")
	}
}
