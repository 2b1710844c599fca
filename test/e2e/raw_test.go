package e2e

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// Stream-level error cases of RFC 6120 §4.9 and the restrictions of §11,
// written as exact bytes so no client library smooths them over.

func TestRawStreamHeaderErrors(t *testing.T) {
	srv := shared(t)
	cases := []struct {
		name   string
		header string
		want   string
	}{
		// §4.9.3.6: the 'to' domain is not served.
		{"host-unknown", `<?xml version='1.0'?><stream:stream to='example.org' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, "host-unknown"},
		// §4.9.3.10: the streams namespace is wrong.
		{"invalid-namespace-stream", `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://wrong.example.org/streams'>`, "invalid-namespace"},
		// §4.9.3.10: the content namespace is neither jabber:client nor jabber:server.
		{"invalid-namespace-content", `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='urn:example:wrong' xmlns:stream='http://etherx.jabber.org/streams'>`, "invalid-namespace"},
		// §4.9.3.2: the stream element uses a prefix other than "stream"
		// (the RFC's own example).
		{"bad-namespace-prefix", `<?xml version='1.0'?><foobar:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:foobar='http://etherx.jabber.org/streams'>`, "bad-namespace-prefix"},
		// §4.7.5: a major version above ours.
		{"unsupported-version", `<?xml version='1.0'?><stream:stream to='localhost' version='2.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, "unsupported-version"},
		// §11.1: no DTD.
		{"restricted-xml-doctype", `<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY foo "bar">]><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`, "restricted-xml"},
		// §4.9.3.13: not even XML.
		{"not-well-formed-header", `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to>`, "not-well-formed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			rc.Write(tc.header)
			res := rc.ExpectStreamError(tc.want)
			// §4.9.1.2: a receiving entity that has not yet sent its own
			// header sends one before the error.
			if len(res.Before) == 0 || !res.Before[0].Is(xmppclient.NSStream, "stream") {
				t.Errorf("no stream header before the error: %s", res)
			}
			for _, e := range res.Before {
				if e.Is(xmppclient.NSStream, "features") {
					t.Errorf("features sent on a stream that is being refused: %s", res)
				}
			}
		})
	}
}

// afterHeader opens a valid plaintext stream and consumes header and
// features, ready for the bytes under test.
func afterHeader(t *testing.T, srv *testServer) *rawConn {
	rc := dialRaw(t, srv)
	rc.Open()
	return rc
}

func TestRawInStreamErrors(t *testing.T) {
	srv := shared(t)
	cases := []struct {
		name  string
		send  string
		want  []string
		authn bool // send after TLS + authentication + bind
	}{
		{"mismatched-end-tag", `<a></b>`, []string{"not-well-formed"}, false},
		{"unquoted-attribute", `<message to=bob/>`, []string{"not-well-formed"}, false},
		{"invalid-utf8-pre-auth", "<message><body>\xff\xfe</body></message>", []string{"not-well-formed"}, false},
		{"invalid-utf8-in-body", "<message to='nobody@localhost'><body>ok \xc3\x28 bad</body></message>", []string{"not-well-formed"}, true},
		{"comment", `<!-- hello -->`, []string{"restricted-xml"}, false},
		{"comment-inside-stanza", `<message to='nobody@localhost'><!-- x --><body>x</body></message>`, []string{"restricted-xml"}, true},
		{"processing-instruction", `<?foo bar?>`, []string{"restricted-xml"}, false},
		// §11.1 forbids entity references other than the five predefined
		// ones; an undeclared one is also an XML well-formedness error, so
		// either condition is correct.
		{"entity-reference", `<message to='nobody@localhost'><body>&foo;</body></message>`, []string{"restricted-xml", "not-well-formed"}, true},
		// §4.9.3.12: stanzas before authentication.
		{"message-before-auth", `<message to='bob@localhost' type='chat'><body>hi</body></message>`, []string{"not-authorized"}, false},
		{"iq-before-auth", `<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`, []string{"not-authorized"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rc *rawConn
			if tc.authn {
				u, pw := srv.user(t, "raw")
				rc = dialRaw(t, srv)
				rc.Login(u, pw, "raw")
			} else {
				rc = afterHeader(t, srv)
			}
			send := strings.ReplaceAll(tc.send, "@localhost", "@"+srv.Domain)
			rc.Write(send)
			res := rc.ExpectStreamError(tc.want...)
			for _, e := range res.Before {
				if e.Is(xmppclient.NSClient, "message") {
					t.Errorf("server processed a stanza from a bad stream: %s", e)
				}
			}
		})
	}
}

// The same stanza after TLS, before SASL: still not authorized.
func TestRawMessageAfterTLSBeforeAuth(t *testing.T) {
	srv := shared(t)
	rc := dialRaw(t, srv)
	rc.Open()
	rc.StartTLS()
	rc.Write(`<message to='x@` + srv.Domain + `' type='chat'><body>hi</body></message>`)
	rc.ExpectStreamError("not-authorized")
}

// RFC 6120 §5.3.1 / §6.4: with require_encryption, the features before TLS
// list STARTTLS as <required/>, PLAIN is not offered over plaintext, and
// SASL attempted before TLS fails with <encryption-required/>.
func TestRawEncryptionRequired(t *testing.T) {
	srv := shared(t)
	rc := dialRaw(t, srv)
	_, f := rc.Open()
	st := f.Child(xmppclient.NSTLS, "starttls")
	if st == nil || st.Child(xmppclient.NSTLS, "required") == nil {
		t.Fatalf("features before TLS must contain <starttls><required/></starttls>: %s", f)
	}
	if m := f.Child(xmppclient.NSSASL, "mechanisms"); m != nil {
		for _, k := range m.Children(xmppclient.NSSASL, "mechanism") {
			if k.Text == "PLAIN" {
				t.Errorf("PLAIN offered before TLS: %s", f)
			}
		}
	}
	u, pw := srv.user(t, "enc")
	r := rc.AuthPlain(u, pw)
	if !r.Is(xmppclient.NSSASL, "failure") || r.Child(xmppclient.NSSASL, "encryption-required") == nil {
		t.Fatalf("SASL before TLS: got %s, want <failure><encryption-required/></failure>", r)
	}
	// The stream goes on: STARTTLS still works and then login succeeds.
	rc.StartTLS()
	if r := rc.AuthPlain(u, pw); !r.Is(xmppclient.NSSASL, "success") {
		t.Fatalf("PLAIN after TLS: %s", r)
	}
}

// RFC 6120 §5.4.3.3 and the 2011 STARTTLS command-injection class of bugs:
// bytes the client pipelines after <starttls/> belong to the plaintext phase
// and must be discarded, never processed inside the TLS session.
func TestRawStartTLSPipelinedPlaintextDiscarded(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "pipe")
	rc := dialRaw(t, srv)
	rc.Open()
	injected := `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` +
		b64("\x00"+u+"\x00"+pw) + `</auth>`
	rc.Write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + injected)
	rc.Expect(xmppclient.NSTLS, "proceed")
	rc.UpgradeTLS(nil)
	// If the injected <auth/> had been processed after TLS, the server
	// would answer <success/> before the new stream header or think the
	// stream was authenticated; instead it must negotiate from scratch.
	h, f := rc.Open()
	_ = h
	if f.Child(xmppclient.NSSASL, "mechanisms") == nil {
		t.Fatalf("after TLS the features must offer SASL again (the injected auth must not count): %s", f)
	}
	if f.Child(xmppclient.NSBind, "bind") != nil {
		t.Fatalf("bind offered without authentication: %s", f)
	}
	// And a stanza is still refused as unauthenticated.
	rc.Write(`<iq type='get' id='p1' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	rc.ExpectStreamError("not-authorized")
}

func TestRawWhitespaceKeepaliveAndClose(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "ka")
	rc := dialRaw(t, srv)
	rc.Write(" \n")
	rc.Login(u, pw, "ka")
	for i := 0; i < 3; i++ {
		rc.Write(" ")
		rc.Write("\n\t \r\n")
	}
	rc.Write(`<iq type='get' id='ping1' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if e := rc.ExpectIQ("ping1"); e.Get("type") != "result" {
		t.Fatalf("ping after keepalives: %s", e)
	}
	// RFC 6120 §4.4: our </stream:stream> is answered with the server's
	// and the connection is closed.
	rc.Write(`</stream:stream>`)
	res := rc.ReadStreamEnd()
	if res.Error != nil {
		t.Errorf("stream error on a clean close: %s", res)
	}
	if !res.ClosedTag || !res.EOF {
		t.Errorf("want </stream:stream> then close: %s", res)
	}
}

// RFC 6120 §13.12: a stanza over max_stanza_size ends the stream with
// <policy-violation/>, whether it is complete or still arriving.
func TestRawStanzaTooBig(t *testing.T) {
	srv := shared(t)
	big := strings.Repeat("x", 2*sharedMaxStanza)
	t.Run("complete", func(t *testing.T) {
		u, pw := srv.user(t, "big")
		v, _ := srv.user(t, "bigrcpt")
		rc := dialRaw(t, srv)
		rc.Login(u, pw, "big")
		// Errors on write are fine: the server may close while we send.
		_ = rc.TryWrite(`<message to='` + srv.bare(v) + `' type='chat'><body>` + big + `</body></message>`)
		rc.ExpectStreamError("policy-violation")
	})
	t.Run("unterminated-pre-auth", func(t *testing.T) {
		// The parser must bound what it buffers even before authentication
		// and even if the element never ends.
		rc := dialRaw(t, srv)
		rc.Open()
		rc.StartTLS()
		_ = rc.TryWrite(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + big)
		rc.ExpectStreamError("policy-violation")
	})
	t.Run("just-under-limit", func(t *testing.T) {
		u, pw := srv.user(t, "fit")
		v, vpw := srv.user(t, "fitrcpt")
		bob := mustLogin(t, srv, v, vpw, loginOpts{resource: "r"})
		bob.Send(`<presence/>`)
		rc := dialRaw(t, srv)
		rc.Login(u, pw, "fit")
		body := strings.Repeat("y", sharedMaxStanza/2)
		rc.Write(`<message to='` + srv.bare(v) + `' type='chat'><body>` + body + `</body></message>`)
		m := bob.Expect("the large message", xmppclient.IsMessageWithBody(body))
		if !xmppclient.JIDMatch(m.Get("from"), srv.bare(u)) {
			t.Errorf("from = %q", m.Get("from"))
		}
	})
}

// A client that says nothing after connecting is cut off eventually; the
// timeout is configurable, so only check that an idle open socket does not
// make the server misbehave for others (a second login works meanwhile).
func TestRawIdleSocketDoesNotBlockOthers(t *testing.T) {
	srv := shared(t)
	idle := dialRaw(t, srv)
	idle.Write(`<?xml version='1.0'?><stream:stream to='` + srv.Domain + `' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message>`)
	u, pw := srv.user(t, "idle")
	start := time.Now()
	c := mustLogin(t, srv, u, pw, loginOpts{})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("login took %v while another socket was half-open", d)
	}
	_ = c
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
