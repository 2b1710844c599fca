package csi

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

type fixture struct {
	t    *testing.T
	host *featuretest.Session
	part *Session
}

func newFixture(t *testing.T) *fixture {
	srv := featuretest.NewServer(t, Feature)
	h := featuretest.NewSession(srv, "u@example.org/phone")
	p := Feature.NewSession(h).(*Session)
	if _, ok := any(p).(feature.NonzaHandler); !ok {
		t.Fatal("session part is no NonzaHandler")
	}
	if _, ok := any(p).(feature.Inbound); !ok {
		t.Fatal("session part is no Inbound hook")
	}
	return &fixture{t: t, host: h, part: p}
}

func (f *fixture) nonza(local string) {
	f.part.Nonza(&xmlstream.Element{Raw: "<" + local + " xmlns='" + NS + "'/>", Name: xmlstream.Name{Space: NS, Local: local}})
}

// in runs the hook and, like the host, writes what it let through.
func (f *fixture) in(raw string) bool {
	st := featuretest.Stanza(f.t, raw)
	ok := f.part.Inbound(st)
	if ok {
		f.host.ToClient(st)
	}
	return ok
}

// client takes what reached the client so far.
func (f *fixture) client() []string {
	var out []string
	for _, st := range f.host.Client {
		out = append(out, st.Raw)
	}
	f.host.Client = nil
	return out
}

func (f *fixture) want(want ...string) {
	f.t.Helper()
	if got := f.client(); !reflect.DeepEqual(got, want) {
		f.t.Errorf("client got\n%q\nwant\n%q", got, want)
	}
}

func pres(from, extra string) string {
	return "<presence from='" + from + "' to='u@example.org/phone'" + extra + "/>"
}

const (
	state   = "<message from='f@example.org/x' to='u@example.org/phone' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
	receipt = "<message from='f@example.org/x' to='u@example.org/phone'><received xmlns='urn:xmpp:receipts' id='1'/></message>"
	body    = "<message from='f@example.org/x' to='u@example.org/phone' type='chat'><body>hi</body></message>"
)

func TestAdvertised(t *testing.T) {
	if Feature.Name != "csi" {
		t.Errorf("Name %q", Feature.Name)
	}
	srv := featuretest.NewServer(t, Feature)
	if !strings.Contains(srv.DiscoInfo(""), "<feature var='urn:xmpp:csi:0'/>") {
		t.Errorf("disco#info lacks csi: %s", srv.DiscoInfo(""))
	}
	if got := Feature.StreamFeature(srv); got != "<csi xmlns='urn:xmpp:csi:0'/>" {
		t.Errorf("stream feature %q", got)
	}
	want := []xmlstream.Name{{Space: NS, Local: "inactive"}, {Space: NS, Local: "active"}}
	if !reflect.DeepEqual(Feature.Nonzas, want) {
		t.Errorf("nonzas %v", Feature.Nonzas)
	}
}

func TestActivePassesEverything(t *testing.T) {
	f := newFixture(t)
	for _, raw := range []string{pres("f@example.org/x", ""), state, receipt, body} {
		if !f.in(raw) {
			t.Errorf("active session held %s", raw)
		}
	}
	if f.part.Held() != 0 || f.part.Inactive() {
		t.Errorf("held %d", f.part.Held())
	}
}

func TestPresenceSuperseded(t *testing.T) {
	f := newFixture(t)
	f.nonza("inactive")
	if !f.part.Inactive() {
		t.Fatal("not inactive")
	}
	p1 := pres("a@example.org/1", "")
	p2 := pres("b@example.org/1", "")
	p1away := "<presence from='a@example.org/1' to='u@example.org/phone'><show>away</show></presence>"
	p2gone := pres("b@example.org/1", " type='unavailable'")
	noFrom := "<presence to='u@example.org/phone'/>"
	for _, raw := range []string{p1, p2, state, p1away, noFrom, p2gone, noFrom} {
		if f.in(raw) {
			t.Errorf("inactive session let %s through", raw)
		}
	}
	f.want()
	if f.part.Held() != 5 {
		t.Errorf("held %d, want 5", f.part.Held())
	}
	f.nonza("active")
	// Arrival order, an older presence of a sender gone in favour of its latest; presence without 'from' kept.
	f.want(state, p1away, noFrom, p2gone, noFrom)
	if f.part.Inactive() || f.part.Held() != 0 {
		t.Errorf("after active: inactive %v, held %d", f.part.Inactive(), f.part.Held())
	}
	if !f.in(p1) {
		t.Errorf("active again but held")
	}
}

func TestUrgentFlushesFirst(t *testing.T) {
	carbonBody := "<message from='u@example.org' to='u@example.org/phone' type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
		"<message xmlns='jabber:client' from='f@example.org/x' to='u@example.org/pc' type='chat'><body>hi</body></message></forwarded></received></message>"
	carbonSentBody := strings.ReplaceAll(carbonBody, "received", "sent")
	for name, urgent := range map[string]string{
		"body":           body,
		"normal body":    "<message from='f@example.org/x' to='u@example.org/phone'><body>hi</body></message>",
		"carbon body":    carbonBody,
		"sent carbon":    carbonSentBody,
		"message error":  "<message from='f@example.org/x' to='u@example.org/phone' type='error'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
		"subscribe":      pres("f@example.org", " type='subscribe'"),
		"subscribed":     pres("f@example.org", " type='subscribed'"),
		"presence error": pres("f@example.org", " type='error'"),
		"iq":             "<iq from='f@example.org/x' to='u@example.org/phone' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>",
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.nonza("inactive")
			p := pres("a@example.org/1", "")
			f.in(p)
			f.in(state)
			if !f.in(urgent) {
				t.Fatalf("held %s", urgent)
			}
			f.want(p, state, urgent)
			if f.part.Held() != 0 || !f.part.Inactive() {
				t.Errorf("held %d, inactive %v", f.part.Held(), f.part.Inactive())
			}
		})
	}
}

func TestHeldMessages(t *testing.T) {
	carbonState := "<message from='u@example.org' to='u@example.org/phone' type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
		"<message xmlns='jabber:client' from='u@example.org/pc' to='f@example.org' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>"
	emptyCarbon := "<message from='u@example.org' to='u@example.org/phone' type='chat'><received xmlns='urn:xmpp:carbons:2'/></message>"
	// A <body/> in another namespace is no body.
	otherBody := "<message from='f@example.org/x' to='u@example.org/phone'><body xmlns='urn:example'>x</body></message>"
	f := newFixture(t)
	f.nonza("inactive")
	for _, raw := range []string{state, receipt, carbonState, emptyCarbon, otherBody, state} {
		if f.in(raw) {
			t.Errorf("let %s through", raw)
		}
	}
	f.want()
	f.nonza("active")
	f.want(state, receipt, carbonState, emptyCarbon, otherBody, state) // messages are never superseded
}

func TestMalformedMessagePasses(t *testing.T) {
	f := newFixture(t)
	f.nonza("inactive")
	f.in(state)
	bad := stanza.New(stanza.Head{Name: "message", Type: "chat"}, jid.JID{}, f.host.FullJID, "<message type='chat'><body>")
	if !f.part.Inbound(bad) {
		t.Errorf("unparseable message held")
	}
	if f.part.Held() != 1 {
		t.Errorf("held %d, want 1", f.part.Held())
	}
}

func TestBound(t *testing.T) {
	f := newFixture(t)
	f.nonza("inactive")
	var sent []string
	for i := 0; i < MaxHeld-1; i++ {
		p := pres("c"+strconv.Itoa(i)+"@example.org/r", "")
		sent = append(sent, p)
		if f.in(p) {
			t.Fatalf("let %d through", i)
		}
	}
	f.want()
	if f.part.Held() != MaxHeld-1 {
		t.Fatalf("held %d", f.part.Held())
	}
	// The MaxHeld-th flushes everything, itself last.
	last := pres("last@example.org/r", "")
	if f.in(last) {
		t.Fatal("the last one passed the hook instead of being flushed")
	}
	f.want(append(sent, last)...)
	if f.part.Held() != 0 || !f.part.Inactive() {
		t.Errorf("held %d, inactive %v", f.part.Held(), f.part.Inactive())
	}
	// Supersession does not count towards the bound.
	for i := 0; i < 2*MaxHeld; i++ {
		f.in(pres("same@example.org/r", ""))
	}
	if f.part.Held() != 1 {
		t.Errorf("held %d, want 1", f.part.Held())
	}
	f.want()
}

func TestNonzas(t *testing.T) {
	f := newFixture(t)
	f.nonza("active") // active while active: nothing
	f.want()
	f.nonza("inactive")
	f.nonza("inactive") // twice: still holding, nothing lost
	f.in(state)
	f.part.Nonza(&xmlstream.Element{Name: xmlstream.Name{Space: NS, Local: "bogus"}})
	if !f.part.Inactive() || f.part.Held() != 1 {
		t.Errorf("an unknown nonza changed the state")
	}
	f.nonza("active")
	f.nonza("active")
	f.want(state)
}

// XEP-0386 §2.2: a session bound with <inactive/> (or <active/>) in Bind 2 begins in that state.
func TestBind2State(t *testing.T) {
	if Feature.Bind2 == nil || Feature.Bind2.Var != NS || len(Feature.Bind2.Elements) != 2 {
		t.Fatalf("Bind2 spec %+v", Feature.Bind2)
	}
	f := newFixture(t)
	n, _ := xmlstream.ParseNode("<inactive xmlns='urn:xmpp:csi:0'/>", "")
	if got := f.part.Bind2(n); got != "" {
		t.Errorf("Bind2 answered %q", got)
	}
	if !f.part.Inactive() || f.in(state) {
		t.Fatal("an inline <inactive/> does not hold")
	}
	f2 := newFixture(t)
	n, _ = xmlstream.ParseNode("<active xmlns='urn:xmpp:csi:0'/>", "")
	f2.part.Bind2(n)
	if f2.part.Inactive() {
		t.Fatal("an inline <active/> holds")
	}
}
