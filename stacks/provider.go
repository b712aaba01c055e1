package stacks

import (
	"fmt"
	"strconv"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v6/go/proxmoxve"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	pulumiconfig "github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/sda-platform/sda/config"
)

// proxmoxPluginURL is the SDK's plugin download server; the engine puts it
// into the default provider's name.
const proxmoxPluginURL = "github://api.github.com/muhlba91/pulumi-proxmoxve"

// DefaultProxmoxProviderURN is the URN the engine gave the default
// proxmoxve provider of a stack deployed before SDA registered its own
// (providers.ProviderRequest.DefaultName in the engine: "default", the
// requested version's parts if any, the download URL as a QName). The
// proxmoxve SDK v6.18.1 requests no version (its internal.SdkVersion is
// empty), so the name is "default_github_/api.github.com/muhlba91/pulumi-proxmoxve";
// the engine test TestExplicitProviderAdoptsADeployedStack deploys on the
// default provider and fails if an SDK upgrade changes that.
func DefaultProxmoxProviderURN(stack, project string) string {
	return fmt.Sprintf("urn:pulumi:%s::%s::pulumi:providers:proxmoxve::default_%s",
		stack, project, tokens.IntoQName(proxmoxPluginURL))
}

// NewProxmoxProvider registers the proxmoxve provider every Proxmox
// resource of the stack uses. Its API settings are the stack's own
// `proxmoxve:` keys (an explicit provider does not read them by itself);
// unset keys fall back to the provider's PROXMOX_VE_* variables, read by
// the provider. Its `ssh` block comes from SDA's SSH settings, the same the
// router's commands use: sda:proxmox.sshUser, sda:sshPrivateKey (or the
// ssh-agent) and each node's sshHost. The provider imports VM disks from
// the downloaded Talos image over SSH, and with an API token it needs the
// SSH user named.
//
// The provider is aliased to the default provider of a stack deployed
// before it, so the engine sees the same provider with new settings: the
// VMs, containers, bridges and files it manages keep their URNs and are
// neither replaced nor updated.
func NewProxmoxProvider(ctx *pulumi.Context, c config.Config, sshPrivateKey pulumi.StringInput) (*proxmoxve.Provider, error) {
	c = config.WithDefaults(c)
	args := &proxmoxve.ProviderArgs{}
	str := func(key string) pulumi.StringPtrInput {
		if v, ok := ctx.GetConfig("proxmoxve:" + key); ok && v != "" {
			return pulumi.StringPtr(v)
		}
		return nil
	}
	secret := func(key string) pulumi.StringPtrInput {
		if v, ok := ctx.GetConfig("proxmoxve:" + key); ok && v != "" {
			return pulumiconfig.GetSecret(ctx, "proxmoxve:"+key).ToStringOutput().ToStringPtrOutput()
		}
		return nil
	}
	boolean := func(key string) (pulumi.BoolPtrInput, error) {
		v, ok := ctx.GetConfig("proxmoxve:" + key)
		if !ok || v == "" {
			return nil, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("proxmoxve:%s = %q: use true or false", key, v)
		}
		return pulumi.BoolPtr(b), nil
	}
	integer := func(key string) (pulumi.IntPtrInput, error) {
		v, ok := ctx.GetConfig("proxmoxve:" + key)
		if !ok || v == "" {
			return nil, nil
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("proxmoxve:%s = %q: use a number", key, v)
		}
		return pulumi.IntPtr(i), nil
	}
	args.Endpoint = str("endpoint")
	args.Username = str("username")
	args.MinTls = str("minTls")
	args.Otp = str("otp")
	args.TmpDir = str("tmpDir")
	args.ApiToken = secret("apiToken")
	args.Password = secret("password")
	args.AuthTicket = secret("authTicket")
	args.CsrfPreventionToken = secret("csrfPreventionToken")
	var err error
	if args.Insecure, err = boolean("insecure"); err != nil {
		return nil, err
	}
	if args.RandomVmIds, err = boolean("randomVmIds"); err != nil {
		return nil, err
	}
	if args.RandomVmIdStart, err = integer("randomVmIdStart"); err != nil {
		return nil, err
	}
	if args.RandomVmIdEnd, err = integer("randomVmIdEnd"); err != nil {
		return nil, err
	}

	ssh := &proxmoxve.ProviderSshArgs{Username: pulumi.StringPtr(c.Proxmox.SSHUser)}
	if sshPrivateKey != nil {
		ssh.PrivateKey = pulumi.ToSecret(sshPrivateKey).(pulumi.StringOutput).ToStringPtrOutput()
	} else {
		// The provider reads SSH_AUTH_SOCK itself.
		ssh.Agent = pulumi.BoolPtr(true)
	}
	var nodes proxmoxve.ProviderSshNodeArray
	for _, n := range c.Proxmox.Nodes {
		nodes = append(nodes, proxmoxve.ProviderSshNodeArgs{
			Name:    pulumi.String(n.Name),
			Address: pulumi.String(n.SSHHost),
		})
	}
	ssh.Nodes = nodes
	args.Ssh = ssh.ToProviderSshPtrOutput()

	return proxmoxve.NewProvider(ctx, c.Cluster.Name+"-proxmoxve", args,
		pulumi.Aliases([]pulumi.Alias{{URN: pulumi.URN(DefaultProxmoxProviderURN(ctx.Stack(), ctx.Project()))}}))
}
