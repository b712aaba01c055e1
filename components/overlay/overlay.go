// Package overlay holds the pure half of the OverlayNetwork component: the
// Talos machine-config patch each CNI needs and the Cilium Helm values. The
// Pulumi component hands the patch to TalosCluster and installs the release;
// `sda render` applies the same patch offline.
package overlay

// The CNIs OverlayNetwork installs: flannel comes with Talos, Cilium is
// installed with Helm.
const (
	CNIFlannel = "flannel"
	CNICilium  = "cilium"
)

// Cilium chart coordinates.
const (
	CiliumChart     = "cilium"
	CiliumRepo      = "https://helm.cilium.io/"
	CiliumNamespace = "kube-system"
	// KubePrismPort is Talos's node-local Kubernetes API load balancer, on by
	// default since Talos 1.6; Cilium reaches the API through it, so it works
	// before kube-proxy (which it replaces) and without the VIP.
	KubePrismPort = 7445
)

// MachinePatch is the Talos machine-config patch the CNI needs, or "" when
// none is needed (flannel is Talos's built-in default). With Cilium's
// kube-proxy replacement, Talos's kube-proxy is disabled too.
func MachinePatch(cni string, kubeProxyReplacement bool) string {
	if cni != CNICilium {
		return ""
	}
	patch := "cluster:\n  network:\n    cni:\n      name: none\n"
	if kubeProxyReplacement {
		patch += "  proxy:\n    disabled: true\n"
	}
	return patch
}

// CiliumValues are the Helm values Talos documents for Cilium, on an
// internal network of the given MTU. A non-default one (0 and 1500 are
// default) is set as Cilium's MTU: Cilium's tunnel then subtracts its own
// overhead from it.
func CiliumValues(kpr bool, mtu int) map[string]any {
	values := map[string]any{
		"ipam":                 map[string]any{"mode": "kubernetes"},
		"kubeProxyReplacement": kpr,
		"securityContext": map[string]any{
			"capabilities": map[string]any{
				"ciliumAgent": []any{"CHOWN", "KILL", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "SYS_ADMIN",
					"SYS_RESOURCE", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"},
				"cleanCiliumState": []any{"NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"},
			},
		},
		// Talos mounts cgroup v2 itself and forbids Cilium's own mount.
		"cgroup": map[string]any{
			"autoMount": map[string]any{"enabled": false},
			"hostRoot":  "/sys/fs/cgroup",
		},
	}
	if mtu != 0 && mtu != 1500 {
		values["MTU"] = mtu
	}
	if kpr {
		// Without kube-proxy there is no ClusterIP for the API server yet.
		values["k8sServiceHost"] = "localhost"
		values["k8sServicePort"] = KubePrismPort
	}
	return values
}
