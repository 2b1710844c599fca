package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// Login with mellium over both transports and every mechanism it implements
// (it has no SCRAM-SHA-512; scram_test.go covers that with its own client).
func TestLoginMechanismsAndTransports(t *testing.T) {
	srv := shared(t)
	mechs := []sasl.Mechanism{sasl.ScramSha256, sasl.ScramSha256Plus, sasl.ScramSha1, sasl.ScramSha1Plus, sasl.Plain}
	for _, direct := range []bool{false, true} {
		transport := "starttls"
		if direct {
			transport = "directtls"
		}
		for _, m := range mechs {
			m := m
			t.Run(transport+"/"+m.Name, func(t *testing.T) {
				u, pw := srv.user(t, "login")
				c := mustLogin(t, srv, u, pw, loginOpts{direct: direct, mechs: []sasl.Mechanism{m}, resource: "res1"})
				tr := c.Transcript()
				if !strings.Contains(tr, "mechanism='"+m.Name+"'") && !strings.Contains(tr, `mechanism="`+m.Name+`"`) {
					t.Errorf("transcript does not show mechanism %s being used", m.Name)
				}
				if got, want := c.JID.String(), srv.bare(u)+"/res1"; got != want {
					t.Errorf("bound JID %q, want %q", got, want)
				}
				cs := c.S.ConnectionState()
				if cs.Version < tls.VersionTLS12 {
					t.Errorf("TLS version %x, want ≥ 1.2", cs.Version)
				}
				// The session works: a ping to the server is answered.
				if e := c.IQ(`<iq type='get' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`); e.Get("type") != "result" {
					t.Errorf("ping: %s", e)
				}
				// Whatever the mechanism, the password never reaches the log.
				if srv.LogContains(pw) {
					t.Errorf("server log contains the password")
				}
				if srv.LogContains(base64.StdEncoding.EncodeToString([]byte("\x00" + u + "\x00" + pw))) {
					t.Errorf("server log contains the PLAIN message")
				}
			})
		}
	}
}

func TestBindServerGeneratedResourceAndSession(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "bind")
	c := mustLogin(t, srv, u, pw, loginOpts{})
	if c.JID.Resourcepart() == "" {
		t.Fatalf("server-generated resource is empty: %s", c.JID)
	}
	if c.JID.Bare().String() != srv.bare(u) {
		t.Fatalf("bound %s, want %s/…", c.JID, srv.bare(u))
	}
	// Two logins without a resource get different resources.
	c2 := mustLogin(t, srv, u, pw, loginOpts{})
	if c2.JID.Equal(c.JID) {
		t.Fatalf("two generated resources are equal: %s", c.JID)
	}
	// The legacy session IQ (RFC 3921 §3, draft-cridland-xmpp-session) is
	// answered with a result.
	e := c.IQ(`<iq type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`)
	if e.Get("type") != "result" {
		t.Fatalf("session IQ: %s", e)
	}
	// The first stream was not disturbed by the second.
	if e := c.IQ(`<iq type='get' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`); e.Get("type") != "result" {
		t.Fatalf("ping on the first stream: %s", e)
	}
}

// Resource binding with a resource that is not valid per RFC 7622 (here a
// control character is not possible in XML, so an over-long one) is refused
// with a stanza error; the stream stays usable.
func TestRawBindErrors(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "bindraw")
	rc := dialRaw(t, srv)
	rc.Open()
	rc.StartTLS()
	if r := rc.AuthPlain(u, pw); !r.Is(xmppclient.NSSASL, "success") {
		t.Fatalf("PLAIN: %s", r)
	}
	rc.Reset()
	_, f := rc.Open()
	if f.Child(xmppclient.NSBind, "bind") == nil {
		t.Fatalf("no bind feature: %s", f)
	}
	if s := f.Child(xmppclient.NSSession, "session"); s != nil && s.Child(xmppclient.NSSession, "optional") == nil {
		t.Errorf("session feature advertised without <optional/> (RFC 6121 removed it; modern servers mark it optional): %s", f)
	}
	rc.Write(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>` + strings.Repeat("r", 1100) + `</resource></bind></iq>`)
	e := rc.ExpectIQ("b1")
	if typ, cond := e.StanzaError(); e.Get("type") != "error" || (cond != "bad-request" && cond != "not-allowed") {
		t.Fatalf("over-long resource: got %s (%s/%s), want bad-request or not-allowed (RFC 6120 §7.7.2)", e, typ, cond)
	}
	// A good bind still works afterwards.
	j := rc.Bind("fine")
	if j != srv.bare(u)+"/fine" {
		t.Fatalf("bound %q", j)
	}
}

// RFC 6120 §7.7.2.2 option (b), the one issue 2 chose: a new session with the
// same full JID ends the older stream with <conflict/>.
func TestResourceConflict(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "conflict")
	first := mustLogin(t, srv, u, pw, loginOpts{resource: "same"})
	first.Send(`<presence/>`)
	second := mustLogin(t, srv, u, pw, loginOpts{resource: "same", direct: true})
	if got := second.JID.String(); got != srv.bare(u)+"/same" {
		t.Fatalf("second session bound %q, want the same full JID", got)
	}
	if cond := first.StreamError(); cond != "conflict" {
		t.Fatalf("first stream ended with %q, want conflict\ntranscript:\n%s", cond, first.Transcript())
	}
	// The new session is the one that receives traffic now.
	v, vpw := srv.user(t, "sender")
	sender := mustLogin(t, srv, v, vpw, loginOpts{})
	sender.Send(`<message to='` + srv.bare(u) + `/same' type='chat'><body>to the new one</body></message>`)
	second.Expect("message to the surviving session", xmppclient.IsMessageWithBody("to the new one"))
}

// RFC 6120 §6.5.10: a wrong password and an unknown user both fail with
// <not-authorized/> and reveal nothing about which it was.
func TestSASLFailures(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "wrongpw")
	t.Run("mellium-wrong-password", func(t *testing.T) {
		_, err := login(t, srv, u, pw+"x", loginOpts{})
		if err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
		if !strings.Contains(err.Error(), "not-authorized") {
			t.Errorf("error does not show not-authorized: %v", err)
		}
	})
	for _, tc := range []struct{ name, user, pw string }{
		{"plain-wrong-password", u, pw + "x"},
		{"plain-unknown-user", "nosuchuser-" + u, pw},
		{"plain-empty-password", u, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			rc.Open()
			rc.StartTLS()
			r := rc.AuthPlain(tc.user, tc.pw)
			// RFC 4616's grammar requires a non-empty password, so an empty
			// one may also be called malformed.
			emptyOK := tc.pw == "" && r.Child(xmppclient.NSSASL, "malformed-request") != nil
			if !r.Is(xmppclient.NSSASL, "failure") || (r.Child(xmppclient.NSSASL, "not-authorized") == nil && !emptyOK) {
				t.Fatalf("got %s, want <failure><not-authorized/></failure>", r)
			}
			// RFC 6120 §6.4.5: the client may retry on the same stream.
			if r := rc.AuthPlain(u, pw); !r.Is(xmppclient.NSSASL, "success") {
				t.Fatalf("retry with the right password: %s", r)
			}
		})
	}
	for _, tc := range []struct{ name, user, pw string }{
		{"scram-wrong-password", u, pw + "x"},
		{"scram-unknown-user", "nosuchuser-" + u, pw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv)
			rc.Open()
			rc.StartTLS()
			r := rc.authScram(scramSHA256, tc.user, tc.pw, cbNone, false)
			if !r.Is(xmppclient.NSSASL, "failure") || r.Child(xmppclient.NSSASL, "not-authorized") == nil {
				t.Fatalf("got %s, want <failure><not-authorized/></failure>", r)
			}
		})
	}
	t.Run("invalid-mechanism", func(t *testing.T) {
		rc := dialRaw(t, srv)
		rc.Open()
		rc.StartTLS()
		rc.Write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-NOPE'>=</auth>`)
		r := rc.Expect(xmppclient.NSSASL, "failure")
		if r.Child(xmppclient.NSSASL, "invalid-mechanism") == nil {
			t.Fatalf("got %s, want <invalid-mechanism/> (RFC 6120 §6.5.5)", r)
		}
	})
	t.Run("abort", func(t *testing.T) {
		rc := dialRaw(t, srv)
		rc.Open()
		rc.StartTLS()
		rc.Write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>` + b64("n,,n="+u+",r=abcdefghijklmnop") + `</auth>`)
		rc.Expect(xmppclient.NSSASL, "challenge")
		rc.Write(`<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`)
		r := rc.Expect(xmppclient.NSSASL, "failure")
		if r.Child(xmppclient.NSSASL, "aborted") == nil {
			t.Fatalf("got %s, want <aborted/> (RFC 6120 §6.5.1)", r)
		}
	})
	t.Run("malformed-request", func(t *testing.T) {
		rc := dialRaw(t, srv)
		rc.Open()
		rc.StartTLS()
		rc.Write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!not base64!!!</auth>`)
		r := rc.Expect(xmppclient.NSSASL, "failure")
		if r.Child(xmppclient.NSSASL, "incorrect-encoding") == nil && r.Child(xmppclient.NSSASL, "malformed-request") == nil {
			t.Fatalf("got %s, want <incorrect-encoding/> (RFC 6120 §6.5.2) or <malformed-request/>", r)
		}
	})
}

// Direct TLS rejects a client that does not trust the certificate
// (nothing to do with the server, but proves TLS is really in use) and the
// generated certificate names the served domain.
func TestCertificate(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "cert")
	_, err := login(t, srv, u, pw, loginOpts{direct: true, tlsCfg: &tls.Config{ServerName: srv.Domain}})
	if err == nil {
		t.Fatal("login succeeded without trusting the self-signed certificate")
	}
	c := mustLogin(t, srv, u, pw, loginOpts{direct: true})
	cs := c.S.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		t.Fatal("no peer certificate")
	}
	if err := cs.PeerCertificates[0].VerifyHostname(srv.Domain); err != nil {
		t.Errorf("certificate does not name %s: %v", srv.Domain, err)
	}
}
