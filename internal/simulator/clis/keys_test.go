package clis_test

import (
	"testing"

	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/sda-platform/sda/internal/simulator/clis"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// TestKeysAreInTheProviderSchema: every property the command rules read is
// one pulumi-command v1.1.0 has.
func TestKeysAreInTheProviderSchema(t *testing.T) {
	simtest.CheckKeys(t, "clis", remote.CommandArgs{}, remote.Command{}, local.CommandArgs{}, local.Command{})
}

// TestReplacePathsAreInTheProviderSchema: the input paths that replace a
// command are the command's own.
func TestReplacePathsAreInTheProviderSchema(t *testing.T) {
	roots := map[string]any{clis.TokenRemoteCommand: remote.CommandArgs{}, clis.TokenLocalCommand: local.CommandArgs{}}
	for _, k := range clis.Kinds() {
		simtest.CheckPaths(t, k.Token+" Replace", k.Replace, roots[k.Token])
	}
}
