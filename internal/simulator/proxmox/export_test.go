package proxmox

// The string tables of input names the rules compare changes against, for
// the schema check in keys_test.go.
var (
	VMRebootKeys        = vmRebootKeys
	ContainerRebootKeys = containerRebootKeys
	VMBlockKeys         = vmBlockKeys
	ContainerBlockKeys  = containerBlockKeys
)
