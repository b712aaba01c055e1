package proxmox

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/sda-platform/sda/internal/simulator/network"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
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
	endpoint, _ := p.Values["endpoint"].(string)
	if endpoint == "" && !p.Unknown["endpoint"] {
		return fmt.Errorf("proxmoxve: the provider needs an endpoint: set proxmoxve:endpoint (https://<host>:8006/)")
	}
	token, _ := p.Values["apiToken"].(string)
	user, _ := p.Values["username"].(string)
	if token == "" && user == "" && !p.Unknown["apiToken"] {
		return fmt.Errorf("proxmoxve: the provider needs credentials: set proxmoxve:apiToken as a secret (pulumi config set --secret proxmoxve:apiToken 'user@realm!id=uuid')")
	}
	if token != "" && !strings.Contains(token, "!") || token != "" && !strings.Contains(token, "=") {
		return fmt.Errorf("proxmoxve: apiToken must look like user@realm!tokenid=uuid")
	}
	return nil
}

// proxmoxKinds are the proxmoxve resources. The replace paths are the
// ForceNew / RequiresReplace attributes of bpg/terraform-provider-proxmox
// v0.69.1, which pulumi-proxmoxve v6.18.1 bridges (see
// docs/simulation.md for the file and line of each).
func Kinds() []*engine.Kind {
	return []*engine.Kind{
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
}

func Node(tx *engine.Tx, name string) (*engine.WorldNode, error) {
	for i := range tx.World.Nodes {
		if tx.World.Nodes[i].Name == name {
			return &tx.World.Nodes[i], nil
		}
	}
	var names []string
	for _, n := range tx.World.Nodes {
		names = append(names, n.Name)
	}
	return nil, fmt.Errorf("Proxmox node %q does not exist (the cluster has %s)", name, strings.Join(names, ", "))
}

func Datastore(tx *engine.Tx, node, id, content string) error {
	for _, d := range tx.World.Datastores {
		if d.ID == id {
			if !slices.Contains(d.Content, content) {
				return fmt.Errorf("datastore %q on node %q does not accept content type %q (it holds %s)", id, node, content, strings.Join(d.Content, ", "))
			}
			return nil
		}
	}
	return fmt.Errorf("datastore %q does not exist on node %q", id, node)
}

func Shared(tx *engine.Tx, datastore string) bool {
	for _, d := range tx.World.Datastores {
		if d.ID == datastore {
			return d.Shared
		}
	}
	return false
}

func BridgeExists(tx *engine.Tx, node, name string) bool {
	if _, ok := network.VnetOn(tx, node, name); ok {
		return true // an applied SDN VNet on a node that is a peer of its zone
	}
	return slices.Contains(tx.World.Bridges, name) || tx.State.Bridges[node+"/"+name]
}

// checkPorts is Proxmox's check_duplicate_ports (pve-manager
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

// fileKey is where a file lives: shared stores have one copy for all nodes.
func FileKey(tx *engine.Tx, node, id string) string {
	ds, _, _ := strings.Cut(id, ":")
	if Shared(tx, ds) {
		node = "*"
	}
	return node + "/" + id
}

// bridgeName is the name validator of the bridge resource.
var bridgeName = regexp.MustCompile(`^vmbr(\d{1,4})$`)

func createBridge(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	node, name := engine.Str(in.Values, "nodeName"), engine.Str(in.Values, "name")
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
	ports := engine.StrList(in.Values, "ports")
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
	node, name := engine.Str(news.Values, "nodeName"), engine.Str(news.Values, "name")
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
	ports := engine.StrList(news.Values, "ports")
	if err := CheckPorts(tx, node, name, ports); err != nil {
		return nil, fmt.Errorf("Error updating Linux Bridge interface: Could not update Linux Bridge, unexpected error: %w", err)
	}
	if tx.State.Bridges[node+"/"+name] {
		tx.State.BridgePorts[node+"/"+name] = ports
	}
	// The provider reloads the network of the node in its old state.
	tx.State.NetworkReloads[engine.Str(old.Inputs, "nodeName")]++
	return nil, nil
}

// deleteBridge removes a bridge and reloads the node's network. Proxmox
// does not check whether guests still use it: their NICs lose the bridge.
func deleteBridge(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	node, name := engine.Str(obj.Inputs, "nodeName"), engine.Str(obj.Inputs, "name")
	delete(tx.State.Bridges, node+"/"+name)
	delete(tx.State.BridgePorts, node+"/"+name)
	tx.State.NetworkReloads[node]++
	return nil
}

// vlanSpec reads a NetworkVlan: `name` "eno1.42" gives the raw device and
// the tag unless `interface` and `vlan` are set; a custom name ("vlan_lab")
// needs both (resource_linux_vlan.go:155-216, bpg v0.69.1).
func vlanSpec(v map[string]any) (*engine.VLANIface, error) {
	x := &engine.VLANIface{Node: engine.Str(v, "nodeName"), Name: engine.Str(v, "name"), Interface: engine.Str(v, "interface"), VLAN: engine.Num(v, "vlan"), MTU: engine.Num(v, "mtu")}
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
	tx.State.NetworkReloads[engine.Str(old.Inputs, "nodeName")]++
	return map[string]any{"interface": x.Interface, "vlan": float64(x.VLAN)}, nil
}

func deleteVLAN(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	node, name := engine.Str(obj.Inputs, "nodeName"), engine.Str(obj.Inputs, "name")
	delete(tx.State.VLANs, node+"/"+name)
	tx.State.NetworkReloads[node]++
	return nil
}

// The download file resource validates content_type and
// decompression_algorithm with the framework's OneOf validator.
var (
	downloadContentTypes = []string{"iso", "vztmpl"}
	decompressions       = []string{"gz", "lzo", "zst", "bz2"}
	// Proxmox's file name checks for download-url (pve-storage
	// PVE::Storage $ISO_EXT_RE_0 and $VZTMPL_EXT_RE_1).
	isoExt    = regexp.MustCompile(`(?i)[^/]+\.(?:iso|img)$`)
	vztmplExt = regexp.MustCompile(`(?i)[^/]+\.(?:tar|tar\.(?:gz|xz|zst|bz2))$`)
)

// oneOf is the message of terraform-plugin-framework-validators' OneOf.
func oneOf(attr string, allowed []string, got string) error {
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = strconv.Quote(strconv.Quote(a))
	}
	return fmt.Errorf("Invalid Attribute Value Match: Attribute %s value must be one of: [%s], got: %q", attr, strings.Join(q, " "), got)
}

// urlSize is what the URL's Content-Length says: the World's URLSizes, or
// else what a download of it stores.
func UrlSize(tx *engine.Tx, u string) int64 {
	if n, ok := tx.World.URLSizes[u]; ok {
		return n
	}
	return int64(len(u)) << 20
}

// CreateTaskMethod is the faults.json latency method of a Proxmox create
// task: "<token>#CreateTask" is how long the task that creates a VM, a
// container or a downloaded file runs after Proxmox accepted it. Proxmox
// runs these as workers of their own (RPCEnvironment::fork_worker:
// qemu-server src/PVE/API2/Qemu.pm:1626 create_vm, pve-container
// src/PVE/API2/LXC.pm:655 create_vm, pve-storage
// src/PVE/API2/Storage/Status.pm:911 download_url), which finish whether
// or not the client that asked still waits. So the object is committed to
// the simulated state first and the task's time is spent afterwards (as
// Tx.Wait, outside the lock): a cancelled call or a killed plugin leaves it
// created. The plain "<token>#Create" (or "<token>") latency is spent
// before the request reaches Proxmox: cancelled there, nothing is created.
const CreateTaskMethod = "CreateTask"

// createTask adds the configured run time of token's create task to the
// call's wait, after the object is in the state.
func CreateTask(s *engine.Server, tx *engine.Tx, token string) {
	if v, ok := s.Faults().Latency[token+"#"+CreateTaskMethod]; ok {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			tx.Wait += d
		}
	}
}

func createDownload(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	v := in.Values
	node, ds, content, u := engine.Str(v, "nodeName"), engine.Str(v, "datastoreId"), engine.Str(v, "contentType"), engine.Str(v, "url")
	if !slices.Contains(downloadContentTypes, content) {
		return "", nil, oneOf("content_type", downloadContentTypes, content)
	}
	d := engine.Str(v, "decompressionAlgorithm")
	if d != "" && !slices.Contains(decompressions, d) {
		return "", nil, oneOf("decompression_algorithm", decompressions, d)
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return "", nil, fmt.Errorf("Invalid Attribute Value Match: Attribute url Must match http url regex, got: %s", u)
	}
	if _, err := Node(tx, node); err != nil {
		return "", nil, err
	}
	fileName := engine.Str(v, "fileName")
	if fileName == "" {
		// The provider asks Proxmox for the URL's metadata (query-url-metadata).
		pu, err := url.Parse(u)
		if err != nil {
			return "", nil, err
		}
		fileName = path.Base(pu.Path)
	}
	if err := Permit(s, tx, downloadCalls(node, ds, fileName)...); err != nil {
		return "", nil, err
	}
	failed := func(reason string) error {
		return fmt.Errorf("Error downloading file from url: Could not download file '%s', unexpected error: %s", fileName, reason)
	}
	if err := Datastore(tx, node, ds, content); err != nil {
		return "", nil, failed(fmt.Sprintf("received an HTTP 500 response - Reason: storage '%s' is not configured for content-type '%s'", ds, content))
	}
	switch content {
	case "iso":
		if !isoExt.MatchString(fileName) {
			return "", nil, failed("received an HTTP 400 response - Reason: Parameter verification failed. (filename: wrong file extension)")
		}
	case "vztmpl":
		if !vztmplExt.MatchString(fileName) {
			return "", nil, failed("received an HTTP 400 response - Reason: Parameter verification failed. (filename: wrong file extension)")
		}
	}
	// The download task refuses decompression before it downloads.
	if d != "" && content != "iso" {
		return "", nil, failed(fmt.Sprintf("decompression not supported for %s", content))
	}
	id := fmt.Sprintf("%s:%s/%s", ds, content, fileName)
	key := FileKey(tx, node, id)
	if _, exists := tx.State.Files[key]; exists {
		if b, _ := engine.Get(v, "overwriteUnmanaged").(bool); !b {
			return "", nil, fmt.Errorf("File already exists in the datastore, it was created outside of Terraform or is managed by another resource.: "+
				"File already exists in the datastore: '%s', error: refusing to override existing file '%s'", fileName, fileName)
		}
		// overwriteUnmanaged: the provider deletes the file and downloads again.
	}
	size := UrlSize(tx, u)
	tx.State.Files[key] = &engine.StoredFile{ID: id, Node: node, Datastore: ds, ContentType: content, URL: u, Size: size}
	CreateTask(s, tx, TokenDownload)
	return id, map[string]any{"fileName": fileName, "size": float64(size)}, nil
}

// overwrite is the download's overwrite flag (default true).
func overwrite(v map[string]any) bool {
	b, ok := engine.Get(v, "overwrite").(bool)
	return !ok || b
}

// readDownload reads the file's size from the datastore; a file that is
// gone drops the resource. With overwrite it also asks the URL's size and
// keeps both sizes as private state for the next plan (downloadForceNew).
func readDownload(_ *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
	f := tx.State.Files[FileKey(tx, engine.Str(obj.Inputs, "nodeName"), obj.ID)]
	if f == nil {
		return true, nil
	}
	if obj.Outputs == nil {
		obj.Outputs = map[string]any{}
	}
	obj.Private = map[string]any{"original_state_size": obj.Outputs["size"]}
	obj.Outputs["size"] = float64(f.Size)
	if overwrite(obj.Inputs) {
		obj.Private["url_size"] = float64(UrlSize(tx, engine.Str(obj.Inputs, "url")))
	}
	return false, nil
}

// downloadForceNew is the provider's sizeRequiresReplaceModifier: with
// overwrite, a file whose datastore size changed since the last state, or
// whose URL now reports another size (same url), is downloaded again.
func downloadForceNew(s *engine.Server, urn, id string, oldOutputs, olds, news map[string]any) []string {
	if s == nil || !overwrite(news) {
		return nil
	}
	var private map[string]any
	_ = s.Store.Update(func(tx *engine.Tx) error {
		if _, obj := tx.Object(urn, id, TokenDownload); obj != nil {
			private = obj.Private
		}
		return errors.New("read only") // nothing to save
	})
	size, _ := oldOutputs["size"].(float64)
	if orig, ok := private["original_state_size"].(float64); ok && orig != size {
		return []string{"size"}
	}
	if us, ok := private["url_size"].(float64); ok && engine.Str(olds, "url") == engine.Str(news, "url") && us != size {
		return []string{"size"}
	}
	return nil
}

func deleteDownload(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	delete(tx.State.Files, FileKey(tx, engine.Str(obj.Inputs, "nodeName"), obj.ID))
	return nil
}

// guestSpec is what a VM or container asks of its node.
type guestSpec struct {
	kind      string
	node      string
	vmid      int
	name      string
	cores     int
	memory    int
	bridges   []string
	macs      []string
	mtus      []int
	addresses []string
	nicAddrs  []string
	disks     []diskSpec
	template  string // container template file ID
	diskIface string
	started   bool
}

type diskSpec struct {
	datastore, fileID, iface string
}

func vmSpec(v map[string]any) guestSpec {
	g := guestSpec{kind: "qemu", node: engine.Str(v, "nodeName"), vmid: engine.Num(v, "vmId"), name: engine.Str(v, "name"),
		cores: engine.Num(v, "cpu.cores"), memory: engine.Num(v, "memory.dedicated"), started: true}
	if s, ok := engine.Get(v, "started").(bool); ok {
		g.started = s
	}
	if g.cores == 0 {
		g.cores = 1
	}
	if sockets := engine.Num(v, "cpu.sockets"); sockets > 1 {
		g.cores *= sockets
	}
	if g.memory == 0 {
		g.memory = 512
	}
	for i := range engine.List(v, "disks") {
		p := fmt.Sprintf("disks[%d]", i)
		d := diskSpec{datastore: engine.Str(v, p+".datastoreId"), fileID: engine.Str(v, p+".fileId"), iface: engine.Str(v, p+".interface")}
		if d.datastore == "" {
			d.datastore = "local-lvm"
		}
		g.disks = append(g.disks, d)
	}
	if len(g.disks) > 0 {
		g.diskIface = strings.TrimRight(g.disks[0].iface, "0123456789")
	}
	g.readNICs(v, "networkDevices")
	if ds := engine.Str(v, "initialization.datastoreId"); ds != "" {
		g.disks = append(g.disks, diskSpec{datastore: ds, iface: "ide2"})
	}
	g.addresses = ipConfigAddresses(v)
	g.nicAddrs = nicAddresses(v)
	return g
}

// nicAddresses are the static addresses of ipConfigs by position: Proxmox
// gives ipconfigN (ip=N for containers) to netN.
func nicAddresses(v map[string]any) []string {
	var out []string
	for i := range engine.List(v, "initialization.ipConfigs") {
		a := engine.Str(v, fmt.Sprintf("initialization.ipConfigs[%d].ipv4.address", i))
		if a == "dhcp" {
			a = ""
		}
		a, _, _ = strings.Cut(a, "/")
		out = append(out, a)
	}
	return out
}

// readNICs reads the bridges and MACs of a VM's networkDevices or a
// container's networkInterfaces (same fields; Proxmox defaults to vmbr0).
func (g *guestSpec) readNICs(v map[string]any, key string) {
	for i := range engine.List(v, key) {
		p := fmt.Sprintf("%s[%d]", key, i)
		b := engine.Str(v, p+".bridge")
		if b == "" {
			b = "vmbr0"
		}
		g.bridges = append(g.bridges, b)
		g.macs = append(g.macs, strings.ToUpper(engine.Str(v, p+".macAddress")))
		g.mtus = append(g.mtus, engine.Num(v, p+".mtu"))
	}
}

func containerSpec(v map[string]any) guestSpec {
	g := guestSpec{kind: "lxc", node: engine.Str(v, "nodeName"), vmid: engine.Num(v, "vmId"), name: engine.Str(v, "initialization.hostname"),
		cores: engine.Num(v, "cpu.cores"), memory: engine.Num(v, "memory.dedicated"), template: engine.Str(v, "operatingSystem.templateFileId"),
		started: true}
	if s, ok := engine.Get(v, "started").(bool); ok {
		g.started = s
	}
	if g.cores == 0 {
		g.cores = 1
	}
	if g.memory == 0 {
		g.memory = 512
	}
	ds := engine.Str(v, "disk.datastoreId")
	if ds == "" {
		ds = "local"
	}
	g.disks = []diskSpec{{datastore: ds, iface: "rootfs"}}
	g.readNICs(v, "networkInterfaces")
	g.addresses = ipConfigAddresses(v)
	g.nicAddrs = nicAddresses(v)
	return g
}

func ipConfigAddresses(v map[string]any) []string {
	var out []string
	for i := range engine.List(v, "initialization.ipConfigs") {
		a := engine.Str(v, fmt.Sprintf("initialization.ipConfigs[%d].ipv4.address", i))
		if a == "" || a == "dhcp" {
			continue
		}
		a, _, _ = strings.Cut(a, "/")
		out = append(out, a)
	}
	return out
}

// admit checks a guest against the node it is placed on: the IDs, storage,
// files, bridges and capacity the real Proxmox would refuse.
func Admit(tx *engine.Tx, g guestSpec, self int) error {
	node, err := Node(tx, g.node)
	if err != nil {
		return err
	}
	if g.vmid < 100 || g.vmid > 999_999_999 {
		return fmt.Errorf("vmId %d: Proxmox VM IDs run from 100 to 999999999", g.vmid)
	}
	if other, taken := tx.State.Guests[g.vmid]; taken && g.vmid != self {
		return fmt.Errorf("unable to create %s %d: VM ID %d already exists on node %q (%s %s)", g.kind, g.vmid, g.vmid, other.Node, other.Kind, other.Name)
	}
	if g.cores > node.Cores {
		return fmt.Errorf("%s %d: %d cores requested, node %q has only %d", g.kind, g.vmid, g.cores, node.Name, node.Cores)
	}
	used := 0
	for id, other := range tx.State.Guests {
		if other.Node == node.Name && id != self {
			used += other.MemoryMiB
		}
	}
	if used+g.memory > node.MemoryMiB {
		return fmt.Errorf("%s %d: %d MiB of memory requested, node %q has %d MiB of %d MiB left", g.kind, g.vmid, g.memory, node.Name, node.MemoryMiB-used, node.MemoryMiB)
	}
	content := "images"
	if g.kind == "lxc" {
		content = "rootdir"
	}
	for _, d := range g.disks {
		if err := Datastore(tx, node.Name, d.datastore, content); err != nil {
			return fmt.Errorf("%s %d disk %s: %w", g.kind, g.vmid, d.iface, err)
		}
		if d.fileID != "" {
			f, ok := tx.State.Files[FileKey(tx, node.Name, d.fileID)]
			if !ok {
				return fmt.Errorf("%s %d disk %s: file %s does not exist on node %q", g.kind, g.vmid, d.iface, d.fileID, node.Name)
			}
			if f.ContentType != "iso" && f.ContentType != "import" {
				return fmt.Errorf("%s %d disk %s: %s is a %s file, not a disk image", g.kind, g.vmid, d.iface, d.fileID, f.ContentType)
			}
		}
	}
	if g.template != "" {
		f, ok := tx.State.Files[FileKey(tx, node.Name, g.template)]
		if !ok {
			return fmt.Errorf("lxc %d: template %s does not exist on node %q", g.vmid, g.template, node.Name)
		}
		if f.ContentType != "vztmpl" {
			return fmt.Errorf("lxc %d: %s is a %s file, not a container template", g.vmid, g.template, f.ContentType)
		}
	} else if g.kind == "lxc" {
		return fmt.Errorf("lxc %d: operatingSystem.templateFileId is required", g.vmid)
	}
	for _, b := range g.bridges {
		if !BridgeExists(tx, node.Name, b) {
			return fmt.Errorf("%s %d: bridge %q does not exist on node %q", g.kind, g.vmid, b, node.Name)
		}
	}
	for _, a := range g.addresses {
		for id, other := range tx.State.Guests {
			if id != self && slices.Contains(other.Addresses, a) {
				return fmt.Errorf("%s %d: address %s is already configured on %s %d", g.kind, g.vmid, a, other.Kind, id)
			}
		}
	}
	return nil
}

func Place(tx *engine.Tx, g guestSpec) {
	tx.State.Guests[g.vmid] = &engine.Guest{VMID: g.vmid, Kind: g.kind, Node: g.node, Name: g.name, Cores: g.cores,
		MemoryMiB: g.memory, Bridges: g.bridges, MACs: g.macs, MTUs: g.mtus, Addresses: g.addresses, NICAddresses: g.nicAddrs,
		DiskInterface: g.diskIface,
		Started:       g.started}
}

// nextVMID is what Proxmox's /cluster/nextid answers.
func NextVMID(tx *engine.Tx) int {
	for id := 100; ; id++ {
		if _, taken := tx.State.Guests[id]; !taken {
			return id
		}
	}
}

func guestOutputs(g guestSpec) map[string]any {
	macs := make([]any, len(g.macs))
	for i, m := range g.macs {
		macs[i] = m
	}
	return map[string]any{"vmId": float64(g.vmid), "macAddresses": macs}
}

func envAny(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// sshLogin is the SSH login the provider uses on node, resolved as
// proxmoxtf/provider/provider.go does: ssh.username, else
// PROXMOX_VE_SSH_USERNAME, else the user part of the API username
// (password login); with an API token alone it is empty. The disk import
// then fails to authenticate (proxmox/ssh/client.go openNodeShell).
func SshLogin(s *engine.Server, tx *engine.Tx, node string) error {
	conf := s.ConfigObject("ssh")
	user, _ := conf["username"].(string)
	password, _ := conf["password"].(string)
	key, _ := conf["privateKey"].(string)
	agent, _ := conf["agent"].(bool)
	apiUser, _, _ := s.ConfigValue("username")
	apiPassword, _, _ := s.ConfigValue("password")
	if user == "" {
		user = envAny("PROXMOX_VE_SSH_USERNAME", "PM_VE_SSH_USERNAME")
	}
	if user == "" {
		user, _, _ = strings.Cut(apiUser, "@")
	}
	if password == "" {
		password = envAny("PROXMOX_VE_SSH_PASSWORD", "PM_VE_SSH_PASSWORD")
	}
	if password == "" {
		password = apiPassword
	}
	if key == "" {
		key = os.Getenv("PROXMOX_VE_SSH_PRIVATE_KEY")
	}
	if env := envAny("PROXMOX_VE_SSH_AGENT", "PM_VE_SSH_AGENT"); env == "true" || env == "1" {
		agent = true
	}
	host := node
	if n, err := Node(tx, node); err == nil && n.SSHHost != "" {
		host = n.SSHHost
	}
	port := 22
	for _, e := range engine.List(conf, "nodes") {
		if m, ok := e.(map[string]any); ok && engine.Str(m, "name") == node {
			host = engine.Str(m, "address")
			if p := engine.Num(m, "port"); p > 0 {
				port = p
			}
		}
	}
	sshHost := fmt.Sprintf("%s:%d", host, port)
	if user != "" && (agent || key != "" || password != "") {
		return providerKnownHosts(tx, host, port)
	}
	return fmt.Errorf("unable to authenticate user %q over SSH to %q. Please verify that ssh-agent is "+
		"correctly loaded with an authorized key via 'ssh-add -L' (NOTE: configurations in ~/.ssh/config are "+
		"not considered by the provider): failed to dial %s: ssh: handshake failed: ssh: unable to authenticate, "+
		"attempted methods [none password], no supported methods remain", user, sshHost, sshHost)
}

// providerKnownHosts is the provider's host-key rule for its own SSH client
// (bpg v0.69.1 proxmox/ssh/client.go:470-530): it reads $HOME/.ssh/known_hosts
// of the machine it runs on (creating it empty), refuses a host whose
// recorded key differs, and records an unknown host's key on first use.
// The key the host shows is the first of what answers at host (the world
// node with that SSH address; its impostor when a test says so) whose type
// the client asks for: the recorded types when the host is known
// (knownhosts HostKeyAlgorithms), else any.
func providerKnownHosts(tx *engine.Tx, host string, port int) error {
	var offered []string
	for _, n := range tx.World.Nodes {
		if n.SSHHost == host || n.Name == host {
			offered = n.HostKeys
		}
	}
	if len(offered) == 0 {
		return nil // a node without keys in the world: nothing to check
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return err
	}
	file := filepath.Join(home, ".ssh", "known_hosts")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	check, err := knownhosts.New(file)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", file, err)
	}
	addr := fmt.Sprintf("%s:%d", host, port)
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: port}
	var keys []ssh.PublicKey
	for _, line := range offered {
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	// A known host is asked for its recorded key types only.
	shown := keys[0]
	var known *knownhosts.KeyError
	if err := check(addr, remote, shown); errors.As(err, &known) && len(known.Want) > 0 {
		for _, k := range keys {
			if slices.ContainsFunc(known.Want, func(w knownhosts.KnownKey) bool { return w.Key.Type() == k.Type() }) {
				shown = k
				break
			}
		}
	}
	var keyErr *knownhosts.KeyError
	switch err := check(addr, remote, shown); {
	case err == nil:
		return nil
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		return fmt.Errorf("failed to dial %s: ssh: handshake failed: REMOTE HOST IDENTIFICATION HAS CHANGED for host %s! This may indicate a MitM attack", addr, addr)
	}
	w, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer w.Close()
	_, err = fmt.Fprintln(w, knownhosts.Line([]string{knownhosts.Normalize(addr)}, shown))
	return err
}

// importDisks is disk.CreateCustomDisks: every disk with a fileId is
// imported over SSH (qm importdisk on the node).
func ImportDisks(s *engine.Server, tx *engine.Tx, node string, disks []diskSpec) error {
	for _, d := range disks {
		if d.fileID == "" {
			continue
		}
		if err := SshLogin(s, tx, node); err != nil {
			return fmt.Errorf("creating custom disk: %w", err)
		}
	}
	return nil
}

const (
	// dvAgentTimeout and dvTimeoutCreate are the provider's defaults.
	dvAgentTimeout  = 15 * time.Minute
	dvTimeoutCreate = 1800 * time.Second
	qemuAgentExt    = "siderolabs/qemu-guest-agent"
)

// vmAgent is the VM's agent block: enabled (default false) and timeout.
func vmAgent(v map[string]any) (bool, time.Duration) {
	enabled, _ := engine.Get(v, "agent.enabled").(bool)
	t := dvAgentTimeout
	if d, err := time.ParseDuration(engine.Str(v, "agent.timeout")); err == nil {
		t = d
	}
	return enabled, t
}

// factoryImage matches Talos Image Factory download URLs.
var factoryImage = regexp.MustCompile(`^https://factory\.talos\.dev/image/([0-9a-f]{64})/`)

// agentAnswers says whether the QEMU guest agent in g answers. A guest
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
	for i := range engine.List(v, "disks") {
		if id := engine.Str(v, fmt.Sprintf("disks[%d].fileId", i)); id != "" {
			image = id
			break
		}
	}
	if image == "" {
		image = engine.Str(v, "cdrom.fileId")
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
			hasExt = strings.Contains(engine.Str(o.Inputs, "schematic"), qemuAgentExt)
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

// vmNetwork is network.ReadNetworkValues, the end of every VM create,
// read and update: with the VM started and agent.enabled, it waits up to
// limit for the agent to report an IP. A timeout is not an error: the
// addresses (and the MACs) come back empty.
func VmNetwork(s *engine.Server, tx *engine.Tx, v map[string]any, g *engine.Guest, limit time.Duration) map[string]any {
	empty := func() []any { return []any{} }
	out := map[string]any{"ipv4Addresses": empty(), "ipv6Addresses": empty(), "networkInterfaceNames": empty()}
	enabled, _ := vmAgent(v)
	started, ok := engine.Get(v, "started").(bool)
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

func createVM(s *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	g := vmSpec(in.Values)
	if g.vmid == 0 {
		g.vmid = NextVMID(tx)
	}
	for i, m := range g.macs {
		if m == "" {
			g.macs[i] = fmt.Sprintf("BC:24:11:%02X:%02X:%02X", g.vmid>>16&0xff, g.vmid>>8&0xff, i)
		}
	}
	if err := Permit(s, tx, VmCreateCalls(tx, g, in.Values)...); err != nil {
		return "", nil, err
	}
	if err := Admit(tx, g, -1); err != nil {
		return "", nil, err
	}
	// vmCreateCustom creates the VM, then imports the fileId disks over SSH.
	// (For real the VM then exists and the failed create leaves it behind.)
	if err := ImportDisks(s, tx, g.node, g.disks); err != nil {
		return "", nil, err
	}
	if err := Permit(s, tx, vmAfterCreateCalls(g, in.Values)...); err != nil {
		return "", nil, err
	}
	Place(tx, g)
	CreateTask(s, tx, TokenVM)
	guest := tx.State.Guests[g.vmid]
	// vmCreateStart: start, reboot if asked, then vmRead.
	template, _ := engine.Get(in.Values, "template").(bool)
	if reboot, _ := engine.Get(in.Values, "reboot").(bool); reboot && g.started && !template {
		tx.Reboot(s.Faults(), guest, "proxmox create: reboot")
	}
	_, agentTimeout := vmAgent(in.Values)
	createTimeout := dvTimeoutCreate
	if n := engine.Num(in.Values, "timeoutCreate"); n > 0 {
		createTimeout = time.Duration(n) * time.Second
	}
	outs := engine.Merge(guestOutputs(g), VmNetwork(s, tx, in.Values, guest, min(agentTimeout, createTimeout)))
	return strconv.Itoa(g.vmid), outs, nil
}

// readVM is vmRead: a VM that is gone drops the resource; otherwise the
// network values are read again (waiting for the agent, see vmNetwork).
func readVM(s *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
	vmid, _ := strconv.Atoi(obj.ID)
	g := tx.State.Guests[vmid]
	if g == nil || g.Kind != "qemu" {
		return true, nil
	}
	_, agentTimeout := vmAgent(obj.Inputs)
	net := VmNetwork(s, tx, obj.Inputs, g, agentTimeout)
	if _, fromAgent := net["macAddresses"]; !fromAgent {
		net["macAddresses"] = guestOutputs(guestSpec{macs: g.MACs})["macAddresses"]
	}
	obj.Outputs = engine.Merge(obj.Outputs, net)
	return false, nil
}

func readContainer(_ *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
	vmid, _ := strconv.Atoi(obj.ID)
	g := tx.State.Guests[vmid]
	return g == nil || g.Kind != "lxc", nil
}

// vmForceNew holds the VM's conditional replacements: nodeName forces a
// new VM unless migrate is set (CustomizeDiff ForceNewIf), and a disk's
// fileId is compared by list position, so adding or removing a disk with
// a fileId replaces the VM too (Terraform diffs disk.N.file_id from "").
func vmForceNew(_ *engine.Server, _, _ string, _, olds, news map[string]any) []string {
	var keys []string
	if engine.Str(olds, "nodeName") != engine.Str(news, "nodeName") {
		if migrate, _ := engine.Get(news, "migrate").(bool); !migrate {
			keys = append(keys, "nodeName")
		}
	}
	od, nd := engine.List(olds, "disks"), engine.List(news, "disks")
	for i := 0; i < max(len(od), len(nd)); i++ {
		p := fmt.Sprintf("disks[%d].fileId", i)
		if engine.Str(olds, p) != engine.Str(news, p) {
			keys = append(keys, "disks")
			break
		}
	}
	return keys
}

// vmRebootKeys are the VM settings whose change makes vmUpdate reboot the
// VM (rebootRequired in vmUpdate); a disk reboots it only for a new aio.
var vmRebootKeys = []string{"acpi", "kvmArguments", "bios", "keyboardLayout", "machine", "tabletDevice",
	"template", "agent", "audioDevice", "bootOrders", "cdrom", "cpu", "efiDisk", "tpmState", "initialization",
	"hostpcis", "numas", "usbs", "memory", "networkDevices", "operatingSystem", "serialDevices", "vga",
	"scsiHardware", "watchdog"}

// containerRebootKeys: the same for containerUpdate.
var containerRebootKeys = []string{"console", "cpu", "initialization", "memory", "mountPoints",
	"networkInterfaces", "operatingSystem"}

func rebootCauses(olds, news map[string]any, keys []string) []string {
	var out []string
	for _, p := range engine.ChangedPaths(olds, news) {
		if slices.Contains(keys, engine.TopKey(p)) || engine.MatchesRule(p, "disks[*].aio") {
			out = append(out, p)
		}
	}
	return out
}

type vmDisk struct {
	iface, datastore string
	size             int
	index            int
}

// vmDisks are a VM's disks by interface, with the provider's defaults
// (datastore local-lvm, 8 GB).
func vmDisks(v map[string]any) (map[string]vmDisk, []string) {
	out := map[string]vmDisk{}
	var order []string
	for i := range engine.List(v, "disks") {
		p := fmt.Sprintf("disks[%d]", i)
		d := vmDisk{iface: engine.Str(v, p+".interface"), datastore: engine.Str(v, p+".datastoreId"), size: engine.Num(v, p+".size"), index: i}
		if d.iface == "" {
			d.iface = "scsi0"
		}
		if d.datastore == "" {
			d.datastore = "local-lvm"
		}
		if d.size == 0 {
			d.size = 8
		}
		out[d.iface] = d
		order = append(order, d.iface)
	}
	return out, order
}

func updateVM(s *engine.Server, tx *engine.Tx, id string, old *engine.Object, news engine.Props) (map[string]any, error) {
	olds, nv := old.Inputs, news.Values
	g := vmSpec(nv)
	self, _ := strconv.Atoi(id)
	g.vmid = self
	prev := tx.State.Guests[self]
	if prev != nil {
		for i, m := range g.macs {
			if m == "" && i < len(prev.MACs) {
				g.macs[i] = prev.MACs[i]
			}
		}
	}
	if err := Admit(tx, g, self); err != nil {
		return nil, err
	}
	f := s.Faults()
	oldDisks, oldOrder := vmDisks(olds)
	newDisks, newOrder := vmDisks(nv)
	// disk.Update: a disk on a new interface is added; one with a fileId is
	// imported over SSH first.
	for _, iface := range newOrder {
		if _, ok := oldDisks[iface]; !ok && engine.Str(nv, fmt.Sprintf("disks[%d].fileId", newDisks[iface].index)) != "" {
			if err := SshLogin(s, tx, g.node); err != nil {
				// disk.Update wraps createCustomDisk's error once more.
				return nil, fmt.Errorf("creating custom disk: creating custom disk: %w", err)
			}
		}
	}
	if err := Permit(s, tx, VmUpdateCalls(tx, self, olds, nv)...); err != nil {
		return nil, err
	}
	// UpdateVM applies the configuration (and starts or stops the VM)...
	running := prev != nil && prev.Started
	if !reflect.DeepEqual(engine.Get(olds, "started"), engine.Get(nv, "started")) {
		running = g.started // a changed "started" starts or stops it
	}
	keepIface := ""
	if prev != nil {
		keepIface = prev.DiskInterface
	}
	Place(tx, g)
	guest := tx.State.Guests[self]
	guest.Started = running
	// ... then vmUpdateDiskLocationAndSize refuses to remove or shrink a disk.
	moved := []string{}
	for _, iface := range oldOrder {
		od := oldDisks[iface]
		nd, ok := newDisks[iface]
		if !ok {
			guest.DiskInterface = keepIface // the old disk stays
			return nil, &engine.CommittedError{Err: fmt.Errorf("deletion of disks not supported. Please delete disk by hand. Old interface was %q", iface)}
		}
		if nd.datastore != od.datastore {
			moved = append(moved, fmt.Sprintf("disks[%d].datastoreId", nd.index))
		}
		if nd.size < od.size {
			return nil, &engine.CommittedError{Err: fmt.Errorf("Cannot shrink %s:%s in VM %d, it is not supported!",
				od.datastore, fmt.Sprintf("vm-%d-disk-%d", self, od.index), self)}
		}
	}
	template, _ := engine.Get(nv, "template").(bool)
	causes := rebootCauses(olds, nv, vmRebootKeys)
	if len(moved) > 0 && running && !template {
		// A moved disk needs the VM stopped and started: that is the reboot.
		causes = append(causes, moved...)
	}
	if len(causes) > 0 && running && !template {
		tx.Reboot(f, guest, "proxmox update: "+strings.Join(causes, ", "))
	}
	_, agentTimeout := vmAgent(nv)
	return engine.Merge(guestOutputs(g), VmNetwork(s, tx, nv, guest, agentTimeout)), nil
}

// checkContainerFeatures: with an API token, feature flags other than
// nesting are refused ("only allowed for root@pam", provider docs).
func CheckContainerFeatures(s *engine.Server, verb string, v map[string]any) error {
	token, _, _ := s.ConfigValue("apiToken")
	if token == "" {
		return nil
	}
	features, _ := engine.Get(v, "features").(map[string]any)
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
	if !reflect.DeepEqual(engine.Normalise(engine.Get(old.Inputs, "features")), engine.Normalise(engine.Get(news.Values, "features"))) {
		if err := CheckContainerFeatures(s, "updating", news.Values); err != nil {
			return nil, err
		}
	}
	Place(tx, g)
	// containerUpdate reboots a started container (config "started") when
	// a reboot key changed, unless it is being stopped or is a template.
	template, _ := engine.Get(news.Values, "template").(bool)
	if causes := rebootCauses(old.Inputs, news.Values, containerRebootKeys); len(causes) > 0 && g.started && !template {
		tx.Reboot(s.Faults(), tx.State.Guests[self], "proxmox update: "+strings.Join(causes, ", "))
	}
	return map[string]any{"vmId": float64(g.vmid)}, nil
}

// deleteGuest removes a VM or container; a Talos node goes with its VM, and
// a cluster with its last control plane.
func deleteGuest(_ *engine.Server, tx *engine.Tx, obj *engine.Object) error {
	vmid, _ := strconv.Atoi(obj.ID)
	g := tx.State.Guests[vmid]
	if g == nil {
		return nil
	}
	delete(tx.State.Guests, vmid)
	for _, a := range g.Addresses {
		delete(tx.State.Machines, a)
	}
	for id := range tx.State.Clusters {
		alive := false
		for _, m := range tx.State.Machines {
			alive = alive || (m.ClusterID == id && m.Type == "controlplane")
		}
		if !alive {
			delete(tx.State.Clusters, id)
		}
	}
	return nil
}
