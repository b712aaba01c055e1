// Package kubeapi stands in for Kubernetes: each simulated cluster's
// kube-apiserver (Kubernetes v1.35, as Talos v1.12.0 deploys it; the
// rules cite kubernetes, apimachinery and apiserver sources in
// docs/simulation.md) and the pulumi-kubernetes v4.32.0 provider plugin
// (its DiffConfig and the Helm releases: provider.go).
//
// The simulated Kubernetes API: each bootstrapped cluster's kube-apiserver,
// reached as the real one is from Pulumi's machine, through the same HTTP
// CONNECT proxy as the Talos API (package talos): a CONNECT to a control
// plane's address, or to the cluster endpoint's host (a VIP), on port 6443
// is answered by TLS with a server certificate of the cluster's Kubernetes
// CA, client certificates of that CA required. Behind it, a REST server
// for the requests SDA makes: Nodes (list, get, cordon by patch, delete),
// Pods (list, get, evict, delete), and server-side apply of any object.
// See docs/simulation.md, "The Kubernetes API (kube-apiserver)".
package kubeapi
