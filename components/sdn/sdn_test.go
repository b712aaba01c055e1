package sdn

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var prod = VXLAN{Zone: "zprod", VNet: "vprod", VNI: 4242, Peers: []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}, MTU: 1450}

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

func TestScriptsText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   []string
	}{
		{"apply", ApplyScript(prod), []string{
			"set -eu",
			"if pvesh get /cluster/sdn/zones/zprod >/dev/null 2>&1; then",
			"  pvesh set /cluster/sdn/zones/zprod --peers 10.0.0.11,10.0.0.12,10.0.0.13 --mtu 1450",
			"else",
			"  pvesh create /cluster/sdn/zones --zone zprod --type vxlan --peers 10.0.0.11,10.0.0.12,10.0.0.13 --mtu 1450",
			"fi",
			"if pvesh get /cluster/sdn/vnets/vprod >/dev/null 2>&1; then",
			"  pvesh set /cluster/sdn/vnets/vprod --zone zprod --tag 4242",
			"else",
			"  pvesh create /cluster/sdn/vnets --vnet vprod --zone zprod --tag 4242",
			"fi",
			"pvesh set /cluster/sdn",
		}},
		{"delete", DeleteScript(prod), []string{
			"set -eu",
			"if pvesh get /cluster/sdn/vnets/vprod >/dev/null 2>&1; then",
			"  pvesh delete /cluster/sdn/vnets/vprod",
			"fi",
			"if pvesh get /cluster/sdn/zones/zprod >/dev/null 2>&1; then",
			"  pvesh delete /cluster/sdn/zones/zprod",
			"fi",
			"pvesh set /cluster/sdn",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Split(strings.TrimSuffix(tc.script, "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("script:\n%s\nwant:\n%s", tc.script, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// fakePvesh keeps SDN objects as files under $SDN_STATE and logs every
// call; it accepts only the forms the package documents and fails like
// Proxmox does (create of an existing ID, delete of a missing one, a zone
// deleted while a VNet uses it).
const fakePvesh = `#!/bin/sh
echo "$*" >> "$SDN_STATE/log"
s="$SDN_STATE"
case "$*" in
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

func TestScriptsAgainstFakePvesh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	for _, d := range []string{"bin", "state/zones", "state/vnets"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "pvesh"), []byte(fakePvesh), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(script string) {
		t.Helper()
		cmd := exec.Command(sh, "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"), "SDN_STATE="+state)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("script failed: %v\n%s\n%s", err, out, script)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(state, p))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}

	run(ApplyScript(prod))
	if got := read("zones/zprod"); got != "peers=10.0.0.11,10.0.0.12,10.0.0.13 mtu=1450" {
		t.Fatalf("zone after create: %q", got)
	}
	if got := read("vnets/vprod"); got != "zone=zprod tag=4242" {
		t.Fatalf("vnet after create: %q", got)
	}
	// Again (a refresh of Create, or Update with the same values).
	run(ApplyScript(prod))
	// Update: a fourth node and another VNI.
	changed := prod
	changed.Peers = append(append([]string(nil), prod.Peers...), "10.0.0.14")
	changed.VNI = 4343
	run(ApplyScript(changed))
	if got := read("zones/zprod"); got != "peers=10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.14 mtu=1450" {
		t.Fatalf("zone after update: %q", got)
	}
	if got := read("vnets/vprod"); got != "zone=zprod tag=4343" {
		t.Fatalf("vnet after update: %q", got)
	}
	run(DeleteScript(changed))
	if read("zones/zprod") != "" || read("vnets/vprod") != "" {
		t.Fatalf("zone or vnet left after delete")
	}
	// A second delete finds nothing and still succeeds.
	run(DeleteScript(changed))
	if got := strings.Count(read("applied"), "applied"); got != 5 {
		t.Fatalf("SDN applied %d times, want once per script run (5)", got)
	}
	form := regexp.MustCompile(`^(get /cluster/sdn/(zones|vnets)/[a-z0-9]+|` +
		`create /cluster/sdn/zones --zone [a-z0-9]+ --type vxlan --peers [0-9.,]+ --mtu [0-9]+|` +
		`set /cluster/sdn/zones/[a-z0-9]+ --peers [0-9.,]+ --mtu [0-9]+|` +
		`create /cluster/sdn/vnets --vnet [a-z0-9]+ --zone [a-z0-9]+ --tag [0-9]+|` +
		`set /cluster/sdn/vnets/[a-z0-9]+ --zone [a-z0-9]+ --tag [0-9]+|` +
		`set /cluster/sdn|delete /cluster/sdn/(zones|vnets)/[a-z0-9]+)$`)
	for _, line := range strings.Split(read("log"), "\n") {
		if !form.MatchString(line) {
			t.Errorf("pvesh %s: not one of the documented forms", line)
		}
	}
}
