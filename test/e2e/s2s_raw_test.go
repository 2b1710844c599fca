package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// Bad input on the s2s port, from a raw socket: the same stream rules as c2s, then the federation's own (a
// stanza's 'from' must be in the authenticated domain).

const s2sHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0'`

type rawS2S struct {
	t   *testing.T
	c   net.Conn
	buf bytes.Buffer
}

func dialS2S(t *testing.T, addr string) *rawS2S {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawS2S{t: t, c: c}
}

func (r *rawS2S) write(s string) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// until reads until what has arrived since the last call contains want, and returns it.
func (r *rawS2S) until(want string) string {
	r.t.Helper()
	deadline := time.Now().Add(s2sWait)
	b := make([]byte, 4096)
	for !strings.Contains(r.buf.String(), want) {
		_ = r.c.SetReadDeadline(deadline)
		n, err := r.c.Read(b)
		r.buf.Write(b[:n])
		if err != nil {
			r.t.Fatalf("waiting for %q: %v; got %q", want, err, r.buf.String())
		}
	}
	s := r.buf.String()
	i := strings.Index(s, want) + len(want)
	r.buf.Reset()
	r.buf.WriteString(s[i:])
	return s[:i]
}

// closed reads to the end of the connection and fails if the server does not close it.
func (r *rawS2S) closed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(s2sWait))
	b := make([]byte, 4096)
	for {
		if _, err := r.c.Read(b); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				r.t.Fatal("the server did not close the connection")
			}
			return
		}
	}
}

func (r *rawS2S) starttls(cfg *tls.Config) {
	r.t.Helper()
	r.write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	r.until("<proceed")
	tc := tls.Client(r.c, cfg)
	if err := tc.Handshake(); err != nil {
		r.t.Fatalf("tls: %v", err)
	}
	r.c = tc
	r.buf.Reset()
}

func TestS2SRawBadInput(t *testing.T) {
	p := startFed(t, fedOptions{}, fedOptions{s2s: `deny = ["denied.test"]`})
	b := p.bS2S
	for _, c := range []struct{ name, send, cond string }{
		{"malformed XML", s2sHeader + ` to='b.test' from='x.test'><message><</message>`, "not-well-formed"},
		{"unknown host", s2sHeader + ` to='nowhere.test' from='x.test'>`, "host-unknown"},
		{"client namespace", `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='b.test' version='1.0'>`, "invalid-namespace"},
		{"from not a domain", s2sHeader + ` to='b.test' from='user@x.test'>`, "invalid-from"},
		{"denied domain", s2sHeader + ` to='b.test' from='denied.test'>`, "policy-violation"},
		{"stanza before authentication", s2sHeader + ` to='b.test' from='a.test'><message from='u@a.test' to='v@b.test'><body>x</body></message>`, "not-authorized"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dialS2S(t, b)
			r.write(c.send)
			got := r.until("</stream:error>")
			if !strings.Contains(got, "<"+c.cond+" ") && !strings.Contains(got, "<"+c.cond+"/>") {
				t.Errorf("want <%s/>, got %s", c.cond, got)
			}
			r.closed()
		})
	}

	// Outgoing, the deny list bounces at once.
	t.Run("stanza to a denied domain", func(t *testing.T) {
		u, pw := p.b.user(t, "bob")
		bob := xmppclient.Online(t, p.b.Server, u, pw, "r")
		bob.Send(`<message to='x@denied.test' type='chat' id='d1'><body>x</body></message>`)
		e := waitFor(t, bob, "bounce", func(e *xmppclient.Elem) bool { return e.Get("id") == "d1" && e.Get("type") == "error" })
		if _, cond := e.StanzaError(); cond != "remote-server-not-found" {
			t.Errorf("bounce %q, want remote-server-not-found", cond)
		}
	})

	// A forged dialback key for a.test: b.test asks a.test (the authoritative server), which says invalid.
	t.Run("forged dialback key", func(t *testing.T) {
		r := dialS2S(t, b)
		r.write(s2sHeader + ` to='b.test' from='a.test'>`)
		r.until("</stream:features>")
		r.starttls(&tls.Config{ServerName: "b.test", InsecureSkipVerify: true})
		r.write(s2sHeader + ` to='b.test' from='a.test'>`)
		r.until("</stream:features>")
		r.write(`<db:result from='a.test' to='b.test'>0123456789abcdef</db:result>`)
		got := r.until("</stream:error>")
		if !strings.Contains(got, "type='invalid'") || !strings.Contains(got, "not-authorized") {
			t.Errorf("forged key: %s", got)
		}
	})

	// SASL EXTERNAL as c.test with a certificate of the test CA; then a stanza claiming to come from a.test.
	t.Run("from outside the authenticated domain", func(t *testing.T) {
		certFile, keyFile := p.certs.leaf(t, "c.test", false)
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		r := dialS2S(t, b)
		r.write(s2sHeader + ` to='b.test' from='c.test'>`)
		r.until("</stream:features>")
		r.starttls(&tls.Config{ServerName: "b.test", InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		r.write(s2sHeader + ` to='b.test' from='c.test'>`)
		if f := r.until("</stream:features>"); !strings.Contains(f, "<mechanism>EXTERNAL</mechanism>") {
			t.Fatalf("EXTERNAL not offered for a valid certificate: %s", f)
		}
		r.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>` + base64.StdEncoding.EncodeToString([]byte("c.test")) + `</auth>`)
		r.until("<success")
		r.write(s2sHeader + ` to='b.test' from='c.test'>`)
		r.until("</stream:features>")
		// Accepted: a message from c.test to an unknown user of b.test is answered (service-unavailable).
		r.write(`<message from='eve@c.test' to='nobody@b.test' id='ok1'><body>x</body></message>`)
		r.write(`<message from='mallory@a.test' to='nobody@b.test' id='forged'><body>x</body></message>`)
		got := r.until("</stream:error>")
		if !strings.Contains(got, "invalid-from") {
			t.Errorf("want <invalid-from/>, got %s", got)
		}
		r.closed()
	})

	// EXTERNAL for a domain the certificate does not name is refused.
	t.Run("EXTERNAL for another domain", func(t *testing.T) {
		certFile, keyFile := p.certs.leaf(t, "c.test", false)
		cert, _ := tls.LoadX509KeyPair(certFile, keyFile)
		r := dialS2S(t, b)
		r.write(s2sHeader + ` to='b.test' from='a.test'>`)
		r.until("</stream:features>")
		r.starttls(&tls.Config{ServerName: "b.test", InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		r.write(s2sHeader + ` to='b.test' from='a.test'>`)
		if f := r.until("</stream:features>"); strings.Contains(f, "EXTERNAL") {
			t.Errorf("EXTERNAL offered to a certificate for c.test claiming a.test: %s", f)
		}
		r.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>`)
		if got := r.until("</failure>"); !strings.Contains(got, "not-authorized") {
			t.Errorf("EXTERNAL for a.test with c.test's certificate: %s", got)
		}
	})
}
