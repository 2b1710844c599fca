package cluster

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

type IdentityStorageWorker struct {
	cluster *Cluster
	lookup  *IdentityStorageLookup
	storage StorageLookup
}

func newIdentityStorageWorker(storageLookup *IdentityStorageLookup) *IdentityStorageWorker {
	this := &IdentityStorageWorker{
		cluster: storageLookup.cluster,
		lookup:  storageLookup,
		storage: storageLookup.Storage,
	}
	return this
}

// Receive func
func (ids *IdentityStorageWorker) Receive(c actor.Context) {
	m := c.Message()
	getPid, ok := m.(GetPid)

	if !ok {
		return
	}

	if c.Sender() == nil {
		c.Logger().Warn("No sender in GetPid request") // xmppd patch: was log.Println
		return
	}

	existing, _ := ids.cluster.PidCache.Get(getPid.ClusterIdentity.Identity, getPid.ClusterIdentity.Kind)

	if existing != nil {
		c.Logger().Debug("Found in pidcache", slog.String("identity", m.(GetPid).ClusterIdentity.ToShortString())) // xmppd patch: was log.Printf
		c.Respond(newPidResult(existing))
	}

	return
	// continue
}
