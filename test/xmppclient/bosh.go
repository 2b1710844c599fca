package xmppclient

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
)

// BOSHNS is the XEP-0124 namespace.
const BOSHNS = "http://jabber.org/protocol/httpbind"

// BOSH is a XEP-0124/XEP-0206 client written for the tests: one request at a time, each answered before the
// next (the server holds it until it has something to say or 'wait' passes). Elements received are queued.
type BOSH struct {
	t      testing.TB
	URL    string
	Domain string
	SID    string
	RID    uint64
	Wait   int
	JID    string
	HTTP   *http.Client
	q      []*Elem
	// Last is the raw text of the last response.
	Last string
}

// NewBOSH returns a client for the endpoint url (no session yet).
func NewBOSH(t testing.TB, url, domain string) *BOSH {
	return &BOSH{t: t, URL: url, Domain: domain, RID: 1000 + uint64(time.Now().UnixNano()%100000), Wait: 2,
		HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Post sends a raw body and returns the raw response.
func (b *BOSH) Post(body string) (string, error) {
	res, err := b.HTTP.Post(b.URL, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return string(out), fmt.Errorf("HTTP %s", res.Status)
	}
	return string(out), nil
}

// Body builds a request wrapper with the next rid (and the sid once there is one) around payload.
func (b *BOSH) Body(attrs, payload string) string {
	b.RID++
	s := "<body xmlns='" + BOSHNS + "' rid='" + strconv.FormatUint(b.RID, 10) + "'"
	if b.SID != "" {
		s += " sid='" + b.SID + "'"
	}
	if attrs != "" {
		s += " " + attrs
	}
	if payload == "" {
		return s + "/>"
	}
	return s + ">" + payload + "</body>"
}

// Do sends a request and parses the response wrapper, queueing its children.
func (b *BOSH) Do(attrs, payload string) *Elem {
	b.t.Helper()
	raw, err := b.Post(b.Body(attrs, payload))
	if err != nil {
		b.t.Fatalf("bosh request: %v (%s)", err, raw)
	}
	return b.take(raw)
}

func (b *BOSH) take(raw string) *Elem {
	b.t.Helper()
	b.Last = raw
	e, err := ReadElem(xml.NewDecoder(strings.NewReader(raw)))
	if err != nil || !e.Is(BOSHNS, "body") {
		b.t.Fatalf("bosh response %q: %v", raw, err)
	}
	b.q = append(b.q, e.Kids...)
	return e
}

// Create opens a session and returns the session creation response.
func (b *BOSH) Create() *Elem {
	b.t.Helper()
	e := b.Do("to='"+b.Domain+"' xml:lang='en' wait='"+strconv.Itoa(b.Wait)+"' hold='1' ver='1.11' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'", "")
	b.SID = e.Get("sid")
	if b.SID == "" {
		b.t.Fatalf("no sid in %s", b.Last)
	}
	return e
}

// Expect polls (empty requests) until an element satisfying pred arrives, at most d.
func (b *BOSH) Expect(what string, d time.Duration, pred func(*Elem) bool) *Elem {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		for i, e := range b.q {
			if pred(e) {
				b.q = append(b.q[:i:i], b.q[i+1:]...)
				return e
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no %s over BOSH; last response %s", what, b.Last)
		}
		b.Do("", "")
	}
}

// Login creates a session, authenticates with SCRAM-SHA-256, restarts and binds resource.
func (b *BOSH) Login(local, password, resource string) string {
	b.t.Helper()
	b.Create()
	b.Expect("stream features", 10*time.Second, func(e *Elem) bool { return e.Name.Local == "features" })
	neg := sasl.NewClient(sasl.ScramSha256, sasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(local), []byte(password), nil
	}))
	_, resp, err := neg.Step(nil)
	if err != nil {
		b.t.Fatal(err)
	}
	b.Do("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"+base64.StdEncoding.EncodeToString(resp)+"</auth>")
	for done := false; !done; {
		e := b.Expect("SASL answer", 10*time.Second, func(e *Elem) bool { return e.Name.Space == "urn:ietf:params:xml:ns:xmpp-sasl" })
		data, _ := base64.StdEncoding.DecodeString(e.Text)
		switch e.Name.Local {
		case "challenge":
			_, resp, err := neg.Step(data)
			if err != nil {
				b.t.Fatal(err)
			}
			b.Do("", "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"+base64.StdEncoding.EncodeToString(resp)+"</response>")
		case "success":
			if _, _, err := neg.Step(data); err != nil {
				b.t.Fatalf("server signature: %v", err)
			}
			done = true
		default:
			b.t.Fatalf("SASL: %s", e)
		}
	}
	b.Do("xmpp:restart='true' xmlns:xmpp='urn:xmpp:xbosh' to='"+b.Domain+"'", "")
	b.Expect("features after the restart", 10*time.Second, func(e *Elem) bool { return e.Name.Local == "features" })
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	b.Do("", "<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"+res+"</bind></iq>")
	e := b.Expect("bind result", 10*time.Second, func(e *Elem) bool { return e.Name.Local == "iq" && e.Get("id") == "bind1" })
	if bind := e.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind"); bind != nil {
		b.JID = bind.ChildText("jid")
	}
	if b.JID == "" {
		b.t.Fatalf("bind: %s", e)
	}
	b.Do("", "<presence xmlns='jabber:client'/>")
	return b.JID
}
