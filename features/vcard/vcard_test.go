package vcard

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/avatar"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
)

const (
	alice = "alice@example.com"
	card  = "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>"
)

type fixture struct {
	srv   *featuretest.Server
	alice *featuretest.User // has a vCard once set
	carl  *featuretest.User // an account without a vCard
	ghost *featuretest.User // no account
	r     feature.Resource
	part  any // alice's user part
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	srv.AddAccount(t, alice)
	srv.AddAccount(t, "carl@example.com")
	f := &fixture{srv: srv, alice: featuretest.NewUser(srv, alice, true), carl: featuretest.NewUser(srv, "carl@example.com", true),
		ghost: featuretest.NewUser(srv, "ghost@example.com", false)}
	f.r = f.alice.Online("r1", 0)
	f.part = Feature.NewUser(f.alice)
	return f
}

// own is alice's request from r1 to her own account (to: "" or her bare JID); the answer delivered to r1.
func (f *fixture) own(t *testing.T, to, typ, payload string) string {
	t.Helper()
	raw := "<iq from='alice@example.com/r1' type='" + typ + "' id='v1'"
	if to != "" {
		raw += " to='" + to + "'"
	}
	vcardIQ(featuretest.AccountIQ(t, f.alice, f.part, raw+">"+payload+"</iq>", true, f.r))
	got := f.alice.Delivered[f.r.Full]
	if len(got) == 0 {
		t.Fatal("no answer")
	}
	f.alice.Delivered[f.r.Full] = nil
	return got[len(got)-1].Raw
}

// other is a request of from to the account of u; the answer it routed.
func other(t *testing.T, u *featuretest.User, from, typ, payload string) string {
	t.Helper()
	raw := "<iq from='" + from + "' to='" + u.BareJID.String() + "' type='" + typ + "' id='o1'>" + payload + "</iq>"
	vcardIQ(featuretest.AccountIQ(t, u, nil, raw, false, feature.Resource{}))
	if len(u.Routed) == 0 {
		t.Fatal("no answer")
	}
	got := u.Routed[len(u.Routed)-1].Raw
	u.Routed = nil
	return got
}

func errorTo(from, to, id, typ, cond string) string {
	return "<iq from='" + from + "' to='" + to + "' type='error' id='" + id + "'><error type='" + typ + "'><" + cond +
		" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
}

func TestRouteServesMissingAccounts(t *testing.T) {
	if len(Feature.IQs) != 1 || !Feature.IQs[0].Anyone || Feature.IQs[0].Account == nil {
		t.Fatal("the vCard route must run for bare JIDs without an account (Anyone)")
	}
}

func TestOwnVCard(t *testing.T) {
	f := newFixture(t)
	eq(t, "get before set", f.own(t, "", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq to='alice@example.com/r1' type='error' id='v1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	eq(t, "set", f.own(t, "", "set", card), "<iq type='result' to='alice@example.com/r1' id='v1'/>")
	eq(t, "get", f.own(t, "", "get", "<vCard xmlns='vcard-temp'/>"), "<iq type='result' to='alice@example.com/r1' id='v1'>"+card+"</iq>")
	eq(t, "get to own bare JID", f.own(t, alice, "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq type='result' from='alice@example.com' to='alice@example.com/r1' id='v1'>"+card+"</iq>")
	// Replacing keeps only the new one.
	f.own(t, alice, "set", "<vCard xmlns='vcard-temp'><NICKNAME>al</NICKNAME></vCard>")
	eq(t, "replaced", f.own(t, "", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq type='result' to='alice@example.com/r1' id='v1'><vCard xmlns='vcard-temp'><NICKNAME>al</NICKNAME></vCard></iq>")
}

func TestMaxSize(t *testing.T) {
	f := newFixture(t)
	f.srv.Cfg.VCard.MaxSize = 100
	big := "<vCard xmlns='vcard-temp'><DESC>" + strings.Repeat("x", 100) + "</DESC></vCard>"
	eq(t, "too big", f.own(t, "", "set", big), "<iq to='alice@example.com/r1' type='error' id='v1'><error type='modify'>"+
		"<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"+
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>the vCard is larger than the server accepts</text></error></iq>")
	eq(t, "nothing stored", f.own(t, "", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq to='alice@example.com/r1' type='error' id='v1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	eq(t, "just fits", f.own(t, "", "set", "<vCard xmlns='vcard-temp'><DESC>"+strings.Repeat("x", 100-len("<vCard xmlns='vcard-temp'><DESC></DESC></vCard>"))+"</DESC></vCard>"),
		"<iq type='result' to='alice@example.com/r1' id='v1'/>")
	f.srv.Cfg.VCard.MaxSize = 0 // no limit
	eq(t, "no limit", f.own(t, "", "set", big), "<iq type='result' to='alice@example.com/r1' id='v1'/>")
}

func TestOthersMaySetNothing(t *testing.T) {
	f := newFixture(t)
	forbidden := func(u *featuretest.User) string {
		return errorTo(u.BareJID.String(), "bob@example.com/x", "o1", "auth", "forbidden")
	}
	for _, u := range []*featuretest.User{f.alice, f.ghost} {
		eq(t, "set by another", other(t, u, "bob@example.com/x", "set", card), forbidden(u))
	}
	eq(t, "nothing stored", f.own(t, "", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq to='alice@example.com/r1' type='error' id='v1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
}

// hiddenFrom is the answer of u to bob when it reveals nothing.
func hiddenFrom(u *featuretest.User) string {
	return errorTo(u.BareJID.String(), "bob@example.com/x", "o1", "cancel", "service-unavailable")
}

// sameAnswer: the answers of two accounts differ only in their own address, so they cannot tell them apart.
func sameAnswer(t *testing.T, what string, a, b string, ua, ub *featuretest.User) {
	t.Helper()
	if strings.ReplaceAll(a, ua.BareJID.String(), "X") != strings.ReplaceAll(b, ub.BareJID.String(), "X") {
		t.Fatalf("%s: the answers tell the accounts apart:\n %s\n %s", what, a, b)
	}
}

func TestEveryoneAccessRevealsNoAccount(t *testing.T) {
	f := newFixture(t)
	f.own(t, "", "set", card)
	eq(t, "a vCard", other(t, f.alice, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='o1'>"+card+"</iq>")
	noCard := other(t, f.carl, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>")
	noAccount := other(t, f.ghost, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>")
	eq(t, "no vCard", noCard, hiddenFrom(f.carl))
	eq(t, "no account", noAccount, hiddenFrom(f.ghost))
	sameAnswer(t, "no vCard / no account", noCard, noAccount, f.carl, f.ghost)
}

func TestContactsAccessRevealsNoAccount(t *testing.T) {
	f := newFixture(t)
	f.srv.Cfg.VCard.Access = "contacts"
	f.own(t, "", "set", card)
	f.alice.Subs[featuretest.MustJID("bob@example.com")] = "from"
	f.alice.Subs[featuretest.MustJID("tom@example.com")] = "to"
	eq(t, "a contact", other(t, f.alice, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq type='result' from='alice@example.com' to='bob@example.com/x' id='o1'>"+card+"</iq>")
	// The user's other resources read it as the user.
	eq(t, "own other resource", other(t, f.alice, "alice@example.com/r2", "get", "<vCard xmlns='vcard-temp'/>"),
		"<iq type='result' from='alice@example.com' to='alice@example.com/r2' id='o1'>"+card+"</iq>")

	// A stranger and a contact with a 'to' subscription only (answers readdressed to bob to compare).
	strangerRaw := strings.ReplaceAll(other(t, f.alice, "eve@example.com/x", "get", "<vCard xmlns='vcard-temp'/>"), "eve@example.com/x", "bob@example.com/x")
	toOnly := strings.ReplaceAll(other(t, f.alice, "tom@example.com/x", "get", "<vCard xmlns='vcard-temp'/>"), "tom@example.com/x", "bob@example.com/x")
	noAccount := other(t, f.ghost, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>")
	noCard := other(t, f.carl, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>")
	eq(t, "stranger", strangerRaw, hiddenFrom(f.alice))
	eq(t, "'to' only", toOnly, hiddenFrom(f.alice))
	sameAnswer(t, "not allowed / no account", strangerRaw, noAccount, f.alice, f.ghost)
	sameAnswer(t, "not allowed / no vCard", strangerRaw, noCard, f.alice, f.carl)
}

func TestFilteredContactIsNoContact(t *testing.T) {
	f := newFixture(t)
	f.srv.Cfg.VCard.Access = "contacts"
	f.own(t, "", "set", card)
	f.alice.Subs[featuretest.MustJID("bob@example.com")] = "both"
	// A presence filter (XEP-0191 blocking) that forbids bob: he is no longer allowed to read it.
	f.alice.Filter = func(c jid.JID) bool { return c.Bare() != featuretest.MustJID("bob@example.com") }
	eq(t, "filtered contact", other(t, f.alice, "bob@example.com/x", "get", "<vCard xmlns='vcard-temp'/>"), hiddenFrom(f.alice))
}

func eq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got  %s\n want %s", what, got, want)
	}
}

// The photo's hash: told to each session at Bound and when it changes, stamped into available presence by the
// session part; a vCard set by the client is announced, and a PEP avatar (SetVCardPhoto) replaces only the PHOTO.
func TestPhotoHash(t *testing.T) {
	f := newFixture(t)
	p := f.part.(*userPart)
	p.Bound(f.r)
	if len(f.alice.Sent) != 0 {
		t.Fatalf("told a hash without a photo: %+v", f.alice.Sent)
	}
	const img = "R0lGODlhAQABAAAAACw="
	h, _, _ := avatar.Hash(img)
	f.own(t, "", "set", "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/gif</TYPE><BINVAL>"+img+"</BINVAL></PHOTO></vCard>")
	if len(f.alice.Sent) != 1 || f.alice.Sent[0].Msg != (photoHash{h}) || f.alice.Sent[0].To != f.r.Full {
		t.Fatalf("sessions told %+v, want %s", f.alice.Sent, h)
	}
	if ev := f.alice.Announced; len(ev) != 1 || ev[0].(feature.VCardChanged).By != "" {
		t.Fatalf("announced %+v", ev)
	}
	s := &sessionPart{}
	s.Handle(f.alice.Sent[0].Msg)
	from := f.r.Full
	st := s.Rewrite(stanza.New(stanza.Head{Name: "presence", From: from.String()}, from, jid.JID{}, "<presence from='"+from.String()+"'/>"))
	if !strings.Contains(st.Raw, "<photo>"+h+"</photo>") {
		t.Fatalf("presence not stamped: %s", st.Raw)
	}

	f.alice.Announced, f.alice.Sent = nil, nil
	p.Heard(feature.SetVCardPhoto{By: "pep"}) // the avatar switched off in PEP
	got := f.own(t, "", "get", "<vCard xmlns='vcard-temp'/>")
	if strings.Contains(got, "PHOTO") || !strings.Contains(got, "<FN>Alice</FN>") {
		t.Fatalf("after removal the vCard is %s", got)
	}
	if len(f.alice.Sent) != 1 || f.alice.Sent[0].Msg != (photoHash{""}) {
		t.Fatalf("sessions told %+v, want the empty hash", f.alice.Sent)
	}
	if ev := f.alice.Announced; len(ev) != 1 || ev[0].(feature.VCardChanged).By != "pep" {
		t.Fatalf("announced %+v, want VCardChanged by pep", ev)
	}
	// A fresh user actor reads the hash from storage at the first Bound.
	p.Heard(feature.SetVCardPhoto{Type: "image/gif", BinVal: img, By: "pep"})
	again := Feature.NewUser(f.alice).(*userPart)
	f.alice.Sent = nil
	again.Bound(f.r)
	if len(f.alice.Sent) != 1 || f.alice.Sent[0].Msg != (photoHash{h}) {
		t.Fatalf("a new user actor told %+v", f.alice.Sent)
	}
}
