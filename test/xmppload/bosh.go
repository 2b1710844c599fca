package xmppload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The XEP-0124/XEP-0206 transport of the load tool (-transport bosh). As with wsStream, the client code speaks a
// TCP XML stream and boshStream, a net.Conn, translates at the edge:
//
//   - our first stream header is the session creation request (XEP-0124 §7.1, XEP-0206 §4: to, wait, hold=1,
//     ver, xmpp:version); the response's sid and requests set the session up;
//   - a later stream header (after SASL success) is a restart request (XEP-0206 §5: xmpp:restart='true', no
//     payload), sent on its own;
//   - every other write is a run of top-level elements, queued and sent in the next request's <body/> (each
//     qualified by jabber:client, XEP-0206 §6, where our stream's default namespace left it implicit);
//   - </stream:stream> is a type='terminate' request (XEP-0124 §13).
//
// The pump goroutine owns the request window: rids are consecutive (§7.1), at most 'requests' are outstanding
// (§11), and one is always held by the server (hold=1) so that it can push at any time; queued payloads go out
// as soon as a slot is free, together (what accumulates while both slots are taken leaves in one body). The
// responses are handed to the reader in rid order, whatever order the HTTP connections return them in, as the
// stream they stand for: the children of each <body/>, a stream header before the first one after a
// session creation or restart, and </stream:stream> at type='terminate' (a remote-stream-error's payload,
// the stream error, comes first).

const (
	nsHTTPBind = "http://jabber.org/protocol/httpbind"
	nsXBOSH    = "urn:xmpp:xbosh"
	boshWait   = 30 // seconds a request may be held (the server may lower it)
)

var errBOSHClosed = errors.New("bosh session closed")

type boshStream struct {
	url, domain   string
	gap           time.Duration // Config.BOSHGap
	hc            *http.Client
	tr            *http.Transport
	local, remote net.Addr

	// all below under mu (the writer, the reader and the request goroutines meet here).
	mu          sync.Mutex
	cond        *sync.Cond
	sid         string
	rid         uint64 // the next rid to send
	requests    int    // the server's 'requests' (§7.1)
	outstanding int
	queue       []byte // payload elements waiting for a request
	queued      uint64 // write sequence numbers: bytes appended to queue so far
	sent        uint64 // and taken into a request
	restart     bool   // a restart request is due (XEP-0206 §5)
	terminate   bool   // a terminate request is due
	terminated  bool   // no more requests after the terminate one
	header      bool   // a stream header precedes the next non-empty payload delivered
	delivered   uint64 // the rid whose response the reader gets next
	responses   map[uint64][]byte
	rbuf        []byte
	rerr        error
	closed      bool
	lastSent    time.Time // when the newest request left (for gap)
	rdl, wdl    time.Time
	ctx         context.Context
	cancel      context.CancelFunc
	split       scanner
}

// dialBOSH prepares the session; the first Write (our stream header) creates it.
func (c *client) dialBOSH(ctx context.Context) (net.Conn, error) {
	cfg := &c.r.cfg
	scheme := "https://"
	if cfg.TLS == "none" {
		scheme = "http://"
	}
	d := &net.Dialer{Timeout: cfg.LoginTimeout}
	if len(c.r.sourceIPs) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: c.r.sourceIPs[c.idx%len(c.r.sourceIPs)]}
	}
	s := &boshStream{url: scheme + cfg.Addr + cfg.BOSHPath, domain: cfg.Domain, gap: cfg.BOSHGap, responses: map[uint64][]byte{}}
	s.cond = sync.NewCond(&s.mu)
	// One user's browser: its own connections (two for the two requests of the window), kept alive.
	s.tr = &http.Transport{TLSClientConfig: c.r.tlsConfig, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
		DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, n, a)
			if err == nil {
				s.mu.Lock()
				if s.local == nil {
					s.local, s.remote = nc.LocalAddr(), nc.RemoteAddr()
				}
				s.mu.Unlock()
			}
			return nc, err
		}}
	s.hc = &http.Client{Transport: s.tr}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.split.maxElement = 1 << 20
	// 2^53-1 is the largest rid (§7.1); start low enough that a long run never gets near it.
	s.rid = uint64(c.idx)*1_000_003 + 1_000
	return s, nil
}

// post sends one body and returns the response's bytes.
func (s *boshStream) post(body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.ctx, (boshWait+30)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("bosh: HTTP " + resp.Status)
	}
	return b, nil
}

// create sends the session creation request and starts the pump.
func (s *boshStream) create() error {
	s.mu.Lock()
	rid := s.rid
	s.rid++
	s.mu.Unlock()
	body := "<body xmlns='" + nsHTTPBind + "' xmlns:xmpp='" + nsXBOSH + "' rid='" + strconv.FormatUint(rid, 10) +
		"' to='" + s.domain + "' xml:lang='en' wait='" + strconv.Itoa(boshWait) + "' hold='1' ver='1.11' xmpp:version='1.0'/>"
	resp, err := s.post([]byte(body))
	if err != nil {
		return err
	}
	attrs, _, _ := splitBody(resp)
	if t := attrOf(attrs, "type"); t == "terminate" {
		return errors.New("bosh: session creation refused: " + attrOf(attrs, "condition"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sid = attrOf(attrs, "sid")
	if s.sid == "" {
		return errors.New("bosh: no sid in the session creation response")
	}
	s.requests = 2
	if n, err := strconv.Atoi(attrOf(attrs, "requests")); err == nil && n >= 1 {
		s.requests = n
	}
	s.header = true
	s.delivered = rid
	s.deliverLocked(rid, resp)
	go s.pump()
	return nil
}

// pump sends requests while the window allows: payloads, restart and terminate as they are due, and an empty
// request whenever none is outstanding (the one the server holds).
func (s *boshStream) pump() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for !s.closed && !s.terminated && !(s.outstanding < s.requests && (len(s.queue) > 0 || s.restart || s.terminate || s.outstanding == 0)) {
			s.cond.Wait()
		}
		if s.closed || s.terminated {
			return
		}
		if s.outstanding > 0 && s.gap > 0 {
			// With -bosh-gap: the outstanding request has surely reached the server before this one leaves, so the
			// two HTTP connections cannot deliver them out of order. XEP-0124 §14.2 has the connection manager
			// put requests back in rid order, but ejabberd 23.01's mod_bosh leaves a request that arrived before
			// its predecessor unanswered once that predecessor is held (until some later reply releases it).
			if d := s.gap - time.Since(s.lastSent); d > 0 {
				s.mu.Unlock()
				time.Sleep(d)
				s.mu.Lock()
				continue
			}
		}
		rid := s.rid
		s.rid++
		b := make([]byte, 0, 160+len(s.queue))
		b = append(b, "<body xmlns='"+nsHTTPBind+"' rid='"...)
		b = strconv.AppendUint(b, rid, 10)
		b = append(b, "' sid='"...)
		b = append(b, s.sid...)
		b = append(b, '\'')
		switch {
		case s.restart:
			// XEP-0206 §5: the restart request carries nothing else.
			b = append(b, " xmlns:xmpp='"+nsXBOSH+"' xmpp:restart='true' to='"+s.domain+"' xml:lang='en'/>"...)
			s.restart = false
			s.header = true
		default:
			if s.terminate {
				b = append(b, " type='terminate'"...)
				s.terminated = true
			}
			if len(s.queue) == 0 {
				b = append(b, "/>"...)
			} else {
				b = append(b, '>')
				b = append(b, s.queue...)
				b = append(b, "</body>"...)
				s.queue = s.queue[:0]
			}
			s.sent = s.queued
		}
		s.outstanding++
		s.lastSent = time.Now()
		s.cond.Broadcast()
		go s.roundTrip(rid, b)
	}
}

func (s *boshStream) roundTrip(rid uint64, body []byte) {
	resp, err := s.post(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outstanding--
	if err != nil {
		if s.rerr == nil && !s.closed {
			s.rerr = err
		}
	} else {
		s.deliverLocked(rid, resp)
	}
	s.cond.Broadcast()
}

// deliverLocked files the response of rid and moves every response now in order to the read buffer.
func (s *boshStream) deliverLocked(rid uint64, resp []byte) {
	s.responses[rid] = resp
	for {
		r, ok := s.responses[s.delivered]
		if !ok {
			return
		}
		delete(s.responses, s.delivered)
		s.delivered++
		attrs, children, ok := splitBody(r)
		if !ok {
			s.rerr = errors.New("bosh: malformed response body")
			return
		}
		if len(children) > 0 && s.header {
			s.rbuf = append(s.rbuf, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"...)
			s.header = false
		}
		s.rbuf = append(s.rbuf, children...)
		if attrOf(attrs, "type") == "terminate" {
			s.rbuf = append(s.rbuf, "</stream:stream>"...)
			s.terminated = true
			if s.rerr == nil {
				s.rerr = io.EOF
			}
		}
	}
}

func (s *boshStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var timer *time.Timer
	for len(s.rbuf) == 0 {
		if s.rerr != nil {
			return 0, s.rerr
		}
		if s.closed {
			return 0, net.ErrClosed
		}
		if !s.rdl.IsZero() {
			d := time.Until(s.rdl)
			if d <= 0 {
				return 0, timeoutError{}
			}
			if timer == nil {
				timer = time.AfterFunc(d, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
				defer timer.Stop()
			}
		}
		s.cond.Wait()
	}
	n := copy(p, s.rbuf)
	s.rbuf = s.rbuf[n:]
	if len(s.rbuf) == 0 {
		s.rbuf = s.rbuf[:0:0]
	}
	return n, nil
}

func (s *boshStream) Write(p []byte) (int, error) {
	switch {
	case bytes.HasPrefix(p, []byte("<?xml")) || bytes.HasPrefix(p, []byte("<stream:stream")):
		s.mu.Lock()
		created := s.sid != ""
		if created {
			s.restart = true
			s.cond.Broadcast()
		}
		s.mu.Unlock()
		if !created {
			if err := s.create(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	case bytes.Equal(p, []byte("</stream:stream>")):
		s.mu.Lock()
		s.terminate = true
		s.cond.Broadcast()
		s.mu.Unlock()
		return len(p), nil
	}
	// Qualify each element (XEP-0206 §6) and queue it; return once a request has taken it.
	var q []byte
	s.split.reset(bytes.NewReader(p))
	s.split.inStream = true
	for {
		ev, el, err := s.split.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		if ev == evStreamClose {
			s.mu.Lock()
			s.terminate = true
			s.mu.Unlock()
			break
		}
		q = appendQualified(q, el)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.terminated {
		return 0, errBOSHClosed
	}
	s.queue = append(s.queue, q...)
	s.queued += uint64(len(q))
	want := s.queued
	s.cond.Broadcast()
	var timer *time.Timer
	for s.sent < want {
		if s.closed || s.terminated || s.rerr != nil {
			if s.rerr != nil && s.rerr != io.EOF {
				return 0, s.rerr
			}
			return 0, errBOSHClosed
		}
		if !s.wdl.IsZero() {
			d := time.Until(s.wdl)
			if d <= 0 {
				return 0, timeoutError{}
			}
			if timer == nil {
				timer = time.AfterFunc(d, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
				defer timer.Stop()
			}
		}
		s.cond.Wait()
	}
	return len(p), nil
}

// appendQualified appends el with xmlns='jabber:client' on its start tag unless it has a default namespace.
func appendQualified(b, el []byte) []byte {
	end := bytes.IndexByte(el, '>')
	if end < 0 || bytes.Contains(el[:end], []byte(" xmlns=")) {
		return append(b, el...)
	}
	nameEnd := 1
	for nameEnd < end && el[nameEnd] != ' ' && el[nameEnd] != '/' && el[nameEnd] != '\t' && el[nameEnd] != '\n' {
		nameEnd++
	}
	b = append(b, el[:nameEnd]...)
	b = append(b, " xmlns='jabber:client'"...)
	return append(b, el[nameEnd:]...)
}

// splitBody returns the start tag's attributes and the children of a <body/>.
func splitBody(r []byte) (attrs, children []byte, ok bool) {
	r = bytes.TrimSpace(r)
	if i := bytes.Index(r, []byte("?>")); bytes.HasPrefix(r, []byte("<?xml")) && i > 0 {
		r = bytes.TrimSpace(r[i+2:])
	}
	if !bytes.HasPrefix(r, []byte("<body")) {
		return nil, nil, false
	}
	end, empty := tagEnd(r)
	if end < 0 {
		return nil, nil, false
	}
	if empty {
		return r[5 : end-1], nil, true
	}
	if !bytes.HasSuffix(r, []byte("</body>")) {
		return nil, nil, false
	}
	return r[5:end], r[end+1 : len(r)-len("</body>")], true
}

// attrOf finds name='v' (or "v") among a start tag's attributes; values are XML-escaped as sent.
func attrOf(attrs []byte, name string) string {
	for i := 0; ; {
		j := bytes.Index(attrs[i:], []byte(name+"="))
		if j < 0 {
			return ""
		}
		j += i
		if j > 0 && attrs[j-1] != ' ' && attrs[j-1] != '\t' && attrs[j-1] != '\n' {
			i = j + len(name)
			continue
		}
		v := attrs[j+len(name)+1:]
		if len(v) == 0 || (v[0] != '\'' && v[0] != '"') {
			return ""
		}
		k := bytes.IndexByte(v[1:], v[0])
		if k < 0 {
			return ""
		}
		return string(v[1 : 1+k])
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Close ends the session: after our </stream:stream>, it waits (briefly) for the terminate request to be answered,
// so that the server's session ends now rather than at 'inactivity'.
func (s *boshStream) Close() error {
	s.mu.Lock()
	if s.terminate && s.sid != "" && !s.closed {
		t := time.AfterFunc(2*time.Second, func() { s.mu.Lock(); s.closed = true; s.cond.Broadcast(); s.mu.Unlock() })
		for s.rerr == nil && !s.closed {
			s.cond.Wait()
		}
		t.Stop()
	}
	already := s.cancel == nil
	s.closed = true
	s.cond.Broadcast()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if !already {
		cancel()
		s.tr.CloseIdleConnections()
	}
	return nil
}

func (s *boshStream) LocalAddr() net.Addr  { s.mu.Lock(); defer s.mu.Unlock(); return s.local }
func (s *boshStream) RemoteAddr() net.Addr { s.mu.Lock(); defer s.mu.Unlock(); return s.remote }
func (s *boshStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.rdl = t
	s.cond.Broadcast()
	s.mu.Unlock()
	return nil
}
func (s *boshStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.wdl = t
	s.cond.Broadcast()
	s.mu.Unlock()
	return nil
}
func (s *boshStream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}
