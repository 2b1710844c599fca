package xmppclient

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Raw is a hand-driven XMPP client connection over a raw socket: the test
// writes exact bytes and reads the server's elements back one by one with a
// deadline, so no client library smooths anything over. It records a
// Transcript of the plaintext in both directions.
//
// Methods come in two forms: X fails the test (Raw.T) on error, TryX returns
// the error, for goroutines and for connections made without a test.
type Raw struct {
	// T is where X methods report failures. MustDialRaw sets it; a test may
	// replace it (for example with a TB whose Fatalf does not Goexit, for
	// use off the test goroutine).
	T       testing.TB
	Target  Target
	Timeout time.Duration // each read and write; default WaitTimeout

	User string // localpart authenticated by Login or AuthBind
	JID  string // full JID bound by Bind

	tcp net.Conn // innermost TCP connection
	rw  net.Conn // current layer (TCP or TLS), wrapped in tap
	tap *TapConn
	tr  *Transcript
	br  *bufio.Reader
	dec *xml.Decoder
	wmu sync.Mutex

	done chan struct{} // closed when Serve's goroutine ends
}

// RawOptions adjusts DialRaw; the zero value dials the STARTTLS port with
// WaitTimeout and Target.TLS.
type RawOptions struct {
	Direct  bool          // XEP-0368 direct TLS port instead of the STARTTLS one
	TLS     *tls.Config   // for direct TLS and UpgradeTLS(nil); default Target.TLS
	Timeout time.Duration // dial, handshake and every read and write; default WaitTimeout
}

// ErrStreamEnd is returned by Next when the server closed its stream with
// </stream:stream>.
var ErrStreamEnd = errors.New("</stream:stream> received")

// StreamHeader is a client stream header to the domain given as its one %s.
const StreamHeader = `<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

// DialRaw connects to target's STARTTLS port, or with o.Direct to its direct
// TLS port and completes the TLS handshake. The connection has no test: set T
// before calling X methods, or use MustDialRaw.
func DialRaw(target Target, o RawOptions) (*Raw, error) {
	if o.Timeout == 0 {
		o.Timeout = WaitTimeout
	}
	if o.TLS != nil {
		target.TLS = o.TLS
	}
	addr := target.C2SAddr
	if o.Direct {
		addr = target.DirectTLSAddr
	}
	nc, err := net.DialTimeout("tcp", addr, o.Timeout)
	if err != nil {
		return nil, err
	}
	r := &Raw{Target: target, Timeout: o.Timeout, tcp: nc, tr: &Transcript{}}
	layer := nc
	if o.Direct {
		tc, err := r.handshake(nil)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("direct TLS handshake: %w", err)
		}
		layer = tc
	}
	r.setLayer(layer)
	return r, nil
}

// MustDialRaw is DialRaw failing t on error. The socket is closed when the
// test ends; if it failed, the transcript is logged.
func MustDialRaw(t testing.TB, target Target, o RawOptions) *Raw {
	t.Helper()
	r, err := DialRaw(target, o)
	if err != nil {
		t.Fatal(err)
	}
	r.T = t
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raw transcript:\n%s", r.tr.Tail(8192))
		}
		r.tcp.Close()
	})
	return r
}

// fatal reports err through Fatalf, the one method a TB that must not
// Goexit (off the test goroutine) has to override.
func (r *Raw) fatal(err error) {
	r.T.Helper()
	r.T.Fatalf("%v", err)
}

func (r *Raw) handshake(cfg *tls.Config) (*tls.Conn, error) {
	if cfg == nil {
		cfg = r.Target.TLS
	}
	tc := tls.Client(r.tcp, cfg.Clone())
	_ = tc.SetDeadline(time.Now().Add(r.Timeout))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

func (r *Raw) setLayer(c net.Conn) {
	r.tap = NewTapConn(c, r.tr)
	r.rw = r.tap
	r.Reset()
}

// Reset starts a fresh XML parser, as both sides do on a stream restart
// (RFC 6120 §4.3.3).
func (r *Raw) Reset() {
	r.br = bufio.NewReader(r.rw)
	// br is an io.ByteReader, so the decoder reads through it without a
	// buffer of its own and Buffered() in UpgradeTLS is exact.
	r.dec = xml.NewDecoder(r.br)
}

// Conn returns the TCP connection, so a test can drop it without any closing
// handshake.
func (r *Raw) Conn() net.Conn { return r.tcp }

// TLSState is the state of the TLS layer (Version 0 before TLS).
func (r *Raw) TLSState() tls.ConnectionState { return r.tap.ConnectionState() }

// TryWrite sends s verbatim.
func (r *Raw) TryWrite(s string) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	_ = r.rw.SetWriteDeadline(time.Now().Add(r.Timeout))
	_, err := io.WriteString(r.rw, s)
	return err
}

// Write is TryWrite failing the test.
func (r *Raw) Write(s string) {
	r.T.Helper()
	if err := r.TryWrite(s); err != nil {
		r.T.Fatalf("write %q: %v", trunc(s, 200), err)
	}
}

// Next returns the next element the server sends within d: the stream header
// (as an Elem with no children), a complete top-level element, ErrStreamEnd
// for </stream:stream>, or the read error. Anything else at stream level
// (text, comments, processing instructions) is an error.
func (r *Raw) Next(d time.Duration) (*Elem, error) {
	_ = r.rw.SetReadDeadline(time.Now().Add(d))
	defer r.rw.SetReadDeadline(time.Time{})
	return r.next()
}

// Recv is Next without a deadline, for a reader goroutine (see Serve).
func (r *Raw) Recv() (*Elem, error) { return r.next() }

func (r *Raw) next() (*Elem, error) {
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == NSStream && t.Name.Local == "stream" {
				return &Elem{Name: t.Name, Attr: StripNS(t.Copy().Attr)}, nil
			}
			return ReadElemFrom(r.dec, t.Copy())
		case xml.EndElement:
			if t.Name.Space == NSStream && t.Name.Local == "stream" {
				return nil, ErrStreamEnd
			}
			return nil, fmt.Errorf("unexpected end element %v", t.Name)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("unexpected text %q at stream level", t)
			}
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, fmt.Errorf("server sent a processing instruction %q", t.Target)
			}
		default:
			return nil, fmt.Errorf("server sent %T at stream level", tok)
		}
	}
}

// TryExpect reads the next element and returns an error unless it is
// space/local.
func (r *Raw) TryExpect(space, local string) (*Elem, error) {
	e, err := r.Next(r.Timeout)
	if err != nil {
		return nil, fmt.Errorf("waiting for <%s xmlns='%s'>: %w", local, space, err)
	}
	if !e.Is(space, local) {
		return nil, fmt.Errorf("got %s, want <%s xmlns='%s'>", e, local, space)
	}
	return e, nil
}

// Expect is TryExpect failing the test.
func (r *Raw) Expect(space, local string) *Elem {
	r.T.Helper()
	e, err := r.TryExpect(space, local)
	if err != nil {
		r.fatal(err)
	}
	return e
}

// ExpectIQ reads elements until the IQ with the given id arrives (skipping
// everything else), within Timeout.
func (r *Raw) ExpectIQ(id string) *Elem {
	r.T.Helper()
	deadline := time.Now().Add(r.Timeout)
	for {
		e, err := r.Next(time.Until(deadline))
		if err != nil {
			r.T.Fatalf("waiting for iq id=%s: %v", id, err)
		}
		if e.Is(NSClient, "iq") && e.Get("id") == id {
			return e
		}
	}
}

// TryOpenTo sends a stream header to domain and returns the server's header
// and features. A header without the attributes RFC 6120 §4.7 requires
// (version 1.0, an id, from = Target.Domain) is an error.
func (r *Raw) TryOpenTo(domain string) (header, features *Elem, err error) {
	if err := r.TryWrite(fmt.Sprintf(StreamHeader, domain)); err != nil {
		return nil, nil, err
	}
	if header, err = r.TryExpect(NSStream, "stream"); err != nil {
		return nil, nil, err
	}
	if features, err = r.TryExpect(NSStream, "features"); err != nil {
		return header, nil, err
	}
	switch {
	case header.Get("version") != "1.0":
		err = fmt.Errorf("stream header version = %q, want 1.0: %s", header.Get("version"), header)
	case header.Get("id") == "":
		err = fmt.Errorf("stream header without id: %s", header)
	case header.Get("from") != r.Target.Domain:
		err = fmt.Errorf("stream header from = %q, want %q", header.Get("from"), r.Target.Domain)
	}
	return header, features, err
}

// TryOpen is TryOpenTo(Target.Domain).
func (r *Raw) TryOpen() (header, features *Elem, err error) { return r.TryOpenTo(r.Target.Domain) }

// Open is TryOpen failing the test.
func (r *Raw) Open() (header, features *Elem) {
	r.T.Helper()
	header, features, err := r.TryOpen()
	if err != nil {
		r.fatal(err)
	}
	return header, features
}

// StartTLS negotiates TLS on an open plaintext stream (RFC 6120 §5.4.2) and
// opens the new stream; it returns the features offered over TLS.
func (r *Raw) StartTLS() *Elem {
	r.T.Helper()
	r.Write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	r.Expect(NSTLS, "proceed")
	r.UpgradeTLS(nil)
	_, f := r.Open()
	return f
}

// UpgradeTLS runs the TLS handshake on the TCP connection after <proceed/>,
// with cfg (nil = the dial's configuration).
func (r *Raw) UpgradeTLS(cfg *tls.Config) {
	r.T.Helper()
	if n := r.br.Buffered(); n > 0 {
		r.T.Fatalf("server sent %d bytes after <proceed/> before the TLS handshake", n)
	}
	r.tap.Mute()
	tc, err := r.handshake(cfg)
	if err != nil {
		r.T.Fatalf("TLS handshake after <proceed/>: %v", err)
	}
	r.setLayer(tc)
}

// TryAuthPlain runs SASL PLAIN and returns the answer (<success/> or
// <failure/>).
func (r *Raw) TryAuthPlain(user, password string) (*Elem, error) {
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	if err := r.TryWrite(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + msg + `</auth>`); err != nil {
		return nil, err
	}
	return r.Next(r.Timeout)
}

// AuthPlain is TryAuthPlain failing the test.
func (r *Raw) AuthPlain(user, password string) *Elem {
	r.T.Helper()
	e, err := r.TryAuthPlain(user, password)
	if err != nil {
		r.T.Fatalf("SASL PLAIN: %v", err)
	}
	return e
}

// TryBind binds resource ("" = server-generated), sets JID and returns it.
func (r *Raw) TryBind(resource string) (string, error) {
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	if err := r.TryWrite(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` + res + `</bind></iq>`); err != nil {
		return "", err
	}
	e, err := r.TryExpect(NSClient, "iq")
	if err != nil {
		return "", err
	}
	if e.Get("type") != "result" || e.Get("id") != "bind1" {
		return "", fmt.Errorf("bind: %s", e)
	}
	j := e.Child(NSBind, "bind").ChildText("jid")
	if j == "" {
		return "", fmt.Errorf("bind result without jid: %s", e)
	}
	r.JID = j
	return j, nil
}

// Bind is TryBind failing the test.
func (r *Raw) Bind(resource string) string {
	r.T.Helper()
	j, err := r.TryBind(resource)
	if err != nil {
		r.fatal(err)
	}
	return j
}

// TryAuthBind logs in on an open encrypted stream: PLAIN (which must
// succeed), stream restart, bind. It sets User and JID and returns the bound
// JID.
func (r *Raw) TryAuthBind(user, password, resource string) (string, error) {
	e, err := r.TryAuthPlain(user, password)
	if err != nil {
		return "", fmt.Errorf("SASL PLAIN for %s: %w", user, err)
	}
	if !e.Is(NSSASL, "success") {
		return "", fmt.Errorf("PLAIN for %s: %s", user, e)
	}
	r.User = user
	r.Reset()
	_, f, err := r.TryOpen()
	if err != nil {
		return "", err
	}
	if f.Child(NSBind, "bind") == nil {
		return "", fmt.Errorf("no bind feature after SASL: %s", f)
	}
	return r.TryBind(resource)
}

// Login opens the stream, runs STARTTLS (unless already on TLS), then
// AuthBind, failing the test on any error; it returns the bound JID.
func (r *Raw) Login(user, password, resource string) string {
	r.T.Helper()
	_, f := r.Open()
	if r.TLSState().Version == 0 {
		if f.Child(NSTLS, "starttls") == nil {
			r.T.Fatalf("no STARTTLS offered: %s", f)
		}
		r.StartTLS()
	}
	j, err := r.TryAuthBind(user, password, resource)
	if err != nil {
		r.fatal(err)
	}
	return j
}

// StreamEnd is what a server sent up to and including the end of a stream.
type StreamEnd struct {
	Before    []*Elem // elements before <stream:error/>, header included
	Error     *Elem   // the <stream:error/>, nil if none
	ClosedTag bool    // </stream:stream> was received
	EOF       bool    // the server then closed the connection (EOF or reset)
	Err       error   // what ended reading otherwise
}

// Condition is the defined condition of the stream error, "" if none.
func (r StreamEnd) Condition() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.StreamErrorCondition()
}

func (r StreamEnd) String() string {
	return fmt.Sprintf("before=%v error=%s closingTag=%v eof=%v err=%v", r.Before, r.Error, r.ClosedTag, r.EOF, r.Err)
}

// ReadStreamEnd reads until the server ends the stream (within Timeout),
// collecting what it sent.
func (r *Raw) ReadStreamEnd() StreamEnd {
	var res StreamEnd
	deadline := time.Now().Add(r.Timeout)
	for {
		e, err := r.Next(time.Until(deadline))
		if err == ErrStreamEnd {
			res.ClosedTag = true
			// RFC 6120 §4.4: after </stream:stream> the server closes the
			// TCP connection (TLS close_notify first, which reads as EOF).
			_ = r.rw.SetReadDeadline(time.Now().Add(5 * time.Second))
			var buf [512]byte
			n, rerr := r.br.Read(buf[:])
			if n > 0 {
				res.Err = fmt.Errorf("data after </stream:stream>: %q", buf[:n])
				return res
			}
			res.EOF = isClosed(rerr)
			if !res.EOF {
				res.Err = rerr
			}
			return res
		}
		if err != nil {
			// Closed without a closing tag: EOF, but not ClosedTag.
			res.EOF = isClosed(err)
			res.Err = err
			return res
		}
		if e.Is(NSStream, "error") {
			res.Error = e
		} else if res.Error == nil {
			res.Before = append(res.Before, e)
		} else {
			res.Err = fmt.Errorf("element after the stream error: %s", e)
			return res
		}
	}
}

// ExpectStreamError asserts RFC 6120 §4.9.1: the server sends the stream
// error condition cond (one of conds), then </stream:stream>, then closes.
func (r *Raw) ExpectStreamError(conds ...string) StreamEnd {
	r.T.Helper()
	res := r.ReadStreamEnd()
	if res.Error == nil {
		r.T.Fatalf("no stream error, want %v: %s", conds, res)
	}
	got := res.Condition()
	ok := false
	for _, c := range conds {
		ok = ok || got == c
	}
	if !ok {
		r.T.Fatalf("stream error %q, want %v: %s", got, conds, res)
	}
	if !res.ClosedTag {
		r.T.Errorf("stream error not followed by </stream:stream>: %s", res)
	}
	if !res.EOF {
		r.T.Errorf("server did not close the connection after the stream error: %s", res)
	}
	return res
}

// Serve reads elements on a goroutine of its own until the stream ends,
// handing each to f (nil = discard). Call it once, after login; Close waits
// for it.
func (r *Raw) Serve(f func(*Elem)) {
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		for {
			e, err := r.Recv()
			if err != nil {
				return
			}
			if f != nil {
				f(e)
			}
		}
	}()
}

// Close ends the stream politely (</stream:stream>), waits up to 5 s for
// Serve's goroutine (if any) to see the server's end, then closes the
// connection.
func (r *Raw) Close() {
	_ = r.TryWrite(`</stream:stream>`)
	if r.done != nil {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
		}
	}
	_ = r.rw.Close()
}

// isClosed reports whether a read ended because the server closed the
// connection: EOF (which the decoder reports as a syntax error inside the
// stream element), a reset, or a socket closed under the reader.
func isClosed(err error) bool {
	var se *xml.SyntaxError
	return err != nil && (err == io.EOF || (errors.As(err, &se) && se.Msg == "unexpected EOF") ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed))
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
