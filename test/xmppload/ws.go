package xmppload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The RFC 7395 transport of the load tool (-transport websocket): the client code speaks a TCP XML stream, and
// wsStream, a net.Conn, translates at the edge: our stream header becomes <open/>, </stream:stream> <close/>,
// and each top-level element one text message; the server's <open/> reads back as a stream header, <close/> as
// the stream's end, every other message as the element it holds. One writer at a time (the client's write path
// is serialised), one reader (the login goroutine, then readLoop).

const framingNS = "urn:ietf:params:xml:ns:xmpp-framing"

type wsStream struct {
	c      *websocket.Conn
	domain string
	local  net.Addr
	remote net.Addr
	rbuf   []byte
	split  scanner // frames our writes into elements
	rdl    atomic.Int64
	wdl    atomic.Int64
}

// dialWS opens the WebSocket (subprotocol xmpp) at url.
func (c *client) dialWS(ctx context.Context) (net.Conn, error) {
	cfg := &c.r.cfg
	scheme := "wss://"
	if cfg.TLS == "none" {
		scheme = "ws://"
	}
	d := &net.Dialer{Timeout: cfg.LoginTimeout}
	if len(c.r.sourceIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: c.r.sourceIPs[c.idx%len(c.r.sourceIPs)]}
	}
	var local, remote net.Addr
	tr := &http.Transport{TLSClientConfig: c.r.tlsConfig, DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, n, a)
		if err == nil {
			local, remote = nc.LocalAddr(), nc.RemoteAddr()
		}
		return nc, err
	}}
	dctx, cancel := context.WithTimeout(ctx, cfg.LoginTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, scheme+cfg.Addr+cfg.WebSocketPath, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{"xmpp"}})
	if err != nil {
		return nil, kindErr("connect", err)
	}
	ws.SetReadLimit(1 << 20)
	s := &wsStream{c: ws, domain: cfg.Domain, local: local, remote: remote}
	s.split.maxElement = 1 << 20
	return s, nil
}

func (s *wsStream) ctx(dl *atomic.Int64) (context.Context, context.CancelFunc) {
	if t := dl.Load(); t != 0 {
		return context.WithDeadline(context.Background(), time.Unix(0, t))
	}
	return context.WithCancel(context.Background())
}

func (s *wsStream) Read(p []byte) (int, error) {
	for len(s.rbuf) == 0 {
		ctx, cancel := s.ctx(&s.rdl)
		typ, msg, err := s.c.Read(ctx)
		cancel()
		if err != nil {
			if websocket.CloseStatus(err) != -1 {
				return 0, io.EOF
			}
			return 0, err
		}
		if typ != websocket.MessageText {
			return 0, errors.New("binary websocket message")
		}
		switch {
		case bytes.HasPrefix(msg, []byte("<open")):
			s.rbuf = []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
		case bytes.HasPrefix(msg, []byte("<close")):
			s.rbuf = []byte("</stream:stream>")
		default:
			s.rbuf = msg
		}
	}
	n := copy(p, s.rbuf)
	s.rbuf = s.rbuf[n:]
	return n, nil
}

func (s *wsStream) Write(p []byte) (int, error) {
	ctx, cancel := s.ctx(&s.wdl)
	defer cancel()
	send := func(b []byte) error { return s.c.Write(ctx, websocket.MessageText, b) }
	switch {
	case bytes.HasPrefix(p, []byte("<?xml")) || bytes.HasPrefix(p, []byte("<stream:stream")):
		if err := send([]byte("<open xmlns='" + framingNS + "' to='" + s.domain + "' version='1.0'/>")); err != nil {
			return 0, err
		}
		return len(p), nil
	case bytes.Equal(p, []byte("</stream:stream>")):
		if err := send([]byte("<close xmlns='" + framingNS + "'/>")); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	// The client's combining buffer may hold several elements: one message each.
	s.split.reset(bytes.NewReader(p))
	s.split.inStream = true
	for {
		ev, el, err := s.split.next()
		if errors.Is(err, io.EOF) {
			return len(p), nil
		}
		if err != nil {
			return 0, err
		}
		msg := el
		if ev == evStreamClose {
			msg = []byte("<close xmlns='" + framingNS + "'/>")
		}
		if err := send(msg); err != nil {
			return 0, err
		}
	}
}

func (s *wsStream) Close() error                       { return s.c.CloseNow() }
func (s *wsStream) LocalAddr() net.Addr                { return s.local }
func (s *wsStream) RemoteAddr() net.Addr               { return s.remote }
func (s *wsStream) SetReadDeadline(t time.Time) error  { s.rdl.Store(unixOrZero(t)); return nil }
func (s *wsStream) SetWriteDeadline(t time.Time) error { s.wdl.Store(unixOrZero(t)); return nil }
func (s *wsStream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
