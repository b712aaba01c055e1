package talos

import (
	"fmt"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
)

// Type tokens of the talos resources and functions the simulation knows.
const (
	TokenSchematic       = "talos:imageFactory/schematic:Schematic"
	TokenSecrets         = "talos:machine/secrets:Secrets"
	TokenApply           = "talos:machine/configurationApply:ConfigurationApply"
	TokenBootstrap       = "talos:machine/bootstrap:Bootstrap"
	TokenKubeconfig      = "talos:cluster/kubeconfig:Kubeconfig"
	TokenGetMachineCfg   = "talos:machine/getConfiguration:getConfiguration"
	TokenGetClientCfg    = "talos:client/getConfiguration:getConfiguration"
	TokenGetHealth       = "talos:cluster/getHealth:getHealth"
	TokenGetImageURLs    = "talos:imageFactory/getUrls:getUrls"
	defaultTalosContract = "v1.12.0"
)

// Kinds are the talos provider's resources and functions.
func Kinds() ([]*engine.Kind, []*engine.Invoke) {
	// No talos resource replaces on a fixed input path at
	// terraform-provider-talos v0.10.1: none of their schemas uses
	// RequiresReplace; only the secrets' talos_version plan modifier asks
	// for a replacement, on a downgrade (secretsDowngrade).
	kinds := []*engine.Kind{
		{Token: TokenSchematic, Create: createSchematic, Update: updateSchematic},
		{Token: TokenSecrets, ReplaceWhen: secretsDowngrade, Prepare: newSecrets, Create: createSecrets,
			SecretOutputs: []string{"machineSecrets", "clientConfiguration"}},
		{Token: TokenApply, Prepare: prepareConfiguration, Create: applyConfiguration, Update: updateConfiguration,
			Delete: resetOnDestroy, Await: AwaitNodes("node", "endpoint"),
			SecretOutputs: []string{"machineConfiguration", "machineConfigurationInput", "clientConfiguration"}},
		{Token: TokenBootstrap, Create: bootstrap, Await: AwaitNodes("node", "endpoint")},
		{Token: TokenKubeconfig, Create: kubeconfig, Update: renewKubeconfig, Await: AwaitNodes("node", "endpoint"),
			SecretOutputs: []string{"kubeconfigRaw", "kubernetesClientConfiguration", "clientConfiguration"}},
	}
	invokes := []*engine.Invoke{
		{Token: TokenGetMachineCfg, Fn: GetMachineConfiguration, Stateless: true, Secret: []string{"machineConfiguration", "machineSecrets"}},
		{Token: TokenGetClientCfg, Fn: getClientConfiguration, Stateless: true, Secret: []string{"talosConfig", "clientConfiguration"}},
		{Token: TokenGetHealth, Fn: GetHealth, Await: AwaitNodes("controlPlaneNodes", "workerNodes", "endpoints"), Secret: []string{"clientConfiguration"}},
		{Token: TokenGetImageURLs, Fn: getImageURLs, Stateless: true},
	}
	return kinds, invokes
}

// AwaitNodes returns a kind's await: the time until the last of the nodes
// named by keys (strings or lists of strings) finishes a reboot in
// progress, if that is within the retry window. The real provider retries
// such a node until its timeout (10 minutes); the simulation waits only as
// long as the reboot lasts, and fails at once on anything else.
func AwaitNodes(keys ...string) func(tx *engine.Tx, v map[string]any, window time.Duration) time.Duration {
	nodeKeys := make([]engine.Key[any], len(keys))
	for i, k := range keys {
		nodeKeys[i] = engine.AnyKey(k)
	}
	return func(tx *engine.Tx, v map[string]any, window time.Duration) time.Duration {
		now := time.Now()
		var wait time.Duration
		for _, key := range nodeKeys {
			var addrs []string
			switch a := key.In(v).(type) {
			case string:
				if a != "" {
					addrs = []string{a}
				}
			case []any:
				for _, e := range a {
					if s, ok := e.(string); ok {
						addrs = append(addrs, s)
					}
				}
			}
			for _, a := range addrs {
				g, err := network.VMAt(tx, a)
				if err != nil {
					continue
				}
				if end, down := tx.DownUntil(g.VMID, now); down && end.Sub(now) <= window && end.Sub(now) > wait {
					wait = end.Sub(now)
				}
				// A rebooting router is retried like a rebooting node.
				if end, ok := network.RouterBack(tx, g, a, now); ok && end.Sub(now) <= window && end.Sub(now) > wait {
					wait = end.Sub(now)
				}
			}
		}
		if wait > 0 {
			wait += time.Millisecond
		}
		return wait
	}
}

// retried marks an error the real provider retries (any gRPC code but
// InvalidArgument) as having outlasted the retry timeout.
func retried(err error) error {
	return fmt.Errorf("%w (retried until the 10m timeout)", err)
}
