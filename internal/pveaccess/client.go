package pveaccess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Client reads an API token's effective privileges from a Proxmox VE API.
// It holds the token's secret and never shows it: its String, GoString,
// Format and LogValue print the endpoint and token ID only, and its errors
// never carry the secret.
type Client struct {
	base    *url.URL // .../api2/json
	tokenID string
	secret  string
	http    *http.Client
}

// Token IDs as pve-access-control spells them (src/PVE/Auth/Plugin.pm
// user_regex and realm_regex, src/PVE/AccessControl.pm
// $token_subid_regex): <user>@<realm>!<token name>.
var tokenIDRE = regexp.MustCompile(`^[^\s:/@!]+@[A-Za-z][A-Za-z\.\-_\d]+![A-Za-z][A-Za-z0-9\.\-_]+$`)

// ParseAPIToken splits an API token in the form the Proxmox provider takes
// (proxmoxve:apiToken, PROXMOX_VE_API_TOKEN): "<user>@<realm>!<token>=<secret>".
// Errors name the token ID, never the secret.
func ParseAPIToken(token string) (tokenID, secret string, err error) {
	// Proxmox splits at the last "=" (verify_token, src/PVE/AccessControl.pm).
	token = strings.TrimSpace(token)
	i := strings.LastIndex(token, "=")
	if i < 0 || i == len(token)-1 {
		return "", "", errors.New("the API token is not in the form <user>@<realm>!<token-id>=<secret>")
	}
	id, secret := token[:i], token[i+1:]
	if !tokenIDRE.MatchString(id) {
		return "", "", fmt.Errorf("the API token's ID %q is not in the form <user>@<realm>!<token-id>", id)
	}
	return id, secret, nil
}

// NewClient is a client of the Proxmox API at endpoint (as in
// proxmoxve:endpoint: "https://pve.example.lan:8006/"; a trailing
// /api2/json is accepted) that authenticates with apiToken
// ("<user>@<realm>!<token>=<secret>") through hc, which carries the
// caller's TLS settings (nil: http.DefaultClient).
func NewClient(endpoint, apiToken string, hc *http.Client) (*Client, error) {
	id, secret, err := ParseAPIToken(apiToken)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("the Proxmox endpoint %q is not an http(s) URL such as https://pve.example.lan:8006/", endpoint)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the Proxmox endpoint %q must be scheme, host, port and path only", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api2/json") {
		u.Path += "/api2/json"
	}
	u.RawPath = ""
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, tokenID: id, secret: secret, http: hc}, nil
}

// TokenID is the token's ID, <user>@<realm>!<token name>.
func (c *Client) TokenID() string { return c.tokenID }

// User is the token's owner, <user>@<realm>.
func (c *Client) User() string { return ownerOf(c.tokenID) }

// String shows the endpoint and token ID, never the secret.
func (c Client) String() string {
	base := ""
	if c.base != nil {
		base = c.base.String()
	}
	return fmt.Sprintf("pveaccess.Client{endpoint: %s, token: %s}", base, c.tokenID)
}

// GoString is String: %#v must not print the secret either.
func (c Client) GoString() string { return c.String() }

// Format prints String for every verb, so that no fmt verb reaches the
// secret field.
func (c Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue keeps the secret out of log/slog output.
func (c Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Privileges are the privileges a token holds on one ACL path, each with
// Proxmox's propagate flag (informational: Proxmox has already applied
// propagation, pools and privilege separation).
type Privileges map[string]bool

// Has reports whether priv is held.
func (p Privileges) Has(priv string) bool {
	_, ok := p[priv]
	return ok
}

// Privileges reads the token's effective privileges on path with
// GET /access/permissions?path=<path> (pve-access-control
// src/PVE/API2/AccessControl.pm "permissions": any user or token may read
// its own; the answer is {"data": {"<path>": {"<privilege>": <propagate>}}},
// a privilege being held when its key is present, whatever the flag).
func (c *Client) Privileges(ctx context.Context, path string) (Privileges, error) {
	u := *c.base
	u.Path += "/access/permissions"
	u.RawQuery = url.Values{"path": {path}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("reading the privileges of %s on %s: %w", c.tokenID, path, err)
	}
	req.Header.Set("Authorization", "PVEAPIToken="+c.tokenID+"="+c.secret)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error names the method and URL only; the scrub is for
		// transports that might say more.
		return nil, fmt.Errorf("reading the privileges of %s on %s: %s", c.tokenID, path, c.scrub(err.Error()))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the privileges of %s on %s: %s", c.tokenID, path, c.scrub(err.Error()))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("Proxmox refused the API token %s (%s): check the token ID and secret, and that the token and its user exist, are enabled and have not expired", c.tokenID, c.scrub(resp.Status))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("reading the privileges of %s on %s: %s: %s", c.tokenID, path, c.scrub(resp.Status), c.scrub(excerpt(body)))
	}
	privs, err := parsePermissions(body, path)
	if err != nil {
		return nil, fmt.Errorf("reading the privileges of %s on %s: %s", c.tokenID, path, c.scrub(err.Error()))
	}
	return privs, nil
}

// parsePermissions reads the answer of GET /access/permissions?path=path.
// Proxmox answers {"data": {}} or {"data": {path: {}}} when nothing is held.
// The propagate flag comes as whatever Perl held (1, 0, "1", "", true); a
// null is an unset privilege.
func parsePermissions(body []byte, path string) (Privileges, error) {
	var answer struct {
		Data map[string]map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("unexpected answer (%v): %s", err, excerpt(body))
	}
	privs := Privileges{}
	for name, raw := range answer.Data[path] {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil || v == nil {
			continue
		}
		switch x := v.(type) {
		case bool:
			privs[name] = x
		case float64:
			privs[name] = x != 0
		case string:
			privs[name] = x != "" && x != "0"
		default:
			privs[name] = false
		}
	}
	return privs, nil
}

// scrub removes the secret from s, should anything ever echo it.
func (c *Client) scrub(s string) string {
	if c.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, c.secret, "<secret>")
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
