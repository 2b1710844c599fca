package web

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

func boshURL(srv *harness.Server) string { return "http://" + srv.HTTPAddr + "/http-bind" }

// A BOSH client logs in with SCRAM and chats both ways with a TCP client.
func TestBOSHChatWithTCP(t *testing.T) {
	srv := shared.Get(t)
	alice, apw := xmppclient.NewAccount(t, srv, "alice")
	bob, bpw := xmppclient.NewAccount(t, srv, "bob")
	b := xmppclient.NewBOSH(t, boshURL(srv), srv.Domain)
	created := b.Create()
	for attr, want := range map[string]string{"wait": "2", "hold": "1", "requests": "2", "ver": "1.11", "from": srv.Domain,
		"inactivity": "60", "secure": "true"} {
		if got := created.Get(attr); got != want {
			t.Errorf("session creation %s=%q, want %q (%s)", attr, got, want, b.Last)
		}
	}
	for _, want := range []string{"xmpp:version='1.0'", "xmpp:restartlogic='true'", "authid='"} {
		if !strings.Contains(b.Last, want) {
			t.Errorf("session creation lacks %s: %s", want, b.Last)
		}
	}
	// Start over with a full login (the session above times out by itself).
	b = xmppclient.NewBOSH(t, boshURL(srv), srv.Domain)
	full := b.Login(alice, apw, "bosh")
	if !strings.HasPrefix(full, alice+"@"+srv.Domain+"/bosh") {
		t.Fatalf("bound %q", full)
	}
	tcp := xmppclient.Online(t, srv, bob, bpw, "desk")
	b.Do("", "<message xmlns='jabber:client' type='chat' to='"+tcp.JID.String()+"'><body>hello over bosh</body></message>")
	got := tcp.Expect("message from the BOSH client", xmppclient.IsMessageWithBody("hello over bosh"))
	if !xmppclient.JIDMatch(got.Get("from"), full) {
		t.Errorf("from %q, want %q", got.Get("from"), full)
	}
	tcp.Send("<message type='chat' to='" + full + "'><body>reply to bosh</body></message>")
	e := b.Expect("the reply", 15*time.Second, func(e *xmppclient.Elem) bool {
		return e.Name.Local == "message" && e.ChildText("body") == "reply to bosh"
	})
	if e.Name.Space != "jabber:client" {
		t.Errorf("reply in namespace %q", e.Name.Space)
	}
	tree := httpGet(t, "http://"+srv.DebugAddr+"/debug/actors?kind=conn&jid="+alice+"@"+srv.Domain)
	if !strings.Contains(tree, `"transport":"bosh"`) {
		t.Errorf("/debug/actors does not say bosh:\n%s", tree)
	}
	// XEP-0124 §13: terminate.
	end := b.Do("type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
	if end.Get("type") != "terminate" {
		t.Errorf("terminate answered with %s", b.Last)
	}
	if after := b.Do("", ""); after.Get("type") != "terminate" {
		t.Errorf("a request after terminate: %s", b.Last)
	}
}

// XEP-0124 §14.3: a request sent again gets the same response; a rid outside the window, an unknown sid and a
// malformed body get their conditions (§17).
func TestBOSHRidReplayAndErrors(t *testing.T) {
	srv := shared.Get(t)
	b := xmppclient.NewBOSH(t, boshURL(srv), srv.Domain)
	b.Create()
	b.Expect("stream features", 10*time.Second, func(e *xmppclient.Elem) bool { return e.Name.Local == "features" })
	// Pre-auth, an IQ is not allowed, so send SASL with a bogus mechanism: the <failure/> is the response.
	req := b.Body("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='NOPE'/>")
	first, err := b.Post(req)
	if err != nil || !strings.Contains(first, "invalid-mechanism") {
		t.Fatalf("first answer: %q %v", first, err)
	}
	again, err := b.Post(req)
	if err != nil || again != first {
		t.Errorf("the same rid again: %q, want the same response %q", again, first)
	}
	// A request far ahead of the window ends the session.
	far := strings.Replace(b.Body("", ""), "rid='"+strconv.FormatUint(b.RID, 10)+"'", "rid='"+strconv.FormatUint(b.RID+100, 10)+"'", 1)
	out, _ := b.Post(far)
	if !strings.Contains(out, "type='terminate'") || !strings.Contains(out, "condition='item-not-found'") {
		t.Errorf("rid outside the window: %s", out)
	}
	if out, _ := b.Post(b.Body("", "")); !strings.Contains(out, "item-not-found") && !strings.Contains(out, "type='terminate'") {
		t.Errorf("the ended session answered %s", out)
	}
	other := xmppclient.NewBOSH(t, boshURL(srv), srv.Domain)
	other.SID = "999999-nosuchsession"
	if out, _ := other.Post(other.Body("", "")); !strings.Contains(out, "condition='item-not-found'") {
		t.Errorf("unknown sid: %s", out)
	}
	other.SID = b.SID + "x"
	if out, _ := other.Post(other.Body("", "")); !strings.Contains(out, "condition='item-not-found'") {
		t.Errorf("a forged sid of a live conn: %s", out)
	}
	if out, _ := other.Post("<body xmlns='" + xmppclient.BOSHNS + "' rid='x'/>"); !strings.Contains(out, "condition='bad-request'") {
		t.Errorf("bad body: %s", out)
	}
}

// CORS on the BOSH endpoint: the preflight and the answer carry the allowed origin.
func TestBOSHCORS(t *testing.T) {
	srv := shared.Get(t)
	req, _ := http.NewRequest(http.MethodOptions, boshURL(srv), nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := res.Header
	if res.StatusCode != http.StatusOK || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Errorf("preflight: %d %v", res.StatusCode, h)
	}
}

// XEP-0124 §7.1 'hold' and §14.3 ordering: with hold=1 a second request makes the server answer the first at
// once, and the second carries what arrives next; a request that arrives ahead of a missing rid waits for it.
func TestBOSHHoldAndOrder(t *testing.T) {
	srv := shared.Get(t)
	alice, apw := xmppclient.NewAccount(t, srv, "alice")
	bob, bpw := xmppclient.NewAccount(t, srv, "bob")
	b := xmppclient.NewBOSH(t, boshURL(srv), srv.Domain)
	b.Wait = 20
	full := b.Login(alice, apw, "bosh")
	tcp := xmppclient.Online(t, srv, bob, bpw, "desk")

	first := make(chan string, 1)
	r1 := b.Body("", "")
	go func() { out, _ := b.Post(r1); first <- out }()
	time.Sleep(300 * time.Millisecond)
	select {
	case out := <-first:
		t.Fatalf("the only request was answered at once: %s", out)
	default:
	}
	second := make(chan string, 1)
	r2 := b.Body("", "")
	go func() { out, _ := b.Post(r2); second <- out }()
	select {
	case out := <-first:
		if strings.Contains(out, "type='terminate'") {
			t.Fatalf("first request: %s", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first request was not answered when the second arrived (hold=1)")
	}
	tcp.Send("<message type='chat' to='" + full + "'><body>carried by the held request</body></message>")
	select {
	case out := <-second:
		if !strings.Contains(out, "carried by the held request") {
			t.Errorf("second request: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not carry the message")
	}

	// rid N+2 before N+1: processed in rid order, so the message in N+1 goes out before the one in N+2.
	ra := b.Body("", "<message xmlns='jabber:client' type='chat' to='"+tcp.JID.String()+"'><body>one</body></message>")
	rb := b.Body("", "<message xmlns='jabber:client' type='chat' to='"+tcp.JID.String()+"'><body>two</body></message>")
	done := make(chan struct{}, 2)
	go func() { _, _ = b.Post(rb); done <- struct{}{} }()
	time.Sleep(300 * time.Millisecond)
	if _, err := tcp.Wait(xmppclient.IsMessageWithBody("two"), 500*time.Millisecond); err == nil {
		t.Fatal("a request ahead of a missing rid was processed before it")
	}
	go func() { _, _ = b.Post(ra); done <- struct{}{} }()
	tcp.Expect("the first message", xmppclient.IsMessageWithBody("one"))
	tcp.Expect("the second message", xmppclient.IsMessageWithBody("two"))
	tcp.Send("<message type='chat' to='" + full + "'><body>release</body></message>") // answers the held one
	<-done
	<-done
}
