package e2e

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/test/harness"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// registerRaw performs XEP-0077 §3.1 registration on a fresh TLS stream and
// returns the IQ result or error.
func registerRaw(t *testing.T, srv *testServer, user, password string) (*rawConn, *xmppclient.Elem) {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.open(srv.Domain)
	rc.starttls()
	rc.write(`<iq type='set' id='reg2'><query xmlns='jabber:iq:register'><username>` + user + `</username><password>` + password + `</password></query></iq>`)
	e, err := rc.next(xmppclient.WaitTimeout)
	if err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
	return rc, e
}

func TestInBandRegistration(t *testing.T) {
	srv := shared(t)
	user := newName(t, "ibr")
	pw := secret()

	rc := dialRaw(t, srv)
	rc.open(srv.Domain)
	f := rc.starttls()
	if f.Child(xmppclient.NSRegFeat, "register") == nil {
		t.Errorf("registration allowed but <register xmlns='%s'/> not in features: %s", xmppclient.NSRegFeat, f)
	}
	// XEP-0077 §3.1: the form lists the required fields.
	rc.write(`<iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>`)
	e := rc.expectIQ("reg1")
	q := e.Child(xmppclient.NSRegister, "query")
	if e.Get("type") != "result" || q == nil || q.Child(xmppclient.NSRegister, "username") == nil || q.Child(xmppclient.NSRegister, "password") == nil {
		t.Fatalf("registration form: %s", e)
	}
	rc.write(`<iq type='set' id='reg2'><query xmlns='jabber:iq:register'><username>` + user + `</username><password>` + pw + `</password></query></iq>`)
	if e := rc.expectIQ("reg2"); e.Get("type") != "result" {
		t.Fatalf("register: %s", e)
	}
	// The same name again: conflict (XEP-0077 §3.1, example 6).
	_, e = registerRaw(t, srv, user, secret())
	if _, cond := e.StanzaError(); cond != "conflict" {
		t.Fatalf("registering a taken name: %s, want conflict", e)
	}
	if srv.LogContains(pw) {
		t.Errorf("server log contains the registered password")
	}

	// The new account logs in with mellium (SCRAM: credentials were derived
	// at registration for every hash).
	c := mustLogin(t, srv, user, pw, loginOpts{})

	// Change password (XEP-0077 §3.3) while logged in.
	newPW := secret()
	e = c.IQ(`<iq type='set' to='` + srv.Domain + `'><query xmlns='jabber:iq:register'><username>` + user + `</username><password>` + newPW + `</password></query></iq>`)
	if e.Get("type") != "result" {
		t.Fatalf("password change: %s", e)
	}
	// The session that changed the password goes on (XEP-0077 §3.3 does
	// not end it).
	if _, err := c.TryIQ(`<iq type='get' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
		t.Errorf("session unusable after changing its password: %v", err)
	}
	if _, err := login(t, srv, user, pw, loginOpts{}); err == nil {
		t.Errorf("old password still works after the change")
	}
	c2 := mustLogin(t, srv, user, newPW, loginOpts{})

	// The CLI sees the account.
	out, stderr, err := srv.Run("user", "list", srv.Domain)
	if err != nil || !strings.Contains(out, srv.bare(user)) {
		t.Errorf("user list after IBR: err=%v out=%q stderr=%q", err, out, stderr)
	}

	// Cancel the registration (XEP-0077 §3.2).
	// XEP-0077 §3.2: answered with a result; the server may then end the
	// stream with <not-authorized/> since the account is gone.
	e, err = c2.TryIQ(`<iq type='set' to='` + srv.Domain + `'><query xmlns='jabber:iq:register'><remove/></query></iq>`)
	if err != nil {
		t.Errorf("remove: no IQ result: %v", err)
	} else if e.Get("type") != "result" {
		t.Fatalf("remove: %s", e)
	}

	rc = dialRaw(t, srv)
	rc.open(srv.Domain)
	rc.starttls()
	if r := rc.authPlain(user, newPW); !r.Is(xmppclient.NSSASL, "failure") {
		t.Fatalf("login to a removed account: %s", r)
	}
	out, _, _ = srv.Run("user", "list", srv.Domain)
	if strings.Contains(out, srv.bare(user)+"\n") || strings.HasSuffix(out, srv.bare(user)) {
		t.Errorf("removed account still listed: %q", out)
	}
}

// Registering is refused with not-allowed when registration.allow = false
// (issue 2), and no account appears.
func TestInBandRegistrationDisabled(t *testing.T) {
	srv := own(t, harness.Options{RegistrationAllow: false})
	user := newName(t, "noibr")
	rc := dialRaw(t, srv)
	rc.open(srv.Domain)
	f := rc.starttls()
	advertised := f.Child(xmppclient.NSRegFeat, "register") != nil
	if advertised {
		t.Errorf("registration disabled but advertised: %s", f)
	}
	rc.write(`<iq type='set' id='reg2'><query xmlns='jabber:iq:register'><username>` + user + `</username><password>x</password></query></iq>`)
	e, err := rc.next(xmppclient.WaitTimeout)
	switch {
	case err != nil:
		t.Fatalf("register with registration disabled: %v", err)
	case e.Is(xmppclient.NSClient, "iq"):
		if _, cond := e.StanzaError(); cond != "not-allowed" {
			t.Errorf("got %s, want <not-allowed/>", e)
		}
	default:
		t.Errorf("got %s, want an IQ error not-allowed", e)
	}
	// No account was created.
	rc2 := dialRaw(t, srv)
	rc2.open(srv.Domain)
	rc2.starttls()
	if r := rc2.authPlain(user, "x"); !r.Is(xmppclient.NSSASL, "failure") {
		t.Fatalf("account exists after a refused registration: %s", r)
	}
}
