package proxmox

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
)

// BridgeExists reports whether node has bridge name: one of the World's,
// one the stack created, or an applied SDN VNet's.
func BridgeExists(tx *engine.Tx, node, name string) bool {
	if _, ok := network.VNetOn(tx, node, name); ok {
		return true // an applied SDN VNet on a node that is a peer of its zone
	}
	return slices.Contains(tx.World.Bridges, name) || tx.State.Bridges[node+"/"+name]
}

// CheckPorts is Proxmox's check_duplicate_ports (pve-manager
// PVE/API2/Network.pm:536-566): a port may belong to one bridge only.
func CheckPorts(tx *engine.Tx, node, name string, ports []string) error {
	for key, used := range tx.State.BridgePorts {
		n, other, _ := strings.Cut(key, "/")
		if n != node || other == name {
			continue
		}
		for _, p := range ports {
			if slices.Contains(used, p) {
				return fmt.Errorf("received an HTTP 400 response - Reason: Parameter verification failed. (bridge_ports: %s is already used on interface '%s'.)", p, other)
			}
		}
	}
	return nil
}

// bridgeName is the name validator of the bridge resource.
var bridgeName = regexp.MustCompile(`^vmbr(\d{1,4})$`)

func createBridge(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	node, name := keyNodeName.In(in.Values), keyName.In(in.Values)
	if _, err := Node(tx, node); err != nil {
		return "", nil, err
	}
	if !bridgeName.MatchString(name) {
		return "", nil, fmt.Errorf(`Attribute name must be "vmbrN", where N is a number between 0 and 9999, got: %s`, name)
	}
	if err := Permit(s, tx, networkCalls("create", "Bridge", node, name)...); err != nil {
		return "", nil, err
	}
	if BridgeExists(tx, node, name) {
		return "", nil, fmt.Errorf("Error creating Linux Bridge interface: Could not create Linux Bridge, unexpected error: "+
			"received an HTTP 400 response - Reason: Parameter verification failed. (iface: interface already exists) (%s on node %q)", name, node)
	}
	ports := keyPorts.In(in.Values)
	if err := CheckPorts(tx, node, name, ports); err != nil {
		return "", nil, fmt.Errorf("Error creating Linux Bridge interface: Could not create Linux Bridge, unexpected error: %w", err)
	}
	tx.State.Bridges[node+"/"+name] = true
	if len(ports) > 0 {
		tx.State.BridgePorts[node+"/"+name] = ports
	}
	tx.State.NetworkReloads[node]++
	return node + ":" + name, nil, nil
}

// updateBridge changes a bridge in place. The provider updates the
// interface on the planned node: a bridge "moved" to another node is not
// there, and Proxmox refuses.
func updateBridge(s *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	node, name := keyNodeName.In(news.Values), keyName.In(news.Values)
	if _, err := Node(tx, node); err != nil {
		return nil, err
	}
	if err := Permit(s, tx, networkCalls("update", "Bridge", node, name)...); err != nil {
		return nil, err
	}
	if !tx.State.Bridges[node+"/"+name] && !slices.Contains(tx.World.Bridges, name) {
		return nil, fmt.Errorf("Error updating Linux Bridge interface: Could not update Linux Bridge, unexpected error: "+
			"received an HTTP 400 response - Reason: Parameter verification failed. (iface: interface does not exist) (%s on node %q)", name, node)
	}
	ports := keyPorts.In(news.Values)
	if err := CheckPorts(tx, node, name, ports); err != nil {
		return nil, fmt.Errorf("Error updating Linux Bridge interface: Could not update Linux Bridge, unexpected error: %w", err)
	}
	if tx.State.Bridges[node+"/"+name] {
		tx.State.BridgePorts[node+"/"+name] = ports
	}
	// The provider reloads the network of the node in its old state.
	tx.State.NetworkReloads[keyNodeName.In(old.Inputs)]++
	return nil, nil
}

// deleteBridge removes a bridge and reloads the node's network. Proxmox
// does not check whether guests still use it: their NICs lose the bridge.
func deleteBridge(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	node, name := keyNodeName.In(obj.Inputs), keyName.In(obj.Inputs)
	delete(tx.State.Bridges, node+"/"+name)
	delete(tx.State.BridgePorts, node+"/"+name)
	tx.State.NetworkReloads[node]++
	return nil
}

// vlanSpec reads a NetworkVlan: `name` "eno1.42" gives the raw device and
// the tag unless `interface` and `vlan` are set; a custom name ("vlan_lab")
// needs both (resource_linux_vlan.go:155-216, bpg v0.69.1).
func vlanSpec(v map[string]any) (*engine.VLANIface, error) {
	x := &engine.VLANIface{Node: keyNodeName.In(v), Name: keyName.In(v), Interface: keyInterface.In(v), VLAN: keyVlan.In(v), MTU: keyMTU.In(v)}
	if len(x.Name) < 3 {
		return nil, fmt.Errorf("Attribute name string length must be at least 3, got: %d", len(x.Name))
	}
	if raw, tag, ok := strings.Cut(x.Name, "."); ok {
		if x.Interface == "" {
			x.Interface = raw
		}
		if x.VLAN == 0 {
			x.VLAN, _ = strconv.Atoi(tag)
		}
	}
	if x.Interface == "" || x.VLAN < 1 || x.VLAN > 4094 {
		return nil, fmt.Errorf("Error creating Linux VLAN interface: Could not create Linux VLAN, unexpected error: received an HTTP 400 response - "+
			"Reason: Parameter verification failed. (vlan-raw-device/vlan-id: a custom named VLAN interface %q needs interface and vlan 1-4094)", x.Name)
	}
	return x, nil
}

// createVLAN creates a VLAN interface on a node and reloads its network
// (resource_linux_vlan.go:241-281). Proxmox refuses an existing name
// (Network.pm create_network: "interface already exists").
func createVLAN(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	x, err := vlanSpec(in.Values)
	if err != nil {
		return "", nil, err
	}
	if _, err := Node(tx, x.Node); err != nil {
		return "", nil, err
	}
	if err := Permit(s, tx, networkCalls("create", "VLAN", x.Node, x.Name)...); err != nil {
		return "", nil, err
	}
	if tx.State.VLANs[x.Node+"/"+x.Name] != nil {
		return "", nil, fmt.Errorf("Error creating Linux VLAN interface: Could not create Linux VLAN, unexpected error: "+
			"received an HTTP 400 response - Reason: Parameter verification failed. (iface: interface already exists) (%s on node %q)", x.Name, x.Node)
	}
	tx.State.VLANs[x.Node+"/"+x.Name] = x
	tx.State.NetworkReloads[x.Node]++
	return x.Node + ":" + x.Name, map[string]any{"interface": x.Interface, "vlan": float64(x.VLAN)}, nil
}

// updateVLAN changes a VLAN interface in place (a new node is an update
// the provider sends to that node, where the interface does not exist).
func updateVLAN(s *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	x, err := vlanSpec(news.Values)
	if err != nil {
		return nil, err
	}
	if err := Permit(s, tx, networkCalls("update", "VLAN", x.Node, x.Name)...); err != nil {
		return nil, err
	}
	if tx.State.VLANs[x.Node+"/"+x.Name] == nil {
		return nil, fmt.Errorf("Error updating Linux VLAN interface: Could not update Linux VLAN, unexpected error: "+
			"received an HTTP 400 response - Reason: Parameter verification failed. (iface: interface does not exist) (%s on node %q)", x.Name, x.Node)
	}
	tx.State.VLANs[x.Node+"/"+x.Name] = x
	tx.State.NetworkReloads[keyNodeName.In(old.Inputs)]++
	return map[string]any{"interface": x.Interface, "vlan": float64(x.VLAN)}, nil
}

func deleteVLAN(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	node, name := keyNodeName.In(obj.Inputs), keyName.In(obj.Inputs)
	delete(tx.State.VLANs, node+"/"+name)
	tx.State.NetworkReloads[node]++
	return nil
}
