package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// rawConn is a hand-driven XMPP client connection: the test writes exact
// bytes and reads back the server's elements one by one with a deadline.
type rawConn struct {
	t    testing.TB
	srv  *testServer
	conn net.Conn // innermost TCP connection
	rw   net.Conn // current layer (TCP or TLS), wrapped in a tap
	tr   *xmppclient.Transcript
	br   *bufio.Reader
	dec  *xml.Decoder
	tap  *xmppclient.TapConn
}

// errStreamEnd is returned by next when the server closed its stream with
// </stream:stream>.
var errStreamEnd = errors.New("</stream:stream> received")

const streamHeaderFmt = `<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

func dialRaw(t testing.TB, srv *testServer) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.C2SAddr, xmppclient.WaitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return newRaw(t, srv, nc, nc)
}

// dialRawTLS connects to the XEP-0368 direct TLS port.
func dialRawTLS(t testing.TB, srv *testServer, cfg *tls.Config) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.DirectTLSAddr, xmppclient.WaitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		cfg = srv.tlsConfig()
	}
	tc := tls.Client(nc, cfg)
	_ = tc.SetDeadline(time.Now().Add(xmppclient.WaitTimeout))
	if err := tc.Handshake(); err != nil {
		nc.Close()
		t.Fatalf("direct TLS handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	return newRaw(t, srv, nc, tc)
}

func newRaw(t testing.TB, srv *testServer, nc, layer net.Conn) *rawConn {
	rc := &rawConn{t: t, srv: srv, conn: nc, tr: &xmppclient.Transcript{}}
	rc.setLayer(layer)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raw transcript:\n%s", rc.tr.Tail(8192))
		}
		nc.Close()
	})
	return rc
}

func (rc *rawConn) setLayer(c net.Conn) {
	rc.tap = xmppclient.NewTapConn(c, rc.tr)
	rc.rw = rc.tap
	rc.resetDecoder()
}

// resetDecoder starts a fresh XML parser, as both sides do on a stream
// restart (RFC 6120 §4.3.3).
func (rc *rawConn) resetDecoder() {
	rc.br = bufio.NewReader(rc.rw)
	// br is an io.ByteReader, so the decoder reads through it without a
	// buffer of its own and Buffered() below is exact.
	rc.dec = xml.NewDecoder(rc.br)
}

// write sends s verbatim.
func (rc *rawConn) write(s string) {
	rc.t.Helper()
	_ = rc.rw.SetWriteDeadline(time.Now().Add(xmppclient.WaitTimeout))
	if _, err := io.WriteString(rc.rw, s); err != nil {
		rc.t.Fatalf("write %q: %v", trunc(s, 200), err)
	}
}

// tryWrite is write that tolerates the server having closed already.
func (rc *rawConn) tryWrite(s string) error {
	_ = rc.rw.SetWriteDeadline(time.Now().Add(xmppclient.WaitTimeout))
	_, err := io.WriteString(rc.rw, s)
	return err
}

// next returns the next element the server sends: the stream header (as an
// Elem with no children), a complete top-level element, errStreamEnd for
// </stream:stream>, or the read error.
func (rc *rawConn) next(d time.Duration) (*xmppclient.Elem, error) {
	_ = rc.rw.SetReadDeadline(time.Now().Add(d))
	defer rc.rw.SetReadDeadline(time.Time{})
	for {
		tok, err := rc.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == xmppclient.NSStream && t.Name.Local == "stream" {
				return &xmppclient.Elem{Name: t.Name, Attr: xmppclient.StripNS(t.Copy().Attr)}, nil
			}
			return xmppclient.ReadElemFrom(rc.dec, t.Copy())
		case xml.EndElement:
			if t.Name.Space == xmppclient.NSStream && t.Name.Local == "stream" {
				return nil, errStreamEnd
			}
			return nil, fmt.Errorf("unexpected end element %v", t.Name)
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
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

// expect reads the next element and fails unless it is space/local.
func (rc *rawConn) expect(space, local string) *xmppclient.Elem {
	rc.t.Helper()
	e, err := rc.next(xmppclient.WaitTimeout)
	if err != nil {
		rc.t.Fatalf("waiting for <%s xmlns='%s'>: %v", local, space, err)
	}
	if !e.Is(space, local) {
		rc.t.Fatalf("got %s, want <%s xmlns='%s'>", e, local, space)
	}
	return e
}

// open sends a stream header to domain and returns the server's header and
// features, checking the header's required attributes (RFC 6120 §4.7).
func (rc *rawConn) open(domain string) (header, features *xmppclient.Elem) {
	rc.t.Helper()
	rc.write(fmt.Sprintf(streamHeaderFmt, domain))
	return rc.readOpen()
}

func (rc *rawConn) readOpen() (header, features *xmppclient.Elem) {
	rc.t.Helper()
	header = rc.expect(xmppclient.NSStream, "stream")
	if header.Get("version") != "1.0" {
		rc.t.Errorf("stream header version = %q, want 1.0: %s", header.Get("version"), header)
	}
	if header.Get("id") == "" {
		rc.t.Errorf("stream header without id: %s", header)
	}
	if header.Get("from") != rc.srv.Domain {
		rc.t.Errorf("stream header from = %q, want %q", header.Get("from"), rc.srv.Domain)
	}
	features = rc.expect(xmppclient.NSStream, "features")
	return header, features
}

// starttls negotiates TLS on the STARTTLS port (RFC 6120 §5.4.2) and opens
// the new stream; it returns the post-TLS features.
func (rc *rawConn) starttls() *xmppclient.Elem {
	rc.t.Helper()
	rc.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	rc.expect(xmppclient.NSTLS, "proceed")
	rc.upgradeTLS(nil)
	_, f := rc.open(rc.srv.Domain)
	return f
}

// upgradeTLS runs the TLS handshake on the TCP connection after <proceed/>.
func (rc *rawConn) upgradeTLS(cfg *tls.Config) {
	rc.t.Helper()
	if n := rc.br.Buffered(); n > 0 {
		rc.t.Fatalf("server sent %d bytes after <proceed/> before the TLS handshake", n)
	}
	if cfg == nil {
		cfg = rc.srv.tlsConfig()
	}
	rc.tap.Mute()
	tc := tls.Client(rc.conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(xmppclient.WaitTimeout))
	if err := tc.Handshake(); err != nil {
		rc.t.Fatalf("TLS handshake after <proceed/>: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	rc.setLayer(tc)
}

func (rc *rawConn) tlsState() tls.ConnectionState {
	return rc.tap.ConnectionState()
}

// authPlain runs SASL PLAIN and returns <success/> or <failure/>.
func (rc *rawConn) authPlain(user, password string) *xmppclient.Elem {
	rc.t.Helper()
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	rc.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + msg + `</auth>`)
	e, err := rc.next(xmppclient.WaitTimeout)
	if err != nil {
		rc.t.Fatalf("SASL PLAIN: %v", err)
	}
	return e
}

// login runs STARTTLS (unless already on TLS), PLAIN, stream restart and bind
// and returns the bound JID.
func (rc *rawConn) login(user, password, resource string) string {
	rc.t.Helper()
	if rc.tlsState().Version == 0 {
		_, f := rc.open(rc.srv.Domain)
		if f.Child(xmppclient.NSTLS, "starttls") == nil {
			rc.t.Fatalf("no STARTTLS offered: %s", f)
		}
		rc.starttls()
	} else {
		rc.open(rc.srv.Domain)
	}
	if r := rc.authPlain(user, password); !r.Is(xmppclient.NSSASL, "success") {
		rc.t.Fatalf("PLAIN for %s: %s", user, r)
	}
	rc.resetDecoder()
	_, f := rc.open(rc.srv.Domain)
	if f.Child(xmppclient.NSBind, "bind") == nil {
		rc.t.Fatalf("no bind feature after SASL: %s", f)
	}
	return rc.bind(resource)
}

func (rc *rawConn) bind(resource string) string {
	rc.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	rc.write(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>` + res + `</bind></iq>`)
	e := rc.expect(xmppclient.NSClient, "iq")
	if e.Get("type") != "result" || e.Get("id") != "bind1" {
		rc.t.Fatalf("bind: %s", e)
	}
	j := e.Child(xmppclient.NSBind, "bind").ChildText("jid")
	if j == "" {
		rc.t.Fatalf("bind result without jid: %s", e)
	}
	return j
}

// expectIQ reads elements until the IQ with the given id arrives (skipping
// presence and messages), with a deadline.
func (rc *rawConn) expectIQ(id string) *xmppclient.Elem {
	rc.t.Helper()
	deadline := time.Now().Add(xmppclient.WaitTimeout)
	for {
		e, err := rc.next(time.Until(deadline))
		if err != nil {
			rc.t.Fatalf("waiting for iq id=%s: %v", id, err)
		}
		if e.Is(xmppclient.NSClient, "iq") && e.Get("id") == id {
			return e
		}
	}
}

// streamErrorResult is what a server sent up to and including the end of a
// stream it closed with an error.
type streamErrorResult struct {
	Before    []*xmppclient.Elem // elements before <stream:error/>, header included
	Error     *xmppclient.Elem   // the <stream:error/>, nil if none
	ClosedTag bool               // </stream:stream> followed the error
	EOF       bool               // and then the server closed the TCP connection
	Err       error              // the read error that ended reading
}

func (r streamErrorResult) String() string {
	var parts []string
	for _, e := range r.Before {
		parts = append(parts, e.String())
	}
	return fmt.Sprintf("before=%v error=%s closingTag=%v eof=%v err=%v", parts, r.Error, r.ClosedTag, r.EOF, r.Err)
}

// readStreamError reads until the server ends the stream, collecting what it
// sent.
func (rc *rawConn) readStreamError() streamErrorResult {
	var res streamErrorResult
	deadline := time.Now().Add(xmppclient.WaitTimeout)
	for {
		e, err := rc.next(time.Until(deadline))
		if err == errStreamEnd {
			res.ClosedTag = true
			// RFC 6120 §4.4: after </stream:stream> the server closes the
			// TCP connection (TLS close_notify first, which reads as EOF).
			_ = rc.rw.SetReadDeadline(time.Now().Add(5 * time.Second))
			var buf [512]byte
			n, rerr := rc.br.Read(buf[:])
			if n > 0 {
				res.Err = fmt.Errorf("data after </stream:stream>: %q", buf[:n])
				return res
			}
			res.EOF = rerr == io.EOF || isConnReset(rerr)
			if !res.EOF {
				res.Err = rerr
			}
			return res
		}
		if err != nil {
			res.Err = err
			return res
		}
		if e.Is(xmppclient.NSStream, "error") {
			res.Error = e
		} else if res.Error == nil {
			res.Before = append(res.Before, e)
		} else {
			res.Err = fmt.Errorf("element after the stream error: %s", e)
			return res
		}
	}
}

// expectStreamError asserts RFC 6120 §4.9.1: the server sends the error
// condition cond (one of conds), then </stream:stream>, then closes.
func (rc *rawConn) expectStreamError(conds ...string) streamErrorResult {
	rc.t.Helper()
	res := rc.readStreamError()
	if res.Error == nil {
		rc.t.Fatalf("no stream error, want %v: %s", conds, res)
	}
	got := res.Error.StreamErrorCondition()
	ok := false
	for _, c := range conds {
		ok = ok || got == c
	}
	if !ok {
		rc.t.Fatalf("stream error %q, want %v: %s", got, conds, res)
	}
	if !res.ClosedTag {
		rc.t.Errorf("stream error not followed by </stream:stream>: %s", res)
	}
	if !res.EOF {
		rc.t.Errorf("server did not close the connection after the stream error: %s", res)
	}
	return res
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || errors.Is(err, net.ErrClosed))
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
