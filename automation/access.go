package automation

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/internal/pveaccess"
)

// AccessError is a token that lacks privileges the stack needs: each gap
// names the ACL path, the privilege, why SDA needs it and the pveum
// command that grants it.
type AccessError struct {
	TokenID string
	Gaps    []pveaccess.Gap
}

func (e *AccessError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the Proxmox API token %s lacks %d privilege(s) this stack needs (docs/proxmox-privileges.md):", e.TokenID, len(e.Gaps))
	for _, g := range e.Gaps {
		b.WriteString("\n  - " + g.String())
	}
	return b.String()
}

// CheckProxmoxAccess asks Proxmox for the API token's effective privileges
// (GET /access/permissions) on every path the stack c needs and returns an
// *AccessError naming what is missing, before anything is created: without
// it the first create that needs a privilege fails with a 403 half-way. The
// endpoint and token come from the stack (proxmoxve:endpoint,
// proxmoxve:apiToken, proxmoxve:insecure) or the provider's environment
// variables, as the program reads them. A stack on username and password
// (no token) is not checked.
func (d *Deployment) CheckProxmoxAccess(ctx context.Context, c config.Config) error {
	get := func(key, env string) string {
		if v, err := d.stack.GetConfig(ctx, key); err == nil && v.Value != "" {
			return v.Value
		}
		return os.Getenv(env)
	}
	token := get("proxmoxve:apiToken", "PROXMOX_VE_API_TOKEN")
	if token == "" {
		return nil
	}
	insecure := get("proxmoxve:insecure", "PROXMOX_VE_INSECURE") == "true"
	return checkAccess(ctx, c, get("proxmoxve:endpoint", "PROXMOX_VE_ENDPOINT"), token, insecure)
}

func checkAccess(ctx context.Context, c config.Config, endpoint, token string, insecure bool) error {
	needs, err := pveaccess.Needs(c)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if insecure {
		// The same choice the Proxmox provider makes with proxmoxve:insecure.
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the user's explicit setting
	}
	client, err := pveaccess.NewClient(endpoint, token, hc)
	if err != nil {
		return err
	}
	gaps, err := pveaccess.MissingFor(ctx, client, needs)
	if err != nil {
		return fmt.Errorf("reading the privileges of %s: %w", client.TokenID(), err)
	}
	if len(gaps) > 0 {
		return &AccessError{TokenID: client.TokenID(), Gaps: gaps}
	}
	return nil
}
