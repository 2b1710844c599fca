package e2e

import (
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// expectSeen reads r until pred matches (failing after 5s) and returns what came before it.
func expectSeen(t *testing.T, r *xmppclient.Raw, what string, pred func(*xmppclient.Elem) bool) []*xmppclient.Elem {
	t.Helper()
	var seen []*xmppclient.Elem
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		e, err := r.Next(time.Until(deadline))
		if err != nil {
			break
		}
		if pred(e) {
			return seen
		}
		seen = append(seen, e)
	}
	t.Fatalf("no %s within 5s (saw %v)", what, seen)
	return nil
}

// Two resources of one account under one nickname (XEP-0045 multi-session, as Prosody allows it), over real
// connections: the second resource enters instead of meeting conflict, the other occupant sees one occupant,
// groupchat and private messages reach both resources, the first resource leaving does not remove the occupant,
// the last one does.
func TestMUCMultiSession(t *testing.T) {
	srv := shared(t)
	a, apw := srv.user(t, "msa")
	b, bpw := srv.user(t, "msb")
	dial := func(user, pw, res string) *xmppclient.Raw {
		r := xmppclient.MustDialRaw(t, xmppclient.TargetOf(srv.Server), xmppclient.RawOptions{})
		r.Login(user, pw, res)
		return r
	}
	ra, b1, b2 := dial(a, apw, "r"), dial(b, bpw, "one"), dial(b, bpw, "two")
	room := a + "@conference." + srv.Domain
	from := func(nick, typ string) func(*xmppclient.Elem) bool {
		return func(e *xmppclient.Elem) bool {
			return e.Is("", "presence") && e.Get("from") == room+"/"+nick && e.Get("type") == typ
		}
	}
	self := func(e *xmppclient.Elem) bool {
		if !e.Is("", "presence") || e.Get("from") != room+"/bee" {
			return false
		}
		for _, s := range e.Child(nsMUCUser, "x").Children(nsMUCUser, "status") {
			if s.Get("code") == "110" {
				return true
			}
		}
		return false
	}
	body := func(text string) func(*xmppclient.Elem) bool {
		return func(e *xmppclient.Elem) bool { return e.Is("", "message") && e.ChildText("body") == text }
	}

	ra.Write("<presence to='" + room + "/a'><x xmlns='" + nsMUC + "'/></presence>")
	expectWhere(t, ra, "a's self-presence", from("a", ""))
	ra.Write("<iq type='set' id='inst' to='" + room + "'><query xmlns='" + nsMUC + "#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	expectWhere(t, ra, "the instant room", func(e *xmppclient.Elem) bool { return e.Get("id") == "inst" && e.Get("type") == "result" })

	b1.Write("<presence to='" + room + "/bee'><x xmlns='" + nsMUC + "'/></presence>")
	expectWhere(t, b1, "the first resource's self-presence", self)
	expectWhere(t, ra, "bee entering", from("bee", ""))
	b2.Write("<presence to='" + room + "/bee'><x xmlns='" + nsMUC + "'/></presence>")
	for _, e := range expectSeen(t, b2, "the second resource's self-presence", self) {
		if e.Get("type") == "error" {
			t.Fatalf("the second resource was refused: %s", e)
		}
	}
	// The owner (a moderator) sees the occupant again, with both resources' real JIDs.
	ra.Write("<iq type='get' id='mark1' to='" + room + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	items := -1
	for _, e := range expectSeen(t, ra, "the disco#info answer", func(e *xmppclient.Elem) bool { return e.Get("id") == "mark1" }) {
		if from("bee", "unavailable")(e) || e.Get("type") == "error" {
			t.Fatalf("the owner saw %s", e)
		}
		if from("bee", "")(e) {
			items = len(e.Child(nsMUCUser, "x").Children(nsMUCUser, "item"))
		}
	}
	if items != 2 {
		t.Fatalf("the owner's view of bee after the second resource entered: %d items, want 2", items)
	}

	ra.Write("<message to='" + room + "' type='groupchat'><body>to both</body></message>")
	expectWhere(t, b1, "groupchat on the first resource", body("to both"))
	expectWhere(t, b2, "groupchat on the second resource", body("to both"))
	ra.Write("<message to='" + room + "/bee' type='chat'><body>private</body></message>")
	expectWhere(t, b1, "the PM on the first resource", body("private"))
	expectWhere(t, b2, "the PM on the second resource", body("private"))

	b1.Write("<presence to='" + room + "/bee' type='unavailable'/>")
	expectWhere(t, b1, "the first resource's unavailable presence", func(e *xmppclient.Elem) bool { return self(e) && e.Get("type") == "unavailable" })
	ra.Write("<message to='" + room + "' type='groupchat'><body>after one left</body></message>")
	for _, e := range expectSeen(t, ra, "a's own message back", body("after one left")) {
		if from("bee", "unavailable")(e) {
			t.Fatalf("bee left with one of two resources: %s", e)
		}
	}
	expectWhere(t, b2, "groupchat on the remaining resource", body("after one left"))

	b2.Write("<presence to='" + room + "/bee' type='unavailable'/>")
	expectWhere(t, ra, "bee leaving with its last resource", from("bee", "unavailable"))
}
