package config

// CheckProviderConfig reports what the providers need before anything is
// created: the Proxmox endpoint and some credential, from stack
// configuration or the provider's environment variables, and an SSH key or
// agent. SSH serves both the router's configuration commands and the Proxmox
// provider, which imports VM disks from the downloaded Talos image over SSH
// (with an API token it must be told the SSH user). SDA gives the provider
// its SSH settings (sda:proxmox.sshUser, the key or agent, every node's
// sshHost), so the provider's own proxmoxve:ssh key would be ignored: it is
// refused rather than silently dropped.
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
			Fix: "SSH to the Proxmox hosts is required: the router is configured with `pct exec` over SSH, and the Proxmox provider imports the VMs' disks over SSH: pulumi config set --secret sda:sshPrivateKey < ~/.ssh/id_ed25519, or run an ssh-agent (SSH_AUTH_SOCK)"})
	}
	if v, ok := lookup("proxmoxve:ssh"); ok && v != "" {
		// The value may hold a key or password: never echo it.
		problems = append(problems, Problem{Key: "proxmoxve:ssh", Value: "(set)",
			Fix: "SDA sets the Proxmox provider's SSH from sda:proxmox.sshUser, sda:sshPrivateKey (or the ssh-agent) and sda:proxmox.nodes[].sshHost, the settings the router's commands use: move the user, key and node addresses there and run `pulumi config rm proxmoxve:ssh`"})
	}
	return problems
}
