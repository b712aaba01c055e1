package config

import (
	"strings"
	"testing"
)

func TestProviderConfigRules(t *testing.T) {
	base := map[string]string{"proxmoxve:endpoint": "https://pve:8006/", "proxmoxve:apiToken": "root@pam!sda=x", "sda:sshPrivateKey": "KEY"}
	for _, tc := range []struct {
		name  string
		set   map[string]string
		env   map[string]string
		want  []string // keys of the problems
		value string
	}{
		{"complete", nil, nil, nil, ""},
		{"token without SSH key or agent", map[string]string{"sda:sshPrivateKey": ""}, nil, []string{"sda:sshPrivateKey"}, ""},
		{"token from the environment without SSH", map[string]string{"proxmoxve:apiToken": "", "sda:sshPrivateKey": ""},
			map[string]string{"PROXMOX_VE_API_TOKEN": "t"}, []string{"sda:sshPrivateKey"}, ""},
		{"agent instead of a key", map[string]string{"sda:sshPrivateKey": ""}, map[string]string{"SSH_AUTH_SOCK": "/run/agent"}, nil, ""},
		{"provider's own ssh block", map[string]string{"proxmoxve:ssh": `{"username":"root","privateKey":"SECRET"}`}, nil,
			[]string{"proxmoxve:ssh"}, "(set)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := map[string]string{}
			for k, v := range base {
				values[k] = v
			}
			for k, v := range tc.set {
				values[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := values[k]; return v, ok }
			getenv := func(k string) string { return tc.env[k] }
			got := CheckProviderConfig(lookup, getenv)
			var keys []string
			for _, p := range got {
				keys = append(keys, p.Key)
				if strings.Contains(p.Value, "SECRET") {
					t.Errorf("%s echoes a secret: %q", p.Key, p.Value)
				}
			}
			if strings.Join(keys, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("problems %v, want %v", got, tc.want)
			}
			if tc.value != "" && got[0].Value != tc.value {
				t.Errorf("value %q, want %q", got[0].Value, tc.value)
			}
		})
	}
}
