package config

// CheckProviderConfig reports what the providers need before anything is
// created: the Proxmox endpoint and some credential, from stack
// configuration or the provider's environment variables, and an SSH key or
// agent for the router's configuration commands.
func CheckProviderConfig(lookup Lookup, getenv func(string) string) []Problem {
	var problems []Problem
	has := func(key, env string) bool {
		if v, ok := lookup(key); ok && v != "" {
			return true
		}
		return env != "" && getenv(env) != ""
	}
	if !has("proxmoxve:endpoint", "PROXMOX_VE_ENDPOINT") {
		problems = append(problems, Problem{Key: "proxmoxve:endpoint", Value: "",
			Fix: "required: pulumi config set proxmoxve:endpoint https://<proxmox-host>:8006/ (or PROXMOX_VE_ENDPOINT)"})
	}
	if !has("proxmoxve:apiToken", "PROXMOX_VE_API_TOKEN") && !(has("proxmoxve:username", "PROXMOX_VE_USERNAME") && has("proxmoxve:password", "PROXMOX_VE_PASSWORD")) {
		problems = append(problems, Problem{Key: "proxmoxve:apiToken", Value: "",
			Fix: "required: pulumi config set --secret proxmoxve:apiToken '<user>@<realm>!<token-id>=<uuid>' (or PROXMOX_VE_API_TOKEN)"})
	}
	if !has(Namespace+":sshPrivateKey", "SSH_AUTH_SOCK") {
		problems = append(problems, Problem{Key: Namespace + ":sshPrivateKey", Value: "",
			Fix: "the router is configured with `pct exec` over SSH to the Proxmox host: pulumi config set --secret sda:sshPrivateKey < ~/.ssh/id_ed25519, or run an ssh-agent (SSH_AUTH_SOCK)"})
	}
	return problems
}
