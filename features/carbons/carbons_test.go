package carbons

import (
	"reflect"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// world is one user with some sessions, the parts wired through the fake hosts by pump.
type world struct {
	t     *testing.T
	srv   *featuretest.Server
	uh    *featuretest.User
	user  *User
	hosts map[string]*featuretest.Session
	parts map[string]*Session
}

func newWorld(t *testing.T, resources ...string) *world {
	srv := featuretest.NewServer(t, Feature)
	uh := featuretest.NewUser(srv, "u@example.org", true)
	w := &world{t: t, srv: srv, uh: uh, user: Feature.NewUser(uh).(*User), hosts: map[string]*featuretest.Session{}, parts: map[string]*Session{}}
	for _, r := range resources {
		w.bind(r)
	}
	return w
}

func (w *world) bind(res string) feature.Resource {
	r := w.uh.Online(res, 0)
	h := featuretest.NewSession(w.srv, r.Full.String())
	w.hosts[res] = h
	w.parts[res] = Feature.NewSession(h).(*Session)
	w.user.Bound(r)
	w.pump()
	return r
}

func (w *world) drop(res string) {
	var r feature.Resource
	kept := w.uh.Res[:0:0]
	for _, x := range w.uh.Res {
		if x.Full.Resource() == res {
			r = x
		} else {
			kept = append(kept, x)
		}
	}
	w.uh.Res = kept
	delete(w.hosts, res)
	delete(w.parts, res)
	w.user.Dropped(r)
	w.pump()
}

// pump hands every recorded message on to its part until none is left.
func (w *world) pump() {
	for moved := true; moved; {
		moved = false
		for _, h := range w.hosts {
			sent := h.Sent
			h.Sent = nil
			for _, m := range sent {
				if m.To != w.uh.BareJID {
					w.t.Fatalf("session sent to %v, want the own user", m.To)
				}
				w.user.Handle(m.Msg)
				moved = true
			}
		}
		sent := w.uh.Sent
		w.uh.Sent = nil
		for _, m := range sent {
			if p, ok := w.parts[m.To.Resource()]; ok && m.To == w.hosts[m.To.Resource()].FullJID {
				p.Handle(m.Msg)
			}
			moved = true
		}
	}
}

func (w *world) enable(res string, on bool) *stanza.Routed {
	local := "disable"
	if on {
		local = "enable"
	}
	h := w.hosts[res]
	q := featuretest.IQ(w.t, h, w.parts[res], "<iq type='set' id='c1' from='"+h.FullJID.String()+"'><"+local+" xmlns='urn:xmpp:carbons:2'/></iq>")
	route(w.t, local).Session(q)
	w.pump()
	return h.Client[len(h.Client)-1]
}

// client takes what was written to res's client so far.
func (w *world) client(res string) []string {
	h := w.hosts[res]
	var out []string
	for _, st := range h.Client {
		out = append(out, st.Raw)
	}
	h.Client = nil
	return out
}

func route(t *testing.T, local string) feature.IQRoute {
	for _, r := range Feature.IQs {
		if r.Name == (xmlstream.Name{Space: stanza.NSCarbons, Local: local}) {
			if r.Session == nil || r.Server != nil || r.Account != nil {
				t.Fatalf("%s must be answered in the session only", local)
			}
			return r
		}
	}
	t.Fatalf("no route for %s", local)
	return feature.IQRoute{}
}

func msg(t *testing.T, raw string) *stanza.Routed { return featuretest.Stanza(t, raw) }

const chat = "<message from='u@example.org/a' to='f@example.org' type='chat' id='m1'><body>hi</body></message>"

func wrapped(kind, to, inner string) string {
	inner = strings.Replace(inner, "<message ", "<message xmlns='jabber:client' ", 1)
	return "<message from='u@example.org' to='" + to + "' type='chat'><" + kind + " xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
		inner + "</forwarded></" + kind + "></message>"
}

func TestAdvertised(t *testing.T) {
	if Feature.Name != "carbons" {
		t.Errorf("Name %q", Feature.Name)
	}
	srv := featuretest.NewServer(t, Feature)
	if !strings.Contains(srv.DiscoInfo(""), "<feature var='urn:xmpp:carbons:2'/>") {
		t.Errorf("disco#info lacks carbons: %s", srv.DiscoInfo(""))
	}
}

func TestEnableDisable(t *testing.T) {
	w := newWorld(t, "a", "b")
	res := w.enable("a", true)
	if res.Raw != "<iq type='result' to='u@example.org/a' id='c1'/>" {
		t.Errorf("enable answered %s", res.Raw)
	}
	if !w.parts["a"].Enabled() || w.parts["b"].Enabled() {
		t.Errorf("enable must act on the sending resource only (§4)")
	}
	if !w.user.on["a"] || len(w.user.on) != 1 {
		t.Errorf("user part flags %v", w.user.on)
	}
	for _, r := range []string{"a", "b"} {
		if w.parts[r].peers != 1 {
			t.Errorf("%s: peers %d, want 1", r, w.parts[r].peers)
		}
	}
	// A repeated enable is answered but tells nobody anything.
	w.enable("a", true)
	if len(w.hosts["a"].Sent) != 0 {
		t.Errorf("repeated enable sent %v", w.hosts["a"].Sent)
	}
	w.client("a")
	w.enable("a", false)
	if w.parts["a"].Enabled() || len(w.user.on) != 0 || w.parts["b"].peers != 0 || w.parts["a"].peers != 0 {
		t.Errorf("disable: on %v, flags %v, peers %d/%d", w.parts["a"].Enabled(), w.user.on, w.parts["a"].peers, w.parts["b"].peers)
	}
}

func TestEnableGetIsBadRequest(t *testing.T) {
	w := newWorld(t, "a")
	h := w.hosts["a"]
	q := featuretest.IQ(t, h, w.parts["a"], "<iq type='get' id='g1' from='u@example.org/a'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
	route(t, "enable").Session(q)
	if len(h.Client) != 1 || featuretest.ErrorCondition(t, h.Client[0]) != string(stanza.BadRequest) {
		t.Fatalf("get answered %v", h.Client)
	}
	if w.parts["a"].Enabled() || len(h.Sent) != 0 {
		t.Errorf("a get changed the state")
	}
}

func TestSentCopies(t *testing.T) {
	w := newWorld(t, "a", "b", "c")
	w.enable("b", true)
	w.client("b")
	st := msg(t, chat)
	if !w.parts["a"].Outbound(st) {
		t.Fatal("Outbound must never consume")
	}
	w.pump()
	if got, want := w.client("b"), []string{wrapped("sent", "u@example.org/b", chat)}; !reflect.DeepEqual(got, want) {
		t.Errorf("b got\n%q\nwant\n%q", got, want)
	}
	if got := w.client("c"); len(got) != 0 {
		t.Errorf("c (carbons off) got %q", got)
	}
	if got := w.client("a"); len(got) != 0 {
		t.Errorf("the sender got its own copy: %q", got)
	}
}

func TestSenderOnlyCarbonsIsFree(t *testing.T) {
	// Only the sender has carbons on: no other resource wants a copy, so nothing reaches the user part.
	w := newWorld(t, "a", "b")
	w.enable("a", true)
	w.parts["a"].Outbound(msg(t, chat))
	if len(w.hosts["a"].Sent) != 0 {
		t.Errorf("sent to the user part: %v", w.hosts["a"].Sent)
	}
	// Nobody has carbons on.
	w.enable("a", false)
	w.parts["b"].Outbound(msg(t, strings.ReplaceAll(chat, "/a", "/b")))
	if len(w.hosts["b"].Sent) != 0 {
		t.Errorf("sent to the user part: %v", w.hosts["b"].Sent)
	}
}

func TestOutboundNotEligible(t *testing.T) {
	w := newWorld(t, "a", "b")
	w.enable("b", true)
	for _, raw := range []string{
		"<presence from='u@example.org/a' to='f@example.org'/>",
		"<iq from='u@example.org/a' to='f@example.org' type='set' id='1'><query xmlns='x'/></iq>",
		"<message from='u@example.org/a' type='chat'><body>no to</body></message>",
		"<message from='u@example.org/a' to='f@example.org' type='error'><body>x</body></message>",
		"<message from='u@example.org/a' to='r@muc.example.org' type='groupchat'><body>x</body></message>",
		"<message from='u@example.org/a' to='f@example.org' type='headline'><body>x</body></message>",
		"<message from='u@example.org/a' to='f@example.org'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
		"<message from='u@example.org/a' to='f@example.org' type='normal'><x xmlns='tbody'/></message>",
		"<message from='u@example.org/a' to='f@example.org' type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>",
		"<message from='u@example.org/a' to='f@example.org' type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>",
		"<message from='u@example.org/a' to='f@example.org' type='chat'><received xmlns='urn:xmpp:carbons:2'/></message>",
	} {
		if !w.parts["a"].Outbound(msg(t, raw)) {
			t.Errorf("consumed %s", raw)
		}
		if len(w.hosts["a"].Sent) != 0 {
			t.Errorf("copied %s", raw)
			w.hosts["a"].Sent = nil
		}
	}
}

func TestEligible(t *testing.T) {
	for raw, want := range map[string]bool{
		chat: true,
		"<message to='f@example.org' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>": true,
		"<message to='f@example.org'><body>x</body></message>":                                                         true,
		"<message to='f@example.org' type='normal'><body xml:lang='en'>x</body></message>":                             true,
		"<message to='f@example.org' type='normal'><body>x</body><store xmlns='urn:xmpp:hints'/></message>":            true,
		"<message to='f@example.org' type='normal'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>":          false,
		"<message to='f@example.org' type='normal'><x xmlns='urn:xmpp:hints'>body</x></message>":                       false,
		"<message to='f@example.org'><thread>body</thread></message>":                                                  false,
		"<message to='f@example.org'/>": false,
		"<message to='f@example.org' type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>": false,
		"<message to='f@example.org' type='weird'><body>x</body></message>":                    false,
	} {
		if got := eligible(msg(t, raw)); got != want {
			t.Errorf("eligible(%s) = %v, want %v", raw, got, want)
		}
	}
	// Malformed bytes that need a parse are not eligible.
	bad := stanza.New(stanza.Head{Name: "message", Type: "chat"}, jid.JID{}, featuretest.MustJID("f@example.org"), "<message type='chat'><private xmlns='urn:xmpp:carbons:2'>")
	if eligible(bad) {
		t.Errorf("malformed stanza eligible")
	}
}

func TestReceivedCopies(t *testing.T) {
	w := newWorld(t, "a", "b", "c")
	w.enable("a", true)
	w.enable("b", true)
	w.client("a")
	w.client("b")
	in := "<message from='f@example.org/x' to='u@example.org/a' type='chat' id='r1'><body>yo</body></message>"
	w.user.Delivered(msg(t, in), []feature.Resource{w.uh.Res[0]})
	w.pump()
	if got := w.client("a"); len(got) != 0 {
		t.Errorf("the recipient got a copy: %q", got)
	}
	if got, want := w.client("b"), []string{wrapped("received", "u@example.org/b", in)}; !reflect.DeepEqual(got, want) {
		t.Errorf("b got\n%q\nwant\n%q", got, want)
	}
	if got := w.client("c"); len(got) != 0 {
		t.Errorf("c (carbons off) got %q", got)
	}
}

func TestReceivedNone(t *testing.T) {
	w := newWorld(t, "a", "b")
	w.enable("b", true)
	w.client("b")
	// Stored offline: no carbons.
	w.user.Delivered(msg(t, "<message from='f@example.org/x' to='u@example.org' type='chat'><body>yo</body></message>"), nil)
	// Delivered to every carbon-enabled resource already.
	w.user.Delivered(msg(t, "<message from='f@example.org/x' to='u@example.org' type='chat'><body>yo</body></message>"), w.uh.Res)
	// Not eligible.
	w.user.Delivered(msg(t, "<message from='f@example.org/x' to='u@example.org/a' type='headline'><body>yo</body></message>"), w.uh.Res[:1])
	w.user.Delivered(msg(t, "<message from='f@example.org/x' to='u@example.org/a' type='chat'><body>yo</body><private xmlns='urn:xmpp:carbons:2'/></message>"), w.uh.Res[:1])
	if len(w.uh.Sent) != 0 {
		t.Errorf("copies sent: %v", w.uh.Sent)
	}
}

func TestCopyDroppedWhenCarbonsWentOff(t *testing.T) {
	w := newWorld(t, "a", "b")
	w.enable("b", true)
	w.client("b")
	w.parts["a"].Outbound(msg(t, chat))
	// b disables before the user part's copy arrives.
	w.parts["b"].on = false
	w.pump()
	if got := w.client("b"); len(got) != 0 {
		t.Errorf("copy delivered with carbons off: %q", got)
	}
}

func TestPeersOnBoundAndDropped(t *testing.T) {
	w := newWorld(t, "a")
	if len(w.uh.Sent) != 0 || w.parts["a"].peers != 0 {
		t.Errorf("bound with nobody enabled told %v", w.uh.Sent)
	}
	w.enable("a", true)
	w.bind("b")
	if w.parts["b"].peers != 1 {
		t.Errorf("new session peers %d, want 1", w.parts["b"].peers)
	}
	w.enable("b", true)
	if w.parts["a"].peers != 2 || w.parts["b"].peers != 2 {
		t.Errorf("peers %d/%d, want 2", w.parts["a"].peers, w.parts["b"].peers)
	}
	// Dropping a session without carbons tells nobody.
	w.bind("c")
	w.uh.Sent = nil
	w.drop("c")
	w.user.Dropped(feature.Resource{Full: featuretest.MustJID("u@example.org/zz")})
	if len(w.uh.Sent) != 0 {
		t.Errorf("dropping a session without carbons told %v", w.uh.Sent)
	}
	// Dropping one with carbons tells the others, not the gone one.
	gone := w.uh.Res[0]
	w.user.Dropped(gone)
	w.uh.Res = w.uh.Res[1:]
	for _, s := range w.uh.Sent {
		if s.To == gone.Full {
			t.Errorf("told the gone session")
		}
	}
	delete(w.parts, "a")
	delete(w.hosts, "a")
	w.pump()
	if w.parts["b"].peers != 1 || len(w.user.on) != 1 {
		t.Errorf("after drop: peers %d, flags %v", w.parts["b"].peers, w.user.on)
	}
}

func TestToggleFromGoneSessionIgnored(t *testing.T) {
	w := newWorld(t, "a")
	w.user.Handle(toggled{resource: "ghost", on: true})
	if len(w.user.on) != 0 || len(w.uh.Sent) != 0 {
		t.Errorf("ghost toggle: flags %v, sent %v", w.user.on, w.uh.Sent)
	}
	// Unknown message types are ignored by both parts.
	w.user.Handle("nonsense")
	w.parts["a"].Handle(42)
	if len(w.uh.Sent) != 0 || len(w.hosts["a"].Client) != 0 {
		t.Errorf("unknown message had an effect")
	}
}

func TestReboundResourceStartsOff(t *testing.T) {
	// A leftover flag of a replaced session of the same resource must not count the new session in.
	w := newWorld(t, "a", "b")
	w.enable("a", true)
	w.uh.Res = w.uh.Res[1:] // a replaced without Dropped having cleaned up (defensive)
	w.bind("a")
	if len(w.user.on) != 0 || w.parts["b"].peers != 0 || w.parts["a"].peers != 0 {
		t.Errorf("flags %v, peers a %d b %d", w.user.on, w.parts["a"].peers, w.parts["b"].peers)
	}
}

// XEP-0386 §2.2: carbons enabled inline in Bind 2 are on for the new session, with no answer to the client, and
// the user part learns it as from the IQ.
func TestBind2Enable(t *testing.T) {
	w := newWorld(t, "a", "b")
	spec := Feature.Bind2
	if spec == nil || spec.Var != stanza.NSCarbons || len(spec.Elements) != 1 || spec.Elements[0] != (xmlstream.Name{Space: stanza.NSCarbons, Local: "enable"}) {
		t.Fatalf("Bind2 spec %+v", spec)
	}
	var _ feature.Bind2Enabler = w.parts["a"]
	n, _ := xmlstream.ParseNode("<enable xmlns='urn:xmpp:carbons:2'/>", "")
	if got := w.parts["a"].Bind2(n); got != "" {
		t.Errorf("Bind2 answered %q, want nothing in <bound/>", got)
	}
	w.pump()
	if !w.parts["a"].Enabled() || !w.user.on["a"] || w.parts["b"].peers != 1 {
		t.Errorf("after Bind2: enabled %v, flags %v, b's peers %d", w.parts["a"].Enabled(), w.user.on, w.parts["b"].peers)
	}
	if len(w.hosts["a"].Client) != 0 {
		t.Errorf("Bind2 wrote to the client: %v", w.hosts["a"].Client)
	}
}
