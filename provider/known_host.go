package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"

	"github.com/sda-platform/sda/components/pluginapi"
	"github.com/sda-platform/sda/grammar"
	"github.com/sda-platform/sda/internal/sshtrust"
)

// KnownHost pins a Proxmox node's SSH host key in $HOME/.ssh/known_hosts
// of the machine that runs Pulumi, the file the Proxmox provider's own SSH
// client (the VM disk import) reads: it has no host-key setting, refuses a
// changed key and trusts an unknown host on first use (bpg v0.69.1
// proxmox/ssh/client.go:470-530). With the pin there first, the provider
// connects only to the node that holds the pinned key. A different key
// already recorded for the host is refused, never overwritten. Deleting the
// resource leaves the line: it is a trust record, and the user's.
type KnownHost struct{}

var (
	_ infer.Annotated                                     = (*KnownHost)(nil)
	_ infer.CustomResource[KnownHostArgs, KnownHostState] = (*KnownHost)(nil)
	_ infer.CustomDiff[KnownHostArgs, KnownHostState]     = (*KnownHost)(nil)
	_ infer.CustomUpdate[KnownHostArgs, KnownHostState]   = (*KnownHost)(nil)
	_ infer.CustomDelete[KnownHostState]                  = (*KnownHost)(nil)
)

// KnownHostArgs are the node's SSH address and its pinned key, and
// KnownHostState adds the file the pin went into (pluginapi, shared with
// the component that registers it).
type (
	KnownHostArgs  = pluginapi.KnownHostArgs
	KnownHostState = pluginapi.KnownHostState
)

func (r *KnownHost) Annotate(a infer.Annotator) {
	a.SetToken("index", "KnownHost")
	a.Describe(r, "A Proxmox node's SSH host key pinned in ~/.ssh/known_hosts of the machine running Pulumi, where the Proxmox provider's disk import checks it.")
}

// sshPort is the inputs' port, 22 when unset.
func sshPort(a KnownHostArgs) int {
	if a.Port == 0 {
		return 22
	}
	return a.Port
}

// pin writes the key unless the file holds it (in preview: checks only).
func pin(in KnownHostArgs, dryRun bool) (KnownHostState, error) {
	key, err := grammar.SSHHostKey(in.HostKey)
	if err != nil {
		return KnownHostState{}, fmt.Errorf("hostKey %v", err)
	}
	file, err := sshtrust.KnownHostsFile()
	if err != nil {
		return KnownHostState{}, err
	}
	if dryRun {
		_, err = sshtrust.CheckKnownHost(file, in.Host, sshPort(in), key)
	} else {
		err = sshtrust.PinKnownHost(file, in.Host, sshPort(in), key)
	}
	return KnownHostState{KnownHostArgs: in, File: file}, err
}

func (KnownHost) Create(_ context.Context, req infer.CreateRequest[KnownHostArgs]) (infer.CreateResponse[KnownHostState], error) {
	state, err := pin(req.Inputs, req.DryRun)
	if err != nil {
		return infer.CreateResponse[KnownHostState]{}, err
	}
	return infer.CreateResponse[KnownHostState]{ID: net.JoinHostPort(req.Inputs.Host, strconv.Itoa(sshPort(req.Inputs))), Output: state}, nil
}

func (KnownHost) Update(_ context.Context, req infer.UpdateRequest[KnownHostArgs, KnownHostState]) (infer.UpdateResponse[KnownHostState], error) {
	state, err := pin(req.Inputs, req.DryRun)
	if err != nil {
		return infer.UpdateResponse[KnownHostState]{}, err
	}
	return infer.UpdateResponse[KnownHostState]{Output: state}, nil
}

// Diff replaces on another host or port and updates on another key; it
// also reads the file, so a pin someone removed is written again.
func (KnownHost) Diff(_ context.Context, req infer.DiffRequest[KnownHostArgs, KnownHostState]) (infer.DiffResponse, error) {
	diff := map[string]p.PropertyDiff{}
	if req.Inputs.Host != req.State.Host {
		diff["host"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	if sshPort(req.Inputs) != sshPort(req.State.KnownHostArgs) {
		diff["port"] = p.PropertyDiff{Kind: p.UpdateReplace, InputDiff: true}
	}
	if req.Inputs.HostKey != req.State.HostKey {
		diff["hostKey"] = p.PropertyDiff{Kind: p.Update, InputDiff: true}
	} else if key, err := grammar.SSHHostKey(req.Inputs.HostKey); err == nil {
		if file, err := sshtrust.KnownHostsFile(); err == nil {
			if state, _ := sshtrust.CheckKnownHost(file, req.Inputs.Host, sshPort(req.Inputs), key); state != sshtrust.HostPinned {
				diff["hostKey"] = p.PropertyDiff{Kind: p.Update}
			}
		}
	}
	return infer.DiffResponse{HasChanges: len(diff) > 0, DetailedDiff: diff}, nil
}

func (KnownHost) Delete(context.Context, infer.DeleteRequest[KnownHostState]) (infer.DeleteResponse, error) {
	return infer.DeleteResponse{}, nil
}
