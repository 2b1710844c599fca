package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0198 stream management, written as exact bytes: enabling, acks both ways, resumption on a new TCP connection
// with what was not acknowledged sent again, a failed resumption, the window closing, and the error rules.

const nsSM = "urn:xmpp:sm:3"

// smLogin opens an encrypted, authenticated stream for user; with bind it also binds resource and returns the
// features after authentication.
func smLogin(t *testing.T, srv *testServer, user, pw, resource string, bind bool) (*rawConn, *xmppclient.Elem) {
	t.Helper()
	rc := dialRaw(t, srv)
	rc.open(srv.Domain)
	rc.starttls()
	if e := rc.AuthPlain(user, pw); !e.Is(xmppclient.NSSASL, "success") {
		t.Fatalf("auth: %s", e)
	}
	rc.User = user
	rc.Reset()
	_, f := rc.open(srv.Domain)
	if bind {
		rc.Bind(resource)
	}
	return rc, f
}

// nextNot reads the next element that is not an <r/> (answering none) within the client's timeout.
func nextNot(t *testing.T, rc *rawConn, skipR bool) *xmppclient.Elem {
	t.Helper()
	for {
		e, err := rc.Next(rc.Timeout)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if skipR && e.Is(nsSM, "r") {
			continue
		}
		return e
	}
}

// bodies reads n messages (skipping <r/> and presence) and returns their bodies, each with whether it carried a
// delay.
func bodies(t *testing.T, rc *rawConn, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		e := nextNot(t, rc, true)
		if !e.Is(xmppclient.NSClient, "message") {
			continue
		}
		b := e.ChildText("body")
		if e.Child("urn:xmpp:delay", "delay") != nil {
			b += "+delay"
		}
		out = append(out, b)
	}
	return out
}

func sendChat(rc *rawConn, to, body string) {
	rc.Write(fmt.Sprintf("<message type='chat' to='%s'><body>%s</body></message>", to, body))
}

func TestSMResume(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "sma"), newName(t, "smb")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	ra, f := smLogin(t, srv, a, pw, "phone", true)
	if f.Child(nsSM, "sm") == nil {
		t.Fatalf("no <sm/> feature after authentication: %s", f)
	}
	ra.Write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := ra.Expect(nsSM, "enabled")
	id := en.Get("id")
	if id == "" || (en.Get("resume") != "true" && en.Get("resume") != "1") || en.Get("location") != "" {
		t.Fatalf("enabled: %s", en)
	}
	rb, _ := smLogin(t, srv, b, pw, "pc", true)
	aFull := a + "@" + srv.Domain + "/phone"
	for i := 1; i <= 3; i++ {
		sendChat(rb, aFull, fmt.Sprintf("m%d", i))
	}
	if got := bodies(t, ra, 3); strings.Join(got, " ") != "m1 m2 m3" {
		t.Fatalf("a got %v", got)
	}
	sendChat(ra, b+"@"+srv.Domain, "hello") // one stanza from a: the server's h is 1
	ra.Write("<r xmlns='urn:xmpp:sm:3'/>")
	if ack := nextNot(t, ra, true); !ack.Is(nsSM, "a") || ack.Get("h") != "1" {
		t.Fatalf("want <a h='1'/>, got %s", ack)
	}
	ra.Write("<a xmlns='urn:xmpp:sm:3' h='1'/>") // only m1 acknowledged
	ra.Conn().Close()                            // the phone loses its connection

	time.Sleep(200 * time.Millisecond)
	sendChat(rb, aFull, "m4") // waits in the hibernating session

	ra2, _ := smLogin(t, srv, a, pw, "", false)
	ra2.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='1'/>")
	res := ra2.Expect(nsSM, "resumed")
	if res.Get("previd") != id || res.Get("h") != "1" {
		t.Fatalf("resumed: %s", res)
	}
	// §5: what was not acknowledged comes again, in order, marked as delayed; m1 does not.
	if got := bodies(t, ra2, 3); strings.Join(got, " ") != "m2+delay m3+delay m4+delay" {
		t.Fatalf("after resumption a got %v", got)
	}
	// The resumed stream is bound to the same resource: a message to it arrives, unacknowledged until <a/>.
	sendChat(rb, aFull, "m5")
	if got := bodies(t, ra2, 1); got[0] != "m5" {
		t.Fatalf("after resumption a got %v", got)
	}
	ra2.Write("<a xmlns='urn:xmpp:sm:3' h='5'/>")
	ra2.Write("</stream:stream>") // a clean close ends the session: nothing comes back later
	ra2.ReadStreamEnd()

	// The session is gone: resuming it again fails, and nothing acknowledged was kept for delivery elsewhere.
	ra3, _ := smLogin(t, srv, a, pw, "", false)
	ra3.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='5'/>")
	if e := ra3.Expect(nsSM, "failed"); e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil {
		t.Fatalf("failed: %s", e)
	}
	ra3.Bind("again")
	ra3.Write("<presence/>")
	for {
		e, err := ra3.Next(time.Second)
		if err != nil {
			break // quiet: no offline messages
		}
		if e.Is(xmppclient.NSClient, "message") {
			t.Fatalf("an acknowledged message came again: %s", e)
		}
	}
}

// The window closes: what the client did not acknowledge goes offline (RFC 6121 §8.5) and arrives at the next
// login, once, with a delay.
func TestSMWindowExpires(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "smx"), newName(t, "smy")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	ra, _ := smLogin(t, srv, a, pw, "phone", true)
	ra.Write("<enable xmlns='urn:xmpp:sm:3' resume='true' max='1'/>")
	if en := ra.Expect(nsSM, "enabled"); en.Get("max") != "1" {
		t.Fatalf("the client's shorter max was not taken: %s", en)
	}
	rb, _ := smLogin(t, srv, b, pw, "pc", true)
	sendChat(rb, a+"@"+srv.Domain+"/phone", "lost?")
	if got := bodies(t, ra, 1); got[0] != "lost?" {
		t.Fatalf("a got %v", got)
	}
	ra.Conn().Close() // never acknowledged
	time.Sleep(2500 * time.Millisecond)
	ra2, _ := smLogin(t, srv, a, pw, "laptop", true)
	ra2.Write("<presence/>")
	if got := bodies(t, ra2, 1); got[0] != "lost?+delay" {
		t.Fatalf("after the window a got %v", got)
	}
	for {
		e, err := ra2.Next(time.Second)
		if err != nil {
			break
		}
		if e.Is(xmppclient.NSClient, "message") {
			t.Fatalf("delivered twice: %s", e)
		}
	}
}

// The error rules: <enable/> before bind and twice, <a/> acknowledging more than was sent.
func TestSMErrors(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a := newName(t, "sme")
	srv.AddUser(t, a, pw)
	ra, _ := smLogin(t, srv, a, pw, "", false)
	ra.Write("<enable xmlns='urn:xmpp:sm:3'/>")
	if e := ra.Expect(nsSM, "failed"); e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Fatalf("enable before bind: %s", e)
	}
	ra.Write("<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='0'/>")
	if e := ra.Expect(nsSM, "failed"); e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil {
		t.Fatalf("resume of nothing: %s", e)
	}
	ra.Bind("r")
	ra.Write("<enable xmlns='urn:xmpp:sm:3'/>")
	if en := ra.Expect(nsSM, "enabled"); en.Get("id") != "" {
		t.Fatalf("an id without resume: %s", en)
	}
	ra.Write("<enable xmlns='urn:xmpp:sm:3'/>")
	if e := ra.Expect(nsSM, "failed"); e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Fatalf("second enable: %s", e)
	}
	ra.Write("<a xmlns='urn:xmpp:sm:3' h='3'/>")
	end := ra.ExpectStreamError("undefined-condition")
	if end.Error.Child(nsSM, "handled-count-too-high") == nil {
		t.Fatalf("no <handled-count-too-high/>: %s", end)
	}
}

// XEP-0198 interop with Debian's slixmpp (its xep_0198 plugin): a lost connection resumed by the library, the
// messages sent meanwhile arriving exactly once. See testdata/slixmpp_sm.py.
func TestSlixmppStreamManagement(t *testing.T) {
	runSlixmppScript(t, "slixmpp_sm.py", "sm", 60*time.Second)
}

// XEP-0352 with XEP-0198: what CSI holds back while the client is inactive is not lost with the connection; it
// goes into the stream management queue and comes on resumption.
func TestSMWithCSI(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "csia"), newName(t, "csib")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	ra, _ := smLogin(t, srv, a, pw, "phone", true)
	ra.Write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	id := ra.Expect(nsSM, "enabled").Get("id")
	ra.Write("<inactive xmlns='urn:xmpp:csi:0'/>")
	rb, _ := smLogin(t, srv, b, pw, "pc", true)
	aFull := a + "@" + srv.Domain + "/phone"
	// A receipt (no body) is held back while a is inactive.
	rb.Write("<message to='" + aFull + "' id='rcpt1'><received xmlns='urn:xmpp:receipts' id='x'/></message>")
	// The ping's answer proves a's session had the receipt first (one ordered path), and that it was held.
	ra.Write("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	ra.ExpectIQ("p1")
	time.Sleep(300 * time.Millisecond) // b's receipt goes through b's session, the router and a's user actor
	ra.Conn().Close()

	ra2, _ := smLogin(t, srv, a, pw, "", false)
	ra2.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='1'/>") // the ping answer
	ra2.Expect(nsSM, "resumed")
	e := nextNot(t, ra2, true)
	if !e.Is(xmppclient.NSClient, "message") || e.Get("id") != "rcpt1" || e.Child("urn:xmpp:receipts", "received") == nil {
		t.Fatalf("after resumption: %s, want the held receipt", e)
	}
}
