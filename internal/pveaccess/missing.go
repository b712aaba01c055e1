package pveaccess

import (
	"context"
	"fmt"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// Reader reads a token's effective privileges on one ACL path; Client is
// the real one.
type Reader interface {
	Privileges(ctx context.Context, path string) (Privileges, error)
}

// Gap is a need the token does not meet.
type Gap struct {
	Need
	// Fix grants the need's role on its path to the token:
	// pveum acl modify <path> --tokens '<token>' --roles <role>.
	Fix string
	// UserFix grants the same to the token's user. A privilege-separated
	// token holds only what both it and its user hold, so run it too
	// unless the user already has the privilege there. Empty for
	// root@pam, which holds everything.
	UserFix string
}

// String is the gap in one line: the path, the privilege, why SDA needs
// it and the command that grants it.
func (g Gap) String() string {
	s := fmt.Sprintf("%s on %s is missing: %s; grant it with: %s", g.Privilege, g.Path, g.Why, g.Fix)
	if g.UserFix != "" {
		s += " (and, if the token is privilege-separated and its user lacks it too: " + g.UserFix + ")"
	}
	return s
}

// Missing reads, through r, what the API token tokenID holds on every path
// of needs (each path once) and returns the needs it does not meet, in the
// order of needs. Proxmox answers with effective privileges (inheritance,
// propagation, pools and privilege separation already applied), so a
// privilege counts as held exactly when the answer lists it. A need with
// an Instead is also met when every grant of Instead is held.
func Missing(ctx context.Context, r Reader, tokenID string, needs []Need) ([]Gap, error) {
	held := map[string]Privileges{}
	has := func(g Grant) (bool, error) {
		privs, ok := held[g.Path]
		if !ok {
			var err error
			if privs, err = r.Privileges(ctx, g.Path); err != nil {
				return false, err
			}
			held[g.Path] = privs
		}
		return privs.Has(g.Privilege), nil
	}
	var gaps []Gap
	for _, n := range needs {
		ok, err := has(Grant{n.Path, n.Privilege})
		if err != nil {
			return nil, err
		}
		if !ok && len(n.Instead) > 0 {
			ok = true
			for _, g := range n.Instead {
				if ok, err = has(g); err != nil {
					return nil, err
				} else if !ok {
					break
				}
			}
		}
		if !ok {
			gaps = append(gaps, Gap{Need: n,
				Fix:     aclCommand(n.Path, "", tokenID, []string{n.Role}),
				UserFix: userFix(n, tokenID)})
		}
	}
	return gaps, nil
}

// MissingFor is Missing with the client's own token.
func MissingFor(ctx context.Context, c *Client, needs []Need) ([]Gap, error) {
	return Missing(ctx, c, c.TokenID(), needs)
}

// Fixes are the distinct Fix commands of gaps, in order: one per path and
// role.
func Fixes(gaps []Gap) []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range gaps {
		if !seen[g.Fix] {
			seen[g.Fix] = true
			out = append(out, g.Fix)
		}
	}
	return out
}

func userFix(n Need, tokenID string) string {
	user := ownerOf(tokenID)
	if user == "root@pam" {
		return ""
	}
	return aclCommand(n.Path, user, "", []string{n.Role})
}

func ownerOf(tokenID string) string {
	user, _, _ := strings.Cut(tokenID, "!")
	return user
}

// aclCommand is the pveum command that grants roles on path to user and/or
// token (either may be empty). Grants propagate (Proxmox's default), which
// on SDA's paths reaches only VLAN tags below a bridge.
func aclCommand(path, user, token string, roles []string) string {
	var b strings.Builder
	b.WriteString("pveum acl modify " + grammar.ShellWord(path))
	if user != "" {
		b.WriteString(" --users " + grammar.ShellWord(user))
	}
	if token != "" {
		b.WriteString(" --tokens " + grammar.ShellWord(token))
	}
	b.WriteString(" --roles " + grammar.ShellWord(strings.Join(roles, ",")))
	return b.String()
}
