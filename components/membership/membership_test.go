package membership

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stubCLIs writes kubectl and talosctl stand-ins that serve the given nodes
// ("name ip role [down]" lines; ip "-" for a node without an InternalIP; a
// node marked down does not answer talosctl) and log every call to
// calls.log. They refuse
// anything the script is not expected to run, so a changed invocation fails
// the test instead of passing unseen.
func stubCLIs(t *testing.T, nodes string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("nodes", nodes)
	write("kubectl", `#!/bin/sh
d=$(dirname "$0")
echo "kubectl $*" >> "$d/calls.log"
[ "$1" = --kubeconfig ] && [ -s "$2" ] || { echo "no kubeconfig" >&2; exit 2; }
grep -q KUBE "$2" || { echo "wrong kubeconfig" >&2; exit 2; }
shift 3
case "$1 $2" in
"get nodes")
  sel=''
  [ "$3" = -l ] && sel=$4
  case "$sel" in
  '') awk '{print "node/" $1}' "$d/nodes" ;;
  'node-role.kubernetes.io/control-plane') awk '$3=="cp"{print "node/" $1}' "$d/nodes" ;;
  '!node-role.kubernetes.io/control-plane') awk '$3!="cp"{print "node/" $1}' "$d/nodes" ;;
  *) echo "unexpected selector $4" >&2; exit 2 ;;
  esac ;;
"get node") awk -v n="$3" '$1==n && $2!="-"{print $2}' "$d/nodes" | tr -d '\n' ;;
"delete node") awk -v n="$3" '$1!=n' "$d/nodes" > "$d/nodes.new" && mv "$d/nodes.new" "$d/nodes" ;;
*) echo "unexpected kubectl $*" >&2; exit 2 ;;
esac
`)
	write("talosctl", `#!/bin/sh
d=$(dirname "$0")
echo "talosctl $*" >> "$d/calls.log"
[ "$1" = --talosconfig ] && grep -q TALOS "$2" || { echo "no talosconfig" >&2; exit 2; }
case "$7 $8" in
"version "*) awk -v ip="$4" '$2==ip && $4=="down"{down=1} END{exit down}' "$d/nodes" || { echo "connection refused" >&2; exit 1; } ;;
"etcd members") echo "NODE ID HOSTNAME PEER_URLS CLIENT_URLS LEARNER"; awk -v ip="$4" '$3=="cp"{print ip, "id-" $1, $1, "https://" $2 ":2380", "https://" $2 ":2379", "false"}' "$d/nodes" ;;
"etcd remove-member") ;;
"reset "*) ;;
*) echo "unexpected talosctl $*" >&2; exit 2 ;;
esac
`)
	return dir
}

func run(t *testing.T, script, bin string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"),
		TalosconfigEnv+"=TALOS-CONFIG", KubeconfigEnv+"=KUBE-CONFIG")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func calls(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "calls.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// Only what changes the cluster; the listing calls are plumbing.
		if strings.Contains(l, " reset ") || strings.Contains(l, " delete ") || strings.Contains(l, " remove-member ") {
			out = append(out, l[:strings.Index(l, " ")]+" "+l[strings.LastIndex(l, "config ")+7:])
		}
	}
	return out
}

// Scaling prod down from 3+3 to 2+1 removes exactly the undeclared nodes:
// workers before control planes, each reset gracefully then deleted.
func TestScriptRemovesOnlyUndeclaredNodes(t *testing.T) {
	script, err := Script([]Member{
		{Name: "p-cp1", Address: "10.0.0.11", ControlPlane: true},
		{Name: "p-cp2", Address: "10.0.0.12", ControlPlane: true},
		{Name: "p-worker1", Address: "10.0.0.21"},
	})
	if err != nil {
		t.Fatal(err)
	}
	bin := stubCLIs(t, "p-cp1 10.0.0.11 cp\np-cp2 10.0.0.12 cp\np-cp3 10.0.0.13 cp\n"+
		"p-worker1 10.0.0.21 w\np-worker2 10.0.0.22 w\np-worker3 10.0.0.23 w\n")
	out, stderr, err := run(t, script, bin)
	if err != nil {
		t.Fatalf("script failed: %v\n%s", err, stderr)
	}
	if want := "p-cp1\np-cp2\np-worker1\n"; out != want {
		t.Errorf("stdout = %q, want the declared names %q", out, want)
	}
	got := strings.Join(calls(t, bin), "\n")
	want := strings.Join([]string{
		"talosctl -n 10.0.0.22 -e 10.0.0.22 reset --graceful=true --reboot=false --wait=true --timeout=10m",
		"kubectl --request-timeout=30s delete node p-worker2",
		"talosctl -n 10.0.0.23 -e 10.0.0.23 reset --graceful=true --reboot=false --wait=true --timeout=10m",
		"kubectl --request-timeout=30s delete node p-worker3",
		"talosctl -n 10.0.0.13 -e 10.0.0.13 reset --graceful=true --reboot=false --wait=true --timeout=10m",
		"kubectl --request-timeout=30s delete node p-cp3",
	}, "\n")
	if got != want {
		t.Errorf("cluster changes:\n%s\nwant:\n%s", got, want)
	}
	left, _ := os.ReadFile(filepath.Join(bin, "nodes"))
	if want := "p-cp1 10.0.0.11 cp\np-cp2 10.0.0.12 cp\np-worker1 10.0.0.21 w\n"; string(left) != want {
		t.Errorf("nodes left:\n%s\nwant:\n%s", left, want)
	}
}

// Scaling up, or a first deployment, changes nothing in the cluster.
func TestScriptLeavesDeclaredNodesAlone(t *testing.T) {
	script, err := Script([]Member{{Name: "d-cp1", Address: "10.0.0.11", ControlPlane: true}, {Name: "d-worker1"}, {Name: "d-worker2"}})
	if err != nil {
		t.Fatal(err)
	}
	bin := stubCLIs(t, "d-cp1 10.0.0.11 cp\nd-worker1 10.0.0.21 w\n")
	if _, stderr, err := run(t, script, bin); err != nil {
		t.Fatalf("script failed: %v\n%s", err, stderr)
	}
	if c := calls(t, bin); len(c) != 0 {
		t.Errorf("the script changed the cluster: %v", c)
	}
}

// A node without an InternalIP cannot be reset: the script stops with the
// node's name rather than deleting it blindly.
func TestScriptStopsOnANodeWithoutAddress(t *testing.T) {
	script, _ := Script([]Member{{Name: "d-cp1", Address: "10.0.0.11", ControlPlane: true}})
	bin := stubCLIs(t, "d-cp1 10.0.0.11 cp\nd-worker9 - w\n")
	_, stderr, err := run(t, script, bin)
	if err == nil || !strings.Contains(stderr, "node d-worker9 has no InternalIP") {
		t.Fatalf("want a failure naming d-worker9, got %v: %s", err, stderr)
	}
	if c := calls(t, bin); len(c) != 0 {
		t.Errorf("the script changed the cluster: %v", c)
	}
}

// A leaving node that does not answer cannot leave by itself: a dead
// control plane is removed from etcd by its member ID through a declared
// control plane that answers, before any live one leaves (that order keeps
// quorum), and its Node object is deleted; a dead worker's Node object is
// deleted.
func TestScriptRemovesDeadNodesWithoutTheirHelp(t *testing.T) {
	script, err := Script([]Member{{Name: "p-cp1", Address: "10.0.0.11", ControlPlane: true}})
	if err != nil {
		t.Fatal(err)
	}
	bin := stubCLIs(t, "p-cp1 10.0.0.11 cp\np-cp2 10.0.0.12 cp\np-cp3 10.0.0.13 cp down\np-worker1 10.0.0.21 w down\n")
	if _, stderr, err := run(t, script, bin); err != nil {
		t.Fatalf("script failed: %v\n%s", err, stderr)
	}
	got := strings.Join(calls(t, bin), "\n")
	want := strings.Join([]string{
		"kubectl --request-timeout=30s delete node p-worker1",
		"talosctl -n 10.0.0.11 -e 10.0.0.11 etcd remove-member id-p-cp3",
		"kubectl --request-timeout=30s delete node p-cp3",
		"talosctl -n 10.0.0.12 -e 10.0.0.12 reset --graceful=true --reboot=false --wait=true --timeout=10m",
		"kubectl --request-timeout=30s delete node p-cp2",
	}, "\n")
	if got != want {
		t.Errorf("cluster changes:\n%s\nwant:\n%s", got, want)
	}
}

func TestScriptRefusesBadMembers(t *testing.T) {
	for name, members := range map[string][]Member{
		"none":             nil,
		"no control plane": {{Name: "w1"}},
		"shell in a name":  {{Name: "cp1$(reboot)", ControlPlane: true}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Script(members); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// Names and addresses reach a shell: only DNS labels and IPv4 addresses are
// accepted (a ';' or a newline would end the command), and what is accepted
// is quoted.
func TestScriptRefusesHostileNames(t *testing.T) {
	for _, members := range [][]Member{
		{{Name: "cp1;reboot", Address: "10.0.0.11", ControlPlane: true}},
		{{Name: "cp1", Address: "10.0.0.11", ControlPlane: true}, {Name: "w1\nreboot"}},
		{{Name: "cp1", Address: "10.0.0.11 ; reboot", ControlPlane: true}},
		{{Name: "cp1", Address: "$(reboot)", ControlPlane: true}},
	} {
		if _, err := Script(members); err == nil {
			t.Errorf("%+v was accepted", members)
		}
	}
	script, err := Script([]Member{{Name: "lab-cp1", Address: "10.0.0.11", ControlPlane: true}, {Name: "lab-worker1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"declared=' lab-cp1 lab-worker1 '\n", "for a in '10.0.0.11'; do", "echo 'lab-cp1'\n"} {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
}
