package actors_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestDirectWritesKeepOrderAndCounts: a session writes its client's stanzas to the conn's writer itself once the
// bind result is queued (writeDirect). With a client that pipelines XEP-0198 <enable/> and presence behind its
// bind, as mobile clients do, <enabled/> comes before anything counted, one sender's messages arrive in the order
// sent (RFC 6120 §10.1), and the session's count of what it sent matches what arrived: answering the server's
// <r/> with exactly that h keeps the stream open, and h one higher ends it (XEP-0198 §4: more than was sent).
func TestDirectWritesKeepOrderAndCounts(t *testing.T) {
	srv := startServer(t)
	addr := srv.C2SAddrs()[0]
	const n = 200
	for _, extra := range []int{0, 1} {
		alice, err := loginWith(addr, "alice", "r"+strconv.Itoa(extra), "<enable xmlns='urn:xmpp:sm:3'/><presence/>")
		if err != nil {
			t.Fatal(err)
		}
		bob, err := login(addr, "bob", "r")
		if err != nil {
			t.Fatal(err)
		}
		counted, next := 0, 0 // stanzas since <enabled/>; the next message id expected
		enabled := false
		sendAll := func() {
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, "<message to='alice@localhost/r%d' type='chat' id='m%d'><body>%d</body></message>", extra, i, i)
			}
			if err := bob.send(b.String()); err != nil {
				t.Error(err)
			}
		}
		sent := false
		for next < n {
			se, _, err := alice.next()
			if err != nil {
				t.Fatalf("alice's stream: %v after %d messages", err, next)
			}
			switch se.Name.Local {
			case "enabled":
				enabled = true
				if !sent {
					sendAll()
					sent = true
				}
			case "r", "a":
			case "message", "presence", "iq":
				if !enabled {
					t.Fatalf("a %s arrived before <enabled/>", se.Name.Local)
				}
				counted++
				if se.Name.Local == "message" {
					id := ""
					for _, a := range se.Attr {
						if a.Name.Local == "id" {
							id = a.Value
						}
					}
					if id != "m"+strconv.Itoa(next) {
						t.Fatalf("message %q arrived where m%d was due", id, next)
					}
					next++
				}
			default:
				t.Fatalf("unexpected <%s/>", se.Name.Local)
			}
		}
		// Acknowledge what arrived (plus one: the server must end the stream), then prove the stream is open or
		// closed with a ping.
		h := counted + extra
		if err := alice.send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.Itoa(h) + "'/><iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
			t.Fatal(err)
		}
		for {
			se, inner, err := alice.next()
			if extra == 1 {
				if err == nil && se.Name.Local == "error" {
					if !strings.Contains(inner, "undefined-condition") {
						t.Fatalf("h beyond what was sent: stream error %s", inner)
					}
					break
				}
				if err != nil {
					t.Fatalf("h beyond what was sent: the stream ended without a stream error (%v)", err)
				}
				if se.Name.Local == "iq" {
					t.Fatalf("h=%d accepted, but only %d stanzas were sent: the session counted one more than it delivered", h, counted)
				}
				continue
			}
			if err != nil {
				t.Fatalf("h=%d (what arrived) ended the stream: %v", h, err)
			}
			if se.Name.Local == "error" {
				t.Fatalf("h=%d (what arrived) ended the stream: %s", h, inner)
			}
			if se.Name.Local == "iq" {
				break
			}
		}
		alice.send("</stream:stream>")
		alice.conn.Close()
		bob.send("</stream:stream>")
		bob.conn.Close()
	}
}
