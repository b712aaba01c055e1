package kubeapi_test

import (
	"testing"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"

	"github.com/sda-platform/sda/internal/simulator/kubeapi"
	"github.com/sda-platform/sda/internal/simulator/simtest"
)

// TestKeysAreInTheProviderSchema: every property the kubernetes provider
// rules read is one pulumi-kubernetes v4.32.0 has.
func TestKeysAreInTheProviderSchema(t *testing.T) {
	simtest.CheckKeys(t, "kubeapi", kubernetes.ProviderArgs{}, helmv3.ReleaseArgs{}, helmv3.Release{})
}

// TestReplacePathsAreInTheProviderSchema: the input paths that replace a
// Helm release are the release's own.
func TestReplacePathsAreInTheProviderSchema(t *testing.T) {
	for _, k := range kubeapi.Kinds() {
		simtest.CheckPaths(t, k.Token+" Replace", k.Replace, helmv3.ReleaseArgs{})
	}
}
