package talos

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"time"

	"github.com/sda-platform/sda/internal/simulator/engine"
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
	_ = a.St().Log(engine.Call{Time: time.Now(), Provider: "talos-apid", Method: "Kubeconfig", Type: TokenTalosAPI, Name: target})
	var raw string
	err = a.St().View(func(tx *engine.Tx) error {
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
