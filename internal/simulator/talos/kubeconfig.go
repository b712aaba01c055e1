package talos

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	stdx509 "crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
	"github.com/siderolabs/crypto/x509"
	"github.com/siderolabs/talos/pkg/machinery/api/common"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Kubeconfig is machined's Kubeconfig (talos v1.12.0 v1alpha1_server.go:
// 1209-1250), what `talosctl kubeconfig` and `talosctl upgrade-k8s` read:
// control planes only; an admin kubeconfig (CN admin, O system:masters,
// signed by the cluster's Kubernetes CA) for the cluster's endpoint, sent
// as one chunk of a .tar.gz holding the file "kubeconfig". The node's
// cluster must be bootstrapped here (the simulation keeps the Kubernetes
// CA with the bootstrapped cluster); a real node generates it from its
// configuration's secrets either way.
func (a *API) Kubeconfig(_ *emptypb.Empty, srv grpc.ServerStreamingServer[common.Data]) error {
	ctx := srv.Context()
	info, target, err := a.streamTarget(ctx, "Kubeconfig", status.Error(codes.InvalidArgument, "one-2-many proxying is not supported for Kubeconfig"))
	if err != nil {
		return err
	}
	_ = a.Store().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "Kubeconfig", Type: TokenTalosAPI, Name: target})
	var raw string
	err = a.Store().View(func(tx *engine.Tx) error {
		nc, err := a.target(tx, info, target)
		if err != nil {
			return err
		}
		if err := checkControlplane(nc.m, "kubeconfig"); err != nil {
			return err
		}
		c := tx.State.Clusters[nc.m.ClusterID]
		if c == nil {
			return status.Errorf(codes.FailedPrecondition, "simulation: cluster %s is not bootstrapped", nc.m.Cluster)
		}
		admin, err := adminKeyPair(c)
		if err != nil {
			return err
		}
		raw = RenderKubeconfig(c.Name, c.Endpoint, []byte(c.K8sCA), admin.CrtPEM, admin.KeyPEM)
		return nil
	})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "kubeconfig", Size: int64(len(raw)), ModTime: time.Now(), Mode: 0o600}); err != nil {
		return err
	}
	if _, err := tw.Write([]byte(raw)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return srv.Send(&common.Data{Bytes: buf.Bytes()})
}

func kubeconfig(_ *engine.Server, tx *engine.Tx, _ string, in engine.Props) (string, map[string]any, error) {
	c, outs, err := IssueKubeconfig(tx, in.Values)
	if err != nil {
		return "", nil, err
	}
	// The ID is the kubeconfig's cluster name (talos_cluster_kubeconfig_resource.go Create).
	return c.Name, outs, nil
}

// IssueKubeconfig is the Kubeconfig resource's read of an admin kubeconfig
// from the control plane at v's node.
func IssueKubeconfig(tx *engine.Tx, v map[string]any) (*engine.TalosCluster, map[string]any, error) {
	node := keyNode.In(v)
	cc := keyClientConfiguration.In(v)
	m, c, err := Bootstrapped(tx, node, cc)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to retrieve kubeconfig: %w", retried(err))
	}
	if m.Type != "controlplane" {
		return nil, nil, fmt.Errorf("failed to retrieve kubeconfig: %w", retried(fmt.Errorf("kubeconfig is served by control planes only; %s is a %s", node, m.Type)))
	}
	admin, err := adminKeyPair(c)
	if err != nil {
		return nil, nil, err
	}
	c.Kubeconfigs++
	raw := RenderKubeconfig(c.Name, c.Endpoint, []byte(c.K8sCA), admin.CrtPEM, admin.KeyPEM)
	return c, map[string]any{
		"kubeconfigRaw": raw,
		"kubernetesClientConfiguration": map[string]any{
			"host": c.Endpoint, "caCertificate": B64([]byte(c.K8sCA)),
			"clientCertificate": B64(admin.CrtPEM), "clientKey": B64(admin.KeyPEM),
		},
	}, nil
}

// renewKubeconfig is the Kubeconfig Update: it fetches a new kubeconfig
// only when the client certificate expires within
// certificateRenewalDuration (default 720h); otherwise the outputs stay.
func renewKubeconfig(_ *engine.Server, tx *engine.Tx, _ string, old *engine.Object, news engine.Props) (map[string]any, error) {
	renewal := 720 * time.Hour
	if d := keyCertificateRenewalDuration.In(news.Values); d != "" {
		var err error
		if renewal, err = time.ParseDuration(d); err != nil {
			return nil, fmt.Errorf("failed to parse certificate renewal duration: %w", err)
		}
	}
	if block, _ := pem.Decode(Unb64(keyKubernetesClientConfigurationClientCertificate.In(old.Outputs))); block != nil {
		if crt, err := stdx509.ParseCertificate(block.Bytes); err == nil && !crt.NotAfter.Before(time.Now().Add(renewal)) {
			return old.Outputs, nil
		}
	}
	_, outs, err := IssueKubeconfig(tx, news.Values)
	return outs, err
}

// adminKeyPair is an admin client certificate of the cluster's Kubernetes
// CA (CN admin, O system:masters), as Talos issues admin kubeconfigs: to
// the provider's Kubeconfig resource and through MachineService.Kubeconfig.
func adminKeyPair(c *engine.TalosCluster) (*x509.KeyPair, error) {
	ca, err := x509.NewCertificateAuthorityFromCertificateAndKey(&x509.PEMEncodedCertificateAndKey{Crt: []byte(c.K8sCA), Key: []byte(c.K8sCAKey)})
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return x509.NewKeyPair(ca, x509.CommonName("admin"), x509.Organization("system:masters"),
		x509.NotAfter(time.Now().Add(365*24*time.Hour)),
		x509.ExtKeyUsage([]stdx509.ExtKeyUsage{stdx509.ExtKeyUsageClientAuth}))
}

// IssueCert signs a key pair with ca as a TLS certificate: the simulated
// servers' (apid's, the kube-apiserver's) certificates.
func IssueCert(ca *x509.CertificateAuthority, opts ...x509.Option) (*tls.Certificate, error) {
	kp, err := x509.NewKeyPair(ca, opts...)
	if err != nil {
		return nil, err
	}
	crt, err := tls.X509KeyPair(kp.CrtPEM, kp.KeyPEM)
	if err != nil {
		return nil, err
	}
	return &crt, nil
}

func RenderKubeconfig(cluster, endpoint string, ca, crt, key []byte) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
users:
- name: admin@%[1]s
  user:
    client-certificate-data: %[4]s
    client-key-data: %[5]s
contexts:
- name: admin@%[1]s
  context:
    cluster: %[1]s
    namespace: default
    user: admin@%[1]s
current-context: admin@%[1]s
`, cluster, endpoint, B64(ca), B64(crt), B64(key))
}
