package muc

import (
	"fmt"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	svcJID = "conference.localhost"
	roomJ  = "coven@conference.localhost"
	alice  = "alice@localhost/a"
	bob    = "bob@localhost/b"
	carol  = "carol@localhost/c"
	dave   = "dave@localhost/d"
)

type fixture struct {
	t   *testing.T
	srv *featuretest.Server
	svc *featuretest.Service
	n   int
}

func setup(t *testing.T) *fixture {
	srv := featuretest.NewServer(t, Feature)
	return &fixture{t: t, srv: srv, svc: featuretest.NewService(t, srv, Feature.Service)}
}

// send hands raw (a stanza in jabber:client) to the service and returns what was routed.
func (f *fixture) send(raw string) []*stanza.Routed {
	f.t.Helper()
	f.svc.Send(featuretest.Stanza(f.t, raw))
	return f.svc.Take()
}

func (f *fixture) id() string { f.n++; return fmt.Sprintf("q%d", f.n) }

// join sends presence from who to roomJ/nick with the MUC <x/> (inner: its children).
func (f *fixture) join(who, nick, inner string) []*stanza.Routed {
	return f.send("<presence xmlns='jabber:client' from='" + who + "' to='" + roomJ + "/" + nick + "'><x xmlns='" + NS + "'>" + inner + "</x></presence>")
}

// iq sends an IQ to to and returns the answer, failing unless there is exactly one; rest is the others.
func (f *fixture) iq(from, to, typ, payload string) (answer *stanza.Routed, rest []*stanza.Routed) {
	f.t.Helper()
	id := f.id()
	for _, st := range f.send("<iq xmlns='jabber:client' from='" + from + "' to='" + to + "' type='" + typ + "' id='" + id + "'>" + payload + "</iq>") {
		if st.Head.Name == "iq" && st.Head.ID == id && st.Head.To == from {
			if answer != nil {
				f.t.Fatalf("two answers to %s", payload)
			}
			answer = st
			continue
		}
		rest = append(rest, st)
	}
	if answer == nil {
		f.t.Fatalf("no answer to %s", payload)
	}
	return answer, rest
}

func (f *fixture) ok(from, to, typ, payload string) (*stanza.Routed, []*stanza.Routed) {
	f.t.Helper()
	a, rest := f.iq(from, to, typ, payload)
	if a.Head.Type != "result" {
		f.t.Fatalf("%s: %s", payload, a.Raw)
	}
	return a, rest
}

func (f *fixture) refused(from, to, typ, payload string, cond stanza.Condition) {
	f.t.Helper()
	a, _ := f.iq(from, to, typ, payload)
	if c := featuretest.ErrorCondition(f.t, a); c != string(cond) {
		f.t.Fatalf("%s from %s: %s, want %s", payload, from, a.Raw, cond)
	}
}

// admin sends a muc#admin set with one item.
func (f *fixture) admin(from, item string) *stanza.Routed {
	f.t.Helper()
	a, _ := f.iq(from, roomJ, "set", "<query xmlns='"+NSAdmin+"'>"+item+"</query>")
	return a
}

func (f *fixture) adminOK(from, item string) []*stanza.Routed {
	f.t.Helper()
	a, rest := f.iq(from, roomJ, "set", "<query xmlns='"+NSAdmin+"'>"+item+"</query>")
	if a.Head.Type != "result" {
		f.t.Fatalf("%s by %s: %s", item, from, a.Raw)
	}
	return rest
}

func (f *fixture) adminRefused(from, item string, cond stanza.Condition) {
	f.t.Helper()
	if c := featuretest.ErrorCondition(f.t, f.admin(from, item)); c != string(cond) {
		f.t.Fatalf("%s by %s: %s, want %s", item, from, c, cond)
	}
}

// instant creates coven with alice as owner and accepts the default configuration (§10.1.2).
func (f *fixture) instant() {
	f.t.Helper()
	f.join(alice, "alice", "")
	f.ok(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><x xmlns='jabber:x:data' type='submit'/></query>")
}

// configure submits fields (var → value) as the owner alice.
func (f *fixture) configure(fields map[string]string) []*stanza.Routed {
	f.t.Helper()
	var b strings.Builder
	b.WriteString("<query xmlns='" + NSOwner + "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + NSRoomConfig + "</value></field>")
	for k, v := range fields {
		b.WriteString("<field var='" + k + "'><value>" + v + "</value></field>")
	}
	b.WriteString("</x></query>")
	_, rest := f.ok(alice, roomJ, "set", b.String())
	return rest
}

// to keeps the stanzas addressed to full.
func to(sts []*stanza.Routed, full string) []*stanza.Routed {
	var out []*stanza.Routed
	for _, st := range sts {
		if st.Head.To == full {
			out = append(out, st)
		}
	}
	return out
}

// codes are the muc#user status codes of st.
func codes(t *testing.T, st *stanza.Routed) []string {
	t.Helper()
	var out []string
	if x := featuretest.Node(t, st).Child(NSUser, "x"); x != nil {
		for _, s := range x.ChildrenNamed(NSUser, "status") {
			out = append(out, s.Attr("code"))
		}
	}
	return out
}

func item(t *testing.T, st *stanza.Routed) *xmlstream.Node {
	t.Helper()
	x := featuretest.Node(t, st).Child(NSUser, "x")
	if x == nil {
		t.Fatalf("no muc#user x: %s", st.Raw)
	}
	return x.Child(NSUser, "item")
}

func has(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func want(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}

func TestCreateInstantRoom(t *testing.T) {
	f := setup(t)
	out := f.join(alice, "alice", "")
	want(t, len(out) == 2, "creating: %d stanzas, want self-presence and subject", len(out))
	self := out[0]
	want(t, self.Head.Name == "presence" && self.Head.From == roomJ+"/alice" && self.Head.To == alice, "self-presence: %s", self.Raw)
	c := codes(t, self)
	want(t, has(c, "110") && has(c, "201"), "codes %v, want 110 and 201 (§10.1.2)", c)
	it := item(t, self)
	want(t, it.Attr("affiliation") == Owner && it.Attr("role") == Moderator, "item %s", it)
	want(t, featuretest.Node(t, self).Child(NSOccupantID, "occupant-id") != nil, "no occupant-id (XEP-0421)")
	want(t, strings.Contains(out[1].Raw, "<subject/>"), "subject: %s", out[1].Raw)

	// Locked: others meet item-not-found, the roomJ is not listed, its disco#info is item-not-found.
	err := f.join(bob, "bob", "")
	want(t, len(err) == 1 && featuretest.ErrorCondition(t, err[0]) == "item-not-found", "join of a locked roomJ: %v", err)
	f.refused(bob, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"'/>", stanza.ItemNotFound)
	a, _ := f.ok(bob, svcJID, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	want(t, !strings.Contains(a.Raw, "coven"), "locked roomJ listed: %s", a.Raw)

	// The owner accepts the defaults; now bob enters.
	f.ok(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><x xmlns='jabber:x:data' type='submit'/></query>")
	out = f.join(bob, "bob", "")
	bobs := to(out, bob)
	want(t, len(bobs) == 3, "bob gets alice's presence, his own, the subject: %d", len(bobs))
	want(t, bobs[0].Head.From == roomJ+"/alice" && item(t, bobs[0]).Attr("jid") == "", "alice's presence to bob (semi-anonymous: no jid): %s", bobs[0].Raw)
	want(t, bobs[1].Head.From == roomJ+"/bob" && has(codes(t, bobs[1]), "110") && !has(codes(t, bobs[1]), "201"), "bob's self-presence: %s", bobs[1].Raw)
	alices := to(out, alice)
	want(t, len(alices) == 1 && item(t, alices[0]).Attr("jid") == bob, "alice (moderator) sees bob's jid: %v", alices)
	a, _ = f.ok(carol, svcJID, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	want(t, strings.Contains(a.Raw, "jid='"+roomJ+"' name='coven'"), "public roomJ not listed: %s", a.Raw)
}

func TestReservedRoomConfiguration(t *testing.T) {
	f := setup(t)
	f.join(alice, "alice", "")
	a, _ := f.ok(alice, roomJ, "get", "<query xmlns='"+NSOwner+"'/>")
	for _, v := range []string{"muc#roomconfig_roomname", "muc#roomconfig_persistentroom", "muc#roomconfig_membersonly",
		"muc#roomconfig_moderatedroom", "muc#roomconfig_whois", "muc#roomconfig_roomsecret", "muc#roomconfig_roomowners"} {
		want(t, strings.Contains(a.Raw, "var='"+v+"'"), "form lacks %s", v)
	}
	f.refused(bob, roomJ, "get", "<query xmlns='"+NSOwner+"'/>", stanza.ItemNotFound) // locked: not there for bob
	f.configure(map[string]string{"muc#roomconfig_roomname": "The Coven", "muc#roomconfig_roomdesc": "witches",
		"muc#roomconfig_whois": "anyone", "muc#roomconfig_persistentroom": "1"})
	a, _ = f.ok(bob, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"'/>")
	for _, v := range []string{"muc_public", "muc_persistent", "muc_open", "muc_unmoderated", "muc_nonanonymous", "muc_unsecured", NSOccupantID, NSSelfPing} {
		want(t, strings.Contains(a.Raw, "var='"+v+"'"), "disco#info lacks %s: %s", v, a.Raw)
	}
	want(t, strings.Contains(a.Raw, "name='The Coven'") && strings.Contains(a.Raw, "<value>witches</value>"), "identity/roominfo: %s", a.Raw)
	want(t, strings.Contains(a.Raw, "var='muc#roominfo_occupants' label='Number of occupants'><value>1</value>"), "occupant count: %s", a.Raw)
	// Non-owners may not configure.
	f.join(bob, "bob", "")
	f.refused(bob, roomJ, "get", "<query xmlns='"+NSOwner+"'/>", stanza.Forbidden)
	// Bad values change nothing.
	f.refused(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_whois'><value>nobody</value></field></x></query>", stanza.NotAcceptable)
	// Non-anonymous: bob's self-presence has 100; a config change tells the occupants (104, 173).
	out := f.configure(map[string]string{"muc#roomconfig_whois": "moderators"})
	bobs := to(out, bob)
	want(t, len(bobs) == 1 && has(codes(t, bobs[0]), "173") && has(codes(t, bobs[0]), "104"), "config change to bob: %v", bobs)
}

func TestNicknames(t *testing.T) {
	f := setup(t)
	f.instant()
	out := f.join(bob, "alice", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "conflict", "nick conflict: %v", out) // §7.2.8
	out = f.send("<presence xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "'><x xmlns='" + NS + "'/></presence>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "jid-malformed", "no nick: %v", out)
	long := strings.Repeat("n", 65)
	out = f.join(bob, long, "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "policy-violation" && f.srv.LimitHits[LimitNick] == 1, "long nick: %v", out)

	// A reserved nick (§9.3 <item nick/>) is refused to others.
	f.adminOK(alice, "<item affiliation='member' jid='carol@localhost' nick='thirdwitch'/>")
	out = f.join(bob, "thirdwitch", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "conflict", "reserved nick: %v", out)
	a, _ := f.ok(carol, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"' node='x-roomuser-item'/>")
	want(t, strings.Contains(a.Raw, "name='thirdwitch'"), "reserved nick discovery (§7.12): %s", a.Raw)
	out = f.join(carol, "thirdwitch", "")
	want(t, len(to(out, carol)) == 3, "carol enters under her reserved nick: %v", out)

	// Nick change (§7.6): unavailable with 303 and the new nick, then available.
	f.join(bob, "bob", "")
	out = f.send("<presence xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/robert'/>")
	al := to(out, alice)
	want(t, len(al) == 2, "alice sees two presences: %v", al)
	want(t, al[0].Head.Type == "unavailable" && al[0].Head.From == roomJ+"/bob" && has(codes(t, al[0]), "303") && item(t, al[0]).Attr("nick") == "robert", "303: %s", al[0].Raw)
	want(t, al[1].Head.Type == "" && al[1].Head.From == roomJ+"/robert", "new nick: %s", al[1].Raw)
	bo := to(out, bob)
	want(t, len(bo) == 2 && has(codes(t, bo[0]), "110") && has(codes(t, bo[1]), "110"), "bob's own: %v", bo)
	out = f.send("<presence xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice'/>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "conflict", "change to a taken nick: %v", out)
}

func TestGroupchatHistorySubject(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	for i := 1; i <= 3; i++ {
		out := f.send(fmt.Sprintf("<message xmlns='jabber:client' from='%s' to='%s' type='groupchat' id='m%d'><body>hello %d</body><occupant-id xmlns='%s' id='forged'/></message>", alice, roomJ, i, i, NSOccupantID))
		want(t, len(out) == 2, "fan-out to both occupants: %d", len(out))
		for _, m := range out {
			want(t, m.Head.From == roomJ+"/alice" && m.Head.ID == fmt.Sprintf("m%d", i) && m.Head.Type == "groupchat", "copy: %s", m.Raw)
			want(t, !strings.Contains(m.Raw, "forged") && strings.Contains(m.Raw, NSOccupantID), "occupant-id replaced: %s", m.Raw)
		}
	}
	out := f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "' type='groupchat'><body>hi</body></message>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "not-acceptable", "non-occupant: %v", out)

	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "' type='groupchat'><subject>Spells</subject></message>")
	want(t, len(out) == 2 && strings.Contains(out[0].Raw, "<subject>Spells</subject>"), "subject: %v", out)

	// History: maxstanzas=2 gives the last two, oldest first, with delays, then the subject.
	out = to(f.join(carol, "carol", "<history maxstanzas='2'/>"), carol)
	want(t, len(out) == 6, "carol: 3 presences, 2 history, subject; got %d", len(out))
	want(t, strings.Contains(out[3].Raw, "hello 2") && strings.Contains(out[4].Raw, "hello 3"), "history order: %s / %s", out[3].Raw, out[4].Raw)
	want(t, strings.Contains(out[3].Raw, "<delay xmlns='urn:xmpp:delay' from='"+roomJ+"'"), "delay: %s", out[3].Raw)
	want(t, strings.Contains(out[5].Raw, "Spells") && out[5].Head.From == roomJ+"/bob", "subject last: %s", out[5].Raw)
	out = to(f.join(dave, "dave", "<history maxchars='0'/>"), dave)
	want(t, len(out) == 5, "maxchars=0: no history (%d)", len(out))
	out = to(f.join("eve@localhost/e", "eve", "<history seconds='3600'/>"), "eve@localhost/e")
	want(t, len(out) == 6+3, "seconds=3600: the 3 messages (%d)", len(out))

	// Participants may change the subject by default; not when the roomJ says no.
	f.configure(map[string]string{"muc#roomconfig_changesubject": "0"})
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "' type='groupchat'><subject>x</subject></message>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "forbidden", "subject by participant: %v", out)
}

func TestPrivateMessagesAndIQs(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	out := f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice' type='chat' id='pm1'><body>psst</body></message>")
	want(t, len(out) == 1 && out[0].Head.To == alice && out[0].Head.From == roomJ+"/bob" && strings.Contains(out[0].Raw, "psst") &&
		strings.Contains(out[0].Raw, "<x xmlns='"+NSUser+"'/>"), "PM: %v", out)
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/nobody' type='chat'><body>x</body></message>")
	want(t, featuretest.ErrorCondition(t, out[0]) == "item-not-found", "PM to nobody: %v", out)
	out = f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "/alice' type='chat'><body>x</body></message>")
	want(t, featuretest.ErrorCondition(t, out[0]) == "not-acceptable", "PM from a non-occupant: %v", out)
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice' type='groupchat'><body>x</body></message>")
	want(t, featuretest.ErrorCondition(t, out[0]) == "bad-request", "groupchat to an occupant: %v", out)

	// XEP-0410 self-ping: answered by the roomJ; a non-occupant is not-acceptable.
	f.ok(bob, roomJ+"/bob", "get", "<ping xmlns='urn:xmpp:ping'/>")
	f.refused(carol, roomJ+"/bob", "get", "<ping xmlns='urn:xmpp:ping'/>", stanza.NotAcceptable)
	// An IQ to another occupant goes to its full JID from the sender's roomJ JID.
	out = f.send("<iq xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
	want(t, len(out) == 1 && out[0].Head.To == alice && out[0].Head.From == roomJ+"/bob", "IQ forwarded: %v", out)
	out = f.send("<iq xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/bob' type='result' id='v1'><query xmlns='jabber:iq:version'><name>x</name></query></iq>")
	want(t, len(out) == 1 && out[0].Head.To == bob && out[0].Head.From == roomJ+"/alice" && out[0].Head.Type == "result", "IQ answer back: %v", out)

	// allow_pm = none.
	f.configure(map[string]string{"muc#roomconfig_allowpm": "none"})
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice' type='chat'><body>x</body></message>")
	want(t, featuretest.ErrorCondition(t, out[0]) == "forbidden", "PM when none: %v", out)
}

func TestRolesKickVoice(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	f.join(carol, "carol", "")
	// A participant may not kick (§8.2: forbidden); nobody kicks the owner (not-allowed).
	f.adminRefused(bob, "<item nick='carol' role='none'/>", stanza.Forbidden)
	f.adminOK(alice, "<item affiliation='admin' jid='bob@localhost'/>")
	f.adminRefused(bob, "<item nick='alice' role='none'/>", stanza.NotAllowed)
	f.adminRefused(bob, "<item nick='nobody' role='none'/>", stanza.ItemNotFound)
	// Kick (§8.2): 307 with actor and reason, to carol with 110.
	out := f.adminOK(bob, "<item nick='carol' role='none'><reason>out</reason></item>")
	ca := to(out, carol)
	want(t, len(ca) == 1 && ca[0].Head.Type == "unavailable" && has(codes(t, ca[0]), "307") && has(codes(t, ca[0]), "110"), "kicked: %v", ca)
	want(t, strings.Contains(ca[0].Raw, "<actor nick='bob'/>") && strings.Contains(ca[0].Raw, "<reason>out</reason>"), "actor/reason: %s", ca[0].Raw)
	want(t, len(to(out, alice)) == 1 && has(codes(t, to(out, alice)[0]), "307"), "others see 307")

	// Moderated roomJ: a visitor may not speak; voice grant lets it.
	f.configure(map[string]string{"muc#roomconfig_moderatedroom": "1"})
	f.join(carol, "carol", "")
	out = f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "' type='groupchat'><body>hi</body></message>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "forbidden", "visitor speaks: %v", out)
	// Voice request (§7.13) reaches the moderators.
	out = f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + NSRequest + "</value></field><field var='muc#role'><value>participant</value></field></x></message>")
	want(t, len(to(out, alice)) == 1 && len(to(out, bob)) == 1 && len(out) == 2, "voice request to the two moderators: %v", out)
	want(t, strings.Contains(out[0].Raw, "<value>carol</value>"), "request names carol: %s", out[0].Raw)
	// The moderator approves (§8.6).
	out = f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + NSRequest + "</value></field><field var='muc#role'><value>participant</value></field><field var='muc#roomnick'><value>carol</value></field><field var='muc#request_allow'><value>true</value></field></x></message>")
	want(t, len(out) == 3 && item(t, out[0]).Attr("role") == Participant, "voice granted: %v", out)
	out = f.adminOK(alice, "<item nick='carol' role='visitor'/>")
	want(t, item(t, out[0]).Attr("role") == Visitor, "voice revoked: %v", out)
	f.adminRefused(bob, "<item nick='alice' role='visitor'/>", stanza.NotAllowed) // alice is owner
	out = f.adminOK(bob, "<item nick='carol' role='participant'/>")
	out = f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "' type='groupchat'><body>hi</body></message>")
	want(t, len(out) == 3, "participant speaks: %v", out)
	// Lists: voice list by a moderator; a participant may not.
	a, _ := f.ok(bob, roomJ, "get", "<query xmlns='"+NSAdmin+"'><item role='participant'/></query>")
	want(t, strings.Contains(a.Raw, "nick='carol'"), "voice list: %s", a.Raw)
	f.refused(carol, roomJ, "get", "<query xmlns='"+NSAdmin+"'><item role='participant'/></query>", stanza.Forbidden)
	// Granting moderator needs admin.
	f.adminOK(bob, "<item nick='carol' role='moderator'/>")
	f.adminRefused(carol, "<item nick='bob' role='participant'/>", stanza.Forbidden) // §9.7: admins only
}

func TestAffiliations(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	f.join(carol, "carol", "")
	f.adminRefused(bob, "<item affiliation='outcast' jid='carol@localhost'/>", stanza.Forbidden) // §9.1 not admin
	f.adminOK(alice, "<item affiliation='admin' jid='bob@localhost'/>")
	f.adminRefused(bob, "<item affiliation='outcast' jid='alice@localhost'/>", stanza.NotAllowed) // an owner
	f.adminRefused(bob, "<item affiliation='owner' jid='carol@localhost'/>", stanza.Forbidden)    // §10.3 owners only
	f.adminRefused(alice, "<item affiliation='king' jid='carol@localhost'/>", stanza.BadRequest)
	// The only owner may not leave the owners (§10.6 conflict).
	f.adminRefused(alice, "<item affiliation='admin' jid='alice@localhost'/>", stanza.Conflict)
	// Ban (§9.1): 301; banned ones may not enter.
	out := f.adminOK(bob, "<item affiliation='outcast' jid='carol@localhost'><reason>spam</reason></item>")
	ca := to(out, carol)
	want(t, len(ca) == 1 && has(codes(t, ca[0]), "301") && item(t, ca[0]).Attr("affiliation") == Outcast, "banned: %v", ca)
	out = f.join(carol, "carol", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "forbidden", "banned enters: %v", out)
	a, _ := f.ok(bob, roomJ, "get", "<query xmlns='"+NSAdmin+"'><item affiliation='outcast'/></query>")
	want(t, strings.Contains(a.Raw, "jid='carol@localhost'") && strings.Contains(a.Raw, "<reason>spam</reason>"), "ban list: %s", a.Raw)
	f.refused(bob, roomJ, "get", "<query xmlns='"+NSAdmin+"'><item affiliation='owner'/></query>", stanza.Forbidden)
	a, _ = f.ok(alice, roomJ, "get", "<query xmlns='"+NSAdmin+"'><item affiliation='owner'/></query>")
	want(t, strings.Contains(a.Raw, "jid='alice@localhost'"), "owner list: %s", a.Raw)
	// Affiliation change of an occupant is broadcast (the new admin is a moderator).
	out = f.adminOK(alice, "<item affiliation='member' jid='bob@localhost'/>")
	want(t, len(out) == 2 && item(t, to(out, alice)[0]).Attr("affiliation") == Member && item(t, to(out, alice)[0]).Attr("role") == Participant, "bob demoted: %v", out)
	// A second owner; then the first may go.
	f.adminOK(alice, "<item affiliation='owner' jid='dave@localhost'/>")
	f.adminOK(alice, "<item affiliation='admin' jid='alice@localhost'/>")
}

func TestMembersOnlyInvitePassword(t *testing.T) {
	f := setup(t)
	f.instant()
	f.configure(map[string]string{"muc#roomconfig_membersonly": "1", "muc#roomconfig_allowinvites": "1"})
	out := f.join(bob, "bob", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "registration-required", "non-member: %v", out) // §7.2.6
	// Invitation (§7.8.2): the invitee becomes a member and gets the invitation from the roomJ.
	out = f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "'><x xmlns='" + NSUser + "'><invite to='bob@localhost'><reason>join us</reason></invite></x></message>")
	want(t, len(out) == 1 && out[0].Head.To == "bob@localhost" && out[0].Head.From == roomJ && strings.Contains(out[0].Raw, "<invite from='"+alice+"'><reason>join us</reason></invite>"), "invitation: %v", out)
	out = f.join(bob, "bob", "")
	want(t, len(to(out, bob)) == 3, "member enters: %v", out)
	// Decline (§7.8.3) goes to the inviter.
	out = f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "'><x xmlns='" + NSUser + "'><decline to='" + alice + "'><reason>busy</reason></decline></x></message>")
	want(t, len(out) == 1 && out[0].Head.To == alice && strings.Contains(out[0].Raw, "<decline from='carol@localhost'><reason>busy</reason></decline>"), "decline: %v", out)
	// Removing the membership removes bob (§9.4: 321).
	out = f.adminOK(alice, "<item affiliation='none' jid='bob@localhost'/>")
	b := to(out, bob)
	want(t, len(b) == 1 && b[0].Head.Type == "unavailable" && has(codes(t, b[0]), "321"), "321: %v", b)
	// Invitations need allow_invites from participants.
	f.configure(map[string]string{"muc#roomconfig_membersonly": "0", "muc#roomconfig_allowinvites": "0"})
	f.join(bob, "bob", "")
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "'><x xmlns='" + NSUser + "'><invite to='carol@localhost'/></x></message>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "forbidden", "invite without allow_invites: %v", out)

	// Password (§7.2.5).
	f.refused(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_passwordprotectedroom'><value>1</value></field></x></query>", stanza.NotAcceptable)
	f.configure(map[string]string{"muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "cauldron"})
	out = f.join(carol, "carol", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "not-authorized", "no password: %v", out)
	out = f.join(carol, "carol", "<password>wrong</password>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "not-authorized", "wrong password: %v", out)
	out = f.join(carol, "carol", "<password>cauldron</password>")
	want(t, len(to(out, carol)) == 4, "right password: %v", out)
	a, _ := f.ok(dave, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"'/>")
	want(t, strings.Contains(a.Raw, "muc_passwordprotected"), "disco: %s", a.Raw)
}

func TestAnonymity(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	out := to(f.join(carol, "carol", ""), bob)
	want(t, len(out) == 1 && item(t, out[0]).Attr("jid") == "", "semi-anonymous: a participant sees no jid: %s", out[0].Raw)
	f.configure(map[string]string{"muc#roomconfig_whois": "anyone"})
	out = to(f.join(dave, "dave", ""), bob)
	want(t, len(out) == 1 && item(t, out[0]).Attr("jid") == dave, "non-anonymous: everyone sees the jid: %s", out[0].Raw)
	self := to(f.join("eve@localhost/e", "eve", ""), "eve@localhost/e")
	want(t, has(codes(t, self[len(self)-2]), "100"), "100 in self-presence of a non-anonymous roomJ: %s", self[len(self)-2].Raw)
}

func TestDestroy(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	f.refused(bob, roomJ, "set", "<query xmlns='"+NSOwner+"'><destroy/></query>", stanza.Forbidden)
	_, out := f.ok(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><destroy jid='new@conference.localhost'><reason>moving</reason></destroy></query>")
	want(t, len(out) == 2, "each occupant gets its unavailable presence: %v", out)
	for _, p := range out {
		want(t, p.Head.Type == "unavailable" && strings.Contains(p.Raw, "<destroy jid='new@conference.localhost'><reason>moving</reason></destroy>"), "destroy: %s", p.Raw)
		want(t, item(t, p).Attr("affiliation") == AffNone && item(t, p).Attr("role") == RoleNone, "item: %s", p.Raw)
	}
	a, _ := f.ok(bob, svcJID, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	want(t, !strings.Contains(a.Raw, "coven"), "destroyed roomJ listed: %s", a.Raw)
	f.refused(bob, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"'/>", stanza.ItemNotFound)
}

func TestTemporaryRoomVanishes(t *testing.T) {
	f := setup(t)
	f.instant()
	f.send("<presence xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/alice' type='unavailable'/>")
	a, _ := f.ok(bob, svcJID, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	want(t, !strings.Contains(a.Raw, "coven"), "empty temporary roomJ still listed: %s", a.Raw)
	// Bob can create it anew and owns it.
	out := f.join(bob, "bob", "")
	want(t, has(codes(t, out[0]), "201") && item(t, out[0]).Attr("affiliation") == Owner, "re-created: %s", out[0].Raw)
}

func TestPersistence(t *testing.T) {
	f := setup(t)
	f.instant()
	f.configure(map[string]string{"muc#roomconfig_persistentroom": "1", "muc#roomconfig_roomname": "Coven", "muc#roomconfig_membersonly": "1"})
	f.adminOK(alice, "<item affiliation='member' jid='bob@localhost' nick='bobby'/>")
	f.adminOK(alice, "<item affiliation='outcast' jid='carol@localhost'/>")
	f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><subject>Kept</subject></message>")
	f.send("<presence xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/alice' type='unavailable'/>")
	f.svc.Hibernate()
	want(t, len(f.svc.Entities) == 0, "empty roomJ did not hibernate")
	f.svc.Restart()
	a, _ := f.ok(dave, svcJID, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	want(t, strings.Contains(a.Raw, "name='Coven'"), "persistent roomJ listed after restart: %s", a.Raw)
	out := f.join(carol, "carol", "")
	want(t, featuretest.ErrorCondition(t, out[0]) == "forbidden", "ban survived: %v", out)
	out = f.join(dave, "dave", "")
	want(t, featuretest.ErrorCondition(t, out[0]) == "registration-required", "members-only survived: %v", out)
	a, _ = f.ok(bob, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"' node='x-roomuser-item'/>")
	want(t, strings.Contains(a.Raw, "name='bobby'"), "reserved nick survived: %s", a.Raw)
	out = to(f.join(bob, "bobby", ""), bob)
	want(t, len(out) == 2 && strings.Contains(out[1].Raw, "<subject>Kept</subject>") && !has(codes(t, out[0]), "201"), "subject survived: %v", out)
	// Destroying removes it from storage.
	f.ok(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><destroy/></query>")
	f.svc.Restart()
	a, _ = f.ok(dave, svcJID, "get", "<query xmlns='"+stanza.NSDiscoIt+"'/>")
	want(t, !strings.Contains(a.Raw, "coven"), "destroyed roomJ came back: %s", a.Raw)
}

func TestCreatePolicyAndLimits(t *testing.T) {
	f := setup(t)
	out := f.join("stranger@elsewhere.example/x", "s", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "not-allowed", "a remote JID creates: %v", out)
	f.srv.Cfg.MUC.MaxRoomsPerUser = 1
	f.srv.Cfg.MUC.MaxOccupants = 2
	f.srv.Cfg.MUC.MessageBurst = 2
	f.svc.Restart()
	f.instant()
	out = f.send("<presence xmlns='jabber:client' from='" + alice + "' to='other@" + svcJID + "/alice'><x xmlns='" + NS + "'/></presence>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "policy-violation" && f.srv.LimitHits[LimitRooms] == 1, "second roomJ: %v", out)
	f.join(bob, "bob", "")
	out = f.join(carol, "carol", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "service-unavailable" && f.srv.LimitHits[LimitOccupants] == 1, "full roomJ: %v", out)
	var last []*stanza.Routed
	for range 3 {
		last = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "' type='groupchat'><body>x</body></message>")
	}
	want(t, len(last) == 1 && featuretest.ErrorCondition(t, last[0]) == "resource-constraint" && f.srv.LimitHits[LimitRate] == 1, "flood: %v", last)
}

func TestVCardAndOwnStanzas(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	a, _ := f.ok(bob, roomJ, "get", "<vCard xmlns='vcard-temp'/>")
	want(t, strings.Contains(a.Raw, "<vCard xmlns='vcard-temp'/>"), "empty vCard: %s", a.Raw)
	f.refused(bob, roomJ, "set", "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>", stanza.Forbidden)
	_, out := f.ok(alice, roomJ, "set", "<vCard xmlns='vcard-temp'><FN>Coven</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgo=</BINVAL></PHOTO></vCard>")
	want(t, len(out) == 2 && strings.Contains(out[0].Raw, NSVCardUpd) && out[0].Head.From == roomJ, "avatar presence (XEP-0153): %v", out)
	a, _ = f.ok(carol, roomJ, "get", "<vCard xmlns='vcard-temp'/>")
	want(t, strings.Contains(a.Raw, "<FN>Coven</FN>"), "vCard: %s", a.Raw)
	f.ok(bob, roomJ, "get", "<ping xmlns='urn:xmpp:ping'/>")
	a, _ = f.ok(bob, svcJID, "get", "<unique xmlns='"+NSUnique+"'/>")
	want(t, strings.Contains(a.Raw, "<unique"), "unique: %s", a.Raw)
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='nowhere@" + svcJID + "' type='groupchat'><body>x</body></message>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "item-not-found", "message to no roomJ: %v", out)
	// A bounced groupchat copy removes the ghost occupant (333).
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	want(t, len(to(out, alice)) == 1 && has(codes(t, to(out, alice)[0]), "333"), "ghost removed: %v", out)
}

// A room destroyed while the directory still lists it: an entering presence from someone who may not create
// rooms does not re-create it.
func TestRecreationChecksPolicy(t *testing.T) {
	f := setup(t)
	f.instant()
	f.send("<presence xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/alice' type='unavailable'/>")
	// The room is gone; pretend the directory has not heard yet.
	f.svc.Part.(*service).rooms["coven"] = summary{Creator: "alice@localhost"}
	out := f.join("stranger@elsewhere.example/x", "s", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "not-allowed", "re-created by a stranger: %v", out)
}

// A groupchat copy bounced by the occupant's server (RFC 6121 §8.5.3.2.1: from the full JID back to the
// sender's room JID) removes the ghost; another error answering a private message goes back to its sender.
func TestGhostOccupant(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	f.join(carol, "carol", "")
	out := f.send("<message xmlns='jabber:client' from='" + carol + "' to='" + roomJ + "/alice' type='error' id='pm'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	want(t, len(out) == 1 && out[0].Head.To == alice && out[0].Head.From == roomJ+"/carol" && out[0].Head.Type == "error", "PM error passed back: %v", out)
	out = f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice' type='error' id='m1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	al := to(out, alice)
	want(t, len(al) == 1 && al[0].Head.Type == "unavailable" && al[0].Head.From == roomJ+"/bob" && has(codes(t, al[0]), "333"), "ghost removed: %v", out)
}

// §7.10 registration: the form, a reserved nick and membership, conflicts, <registered/>, removal.
func TestRegistration(t *testing.T) {
	f := setup(t)
	f.instant()
	a, _ := f.ok(bob, roomJ, "get", "<query xmlns='jabber:iq:register'/>")
	want(t, strings.Contains(a.Raw, "var='muc#register_roomnick'") && strings.Contains(a.Raw, NS+"#register"), "form: %s", a.Raw)
	submit := func(who, nick string) string {
		return "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + NS + "#register</value></field><field var='muc#register_roomnick'><value>" + nick + "</value></field></x></query>"
	}
	f.refused(bob, roomJ, "set", submit(bob, "alice"), stanza.Conflict) // alice's occupant nick
	f.ok(bob, roomJ, "set", submit(bob, "bobby"))
	f.refused(carol, roomJ, "set", submit(carol, "bobby"), stanza.Conflict)
	a, _ = f.ok(bob, roomJ, "get", "<query xmlns='jabber:iq:register'/>")
	want(t, strings.Contains(a.Raw, "<registered/><username>bobby</username>"), "registered: %s", a.Raw)
	a, _ = f.ok(alice, roomJ, "get", "<query xmlns='"+NSAdmin+"'><item affiliation='member'/></query>")
	want(t, strings.Contains(a.Raw, "jid='bob@localhost' nick='bobby'"), "member list: %s", a.Raw)
	out := f.join(carol, "bobby", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "conflict", "reserved: %v", out)
	f.ok(bob, roomJ, "set", "<query xmlns='jabber:iq:register'><remove/></query>")
	out = f.join(carol, "bobby", "")
	want(t, len(to(out, carol)) >= 2 && featuretest.ErrorCondition(t, out[0]) == "", "free again: %v", out)
	f.refused(alice, roomJ, "set", "<query xmlns='jabber:iq:register'><remove/></query>", stanza.NotAllowed)
}

// A participant made moderator in a semi-anonymous room gets the others' presence again, with their JIDs.
func TestNewModeratorSeesJIDs(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	f.join(carol, "carol", "")
	out := to(f.adminOK(alice, "<item nick='bob' role='moderator'/>"), bob)
	var jids []string
	for _, p := range out {
		if j := item(t, p).Attr("jid"); p.Head.From != roomJ+"/bob" {
			jids = append(jids, j)
		}
	}
	want(t, len(jids) == 2 && has(jids, alice) && has(jids, carol), "the new moderator sees %v", jids)
}

func TestMultiSession(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	const bob2 = "bob@localhost/b2"
	out := f.join(bob2, "bob", "<history maxstanzas='0'/>")
	mine := to(out, bob2)
	want(t, len(mine) == 3 && mine[0].Head.From == roomJ+"/alice" && has(codes(t, mine[1]), "110") && mine[2].Head.Name == "message",
		"the second resource: alice's presence, its self-presence, the subject: %v", mine)
	first := to(out, bob)
	want(t, len(first) == 1 && has(codes(t, first[0]), "110") && first[0].Head.Type == "", "the first resource: self-presence again: %v", first)
	seen := to(out, alice)
	want(t, len(seen) == 1 && seen[0].Head.From == roomJ+"/bob" && seen[0].Head.Type == "", "alice sees one occupant bob: %v", seen)
	x := featuretest.Node(t, seen[0]).Child(NSUser, "x")
	items := x.ChildrenNamed(NSUser, "item")
	want(t, len(items) == 2 && items[0].Attr("jid") == bob && items[1].Attr("jid") == bob2, "the moderator sees both resources: %s", seen[0].Raw)

	// A groupchat message reaches every resource once; private messages too; an IQ only the primary one.
	out = f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><body>all</body></message>")
	want(t, len(out) == 3 && len(to(out, bob)) == 1 && len(to(out, bob2)) == 1, "groupchat: %v", out)
	out = f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/bob' type='chat'><body>pm</body></message>")
	want(t, len(out) == 2 && len(to(out, bob)) == 1 && len(to(out, bob2)) == 1, "PM to both resources: %v", out)
	out = f.send("<iq xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/bob' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>")
	want(t, len(out) == 1 && out[0].Head.To == bob, "IQ to the primary resource: %v", out)
	out = f.send("<message xmlns='jabber:client' from='" + bob2 + "' to='" + roomJ + "' type='groupchat'><body>from b2</body></message>")
	want(t, len(out) == 3 && out[0].Head.From == roomJ+"/bob", "the second resource speaks as bob: %v", out)

	// Another user meets the conflict; a nick change of one resource is refused.
	out = f.join(carol, "bob", "")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "conflict", "another user: %v", out)
	out = f.send("<presence xmlns='jabber:client' from='" + bob2 + "' to='" + roomJ + "/robert'/>")
	want(t, len(out) == 1 && featuretest.ErrorCondition(t, out[0]) == "not-acceptable", "nick change: %v", out)

	// The first resource leaves: it gets its unavailable presence, the occupant stays.
	out = f.send("<presence xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/bob' type='unavailable'/>")
	gone := to(out, bob)
	want(t, len(gone) == 1 && gone[0].Head.Type == "unavailable" && has(codes(t, gone[0]), "110"), "the leaving resource: %v", gone)
	for _, p := range to(out, alice) {
		want(t, p.Head.Type == "", "alice sees no unavailable presence: %s", p.Raw)
	}
	out = f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><body>still</body></message>")
	want(t, len(out) == 2 && len(to(out, bob2)) == 1 && len(to(out, bob)) == 0, "groupchat after one left: %v", out)
	out = f.send("<iq xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "/bob' type='get' id='v2'><query xmlns='jabber:iq:version'/></iq>")
	want(t, len(out) == 1 && out[0].Head.To == bob2, "IQ to the remaining resource: %v", out)

	// The last resource leaves: now everyone sees bob go.
	out = f.send("<presence xmlns='jabber:client' from='" + bob2 + "' to='" + roomJ + "/bob' type='unavailable'/>")
	al := to(out, alice)
	want(t, len(al) == 1 && al[0].Head.Type == "unavailable", "bob left: %v", out)
	f.join(carol, "bob", "")
	out = f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><body>x</body></message>")
	want(t, len(out) == 2 && len(to(out, carol)) == 1, "the nick is free again: %v", out)
}
