package automation

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strconv"
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
// endpoint and token are proxmoxAPI's. A stack on username and password
// (no token) is not checked.
func (d *Deployment) CheckProxmoxAccess(ctx context.Context, c config.Config) error {
	api, err := d.proxmoxAPI(ctx)
	if err != nil || api.token == "" {
		return err
	}
	return checkAccess(ctx, c, api.endpoint, api.token, api.insecure)
}

// proxmoxAPISettings are how the Proxmox provider reaches the API.
type proxmoxAPISettings struct {
	endpoint, token string
	insecure        bool
}

// proxmoxAPI reads proxmoxve:endpoint, proxmoxve:apiToken and
// proxmoxve:insecure from the stack's configuration, each falling back to
// the provider's variable (PROXMOX_VE_ENDPOINT, PROXMOX_VE_API_TOKEN,
// PROXMOX_VE_INSECURE), as the program reads them.
func (d *Deployment) proxmoxAPI(ctx context.Context) (proxmoxAPISettings, error) {
	cfg, err := d.stack.GetAllConfig(ctx)
	if err != nil {
		return proxmoxAPISettings{}, fmt.Errorf("reading the configuration of stack %s: %w", d.opts.Stack, err)
	}
	value := func(key, env string) string {
		if v, ok := cfg[key]; ok && v.Value != "" {
			return v.Value
		}
		return os.Getenv(env)
	}
	insecure, _ := strconv.ParseBool(value("proxmoxve:insecure", "PROXMOX_VE_INSECURE"))
	return proxmoxAPISettings{endpoint: value("proxmoxve:endpoint", "PROXMOX_VE_ENDPOINT"),
		token: value("proxmoxve:apiToken", "PROXMOX_VE_API_TOKEN"), insecure: insecure}, nil
}

// proxmoxHTTP is the HTTP client for the Proxmox API: insecure skips the
// certificate check, the same choice the Proxmox provider makes with
// proxmoxve:insecure.
func proxmoxHTTP(insecure bool) *http.Client {
	hc := &http.Client{Timeout: 30 * time.Second}
	if insecure {
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the user's explicit setting
	}
	return hc
}

func checkAccess(ctx context.Context, c config.Config, endpoint, token string, insecure bool) error {
	needs, err := pveaccess.Needs(c)
	if err != nil {
		return err
	}
	client, err := pveaccess.NewClient(endpoint, token, proxmoxHTTP(insecure))
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
