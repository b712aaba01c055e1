package pveaccess

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sda-platform/sda/config"
)

// docRecipes are the ```sh blocks of docs/proxmox-privileges.md that
// create roles, one []string of lines each.
func docRecipes(t *testing.T) [][]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/proxmox-privileges.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case !in && line == "```sh":
			in, cur = true, nil
		case in && line == "```":
			in = false
			if len(cur) > 0 && strings.HasPrefix(cur[0], "pveum role add ") {
				blocks = append(blocks, cur)
			}
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// The doc's recipes are what Recipe writes for the shipped stacks (the test
// copies in testdata/stacks, which match Pulumi.dev.yaml and
// Pulumi.prod.yaml).
func TestDocRecipesMatchShippedStacks(t *testing.T) {
	blocks := docRecipes(t)
	stacks := []string{"dev", "prod"}
	if len(blocks) != len(stacks) {
		t.Fatalf("the doc has %d recipe blocks, want one per stack %v", len(blocks), stacks)
	}
	for i, stack := range stacks {
		c, _, err := config.LoadStack("../../testdata/stacks", stack)
		if err != nil {
			t.Fatal(err)
		}
		needs, err := Needs(c)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := Recipe(needs, "sda@pve!deploy")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(lines, blocks[i]) {
			t.Errorf("%s: docs/proxmox-privileges.md says\n%s\nRecipe writes\n%s", stack, strings.Join(blocks[i], "\n"), strings.Join(lines, "\n"))
		}
	}
}

// Every role gets exactly the privileges its needs name, and every path
// exactly its roles: a token set up by the recipe meets every need.
func TestRecipeGrantsExactlyTheNeeds(t *testing.T) {
	needs, err := Needs(spread("vlan"))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := Recipe(needs, "ops@pam!sda")
	if err != nil {
		t.Fatal(err)
	}
	rolePrivs := map[string][]string{}
	pathRoles := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "pveum role add "):
			rolePrivs[f[3]] = strings.Split(f[5], ",")
		case strings.HasPrefix(l, "pveum acl modify "):
			if !strings.Contains(l, " --users ops@pam --tokens 'ops@pam!sda' ") {
				t.Errorf("%q: want the user and the quoted token", l)
			}
			pathRoles[f[3]] = strings.Split(f[len(f)-1], ",")
		}
	}
	// What the recipe grants, per path.
	granted := map[Grant]bool{}
	for path, roles := range pathRoles {
		for _, r := range roles {
			for _, p := range rolePrivs[r] {
				granted[Grant{path, p}] = true
			}
		}
	}
	wanted := map[Grant]bool{}
	for _, n := range needs {
		wanted[Grant{n.Path, n.Privilege}] = true
		if !granted[Grant{n.Path, n.Privilege}] {
			t.Errorf("the recipe does not grant %s", n)
		}
	}
	// Nothing else, except the router's path, which shares SDAGuest with
	// the VMs (its extra privileges are not checked by any container API).
	for g := range granted {
		if !wanted[g] && g.Path != "/vms/8001" {
			t.Errorf("the recipe grants %s on %s, which no need asks for", g.Privilege, g.Path)
		}
	}
	if !slices.Contains(lines, "pveum user token add ops@pam sda --privsep 1") || !slices.Contains(lines, "pveum user add ops@pam --comment 'SDA deployments'") {
		t.Errorf("no user or privilege-separated token in\n%s", strings.Join(lines, "\n"))
	}
}

func TestRecipeForRootToken(t *testing.T) {
	needs, err := Needs(small())
	if err != nil {
		t.Fatal(err)
	}
	lines, err := Recipe(needs, "root@pam!sda")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if strings.Contains(l, "--users") || strings.HasPrefix(l, "pveum user add") {
			t.Errorf("%q: root@pam holds everything; grant the token only", l)
		}
	}
	if _, err := Recipe(needs, "root@pam"); err == nil {
		t.Error("a token ID without a token name accepted")
	}
}
