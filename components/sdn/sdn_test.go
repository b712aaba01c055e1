package sdn

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var prod = VXLAN{Zone: "zprod", VNet: "vprod", VNI: 4242, Peers: []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, MTU: 1450,
	Nodes: []string{"pve1", "pve2", "pve3"}}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*VXLAN)
		want string // substring of the error; "" means valid
	}{
		{"valid", func(*VXLAN) {}, ""},
		{"zone with a dash", func(x *VXLAN) { x.Zone = "z-prod" }, `zone "z-prod" is not an SDN ID`},
		{"vnet too long", func(x *VXLAN) { x.VNet = "vnet12345" }, `vnet "vnet12345" is not an SDN ID`},
		{"vni zero", func(x *VXLAN) { x.VNI = 0 }, "vni 0 is outside"},
		{"vni too big", func(x *VXLAN) { x.VNI = 1 << 24 }, "vni 16777216 is outside"},
		{"no peers", func(x *VXLAN) { x.Peers = nil }, "no peers"},
		{"peer with shell", func(x *VXLAN) { x.Peers = []string{"10.0.0.1;reboot"} }, `peer "10.0.0.1;reboot" is not an IPv4 address`},
		{"ipv6 peer", func(x *VXLAN) { x.Peers = []string{"fd00::1"} }, `peer "fd00::1" is not an IPv4 address`},
		{"duplicate peer", func(x *VXLAN) { x.Peers = []string{"10.0.0.1", "10.0.0.1"} }, "peer 10.0.0.1 is listed twice"},
		{"mtu too small", func(x *VXLAN) { x.MTU = 1000 }, "mtu 1000 is outside"},
		{"no nodes", func(x *VXLAN) { x.Nodes = nil }, "no nodes"},
		{"node with shell", func(x *VXLAN) { x.Nodes = []string{"pve1'; reboot; '"} }, `node "pve1'; reboot; '" is not a Proxmox node name`},
		{"node with a slash", func(x *VXLAN) { x.Nodes = []string{"pve1/../x"} }, `node "pve1/../x" is not a Proxmox node name`},
		{"duplicate node", func(x *VXLAN) { x.Nodes = []string{"pve1", "pve1"} }, "node pve1 is listed twice"},
		{"negative timeout", func(x *VXLAN) { x.ReadyTimeout = -1 }, "ready timeout -1 s is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := prod
			x.Peers = append([]string(nil), prod.Peers...)
			tc.edit(&x)
			err := x.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestScriptsText checks the order of the steps and that every value
// enters quoted: the refusal before the first edit, the apply before the
// wait, the wait over every node for the timeout.
func TestScriptsText(t *testing.T) {
	inOrder := func(t *testing.T, script string, want ...string) {
		t.Helper()
		rest := script
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Fatalf("script lacks %q after the previous step:\n%s", w, script)
			}
			rest = rest[i+len(w):]
		}
	}
	refusal := []string{
		"set -eu\n",
		"zone='zprod'\n",
		"vnet='vprod'\n",
		"pending_zones=$(pvesh get /cluster/sdn/zones --pending 1 --output-format json)\n",
		"pending_vnets=$(pvesh get /cluster/sdn/vnets --pending 1 --output-format json)\n",
		`foreign=$(perl -e "$foreign_pl" "$zone" "$vnet" "$pending_zones" "$pending_vnets")` + "\n",
		`if [ -n "$foreign" ]; then`,
		"exit 1\nfi\n",
	}
	t.Run("apply", func(t *testing.T) {
		s := ApplyScript(prod)
		inOrder(t, s, append(refusal,
			"peers='10.0.0.11,10.0.0.12,10.0.0.13'\n", "mtu='1450'\n", "tag='4242'\n",
			`  pvesh set "/cluster/sdn/zones/$zone" --peers "$peers" --mtu "$mtu"`,
			`  pvesh create /cluster/sdn/zones --zone "$zone" --type vxlan --peers "$peers" --mtu "$mtu"`,
			`  pvesh set "/cluster/sdn/vnets/$vnet" --zone "$zone" --tag "$tag"`,
			`  pvesh create /cluster/sdn/vnets --vnet "$vnet" --zone "$zone" --tag "$tag"`,
			"\npvesh set /cluster/sdn\n",
			"  for node in 'pve1' 'pve2' 'pve3'; do\n",
			`pvesh get "/nodes/$node/sdn/zones/$zone/content" --output-format json`,
			`if [ "$checks" -ge 31 ]; then`, // 60 s at one check every 2 s, and the first
			"sleep 2\n", "done\n")...)
		if strings.Count(s, "pvesh set /cluster/sdn\n") != 1 {
			t.Errorf("apply applies SDN more than once:\n%s", s)
		}
		short := prod
		short.ReadyTimeout = 10
		inOrder(t, ApplyScript(short), `if [ "$checks" -ge 6 ]; then`, "not available 10 s after")
	})
	t.Run("delete", func(t *testing.T) {
		s := DeleteScript(prod)
		inOrder(t, s, append(refusal,
			`  pvesh delete "/cluster/sdn/vnets/$vnet"`,
			`  pvesh delete "/cluster/sdn/zones/$zone"`,
			"\npvesh set /cluster/sdn\n")...)
		if strings.Contains(s, "content") {
			t.Errorf("delete waits for the nodes:\n%s", s)
		}
	})
}

// fakePvesh keeps SDN objects as files under $SDN_STATE and logs every
// call; it accepts only the forms the package documents and fails like
// Proxmox does (create of an existing ID, delete of a missing one, a zone
// deleted while a VNet uses it). The pending listings print
// $SDN_STATE/pending-zones and pending-vnets ([] when absent). A node's
// zone content lists every VNet "available", but "pending" while the
// file not-ready.<node> holds a count above 0, which each call lowers.
const fakePvesh = `#!/bin/sh
echo "$*" >> "$SDN_STATE/log"
s="$SDN_STATE"
case "$*" in
"get /cluster/sdn/zones --pending 1 --output-format json") cat "$s/pending-zones" 2>/dev/null || echo '[]' ;;
"get /cluster/sdn/vnets --pending 1 --output-format json") cat "$s/pending-vnets" 2>/dev/null || echo '[]' ;;
"get /nodes/"*"/sdn/zones/"*"/content --output-format json")
  node=$(echo "$2" | cut -d/ -f3)
  st=available
  n=$(cat "$s/not-ready.$node" 2>/dev/null || echo 0)
  if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$s/not-ready.$node"; st=pending; fi
  printf '['; sep=
  for f in "$s"/vnets/*; do
    test -f "$f" || continue
    printf '%s{"vnet":"%s","status":"%s"}' "$sep" "${f##*/}" "$st"; sep=,
  done
  echo ']' ;;
"get /cluster/sdn/zones/"*) test -f "$s/zones/${2##*/}" ;;
"get /cluster/sdn/vnets/"*) test -f "$s/vnets/${2##*/}" ;;
"create /cluster/sdn/zones --zone "*" --type vxlan --peers "*" --mtu "*)
  test ! -f "$s/zones/$4" || { echo "zone $4 already defined" >&2; exit 1; }
  echo "peers=$8 mtu=${10}" > "$s/zones/$4" ;;
"set /cluster/sdn/zones/"*" --peers "*" --mtu "*)
  test -f "$s/zones/${2##*/}" || exit 1
  echo "peers=$4 mtu=$6" > "$s/zones/${2##*/}" ;;
"create /cluster/sdn/vnets --vnet "*" --zone "*" --tag "*)
  test ! -f "$s/vnets/$4" || { echo "vnet $4 already defined" >&2; exit 1; }
  test -f "$s/zones/$6" || exit 1
  echo "zone=$6 tag=$8" > "$s/vnets/$4" ;;
"set /cluster/sdn/vnets/"*" --zone "*" --tag "*)
  test -f "$s/vnets/${2##*/}" || exit 1
  echo "zone=$4 tag=$6" > "$s/vnets/${2##*/}" ;;
"set /cluster/sdn") echo applied >> "$s/applied" ;;
"delete /cluster/sdn/vnets/"*) rm "$s/vnets/${2##*/}" ;;
"delete /cluster/sdn/zones/"*)
  if grep -q "zone=${2##*/} " "$s"/vnets/* 2>/dev/null; then echo "vnets exist" >&2; exit 1; fi
  rm "$s/zones/${2##*/}" ;;
*) echo "unexpected: pvesh $*" >&2; exit 2 ;;
esac
`

// fakeEnv is a directory with the fake pvesh on PATH and its state.
type fakeEnv struct {
	t     *testing.T
	dir   string
	state string
}

func newFakeEnv(t *testing.T) *fakeEnv {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("no perl (every Proxmox node has it)")
	}
	dir := t.TempDir()
	for _, d := range []string{"bin", "state/zones", "state/vnets"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "pvesh"), []byte(fakePvesh), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fakeEnv{t: t, dir: dir, state: filepath.Join(dir, "state")}
}

// run runs script and returns its combined output and error.
func (f *fakeEnv) run(script string) (string, error) {
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(f.dir, "bin")+":"+os.Getenv("PATH"), "SDN_STATE="+f.state)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (f *fakeEnv) mustRun(script string) {
	f.t.Helper()
	if out, err := f.run(script); err != nil {
		f.t.Fatalf("script failed: %v\n%s\n%s", err, out, script)
	}
}

func (f *fakeEnv) read(p string) string {
	b, err := os.ReadFile(filepath.Join(f.state, p))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (f *fakeEnv) write(p, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.state, p), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func TestScriptsAgainstFakePvesh(t *testing.T) {
	f := newFakeEnv(t)
	f.mustRun(ApplyScript(prod))
	if got := f.read("zones/zprod"); got != "peers=10.0.0.11,10.0.0.12,10.0.0.13 mtu=1450" {
		t.Fatalf("zone after create: %q", got)
	}
	if got := f.read("vnets/vprod"); got != "zone=zprod tag=4242" {
		t.Fatalf("vnet after create: %q", got)
	}
	// Again (a refresh of Create, or Update with the same values).
	f.mustRun(ApplyScript(prod))
	// Update: a fourth node and another VNI.
	changed := prod
	changed.Peers = append(append([]string(nil), prod.Peers...), "10.0.0.14")
	changed.Nodes = append(append([]string(nil), prod.Nodes...), "pve4")
	changed.VNI = 4343
	f.mustRun(ApplyScript(changed))
	if got := f.read("zones/zprod"); got != "peers=10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.14 mtu=1450" {
		t.Fatalf("zone after update: %q", got)
	}
	if got := f.read("vnets/vprod"); got != "zone=zprod tag=4343" {
		t.Fatalf("vnet after update: %q", got)
	}
	if got := strings.Count(f.read("log"), "/nodes/pve4/sdn/zones/zprod/content"); got != 1 {
		t.Errorf("the update asked pve4 for the VNet %d times, want once", got)
	}
	f.mustRun(DeleteScript(changed))
	if f.read("zones/zprod") != "" || f.read("vnets/vprod") != "" {
		t.Fatalf("zone or vnet left after delete")
	}
	// A second delete finds nothing and still succeeds.
	f.mustRun(DeleteScript(changed))
	if got := strings.Count(f.read("applied"), "applied"); got != 5 {
		t.Fatalf("SDN applied %d times, want once per script run (5)", got)
	}
	form := regexp.MustCompile(`^(get /cluster/sdn/(zones|vnets)/[a-z0-9]+|` +
		`get /cluster/sdn/(zones|vnets) --pending 1 --output-format json|` +
		`create /cluster/sdn/zones --zone [a-z0-9]+ --type vxlan --peers [0-9.,]+ --mtu [0-9]+|` +
		`set /cluster/sdn/zones/[a-z0-9]+ --peers [0-9.,]+ --mtu [0-9]+|` +
		`create /cluster/sdn/vnets --vnet [a-z0-9]+ --zone [a-z0-9]+ --tag [0-9]+|` +
		`set /cluster/sdn/vnets/[a-z0-9]+ --zone [a-z0-9]+ --tag [0-9]+|` +
		`get /nodes/[a-z0-9-]+/sdn/zones/[a-z0-9]+/content --output-format json|` +
		`set /cluster/sdn|delete /cluster/sdn/(zones|vnets)/[a-z0-9]+)$`)
	for _, line := range strings.Split(f.read("log"), "\n") {
		if !form.MatchString(line) {
			t.Errorf("pvesh %s: not one of the documented forms", line)
		}
	}
}

// Someone else's pending edit stops both scripts before they edit
// anything; SDA's own pending zone or VNet (a run that stopped before the
// apply) does not.
func TestScriptsRefuseForeignPendingEdits(t *testing.T) {
	for _, tc := range []struct {
		name, zones, vnets string
		want               []string // in the output; nil: the script succeeds
	}{
		{"a foreign new zone", `[{"zone":"zother","type":"simple","state":"new","pending":{}}]`, `[]`,
			[]string{"zone zother: new"}},
		{"a foreign deleted VNet", `[]`, `[{"vnet":"vold","type":"vnet","zone":"zother","tag":9,"state":"deleted","pending":{}}]`,
			[]string{"vnet vold (zone zother): deleted"}},
		{"a foreign VNet in SDA's zone", `[]`, `[{"vnet":"vextra","type":"vnet","state":"new","pending":{"zone":"zprod","tag":9}}]`,
			[]string{"vnet vextra (zone zprod): new"}},
		{"both, each named", `[{"zone":"za","type":"vxlan","peers":"10.0.0.1","state":"changed","pending":{"mtu":1400}}]`,
			`[{"vnet":"vb","type":"vnet","state":"new","pending":{"zone":"za","tag":3}}]`,
			[]string{"zone za: changed", "vnet vb (zone za): new"}},
		{"SDA's own pending zone and VNet", `[{"zone":"zprod","type":"vxlan","state":"new","pending":{"peers":"10.0.0.11"}}]`,
			`[{"vnet":"vprod","type":"vnet","state":"new","pending":{"zone":"zprod","tag":4242}}]`, nil},
		{"applied foreign objects are not pending", `[{"zone":"zother","type":"vxlan","peers":"10.0.0.1"}]`,
			`[{"vnet":"vother","type":"vnet","zone":"zother","tag":5}]`, nil},
	} {
		for _, script := range []struct{ name, text, doing string }{
			{"apply", ApplyScript(prod), "changing"}, {"delete", DeleteScript(prod), "removing"},
		} {
			t.Run(tc.name+"/"+script.name, func(t *testing.T) {
				f := newFakeEnv(t)
				f.write("pending-zones", tc.zones)
				f.write("pending-vnets", tc.vnets)
				out, err := f.run(script.text)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("script failed: %v\n%s", err, out)
					}
					return
				}
				if err == nil {
					t.Fatalf("script succeeded with a foreign pending edit:\n%s", out)
				}
				for _, w := range append(tc.want, "not "+script.doing+" SDN zone zprod and VNet vprod", "Datacenter > SDN") {
					if !strings.Contains(out, w) {
						t.Errorf("output lacks %q:\n%s", w, out)
					}
				}
				for _, line := range strings.Split(f.read("log"), "\n") {
					if !strings.HasPrefix(line, "get /cluster/sdn/") || !strings.HasSuffix(line, "--pending 1 --output-format json") {
						t.Errorf("pvesh %s ran after the refusal was due", line)
					}
				}
			})
		}
	}
}

// The apply waits until every node has the VNet and fails naming those
// that do not.
func TestApplyWaitsForEveryNode(t *testing.T) {
	t.Run("a node late by one check", func(t *testing.T) {
		f := newFakeEnv(t)
		f.write("not-ready.pve2", "1")
		x := prod
		x.ReadyTimeout = 2
		f.mustRun(ApplyScript(x))
		if got := strings.Count(f.read("log"), "/nodes/pve2/sdn/zones/zprod/content"); got != 2 {
			t.Errorf("pve2 asked %d times, want twice", got)
		}
	})
	t.Run("a node that never has it", func(t *testing.T) {
		f := newFakeEnv(t)
		f.write("not-ready.pve3", "100")
		x := prod
		x.ReadyTimeout = 1
		out, err := f.run(ApplyScript(x))
		if err == nil {
			t.Fatalf("apply succeeded without the VNet on pve3:\n%s", out)
		}
		if !strings.Contains(out, "SDN VNet vprod is not available 1 s after applying SDN on:\n  pve3: pending\n") {
			t.Errorf("output does not name pve3 (and only it):\n%s", out)
		}
		if strings.Contains(out, "pve1:") || strings.Contains(out, "pve2:") {
			t.Errorf("output names a node that has the VNet:\n%s", out)
		}
	})
}
