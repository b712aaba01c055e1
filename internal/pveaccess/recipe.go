package pveaccess

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sda-platform/sda/grammar"
)

// Recipe is the pveum set-up of tokenID for needs, one command a line:
// the roles in use with exactly the privileges needs give each, the user
// (unless it is root@pam) and a privilege-separated token, then one
// `pveum acl modify` per path granting that path's roles to both the user
// and the token (a privilege-separated token holds only what both hold).
//
// An ACL on a path replaces what a user or token inherits there from
// above (PVE::AccessControl::roles): run it for a user and token that
// serve SDA only.
func Recipe(needs []Need, tokenID string) ([]string, error) {
	if !tokenIDRE.MatchString(tokenID) {
		return nil, fmt.Errorf("token ID %q is not in the form <user>@<realm>!<token-id>", tokenID)
	}
	user, token, _ := strings.Cut(tokenID, "!")

	privs := map[string][]string{}
	var paths []string
	rolesOn := map[string][]string{}
	for _, n := range needs {
		if !slices.Contains(privs[n.Role], n.Privilege) {
			privs[n.Role] = append(privs[n.Role], n.Privilege)
		}
		if _, ok := rolesOn[n.Path]; !ok {
			paths = append(paths, n.Path)
		}
		if !slices.Contains(rolesOn[n.Path], n.Role) {
			rolesOn[n.Path] = append(rolesOn[n.Path], n.Role)
		}
	}

	var lines []string
	for _, role := range rolesInOrder(privs) {
		p := slices.Clone(privs[role])
		slices.Sort(p)
		lines = append(lines, fmt.Sprintf("pveum role add %s --privs %s", grammar.ShellWord(role), grammar.ShellWord(strings.Join(p, ","))))
	}
	grantUser := ""
	if user != "root@pam" {
		lines = append(lines, fmt.Sprintf("pveum user add %s --comment 'SDA deployments'", grammar.ShellWord(user)))
		grantUser = user
	}
	lines = append(lines, fmt.Sprintf("pveum user token add %s %s --privsep 1", grammar.ShellWord(user), grammar.ShellWord(token)))
	for _, path := range paths {
		lines = append(lines, aclCommand(path, grantUser, tokenID, rolesOn[path]))
	}
	return lines, nil
}

// rolesInOrder is Roles' order, then any other role by name.
func rolesInOrder(privs map[string][]string) []string {
	var out, other []string
	for _, r := range Roles {
		if _, ok := privs[r]; ok {
			out = append(out, r)
		}
	}
	for r := range privs {
		if !slices.Contains(Roles, r) {
			other = append(other, r)
		}
	}
	slices.Sort(other)
	return append(out, other...)
}
