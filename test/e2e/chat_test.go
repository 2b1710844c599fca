package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/stream"

	"github.com/xmppd/xmppd/test/xmppclient"
)

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;").Replace(s)
}

// Chat both ways, to full and bare JIDs, bodies intact (including characters
// that need escaping and non-ASCII text).
func TestChatBothWays(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "phone"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "laptop", direct: true})
	alice.Send(`<presence/>`)
	bob.Send(`<presence/>`)

	bodies := []string{
		"hello bob",
		`<escaped> & "quoted" 'apos'`,
		"Grüße, 你好, 🙂 — ünïcödé",
		strings.Repeat("long line ", 500),
	}
	for i, body := range bodies {
		esc := xmlEscape(body)
		// alice → bob's full JID
		alice.Send(fmt.Sprintf(`<message to='%s/laptop' type='chat' id='a%d'><body>%s</body></message>`, srv.bare(b), i, esc))
		m := bob.Expect("message from alice", xmppclient.IsMessageWithBody(body))
		if got, want := m.Get("from"), alice.JID.String(); got != want {
			t.Errorf("from = %q, want alice's full JID %q (RFC 6120 §8.1.2.1: the server stamps it)", got, want)
		}
		if got := m.Get("to"); got != srv.bare(b)+"/laptop" {
			t.Errorf("to = %q, want bob's full JID", got)
		}
		if m.Get("id") != fmt.Sprintf("a%d", i) || m.Get("type") != "chat" {
			t.Errorf("id/type not preserved: %s", m)
		}
		// bob → alice's bare JID (RFC 6121 §8.5.2.1.1: delivered to the
		// available resource)
		reply := "re " + body
		bob.Send(fmt.Sprintf(`<message to='%s' type='chat' id='b%d'><body>%s</body></message>`, srv.bare(a), i, xmlEscape(reply)))
		m = alice.Expect("reply from bob", xmppclient.IsMessageWithBody(reply))
		if got, want := m.Get("from"), bob.JID.String(); got != want {
			t.Errorf("reply from = %q, want %q", got, want)
		}
	}
	// Extension elements travel with the stanza untouched.
	alice.Send(`<message to='` + srv.bare(b) + `/laptop' type='chat'><body>with ext</body><x xmlns='urn:example:ext' a='1'><y>z</y></x></message>`)
	m := bob.Expect("message with extension", xmppclient.IsMessageWithBody("with ext"))
	if x := m.Child("urn:example:ext", "x"); x == nil || x.Get("a") != "1" || x.ChildText("y") != "z" {
		t.Errorf("extension element lost or changed: %s", m)
	}
}

// A client cannot send as someone else (RFC 6120 §8.1.2.1): either the server
// stamps the true address or it ends the stream with <invalid-from/>.
func TestSpoofedFrom(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "r"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "r"})
	bob.Send(`<presence/>`)
	alice.Send(`<message from='mallory@` + srv.Domain + `/x' to='` + srv.bare(b) + `/r' type='chat'><body>spoof</body></message>`)
	deadline := time.Now().Add(xmppclient.WaitTimeout)
	for time.Now().Before(deadline) {
		if e, err := bob.Wait(xmppclient.IsMessageWithBody("spoof"), 50*time.Millisecond); err == nil {
			if e.Get("from") != alice.JID.String() {
				t.Fatalf("spoofed from delivered: %s", e)
			}
			return
		}
		if err, ended := alice.WaitEnd(50 * time.Millisecond); ended {
			var se stream.Error
			if !errors.As(err, &se) || se.Err != "invalid-from" {
				t.Fatalf("stream ended with %v, want invalid-from or a re-stamped message", err)
			}
			return
		}
	}
	t.Fatal("spoofed message neither re-stamped and delivered nor refused with invalid-from")
}

// RFC 6121 §8.5.2.2 / issue 2: a message to an offline account is stored and
// delivered, in order, with an XEP-0203 delay stamp on the next available
// presence.
func TestOfflineMessages(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "r"})
	alice.Send(`<presence/>`)
	sent := time.Now().UTC()
	bodies := []string{"offline one", "offline two", "offline three"}
	for _, body := range bodies {
		alice.Send(`<message to='` + srv.bare(b) + `' type='chat'><body>` + body + `</body></message>`)
	}
	// Also a full-JID address whose resource is not online: for chat
	// messages it is treated as the bare JID (RFC 6121 §8.5.3.2.1).
	alice.Send(`<message to='` + srv.bare(b) + `/gone' type='chat'><body>offline four</body></message>`)
	bodies = append(bodies, "offline four")
	// The sender gets no error for storing (sync point: a ping round trip).
	alice.IQ(`<iq type='get' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	alice.Absent("error for an offline recipient", 200*time.Millisecond, func(e *xmppclient.Elem) bool {
		return e.Is(xmppclient.NSClient, "message") && e.Get("type") == "error"
	})

	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "back"})
	bob.Send(`<presence/>`)
	var got []string
	for range bodies {
		m := bob.Expect("an offline message", func(e *xmppclient.Elem) bool {
			return e.Is(xmppclient.NSClient, "message") && strings.HasPrefix(e.ChildText("body"), "offline ")
		})
		got = append(got, m.ChildText("body"))
		if !xmppclient.JIDMatch(m.Get("from"), srv.bare(a)) {
			t.Errorf("offline message from = %q, want alice", m.Get("from"))
		}
		d := m.Child(xmppclient.NSDelay, "delay")
		if d == nil {
			t.Errorf("offline message without <delay xmlns='urn:xmpp:delay'/>: %s", m)
			continue
		}
		if d.Get("from") != srv.Domain {
			t.Errorf("delay from = %q, want %q", d.Get("from"), srv.Domain)
		}
		stamp, err := time.Parse(time.RFC3339Nano, d.Get("stamp"))
		if err != nil {
			t.Errorf("delay stamp %q is not XEP-0082 DateTime: %v", d.Get("stamp"), err)
			continue
		}
		if !strings.HasSuffix(d.Get("stamp"), "Z") {
			t.Errorf("delay stamp %q is not UTC (XEP-0203 §3: MUST be UTC)", d.Get("stamp"))
		}
		if stamp.Before(sent.Add(-2*time.Second)) || stamp.After(time.Now().Add(2*time.Second)) {
			t.Errorf("delay stamp %v not between send (%v) and now", stamp, sent)
		}
	}
	if strings.Join(got, "|") != strings.Join(bodies, "|") {
		t.Errorf("offline messages in order %q, want %q", got, bodies)
	}
	// Delivered once: a second login does not get them again.
	bob.Close()
	bob2 := mustLogin(t, srv, b, bpw, loginOpts{resource: "again"})
	bob2.Send(`<presence/>`)
	bob2.IQ(`<iq type='get' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	bob2.Absent("offline message delivered twice", 500*time.Millisecond, func(e *xmppclient.Elem) bool {
		return e.Is(xmppclient.NSClient, "message") && strings.HasPrefix(e.ChildText("body"), "offline ")
	})
}

// A message to a bare JID reaches a connected resource that sent presence;
// with two resources at the same priority at least one gets it (RFC 6121
// §8.5.2.1.1 allows either or both).
func TestBareJIDDeliveryTwoResources(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{})
	bob1 := mustLogin(t, srv, b, bpw, loginOpts{resource: "one"})
	bob2 := mustLogin(t, srv, b, bpw, loginOpts{resource: "two"})
	bob1.Send(`<presence/>`)
	bob2.Send(`<presence/>`)
	// Sync: both resources are available once each has seen the other's
	// presence (RFC 6121 §4.2.2).
	bob1.Expect("presence of the second resource", xmppclient.IsPresence(bob2.JID.String(), ""))
	alice.Send(`<message to='` + srv.bare(b) + `' type='chat'><body>to both?</body></message>`)
	// Poll both resources until one has it.
	deadline := time.Now().Add(xmppclient.WaitTimeout)
	for {
		_, err1 := bob1.Wait(xmppclient.IsMessageWithBody("to both?"), 50*time.Millisecond)
		_, err2 := bob2.Wait(xmppclient.IsMessageWithBody("to both?"), 50*time.Millisecond)
		if err1 == nil || err2 == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bare-JID message reached neither resource: %v / %v", err1, err2)
		}
	}
}

// RFC 6121 §4.2.2: initial presence is broadcast "to all of the user's
// available resources, including the resource that generated the presence
// notification in the first place".
func TestInitialPresenceEchoedToSelf(t *testing.T) {
	srv := shared(t)
	u, pw := srv.user(t, "self")
	c := mustLogin(t, srv, u, pw, loginOpts{resource: "me"})
	c.Send(`<presence><status>here</status></presence>`)
	p := c.Expect("own initial presence", xmppclient.IsPresence(c.JID.String(), ""))
	if p.ChildText("status") != "here" {
		t.Errorf("echoed presence lost its status: %s", p)
	}
}
