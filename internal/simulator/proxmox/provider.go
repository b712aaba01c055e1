package proxmox

import (
	"fmt"
	"os"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// Type tokens of the proxmoxve resources the simulation knows.
const (
	TokenBridge    = "proxmoxve:Network/networkBridge:NetworkBridge"
	TokenVLAN      = "proxmoxve:Network/networkVlan:NetworkVlan"
	TokenDownload  = "proxmoxve:Download/file:File"
	TokenVM        = "proxmoxve:VM/virtualMachine:VirtualMachine"
	TokenContainer = "proxmoxve:CT/container:Container"
)

// checkProxmoxConfig checks the provider configuration, falling back to the
// environment variables the real provider reads.
func CheckConfig(p engine.Props) error {
	for key, env := range map[string]string{"endpoint": "PROXMOX_VE_ENDPOINT", "apiToken": "PROXMOX_VE_API_TOKEN", "username": "PROXMOX_VE_USERNAME"} {
		if v, _ := p.Values[key].(string); v == "" && os.Getenv(env) != "" {
			p.Values[key] = os.Getenv(env)
		}
	}
	endpoint := keyEndpoint.In(p.Values)
	if endpoint == "" && !p.Unknown[keyEndpoint.Path()] {
		return fmt.Errorf("proxmoxve: the provider needs an endpoint: set proxmoxve:endpoint (https://<host>:8006/)")
	}
	token := keyAPIToken.In(p.Values)
	user := keyUsername.In(p.Values)
	if token == "" && user == "" && !p.Unknown[keyAPIToken.Path()] {
		return fmt.Errorf("proxmoxve: the provider needs credentials: set proxmoxve:apiToken as a secret (pulumi config set --secret proxmoxve:apiToken 'user@realm!id=uuid')")
	}
	if token != "" && !strings.Contains(token, "!") || token != "" && !strings.Contains(token, "=") {
		return fmt.Errorf("proxmoxve: apiToken must look like user@realm!tokenid=uuid")
	}
	return nil
}

// Kinds are the proxmoxve resources. The replace paths are the
// ForceNew / RequiresReplace attributes of bpg/terraform-provider-proxmox
// v0.69.1, which pulumi-proxmoxve v6.18.1 bridges (see
// docs/simulation.md for the file and line of each). Every call about a
// resource on a failed node fails first (offline.go).
func Kinds() []*engine.Kind {
	kinds := []*engine.Kind{
		{
			Token: TokenBridge,
			// Only the name requires replacement; a new nodeName is an
			// update (which then fails: the bridge is not on that node).
			Replace: []string{"name"},
			Create:  createBridge,
			Update:  updateBridge,
			Delete:  deleteBridge,
		},
		{
			Token: TokenVLAN,
			// Only the name requires replacement (resource_linux_vlan.go:155-166).
			Replace: []string{"name"},
			Create:  createVLAN,
			Update:  updateVLAN,
			Delete:  deleteVLAN,
		},
		{
			Token: TokenDownload,
			// decompressionAlgorithm, overwrite, overwriteUnmanaged,
			// uploadTimeout and verify update in place (state only).
			Replace: []string{"nodeName", "datastoreId", "contentType", "url", "fileName",
				"checksum", "checksumAlgorithm"},
			ForceNew: downloadForceNew,
			Create:   createDownload,
			Read:     readDownload,
			Delete:   deleteDownload,
		},
		{
			Token: TokenVM,
			// nodeName (unless migrate) and disks[*].fileId are in vmForceNew.
			Replace: []string{"vmId", "clone", "template",
				"efiDisk!", "efiDisk.fileFormat", "efiDisk.type", "efiDisk.preEnrolledKeys",
				"tpmState!", "tpmState.version",
				"initialization.userAccount", "initialization.userDataFileId", "initialization.vendorDataFileId",
				"initialization.networkDataFileId", "initialization.metaDataFileId", "initialization.type"},
			ForceNew: vmForceNew,
			Create:   createVM,
			Read:     readVM,
			Update:   updateVM,
			Delete:   deleteGuest,
		},
		{
			Token: TokenContainer,
			Replace: []string{"nodeName", "vmId", "clone", "disk", "operatingSystem!", "operatingSystem.templateFileId",
				"initialization.userAccount", "poolId", "template", "unprivileged"},
			Create: createContainer,
			Read:   readContainer,
			Update: updateContainer,
			Delete: deleteGuest,
		},
	}
	for _, k := range kinds {
		guardOffline(k)
	}
	return kinds
}
