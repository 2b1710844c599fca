package web

import (
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// RFC 6455 §5.5.2 pings (http.websocket_ping) keep an idle WebSocket open while the client answers them, also
// longer than the writer's 30 s write timeout after the last stanza the server wrote (a ping is written under a
// deadline of its own, not the last flush's); a client that stops answering is disconnected.
func TestWebSocketPings(t *testing.T) {
	srv := harness.Start(t, harness.Options{Sections: map[string]string{"http": `websocket_ping = "1s"`}})
	alice, apw := xmppclient.NewAccount(t, srv, "alice")

	t.Run("an idle client that answers stays", func(t *testing.T) {
		w := xmppclient.LoginWS(t, srv.HTTPAddr, srv.Domain, alice, apw, "idle")
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			time.Sleep(33 * time.Second)
			w.Send("<iq xmlns='jabber:client' type='get' id='late'><ping xmlns='urn:xmpp:ping'/></iq>")
		}()
		// Reading answers the server's pings meanwhile (the client library handles control frames in Read).
		for {
			raw, err := w.NextRaw(60 * time.Second)
			if err != nil {
				<-sent
				t.Fatalf("the idle WebSocket ended: %v", err)
			}
			if strings.Contains(raw, "late") && strings.Contains(raw, "result") {
				break
			}
		}
		<-sent
	})

	t.Run("a client that stops answering is dropped", func(t *testing.T) {
		w := xmppclient.LoginWS(t, srv.HTTPAddr, srv.Domain, alice, apw, "deaf")
		w.Expect("the presence echo", func(e *xmppclient.Elem) bool { return e.Name.Local == "presence" })
		time.Sleep(4 * time.Second) // not reading: no pong to the ping at 1 s before the tick at 2 s
		if raw, err := w.NextRaw(10 * time.Second); err == nil {
			t.Fatalf("the WebSocket is still open after unanswered pings (got %q)", raw)
		}
	})
}
