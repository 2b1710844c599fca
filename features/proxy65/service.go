package proxy65

import (
	"net"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/socks5"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// waiting is one stream address's connections before activation (at most two: target and initiator).
type waiting struct {
	conns []net.Conn
	since time.Time
}

// service is the proxy's service part.
type service struct {
	h feature.ServiceHost
	// host and port are what the streamhost query answers (0 until the listener is bound).
	host string
	port int
	// mb is the service's Mailbox (immutable, safe anywhere): what a transfer reports its end through.
	mb feature.Mailbox
	// waiting: stream address → connections; active: the connections of running transfers (closed at shutdown).
	waiting map[string]*waiting
	active  map[string][]net.Conn
	closed  bool
}

func newService(h feature.ServiceHost) *service {
	return &service{h: h, waiting: map[string]*waiting{}, active: map[string][]net.Conn{}}
}

// Handle takes the relay's news.
func (s *service) Handle(msg any) {
	switch m := msg.(type) {
	case listening:
		s.host, s.port, s.mb = m.host, m.port, m.mb
	case expire:
		s.host, s.port, s.mb = m.host, m.port, m.mb
		limit := s.h.Server().Config().Proxy65.IdleTimeout.Duration
		for addr, w := range s.waiting {
			if time.Since(w.since) >= limit {
				for _, c := range w.conns {
					_ = c.Close()
				}
				delete(s.waiting, addr)
			}
		}
	case transferDone:
		delete(s.active, m.addr)
		s.h.Log().Debug().Str("addr", m.addr).Int64("bytes", m.bytes).Msg("proxy65: transfer ended")
	case closeAll:
		s.closed = true
		for _, cs := range s.active {
			for _, c := range cs {
				_ = c.Close()
			}
		}
		s.Stopped()
	}
}

// Stopped (feature.ServiceStopped) closes the connections waiting for activation: after the actor, nobody
// holds them (in a cluster the proxy moved to another node, whose actor never heard of them). Running transfers
// go on: their goroutines own their connections.
func (s *service) Stopped() {
	for addr, w := range s.waiting {
		for _, c := range w.conns {
			_ = c.Close()
		}
		delete(s.waiting, addr)
	}
}

// Answer takes a handshaken connection (arrive).
func (s *service) Answer(q any) any {
	m, ok := q.(arrive)
	if !ok {
		return nil
	}
	w := s.waiting[m.addr]
	switch {
	case s.closed || s.active[m.addr] != nil:
		return arrived{ok: false}
	case w == nil:
		s.waiting[m.addr] = &waiting{conns: []net.Conn{m.conn}, since: time.Now()}
	case len(w.conns) >= 2:
		return arrived{ok: false} // XEP-0065 §8.1: only one target per bytestream
	default:
		w.conns = append(w.conns, m.conn)
	}
	return arrived{ok: true}
}

// Stanza: the streamhost query (§6.3 "Requester Discovers Network Address of StreamHost") and activation.
func (s *service) Stanza(st *stanza.Routed) {
	q := feature.ServiceQuery(s.h.Bounce, st)
	if q == nil {
		return
	}
	if st.To.Local() != "" || st.To.Resource() != "" {
		s.h.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	switch {
	case q.Name == xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"} && st.Head.Type == "get" && q.Attr("node") == "":
		s.h.Route(feature.Answered(st, "<query xmlns='"+stanza.NSDiscoIt+"'/>"))
	case q.Name != xmlstream.Name{Space: NS, Local: "query"}:
		s.h.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
	case st.Head.Type == "get":
		s.streamhost(st)
	default:
		s.activate(st, q)
	}
}

func (s *service) streamhost(st *stanza.Routed) {
	if s.port == 0 {
		s.h.Bounce(st, stanza.NewError(stanza.InternalServerError))
		return
	}
	b := []byte("<query xmlns='" + NS + "'><streamhost jid='")
	b = xmlstream.AppendEscapedAttr(b, s.h.JID().String())
	b = append(b, "' host='"...)
	b = xmlstream.AppendEscapedAttr(b, s.host)
	b = append(b, "' port='"+strconv.Itoa(s.port)+"'/></query>"...)
	s.h.Route(feature.Answered(st, string(b)))
}

// activate is XEP-0065 §6.3 "Activation of Bytestream": the initiator (the IQ's sender, a full JID) names the
// target; the stream address is SHA1(SID + initiator + target). Errors: item-not-found when nobody connected
// for that address (the sender is not the initiator of any stream it could name), not-allowed when only one
// party is connected, bad-request without a sid or a valid target.
func (s *service) activate(st *stanza.Routed, q *xmlstream.Node) {
	sid := q.Attr("sid")
	act := q.Child(NS, "activate")
	if sid == "" || act == nil {
		s.h.Bounce(st, stanza.NewError(stanza.BadRequest))
		return
	}
	target, err := jid.Parse(act.TextContent())
	if err != nil {
		s.h.Bounce(st, stanza.NewError(stanza.JIDMalformed))
		return
	}
	// The JIDs as prepared (§5.3.2: stringprep applied before hashing): the stamped 'from' and the parsed target.
	addr := socks5.StreamAddr(sid, st.From.String(), target.String())
	w := s.waiting[addr]
	switch {
	case s.active[addr] != nil:
		s.h.Bounce(st, stanza.NewError(stanza.NotAllowed).WithText("The bytestream is already active"))
		return
	case w == nil:
		s.h.Bounce(st, stanza.NewError(stanza.ItemNotFound))
		return
	case len(w.conns) < 2 || s.mb == nil:
		s.h.Bounce(st, stanza.NewError(stanza.NotAllowed).WithText("Only one party is connected"))
		return
	}
	delete(s.waiting, addr)
	s.active[addr] = w.conns
	cfg := &s.h.Server().Config().Proxy65
	srv := s.h.Server()
	mb := s.mb
	t := &transfer{a: w.conns[0], b: w.conns[1], maxBytes: cfg.MaxBytes, idle: cfg.IdleTimeout.Duration,
		deadline: time.Now().Add(cfg.Timeout.Duration), count: srv.Count,
		limitHit: func() { srv.LimitHit(LimitBytes) },
		done:     func(n int64) { mb.Tell(transferDone{addr: addr, bytes: n}) }}
	srv.Count(CounterTransfers, 1)
	go t.run()
	s.h.Log().Debug().Str("addr", addr).Str("initiator", st.From.String()).Str("target", target.String()).Msg("proxy65: activated")
	s.h.Route(feature.Answered(st, ""))
}
