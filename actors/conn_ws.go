package actors

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/gorilla/websocket"

	"github.com/xmppd/xmppd/protocol/framing"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/web"
)

// RFC 7395 XMPP over WebSocket as a conn transport (transport.go). The HTTP handler goroutine upgrades the
// request, asks the listener for a conn actor and then is that conn's read side: it reads one WebSocket message
// at a time, checks that it holds exactly one element (RFC 7395 §3.3.3), and sends the conn what a TCP reader
// would: <open/> as a stream header (a restart is simply the next <open/>), <close/> as the end of the stream,
// anything else as an element. The write side (wsConn as the writer's sink) sends each element the conn writes
// as one text message, made a standalone document, and translates the stream header, stream errors and the
// closing tag into <open/>, the error element and <close/> (protocol/framing). Everything else (SASL, bind,
// features, limits, stream management and resumption, durability) is the conn's and unchanged.

// WebSocketPath is where the WebSocket endpoint is mounted (and named in host-meta).
const WebSocketPath = "/xmpp-websocket"

// errEndOfMessage ends the decoder's input at the end of each WebSocket message.
var errEndOfMessage = errors.New("end of websocket message")

const (
	// wsControlTimeout bounds the write of a frame outside the writer's flushes: the handshake's answer, a ping,
	// a pong, a close.
	wsControlTimeout = 10 * time.Second
	// wsCloseWait is how long the closing handshake waits for the peer's close frame (RFC 6455 §7.1.1) before the
	// connection is closed anyway.
	wsCloseWait = 5 * time.Second
)

// wsConn is one WebSocket: the writer's sink (the writer's flush goroutine calls writeSegments, one at a time)
// and the read loop's connection.
//
// The library is github.com/gorilla/websocket (ARCHITECTURE.md, Dependencies): its reads and writes take no
// context, so a message costs no timer or callback registration (coder/websocket registered a context.AfterFunc
// per frame read and per message written: 15 allocations per routed message, the WebSocket transport's main cost
// beyond TCP's). Deadlines are the connection's: the writer's on each flush (corkConn), wsControlTimeout on
// control frames, and the read side needs none while pings run.
type wsConn struct {
	ws        *websocket.Conn
	cork      *corkConn
	ready     chan wsStart
	readDone  chan struct{} // closed when the read loop has ended
	closeSent atomic.Bool   // our <close/> went out: Close is a normal closure
	scratch   []byte        // the flush goroutine's message buffer
	marks     []int         // the flush goroutine's: where each segment's frames end in the corked bytes
}

// corkConn is the connection below the WebSocket library: while corked (one writer flush) the frames the library
// writes are collected and go out in one Write: one syscall and, over TLS, one record for a burst of stanzas,
// as on a TCP stream (the library writes every message on its own).
//
// Why a mutex (actors/ rule): besides the flush goroutine, the library writes control frames from the read
// loop's goroutine (pong, the answer to a close) and ours from the ping goroutine and Close; the lock keeps whole
// frames in order and is held across the Write so that a control frame cannot overtake or split the corked
// bytes. The uncorking Write is bounded by the writer's deadline (wdl, set on the connection before each flush),
// a control frame's by wsControlTimeout, after which the writer's deadline is put back.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
	wdl    atomic.Int64 // the writer's write deadline, UnixNano (0: none)
}

// Write is the library's: into the cork during a flush, otherwise (a control frame, the handshake's answer) to the
// connection under a deadline of its own, not the writer's: that one is set before each flush and may long have
// passed on a connection with nothing to send (an idle client's pings would fail on it).
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(wsControlTimeout))
	n, err := c.Conn.Write(p)
	// Put the writer's deadline back; a flush may have moved it meanwhile (setWriterDeadline does not wait for
	// the lock, graceDeadline must reach a write in progress), so apply it until it held still across the call.
	for {
		d := c.wdl.Load()
		_ = c.Conn.SetWriteDeadline(unixTime(d))
		if c.wdl.Load() == d {
			break
		}
	}
	return n, err
}

// SetWriteDeadline is the library's, before every frame it writes: ignored, the deadlines are ours (Write).
func (c *corkConn) SetWriteDeadline(time.Time) error { return nil }

// setWriterDeadline is the writer's deadline, before each flush and from graceDeadline during one.
func (c *corkConn) setWriterDeadline(t time.Time) error {
	var d int64
	if !t.IsZero() {
		d = t.UnixNano()
	}
	c.wdl.Store(d)
	return c.Conn.SetWriteDeadline(t)
}

func unixTime(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Unix(0, d)
}

func (c *corkConn) setCork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.buf)
}

// uncork writes what was collected; n is how much of it reached the connection.
func (c *corkConn) uncork() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return 0, nil
	}
	n, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 64<<10 {
		c.buf = nil // an idle connection keeps no large buffer
	} else {
		c.buf = c.buf[:0]
	}
	return n, err
}

// corkingWriter hands the library a corkConn when it hijacks the HTTP connection. The library keeps the HTTP
// server's read buffer and takes the write buffer given here as its own (4 KiB each).
type corkingWriter struct {
	http.ResponseWriter
	cork *corkConn
}

func (cw *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := cw.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("websocket: the connection cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	cw.cork = &corkConn{Conn: nc}
	return cw.cork, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(cw.cork, 4096)), nil
}

// wsStart is what the conn actor gives the read side (ok), or the listener's refusal.
type wsStart struct {
	root    *actor.RootContext
	self    *actor.PID
	limit   *atomic.Int64
	ok      bool
	refusal string
}

func (w *wsConn) SetWriteDeadline(t time.Time) error {
	// Onto the connection, where the uncorking write of each flush meets it (the writer sets it before every
	// flush; it also moves the deadline of a write in progress, graceDeadline).
	return w.cork.setWriterDeadline(t)
}

func (w *wsConn) Write(b []byte) (int, error) {
	return w.writeSegments(b, []int32{int32(len(b))})
}

// writeSegments sends each segment as its own message(s), all of them in one write of the connection (corked);
// n counts the segments whose frames reached the connection completely (the writer hands back the rest).
func (w *wsConn) writeSegments(b []byte, ends []int32) (int, error) {
	w.cork.setCork()
	w.marks = w.marks[:0]
	n, err := forEachSegment(b, ends, func(seg []byte, element bool) error {
		defer func() { w.marks = append(w.marks, w.cork.mark()) }()
		if element {
			// RFC 7395 §3.3.3: one element per message, a text frame (§3.2).
			w.scratch = framing.AppendStandalone(w.scratch[:0], seg)
			return w.ws.WriteMessage(websocket.TextMessage, w.scratch)
		}
		msgs, err := framing.Translate(seg)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := w.ws.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				return err
			}
			if strings.HasPrefix(m, "<close") {
				w.closeSent.Store(true)
			}
		}
		return nil
	})
	if cap(w.scratch) > 64<<10 {
		w.scratch = nil
	}
	wrote, werr := w.cork.uncork()
	if werr == nil {
		return n, err
	}
	// Only the segments whose frames all reached the connection count as written.
	done := 0
	for i, e := range ends[:min(len(ends), len(w.marks))] {
		if w.marks[i] <= wrote {
			done = int(e)
			if done < 0 {
				done = ^done
			}
		}
	}
	return done, werr
}

// Close ends the WebSocket: after our <close/> with a normal closure (RFC 6455 §7.4.1 code 1000): the close
// frame, then the peer's (the read loop ends on it) or wsCloseWait, then the TCP connection (§7.1.1: the server
// closes it first); otherwise (the peer is gone, a write failed or timed out) at once. It never blocks the
// caller: the closing handshake runs on its own goroutine.
func (w *wsConn) Close() error {
	if !w.closeSent.Load() {
		_ = w.ws.Close()
		return nil
	}
	go func() {
		err := w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsControlTimeout))
		if err == nil {
			t := time.NewTimer(wsCloseWait)
			select {
			case <-w.readDone:
			case <-t.C:
			}
			t.Stop()
		}
		_ = w.ws.Close()
	}()
	return nil
}

// wsSource feeds the decoder: first a stream header that sets the content namespace (jabber:client) and the
// stream prefix, then the current message; at the end of each message it returns errEndOfMessage.
type wsSource struct {
	prefix string
	r      io.Reader
}

func (s *wsSource) Read(p []byte) (int, error) {
	if s.prefix != "" {
		n := copy(p, s.prefix)
		s.prefix = s.prefix[n:]
		return n, nil
	}
	if s.r == nil {
		return 0, errEndOfMessage
	}
	n, err := s.r.Read(p)
	if errors.Is(err, io.EOF) {
		s.r = nil
		if n == 0 {
			return 0, errEndOfMessage
		}
		err = nil
	}
	return n, err
}

// framingError is a message that breaks RFC 7395 framing; the conn answers it with the stream error, like XML
// that is not well-formed on TCP.
func framingError(msg string) error {
	return &xmlstream.Error{Condition: xmlstream.CondNotWellFormed, Msg: msg}
}

// run is the read loop, on the HTTP handler's goroutine, until the WebSocket ends.
func (w *wsConn) run(st wsStart, idle, ping time.Duration) {
	defer close(w.readDone)
	stop := make(chan struct{})
	defer close(stop)
	var pingFailed atomic.Bool
	if ping > 0 {
		// A ping every interval; one whose pong has not come by the next tick means the peer is gone (RFC 6455
		// §5.5.2, §5.5.3). The pong handler runs on this goroutine, inside NextReader.
		var waiting atomic.Bool
		w.ws.SetPongHandler(func(string) error { waiting.Store(false); return nil })
		go func() {
			t := time.NewTicker(ping)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if waiting.Load() {
					pingFailed.Store(true)
					_ = w.ws.Close()
					return
				}
				waiting.Store(true)
				if err := w.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsControlTimeout)); err != nil {
					if !errors.Is(err, websocket.ErrCloseSent) {
						pingFailed.Store(true)
						_ = w.ws.Close()
					}
					return
				}
			}
		}()
	}
	src := &wsSource{prefix: wsStreamPrefix}
	cur := st.limit.Load()
	dec := xmlstream.NewDecoder(src, int(cur))
	if k, err := dec.Next(); err != nil || k != xmlstream.KindStreamStart {
		st.root.Send(st.self, &readEnded{err: errors.New("websocket: internal stream prefix")})
		return
	}
	for {
		if ping <= 0 {
			// Without pings, a client must send something within the idle timeout, as on TCP. With them the read
			// has no deadline (a failed ping closes the connection, which ends it): no timer update per message.
			_ = w.ws.SetReadDeadline(time.Now().Add(idle))
		}
		typ, r, err := w.ws.NextReader()
		if err == nil && typ != websocket.TextMessage {
			// RFC 7395 §3.2: XMPP data is UTF-8 text frames only.
			err = framingError("binary WebSocket messages are not XMPP (RFC 7395 §3.2)")
		}
		var msg any
		if err == nil {
			src.r = r
			msg, err = w.message(dec, st.limit, &cur)
		}
		if err != nil {
			st.root.Send(st.self, &readEnded{err: wsReadError(err, pingFailed.Load())})
			w.drain()
			return
		}
		if msg != nil {
			st.root.Send(st.self, msg)
		}
	}
}

// drain reads and drops what the peer still sends once the read side has ended, until its close frame, an error
// or wsCloseWait: the closing handshake (RFC 6455 §7.1.1), and no unread bytes left in our socket when it is
// closed (a close with unread data is a reset, which can destroy the stream error still on its way to the peer).
func (w *wsConn) drain() {
	_ = w.ws.SetReadDeadline(time.Now().Add(wsCloseWait))
	for {
		if _, _, err := w.ws.NextReader(); err != nil {
			return
		}
	}
}

// wsReadError is what the conn hears of the read side's end: a missed pong or the idle timeout as the
// <connection-timeout/> path (os.ErrDeadlineExceeded), the peer's close frame without <close/> as a lost
// connection for XEP-0198 (io.EOF), anything else (framing, XML, limits, a protocol error the library already
// answered with its close code) as it is.
func wsReadError(err error, pingFailed bool) error {
	var ne net.Error
	var ce *websocket.CloseError
	switch {
	case pingFailed || errors.As(err, &ne) && ne.Timeout():
		return os.ErrDeadlineExceeded
	case errors.As(err, &ce):
		return io.EOF
	}
	return err
}

// message decodes one WebSocket message into the conn's message for it (nil for a message of whitespace only).
func (w *wsConn) message(dec *xmlstream.Decoder, limit *atomic.Int64, cur *int64) (any, error) {
	var el *xmlstream.Element
	for {
		if l := limit.Load(); l != *cur {
			*cur = l
			dec.SetLimit(int(l))
		}
		k, err := dec.Next()
		if errors.Is(err, errEndOfMessage) {
			if dec.Buffered() > 0 {
				return nil, framingError("a WebSocket message must hold one complete element (RFC 7395 §3.3.3)")
			}
			break
		}
		if err != nil {
			return nil, err
		}
		switch k {
		case xmlstream.KindElement:
			if el != nil {
				return nil, framingError("one element per WebSocket message (RFC 7395 §3.3.3)")
			}
			el = dec.Element()
		case xmlstream.KindStreamStart, xmlstream.KindStreamEnd:
			return nil, framingError("<stream:stream> is not used over WebSocket: send <open/> and <close/> (RFC 7395 §3.3.2)")
		}
	}
	switch {
	case el == nil:
		return nil, nil
	case framing.IsOpen(el):
		h, err := framing.Header(el)
		if err != nil {
			return nil, err
		}
		return &streamHeaderIn{hdr: h}, nil
	case framing.IsClose(el):
		return &streamEndIn{}, nil
	}
	return &elementIn{el: el}, nil
}

// wsStreamPrefix is the stream context the decoder reads messages in: elements without xmlns are jabber:client
// (RFC 7395 asks for it to be declared; a client that leaves it out is read as a TCP stream would be).
const wsStreamPrefix = streamPrefix

// serveWebSocket is the /xmpp-websocket handler.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	cl := web.ClientOf(r)
	if !cl.Secure {
		http.Error(w, "XMPP over WebSocket needs TLS here (a trusted proxy must send X-Forwarded-Proto: https)", http.StatusForbidden)
		return
	}
	if !offersSubprotocol(r, "xmpp") {
		// RFC 7395 §3.1: the client offers the "xmpp" subprotocol; without it this is no XMPP connection.
		http.Error(w, "the WebSocket handshake must offer the subprotocol xmpp (RFC 7395 §3.1)", http.StatusBadRequest)
		return
	}
	cfg := &s.env.cfg
	up := websocket.Upgrader{
		Subprotocols:     []string{"xmpp"},
		HandshakeTimeout: wsControlTimeout,
		CheckOrigin:      func(r *http.Request) bool { return wsOriginAllowed(cfg.HTTP.Origins, r) },
	}
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := up.Upgrade(cw, r, nil)
	if err != nil || cw.cork == nil {
		s.env.log.Debug().Err(err).Str("remote", cl.Addr.String()).Msg("websocket handshake refused")
		return
	}
	// No read limit in the library: it would refuse a frame by its announced length with close code 1009 before
	// a byte is read, where the decoder, which the message streams into, answers an element over the limit (and
	// a message of endless whitespace) with <policy-violation/> as on TCP, having buffered at most the limit.
	wc := &wsConn{ws: ws, cork: cw.cork, ready: make(chan wsStart, 1), readDone: make(chan struct{})}
	t := &transport{kind: "websocket", remote: clientRemote(cl, r), ip: cl.Addr, out: wc, cb: s.channelBinding(cl)}
	t.start = func(root *actor.RootContext, self *actor.PID, limit *atomic.Int64) {
		wc.ready <- wsStart{root: root, self: self, limit: limit, ok: true}
	}
	t.refused = func(limit string) { wc.ready <- wsStart{refusal: limit} }
	s.sys.Root.Send(s.listener, &acceptedTransport{t: t})
	st := <-wc.ready
	if !st.ok {
		// A close with 1008 (RFC 6455 §7.4.1), the peer's close awaited for a while, then the connection closed.
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "refused: "+st.refusal), time.Now().Add(wsControlTimeout))
		wc.drain()
		_ = ws.Close()
		return
	}
	wc.run(st, cfg.C2S.IdleTimeout.Duration, cfg.HTTP.WebSocketPing.Duration)
}

// wsOriginAllowed: a request without Origin (not a browser's), one from the page's own host, or an origin that
// http.origins allows (the rule of the BOSH endpoint's CORS, originAllowed); a browser from anywhere else gets 403.
func wsOriginAllowed(patterns []string, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return originAllowed(patterns, origin)
}

func offersSubprotocol(r *http.Request, want string) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == want {
				return true
			}
		}
	}
	return false
}

// clientRemote is the client's address for logs and the tree: the peer's, or what a trusted proxy reported.
func clientRemote(cl web.Client, r *http.Request) string {
	if cl.Proxied {
		return cl.Addr.String()
	}
	return r.RemoteAddr
}

// channelBinding: the bindings of our own TLS connection with the client; none behind a proxy (the client's TLS
// ends there) or over loopback plain HTTP.
func (s *Server) channelBinding(cl web.Client) sasl.ChannelBinding {
	if cl.TLS == nil || cl.Proxied {
		return sasl.ChannelBinding{}
	}
	return sasl.TLSChannelBinding(cl.TLS, s.env.certs.cert.Load().Leaf)
}
