package engine

import (
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

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

// World is the simulated Proxmox cluster as it exists before any deployment:
// its nodes with their capacity, datastores and the bridges every node has.
type World struct {
	Nodes      []WorldNode `json:"nodes"`
	Datastores []Datastore `json:"datastores"`
	// Bridges exist on every node (vmbr0 with the uplink).
	Bridges []string `json:"bridges"`
	// URLSizes is the size (bytes) a download URL reports (Content-Length);
	// unset URLs report the size the simulated download stored. A test
	// changes it to simulate a file that changed upstream.
	URLSizes map[string]int64 `json:"urlSizes,omitempty"`
	// SharedBridges are the bridges of Bridges that are one Ethernet
	// segment across every node (the user connected them through a port on
	// one physical network). Unset: the first of Bridges only (vmbr0, the
	// uplink's bridge: the physical LAN). A bridge not listed is local to
	// each node.
	SharedBridges []string `json:"sharedBridges,omitempty"`
	// Uplinks are the physical interfaces every node has, all on one switch
	// (default eno1): a VLAN interface of one is a port into the switch.
	Uplinks []string `json:"uplinks,omitempty"`
	// SwitchVLANs are the VLAN IDs the switch carries between the nodes'
	// uplinks. Unset: all.
	SwitchVLANs []int `json:"switchVlans,omitempty"`
	// CallerBridge is the bridge whose segment the machine running Pulumi
	// is on (default: the first shared bridge).
	CallerBridge string `json:"callerBridge,omitempty"`
	// Tokens are API tokens ("sda@pve!deploy") with their ACL entries. When
	// the proxmoxve provider's apiToken names one of them, its creates and
	// updates are refused as Proxmox VE 8 refuses them, with HTTP 403
	// (proxmox/acl.go); a token not listed may do everything, as root@pam.
	Tokens map[string][]ACL `json:"tokens,omitempty"`
}

// WorldNode is one Proxmox node.
type WorldNode struct {
	Name string `json:"name"`
	// SSHHost is the address `pct` commands reach the node on.
	SSHHost string `json:"sshHost"`
	// ClusterAddress is the node's address on the Proxmox cluster network,
	// what a VXLAN zone's peers list (default SSHHost).
	ClusterAddress string `json:"clusterAddress,omitempty"`
	// HostKeys are the SSH host keys (authorized_keys lines) of whatever
	// answers on SSHHost: the node's own, or an impostor's when a test puts
	// another machine on its address. None: the node offers no key a pin
	// could match.
	HostKeys  []string `json:"hostKeys,omitempty"`
	Cores     int      `json:"cores"`
	MemoryMiB int      `json:"memoryMiB"`
}

// Datastore is a Proxmox storage.
type Datastore struct {
	ID string `json:"id"`
	// Content types the storage accepts: iso, vztmpl, images, rootdir, import, snippets.
	Content []string `json:"content"`
	// Shared storage is one store seen by every node; otherwise each node
	// has its own store of that name.
	Shared bool `json:"shared"`
}

// DefaultWorld is a cluster with the given nodes, each with 32 cores and
// 128 GiB, the usual `local` (iso, vztmpl, import) and `local-lvm`
// (images, rootdir) stores, and vmbr0.
func DefaultWorld(nodes ...WorldNode) World {
	for i := range nodes {
		if nodes[i].Cores == 0 {
			nodes[i].Cores = 32
		}
		if nodes[i].MemoryMiB == 0 {
			nodes[i].MemoryMiB = 128 * 1024
		}
		if nodes[i].SSHHost == "" {
			nodes[i].SSHHost = nodes[i].Name
		}
	}
	return World{
		Nodes: nodes,
		Datastores: []Datastore{
			{ID: "local", Content: []string{"iso", "vztmpl", "import", "snippets", "backup"}},
			{ID: "local-lvm", Content: []string{"images", "rootdir"}},
		},
		Bridges: []string{"vmbr0"},
	}
}

// NewHostKey makes a fresh ed25519 SSH host key for a simulated node, as
// the authorized_keys line a stack pins (sda:proxmox.nodes[].sshHostKey)
// and WorldNode.HostKeys offers.
func NewHostKey() (string, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), nil
}

// ClusterAddress is node n's address on the Proxmox cluster network
// (default its SSH address).
func (w World) ClusterAddress(n WorldNode) string {
	if n.ClusterAddress != "" {
		return n.ClusterAddress
	}
	return n.SSHHost
}

// SharedBridgesOrDefault are the bridges that are one segment across
// nodes: SharedBridges, else the first of Bridges.
func (w World) SharedBridgesOrDefault() []string {
	if w.SharedBridges != nil {
		return w.SharedBridges
	}
	if len(w.Bridges) > 0 {
		return w.Bridges[:1]
	}
	return nil
}

// UplinksOrDefault are the physical uplinks: Uplinks, else eno1.
func (w World) UplinksOrDefault() []string {
	if len(w.Uplinks) > 0 {
		return w.Uplinks
	}
	return []string{"eno1"}
}

// SwitchCarries reports whether the switch carries VLAN vlan to the
// uplinks (SwitchVLANs; unset: every VLAN).
func (w World) SwitchCarries(vlan int) bool {
	return w.SwitchVLANs == nil || slices.Contains(w.SwitchVLANs, vlan)
}

// FirstOr is the first of s, else def.
func FirstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
