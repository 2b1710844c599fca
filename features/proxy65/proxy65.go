// Package proxy65 is a XEP-0065 SOCKS5 bytestreams proxy: a service at a domain of its own ([proxy65] host,
// proxy.<first domain> by default), listed in the server's disco#items, with a SOCKS5 relay on its own port
// ([proxy65] listen).
//
// The service part, in the service actor (services/proxy.<domain>), owns the relay's state: the connections
// that completed the SOCKS5 handshake and wait for their peer and for activation (by stream address, XEP-0065
// §5.3.2), and the number of transfers running. The relay's goroutines (relay.go: one accepting, one per
// connection during the handshake, two per activated transfer) talk to it only by messages through the
// service's Mailbox: a handshaken connection is handed to the actor (arrive), which keeps it; activation (the
// initiator's IQ, §6.3 "Activation of Bytestream") takes both out of its table and hands them to a transfer,
// which reports its end (transferDone). Limits: [proxy65] max_bytes per direction of a transfer, timeout for a
// transfer's whole life, idle_timeout without a byte moving (and for a connection waiting for activation).
//
// In a cluster the service part runs on one node, the proxy domain's home, and every node runs a relay. A
// connection cannot cross nodes, so none of the relay's messages is in the feature's Wire: the home's service
// part hears only its own node's relay, and its streamhost answer (which the initiator hands the target, §5.3.1)
// names that relay, so both parties connect to the home. A party that reaches another node's relay anyway (a
// stale address; [proxy65] address must be each node's own, never a name shared by the nodes) is refused at once
// (SOCKS5 "connection not allowed by ruleset"): its Mailbox question gets no answer there.
package proxy65

import (
	"net"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
)

// NS is the XEP-0065 namespace.
const NS = "http://jabber.org/protocol/bytestreams"

// Counters in /metrics.
const (
	CounterTransfers = "proxy65_transfers_total"
	CounterBytes     = "proxy65_bytes_total"
)

// Limit counted in xmppd_limit_hits_total: a transfer cut at max_bytes.
const LimitBytes = "proxy65_max_bytes"

// Feature is the XEP-0065 proxy.
var Feature = &feature.Feature{
	Name:   "proxy65",
	Limits: []string{LimitBytes},
	Counters: []feature.Counter{
		{Name: CounterTransfers, Help: "XEP-0065 bytestreams activated on the SOCKS5 proxy."},
		{Name: CounterBytes, Help: "Bytes relayed by the SOCKS5 proxy (both directions)."},
	},
	Service: &feature.ServiceSpec{
		Host: func(cfg *config.Config) string {
			if cfg.Proxy65.Listen == "" {
				return ""
			}
			return cfg.ServiceHost(cfg.Proxy65.Host)
		},
		Name:       "SOCKS5 Bytestreams Service",
		Identities: []string{"<identity category='proxy' type='bytestreams' name='SOCKS5 Bytestreams Service'/>"},
		Vars:       []string{"http://jabber.org/protocol/disco#info", NS},
		New:        func(h feature.ServiceHost) any { return newService(h) },
		Outside:    outside,
	},
}

// outside binds the SOCKS5 listener and starts the accept loop and the timer of the waiting connections.
func outside(srv feature.Server, mb feature.Mailbox, log zerolog.Logger) (func(), error) {
	cfg := &srv.Config().Proxy65
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if h, _, _ := net.SplitHostPort(cfg.Listen); h != "" {
		host = h
	} else if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = srv.Config().Domains[0]
	}
	if cfg.Address != "" {
		host = cfg.Address
	}
	p, _ := strconv.Atoi(port)
	l := listening{host: host, port: p, mb: mb}
	mb.Tell(l)
	r := &relay{mb: mb, log: log, idle: cfg.IdleTimeout.Duration, count: srv.Count}
	go r.accept(ln)
	// expire repeats the listener's address: a service actor spawned anew (after a failure, or on this node as
	// the cluster's new home of the proxy) learns it from the next tick, so the tick is at most 5 s apart.
	tick := time.NewTicker(min(max(cfg.IdleTimeout.Duration/4, 100*time.Millisecond), 5*time.Second))
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				mb.Tell(expire{l})
			case <-done:
				return
			}
		}
	}()
	log.Info().Str("listen", ln.Addr().String()).Str("host", host).Int("port", p).Msg("socks5 proxy listening")
	return func() {
		tick.Stop()
		close(done)
		_ = ln.Close()
		mb.Tell(closeAll{})
	}, nil
}
