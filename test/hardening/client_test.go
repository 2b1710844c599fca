// Package hardening proves the abuse limits and the durability guarantees of issue 6 against the real xmppd
// binary (test/harness): each test provokes one limit from a raw socket, asserts the RFC-named error, that the
// offender is gone, the /metrics counter, and that well-behaved clients on the same server lose nothing.
package hardening

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

const (
	nsClient  = "jabber:client"
	nsStream  = "http://etherx.jabber.org/streams"
	nsStreams = "urn:ietf:params:xml:ns:xmpp-streams"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsDelay   = "urn:xmpp:delay"
	wait      = 15 * time.Second
)

var errStreamEnd = errors.New("</stream:stream>")

// elem is a small XML tree for assertions.
type elem struct {
	Name xml.Name
	Attr map[string]string
	Kids []*elem
	Text string
}

func (e *elem) is(space, local string) bool {
	return e != nil && e.Name.Space == space && e.Name.Local == local
}

func (e *elem) child(space, local string) *elem {
	if e == nil {
		return nil
	}
	for _, k := range e.Kids {
		if k.is(space, local) {
			return k
		}
	}
	return nil
}

// condition is the defined condition of a stream error, stanza error or SASL failure.
func (e *elem) condition() string {
	x := e
	if e.is(nsClient, "message") || e.is(nsClient, "iq") || e.is(nsClient, "presence") {
		x = e.child(nsClient, "error")
	}
	if x == nil {
		return ""
	}
	for _, k := range x.Kids {
		if k.Name.Local != "text" {
			return k.Name.Local
		}
	}
	return ""
}

func (e *elem) String() string {
	if e == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%s xmlns=%q", e.Name.Local, e.Name.Space)
	for k, v := range e.Attr {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	b.WriteString(">")
	for _, k := range e.Kids {
		b.WriteString(k.String())
	}
	b.WriteString(e.Text + "</" + e.Name.Local + ">")
	return b.String()
}

func readTree(d *xml.Decoder, start xml.StartElement) (*elem, error) {
	e := &elem{Name: start.Name, Attr: map[string]string{}}
	for _, a := range start.Attr {
		if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
			e.Attr[a.Name.Local] = a.Value
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return e, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			k, err := readTree(d, t.Copy())
			e.Kids = append(e.Kids, k)
			if err != nil {
				return e, err
			}
		case xml.EndElement:
			return e, nil
		case xml.CharData:
			e.Text += string(t)
		}
	}
}

// raw is a hand-driven client connection.
type raw struct {
	t    testing.TB
	srv  *harness.Server
	tcp  net.Conn
	c    net.Conn
	dec  *xml.Decoder
	user string
}

func dial(t testing.TB, srv *harness.Server) *raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.C2SAddr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, srv: srv, tcp: c, c: c}
	r.reset()
	return r
}

func (r *raw) reset() { r.dec = xml.NewDecoder(bufio.NewReader(r.c)) }

func (r *raw) write(s string) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(wait))
	_, err := io.WriteString(r.c, s)
	return err
}

func (r *raw) mustWrite(s string) {
	r.t.Helper()
	if err := r.write(s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next returns the next top-level element (the stream header as an empty elem), errStreamEnd, or an error.
func (r *raw) next(d time.Duration) (*elem, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	for {
		tok, err := r.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == nsStream && t.Name.Local == "stream" {
				return &elem{Name: t.Name}, nil
			}
			return readTree(r.dec, t.Copy())
		case xml.EndElement:
			return nil, errStreamEnd
		}
	}
}

func (r *raw) expect(space, local string) *elem {
	r.t.Helper()
	e, err := r.next(wait)
	if err != nil {
		r.t.Fatalf("waiting for <%s xmlns=%q>: %v", local, space, err)
	}
	if !e.is(space, local) {
		r.t.Fatalf("got %s, want <%s xmlns=%q>", e, local, space)
	}
	return e
}

func (r *raw) open() *elem {
	r.t.Helper()
	r.mustWrite(`<?xml version='1.0'?><stream:stream to='` + r.srv.Domain + `' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
	r.expect(nsStream, "stream")
	return r.expect(nsStream, "features")
}

func (r *raw) starttls() {
	r.t.Helper()
	r.open()
	r.mustWrite(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	r.expect(nsTLS, "proceed")
	tc := tls.Client(r.tcp, &tls.Config{RootCAs: r.srv.CertPool, ServerName: r.srv.Domain})
	_ = tc.SetDeadline(time.Now().Add(wait))
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("TLS: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	r.c = tc
	r.reset()
	r.open()
}

// plain runs SASL PLAIN and returns the answer (<success/> or <failure/>).
func (r *raw) plain(user, pass string) (*elem, error) {
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if err := r.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + msg + `</auth>`); err != nil {
		return nil, err
	}
	return r.next(wait)
}

// login: STARTTLS, PLAIN, restart, bind; then initial presence when available.
func login(t testing.TB, srv *harness.Server, user, pass, resource string, available bool) *raw {
	t.Helper()
	r := dial(t, srv)
	r.starttls()
	if e, err := r.plain(user, pass); err != nil || !e.is(nsSASL, "success") {
		t.Fatalf("login %s: %v %v", user, e, err)
	}
	r.reset()
	r.open()
	r.mustWrite(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + resource + `</resource></bind></iq>`)
	for {
		e := r.expect(nsClient, "iq")
		if e.Attr["id"] == "bind" {
			if e.Attr["type"] != "result" {
				t.Fatalf("bind: %s", e)
			}
			break
		}
	}
	r.user = user
	if available {
		r.mustWrite(`<presence/>`)
	}
	return r
}

// streamError reads until the stream ends and returns the stream error condition ("" if none) and whether the
// server then closed the connection.
func (r *raw) streamError(d time.Duration) (cond string, closed bool, before []*elem) {
	deadline := time.Now().Add(d)
	for {
		e, err := r.next(time.Until(deadline))
		if err == errStreamEnd {
			_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := r.c.Read(make([]byte, 1))
			return cond, err != nil && !isTimeout(err), before
		}
		if err != nil {
			return cond, !isTimeout(err), before
		}
		if e.is(nsStream, "error") {
			cond = e.condition()
		} else {
			before = append(before, e)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var seq atomic.Int64

// newUser creates an account through the CLI.
func newUser(t testing.TB, srv *harness.Server, role string) (string, string) {
	t.Helper()
	u := fmt.Sprintf("%s%d", role, seq.Add(1))
	p := "pw-" + u + "-secret"
	srv.AddUser(t, u, p)
	return u, p
}

// metric returns the value of one sample from the server's /metrics ("name" or `name{label="v"}`).
func metric(t testing.TB, srv *harness.Server, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.DebugAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(sample):]), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", sample)
	return 0
}

func limitHits(t testing.TB, srv *harness.Server, limit string) float64 {
	return metric(t, srv, `xmppd_limit_hits_total{limit="`+limit+`"}`)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chatCheck proves a well-behaved pair on srv still chats without loss: a sends n messages to b, b gets all, in
// order.
func chatCheck(t testing.TB, srv *harness.Server, a, b *raw, n int) {
	t.Helper()
	go func() {
		for i := 0; i < n; i++ {
			if a.write(fmt.Sprintf(`<message to='%s@%s' type='chat' id='ok%d'><body>ok %d</body></message>`, b.user, srv.Domain, i, i)) != nil {
				return
			}
		}
	}()
	for i := 0; i < n; {
		e, err := b.next(wait)
		if err != nil {
			t.Fatalf("well-behaved client: message %d of %d: %v", i, n, err)
		}
		if !e.is(nsClient, "message") {
			continue
		}
		if want := fmt.Sprintf("ok%d", i); e.Attr["id"] != want {
			t.Fatalf("well-behaved client got %s, want id %s", e, want)
		}
		i++
	}
}

func msgID(e *elem) string { return e.Attr["id"] }

// ourServer starts a private server with extra config.
func ourServer(t testing.TB, sections map[string]string, registration bool) *harness.Server {
	t.Helper()
	return harness.Start(t, harness.Options{Sections: sections, RegistrationAllow: registration})
}
