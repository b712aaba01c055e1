package tests

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/sda-platform/sda/components"
	"github.com/sda-platform/sda/grammar"
	"github.com/sda-platform/sda/internal/render"
)

// FuzzRouterLXCArgs feeds hostile strings to every RouterLXC argument that
// reaches a shell, dnsmasq, nftables or a URL: the component never panics;
// it either refuses, naming the argument, before registering anything, or
// accepts only values its grammar allows. `go test` runs the seeds below
// and the corpus in testdata/fuzz/FuzzRouterLXCArgs; `go test -fuzz
// FuzzRouterLXCArgs ./tests` explores further.
func FuzzRouterLXCArgs(f *testing.F) {
	ok := []string{"sda.internal", "router", "dev-cp1", "12h", "https", "192.168.1.0/24",
		"https://download.proxmox.com/images/system/debian-12-standard_12.7-1_amd64.tar.zst",
		strings.Repeat("a", 128), "pin"}
	f.Add(ok[0], ok[1], ok[2], ok[3], ok[4], ok[5], ok[6], ok[7], ok[8])
	for i, hostile := range []string{"lab.internal\ndhcp-script=/tmp/x", "r;reboot", "cp1$(id)", "12h\nport=0",
		`x" accept`, "0.0.0.0/0\n", "http://example.test/x.tar.zst", "d41d8cd98f00b204e9800998ecf8427e", "ssh-rsa AAAA\nssh-ed25519 AAAA"} {
		seed := append([]string(nil), ok...)
		seed[i] = hostile
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7], seed[8])
	}
	f.Fuzz(func(t *testing.T, domain, hostname, host0, lease, forward, allowFrom, url, checksum, hostKey string) {
		c, p := devPlan(t)
		spec, err := render.RouterSpec(c, p)
		if err != nil {
			t.Fatal(err)
		}
		args := routerArgs(t, spec)
		args.Domain, args.Hostname, args.Hosts[0].Name, args.DHCPLeaseTime = domain, hostname, host0, lease
		args.Forwards = []components.RouterForwardArgs{{Name: forward, Port: 443, Target: args.Hosts[0].Address, AllowFrom: []string{allowFrom}}}
		args.TemplateURL, args.TemplateChecksum = url, checksum
		if hostKey != "pin" {
			args.SSH.HostKey = hostKey
		}
		m, err := run(t, "unit", func(ctx *pulumi.Context) error {
			_, err := components.NewRouterLXC(ctx, "lab-router", args)
			return err
		})
		if err != nil {
			named := false
			for _, field := range []string{"Domain", "Hostname", "Hosts[0].Name", "DHCPLeaseTime", "Forwards[0]", "TemplateURL", "TemplateChecksum", "SSH.HostKey"} {
				named = named || strings.Contains(err.Error(), field)
			}
			if !named {
				t.Errorf("refusal names no argument: %v", err)
			}
			for _, r := range m.res {
				if r.Type != "pulumi:pulumi:Stack" {
					t.Errorf("registered %s %s before refusing", r.Type, r.Name)
				}
			}
			return
		}
		// Accepted: every value passed its grammar, so none can start a
		// new line in dnsmasq's configuration or end a shell word.
		_, keyErr := grammar.SSHHostKey(args.SSH.HostKey)
		_, sumOK := grammar.ChecksumAlgorithm(checksum)
		if !grammar.Domain(domain) || !grammar.DNSLabel(hostname) || !grammar.DNSLabel(host0) || !grammar.LeaseTime(lease) ||
			!grammar.DNSLabel(forward) || !grammar.TemplateURL(url) || !sumOK || keyErr != nil {
			t.Errorf("accepted values outside the grammar: %q %q %q %q %q %q %q %q", domain, hostname, host0, lease, forward, url, checksum, args.SSH.HostKey)
		}
	})
}
