package proxmox

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

const (
	// dvAgentTimeout and dvTimeoutCreate are the provider's defaults.
	dvAgentTimeout  = 15 * time.Minute
	dvTimeoutCreate = 1800 * time.Second
	qemuAgentExt    = "siderolabs/qemu-guest-agent"
)

// vmAgent is the VM's agent block: enabled (default false) and timeout.
func vmAgent(v map[string]any) (bool, time.Duration) {
	enabled, _ := keyAgentEnabled.In(v).(bool)
	t := dvAgentTimeout
	if d, err := time.ParseDuration(keyAgentTimeout.In(v)); err == nil {
		t = d
	}
	return enabled, t
}

// factoryImage matches Talos Image Factory download URLs.
var factoryImage = regexp.MustCompile(`^https://factory\.talos\.dev/image/([0-9a-f]{64})/`)

// AgentAnswers says whether the QEMU guest agent in g answers. A guest
// that is stopped or rebooting has none. For a Talos Image Factory image
// the agent is a system extension: it runs only if the image's schematic
// (a Schematic the simulation made) lists siderolabs/qemu-guest-agent,
// and only once the node left maintenance mode (a configuration was
// applied; reports: siderolabs/talos#11651, siderolabs/extensions#293).
// An image not from the factory is assumed to run an agent.
func AgentAnswers(tx *engine.Tx, g *engine.Guest, v map[string]any, now time.Time) bool {
	if g == nil || !g.Started {
		return false
	}
	if _, down := tx.DownUntil(g.VMID, now); down {
		return false
	}
	var image string
	for _, e := range keyDisks.In(v) {
		if id := keyFileID.In(asObject(e)); id != "" {
			image = id
			break
		}
	}
	if image == "" {
		image = keyCdromFileID.In(v)
	}
	f := tx.State.Files[FileKey(tx, g.Node, image)]
	if f == nil {
		return true
	}
	m := factoryImage.FindStringSubmatch(f.URL)
	if m == nil {
		return true
	}
	hasExt := false
	for _, o := range tx.State.Objects {
		if o.Type == "talos:imageFactory/schematic:Schematic" && o.ID == m[1] {
			hasExt = strings.Contains(keySchematic.In(o.Inputs), qemuAgentExt)
		}
	}
	if !hasExt {
		return false
	}
	for _, a := range g.Addresses {
		if tx.State.Machines[a] != nil {
			return true
		}
	}
	return false
}

// VMNetwork is network.ReadNetworkValues, the end of every VM create,
// read and update: with the VM started and agent.enabled, it waits up to
// limit for the agent to report an IP. A timeout is not an error: the
// addresses (and the MACs) come back empty.
func VMNetwork(s *engine.Server, tx *engine.Tx, v map[string]any, g *engine.Guest, limit time.Duration) map[string]any {
	empty := func() []any { return []any{} }
	out := map[string]any{"ipv4Addresses": empty(), "ipv6Addresses": empty(), "networkInterfaceNames": empty()}
	enabled, _ := vmAgent(v)
	started, ok := keyStarted.In(v).(bool)
	if !ok {
		started = true
	}
	if !started || !enabled {
		return out
	}
	if !AgentAnswers(tx, g, v, time.Now().Add(tx.Wait)) {
		tx.Wait += s.Faults().AgentWait(limit)
		out["macAddresses"] = empty()
		return out
	}
	ipv4, ipv6 := []any{[]any{"127.0.0.1"}}, []any{[]any{"::1"}}
	names, macs := []any{"lo"}, []any{"00:00:00:00:00:00"}
	for i, m := range g.MACs {
		var addrs []any
		if i == 0 {
			for _, a := range g.Addresses {
				addrs = append(addrs, a)
			}
		}
		ipv4 = append(ipv4, addrs)
		ipv6 = append(ipv6, []any{})
		names = append(names, fmt.Sprintf("eth%d", i))
		macs = append(macs, m)
	}
	out["ipv4Addresses"], out["ipv6Addresses"], out["networkInterfaceNames"], out["macAddresses"] = ipv4, ipv6, names, macs
	return out
}
