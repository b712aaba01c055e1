// Package spec holds the components' inputs as plain Go values, without
// Pulumi, and what follows from them before anything is deployed: the
// argument checks (each error names the Args field, the value and the
// fix), the router's files (routerfiles.Spec) and the Talos patches'
// view of the cluster (talospatch.Cluster).
//
// Each component's Args are its spec plus the Pulumi values that wire it
// to other resources (a bridge output, a secret key, resources to wait
// for): RouterLXCArgs is Router plus InternalBridge and SSH.PrivateKey,
// TalosClusterArgs is Cluster plus the bridges and what the applies wait
// for, InternalNetworkArgs is InternalNetwork plus the SSH key,
// OverlayNetworkArgs is Overlay plus the cluster's outputs. A component
// turns its Args into its spec first and works from the spec, so a
// program that builds a spec (SDA's stacks do, from their configuration,
// in stacks/inputs) gets exactly what the component deploys: `sda render`
// renders the router's files and the machine configurations from the same
// spec and the same functions.
//
// The nested types (RouterHost, Node, …) have the same fields as their
// Args counterparts, so a Go conversion turns one into the other.
package spec
