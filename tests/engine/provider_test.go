package engine

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumiconfig "github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/sda-platform/sda/config"
	"github.com/sda-platform/sda/stacks"
)

// A stack deployed before SDA registered its own Proxmox provider (every
// Proxmox resource on the engine's default provider, its SSH settings from
// PROXMOX_VE_* variables) takes SDA's explicit provider on its next up:
// the provider is adopted through its alias, and no VM, container, bridge
// or file is created, replaced or deleted.
func TestExplicitProviderAdoptsADeployedStack(t *testing.T) {
	e := newEnv(t, "dev")
	ctx := testContext(t)
	t.Run("deployed on the default provider", func(t *testing.T) {
		e.t = t
		e.program = func(ctx *pulumi.Context) error {
			c, err := config.Load(func(k string) (string, bool) { return ctx.GetConfig(k) })
			if err != nil {
				return err
			}
			_, err = stacks.Deploy(ctx, c, stacks.DeployOptions{SSHPrivateKey: pulumiconfig.GetSecret(ctx, "sda:sshPrivateKey")})
			return err
		}
		e.extraEnv["PROXMOX_VE_SSH_USERNAME"] = "root"
		e.extraEnv["PROXMOX_VE_SSH_AGENT"] = "true"
		e.up(ctx)
		dep, _ := deployment(t, e.open(ctx))
		found := false
		for _, r := range dep.Resources {
			found = found || string(r.URN) == stacks.DefaultProxmoxProviderURN("dev", "sda")
		}
		if !found {
			t.Fatalf("the default provider is not %s; the alias would not match", stacks.DefaultProxmoxProviderURN("dev", "sda"))
		}
	})
	t.Run("the next up adopts it and touches nothing it manages", func(t *testing.T) {
		e.t = t
		e.program = nil
		delete(e.extraEnv, "PROXMOX_VE_SSH_USERNAME")
		delete(e.extraEnv, "PROXMOX_VE_SSH_AGENT")
		res := e.up(ctx)
		for _, s := range res.Changed() {
			if isCustom(s) && s.Type[:10] == "proxmoxve:" {
				t.Errorf("%s of %s (%s)", s.Op, s.Name, s.Type)
			}
			if s.Op == "replace" || s.Op == "create-replacement" || s.Op == "delete" {
				t.Errorf("%s of %s (%s)", s.Op, s.Name, s.Type)
			}
		}
		e.assertConsistent(e.open(ctx))
		e.assertNoChanges(ctx)
	})
}
