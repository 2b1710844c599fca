package muc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/feature/featuretest"
	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// mamQuery runs a query (inner: the <query/>'s children) as from and returns the forwarded messages and <fin/>.
func (f *fixture) mamQuery(from, inner string) (fwd []*xmlstream.Node, ids []string, fin *xmlstream.Node) {
	f.t.Helper()
	a, rest := f.ok(from, roomJ, "set", "<query xmlns='"+NSMAM+"' queryid='qq'>"+inner+"</query>")
	for _, m := range rest {
		want(f.t, m.Head.To == from && m.Head.From == roomJ, "result from the room to the asker: %s", m.Raw)
		res := featuretest.Node(f.t, m).Child(NSMAM, "result")
		want(f.t, res != nil && res.Attr("queryid") == "qq", "result: %s", m.Raw)
		fw := res.Child(stanza.NSForward, "forwarded")
		want(f.t, fw != nil && fw.Child(stanza.NSDelay, "delay") != nil, "forwarded with delay: %s", m.Raw)
		fwd = append(fwd, fw.Child(stanza.NSClient, "message"))
		ids = append(ids, res.Attr("id"))
	}
	return fwd, ids, featuretest.Node(f.t, a).Child(NSMAM, "fin")
}

func form(fields ...string) string {
	b := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + NSMAM + "</value></field>"
	for i := 0; i+1 < len(fields); i += 2 {
		b += "<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>"
	}
	return b + "</x>"
}

func rsm(inner string) string { return "<set xmlns='" + wire.NSRSM + "'>" + inner + "</set>" }

func finCount(t *testing.T, fin *xmlstream.Node) (complete bool, count string) {
	t.Helper()
	want(t, fin != nil, "no fin")
	set := fin.Child(wire.NSRSM, "set")
	return fin.Attr("complete") == "true", set.Child(wire.NSRSM, "count").TextContent()
}

func TestRoomArchive(t *testing.T) {
	f := setup(t)
	f.instant()
	f.join(bob, "bob", "")
	a, _ := f.ok(bob, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"'/>")
	want(t, strings.Contains(a.Raw, "var='"+NSMAM+"'") && strings.Contains(a.Raw, "var='"+wire.NSExtended+"'"), "disco advertises the archive: %s", a.Raw)

	// Three messages; the second carries a forged stanza-id of the room and a forged muc#user item.
	var live []string
	for i := 1; i <= 3; i++ {
		extra := ""
		if i == 2 {
			extra = "<stanza-id xmlns='urn:xmpp:sid:0' by='" + roomJ + "' id='forged'/><x xmlns='" + NSUser + "'><item jid='evil@localhost/x'/></x>"
		}
		out := f.send(fmt.Sprintf("<message xmlns='jabber:client' from='%s' to='%s' type='groupchat' id='m%d'><body>hello %d</body>%s</message>", alice, roomJ, i, i, extra))
		want(t, len(out) == 2, "fan-out: %d", len(out))
		sid := wire.StanzaIDBy(featuretest.Node(t, out[0]), roomJ)
		want(t, sid != "" && sid != "forged" && !strings.Contains(out[0].Raw, "'forged'"), "live copy with the room's stanza-id: %s", out[0].Raw)
		want(t, wire.StanzaIDBy(featuretest.Node(t, out[1]), roomJ) == sid, "one id for every copy: %s", out[1].Raw)
		live = append(live, sid)
	}
	f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "' type='groupchat' id='s1'><subject>Spells</subject></message>")
	f.send("<message xmlns='jabber:client' from='" + bob + "' to='" + roomJ + "/alice' type='chat' id='pm'><body>private</body></message>")

	// A participant of a semi-anonymous room: everything but the PM, from occupant JIDs, no 'to', no real JIDs.
	fwd, ids, fin := f.mamQuery(bob, "")
	want(t, len(fwd) == 4, "3 messages and the subject: %d", len(fwd))
	for i, m := range fwd {
		want(t, m.Attr("to") == "" && m.Attr("type") == "groupchat", "archived copy: %s", m.String())
		want(t, !strings.Contains(m.String(), "@localhost/") && !strings.Contains(m.String(), "evil"), "no real JID for bob: %s", m.String())
		if i < 3 {
			want(t, m.Attr("from") == roomJ+"/alice" && ids[i] == live[i] && m.Attr("id") == fmt.Sprintf("m%d", i+1), "message %d: %s (%s)", i, m.String(), ids[i])
		}
	}
	want(t, fwd[3].Attr("from") == roomJ+"/bob" && fwd[3].Child("", "subject") != nil, "subject change archived: %s", fwd[3].String())
	complete, count := finCount(t, fin)
	want(t, complete && count == "4", "fin: %s", fin.String())

	// The owner may see real JIDs: the room's own item, never the forged one.
	fwd, _, _ = f.mamQuery(alice, "")
	x := fwd[1].Child(NSUser, "x")
	want(t, x != nil && x.Child(NSUser, "item").Attr("jid") == alice && len(x.ChildrenNamed(NSUser, "item")) == 1, "owner sees the real JID: %s", fwd[1].String())

	// with: an occupant JID for anyone; a real bare JID only for those who may see real JIDs.
	fwd, _, _ = f.mamQuery(bob, form("with", roomJ+"/bob"))
	want(t, len(fwd) == 1, "with the occupant JID: %d", len(fwd))
	fwd, _, _ = f.mamQuery(bob, form("with", roomJ))
	want(t, len(fwd) == 4, "with the room: %d", len(fwd))
	a, _ = f.iq(alice, roomJ, "set", "<query xmlns='"+NSMAM+"'>"+form("with", "alice@localhost")+"</query>")
	want(t, featuretest.ErrorCondition(t, a) == "feature-not-implemented", "with a real JID: %s", a.Raw)

	// RSM paging, ids, time bounds, flip-page.
	fwd, ids, fin = f.mamQuery(bob, rsm("<max>2</max>"))
	complete, count = finCount(t, fin)
	want(t, len(fwd) == 2 && !complete && count == "4", "first page: %d %s", len(fwd), fin.String())
	fwd, _, fin = f.mamQuery(bob, rsm("<max>2</max><after>"+ids[1]+"</after>"))
	complete, _ = finCount(t, fin)
	want(t, len(fwd) == 2 && complete && fwd[0].Child("", "body").TextContent() == "hello 3", "next page: %d %s", len(fwd), fin.String())
	fwd, _, _ = f.mamQuery(bob, rsm("<max>1</max><before/>"))
	want(t, len(fwd) == 1 && fwd[0].Child("", "subject") != nil, "last page: %v", fwd)
	fwd, _, _ = f.mamQuery(bob, form("ids", live[1]))
	want(t, len(fwd) == 1 && fwd[0].Child("", "body").TextContent() == "hello 2", "by id: %v", fwd)
	fwd, _, _ = f.mamQuery(bob, form("start", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	want(t, len(fwd) == 0, "start in the future: %d", len(fwd))
	fwd, _, _ = f.mamQuery(bob, "<flip-page/>")
	want(t, len(fwd) == 4 && fwd[0].Child("", "subject") != nil, "flipped: %v", fwd)
	a, _ = f.iq(bob, roomJ, "set", "<query xmlns='"+NSMAM+"'>"+rsm("<after>nosuchid</after>")+"</query>")
	want(t, featuretest.ErrorCondition(t, a) == "item-not-found", "unknown id: %s", a.Raw)
	a, _ = f.ok(bob, roomJ, "get", "<metadata xmlns='"+NSMAM+"'/>")
	want(t, strings.Contains(a.Raw, "id='"+live[0]+"'"), "metadata: %s", a.Raw)

	// Late joiners get the history from the archive (with its stanza-ids), then the subject.
	out := to(f.join(carol, "carol", "<history maxstanzas='2'/>"), carol)
	want(t, len(out) == 3+2+1, "carol: presences, 2 history, subject: %d", len(out))
	want(t, strings.Contains(out[3].Raw, "hello 2") && strings.Contains(out[4].Raw, "hello 3") && strings.Contains(out[4].Raw, live[2]), "history: %s / %s", out[3].Raw, out[4].Raw)
	want(t, strings.Contains(out[3].Raw, "<delay xmlns='urn:xmpp:delay'") && !strings.Contains(out[3].Raw, alice), "history delay, no real JID: %s", out[3].Raw)
	want(t, strings.Contains(out[5].Raw, "Spells"), "subject last: %s", out[5].Raw)
}

func TestRoomArchiveAccess(t *testing.T) {
	f := setup(t)
	f.instant()
	// An open room: anyone who is not banned, occupant or not.
	f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><body>one</body></message>")
	fwd, _, _ := f.mamQuery(carol, "")
	want(t, len(fwd) == 1, "a non-occupant reads an open room: %d", len(fwd))
	f.adminOK(alice, "<item affiliation='outcast' jid='carol@localhost'/>")
	f.refused(carol, roomJ, "set", "<query xmlns='"+NSMAM+"'/>", stanza.Forbidden)

	// Non-anonymous: everyone sees real JIDs.
	f.configure(map[string]string{"muc#roomconfig_whois": "anyone"})
	fwd, _, _ = f.mamQuery(dave, "")
	want(t, len(fwd) == 1 && fwd[0].Child(NSUser, "x").Child(NSUser, "item").Attr("jid") == alice, "non-anonymous: %v", fwd)

	// Members-only: members and above.
	f.configure(map[string]string{"muc#roomconfig_membersonly": "1"})
	f.refused(dave, roomJ, "set", "<query xmlns='"+NSMAM+"'/>", stanza.Forbidden)
	f.adminOK(alice, "<item affiliation='member' jid='dave@localhost'/>")
	fwd, _, _ = f.mamQuery(dave, "")
	want(t, len(fwd) == 1, "a member reads a members-only room: %d", len(fwd))

	// Password-protected and open: occupants (who gave the password) and the affiliated only.
	f.configure(map[string]string{"muc#roomconfig_membersonly": "0", "muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "pw"})
	f.refused(bob, roomJ, "set", "<query xmlns='"+NSMAM+"'/>", stanza.Forbidden)
	f.join(bob, "bob", "<password>pw</password>")
	fwd, _, _ = f.mamQuery(bob, "")
	want(t, len(fwd) == 1, "an occupant of a password room: %d", len(fwd))

	// Archiving off: not advertised, not answered, not archived, no stanza-id; what was archived stays.
	f.configure(map[string]string{"muc#roomconfig_enablearchiving": "0"})
	a, _ := f.ok(bob, roomJ, "get", "<query xmlns='"+stanza.NSDiscoInf+"'/>")
	want(t, !strings.Contains(a.Raw, NSMAM), "not advertised: %s", a.Raw)
	f.refused(bob, roomJ, "set", "<query xmlns='"+NSMAM+"'/>", stanza.FeatureNotImplemented)
	out := f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><body>two</body></message>")
	want(t, len(out) == 2 && !strings.Contains(out[0].Raw, "urn:xmpp:sid:0"), "no stanza-id: %s", out[0].Raw)
	n, err := f.srv.Store().CountArchive(context.Background(), roomJ, storage.ArchiveQuery{})
	want(t, err == nil && n == 1, "kept, nothing added: %d %v", n, err)

	// Destroying the room deletes its archive.
	f.ok(alice, roomJ, "set", "<query xmlns='"+NSOwner+"'><destroy/></query>")
	n, err = f.srv.Store().CountArchive(context.Background(), roomJ, storage.ArchiveQuery{})
	want(t, err == nil && n == 0, "archive deleted with the room: %d %v", n, err)
}

func TestRoomArchiveDefaultOff(t *testing.T) {
	f := setup(t)
	f.srv.Cfg.MUC.Defaults.Archive = false
	f.svc.Restart()
	f.instant()
	a, _ := f.ok(alice, roomJ, "get", "<query xmlns='"+NSOwner+"'/>")
	want(t, strings.Contains(a.Raw, "var='muc#roomconfig_enablearchiving'"), "the field is in the form: %s", a.Raw)
	f.refused(alice, roomJ, "set", "<query xmlns='"+NSMAM+"'/>", stanza.FeatureNotImplemented)
	f.configure(map[string]string{"muc#roomconfig_enablearchiving": "1"})
	f.send("<message xmlns='jabber:client' from='" + alice + "' to='" + roomJ + "' type='groupchat'><body>on</body></message>")
	fwd, _, _ := f.mamQuery(alice, "")
	want(t, len(fwd) == 1, "archived once turned on: %d", len(fwd))
}
