package xmppclient

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"mellium.im/sasl"
)

// WS is an RFC 7395 client written for the tests on github.com/coder/websocket (not the server's library, nor its
// framing code): one message per element, <open/>/<close/> framing, SCRAM-SHA-256 with
// mellium.im/sasl. Every received message is kept in order for the test to read.
type WS struct {
	t    testing.TB
	C    *websocket.Conn
	Resp *http.Response
	URL  string
	JID  string // the bound full JID after Login
	// Raw holds every message received, in order (Next reads them one by one).
	Raw []string
}

// FramingNS is the RFC 7395 framing namespace.
const FramingNS = "urn:ietf:params:xml:ns:xmpp-framing"

// DialWS opens a WebSocket to url offering the subprotocols given (default "xmpp"). The connection is closed
// when the test ends.
func DialWS(t testing.TB, url string, header http.Header, protocols ...string) (*WS, error) {
	t.Helper()
	if protocols == nil {
		protocols = []string{"xmpp"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: protocols, HTTPHeader: header})
	if err != nil {
		return &WS{t: t, Resp: resp, URL: url}, err
	}
	c.SetReadLimit(1 << 20)
	w := &WS{t: t, C: c, Resp: resp, URL: url}
	t.Cleanup(func() { _ = c.CloseNow() })
	return w, nil
}

// Send writes one text message.
func (w *WS) Send(msg string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.C.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		w.t.Fatalf("websocket send %q: %v", msg, err)
	}
}

// NextRaw reads the next message (within d).
func (w *WS) NextRaw(d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	typ, b, err := w.C.Read(ctx)
	if err != nil {
		return "", err
	}
	if typ != websocket.MessageText {
		return "", fmt.Errorf("a binary message from the server")
	}
	w.Raw = append(w.Raw, string(b))
	return string(b), nil
}

// Next reads the next message and parses it as a standalone document: the message must declare its own
// namespaces (RFC 7395 §3.3.3), so an element without xmlns would come out in no namespace.
func (w *WS) Next() *Elem {
	w.t.Helper()
	raw, err := w.NextRaw(10 * time.Second)
	if err != nil {
		w.t.Fatalf("websocket read: %v (received so far: %q)", err, w.Raw)
	}
	e, err := ReadElem(xml.NewDecoder(strings.NewReader(raw)))
	if err != nil {
		w.t.Fatalf("message %q is not a standalone XML document: %v", raw, err)
	}
	return e
}

// Expect reads messages until one satisfies pred (at most 50).
func (w *WS) Expect(what string, pred func(*Elem) bool) *Elem {
	w.t.Helper()
	for range 50 {
		if e := w.Next(); pred(e) {
			return e
		}
	}
	w.t.Fatalf("no %s in %q", what, w.Raw)
	return nil
}

// Open sends <open/> to domain and returns the server's <open/> and its <stream:features>.
func (w *WS) Open(domain string) (open, features *Elem) {
	w.t.Helper()
	w.Send("<open xmlns='" + FramingNS + "' to='" + domain + "' version='1.0'/>")
	open = w.Next()
	if !open.Is(FramingNS, "open") {
		w.t.Fatalf("expected <open/>, got %s", open)
	}
	features = w.Next()
	if !features.Is("http://etherx.jabber.org/streams", "features") {
		w.t.Fatalf("expected stream features, got %s", features)
	}
	return open, features
}

// Auth runs SCRAM-SHA-256 and restarts the stream; it returns the features after the restart.
func (w *WS) Auth(domain, local, password string) *Elem {
	w.t.Helper()
	if err := w.tryAuth(local, password); err != nil {
		w.t.Fatal(err)
	}
	_, f := w.Open(domain)
	return f
}

func (w *WS) tryAuth(local, password string) error {
	neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(local), []byte(password), nil
	}))
	_, resp, err := neg.Step(nil)
	if err != nil {
		return err
	}
	w.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString(resp) + "</auth>")
	for {
		e := w.Next()
		data, _ := base64.StdEncoding.DecodeString(e.Text)
		switch e.Name.Local {
		case "challenge":
			_, resp, err := neg.Step(data)
			if err != nil {
				return err
			}
			w.Send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(resp) + "</response>")
		case "success":
			if _, _, err := neg.Step(data); err != nil {
				return fmt.Errorf("server signature: %v", err)
			}
			return nil
		default:
			return fmt.Errorf("SASL: %s", e)
		}
	}
}

// Bind binds resource ("" for one the server picks) and returns the full JID.
func (w *WS) Bind(resource string) string {
	w.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	w.Send("<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" + res + "</bind></iq>")
	e := w.Expect("bind result", func(e *Elem) bool { return e.Name.Local == "iq" && e.Get("id") == "bind1" })
	if e.Get("type") != "result" {
		w.t.Fatalf("bind: %s", e)
	}
	w.JID = e.ChildText("bind")
	if b := e.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind"); b != nil {
		w.JID = b.ChildText("jid")
	}
	return w.JID
}

// Login opens, authenticates and binds; the client then sends initial presence.
func (w *WS) Login(domain, local, password, resource string) string {
	w.t.Helper()
	w.Open(domain)
	w.Auth(domain, local, password)
	full := w.Bind(resource)
	w.Send("<presence xmlns='jabber:client'/>")
	return full
}

// LoginWS dials the server's WebSocket endpoint at addr (host:port, plain HTTP) and logs in.
func LoginWS(t testing.TB, addr, domain, local, password, resource string) *WS {
	t.Helper()
	w, err := DialWS(t, "ws://"+addr+"/xmpp-websocket", nil)
	if err != nil {
		t.Fatalf("dial websocket: %v", err)
	}
	w.Login(domain, local, password, resource)
	return w
}
