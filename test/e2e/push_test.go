package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0357 push notifications, with a second account's session as the app server's push service (a full JID
// gets the IQs): a notification is published when the phone's only session hibernates (XEP-0198) or is gone, not
// while it is connected; the app server's error disables the registration; disable and the error rules.

const nsPush = "urn:xmpp:push:0"

// waitHibernating polls /debug/actors until the session of full is hibernating.
func waitHibernating(t *testing.T, srv *testServer, full string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + srv.DebugAddr + "/debug/actors?kind=session&jid=" + url.QueryEscape(full))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), `"state":"hibernating"`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the session of %s did not hibernate", full)
}

// expectNotification reads the app server's stream until a pubsub publish IQ from the account arrives, answers it
// (an error when refuse), and returns the notification's summary fields.
func expectNotification(t *testing.T, app *rawConn, account, node string, refuse bool) map[string]string {
	t.Helper()
	for {
		e := nextNot(t, app, true)
		if !e.Is(xmppclient.NSClient, "iq") || e.Get("type") != "set" {
			continue
		}
		pub := e.Child("http://jabber.org/protocol/pubsub", "pubsub")
		if pub == nil {
			t.Fatalf("app server got an IQ that is no publish: %s", e)
		}
		if e.Get("from") != account {
			t.Fatalf("publish from %q, want the account's bare JID %s", e.Get("from"), account)
		}
		p := pub.Child("http://jabber.org/protocol/pubsub", "publish")
		if p == nil || p.Get("node") != node {
			t.Fatalf("publish to the wrong node: %s", e)
		}
		if refuse {
			app.Write("<iq type='error' id='" + e.Get("id") + "' to='" + account + "'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
		} else {
			app.Write("<iq type='result' id='" + e.Get("id") + "' to='" + account + "'/>")
		}
		fields := map[string]string{}
		n := p.Child("", "item")
		if n != nil {
			n = n.Child(nsPush, "notification")
		}
		if n == nil {
			t.Fatalf("publish without a <notification/>: %s", e)
		}
		for _, f := range n.Child("jabber:x:data", "x").Children("jabber:x:data", "field") {
			fields[f.Get("var")] = f.ChildText("value")
		}
		if po := pub.Child("http://jabber.org/protocol/pubsub", "publish-options"); po != nil {
			for _, f := range po.Child("jabber:x:data", "x").Children("jabber:x:data", "field") {
				fields["option:"+f.Get("var")] = f.ChildText("value")
			}
		}
		return fields
	}
}

// noPush: the app server gets no notification within d. It waits d, then pings the server and reads up to the
// answer (a read that times out would end the raw client's stream).
func noPush(t *testing.T, app *rawConn, d time.Duration, why string) {
	t.Helper()
	time.Sleep(d)
	app.Write("<iq type='get' id='probe'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		e := nextNot(t, app, true)
		if e.Is(xmppclient.NSClient, "iq") && e.Get("id") == "probe" {
			return
		}
		if e.Is(xmppclient.NSClient, "iq") {
			t.Fatalf("%s: the app server got %s", why, e)
		}
	}
}

func TestPush(t *testing.T) {
	srv := shared(t)
	pw := secret()
	phone, app, friend := newName(t, "phone"), newName(t, "appsrv"), newName(t, "friend")
	for _, u := range []string{phone, app, friend} {
		srv.AddUser(t, u, pw)
	}
	account := phone + "@" + srv.Domain
	appJID := app + "@" + srv.Domain + "/push"
	rapp, _ := smLogin(t, srv, app, pw, "push", true)
	rf, _ := smLogin(t, srv, friend, pw, "pc", true)
	rp, _ := smLogin(t, srv, phone, pw, "phone", true)

	// §3: advertised on the account.
	rp.Write("<iq type='get' id='d1' to='" + account + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if info := rp.ExpectIQ("d1"); !hasFeature(info, nsPush) {
		t.Fatalf("account disco#info lacks %s: %s", nsPush, info)
	}
	// The error rules: no jid; a form that is not publish-options; someone else's account.
	rp.Write("<iq type='set' id='e0'><enable xmlns='urn:xmpp:push:0' node='n'/></iq>")
	if _, c := rp.ExpectIQ("e0").StanzaError(); c != "bad-request" {
		t.Errorf("enable without jid: %s", c)
	}
	rp.Write("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='" + appJID + "' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable></iq>")
	if _, c := rp.ExpectIQ("e1").StanzaError(); c != "bad-request" {
		t.Errorf("enable with a foreign form: %s", c)
	}
	rf.Write("<iq type='set' id='e2' to='" + account + "'><enable xmlns='urn:xmpp:push:0' jid='" + appJID + "' node='n'/></iq>")
	if _, c := rf.ExpectIQ("e2").StanzaError(); c != "forbidden" {
		t.Errorf("enable on another account: %s", c)
	}
	rp.Write("<iq type='set' id='e3'><enable xmlns='urn:xmpp:push:0' jid='push.example.net' node='n'/></iq>")
	if _, c := rp.ExpectIQ("e3").StanzaError(); c != "remote-server-not-found" {
		t.Errorf("enable with an unreachable push service: %s", c)
	}

	rp.Write("<iq type='set' id='e4'><enable xmlns='urn:xmpp:push:0' jid='" + appJID + "' node='dev1'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr3t</value></field></x></enable></iq>")
	if r := rp.ExpectIQ("e4"); r.Get("type") != "result" {
		t.Fatalf("enable: %s", r)
	}
	rp.Write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	id := rp.Expect(nsSM, "enabled").Get("id")
	rp.Write("<presence/>")                    // available: a message to the bare JID goes to this session
	rp.Expect(xmppclient.NSClient, "presence") // its own presence back (RFC 6121 §4.2.2): the server has it

	// Connected: the phone shows the message itself, no push.
	sendChat(rf, account, "while connected")
	if got := bodies(t, rp, 1); got[0] != "while connected" {
		t.Fatalf("phone got %v", got)
	}
	noPush(t, rapp, 1500*time.Millisecond, "message to a connected session")

	// The app is suspended before it acknowledged the message: the connection is lost, the session hibernates,
	// and the app server hears of the message the phone may never have shown.
	rp.Conn().Close()
	waitHibernating(t, srv, account+"/phone")
	f := expectNotification(t, rapp, account, "dev1", false)
	if f["FORM_TYPE"] != "urn:xmpp:push:summary" || f["message-count"] != "1" || f["option:secret"] != "s3cr3t" {
		t.Errorf("notification: %v", f)
	}
	if _, ok := f["last-message-body"]; ok {
		t.Errorf("the body went to the app server though push.include_body is off: %v", f)
	}
	// A message to the hibernating session wakes it too.
	sendChat(rf, account, "wake up")
	if f := expectNotification(t, rapp, account, "dev1", false); f["message-count"] != "2" {
		t.Errorf("second notification: %v", f)
	}
	// A chat state alone is not worth waking for.
	rf.Write("<message type='chat' to='" + account + "'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	noPush(t, rapp, time.Second, "a chat state")
	sendChat(rf, account, "second")
	if f := expectNotification(t, rapp, account, "dev1", false); f["message-count"] != "3" {
		t.Errorf("third notification: %v", f)
	}

	// The phone resumes and gets everything, then goes away for good: offline messages push too.
	rp2, _ := smLogin(t, srv, phone, pw, "", false)
	rp2.Write("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	rp2.Expect(nsSM, "resumed")
	if got := bodies(t, rp2, 4); strings.Join(got, "|") != "while connected+delay|wake up+delay|+delay|second+delay" { // the chat state has no body
		t.Fatalf("after resumption: %q", got)
	}
	rp2.Write("<a xmlns='urn:xmpp:sm:3' h='5'/>") // its own presence and four messages
	rp2.Write("</stream:stream>")
	rp2.ReadStreamEnd()
	time.Sleep(200 * time.Millisecond)
	sendChat(rf, account, "offline one")
	expectNotification(t, rapp, account, "dev1", true) // §5: an error disables the registration
	time.Sleep(500 * time.Millisecond)                 // the error and the next message come by different paths
	sendChat(rf, account, "offline two")
	noPush(t, rapp, 1500*time.Millisecond, "after the push service refused")

	// Enable again, then disable: no push either.
	rp3, _ := smLogin(t, srv, phone, pw, "p3", true)
	rp3.Write("<iq type='set' id='e5'><enable xmlns='urn:xmpp:push:0' jid='" + appJID + "' node='dev1'/></iq>")
	rp3.ExpectIQ("e5")
	rp3.Write("<iq type='set' id='e6'><disable xmlns='urn:xmpp:push:0' jid='" + appJID + "'/></iq>")
	if r := rp3.ExpectIQ("e6"); r.Get("type") != "result" {
		t.Fatalf("disable: %s", r)
	}
	rp3.Write("</stream:stream>")
	rp3.ReadStreamEnd()
	time.Sleep(200 * time.Millisecond)
	sendChat(rf, account, "offline three")
	noPush(t, rapp, 1500*time.Millisecond, "after disable")
}

// hasFeature: a disco#info result lists var.
func hasFeature(info *xmppclient.Elem, v string) bool {
	q := info.Child("http://jabber.org/protocol/disco#info", "query")
	if q == nil {
		return false
	}
	for _, f := range q.Children("http://jabber.org/protocol/disco#info", "feature") {
		if f.Get("var") == v {
			return true
		}
	}
	return false
}
