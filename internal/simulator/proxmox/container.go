package proxmox

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

func containerSpec(v map[string]any) guestSpec {
	g := guestSpec{kind: "lxc", node: keyNodeName.In(v), vmid: keyVMID.In(v), name: keyInitializationHostname.In(v),
		cores: keyCPUCores.In(v), memory: keyMemoryDedicated.In(v), template: keyOperatingSystemTemplateFileID.In(v),
		started: true}
	if s, ok := keyStarted.In(v).(bool); ok {
		g.started = s
	}
	if g.cores == 0 {
		g.cores = 1
	}
	if g.memory == 0 {
		g.memory = 512
	}
	ds := keyDiskDatastoreID.In(v)
	if ds == "" {
		ds = "local"
	}
	g.disks = []diskSpec{{datastore: ds, iface: "rootfs"}}
	g.readNICs(keyNetworkInterfaces.In(v))
	g.addresses = ipConfigAddresses(v)
	g.nicAddrs = nicAddresses(v)
	return g
}

func readContainer(_ *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
	vmid, _ := strconv.Atoi(obj.ID)
	g := tx.State.Guests[vmid]
	return g == nil || g.Kind != "lxc", nil
}

// containerRebootKeys: the same for containerUpdate.
var containerRebootKeys = []string{"console", "cpu", "initialization", "memory", "mountPoints",
	"networkInterfaces", "operatingSystem"}

// CheckContainerFeatures: with an API token, feature flags other than
// nesting are refused ("only allowed for root@pam", provider docs).
func CheckContainerFeatures(s *engine.Server, verb string, v map[string]any) error {
	token, _, _ := s.ConfigValue("apiToken")
	if token == "" {
		return nil
	}
	features, _ := keyFeatures.In(v).(map[string]any)
	for k, val := range features {
		if k == "nesting" || val == nil || val == false || reflect.DeepEqual(val, []any{}) {
			continue
		}
		return fmt.Errorf("error %s container: received an HTTP 403 response - Reason: Permission check failed "+
			"(changing feature flags for privileged container is only allowed for root@pam)", verb)
	}
	return nil
}

func createContainer(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	g := containerSpec(in.Values)
	if g.vmid == 0 {
		g.vmid = NextVMID(tx)
	}
	if err := Permit(s, tx, ContainerCreateCalls(tx, g, in.Values)...); err != nil {
		return "", nil, err
	}
	if err := Admit(tx, g, -1); err != nil {
		return "", nil, err
	}
	if err := CheckContainerFeatures(s, "creating", in.Values); err != nil {
		return "", nil, err
	}
	Place(tx, g)
	CreateTask(s, tx, TokenContainer)
	return strconv.Itoa(g.vmid), map[string]any{"vmId": float64(g.vmid)}, nil
}

func updateContainer(s *engine.Server, tx *engine.Tx, id string, old *engine.Object, news engine.Props) (map[string]any, error) {
	g := containerSpec(news.Values)
	self, _ := strconv.Atoi(id)
	g.vmid = self
	if err := Permit(s, tx, ContainerUpdateCalls(tx, self, old.Inputs, news.Values)...); err != nil {
		return nil, err
	}
	if err := Admit(tx, g, self); err != nil {
		return nil, err
	}
	if !reflect.DeepEqual(engine.Normalise(keyFeatures.In(old.Inputs)), engine.Normalise(keyFeatures.In(news.Values))) {
		if err := CheckContainerFeatures(s, "updating", news.Values); err != nil {
			return nil, err
		}
	}
	if prev := tx.State.Guests[self]; prev != nil && prev.Started != g.started {
		ev := engine.RouterEvent{VMID: self, Time: time.Now(), Kind: engine.RouterUp}
		if !g.started {
			ev.Kind = engine.RouterDown
		}
		tx.RecordRouter(ev)
	}
	Place(tx, g)
	// containerUpdate reboots a started container (config "started") when
	// a reboot key changed, unless it is being stopped or is a template.
	template, _ := keyTemplate.In(news.Values).(bool)
	if causes := rebootCauses(old.Inputs, news.Values, containerRebootKeys); len(causes) > 0 && g.started && !template {
		tx.Reboot(s.Faults(), tx.State.Guests[self], "proxmox update: "+strings.Join(causes, ", "))
	}
	return map[string]any{"vmId": float64(g.vmid)}, nil
}
