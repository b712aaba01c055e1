package clis

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
)

// Pvesh is Proxmox's API shell on node, for exactly the SDN calls SDA's
// VXLAN command makes (Proxmox API /cluster/sdn, pve-network; messages
// inferred where marked in docs/simulation.md). Every other invocation is
// refused, so a script that starts using something new fails here.
//
//	pvesh get /cluster/sdn/zones [--pending 1|--running 1] [--output-format json]
//	pvesh get /cluster/sdn/zones/Z                 exit 0 iff Z exists (prints it as JSON)
//	pvesh create /cluster/sdn/zones --zone Z --type vxlan --peers a,b,c [--mtu M]
//	pvesh set /cluster/sdn/zones/Z [--peers a,b,c] [--mtu M]
//	pvesh get /cluster/sdn/vnets [--pending 1|--running 1] [--output-format json]
//	pvesh get /cluster/sdn/vnets/V
//	pvesh create /cluster/sdn/vnets --vnet V --zone Z --tag VNI
//	pvesh set /cluster/sdn/vnets/V [--zone Z] [--tag VNI]
//	pvesh set /cluster/sdn                         apply: running := edited; every node reloads
//	pvesh delete /cluster/sdn/vnets/V
//	pvesh delete /cluster/sdn/zones/Z              refused while a VNet uses Z
//	pvesh get /nodes/N/sdn/zones/Z/content [--output-format json]   the VNets of Z on node N, with status
//
// Create, set and delete change the edited configuration (State.SDN); only
// the apply changes what exists on the nodes (State.SDNRunning: a bridge
// named after each VNet on every node whose cluster address is a peer of
// the VNet's zone).
//
// The apply is upstream's (pve-network, branch stable-bookworm at 2e32df1,
// src/PVE/API2/Network/SDN.pm:106-145; master at ecf98c5, SDN.pm:261-330):
// it commits the whole edited configuration, whoever edited it
// (commit_config, src/PVE/Network/SDN.pm:141 at 2e32df1), bumping its
// version, then reloads the network of every cluster node, where a failure
// is only warned about (`warn $@`), and exits 0. A node listed in
// Faults.SDNReloadFails fails its reload: it keeps the SDN version it last
// reloaded with (State.SDNNodeVersions), and its zone content reports the
// VNet "pending" as upstream's does. (The data plane, network.VNetOn,
// does not read that version yet: such a node still gets the bridge there.)
func Pvesh(store *engine.Store, node string, args []string, stdout io.Writer) error {
	if node == "" {
		return fmt.Errorf("simulated pvesh runs on a Proxmox node: %s is not set", NodeEnv)
	}
	if len(args) < 2 {
		return fmt.Errorf("simulated pvesh: usage: pvesh get|create|set|delete PATH [--OPTION VALUE ...], got %q", strings.Join(args, " "))
	}
	verb, path := args[0], strings.TrimSuffix(args[1], "/")
	opts, err := pveshOptions(args[2:])
	if err != nil {
		return err
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	nodeContent := len(parts) == 6 && parts[0] == "nodes" && parts[2] == "sdn" && parts[3] == "zones" && parts[5] == "content"
	if !nodeContent && (len(parts) < 2 || parts[0] != "cluster" || parts[1] != "sdn") {
		return fmt.Errorf("simulated pvesh supports only /cluster/sdn and /nodes/N/sdn/zones/Z/content, got %s %s", verb, path)
	}
	allow := func(keys ...string) error {
		if verb == "get" {
			// pvesh's own option (PVE/CLI/pvesh.pm, standard output
			// options); SDA's scripts read JSON only.
			if f, ok := opts["output-format"]; ok && f != "json" {
				return fmt.Errorf("simulated pvesh: only --output-format json is simulated, got %q", f)
			}
			keys = append(keys, "output-format")
		}
		for k := range opts {
			if !slices.Contains(keys, k) {
				return fmt.Errorf("simulated pvesh: %s %s: option --%s is not simulated (allowed: %s)", verb, path, k, strings.Join(keys, ", "))
			}
		}
		return nil
	}
	faults, err := store.Faults()
	if err != nil {
		return err
	}
	return store.Update(func(tx *engine.Tx) error {
		sdn := &tx.State.SDN
		switch {
		case nodeContent && verb == "get":
			if err := allow(); err != nil {
				return err
			}
			n, zone := parts[1], parts[4]
			if !slices.ContainsFunc(tx.World.Nodes, func(w engine.WorldNode) bool { return w.Name == n }) {
				return fmt.Errorf("simulated pvesh: no node %q in the simulated cluster", n)
			}
			if !sdnID(zone) {
				return fmt.Errorf("400 Parameter verification failed.\nzone: invalid format - invalid sdn zone ID '%s'", zone)
			}
			return printJSON(stdout, SDNZoneContent(tx, n, zone))
		case verb == "set" && len(parts) == 2:
			if err := allow(); err != nil {
				return err
			}
			// commit_config: the whole edited configuration becomes the
			// running one, everyone's pending edits with SDA's.
			tx.State.SDNRunning = sdn.Clone()
			tx.State.SDNVersion++
			for _, n := range tx.World.Nodes {
				fmt.Fprintf(stdout, "%s: reloading network config\n", n.Name)
				if slices.Contains(faults.SDNReloadFails, n.Name) {
					// Upstream warns and goes on with the next node.
					fmt.Fprintf(stdout, "warning: simulated: the network reload of %s failed (faults: sdnReloadFails)\n", n.Name)
					continue
				}
				tx.State.NetworkReloads[n.Name]++
				tx.State.SDNNodeVersions[n.Name] = tx.State.SDNVersion
			}
			return nil
		case verb == "get" && len(parts) == 3 && (parts[2] == "zones" || parts[2] == "vnets"):
			if err := allow("pending", "running"); err != nil {
				return err
			}
			pending, err := pveBool(opts, "pending")
			if err != nil {
				return err
			}
			running, err := pveBool(opts, "running")
			if err != nil {
				return err
			}
			return printJSON(stdout, sdnListing(tx.State.SDN, tx.State.SDNRunning, parts[2], pending, running))
		case len(parts) == 3 && parts[2] == "zones" && verb == "create":
			if err := allow("zone", "type", "peers", "mtu"); err != nil {
				return err
			}
			id := opts["zone"]
			if !sdnID(id) {
				return fmt.Errorf("400 Parameter verification failed.\nzone: invalid format - invalid sdn zone ID '%s'", id)
			}
			if opts["type"] != "vxlan" {
				return fmt.Errorf("simulated pvesh: only --type vxlan zones are simulated, got %q", opts["type"])
			}
			if sdn.Zones[id] != nil {
				return fmt.Errorf("sdn zone '%s' already defined", id)
			}
			z := &engine.SDNZone{Type: "vxlan"}
			if err := setZone(z, opts); err != nil {
				return err
			}
			if len(z.Peers) == 0 {
				return fmt.Errorf("400 Parameter verification failed.\npeers: property is missing and it is not optional")
			}
			sdn.Zones[id] = z
			return nil
		case len(parts) == 4 && parts[2] == "zones":
			id := parts[3]
			z := sdn.Zones[id]
			switch verb {
			case "get":
				if err := allow(); err != nil {
					return err
				}
				if z == nil {
					return fmt.Errorf("sdn zone '%s' does not exist", id)
				}
				return printJSON(stdout, map[string]any{"zone": id, "type": z.Type, "peers": strings.Join(z.Peers, ","), "mtu": z.MTU})
			case "set":
				if err := allow("peers", "mtu"); err != nil {
					return err
				}
				if z == nil {
					return fmt.Errorf("sdn zone '%s' does not exist", id)
				}
				return setZone(z, opts)
			case "delete":
				if err := allow(); err != nil {
					return err
				}
				if z == nil {
					return fmt.Errorf("sdn zone '%s' does not exist", id)
				}
				for _, v := range slices.Sorted(maps.Keys(sdn.VNets)) {
					if sdn.VNets[v].Zone == id {
						return fmt.Errorf("Can't delete zone '%s': vnet '%s' uses it", id, v)
					}
				}
				delete(sdn.Zones, id)
				return nil
			}
		case len(parts) == 3 && parts[2] == "vnets" && verb == "create":
			if err := allow("vnet", "zone", "tag"); err != nil {
				return err
			}
			id := opts["vnet"]
			if !sdnID(id) {
				return fmt.Errorf("400 Parameter verification failed.\nvnet: invalid format - invalid sdn vnet ID '%s'", id)
			}
			if sdn.VNets[id] != nil {
				return fmt.Errorf("sdn vnet '%s' already defined", id)
			}
			v := &engine.SDNVNet{}
			if err := setVNet(tx, id, v, opts); err != nil {
				return err
			}
			sdn.VNets[id] = v
			return nil
		case len(parts) == 4 && parts[2] == "vnets":
			id := parts[3]
			v := sdn.VNets[id]
			switch verb {
			case "get":
				if err := allow(); err != nil {
					return err
				}
				if v == nil {
					return fmt.Errorf("sdn vnet '%s' does not exist", id)
				}
				return printJSON(stdout, map[string]any{"vnet": id, "zone": v.Zone, "tag": v.Tag})
			case "set":
				if err := allow("zone", "tag"); err != nil {
					return err
				}
				if v == nil {
					return fmt.Errorf("sdn vnet '%s' does not exist", id)
				}
				nv := *v
				if err := setVNet(tx, id, &nv, opts); err != nil {
					return err
				}
				*v = nv
				return nil
			case "delete":
				if err := allow(); err != nil {
					return err
				}
				if v == nil {
					return fmt.Errorf("sdn vnet '%s' does not exist", id)
				}
				delete(sdn.VNets, id)
				return nil
			}
		}
		return fmt.Errorf("simulated pvesh: %s %s is not simulated", verb, path)
	})
}

// sdnObjects is one kind of SDN object (zones or vnets) as pve-network's
// section configuration holds them: ID, then key and value.
type sdnObjects map[string]map[string]any

func sdnObjectsOf(c engine.SDNConfig, kind string) sdnObjects {
	out := sdnObjects{}
	if kind == "zones" {
		for id, z := range c.Zones {
			o := map[string]any{"type": z.Type, "peers": strings.Join(z.Peers, ",")}
			if z.MTU != 0 {
				o["mtu"] = z.MTU
			}
			out[id] = o
		}
		return out
	}
	for id, v := range c.VNets {
		out[id] = map[string]any{"type": "vnet", "zone": v.Zone, "tag": v.Tag}
	}
	return out
}

// sdnListing is `pvesh get /cluster/sdn/zones|vnets`: the edited objects,
// the running ones with running, or with pending what pending_config
// makes of both. Each is named by "zone" or "vnet" (pve-network
// src/PVE/API2/Network/SDN/Zones.pm:38 and Vnets.pm:47 at 2e32df1), in ID
// order.
func sdnListing(edited, running engine.SDNConfig, kind string, pending, showRunning bool) []map[string]any {
	objs := sdnObjectsOf(edited, kind)
	switch {
	case pending:
		objs = pendingConfig(sdnObjectsOf(running, kind), objs)
	case showRunning:
		objs = sdnObjectsOf(running, kind)
	}
	idKey := "zone"
	if kind == "vnets" {
		idKey = "vnet"
	}
	out := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(objs)) {
		o := objs[id]
		o[idKey] = id
		out = append(out, o)
	}
	return out
}

// pendingConfig is pve-network's pending_config (src/PVE/Network/SDN.pm:
// 85-140 at 2e32df1, :133-188 at ecf98c5): every running and every edited
// object. A running object shows its running values; one the edit removed
// has state "deleted", one whose values differ "changed" (a removed key
// pending as "deleted"); an object only edited is "new", with its values
// under "pending" (but type and vnet); an edited value that differs from
// the running one is under "pending" too. An unchanged object has neither
// state nor pending.
func pendingConfig(running, edited sdnObjects) sdnObjects {
	out := sdnObjects{}
	get := func(id string) map[string]any {
		if out[id] == nil {
			out[id] = map[string]any{}
		}
		return out[id]
	}
	setPending := func(o map[string]any, k string, v any) {
		p, _ := o["pending"].(map[string]any)
		if p == nil {
			p = map[string]any{}
			o["pending"] = p
		}
		p[k] = v
	}
	same := func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }
	for id, r := range running {
		o := get(id)
		e, inEdited := edited[id]
		for k, v := range r {
			o[k] = v
			ev, ok := e[k]
			switch {
			case !inEdited:
				o["state"] = "deleted"
			case !ok:
				setPending(o, k, "deleted")
				o["state"] = "changed"
			case !same(v, ev):
				o["state"] = "changed"
			}
		}
	}
	for id, e := range edited {
		o := get(id)
		r, inRunning := running[id]
		for k, v := range e {
			rv, ok := r[k]
			if k == "type" || k == "vnet" {
				o[k] = v
			} else if !ok || !same(rv, v) {
				setPending(o, k, v)
			}
			if !inRunning {
				o["state"] = "new"
			} else if !ok {
				o["state"] = "changed"
			}
		}
	}
	for _, o := range out {
		if _, ok := o["state"]; ok && o["pending"] == nil {
			o["pending"] = map[string]any{}
		}
	}
	return out
}

// SDNZoneContent is `pvesh get /nodes/N/sdn/zones/Z/content`: the VNets
// of zone Z in the running configuration as node N has them (pve-network
// src/PVE/API2/Network/SDN/Zones/Content.pm:73-82 and
// PVE::Network::SDN::Zones::status, src/PVE/Network/SDN/Zones.pm:227-300,
// at 2e32df1). Nothing before the first apply; "pending" on a node whose
// generated configuration is older than the running one (its reload
// failed); "error" where the simulation has no bridge for the VNet (a node
// that is not a peer of the zone; upstream's message for a VNet that
// ifquery does not know, Zones/Plugin.pm:219-220); else "available".
func SDNZoneContent(tx *engine.Tx, node, zone string) []map[string]any {
	out := []map[string]any{}
	if tx.State.SDNVersion == 0 {
		return out
	}
	var errConfig string
	switch local := tx.State.SDNNodeVersions[node]; {
	case local == 0:
		errConfig = "local sdn network configuration is not yet generated, please reload"
	case local < tx.State.SDNVersion:
		errConfig = "local sdn network configuration is too old, please reload"
	}
	running := tx.State.SDNRunning
	for _, id := range slices.Sorted(maps.Keys(running.VNets)) {
		if v := running.VNets[id]; v.Zone != zone || running.Zones[zone] == nil {
			continue
		}
		item := map[string]any{"vnet": id, "status": "available"}
		if errConfig != "" {
			item["status"], item["statusmsg"] = "pending", errConfig
		} else if _, ok := network.VNetOn(tx, node, id); !ok {
			item["status"], item["statusmsg"] = "error", "vnet is not generated. Please check the 'reload network' task log."
		}
		out = append(out, item)
	}
	return out
}

// pveBool reads a boolean option as Proxmox's JSON schema does (absent is
// false).
func pveBool(opts map[string]string, key string) (bool, error) {
	v, ok := opts[key]
	if !ok {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("400 Parameter verification failed.\n%s: type check ('boolean') failed - got '%s'", key, v)
}

// sdnID is pve-network's SDN ID format: a letter, then letters and
// digits, 8 at most (zones and VNets).
func sdnID(id string) bool { return sdnIDRE.MatchString(id) }

var sdnIDRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]{0,7}$`)

func setZone(z *engine.SDNZone, opts map[string]string) error {
	if p, ok := opts["peers"]; ok {
		var peers []string
		for _, a := range strings.FieldsFunc(p, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
			peers = append(peers, a)
		}
		z.Peers = peers
	}
	if m, ok := opts["mtu"]; ok {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return fmt.Errorf("400 Parameter verification failed.\nmtu: type check ('integer') failed - got '%s'", m)
		}
		z.MTU = n
	}
	return nil
}

func setVNet(tx *engine.Tx, id string, v *engine.SDNVNet, opts map[string]string) error {
	if z, ok := opts["zone"]; ok {
		v.Zone = z
	}
	if t, ok := opts["tag"]; ok {
		n, err := strconv.Atoi(t)
		if err != nil {
			return fmt.Errorf("400 Parameter verification failed.\ntag: type check ('integer') failed - got '%s'", t)
		}
		v.Tag = n
	}
	if v.Zone == "" {
		return fmt.Errorf("400 Parameter verification failed.\nzone: property is missing and it is not optional")
	}
	if tx.State.SDN.Zones[v.Zone] == nil {
		return fmt.Errorf("zone '%s' doesn't exist", v.Zone)
	}
	if v.Tag < 1 || v.Tag > 16777215 {
		return fmt.Errorf("vnet %s: missing or invalid vxlan tag %d (1-16777215)", id, v.Tag)
	}
	for other, o := range tx.State.SDN.VNets {
		if other != id && o.Tag == v.Tag {
			return fmt.Errorf("tag %d already exists in vnet: %s", v.Tag, other)
		}
	}
	return nil
}

// pveshOptions reads --key value and --key=value.
func pveshOptions(args []string) (map[string]string, error) {
	opts := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			return nil, fmt.Errorf("simulated pvesh: unexpected argument %q", a)
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("simulated pvesh: option --%s needs a value", k)
			}
			i++
			v = args[i]
		}
		opts[k] = v
	}
	return opts, nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
