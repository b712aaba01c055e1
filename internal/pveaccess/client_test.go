package pveaccess

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	testTokenID = "sda@pve!deploy"
	testSecret  = "5ac1e7e0-0b1d-4c2e-9f3a-1d2c3b4a5f60"
	testToken   = testTokenID + "=" + testSecret
)

// fakePVE answers GET /api2/json/access/permissions?path=... the way
// pve-access-control does: {"data": {"<path>": {"<priv>": <propagate>}}},
// from a table of effective privileges per path (Proxmox computes those;
// the client only reads them).
type fakePVE struct {
	mu    sync.Mutex
	privs map[string]map[string]any // path -> privilege -> propagate flag
	asked []string                  // paths asked, in order
	// raw, when set, is the whole answer body.
	raw    string
	status int
}

func (f *fakePVE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "PVEAPIToken="+testToken {
		http.Error(w, "authentication failure", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/api2/json/access/permissions" {
		http.Error(w, "no such method "+r.Method+" "+r.URL.Path, http.StatusNotImplemented)
		return
	}
	path := r.URL.Query().Get("path")
	f.asked = append(f.asked, path)
	if f.status != 0 {
		w.WriteHeader(f.status)
	}
	if f.raw != "" {
		_, _ = w.Write([]byte(f.raw))
		return
	}
	p := f.privs[path]
	if p == nil {
		p = map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{path: p}})
}

// grantAll is a table holding every need (propagate flag 1).
func grantAll(needs []Need) map[string]map[string]any {
	t := map[string]map[string]any{}
	for _, n := range needs {
		if t[n.Path] == nil {
			t[n.Path] = map[string]any{}
		}
		t[n.Path][n.Privilege] = 1
	}
	return t
}

func newFake(t *testing.T, f *fakePVE) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	// The caller's http.Client carries the TLS settings (here: trusting
	// the test server's certificate).
	c, err := NewClient(srv.URL+"/", testToken, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func prodLike(t *testing.T) []Need {
	t.Helper()
	needs, err := Needs(spread("vxlan"))
	if err != nil {
		t.Fatal(err)
	}
	return needs
}

func TestMissing(t *testing.T) {
	needs := prodLike(t)
	const vnet = "/sdn/zones/zlab/vlab"

	for _, tc := range []struct {
		name  string
		edit  func(map[string]map[string]any)
		raw   string
		want  []string // "path privilege" of the gaps
		check func(t *testing.T, gaps []Gap)
	}{
		{name: "a token with everything passes", edit: func(map[string]map[string]any) {}},
		{name: "SDN.Use missing on the VNet is named alone",
			edit: func(m map[string]map[string]any) { delete(m[vnet], "SDN.Use") },
			want: []string{vnet + " SDN.Use"},
			check: func(t *testing.T, gaps []Gap) {
				g := gaps[0]
				if g.Role != RoleNet || !strings.Contains(g.Why, "VNet vlab of SDN zone zlab") {
					t.Errorf("gap %+v: want role %s and the VNet in its reason", g.Need, RoleNet)
				}
				if want := "pveum acl modify /sdn/zones/zlab/vlab --tokens 'sda@pve!deploy' --roles SDANet"; g.Fix != want {
					t.Errorf("fix %q, want %q", g.Fix, want)
				}
				if want := "pveum acl modify /sdn/zones/zlab/vlab --users sda@pve --roles SDANet"; g.UserFix != want {
					t.Errorf("user fix %q, want %q", g.UserFix, want)
				}
				for _, s := range []string{vnet, "SDN.Use", g.Fix} {
					if !strings.Contains(g.String(), s) {
						t.Errorf("%q does not name %q", g.String(), s)
					}
				}
			}},
		{name: "a privilege held without propagation is held",
			edit: func(m map[string]map[string]any) {
				m[vnet]["SDN.Use"] = 0
				m["/vms/8011"]["VM.Monitor"] = ""
				m["/vms/8011"]["VM.Audit"] = "0"
				m["/storage/local"]["Datastore.Audit"] = false
			}},
		{name: "a null privilege is not held",
			edit: func(m map[string]map[string]any) { m["/vms/8011"]["VM.Monitor"] = nil },
			want: []string{"/vms/8011 VM.Monitor"}},
		{name: "Sys.Audit and Sys.Modify on / stand in for Sys.AccessNetwork (before Proxmox VE 8.1)",
			edit: func(m map[string]map[string]any) {
				for _, n := range []string{"pve1", "pve2", "pve3"} {
					delete(m["/nodes/"+n], "Sys.AccessNetwork")
				}
				m["/"] = map[string]any{"Sys.Audit": 1, "Sys.Modify": 1}
			}},
		{name: "Sys.Audit alone on / does not",
			edit: func(m map[string]map[string]any) {
				for _, n := range []string{"pve1", "pve2", "pve3"} {
					delete(m["/nodes/"+n], "Sys.AccessNetwork")
				}
				m["/"] = map[string]any{"Sys.Audit": 1}
			},
			want: []string{"/nodes/pve1 Sys.AccessNetwork", "/nodes/pve2 Sys.AccessNetwork", "/nodes/pve3 Sys.AccessNetwork"}},
		{name: "a privilege on the wrong path does not count",
			edit: func(m map[string]map[string]any) {
				delete(m["/storage/local"], "Datastore.Allocate")
				m["/storage/local-lvm"]["Datastore.Allocate"] = 1
			},
			want: []string{"/storage/local Datastore.Allocate"}},
		{name: "nothing held: Proxmox answers an empty object", raw: `{"data":{}}`,
			check: func(t *testing.T, gaps []Gap) {
				if len(gaps) != len(needs) {
					t.Errorf("%d gaps, want all %d needs", len(gaps), len(needs))
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakePVE{privs: grantAll(needs), raw: tc.raw}
			if tc.edit != nil {
				tc.edit(f.privs)
			}
			c := newFake(t, f)
			gaps, err := MissingFor(context.Background(), c, needs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.raw == "" {
				var got []string
				for _, g := range gaps {
					got = append(got, g.Path+" "+g.Privilege)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("gaps %q, want %q", got, tc.want)
				}
			}
			if tc.check != nil {
				tc.check(t, gaps)
			}
			// Each path is read once.
			seen := map[string]bool{}
			for _, p := range f.asked {
				if seen[p] {
					t.Errorf("path %s read twice", p)
				}
				seen[p] = true
			}
			for _, g := range gaps {
				if strings.Contains(g.String(), testSecret) {
					t.Errorf("a gap shows the secret: %s", g)
				}
			}
		})
	}
}

// root@pam's tokens: no user to grant to.
func TestGapOfRootToken(t *testing.T) {
	n := Need{Path: "/vms/8011", Privilege: "VM.Monitor", Role: RoleGuest, Why: "agent"}
	gaps, err := Missing(context.Background(), readerFunc(func(context.Context, string) (Privileges, error) { return Privileges{}, nil }), "root@pam!sda", []Need{n})
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].Fix != "pveum acl modify /vms/8011 --tokens 'root@pam!sda' --roles SDAGuest" || gaps[0].UserFix != "" {
		t.Errorf("gaps %+v; want the token's fix and no user fix", gaps)
	}
	if fixes := Fixes(append(gaps, gaps...)); len(fixes) != 1 {
		t.Errorf("Fixes repeats a command: %q", fixes)
	}
}

type readerFunc func(context.Context, string) (Privileges, error)

func (f readerFunc) Privileges(ctx context.Context, path string) (Privileges, error) {
	return f(ctx, path)
}

func TestPrivilegesErrorsKeepTheSecretOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		token  string
		f      *fakePVE
		expect string
	}{
		{name: "wrong secret", token: testTokenID + "=not-the-secret", f: &fakePVE{},
			expect: "Proxmox refused the API token sda@pve!deploy (401"},
		{name: "server error echoing the request", token: testToken,
			f:      &fakePVE{status: http.StatusInternalServerError, raw: `{"errors":"PVEAPIToken=` + testToken + ` was rejected"}`},
			expect: "500 Internal Server Error"},
		{name: "not JSON", token: testToken, f: &fakePVE{raw: "<html>" + testSecret + "</html>"},
			expect: "unexpected answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.f)
			defer srv.Close()
			c, err := NewClient(srv.URL, tc.token, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Privileges(context.Background(), "/vms/8011")
			if err == nil || !strings.Contains(err.Error(), tc.expect) {
				t.Fatalf("error %v, want one containing %q", err, tc.expect)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "not-the-secret") {
				t.Errorf("the error shows the secret: %v", err)
			}
			if _, err := MissingFor(context.Background(), c, []Need{{Path: "/vms/8011", Privilege: "VM.Audit"}}); err == nil {
				t.Error("Missing hides a failed read")
			}
		})
	}
}

func TestClientNeverPrintsTheSecret(t *testing.T) {
	c, err := NewClient("https://pve.example.lan:8006/", testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c))
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("client", "c", c, "value", *c)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("client", "c", c)
	out = append(out, logged.String())
	if b, err := json.Marshal(c); err == nil {
		out = append(out, string(b))
	}
	for _, s := range out {
		if strings.Contains(s, testSecret) {
			t.Errorf("printed the secret: %s", s)
		}
	}
	if !strings.Contains(out[0], testTokenID) || !strings.Contains(out[0], "https://pve.example.lan:8006/api2/json") {
		t.Errorf("%s: want the endpoint and token ID", out[0])
	}
}

func TestNewClientEndpoints(t *testing.T) {
	f := &fakePVE{privs: map[string]map[string]any{"/": {"Sys.Audit": 1}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, ep := range []string{srv.URL, srv.URL + "/", srv.URL + "/api2/json", srv.URL + "/api2/json/"} {
		c, err := NewClient(ep, testToken, srv.Client())
		if err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		p, err := c.Privileges(context.Background(), "/")
		if err != nil || !p.Has("Sys.Audit") || p.Has("Sys.Modify") {
			t.Errorf("%s: %v, %v; want Sys.Audit only", ep, p, err)
		}
	}
	for _, ep := range []string{"", "pve.example.lan:8006", "ftp://pve/", "https://user:pw@pve:8006/", "https://pve:8006/?x=1"} {
		if _, err := NewClient(ep, testToken, nil); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("endpoint error shows a password: %v", err)
		}
	}
}

func TestParseAPIToken(t *testing.T) {
	for _, tc := range []struct {
		in, id string
		ok     bool
	}{
		{testToken, testTokenID, true},
		{"root@pam!sda=" + testSecret + "\n", "root@pam!sda", true},
		{"sda@pve!deploy", "", false},
		{"sda@pve!deploy=", "", false},
		{"sda@pve=" + testSecret, "", false},
		{"sda!deploy=" + testSecret, "", false},
		{testSecret, "", false},
	} {
		id, secret, err := ParseAPIToken(tc.in)
		if (err == nil) != tc.ok || id != tc.id {
			t.Errorf("ParseAPIToken(%q) = %q, %v; want %q, ok %v", tc.in, id, err, tc.id, tc.ok)
		}
		if tc.ok && secret != testSecret {
			t.Errorf("ParseAPIToken(%q): wrong secret", tc.in)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("ParseAPIToken(%q): the error shows the secret: %v", tc.in, err)
		}
	}
}
