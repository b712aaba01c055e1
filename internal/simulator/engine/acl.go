package engine

// Proxmox VE 8 permission checks of the API token the proxmoxve provider
// is configured with (docs/simulation.md, "Privileges" rows).
//
// The rules were read in the Proxmox VE 8 sources, at the commits
// docs/proxmox-privileges.md lists: pve-access-control 0f258e7 (8.2.3),
// qemu-server 5ccd363e (8.4.10), pve-container 6475873 (5.3.5),
// pve-manager 2606ac85 (8.4.21), pve-storage 1af4790 (8.3.8),
// pve-guest-common 58ad183 (5.2.2); the API calls and the error wrapping
// in bpg/terraform-provider-proxmox v0.69.1. This file deliberately shares
// nothing with SDA's own internal/pveaccess: a stand-in that reused the
// product's rule table would hide its mistakes.
//
// Simplifications: only the token's own ACL entries count (a
// privilege-separated token whose user holds at least as much: Proxmox
// intersects the two, src/PVE/RPCEnvironment.pm:99-108); no groups, pools,
// user ACLs, roles by name or NoAccess; the checks of one create or
// update are all made before the simulated system changes (for real a
// check that fails after the create POST or the configuration PUT leaves
// the guest created or reconfigured); reads (VM.Audit, VM.Monitor,
// Datastore.Audit on refresh) and deletes are not checked.

// ACL is one access-control entry of an API token: `pveum acl modify
// <path> --tokens <token> --roles <a role with these privileges>
// [--propagate 0]`. Each entry acts as one role assignment.
type ACL struct {
	Path       string   `json:"path"`
	Privileges []string `json:"privileges"`
	// Propagate: unset means true, pveum's default (--propagate 1).
	Propagate *bool `json:"propagate,omitempty"`
}

func (a ACL) Propagates() bool { return a.Propagate == nil || *a.Propagate }
