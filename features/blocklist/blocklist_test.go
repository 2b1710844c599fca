package blocklist

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/stanza"
)

const alice = "alice@example.com"

type fixture struct {
	srv    *featuretest.Server
	u      *featuretest.User
	p      *userPart
	r1, r2 feature.Resource
}

// newFixture: alice online as r1 and r2, with bob (from), carol (to), dave (both) and eve (none) in the roster
// and the given JIDs already blocked in storage.
func newFixture(t *testing.T, stored ...string) *fixture {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	srv.AddAccount(t, alice)
	for _, j := range stored {
		if err := srv.DB.PutKV(context.Background(), alice, KVNamespace, j, ""); err != nil {
			t.Fatal(err)
		}
	}
	u := featuretest.NewUser(srv, alice, true)
	for c, s := range map[string]string{"bob@example.com": "from", "carol@example.com": "to", "dave@example.net": "both", "eve@example.com": "none"} {
		u.Subs[featuretest.MustJID(c)] = s
	}
	f := &fixture{srv: srv, u: u, r1: u.Online("r1", 0), r2: u.Online("r2", 0)}
	f.p = Feature.NewUser(u).(*userPart)
	u.Filter = f.p.AllowPresence
	return f
}

// own sends an IQ from alice's resource r and returns what came back to r.
func (f *fixture) own(t *testing.T, r feature.Resource, id, typ, payload string) *stanza.Routed {
	t.Helper()
	before := len(f.u.Delivered[r.Full])
	raw := "<iq from='" + r.Full.String() + "' type='" + typ + "' id='" + id + "'>" + payload + "</iq>"
	blockingIQ(featuretest.AccountIQ(t, f.u, f.p, raw, true, r))
	got := f.u.Delivered[r.Full]
	if len(got) <= before {
		t.Fatalf("%s: no answer", id)
	}
	return got[before]
}

func (f *fixture) stored(t *testing.T) []string {
	t.Helper()
	m, err := f.srv.DB.ListKV(context.Background(), alice, KVNamespace)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func raws(sts []*stanza.Routed) []string {
	var out []string
	for _, st := range sts {
		out = append(out, st.Raw)
	}
	return out
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

func TestBlocklistLoadedAndSorted(t *testing.T) {
	f := newFixture(t, "z@example.com", "example.org", "a@example.com/phone", "not a jid@@")
	got := f.own(t, f.r1, "l1", "get", "<blocklist xmlns='urn:xmpp:blocking'/>")
	eq(t, "blocklist", got.Raw, "<iq type='result' to='alice@example.com/r1' id='l1'><blocklist xmlns='urn:xmpp:blocking'>"+
		"<item jid='a@example.com/phone'/><item jid='example.org'/><item jid='z@example.com'/></blocklist></iq>")
	if !f.p.wanted[f.r1.Full] || f.p.wanted[f.r2.Full] {
		t.Fatalf("wanted = %v, want r1 only", f.p.wanted)
	}
}

func TestWrongTypesAndMalformed(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		typ, payload string
		cond         stanza.Condition
	}{
		{"set", "<blocklist xmlns='urn:xmpp:blocking'/>", stanza.BadRequest},
		{"get", "<block xmlns='urn:xmpp:blocking'><item jid='x@example.com'/></block>", stanza.BadRequest},
		{"get", "<unblock xmlns='urn:xmpp:blocking'/>", stanza.BadRequest},
		{"set", "<block xmlns='urn:xmpp:blocking'/>", stanza.BadRequest}, // §3.3: no items
		{"set", "<block xmlns='urn:xmpp:blocking'><item jid='@bad'/></block>", stanza.JIDMalformed},
		{"set", "<block xmlns='urn:xmpp:blocking'><item/></block>", stanza.JIDMalformed},
		{"set", "<unblock xmlns='urn:xmpp:blocking'><item jid='a@b@c'/></unblock>", stanza.JIDMalformed},
	} {
		got := f.own(t, f.r1, "e", c.typ, c.payload)
		if cond := featuretest.ErrorCondition(t, got); cond != string(c.cond) {
			t.Errorf("%s %s: %s, want %s", c.typ, c.payload, cond, c.cond)
		}
	}
	eq(t, "stored", f.stored(t), []string(nil))
	eq(t, "pushes/snapshots", len(f.u.Sent), 0)
	eq(t, "filter changes", f.u.FilterChanges, 0)
}

func TestNotOwner(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"<blocklist xmlns='urn:xmpp:blocking'/>", "<block xmlns='urn:xmpp:blocking'><item jid='x@example.com'/></block>"} {
		f.u.Routed = nil
		raw := "<iq from='bob@example.com/x' to='alice@example.com' type='set' id='n1'>" + p + "</iq>"
		blockingIQ(featuretest.AccountIQ(t, f.u, f.p, raw, false, feature.Resource{}))
		eq(t, "answer", raws(f.u.Routed), []string{"<iq from='alice@example.com' to='bob@example.com/x' type='error' id='n1'>" +
			"<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"})
	}
	eq(t, "stored", f.stored(t), []string(nil))
}

func TestLimit(t *testing.T) {
	var full []string
	for i := 0; i < MaxItems; i++ {
		full = append(full, fmt.Sprintf("u%d@example.com", i))
	}
	f := newFixture(t, full...)
	got := f.own(t, f.r1, "b1", "set", "<block xmlns='urn:xmpp:blocking'><item jid='new@example.com'/></block>")
	eq(t, "over the limit", got.Raw, "<iq to='alice@example.com/r1' type='error' id='b1'><error type='wait'>"+
		"<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"+
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the blocklist is full</text></error></iq>")
	eq(t, "stored", len(f.stored(t)), MaxItems)
	// Blocking again what is already blocked needs no room.
	got = f.own(t, f.r1, "b2", "set", "<block xmlns='urn:xmpp:blocking'><item jid='u7@example.com'/></block>")
	eq(t, "re-block", got.Raw, "<iq type='result' to='alice@example.com/r1' id='b2'/>")
}

func TestBlockAndUnblock(t *testing.T) {
	f := newFixture(t)
	f.own(t, f.r1, "l1", "get", "<blocklist xmlns='urn:xmpp:blocking'/>") // r1 wants pushes, r2 does not
	off := feature.Resource{Full: featuretest.MustJID(alice + "/off")}    // bound, not available
	f.u.Res = append(f.u.Res, off)

	got := f.own(t, f.r1, "b1", "set", "<block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/><item jid='carol@example.com'/></block>")
	eq(t, "block result", got.Raw, "<iq type='result' to='alice@example.com/r1' id='b1'/>")
	eq(t, "stored", f.stored(t), []string{"bob@example.com", "carol@example.com"})
	// §3.3: unavailable from each available resource to bob (from); carol only has 'to', nothing to take back.
	eq(t, "presence", raws(f.u.Routed), []string{
		"<presence from='alice@example.com/r1' to='bob@example.com' type='unavailable'/>",
		"<presence from='alice@example.com/r2' to='bob@example.com' type='unavailable'/>",
	})
	eq(t, "filter changes", f.u.FilterChanges, 1)
	if f.u.MaySeePresence(featuretest.MustJID("bob@example.com")) {
		t.Fatal("bob still sees presence")
	}
	want := set{featuretest.MustJID("bob@example.com"): {}, featuretest.MustJID("carol@example.com"): {}}
	eq(t, "snapshots", f.u.Sent, []featuretest.Sent{{To: f.r1.Full, Msg: snapshot{s: want}}, {To: f.r2.Full, Msg: snapshot{s: want}}, {To: off.Full, Msg: snapshot{s: want}}})
	eq(t, "push to r1", raws(f.u.Delivered[f.r1.Full][2:]), []string{"<iq from='alice@example.com' to='alice@example.com/r1' type='set' id='block1'>" +
		"<block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/><item jid='carol@example.com'/></block></iq>"})
	eq(t, "nothing to r2", len(f.u.Delivered[f.r2.Full]), 0)

	// Blocking the domain of dave (both) takes presence back from him; bob is blocked already: no second one.
	f.u.Routed = nil
	f.own(t, f.r1, "b2", "set", "<block xmlns='urn:xmpp:blocking'><item jid='example.net'/><item jid='bob@example.com'/></block>")
	eq(t, "presence", raws(f.u.Routed), []string{
		"<presence from='alice@example.com/r1' to='dave@example.net' type='unavailable'/>",
		"<presence from='alice@example.com/r2' to='dave@example.net' type='unavailable'/>",
	})

	// §3.4: unblocking bob sends him the current presence; dave stays blocked by his domain.
	f.u.Routed = nil
	f.own(t, f.r1, "u1", "set", "<unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/><item jid='dave@example.net'/></unblock>")
	eq(t, "presence", raws(f.u.Routed), []string{
		"<presence to='bob@example.com' from='alice@example.com/r1'/>",
		"<presence to='bob@example.com' from='alice@example.com/r2'/>",
	})
	eq(t, "stored", f.stored(t), []string{"carol@example.com", "example.net"})
	pushes := f.u.Delivered[f.r1.Full]
	eq(t, "unblock push", pushes[len(pushes)-1].Raw, "<iq from='alice@example.com' to='alice@example.com/r1' type='set' id='block3'>"+
		"<unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/><item jid='dave@example.net'/></unblock></iq>")

	// §3.5: an empty unblock clears the list and is pushed as it was asked.
	f.u.Routed = nil
	f.u.Sent = nil
	got = f.own(t, f.r1, "u2", "set", "<unblock xmlns='urn:xmpp:blocking'/>")
	eq(t, "unblock all result", got.Raw, "<iq type='result' to='alice@example.com/r1' id='u2'/>")
	eq(t, "stored", f.stored(t), []string(nil))
	eq(t, "presence to dave", raws(f.u.Routed), []string{
		"<presence to='dave@example.net' from='alice@example.com/r1'/>",
		"<presence to='dave@example.net' from='alice@example.com/r2'/>",
	})
	pushes = f.u.Delivered[f.r1.Full]
	eq(t, "unblock-all push", pushes[len(pushes)-1].Raw, "<iq from='alice@example.com' to='alice@example.com/r1' type='set' id='block4'>"+
		"<unblock xmlns='urn:xmpp:blocking'></unblock></iq>")
	eq(t, "empty snapshots", f.u.Sent[0], featuretest.Sent{To: f.r1.Full, Msg: snapshot{s: set{}}})
	eq(t, "filter changes", f.u.FilterChanges, 4)
}

func TestDroppedStopsPushes(t *testing.T) {
	f := newFixture(t)
	f.own(t, f.r1, "l1", "get", "<blocklist xmlns='urn:xmpp:blocking'/>")
	f.p.Dropped(f.r1)
	f.u.Res = f.u.Res[1:]
	// r1 comes back with the same full JID: it has not asked for the list in this session.
	f.u.Res = append(f.u.Res, f.r1)
	n := len(f.u.Delivered[f.r1.Full])
	f.own(t, f.r2, "b1", "set", "<block xmlns='urn:xmpp:blocking'><item jid='x@example.com'/></block>")
	eq(t, "nothing new to r1", len(f.u.Delivered[f.r1.Full]), n)
}

func TestBoundSnapshot(t *testing.T) {
	f := newFixture(t)
	f.p.Bound(f.r1)
	eq(t, "empty list: no snapshot", len(f.u.Sent), 0)
	f = newFixture(t, "x@example.com")
	f.p.Bound(f.r1)
	eq(t, "snapshot", f.u.Sent, []featuretest.Sent{{To: f.r1.Full, Msg: snapshot{s: set{featuretest.MustJID("x@example.com"): {}}}}})
}

func TestMatching(t *testing.T) {
	b := set{}
	for _, s := range []string{"full@example.com/res", "bare@example.com", "example.org/res", "example.net"} {
		b[featuretest.MustJID(s)] = struct{}{}
	}
	for s, want := range map[string]bool{
		"full@example.com/res":   true,
		"full@example.com/other": false,
		"full@example.com":       false,
		"bare@example.com":       true,
		"bare@example.com/any":   true,
		"x@example.org/res":      true,
		"example.org/res":        true,
		"x@example.org/other":    false,
		"example.org":            false,
		"example.net":            true,
		"x@example.net/y":        true,
		"sub.example.net":        false,
		"other@example.com":      false,
	} {
		if got := b.matches(featuretest.MustJID(s)); got != want {
			t.Errorf("matches(%s) = %v, want %v", s, got, want)
		}
	}
	if (set{}).matches(featuretest.MustJID("a@b")) || set(nil).matches(featuretest.MustJID("a@b")) {
		t.Error("empty set matches")
	}
}

func TestUserInbound(t *testing.T) {
	f := newFixture(t, "mallory@evil.example", "evil.example/bot")
	for _, c := range []struct {
		raw    string
		pass   bool
		bounce bool
	}{
		{"<message from='mallory@evil.example/x' to='alice@example.com' type='chat'><body>hi</body></message>", false, true},
		{"<message from='mallory@evil.example/x' to='alice@example.com' type='error'/>", false, true}, // Bounce never answers an error
		{"<iq from='mallory@evil.example/x' to='alice@example.com' type='get' id='1'><query xmlns='jabber:iq:version'/></iq>", false, true},
		{"<iq from='mallory@evil.example/x' to='alice@example.com' type='set' id='2'><query xmlns='jabber:iq:version'/></iq>", false, true},
		{"<iq from='mallory@evil.example/x' to='alice@example.com' type='result' id='3'/>", false, false},
		{"<iq from='mallory@evil.example/x' to='alice@example.com' type='error' id='4'/>", false, false},
		{"<presence from='mallory@evil.example/x' to='alice@example.com'/>", false, false},
		{"<presence from='mallory@evil.example' to='alice@example.com' type='subscribe'/>", false, false},
		{"<message from='anyone@evil.example/bot' to='alice@example.com'/>", false, true},
		{"<message from='anyone@evil.example/human' to='alice@example.com'/>", true, false},
		{"<message from='bob@example.com/x' to='alice@example.com'/>", true, false},
		{"<message to='alice@example.com'/>", true, false},
	} {
		f.u.Bounced, f.u.BouncedAs = nil, nil
		st := featuretest.Stanza(t, c.raw)
		if got := f.p.Inbound(st); got != c.pass {
			t.Errorf("%s: Inbound = %v, want %v", c.raw, got, c.pass)
		}
		if c.bounce {
			eq(t, c.raw, f.u.BouncedAs, []stanza.Error{stanza.NewError(stanza.ServiceUnavailable)})
			if f.u.Bounced[0] != st {
				t.Errorf("%s: another stanza bounced", c.raw)
			}
		} else if len(f.u.Bounced) != 0 {
			t.Errorf("%s: bounced", c.raw)
		}
	}
	if f.p.AllowPresence(featuretest.MustJID("mallory@evil.example")) || !f.p.AllowPresence(featuretest.MustJID("bob@example.com")) {
		t.Error("AllowPresence")
	}
}

func TestSessionOutbound(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	s := featuretest.NewSession(srv, alice+"/r1")
	p := Feature.NewSession(s).(*sessionPart)
	msg := func(to, typ string) *stanza.Routed {
		raw := "<message from='alice@example.com/r1' to='" + to + "' id='m1'"
		if typ != "" {
			raw += " type='" + typ + "'"
		}
		return featuretest.Stanza(t, raw+"><body>x</body></message>")
	}
	if !p.Outbound(msg("mallory@evil.example", "")) {
		t.Fatal("consumed before any snapshot")
	}
	p.Handle(snapshot{s: set{featuretest.MustJID("evil.example"): {}}})
	p.Handle("not ours") // ignored
	if p.Outbound(msg("mallory@evil.example/x", "chat")) {
		t.Fatal("stanza to a blocked JID passed")
	}
	eq(t, "answer", raws(s.Client), []string{"<message from='mallory@evil.example/x' to='alice@example.com/r1' type='error' id='m1'>" +
		"<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><blocked xmlns='urn:xmpp:blocking:errors'/></error></message>"})
	if !strings.Contains(s.Client[0].Raw, NSErrors) {
		t.Fatal("no blocked condition")
	}
	// An error to a blocked JID is not routed and not answered (RFC 6120 §8.3.1).
	if p.Outbound(msg("mallory@evil.example", "error")) {
		t.Fatal("error to a blocked JID passed")
	}
	eq(t, "no answer to an error", len(s.Client), 1)
	if !p.Outbound(msg("bob@example.com", "")) {
		t.Fatal("stanza to an unblocked JID consumed")
	}
	if !p.Outbound(featuretest.Stanza(t, "<iq from='alice@example.com/r1' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>")) {
		t.Fatal("stanza without 'to' consumed")
	}
}
