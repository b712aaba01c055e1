package kubeapi

import "github.com/sda-platform/sda/internal/simulator/engine"

// The properties the rules of this package read, each declared once (see
// engine.Key): resource inputs and outputs, function arguments and the
// provider configuration, by their paths in the real provider's schema.
var (
	keyChart                      = engine.StrKey("chart")
	keyCluster                    = engine.AnyKey("cluster")
	keyContext                    = engine.AnyKey("context")
	keyKubeconfig                 = engine.StrKey("kubeconfig")
	keyName                       = engine.StrKey("name")
	keyNamespace                  = engine.StrKey("namespace")
	keyRepositoryOptsRepo         = engine.StrKey("repositoryOpts.repo")
	keyStatusRevision             = engine.IntKey("status.revision")
	keyValuesK8sServiceHost       = engine.StrKey("values.k8sServiceHost")
	keyValuesKubeProxyReplacement = engine.AnyKey("values.kubeProxyReplacement")
	keyVersion                    = engine.StrKey("version")
)
