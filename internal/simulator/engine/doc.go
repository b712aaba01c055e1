// Package engine is the plumbing every simulated provider shares: the
// Pulumi resource provider plugin protocol (pulumirpc.ResourceProvider of
// github.com/pulumi/pulumi/sdk/v3, as the engine of the pinned Pulumi CLI
// drives it: Check, Diff, Create, Read, Update, Delete, Invoke; server.go),
// property values as that protocol carries them (secrets, unknowns;
// props.go), and the simulation directory with its state, world
// description and injected faults, under a file lock shared by every
// plugin process and simulated tool (store.go, state.go, world.go,
// faults.go; node failures and router events: failures.go). A provider is a set of Kinds (resource types) and Invokes
// (functions) that the subject packages define: proxmox, talos, kubeapi,
// clis. See docs/simulation.md.
package engine
