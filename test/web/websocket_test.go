package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

func wsURL(srv *harness.Server) string { return "ws://" + srv.HTTPAddr + "/xmpp-websocket" }

// A WebSocket client logs in with SCRAM, binds, and chats both ways with a TCP client; every message it gets is
// a standalone document in jabber:client.
func TestWebSocketChatWithTCP(t *testing.T) {
	srv := shared.Get(t)
	alice, apw := xmppclient.NewAccount(t, srv, "alice")
	bob, bpw := xmppclient.NewAccount(t, srv, "bob")
	w, err := xmppclient.DialWS(t, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.C.Subprotocol(); got != "xmpp" {
		t.Fatalf("subprotocol %q, want xmpp (RFC 7395 §3.1)", got)
	}
	open, features := w.Open(srv.Domain)
	if open.Get("from") != srv.Domain || open.Get("version") != "1.0" || open.Get("id") == "" {
		t.Errorf("server <open/>: %s", open)
	}
	if features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
		t.Errorf("STARTTLS offered over WebSocket: %s", features)
	}
	if !strings.Contains(features.String(), "SCRAM-SHA-256") {
		t.Errorf("no SCRAM in %s", features)
	}
	after := w.Auth(srv.Domain, alice, apw)
	if after.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind") == nil || after.Child("urn:xmpp:sm:3", "sm") == nil {
		t.Errorf("features after the restart lack bind or sm: %s", after)
	}
	full := w.Bind("web")
	if !strings.HasPrefix(full, alice+"@"+srv.Domain+"/web") {
		t.Fatalf("bound %q", full)
	}
	if last := w.Raw[len(w.Raw)-1]; !strings.HasPrefix(last, "<iq xmlns='jabber:client'") {
		t.Errorf("the bind result does not declare jabber:client (RFC 7395 §3.3.3): %q", last)
	}
	w.Send("<presence xmlns='jabber:client'/>")

	b := xmppclient.Online(t, srv, bob, bpw, "desk")
	w.Send("<message xmlns='jabber:client' type='chat' to='" + b.JID.String() + "' id='m1'><body>hello over websocket</body></message>")
	got := b.Expect("message from the websocket client", xmppclient.IsMessageWithBody("hello over websocket"))
	if !xmppclient.JIDMatch(got.Get("from"), full) {
		t.Errorf("from %q, want %q", got.Get("from"), full)
	}
	b.Send("<message type='chat' to='" + full + "' id='r1'><body>reply over tcp</body></message>")
	e := w.Expect("the reply", func(e *xmppclient.Elem) bool { return e.Name.Local == "message" })
	if e.Name.Space != "jabber:client" || e.ChildText("body") != "reply over tcp" {
		t.Errorf("reply %s (namespace %q)", e, e.Name.Space)
	}

	// The tree shows the conn's transport; /metrics counts the session.
	tree := httpGet(t, "http://"+srv.DebugAddr+"/debug/actors?kind=conn&jid="+alice+"@"+srv.Domain)
	if !strings.Contains(tree, `"transport":"websocket"`) {
		t.Errorf("/debug/actors does not say websocket:\n%s", tree)
	}
	if m := httpGet(t, "http://"+srv.DebugAddr+"/metrics"); !strings.Contains(m, `xmppd_http_sessions{transport="websocket"}`) ||
		!strings.Contains(m, `xmppd_http_requests_total{endpoint="/xmpp-websocket"}`) {
		t.Errorf("metrics lack the websocket gauge or request counter")
	}

	// RFC 7395 §3.6: <close/> is answered with <close/>, then the server closes the WebSocket normally.
	w.Send("<close xmlns='" + xmppclient.FramingNS + "'/>")
	if e := w.Next(); !e.Is(xmppclient.FramingNS, "close") {
		t.Errorf("answer to <close/>: %s", e)
	}
	_, err = w.NextRaw(10 * time.Second)
	if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure {
		t.Errorf("after <close/>: %v (status %v), want a normal closure", err, st)
	}
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// XEP-0198 over WebSocket: a client whose WebSocket drops resumes on a new one and gets what it missed.
func TestWebSocketResume(t *testing.T) {
	srv := shared.Get(t)
	alice, apw := xmppclient.NewAccount(t, srv, "alice")
	bob, bpw := xmppclient.NewAccount(t, srv, "bob")
	w := xmppclient.LoginWS(t, srv.HTTPAddr, srv.Domain, alice, apw, "web")
	w.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := w.Expect("enabled", func(e *xmppclient.Elem) bool { return e.Name.Local == "enabled" })
	id := en.Get("id")
	if id == "" || en.Get("resume") != "true" {
		t.Fatalf("enabled: %s", en)
	}
	b := xmppclient.Online(t, srv, bob, bpw, "desk")
	_ = w.C.CloseNow() // the connection is lost: no <close/>
	// Wait until the server noticed (the session hibernates) before sending, so the message is queued for it.
	waitFor(t, "the session to hibernate", func() bool {
		return strings.Contains(httpGet(t, "http://"+srv.DebugAddr+"/debug/actors?kind=session&jid="+alice+"@"+srv.Domain), "hibernating")
	})
	b.Send("<message type='chat' to='" + w.JID + "' id='q1'><body>while you were away</body></message>")

	w2, err := xmppclient.DialWS(t, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	w2.Open(srv.Domain)
	w2.Auth(srv.Domain, alice, apw)
	w2.Send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>")
	r := w2.Expect("resumed", func(e *xmppclient.Elem) bool { return e.Name.Local == "resumed" || e.Name.Local == "failed" })
	if r.Name.Local != "resumed" {
		t.Fatalf("resume: %s", r)
	}
	w2.Expect("the message sent while away", func(e *xmppclient.Elem) bool {
		return e.Name.Local == "message" && e.ChildText("body") == "while you were away"
	})
	// The resumed session is alive: it still chats.
	w2.Send("<message xmlns='jabber:client' type='chat' to='" + b.JID.String() + "'><body>back</body></message>")
	b.Expect("message after resumption", xmppclient.IsMessageWithBody("back"))
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// RFC 7395 framing errors: each gets the stream error as its own message, then <close/>, then the close of the
// WebSocket.
func TestWebSocketFramingErrors(t *testing.T) {
	srv := shared.Get(t)
	open := "<open xmlns='" + xmppclient.FramingNS + "' to='" + srv.Domain + "' version='1.0'/>"
	for _, tc := range []struct {
		name   string
		opened bool // send <open/> first
		send   string
		binary bool
		cond   string
	}{
		{"two elements in one message", true, "<iq xmlns='jabber:client' type='get' id='a'/><iq xmlns='jabber:client' type='get' id='b'/>", false, "not-well-formed"},
		{"an element cut in two", true, "<message xmlns='jabber:client'><body>half", false, "not-well-formed"},
		{"a TCP stream header", false, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + srv.Domain + "' version='1.0'>", false, "not-well-formed"},
		{"not XML", true, "hello", false, "not-well-formed"},
		{"a binary message", true, "<presence xmlns='jabber:client'/>", true, "not-well-formed"},
		{"open to a foreign domain", false, "<open xmlns='" + xmppclient.FramingNS + "' to='elsewhere.example' version='1.0'/>", false, "host-unknown"},
		{"open without version", false, "<open xmlns='" + xmppclient.FramingNS + "' to='" + srv.Domain + "'/>", false, "unsupported-version"},
		// Larger than c2s.max_stanza_size too: the decoder's limit answers, not a WebSocket close code.
		{"a stanza over the size limit", true, "<message xmlns='jabber:client'><body>" + strings.Repeat("x", 400<<10) + "</body></message>", false, "policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := xmppclient.DialWS(t, wsURL(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.opened {
				w.Send(open)
				w.Next() // <open/>
				w.Next() // features
			}
			if tc.binary {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = w.C.Write(ctx, websocket.MessageBinary, []byte(tc.send))
				cancel()
			} else {
				w.Send(tc.send)
			}
			e := w.Next()
			if e.Is(xmppclient.FramingNS, "open") {
				e = w.Next() // errors during stream set-up come after our <open/> (RFC 7395 §3.5)
			}
			if !e.Is("http://etherx.jabber.org/streams", "error") || e.Condition() != tc.cond {
				t.Fatalf("got %s, want a <%s/> stream error", e, tc.cond)
			}
			if c := w.Next(); !c.Is(xmppclient.FramingNS, "close") {
				t.Errorf("after the stream error: %s, want <close/>", c)
			}
			if _, err := w.NextRaw(10 * time.Second); websocket.CloseStatus(err) == -1 {
				t.Errorf("the WebSocket stayed open: %v", err)
			}
		})
	}
}

// The handshake without the xmpp subprotocol is refused (RFC 7395 §3.1), and so is an origin the configuration
// does not allow.
func TestWebSocketHandshakeRefusals(t *testing.T) {
	srv := shared.Get(t)
	if _, err := xmppclient.DialWS(t, wsURL(srv), nil, "chat"); err == nil {
		t.Error("a WebSocket without the xmpp subprotocol was accepted")
	}
	own := harness.Start(t, harness.Options{Sections: map[string]string{"http": "origins = [\"good.example\"]"}})
	h := http.Header{"Origin": {"https://evil.example"}}
	w, err := xmppclient.DialWS(t, wsURL(own), h)
	if err == nil {
		t.Error("an origin outside http.origins was accepted")
	} else if w.Resp == nil || w.Resp.StatusCode != http.StatusForbidden {
		t.Errorf("refused origin: %v", err)
	}
	h = http.Header{"Origin": {"https://good.example"}}
	if _, err := xmppclient.DialWS(t, wsURL(own), h); err != nil {
		t.Errorf("an allowed origin was refused: %v", err)
	}
}

// XEP-0156: host-meta in both formats names the WebSocket (and BOSH) URLs, readable from any origin.
func TestHostMeta(t *testing.T) {
	srv := shared.Get(t)
	base := "http://" + srv.HTTPAddr
	res, err := http.Get(base + "/.well-known/host-meta")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/xrd+xml") {
		t.Errorf("host-meta headers: %v", res.Header)
	}
	for _, want := range []string{"<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>",
		"rel='urn:xmpp:alt-connections:websocket' href='ws://" + srv.HTTPAddr + "/xmpp-websocket'",
		"rel='urn:xmpp:alt-connections:xbosh' href='http://" + srv.HTTPAddr + "/http-bind'"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("host-meta lacks %s:\n%s", want, body)
		}
	}
	res, err = http.Get(base + "/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Links []struct{ Rel, Href string }
	}
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("host-meta.json: %v %v", err, res.Header)
	}
	links := map[string]string{}
	for _, l := range doc.Links {
		links[l.Rel] = l.Href
	}
	if links["urn:xmpp:alt-connections:websocket"] != "ws://"+srv.HTTPAddr+"/xmpp-websocket" ||
		links["urn:xmpp:alt-connections:xbosh"] != "http://"+srv.HTTPAddr+"/http-bind" {
		t.Errorf("host-meta.json links: %v", links)
	}
}

// SIGTERM ends WebSocket streams like TCP ones: <system-shutdown/>, <close/>, a closed WebSocket; a BOSH client
// holding a request gets the termination; the process exits 0.
func TestShutdownEndsHTTPStreams(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	alice, apw := xmppclient.NewAccount(t, srv, "alice")
	bob, bpw := xmppclient.NewAccount(t, srv, "bob")
	w := xmppclient.LoginWS(t, srv.HTTPAddr, srv.Domain, alice, apw, "web")
	b := xmppclient.NewBOSH(t, boshURL(srv), srv.Domain)
	b.Wait = 30
	b.Login(bob, bpw, "bosh")
	held := make(chan string, 1)
	go func() {
		out, _ := b.Post(b.Body("", "")) // held by the server until it has something to say
		held <- out
	}()
	time.Sleep(300 * time.Millisecond)
	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown() }()
	e := w.Expect("the shutdown stream error", func(e *xmppclient.Elem) bool { return e.Is("http://etherx.jabber.org/streams", "error") })
	if e.Condition() != "system-shutdown" {
		t.Errorf("stream error %s, want system-shutdown", e)
	}
	if c := w.Next(); !c.Is(xmppclient.FramingNS, "close") {
		t.Errorf("after the stream error: %s", c)
	}
	select {
	case out := <-held:
		if !strings.Contains(out, "type='terminate'") || !strings.Contains(out, "system-shutdown") {
			t.Errorf("held BOSH request answered with %q", out)
		}
	case <-time.After(15 * time.Second):
		t.Error("the held BOSH request was not answered at shutdown")
	}
	if err := <-errc; err != nil {
		t.Error(err)
	}
}
