package proxy65

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/socks5"
)

// The network side of the proxy: goroutines that never touch the service part's state. A connection is the
// accept loop's until the SOCKS5 handshake is done, then the actor's (arrive), then a transfer's.

// Messages between the relay's goroutines and the service part.
type (
	listening struct {
		host string
		port int
		mb   feature.Mailbox
	}
	// arrive hands a handshaken connection for stream address addr to the actor (an Ask: answered with
	// arrived; refused connections are the goroutine's to answer and close).
	arrive struct {
		addr string
		conn net.Conn
	}
	arrived struct{ ok bool }
	// expire: time to close connections that waited too long for activation. It repeats what listening said,
	// for a service actor spawned again after a failure.
	expire struct{ listening }
	// transferDone: a transfer ended after moving bytes.
	transferDone struct {
		addr  string
		bytes int64
	}
	// closeAll: the server is shutting down.
	closeAll struct{}
)

// relay is the listener side: immutable after start.
type relay struct {
	mb    feature.Mailbox
	log   zerolog.Logger
	idle  time.Duration
	count func(string, float64)
}

func (r *relay) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Error().Err(err).Msg("proxy65: accept")
			}
			return
		}
		go r.handshake(c)
	}
}

// handshake runs RFC 1928 §3-§6 as XEP-0065 §5.3.2 uses it, within idle, then hands the connection over.
func (r *relay) handshake(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(r.idle))
	if err := socks5.ReadGreeting(c); err != nil {
		if errors.Is(err, socks5.ErrNoAuth) {
			_, _ = c.Write(socks5.MethodReply(socks5.MethodNone))
		}
		_ = c.Close()
		return
	}
	if _, err := c.Write(socks5.MethodReply(socks5.MethodNoAuth)); err != nil {
		_ = c.Close()
		return
	}
	req, err := socks5.ReadRequest(c)
	var re *socks5.ReplyError
	switch {
	case errors.As(err, &re):
		_, _ = c.Write(socks5.Reply(re.Code, req.Host))
		_ = c.Close()
		return
	case err != nil:
		_ = c.Close()
		return
	case !socks5.ValidStreamAddr(req.Host) || req.Port != 0:
		_, _ = c.Write(socks5.Reply(socks5.ReplyNotAllowed, req.Host))
		_ = c.Close()
		return
	}
	ans, ok := r.mb.Ask(arrive{addr: req.Host, conn: c}, r.idle)
	if a, isA := ans.(arrived); !ok || !isA || !a.ok {
		// Refused (a third party for one stream, or shutdown); or the answer came too late, and then the actor may
		// hold the connection too: closing it here makes the actor's copy useless, never a second reader.
		_, _ = c.Write(socks5.Reply(socks5.ReplyNotAllowed, req.Host))
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	// The reply goes out once the actor holds the connection: the peer only acts on it afterwards. Bytes sent
	// before activation stay in the socket (XEP-0065 §8.1: ignored but not dropped).
	if _, err := c.Write(socks5.Reply(socks5.ReplySucceeded, req.Host)); err != nil {
		_ = c.Close()
	}
}

// transfer relays between a and b until both directions end, a limit is hit, or stop is closed.
type transfer struct {
	a, b     net.Conn
	maxBytes int64
	idle     time.Duration
	deadline time.Time
	count    func(string, float64)
	limitHit func()
	done     func(bytes int64)
}

func (t *transfer) run() {
	var wg sync.WaitGroup
	var moved [2]int64
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = t.a.Close(); _ = t.b.Close() }) }
	wg.Add(2)
	go func() { defer wg.Done(); moved[0] = t.pipe(t.b, t.a, closeBoth) }()
	go func() { defer wg.Done(); moved[1] = t.pipe(t.a, t.b, closeBoth) }()
	wg.Wait()
	closeBoth()
	t.done(moved[0] + moved[1])
}

// pipe copies src to dst through a 32 KiB buffer with the idle and total deadlines, at most maxBytes. At the
// end of src it half-closes dst (the other direction may go on); on an error or the cap it closes both.
func (t *transfer) pipe(dst, src net.Conn, closeBoth func()) int64 {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		d := time.Now().Add(t.idle)
		if t.deadline.Before(d) {
			d = t.deadline
		}
		_ = src.SetReadDeadline(d)
		k, rerr := src.Read(buf)
		if k > 0 {
			if n+int64(k) > t.maxBytes {
				t.limitHit()
				closeBoth()
				return n
			}
			_ = dst.SetWriteDeadline(d)
			if _, werr := dst.Write(buf[:k]); werr != nil {
				closeBoth()
				return n
			}
			n += int64(k)
			t.count(CounterBytes, float64(k))
		}
		if rerr == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			} else {
				closeBoth()
			}
			return n
		}
		if rerr != nil {
			closeBoth()
			return n
		}
	}
}
