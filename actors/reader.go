package actors

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Messages a reader goroutine sends to its conn actor. Each is immutable once sent.
type (
	streamHeaderIn struct{ hdr *xmlstream.Header }
	elementIn      struct{ el *xmlstream.Element }
	streamEndIn    struct{}
	whitespaceIn   struct{}
	// readEnded: the socket or the XML is finished. err is io.EOF, a net error, or *xmlstream.Error.
	readEnded struct{ err error }
	// startTLSIn: the peer sent <starttls/>; the reader waits until the actor either writes <proceed/> (closing
	// sw.flushed) or refuses (closing sw.abort).
	startTLSIn struct{ sw *tlsSwitch }
	tlsReady   struct {
		state tls.ConnectionState
		cert  *tls.Certificate
	}
)

type tlsSwitch struct {
	flushed chan struct{}
	abort   chan struct{}
}

// reader is the read side of one socket: a goroutine that only parses and sends complete top-level elements to the
// conn actor. It never touches the actor's state; it owns the decoder and, during STARTTLS, the handshake.
type reader struct {
	root      *actor.RootContext
	self      *actor.PID
	conn      net.Conn
	dec       *xmlstream.Decoder
	out       *writer
	tlsConfig *tls.Config
	certs     *certStore
	directTLS bool
	deadline  time.Duration // handshake deadline
	idle      time.Duration // a peer silent this long (not even a whitespace keepalive) is gone
	// limit is set by the conn actor when authentication succeeds (the only value the two share; an atomic, so the
	// reader picks it up before its next element without a message round trip).
	limit       *atomic.Int64
	deadlineSet time.Time // when the read deadline was last moved
	active      time.Time // when the last token was read (the idle deadline counts from it)
	curLimit    int64
	// shape, when set, is the decoder's source: the socket behind a token bucket (c2s.read_rate).
	shape *shaper
}

// shaper is per-session traffic shaping (XEP-0205 §4, like ejabberd's shapers and Prosody's mod_limits): a
// token bucket on the bytes read. A reader over its budget sleeps before its next Read instead of reading and
// buffering, so the kernel's receive buffer fills and TCP flow control slows the peer down; the server holds no
// more than one read chunk. Owned by the reader goroutine.
type shaper struct {
	src    io.Reader
	bucket tokenBucket
	hit    func()
}

func (s *shaper) Read(p []byte) (int, error) {
	if d := s.bucket.debit(0, time.Now()); d > 0 {
		s.hit()
		time.Sleep(d)
	}
	n, err := s.src.Read(p)
	s.bucket.debit(float64(n), time.Now())
	return n, err
}

// source returns what the decoder reads from c: c itself, or c behind the shaper.
func (r *reader) source(c net.Conn) io.Reader {
	if r.shape == nil {
		return c
	}
	r.shape.src = c
	return r.shape
}

func (r *reader) run() {
	if r.directTLS {
		tc := r.conn.(*tls.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), r.deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			r.root.Send(r.self, &readEnded{err: err})
			return
		}
		r.root.Send(r.self, &tlsReady{state: tc.ConnectionState(), cert: r.certs.cert.Load()})
	}
	r.loop()
}

// quietPeriod: a connection that sent nothing for this long (between quietPeriod-1s and quietPeriod, see loop)
// parks: its read buffer is dropped and its reading goroutine, whose stack grew with the TLS handshake, the
// decoder and record decryption, is replaced by one that only waits for the socket to become readable (park).
const quietPeriod = 2 * time.Second

// loop reads tokens until the stream ends, or until the connection goes quiet and the reader parks.
func (r *reader) loop() {
	parkable := r.idle > quietPeriod && canPark
	for {
		// Half-open sockets are found by the idle deadline; the conn actor turns the timeout into
		// <connection-timeout/> (RFC 6120 §4.9.3.4). Moving the deadline costs a timer update, so it is moved
		// at most once a second. While bytes flow the deadline is the quiet period (at least a second ahead
		// of the last token); when it expires with the idle time not yet passed, the reader parks with the
		// deadline at the idle time after the last token.
		now := time.Now()
		r.active = now
		if now.Sub(r.deadlineSet) >= time.Second {
			r.deadlineSet = now
			d := r.idle
			if parkable {
				d = quietPeriod
			}
			_ = r.conn.SetReadDeadline(now.Add(d))
		}
		if l := r.limit.Load(); l != r.curLimit {
			r.curLimit = l
			r.dec.SetLimit(int(l))
		}
		kind, err := r.dec.Next()
		if err != nil {
			if parkable && isTimeout(err) && time.Since(r.active) < r.idle {
				if rc := r.rawConn(); rc != nil {
					_ = r.conn.SetReadDeadline(r.active.Add(r.idle))
					r.dec.Release() // no-op when bytes of an unfinished element are buffered
					go r.park(rc)   // a new goroutine starts with the smallest stack
					return
				}
			}
			r.root.Send(r.self, &readEnded{err: err})
			return
		}
		switch kind {
		case xmlstream.KindStreamStart:
			r.root.Send(r.self, &streamHeaderIn{hdr: r.dec.Header()})
		case xmlstream.KindStreamEnd:
			r.root.Send(r.self, &streamEndIn{})
		case xmlstream.KindWhitespace:
			r.root.Send(r.self, &whitespaceIn{})
		case xmlstream.KindElement:
			el := r.dec.Element()
			if el.Name.Space == stanza.NSTLS && el.Name.Local == "starttls" && !r.directTLS {
				if !r.startTLS() {
					return
				}
				continue
			}
			r.root.Send(r.self, &elementIn{el: el})
		}
	}
}

// park waits for the next byte of a quiet connection without reading it: the socket's readiness through the
// runtime's poller (syscall.RawConn), on a goroutine that holds a minimal stack and no buffer (an idle
// connection's whole cost on the read side is then this parked goroutine, the TLS connection's state and the
// decoder). crypto/tls keeps no complete record unread when its Read times out (it only waits on the socket
// when its buffered input holds less than a record), so waiting on the socket loses nothing. The read deadline
// (the idle time after the last token) still applies: its expiry, a reset or our own Close end the reader as a
// Read would have.
func (r *reader) park(rc syscall.RawConn) {
	err := rc.Read(peekReadable)
	if err != nil {
		r.root.Send(r.self, &readEnded{err: err})
		return
	}
	r.loop()
}

// rawConn is the socket under r.conn (and under TLS) as a syscall.RawConn, nil if there is none (a pipe).
func (r *reader) rawConn() syscall.RawConn {
	var c net.Conn = r.conn
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// startTLS hands <starttls/> to the actor and, if it agrees, performs the handshake. Whatever the peer pipelined
// after <starttls/> is discarded with the decoder's buffer (RFC 6120 §5.4.3.3; the STARTTLS command-injection
// class of bugs). It reports false when the reader is finished.
func (r *reader) startTLS() bool {
	sw := &tlsSwitch{flushed: make(chan struct{}), abort: make(chan struct{})}
	r.root.Send(r.self, &startTLSIn{sw: sw})
	select {
	case <-sw.flushed:
	case <-sw.abort:
		return false
	}
	// The handshake is bounded by its own deadline, not by the quiet period of the read deadline.
	_ = r.conn.SetReadDeadline(time.Time{})
	r.deadlineSet = time.Time{}
	tc := tls.Server(r.conn, r.tlsConfig)
	ctx, cancel := context.WithTimeout(context.Background(), r.deadline)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		r.out.abort()
		r.root.Send(r.self, &readEnded{err: err})
		return false
	}
	r.conn = tc
	r.dec.Reset(r.source(tc))
	r.out.resume(tc)
	r.root.Send(r.self, &tlsReady{state: tc.ConnectionState(), cert: r.certs.cert.Load()})
	return true
}
