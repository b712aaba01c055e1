package tests

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/crypto/ssh"

	"github.com/sda-platform/sda/components/talospatch"
	"github.com/sda-platform/sda/config"
)

const (
	project = "sda"
	// repoRoot holds the test copies of Pulumi.yaml and the shipped stack
	// files: the tests' expected data, apart from the stack files users edit.
	repoRoot = "../testdata/stacks"
)

// registered is one RegisterResource call as the engine would receive it.
type registered struct {
	Type, Name, URN, Parent string
	Custom                  bool
	Protect                 bool
	Inputs                  resource.PropertyMap
	Deps                    []string
	SecretOutputs           []string
	Provider                string
	// Aliases are the URNs the resource was registered under before.
	Aliases []string
}

// mocks stands in for the providers. Outputs are the inputs plus what the
// real provider computes (IDs, generated secrets, configurations), shaped
// like the real schema so the components' output plumbing is exercised.
type mocks struct {
	stack string
	mu    sync.Mutex
	res   []registered
	calls []pulumi.MockCallArgs
}

func (m *mocks) urn(parent, typ, name string) string {
	parentType := tokens.Type("")
	if p := resource.URN(parent); p != "" && p.QualifiedType() != resource.RootStackType {
		parentType = p.QualifiedType()
	}
	return string(resource.NewURN(tokens.QName(m.stack), tokens.PackageName(project), parentType, tokens.Type(typ), name))
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	rpc := args.RegisterRPC
	r := registered{
		Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Inputs: args.Inputs,
		Parent: rpc.GetParent(), Deps: rpc.GetDependencies(), Protect: rpc.GetProtect(),
		SecretOutputs: rpc.GetAdditionalSecretOutputs(), Provider: args.Provider,
		Aliases: rpc.GetAliasURNs(),
	}
	for _, a := range rpc.GetAliases() {
		if u := a.GetUrn(); u != "" {
			r.Aliases = append(r.Aliases, u)
		} else if spec := a.GetSpec(); spec != nil {
			// An alias spec names what differs from the resource itself
			// (name, type, parent); the engine resolves it to a URN the
			// same way (other stacks and projects are not modelled here).
			name, typ, parent := r.Name, r.Type, r.Parent
			if spec.GetName() != "" {
				name = spec.GetName()
			}
			if spec.GetType() != "" {
				typ = spec.GetType()
			}
			if spec.GetNoParent() {
				parent = ""
			} else if p := spec.GetParentUrn(); p != "" {
				parent = p
			}
			r.Aliases = append(r.Aliases, m.urn(parent, typ, name))
		}
	}
	r.URN = m.urn(r.Parent, r.Type, r.Name)
	m.mu.Lock()
	m.res = append(m.res, r)
	m.mu.Unlock()

	state := args.Inputs.Copy()
	id := args.Name + "-id"
	str := func(k string) string {
		if v, ok := args.Inputs[resource.PropertyKey(k)]; ok && v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	switch args.TypeToken {
	case "talos:machine/secrets:Secrets":
		state["machineSecrets"] = resource.NewProperty(resource.PropertyMap{
			"cluster": resource.NewProperty(resource.PropertyMap{"id": resource.NewProperty("cid"), "secret": resource.NewProperty("csecret")}),
		})
		state["clientConfiguration"] = resource.NewProperty(resource.PropertyMap{
			"caCertificate":     resource.NewProperty("ca-cert"),
			"clientCertificate": resource.NewProperty("client-cert"),
			"clientKey":         resource.NewProperty("client-key"),
		})
	case "talos:imageFactory/schematic:Schematic":
		sid, err := talospatch.SchematicID(str("schematic"))
		if err != nil {
			return "", nil, err
		}
		id = sid
	case "proxmoxve:Download/file:File":
		id = fmt.Sprintf("%s:%s/%s", str("datastoreId"), str("contentType"), str("fileName"))
		if str("fileName") == "" {
			id = fmt.Sprintf("%s:%s/%s", str("datastoreId"), str("contentType"), args.Name)
		}
	case "talos:machine/configurationApply:ConfigurationApply":
		state["machineConfiguration"] = resource.NewProperty(str("machineConfigurationInput") + "\n# patched for " + str("node"))
	case "talos:cluster/kubeconfig:Kubeconfig":
		state["kubeconfigRaw"] = resource.NewProperty("apiVersion: v1\nkind: Config\n# from " + str("node"))
	case "kubernetes:helm.sh/v3:Release":
		state["status"] = resource.NewProperty(resource.PropertyMap{"status": resource.NewProperty("deployed")})
	}
	return id, state, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.calls = append(m.calls, args)
	m.mu.Unlock()
	out := args.Args.Copy()
	switch args.Token {
	case "talos:machine/getConfiguration:getConfiguration":
		out["machineConfiguration"] = resource.NewProperty("version: v1alpha1\nmachine:\n  type: " + args.Args["machineType"].StringValue() + "\n")
	case "talos:client/getConfiguration:getConfiguration":
		out["talosConfig"] = resource.NewProperty("context: " + args.Args["clusterName"].StringValue() + "\n")
	case "talos:cluster/getHealth:getHealth":
		out["id"] = resource.NewProperty("healthy")
	default:
		return nil, fmt.Errorf("unexpected invoke %s", args.Token)
	}
	return out, nil
}

func (m *mocks) ofType(typ string) []registered {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []registered
	for _, r := range m.res {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func (m *mocks) named(t *testing.T, name string) registered {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.res {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no resource named %q", name)
	return registered{}
}

func (m *mocks) countByType() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := map[string]int{}
	for _, r := range m.res {
		counts[r.Type]++
	}
	return counts
}

func (m *mocks) callsOf(token string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.calls {
		if c.Token == token {
			n++
		}
	}
	return n
}

// run runs program under the mocks as stack.
func run(t *testing.T, stack string, program pulumi.RunFunc) (*mocks, error) {
	t.Helper()
	m := &mocks{stack: stack}
	err := pulumi.RunErr(program, pulumi.WithMocks(project, stack, m))
	return m, err
}

// testHostKey is node's SSH host key in the tests: an ed25519 key derived
// from its name, so every run pins the same keys.
func testHostKey(t *testing.T, node string) string {
	t.Helper()
	seed := sha256.Sum256([]byte("sda test host key " + node))
	k, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed[:]).Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// pinHostKeys pins testHostKey for every node of an sda:proxmox value, as
// `sda trust` would.
func pinHostKeys(t *testing.T, proxmox string) string {
	t.Helper()
	var px map[string]any
	if err := json.Unmarshal([]byte(proxmox), &px); err != nil {
		t.Fatalf("sda:proxmox: %v", err)
	}
	nodes, _ := px["nodes"].([]any)
	for _, n := range nodes {
		node := n.(map[string]any)
		node["sshHostKey"] = testHostKey(t, node["name"].(string))
	}
	raw, _ := json.Marshal(px)
	return string(raw)
}

// setStackConfig hands the program the configuration of a shipped stack file
// plus provider settings, the way the engine does (PULUMI_CONFIG), with
// the credentials marked secret.
func setStackConfig(t *testing.T, stack string, override map[string]string) {
	t.Helper()
	lookup, err := config.StackFiles(repoRoot, stack)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{
		"proxmoxve:endpoint": "https://pve.example.test:8006/",
		"proxmoxve:apiToken": "root@pam!sda=00000000-1111-2222-3333-444444444444",
		"sda:sshPrivateKey":  "-----BEGIN OPENSSH PRIVATE KEY-----\nTESTKEY\n-----END OPENSSH PRIVATE KEY-----",
	}
	for _, s := range config.Sections {
		if v, ok := lookup(config.Namespace + ":" + s); ok {
			values[config.Namespace+":"+s] = v
		}
	}
	values[config.Namespace+":proxmox"] = pinHostKeys(t, values[config.Namespace+":proxmox"])
	for k, v := range override {
		if v == "" {
			delete(values, k)
		} else {
			values[k] = v
		}
	}
	raw, _ := json.Marshal(values)
	t.Setenv(pulumi.EnvConfig, string(raw))
	t.Setenv(pulumi.EnvConfigSecretKeys, `["proxmoxve:apiToken","sda:sshPrivateKey"]`)
	// The program also accepts the provider's own variables; make sure the
	// machine running the tests does not leak any in.
	for _, env := range []string{"PROXMOX_VE_ENDPOINT", "PROXMOX_VE_API_TOKEN", "SSH_AUTH_SOCK"} {
		if _, ok := os.LookupEnv(env); ok {
			t.Setenv(env, "")
		}
	}
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hasPrefixAny(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
