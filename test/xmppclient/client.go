package xmppclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// WaitTimeout bounds every wait for something the server should send.
const WaitTimeout = 10 * time.Second

// TapConn records the plaintext of a connection into a Transcript. While muted
// is set (the TCP layer under TLS) it records nothing, so the transcript holds
// XML only, never TLS records.
type TapConn struct {
	net.Conn
	tr  *Transcript
	off atomic.Bool
}

// NewTapConn wraps c, recording into tr.
func NewTapConn(c net.Conn, tr *Transcript) *TapConn { return &TapConn{Conn: c, tr: tr} }

// Mute stops recording, for the TCP layer once TLS runs on top of it.
func (c *TapConn) Mute() { c.off.Store(true) }

// Read reads from the connection and records what arrived as 'S'.
func (c *TapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.off.Load() {
		c.tr.Add('S', p[:n])
	}
	return n, err
}

// Write records p as 'C' and writes it.
func (c *TapConn) Write(p []byte) (int, error) {
	if !c.off.Load() {
		c.tr.Add('C', p)
	}
	return c.Conn.Write(p)
}

// ConnectionState lets mellium see the TLS state through the tap (it needs it
// for SCRAM-*-PLUS channel binding).
func (c *TapConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// Client is a mellium.im/xmpp session with everything it receives queued as
// Elems for the test to wait on.
type Client struct {
	t   testing.TB
	S   *xmpp.Session
	JID jid.JID // the bound full JID
	tr  *Transcript
	raw net.Conn

	mu     sync.Mutex
	q      []*Elem
	notify chan struct{}

	served   chan struct{} // closed when Serve returns
	serveErr error

	closeOnce sync.Once

	// answer, when set, answers IQ gets addressed to this client from inside the handler (mellium answers
	// unhandled IQs with service-unavailable itself); it returns the reply as XML text, or "".
	answer func(*Elem) string
	// answerIQ is answer for IQ gets and sets alike (SetAnswerIQ).
	answerIQ func(*Elem) string
}

// SetAnswer installs f to answer IQ gets sent to this client from inside the
// handler; f returns the reply as XML text, or "" to leave it unanswered.
func (c *Client) SetAnswer(f func(*Elem) string) {
	c.mu.Lock()
	c.answer = f
	c.mu.Unlock()
}

// SetAnswerIQ is SetAnswer for IQ sets as well as gets (a target answering an XEP-0065 offer). f runs on the
// stream's reading goroutine: what it does blocks the client's reading meanwhile.
func (c *Client) SetAnswerIQ(f func(*Elem) string) {
	c.mu.Lock()
	c.answerIQ = f
	c.mu.Unlock()
}

// Target is where a Client connects: the server's domain and listeners and
// the TLS configuration that trusts its certificate (see TrustTLS).
type Target struct {
	Domain        string
	C2SAddr       string // STARTTLS listener
	DirectTLSAddr string // XEP-0368 direct TLS listener
	TLS           *tls.Config
}

// TrustTLS is a client TLS configuration that verifies the server as domain
// against roots, TLS 1.2 or later.
func TrustTLS(domain string, roots *x509.CertPool) *tls.Config {
	return &tls.Config{ServerName: domain, RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// Options adjusts a login; the zero value is SCRAM-SHA-256 over STARTTLS with
// a server-generated resource.
type Options struct {
	Direct    bool             // XEP-0368 direct TLS port instead of STARTTLS
	Mechs     []sasl.Mechanism // default SCRAM-SHA-256
	Resource  string           // "" = server-generated
	TLSConfig *tls.Config      // default: Target.TLS
}

// Login dials, negotiates TLS, SASL and bind with mellium and starts serving.
// The session is closed when the test ends; on failure the transcript is
// logged.
func Login(t testing.TB, srv Target, local, password string, o Options) (*Client, error) {
	t.Helper()
	if len(o.Mechs) == 0 {
		o.Mechs = []sasl.Mechanism{sasl.ScramSha256}
	}
	cfg := o.TLSConfig
	if cfg == nil {
		cfg = srv.TLS
	}
	origin := jid.MustParse(local + "@" + srv.Domain)
	if o.Resource != "" {
		var err error
		origin, err = origin.WithResource(o.Resource)
		if err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()

	tr := &Transcript{}
	c := &Client{t: t, tr: tr, notify: make(chan struct{}, 1), served: make(chan struct{})}
	var rw net.Conn
	var state xmpp.SessionState
	features := []xmpp.StreamFeature{}
	if o.Direct {
		tc, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", srv.DirectTLSAddr)
		if err != nil {
			return nil, fmt.Errorf("direct TLS dial: %w", err)
		}
		c.raw = tc
		rw = &TapConn{Conn: tc, tr: tr}
		// mellium recognises only a bare *tls.Conn as already secure.
		state = xmpp.Secure
	} else {
		nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.C2SAddr)
		if err != nil {
			return nil, err
		}
		c.raw = nc
		tap := &TapConn{Conn: nc, tr: tr}
		rw = tap
		st := xmpp.StartTLS(cfg)
		orig := st.Negotiate
		st.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
			mask, nrw, err := orig(ctx, s, data)
			if tc, ok := nrw.(*tls.Conn); ok {
				tap.off.Store(true)
				nrw = &TapConn{Conn: tc, tr: tr}
			}
			return mask, nrw, err
		}
		features = append(features, st)
	}
	features = append(features, xmpp.SASL("", password, o.Mechs...), BindFeature())
	sess, err := xmpp.NewSession(ctx, origin.Domain(), origin, rw, state, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		c.raw.Close()
		return nil, fmt.Errorf("login %s: %w\ntranscript:\n%s", origin, err, tr.Tail(4096))
	}
	c.S = sess
	c.JID = sess.LocalAddr()
	go func() {
		err := sess.Serve(xmpp.HandlerFunc(c.handle))
		c.mu.Lock()
		c.serveErr = err
		c.mu.Unlock()
		close(c.served)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("transcript of %s:\n%s", c.JID, tr.Tail(8192))
		}
		c.Close()
	})
	return c, nil
}

// MustLogin is Login failing the test on error.
func MustLogin(t testing.TB, srv Target, local, password string, o Options) *Client {
	t.Helper()
	c, err := Login(t, srv, local, password, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handle runs inside Serve: it queues every top-level element and answers
// roster pushes (RFC 6121 §2.1.6 requires the client to acknowledge them).
func (c *Client) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	e, err := ReadElem(xmlstream.MultiReader(xmlstream.Token(start.Copy()), t))
	if err != nil {
		return err
	}
	if e.Is("", "iq") && e.Get("type") == "set" && e.Child(NSRoster, "query") != nil {
		attrs := []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "result"}, {Name: xml.Name{Local: "id"}, Value: e.Get("id")}}
		if f := e.Get("from"); f != "" {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "to"}, Value: f})
		}
		st := xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: attrs}
		if err := t.EncodeToken(st); err != nil {
			return err
		}
		if err := t.EncodeToken(st.End()); err != nil {
			return err
		}
	}
	c.mu.Lock()
	answer, setsToo := c.answer, c.answerIQ != nil
	if setsToo {
		answer = c.answerIQ
	}
	c.q = append(c.q, e)
	c.mu.Unlock()
	if typ := e.Get("type"); answer != nil && e.Is("", "iq") && (typ == "get" || (typ == "set" && setsToo)) {
		if raw := answer(e); raw != "" {
			toks, err := TokensOf(raw)
			if err != nil {
				return err
			}
			for _, tok := range toks {
				if err := t.EncodeToken(tok); err != nil {
					return err
				}
			}
		}
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// Send writes one stanza given as XML text.
func (c *Client) Send(raw string) {
	c.t.Helper()
	toks, err := TokensOf(raw)
	if err != nil {
		c.t.Fatalf("bad test XML %q: %v", raw, err)
	}
	// The bound is a write deadline on the socket, not a context: mellium (v0.22.0 setWriteDeadline) watches the
	// context from a goroutine that may run only after Send returned and the context was cancelled; it then sets
	// the write deadline in the past for a moment, and the next Send fails with "i/o timeout".
	_ = c.raw.SetWriteDeadline(time.Now().Add(WaitTimeout))
	defer func() { _ = c.raw.SetWriteDeadline(time.Time{}) }()
	if err := c.S.Send(context.Background(), NewSliceReader(toks)); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.JID, raw, err)
	}
}

// IQ sends an IQ get/set given as XML text and returns the response.
func (c *Client) IQ(raw string) *Elem {
	c.t.Helper()
	e, err := c.TryIQ(raw)
	if err != nil {
		c.t.Fatalf("%s: iq %s: %v\ntranscript:\n%s", c.JID, raw, err, c.tr.Tail(4096))
	}
	return e
}

// TryIQ is IQ returning errors instead of failing.
func (c *Client) TryIQ(raw string) (*Elem, error) {
	toks, err := TokensOf(raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	// mellium's SendIQ keeps waiting after the stream has ended; give up
	// as soon as Serve returns instead of running into the timeout.
	go func() {
		select {
		case <-c.served:
			cancel()
		case <-ctx.Done():
		}
	}()
	r, err := c.S.SendIQ(ctx, NewSliceReader(toks))
	if err != nil {
		if _, ended := c.WaitEnd(0); ended {
			return nil, fmt.Errorf("stream ended before the answer (%s)", c.StreamError())
		}
		return nil, err
	}
	defer r.Close()
	return ReadElem(r)
}

// Expect waits for the first queued element (received so far or later)
// matching pred, removes it from the queue and returns it.
func (c *Client) Expect(what string, pred func(*Elem) bool) *Elem {
	c.t.Helper()
	e, err := c.Wait(pred, WaitTimeout)
	if err != nil {
		c.t.Fatalf("%s: waiting for %s: %v\nunmatched received: %s\ntranscript:\n%s", c.JID, what, err, c.pending(), c.tr.Tail(4096))
	}
	return e
}

// Absent fails if an element matching pred arrives within d. Only for
// negative checks that have no event to wait for.
func (c *Client) Absent(what string, d time.Duration, pred func(*Elem) bool) {
	c.t.Helper()
	if e, err := c.Wait(pred, d); err == nil {
		c.t.Errorf("%s: unexpected %s: %s", c.JID, what, e)
	}
}

// Wait is Expect returning an error instead of failing: it waits up to d for
// an element matching pred and removes it from the queue.
func (c *Client) Wait(pred func(*Elem) bool, d time.Duration) (*Elem, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	ended := false
	for {
		c.mu.Lock()
		for i, e := range c.q {
			if pred(e) {
				c.q = append(c.q[:i:i], c.q[i+1:]...)
				c.mu.Unlock()
				return e, nil
			}
		}
		serr := c.serveErr
		c.mu.Unlock()
		if ended {
			return nil, fmt.Errorf("stream ended (%v)", serr)
		}
		select {
		case <-c.notify:
		case <-c.served:
			ended = true
		case <-timer.C:
			return nil, fmt.Errorf("timeout after %v", d)
		}
	}
}

func (c *Client) pending() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, e := range c.q {
		parts = append(parts, e.String())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// WaitEnd waits for the stream to end and returns Serve's error (a
// stream.Error when the server sent one).
func (c *Client) WaitEnd(d time.Duration) (error, bool) {
	select {
	case <-c.served:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.serveErr, true
	default:
	}
	select {
	case <-c.served:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.serveErr, true
	case <-time.After(d):
		return nil, false
	}
}

// StreamError returns the stream error condition the stream ended with, or
// "" (waits up to WaitTimeout for the end).
func (c *Client) StreamError() string {
	err, ok := c.WaitEnd(WaitTimeout)
	if !ok {
		return "(stream still open)"
	}
	var se stream.Error
	if errors.As(err, &se) {
		return se.Err
	}
	return fmt.Sprintf("(no stream error: %v)", err)
}

// Close ends the stream politely (</stream:stream>), waits for the server's
// closing tag, then closes the socket.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		// Not SetCloseDeadline: it swaps a context Serve is reading, which
		// the race detector flags inside mellium.
		_ = c.S.Close()
		c.WaitEnd(5 * time.Second)
		c.raw.Close()
	})
}

// T returns the test the client was logged in for.
func (c *Client) T() testing.TB { return c.t }

// Transcript returns the XML exchanged so far.
func (c *Client) Transcript() string { return c.tr.String() }

// TranscriptTail returns at most the last n bytes of the transcript.
func (c *Client) TranscriptTail(n int) string { return c.tr.Tail(n) }

// Raw returns the underlying socket, so a test can drop the connection
// without a closing handshake.
func (c *Client) Raw() net.Conn { return c.raw }

// Predicates.

// IsMessageFrom matches a message from the address from (see JIDMatch).
func IsMessageFrom(from string) func(*Elem) bool {
	return func(e *Elem) bool {
		return e.Is(NSClient, "message") && JIDMatch(e.Get("from"), from)
	}
}

// IsMessageWithBody matches a message whose <body/> is body.
func IsMessageWithBody(body string) func(*Elem) bool {
	return func(e *Elem) bool {
		return e.Is(NSClient, "message") && e.ChildText("body") == body
	}
}

// IsPresence matches a presence of type typ ("" = available) from the
// address from (see JIDMatch).
func IsPresence(from, typ string) func(*Elem) bool {
	return func(e *Elem) bool {
		return e.Is(NSClient, "presence") && JIDMatch(e.Get("from"), from) && e.Get("type") == typ
	}
}

// IsRosterPush matches a roster push (RFC 6121 §2.1.6) for contact.
func IsRosterPush(contact string) func(*Elem) bool {
	return func(e *Elem) bool {
		if !e.Is(NSClient, "iq") || e.Get("type") != "set" {
			return false
		}
		q := e.Child(NSRoster, "query")
		return q != nil && q.Child(NSRoster, "item").Get("jid") == contact
	}
}

// JIDMatch compares a received address with a wanted one; a wanted bare JID
// ("alice@localhost") also matches any of its full JIDs.
func JIDMatch(got, want string) bool {
	if got == want {
		return true
	}
	return !strings.Contains(want, "/") && strings.HasPrefix(got, want+"/")
}

// BindFeature is mellium's BindResource with the client side replaced:
// mellium v0.22.0 always sends an empty <resource/> (bindPayload.TokenReader
// writes the JID field where the resource belongs), so a client-chosen
// resource could never be requested. This sends the resource from the
// session's origin JID, or none for a server-generated one (RFC 6120 §7.6).
func BindFeature() xmpp.StreamFeature {
	f := xmpp.BindResource()
	f.Negotiate = func(ctx context.Context, s *xmpp.Session, data interface{}) (xmpp.SessionState, io.ReadWriter, error) {
		w := s.TokenWriter()
		defer w.Close()
		r := s.TokenReader()
		defer r.Close()
		id := fmt.Sprintf("bind-%d", time.Now().UnixNano())
		iq := xml.StartElement{Name: xml.Name{Space: NSClient, Local: "iq"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "set"}, {Name: xml.Name{Local: "id"}, Value: id}}}
		bind := xml.StartElement{Name: xml.Name{Space: NSBind, Local: "bind"}}
		toks := []xml.Token{iq, bind}
		if res := s.LocalAddr().Resourcepart(); res != "" {
			rs := xml.StartElement{Name: xml.Name{Local: "resource"}}
			toks = append(toks, rs, xml.CharData(res), rs.End())
		}
		toks = append(toks, bind.End(), iq.End())
		for _, tok := range toks {
			if err := w.EncodeToken(tok); err != nil {
				return 0, nil, err
			}
		}
		if err := w.Flush(); err != nil {
			return 0, nil, err
		}
		e, err := ReadElem(r)
		if err != nil {
			return 0, nil, err
		}
		if !e.Is(NSClient, "iq") || e.Get("id") != id || e.Get("type") != "result" {
			return 0, nil, fmt.Errorf("bind failed: %s", e)
		}
		j, err := jid.Parse(e.Child(NSBind, "bind").ChildText("jid"))
		if err != nil {
			return 0, nil, fmt.Errorf("bind result %s: %w", e, err)
		}
		s.UpdateAddr(j)
		return xmpp.Ready, nil, nil
	}
	return f
}
