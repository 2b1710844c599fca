package actors

import (
	"crypto/tls"
	"crypto/x509"
	"sync"

	"github.com/xmppd/xmppd/config"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/storage"
)

// env is what every actor of one server may read: configuration, the storage handle, TLS material, the router's
// PID, the feature registry and the logger. It is built before the first actor starts and never changed
// afterwards, so sharing the pointer shares no mutable state. What it points to is either immutable too
// (registry, srv) or synchronised by its owner: the storage handle is safe for concurrent use by contract (and
// each piece of stored data has exactly one actor that writes it, see ARCHITECTURE.md), the certificate store
// and the metrics are atomic, and sockets is a WaitGroup.
type env struct {
	cfg       config.Config
	store     storage.Store
	certs     *certStore
	tlsConfig *tls.Config
	router    *actor.PID
	caps      *actor.PID // the XEP-0115 verified caps cache (caps.go)
	services  *actor.PID // the parent of the service actors (services.go); nil without services
	s2s       *actor.PID // the federation subtree (s2s.go); nil when [s2s] listen is ""
	// components is the XEP-0114 directory (component.go); nil without component_listen.
	components *actor.PID
	// cluster is the cluster actor (cluster.go); nil unless [cluster] enabled.
	cluster *actor.PID
	// s2sSecret is the XEP-0185 dialback secret; s2sRoots the CAs trusted for peers (nil: the system roots).
	s2sSecret []byte
	s2sRoots  *x509.CertPool
	s2sm      *s2sMetrics
	log       zerolog.Logger
	secret    []byte // per-process key for anti-enumeration fake SCRAM credentials
	metrics   *metrics
	reg       *registry   // the enabled features (host.go)
	srv       *serverInfo // what features see of the server
	// streamFeatures is what the features add to <stream:features> after authentication (computed once).
	streamFeatures string
	// features are the conns' <stream:features>, built once from the configuration (conn.go, featureTable).
	features *featureTable
	// sockets counts open client sockets so that shutdown can wait until every final write is flushed.
	sockets *sync.WaitGroup
	// workers run the mailboxes of the actors and the writers' flushes (dispatch.go).
	workers *workers
}

// connClosed is called by a writer once its socket is closed.
func (e *env) connClosed() {
	e.metrics.connections.Dec()
	e.sockets.Done()
}

// stopStrategy supervises actors that own a stream or a user: a panic stops the actor (its stream ends with
// <internal-server-error/>) instead of restarting it, because a restart would re-run Started on the same socket
// or lose the user's in-memory routing state silently: protoactor runs Started again on a restart.
var stopStrategy = actor.NewOneForOneStrategy(0, 0, func(reason interface{}) actor.Directive {
	return actor.StopDirective
})
