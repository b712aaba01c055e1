package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// pvesh is Proxmox's API shell on node, for exactly the SDN calls SDA's
// VXLAN command makes (Proxmox API /cluster/sdn, pve-network; messages
// inferred where marked in docs/simulation.md). Every other invocation is
// refused, so a script that starts using something new fails here.
//
//	pvesh get /cluster/sdn/zones/Z                 exit 0 iff Z exists (prints it as JSON)
//	pvesh create /cluster/sdn/zones --zone Z --type vxlan --peers a,b,c [--mtu M]
//	pvesh set /cluster/sdn/zones/Z [--peers a,b,c] [--mtu M]
//	pvesh get /cluster/sdn/vnets/V
//	pvesh create /cluster/sdn/vnets --vnet V --zone Z --tag VNI
//	pvesh set /cluster/sdn/vnets/V [--zone Z] [--tag VNI]
//	pvesh set /cluster/sdn                         apply: running := edited; every node reloads
//	pvesh delete /cluster/sdn/vnets/V
//	pvesh delete /cluster/sdn/zones/Z              refused while a VNet uses Z
//
// Create, set and delete change the edited configuration (State.SDN); only
// the apply changes what exists on the nodes (State.SDNRunning: a bridge
// named after each VNet on every node whose cluster address is a peer of
// the VNet's zone).
func pvesh(store *Store, node string, args []string, stdout io.Writer) error {
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
	if len(parts) < 2 || parts[0] != "cluster" || parts[1] != "sdn" {
		return fmt.Errorf("simulated pvesh supports only /cluster/sdn, got %s %s", verb, path)
	}
	allow := func(keys ...string) error {
		for k := range opts {
			if !slices.Contains(keys, k) {
				return fmt.Errorf("simulated pvesh: %s %s: option --%s is not simulated (allowed: %s)", verb, path, k, strings.Join(keys, ", "))
			}
		}
		return nil
	}
	return store.Update(func(tx *Tx) error {
		sdn := &tx.State.SDN
		switch {
		case verb == "set" && len(parts) == 2:
			if err := allow(); err != nil {
				return err
			}
			tx.State.SDNRunning = sdn.clone()
			for _, n := range tx.World.Nodes {
				tx.State.NetworkReloads[n.Name]++
			}
			return nil
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
			z := &SDNZone{Type: "vxlan"}
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
			v := &SDNVNet{}
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

// sdnID is pve-network's SDN ID format: a letter, then letters and
// digits, 8 at most (zones and VNets).
func sdnID(id string) bool { return sdnIDRE.MatchString(id) }

var sdnIDRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]{0,7}$`)

func setZone(z *SDNZone, opts map[string]string) error {
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

func setVNet(tx *Tx, id string, v *SDNVNet, opts map[string]string) error {
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
