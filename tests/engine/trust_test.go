package engine

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve/download"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumiconfig "github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/pveaccess"
	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/stacks"
)

// TestImpostorGetsNothing: another machine answers on the Proxmox node's
// address. With the node's key pinned, `up` fails on the host key, not one
// root script reaches the impostor (no pct or pvesh runs there), and its
// key is not recorded in known_hosts (the provider's own refusal of it is
// TestProviderKnownHosts, in the simulator's tests). The ablation: the same
// stack opted out of pinning, on a machine that never recorded the node,
// hands the impostor every router script.
func TestImpostorGetsNothing(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	w := engine.DefaultWorld(e.worldNodes()...)
	for i := range w.Nodes {
		w.Nodes[i].HostKeys = []string{newHostKey(t)} // not the pinned key
	}
	if err := engine.WriteWorld(e.simDir, w); err != nil {
		t.Fatal(err)
	}

	// Which connection fails first (a router command, or the provider's
	// disk import, which finds the pin in known_hosts) is the engine's
	// scheduling; either refuses the impostor.
	_, err := e.open(ctx).Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") && !strings.Contains(err.Error(), "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("up against an impostor: %v; want it refused on the host key", err)
	}
	if n := scriptsRun(t, e); n != 0 {
		t.Fatalf("%d root commands ran on the impostor; want none", n)
	}
	// Nothing of the impostor's was recorded where the provider would
	// trust it next time: known_hosts holds the pin, if anything.
	knownHosts := filepath.Join(e.home, "home", ".ssh", "known_hosts")
	data, err := os.ReadFile(knownHosts)
	if got, want := strings.TrimSpace(string(data)), "192.168.1.10 "+e.hostKeys["pve"]; err == nil && got != want {
		t.Errorf("known_hosts holds %q; want only the pinned key %q", got, want)
	}

	// Without the pins (and on a machine that never recorded the node),
	// the impostor gets the scripts: this is what the pins prevent.
	if err := os.Remove(knownHosts); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for i := range e.cfg.Proxmox.Nodes {
		e.cfg.Proxmox.Nodes[i].SSHHostKey = ""
	}
	e.cfg.Proxmox.InsecureIgnoreHostKeys = true
	e.up(ctx)
	if n := scriptsRun(t, e); n == 0 {
		t.Fatal("with host keys ignored no script reached the impostor: the first half proves nothing")
	}
}

// scriptsRun counts the pct and pvesh runs on the simulated Proxmox nodes.
func scriptsRun(t *testing.T, e *env) int {
	t.Helper()
	n := 0
	for _, c := range e.calls(0) {
		if c.Provider == "cli" && (strings.HasPrefix(c.Method, "pct ") || strings.HasPrefix(c.Method, "pvesh ")) {
			n++
		}
	}
	return n
}

// TestPrivilegesCheckedAgainstProxmox: a privilege-separated token holding
// exactly what SDA's own list of needs says (internal/pveaccess, the list
// behind docs/proxmox-privileges.md and the sda up preflight) deploys dev,
// against the simulator's rule table written separately from upstream; the
// same token without SDN.Use on the internal bridge is refused by the
// first guest create, naming the path and the privilege. Two
// implementations read from the same sources, checked against each other.
func TestPrivilegesCheckedAgainstProxmox(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	const tokenID = "sda@pve!deploy"
	e.creds["proxmoxve:apiToken"] = tokenID + "=" + randomHex(16)
	needs, err := pveaccess.Needs(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	grant := func(skip func(pveaccess.Need) bool) {
		t.Helper()
		byPath := map[string][]string{}
		for _, n := range needs {
			if !skip(n) {
				byPath[n.Path] = append(byPath[n.Path], n.Privilege)
			}
		}
		var acls []engine.ACL
		for path, privs := range byPath {
			acls = append(acls, engine.ACL{Path: path, Privileges: privs})
		}
		w, err := (&engine.Store{Dir: e.simDir}).World()
		if err != nil {
			t.Fatal(err)
		}
		w.Tokens = map[string][]engine.ACL{tokenID: acls}
		if err := engine.WriteWorld(e.simDir, w); err != nil {
			t.Fatal(err)
		}
	}
	const bridge = "/sdn/zones/localnetwork/vmbr1"
	grant(func(n pveaccess.Need) bool { return n.Path == bridge && n.Privilege == "SDN.Use" })
	_, err = e.open(ctx).Up(ctx)
	if err == nil || !strings.Contains(err.Error(), "Permission check failed ("+bridge+", SDN.Use)") {
		t.Fatalf("up without SDN.Use on %s: %v; want Proxmox's refusal naming it", bridge, err)
	}

	grant(func(pveaccess.Need) bool { return false })
	e.up(ctx)
	e.assertNoChanges(ctx)
}

// TestPinningADeployedStack: a stack deployed without pins (as every stack
// before pinning was) pins its keys: the next up only updates the remote
// commands (their connection gains hostKey; their scripts are idempotent)
// and creates the known_hosts pin; nothing is replaced or deleted, no VM
// or secret changes; the preview after is idle.
func TestPinningADeployedStack(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	pins := e.cfg.Proxmox.Nodes
	e.cfg.Proxmox.Nodes = append([]config.ProxmoxNode(nil), pins...)
	for i := range e.cfg.Proxmox.Nodes {
		e.cfg.Proxmox.Nodes[i].SSHHostKey = ""
	}
	e.cfg.Proxmox.InsecureIgnoreHostKeys = true
	e.up(ctx)

	e.cfg.Proxmox.Nodes, e.cfg.Proxmox.InsecureIgnoreHostKeys = pins, false
	res := e.up(ctx)
	for _, s := range res.Changed() {
		switch {
		case s.Type == "command:remote:Command" && s.Op == "update" && slices.Equal(s.Diffs, []string{"connection"}):
		case s.Type == "sda:index:KnownHost" && s.Op == "create":
		case s.Type == "pulumi:pulumi:Stack":
		default:
			t.Errorf("pinning changed %s %s (%s, diffs %v): want only command connections updated and the pin created", s.Type, s.Name, s.Op, s.Diffs)
		}
	}
	if res.Count("create") != 1 {
		t.Errorf("%d creates, want the one known_hosts pin", res.Count("create"))
	}
	e.assertNoChanges(ctx)
}

// TestRouterTemplateMovesByAlias: a router deployed before the template
// check (template over http, no checksum, resource <router>-template) keeps
// its template: the resource moves to its new name by alias, the new URL
// and checksum are ignored for the same file, and the container is not
// replaced; Proxmox downloads the template once.
func TestRouterTemplateMovesByAlias(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	old := "http://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst"
	e.program = func(ctx *pulumi.Context) error {
		prov, err := stacks.NewProxmoxProvider(ctx, e.cfg, pulumiconfig.GetSecret(ctx, "sda:sshPrivateKey"))
		if err != nil {
			return err
		}
		router := &struct{ pulumi.ResourceState }{}
		if err := ctx.RegisterComponentResource(components.RouterLXCType, "dev-router", router); err != nil {
			return err
		}
		_, err = download.NewFile(ctx, "dev-router-template", &download.FileArgs{
			NodeName: pulumi.String("pve"), DatastoreId: pulumi.String("local"), ContentType: pulumi.String("vztmpl"),
			Url: pulumi.String(old), FileName: pulumi.String("dev-router-" + path.Base(old)), Overwrite: pulumi.Bool(false),
		}, pulumi.Parent(router), pulumi.Provider(prov))
		return err
	}
	e.up(ctx)

	e.program = nil // the SDA program as it is now
	res := e.up(ctx)
	for _, s := range res.Steps {
		moved := s.Op == "same" || s.Op == "update" && slices.Equal(s.Diffs, []string{"overwriteUnmanaged"}) // state only
		if s.Type == "proxmoxve:Download/file:File" && strings.Contains(s.Name, "router-template") && !moved {
			t.Errorf("the deployed router template: %s %s (diffs %v); want it moved by alias, unchanged", s.Op, s.Name, s.Diffs)
		}
	}
	st, err := engine.ReadState(e.simDir)
	if err != nil {
		t.Fatal(err)
	}
	templates := 0
	for _, f := range st.Files {
		if strings.HasSuffix(f.URL, path.Base(old)) {
			templates++
			if f.URL != old {
				t.Errorf("the template file was downloaded again from %s", f.URL)
			}
		}
	}
	if templates != 1 {
		t.Errorf("%d router template files, want the one downloaded before", templates)
	}
	e.assertNoChanges(ctx)
}
