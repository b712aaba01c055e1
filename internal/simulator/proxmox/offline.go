package proxmox

import (
	"fmt"

	"github.com/sda-platform/sda/internal/simulator/engine"
)

// nouns name each resource in the provider's errors.
var nouns = map[string]string{
	TokenBridge: "Linux bridge", TokenVLAN: "Linux VLAN", TokenDownload: "file",
	TokenVM: "VM", TokenContainer: "container",
}

// offlineRefusal is the error of a call about a resource on nodes (the
// stored and the new nodeName) when one of them has failed
// (engine.FailNode): Proxmox answers 595 (engine.OfflineError).
func offlineRefusal(tx *engine.Tx, token, verb string, nodes ...string) error {
	for _, n := range nodes {
		if _, down := tx.NodeDown(n); down {
			return fmt.Errorf("error %s %s: %s", verb, nouns[token], engine.OfflineError(n))
		}
	}
	return nil
}

// guardOffline makes every call of k about a resource on a failed node
// fail before it changes anything: the request never reaches the node.
func guardOffline(k *engine.Kind) *engine.Kind {
	create, read, update, del := k.Create, k.Read, k.Update, k.Delete
	k.Create = func(s *engine.Server, tx *engine.Tx, name string, in engine.Props) (string, map[string]any, error) {
		if err := offlineRefusal(tx, k.Token, "creating", keyNodeName.In(in.Values)); err != nil {
			return "", nil, err
		}
		return create(s, tx, name, in)
	}
	k.Read = func(s *engine.Server, tx *engine.Tx, obj *engine.Object) (bool, error) {
		if err := offlineRefusal(tx, k.Token, "reading", keyNodeName.In(obj.Inputs)); err != nil {
			return false, err
		}
		if read == nil {
			return false, nil
		}
		return read(s, tx, obj)
	}
	if update != nil {
		k.Update = func(s *engine.Server, tx *engine.Tx, id string, old *engine.Object, news engine.Props) (map[string]any, error) {
			if err := offlineRefusal(tx, k.Token, "updating", keyNodeName.In(old.Inputs), keyNodeName.In(news.Values)); err != nil {
				return nil, err
			}
			return update(s, tx, id, old, news)
		}
	}
	k.Delete = func(s *engine.Server, tx *engine.Tx, obj *engine.Object) error {
		if err := offlineRefusal(tx, k.Token, "deleting", keyNodeName.In(obj.Inputs)); err != nil {
			return err
		}
		if del == nil {
			return nil
		}
		return del(s, tx, obj)
	}
	return k
}
