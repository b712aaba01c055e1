package automation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/pveaccess"
)

// The deploy preflight reads the token's effective privileges over TLS
// (proxmoxve:insecure for a self-signed certificate, as the provider does)
// and refuses with the missing privilege named, its path and its pveum
// fix; a token with every need passes. The secret never appears.
func TestCheckAccess(t *testing.T) {
	c, _, err := config.LoadStack("../testdata/stacks", "prod")
	if err != nil {
		t.Fatal(err)
	}
	needs, err := pveaccess.Needs(c)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "0f1e2d3c-aaaa-bbbb-cccc-000000000000"
	granted := map[string]map[string]int{}
	for _, n := range needs {
		if granted[n.Path] == nil {
			granted[n.Path] = map[string]int{}
		}
		granted[n.Path][n.Privilege] = 1
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "PVEAPIToken=sda@pve!deploy="+secret || r.URL.Path != "/api2/json/access/permissions" {
			http.Error(w, "authentication failure", http.StatusUnauthorized)
			return
		}
		path := r.URL.Query().Get("path")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{path: granted[path]}})
	}))
	defer srv.Close()
	ctx := context.Background()
	token := "sda@pve!deploy=" + secret

	if err := checkAccess(ctx, c, srv.URL, token, true); err != nil {
		t.Fatalf("a token with every need: %v", err)
	}
	if err := checkAccess(ctx, c, srv.URL, token, false); err == nil {
		t.Fatal("a self-signed certificate was accepted without proxmoxve:insecure")
	}
	const vnet = "/sdn/zones/zprod/vprod"
	delete(granted[vnet], "SDN.Use")
	err = checkAccess(ctx, c, srv.URL, token, true)
	var access *AccessError
	if !errors.As(err, &access) || len(access.Gaps) != 1 || access.Gaps[0].Path != vnet || access.Gaps[0].Privilege != "SDN.Use" {
		t.Fatalf("without SDN.Use on %s: %v; want exactly that gap", vnet, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "pveum acl modify "+vnet) || strings.Contains(msg, secret) {
		t.Errorf("the refusal lacks the pveum fix or shows the secret:\n%s", msg)
	}
}
