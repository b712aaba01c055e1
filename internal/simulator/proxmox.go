package simulator

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Type tokens of the proxmoxve resources the simulation knows.
const (
	TokenBridge    = "proxmoxve:Network/networkBridge:NetworkBridge"
	TokenDownload  = "proxmoxve:Download/file:File"
	TokenVM        = "proxmoxve:VM/virtualMachine:VirtualMachine"
	TokenContainer = "proxmoxve:CT/container:Container"
)

// checkProxmoxConfig checks the provider configuration, falling back to the
// environment variables the real provider reads.
func checkProxmoxConfig(p Props) error {
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

func proxmoxKinds() []*kind {
	return []*kind{
		{
			token:   TokenBridge,
			replace: []string{"nodeName", "name"},
			create:  createBridge,
			delete:  deleteBridge,
		},
		{
			token: TokenDownload,
			// Every argument of a download forces a new file, as in the provider.
			replace: []string{"nodeName", "datastoreId", "contentType", "url", "fileName",
				"checksum", "checksumAlgorithm", "decompressionAlgorithm"},
			create: createDownload,
			delete: deleteDownload,
		},
		{
			token:   TokenVM,
			replace: []string{"nodeName", "vmId", "disks[*].fileId", "disks[*].interface", "clone"},
			create:  createVM,
			update:  updateVM,
			delete:  deleteGuest,
		},
		{
			token: TokenContainer,
			replace: []string{"nodeName", "vmId", "operatingSystem", "unprivileged", "disk.datastoreId",
				"clone", "initialization.userAccount"},
			create: createContainer,
			update: updateContainer,
			delete: deleteGuest,
		},
	}
}

func (tx *Tx) node(name string) (*WorldNode, error) {
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

func (tx *Tx) datastore(node, id, content string) error {
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

func (tx *Tx) shared(datastore string) bool {
	for _, d := range tx.World.Datastores {
		if d.ID == datastore {
			return d.Shared
		}
	}
	return false
}

func (tx *Tx) bridgeExists(node, name string) bool {
	return slices.Contains(tx.World.Bridges, name) || tx.State.Bridges[node+"/"+name]
}

// fileKey is where a file lives: shared stores have one copy for all nodes.
func (tx *Tx) fileKey(node, id string) string {
	ds, _, _ := strings.Cut(id, ":")
	if tx.shared(ds) {
		node = "*"
	}
	return node + "/" + id
}

func createBridge(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	node, name := str(in.Values, "nodeName"), str(in.Values, "name")
	if _, err := tx.node(node); err != nil {
		return "", nil, err
	}
	if !strings.HasPrefix(name, "vmbr") {
		return "", nil, fmt.Errorf("bridge name %q: Proxmox bridges are named vmbrN", name)
	}
	if tx.bridgeExists(node, name) {
		return "", nil, fmt.Errorf("interface %q already exists on node %q", name, node)
	}
	tx.State.Bridges[node+"/"+name] = true
	return node + ":" + name, nil, nil
}

func deleteBridge(_ *Server, tx *Tx, obj *Object) error {
	node, name := str(obj.Inputs, "nodeName"), str(obj.Inputs, "name")
	for _, g := range tx.State.Guests {
		if g.Node == node && slices.Contains(g.Bridges, name) {
			return fmt.Errorf("bridge %s on %s is still used by %s %d (%s)", name, node, g.Kind, g.VMID, g.Name)
		}
	}
	delete(tx.State.Bridges, node+"/"+name)
	return nil
}

// Proxmox accepts these compressions when it downloads a file.
var decompressions = []string{"gz", "lzo", "zst", "bz2"}

func createDownload(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	v := in.Values
	node, ds, content, url := str(v, "nodeName"), str(v, "datastoreId"), str(v, "contentType"), str(v, "url")
	if _, err := tx.node(node); err != nil {
		return "", nil, err
	}
	if content != "iso" && content != "vztmpl" && content != "import" {
		return "", nil, fmt.Errorf("contentType %q: a download is an iso, vztmpl or import file", content)
	}
	if err := tx.datastore(node, ds, content); err != nil {
		return "", nil, err
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return "", nil, fmt.Errorf("url %q: Proxmox downloads only http(s) URLs", url)
	}
	fileName := str(v, "fileName")
	if fileName == "" {
		fileName = path.Base(strings.SplitN(url, "?", 2)[0])
	}
	if d := str(v, "decompressionAlgorithm"); d != "" && !slices.Contains(decompressions, d) {
		return "", nil, fmt.Errorf("decompressionAlgorithm %q: Proxmox decompresses only %s", d, strings.Join(decompressions, ", "))
	}
	switch content {
	case "iso":
		if !strings.HasSuffix(fileName, ".iso") && !strings.HasSuffix(fileName, ".img") {
			return "", nil, fmt.Errorf("file name %q: content type iso needs a name ending in .iso or .img (set fileName)", fileName)
		}
	case "vztmpl":
		ok := false
		for _, ext := range []string{".tar.gz", ".tar.xz", ".tar.zst", ".tgz"} {
			ok = ok || strings.HasSuffix(fileName, ext)
		}
		if !ok {
			return "", nil, fmt.Errorf("file name %q: a container template ends in .tar.gz, .tar.xz or .tar.zst", fileName)
		}
	}
	id := fmt.Sprintf("%s:%s/%s", ds, content, fileName)
	key := tx.fileKey(node, id)
	if _, exists := tx.State.Files[key]; exists {
		if b, _ := get(v, "overwriteUnmanaged").(bool); !b {
			return "", nil, fmt.Errorf("file %s already exists on %s and overwriteUnmanaged is false: refusing to overwrite it", id, node)
		}
	}
	tx.State.Files[key] = &StoredFile{ID: id, Node: node, Datastore: ds, ContentType: content, URL: url}
	return id, map[string]any{"fileName": fileName, "size": float64(len(url) * 1 << 20)}, nil
}

func deleteDownload(_ *Server, tx *Tx, obj *Object) error {
	delete(tx.State.Files, tx.fileKey(str(obj.Inputs, "nodeName"), obj.ID))
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
	addresses []string
	disks     []diskSpec
	template  string // container template file ID
	diskIface string
	started   bool
}

type diskSpec struct {
	datastore, fileID, iface string
}

func vmSpec(v map[string]any) guestSpec {
	g := guestSpec{kind: "qemu", node: str(v, "nodeName"), vmid: num(v, "vmId"), name: str(v, "name"),
		cores: num(v, "cpu.cores"), memory: num(v, "memory.dedicated"), started: true}
	if s, ok := get(v, "started").(bool); ok {
		g.started = s
	}
	if g.cores == 0 {
		g.cores = 1
	}
	if sockets := num(v, "cpu.sockets"); sockets > 1 {
		g.cores *= sockets
	}
	if g.memory == 0 {
		g.memory = 512
	}
	for i := range list(v, "disks") {
		p := fmt.Sprintf("disks[%d]", i)
		d := diskSpec{datastore: str(v, p+".datastoreId"), fileID: str(v, p+".fileId"), iface: str(v, p+".interface")}
		if d.datastore == "" {
			d.datastore = "local-lvm"
		}
		g.disks = append(g.disks, d)
	}
	if len(g.disks) > 0 {
		g.diskIface = strings.TrimRight(g.disks[0].iface, "0123456789")
	}
	g.readNICs(v, "networkDevices")
	if ds := str(v, "initialization.datastoreId"); ds != "" {
		g.disks = append(g.disks, diskSpec{datastore: ds, iface: "ide2"})
	}
	g.addresses = ipConfigAddresses(v)
	return g
}

// readNICs reads the bridges and MACs of a VM's networkDevices or a
// container's networkInterfaces (same fields; Proxmox defaults to vmbr0).
func (g *guestSpec) readNICs(v map[string]any, key string) {
	for i := range list(v, key) {
		p := fmt.Sprintf("%s[%d]", key, i)
		b := str(v, p+".bridge")
		if b == "" {
			b = "vmbr0"
		}
		g.bridges = append(g.bridges, b)
		g.macs = append(g.macs, strings.ToUpper(str(v, p+".macAddress")))
	}
}

func containerSpec(v map[string]any) guestSpec {
	g := guestSpec{kind: "lxc", node: str(v, "nodeName"), vmid: num(v, "vmId"), name: str(v, "initialization.hostname"),
		cores: num(v, "cpu.cores"), memory: num(v, "memory.dedicated"), template: str(v, "operatingSystem.templateFileId"),
		started: true}
	if s, ok := get(v, "started").(bool); ok {
		g.started = s
	}
	if g.cores == 0 {
		g.cores = 1
	}
	if g.memory == 0 {
		g.memory = 512
	}
	ds := str(v, "disk.datastoreId")
	if ds == "" {
		ds = "local"
	}
	g.disks = []diskSpec{{datastore: ds, iface: "rootfs"}}
	g.readNICs(v, "networkInterfaces")
	g.addresses = ipConfigAddresses(v)
	return g
}

func ipConfigAddresses(v map[string]any) []string {
	var out []string
	for i := range list(v, "initialization.ipConfigs") {
		a := str(v, fmt.Sprintf("initialization.ipConfigs[%d].ipv4.address", i))
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
func (tx *Tx) admit(g guestSpec, self int) error {
	node, err := tx.node(g.node)
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
		if err := tx.datastore(node.Name, d.datastore, content); err != nil {
			return fmt.Errorf("%s %d disk %s: %w", g.kind, g.vmid, d.iface, err)
		}
		if d.fileID != "" {
			f, ok := tx.State.Files[tx.fileKey(node.Name, d.fileID)]
			if !ok {
				return fmt.Errorf("%s %d disk %s: file %s does not exist on node %q", g.kind, g.vmid, d.iface, d.fileID, node.Name)
			}
			if f.ContentType != "iso" && f.ContentType != "import" {
				return fmt.Errorf("%s %d disk %s: %s is a %s file, not a disk image", g.kind, g.vmid, d.iface, d.fileID, f.ContentType)
			}
		}
	}
	if g.template != "" {
		f, ok := tx.State.Files[tx.fileKey(node.Name, g.template)]
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
		if !tx.bridgeExists(node.Name, b) {
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

func (tx *Tx) place(g guestSpec) {
	tx.State.Guests[g.vmid] = &Guest{VMID: g.vmid, Kind: g.kind, Node: g.node, Name: g.name, Cores: g.cores,
		MemoryMiB: g.memory, Bridges: g.bridges, MACs: g.macs, Addresses: g.addresses, DiskInterface: g.diskIface,
		Started: g.started}
}

// nextVMID is what Proxmox's /cluster/nextid answers.
func (tx *Tx) nextVMID() int {
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

func createVM(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	g := vmSpec(in.Values)
	if g.vmid == 0 {
		g.vmid = tx.nextVMID()
	}
	for i, m := range g.macs {
		if m == "" {
			g.macs[i] = fmt.Sprintf("BC:24:11:%02X:%02X:%02X", g.vmid>>16&0xff, g.vmid>>8&0xff, i)
		}
	}
	if err := tx.admit(g, -1); err != nil {
		return "", nil, err
	}
	tx.place(g)
	return strconv.Itoa(g.vmid), guestOutputs(g), nil
}

func updateVM(_ *Server, tx *Tx, id string, old *Object, news Props) (map[string]any, error) {
	g := vmSpec(news.Values)
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
	if err := tx.admit(g, self); err != nil {
		return nil, err
	}
	tx.place(g)
	return guestOutputs(g), nil
}

func createContainer(_ *Server, tx *Tx, _ string, in Props) (string, map[string]any, error) {
	g := containerSpec(in.Values)
	if g.vmid == 0 {
		g.vmid = tx.nextVMID()
	}
	if err := tx.admit(g, -1); err != nil {
		return "", nil, err
	}
	tx.place(g)
	return strconv.Itoa(g.vmid), map[string]any{"vmId": float64(g.vmid)}, nil
}

func updateContainer(_ *Server, tx *Tx, id string, _ *Object, news Props) (map[string]any, error) {
	g := containerSpec(news.Values)
	self, _ := strconv.Atoi(id)
	g.vmid = self
	if err := tx.admit(g, self); err != nil {
		return nil, err
	}
	tx.place(g)
	return map[string]any{"vmId": float64(g.vmid)}, nil
}

// deleteGuest removes a VM or container; a Talos node goes with its VM, and
// a cluster with its last control plane.
func deleteGuest(_ *Server, tx *Tx, obj *Object) error {
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
