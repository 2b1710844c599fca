package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

const (
	nsMAM     = "urn:xmpp:mam:2"
	nsSID     = "urn:xmpp:sid:0"
	nsForward = "urn:xmpp:forward:0"
	nsRSM     = "http://jabber.org/protocol/rsm"
)

// mamPage is what one archive query brought: the result messages in the order they came, and the <fin/>.
type mamPage struct {
	ids, bodies, stamps []string
	complete            bool
	first, last         string
	count               string
}

// mamForm is a query form with the given fields (var, value pairs; consecutive pairs of one var are one field
// with several values, as ids takes them).
func mamForm(fields ...string) string {
	s := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + nsMAM + "</value></field>"
	for i := 0; i+1 < len(fields); i += 2 {
		if i == 0 || fields[i] != fields[i-2] {
			if i > 0 {
				s += "</field>"
			}
			s += "<field var='" + fields[i] + "'>"
		}
		s += "<value>" + fields[i+1] + "</value>"
	}
	if len(fields) > 0 {
		s += "</field>"
	}
	return s + "</x>"
}

// mamQuery sends a query (form and rsm are XML, "" for none) and collects its results; the IQ answer comes after
// every result message (XEP-0313 §4.2), so they are all queued when it arrives.
func mamQuery(t *testing.T, c *xmppclient.Client, qid, form, rsm string, extra string) (mamPage, *xmppclient.Elem) {
	t.Helper()
	return mamQueryNS(t, c, nsMAM, qid, form, rsm, extra)
}

// mamQueryNS is mamQuery in namespace ns (a version of XEP-0313): the results and <fin/> must come in it.
func mamQueryNS(t *testing.T, c *xmppclient.Client, nsMAM, qid, form, rsm string, extra string) (mamPage, *xmppclient.Elem) {
	t.Helper()
	if rsm != "" {
		rsm = "<set xmlns='" + nsRSM + "'>" + rsm + "</set>"
	}
	res := c.IQ("<iq type='set'><query xmlns='" + nsMAM + "' queryid='" + qid + "'>" + form + rsm + extra + "</query></iq>")
	var p mamPage
	isResult := func(e *xmppclient.Elem) bool {
		return e.Is(xmppclient.NSClient, "message") && e.Child(nsMAM, "result").Get("queryid") == qid
	}
	for {
		m, err := c.Wait(isResult, 0)
		if err != nil {
			break
		}
		r := m.Child(nsMAM, "result")
		fwd := r.Child(nsForward, "forwarded")
		p.ids = append(p.ids, r.Get("id"))
		p.bodies = append(p.bodies, fwd.Child(xmppclient.NSClient, "message").ChildText("body"))
		p.stamps = append(p.stamps, fwd.Child(xmppclient.NSDelay, "delay").Get("stamp"))
	}
	if res.Get("type") != "result" {
		return p, res
	}
	fin := res.Child(nsMAM, "fin")
	if fin == nil {
		t.Fatalf("query %s answered without <fin/>: %s", qid, res)
	}
	set := fin.Child(nsRSM, "set")
	p.complete = fin.Get("complete") == "true"
	p.first, p.last, p.count = set.ChildText("first"), set.ChildText("last"), set.ChildText("count")
	if len(p.ids) > 0 && (p.first != p.ids[0] || p.last != p.ids[len(p.ids)-1]) && extra == "" {
		t.Errorf("query %s: fin first/last %s/%s, results %v", qid, p.first, p.last, p.ids)
	}
	return p, nil
}

func mustMAM(t *testing.T, c *xmppclient.Client, qid, form, rsm, extra string) mamPage {
	t.Helper()
	p, errIQ := mamQuery(t, c, qid, form, rsm, extra)
	if errIQ != nil {
		t.Fatalf("query %s failed: %s", qid, errIQ)
	}
	return p
}

func mamFails(t *testing.T, c *xmppclient.Client, qid, form, rsm, cond string) {
	t.Helper()
	_, errIQ := mamQuery(t, c, qid, form, rsm, "")
	if errIQ == nil || errIQ.Condition() != cond {
		t.Errorf("query %s: %v, want %s", qid, errIQ, cond)
	}
}

// stanzaIDBy is the id of the live message's <stanza-id by=by/>, failing when there is not exactly one.
func stanzaIDBy(t *testing.T, m *xmppclient.Elem, by string) string {
	t.Helper()
	var ids []string
	for _, s := range m.Children(nsSID, "stanza-id") {
		if s.Get("by") == by {
			ids = append(ids, s.Get("id"))
		}
	}
	if len(ids) != 1 {
		t.Fatalf("message has %d stanza-ids by %s: %s", len(ids), by, m)
	}
	return ids[0]
}

// XEP-0313 end to end with hand-written XML: the live stanza-id (forgeries removed, origin-id kept) is the
// archive id, messages to two resources and carbons are archived once, what is not archived (no-store, chat
// states, prefs), paging forwards and backwards with count and the server's page cap, with (bare and full),
// time and id bounds, ids, flip-page, the query form, metadata, errors, an offline recipient, and the archive
// after kill -9 and a restart.
func TestMAM(t *testing.T) {
	srv := own(t, harness.Options{Sections: map[string]string{"mam": "max_page = 5"}})
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	c, cpw := srv.user(t, "carol")
	d, dpw := srv.user(t, "dave")
	A, B, C, D := srv.bare(a), srv.bare(b), srv.bare(c), srv.bare(d)
	alice := xmppclient.Online(t, srv.Server, a, apw, "a")
	alice2 := xmppclient.Online(t, srv.Server, a, apw, "a2")
	bob := xmppclient.Online(t, srv.Server, b, bpw, "b")

	// Disco: the account advertises the archive and stanza ids (XEP-0313 §8, XEP-0359 §6).
	info := alice.IQ("<iq type='get' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	var vars []string
	for _, f := range info.Child("", "query").Children("", "feature") {
		vars = append(vars, f.Get("var"))
	}
	for _, v := range []string{nsMAM, nsMAM + "#extended", nsSID} {
		if !slices.Contains(vars, v) {
			t.Errorf("account disco#info lacks %s: %v", v, vars)
		}
	}
	// Carbons on the second resource: alice's own messages are copied to it, and archived once still.
	if r := alice2.IQ("<iq type='set'><enable xmlns='urn:xmpp:carbons:2'/></iq>"); r.Get("type") != "result" {
		t.Fatalf("carbons: %s", r)
	}

	// 12 messages bob → alice (bare JID: both resources get each), 3 alice → bob, interleaved as a chat.
	var want []string // bodies in archive order
	var live []string // stanza-ids of the live copies, "" for alice's own
	for i := 0; i < 15; i++ {
		if i%5 == 4 {
			body := fmt.Sprintf("from alice %d", i)
			alice.Send("<message to='" + B + "' type='chat' id='am" + fmt.Sprint(i) + "'><body>" + body + "</body></message>")
			bob.Expect(body, xmppclient.IsMessageWithBody(body))
			alice2.Expect("carbon of "+body, func(e *xmppclient.Elem) bool { return e.Child("urn:xmpp:carbons:2", "sent") != nil })
			want, live = append(want, body), append(live, "")
			continue
		}
		body := fmt.Sprintf("from bob %d", i)
		bob.Send("<message to='" + A + "' type='chat' id='bm" + fmt.Sprint(i) + "'><body>" + body + "</body>" +
			"<origin-id xmlns='" + nsSID + "' id='origin" + fmt.Sprint(i) + "'/>" +
			"<stanza-id xmlns='" + nsSID + "' id='forged' by='" + A + "'/></message>")
		m := alice.Expect(body, xmppclient.IsMessageWithBody(body))
		m2 := alice2.Expect(body, xmppclient.IsMessageWithBody(body))
		id := stanzaIDBy(t, m, A)
		if id == "forged" || stanzaIDBy(t, m2, A) != id {
			t.Fatalf("stanza-id %q on one resource, %q on the other", id, stanzaIDBy(t, m2, A))
		}
		if o := m.Child(nsSID, "origin-id"); o.Get("id") != "origin"+fmt.Sprint(i) {
			t.Errorf("origin-id not kept: %s", m)
		}
		want, live = append(want, body), append(live, id)
	}
	// Not archived: a chat state alone, a <no-store/> message (delivered without a stanza-id).
	bob.Send("<message to='" + A + "' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	bob.Send("<message to='" + A + "' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>")
	if m := alice.Expect("secret", xmppclient.IsMessageWithBody("secret")); m.Child(nsSID, "stanza-id") != nil {
		t.Errorf("a no-store message got a stanza-id: %s", m)
	}

	// Forwards with count, pages of 3, and the server's cap (5) on a larger max.
	var ids, bodies []string
	after := ""
	for page := 0; ; page++ {
		rsm := "<max>3</max>"
		if after != "" {
			rsm += "<after>" + after + "</after>"
		}
		p := mustMAM(t, alice, fmt.Sprintf("fwd%d", page), mamForm("with", B), rsm, "")
		if p.count != "15" {
			t.Fatalf("page %d: count %s, want 15", page, p.count)
		}
		ids, bodies = append(ids, p.ids...), append(bodies, p.bodies...)
		if p.complete {
			if page != 4 || len(p.ids) != 3 {
				t.Errorf("complete at page %d with %d results", page, len(p.ids))
			}
			break
		}
		if page > 5 || len(p.ids) != 3 {
			t.Fatalf("page %d: %d results, complete=%v", page, len(p.ids), p.complete)
		}
		after = p.last
	}
	if !slices.Equal(bodies, want) {
		t.Fatalf("archive order %v, want %v", bodies, want)
	}
	for i, id := range live {
		if id != "" && ids[i] != id {
			t.Errorf("message %d: archived as %s, delivered with stanza-id %s", i, ids[i], id)
		}
	}
	if p := mustMAM(t, alice, "cap", mamForm("with", B), "<max>100</max>", ""); len(p.ids) != 5 || p.complete || !slices.Equal(p.ids, ids[:5]) {
		t.Errorf("max 100 with max_page 5: %v complete=%v", p.ids, p.complete)
	}
	if p := mustMAM(t, alice, "all", "", "", ""); p.count != "15" {
		t.Errorf("whole archive: count %s, want 15 (no-store, chat states and carbons are not archived)", p.count)
	}

	// Backwards from the end (empty <before/>), pages of 4: the same messages.
	var back []string
	before := ""
	for page := 0; ; page++ {
		p := mustMAM(t, alice, fmt.Sprintf("back%d", page), mamForm("with", B), "<max>4</max><before>"+before+"</before>", "")
		back = append(p.ids, back...)
		if p.complete {
			break
		}
		if page > 4 || len(p.ids) != 4 {
			t.Fatalf("backwards page %d: %v", page, p.ids)
		}
		before = p.first
	}
	if !slices.Equal(back, ids) {
		t.Errorf("backwards %v, forwards %v", back, ids)
	}
	// flip-page: the last page newest first.
	if p := mustMAM(t, alice, "flip", mamForm("with", B), "<max>3</max><before/>", "<flip-page/>"); !slices.Equal(p.ids, []string{ids[14], ids[13], ids[12]}) {
		t.Errorf("flipped last page %v, want the last three newest first", p.ids)
	}

	// with: a full JID matches only that resource (bob's messages came from bob/b; alice's went to the bare JID).
	if p := mustMAM(t, alice, "full", mamForm("with", B+"/b"), "", ""); p.count != "12" || !strings.HasPrefix(p.bodies[0], "from bob") {
		t.Errorf("with a full JID: count %s %v", p.count, p.bodies)
	}
	if p := mustMAM(t, alice, "stranger", mamForm("with", C), "", ""); p.count != "0" || !p.complete || len(p.ids) != 0 {
		t.Errorf("with a stranger: %+v", p)
	}
	// Time bounds, inclusive, from the stamps the archive gave.
	all := mustMAM(t, alice, "stamps", mamForm("with", B), "<max>5</max><after>"+ids[2]+"</after>", "")
	if p := mustMAM(t, alice, "time", mamForm("with", B, "start", all.stamps[0], "end", all.stamps[4]), "", ""); !slices.Equal(p.ids, ids[3:8]) || p.count != "5" {
		t.Errorf("start..end: %v count %s, want %v", p.ids, p.count, ids[3:8])
	}
	if p := mustMAM(t, alice, "start", mamForm("start", all.stamps[4]), "", ""); p.count != "8" {
		t.Errorf("start only: count %s, want 8", p.count)
	}
	// Extended: after-id/before-id, ids.
	if p := mustMAM(t, alice, "between", mamForm("after-id", ids[1], "before-id", ids[6]), "", ""); !slices.Equal(p.ids, ids[2:6]) || p.count != "4" {
		t.Errorf("after-id..before-id: %v", p.ids)
	}
	if p := mustMAM(t, alice, "ids", mamForm("ids", ids[9], "ids", ids[3]), "", ""); !slices.Equal(p.ids, []string{ids[3], ids[9]}) {
		t.Errorf("ids: %v", p.ids)
	}
	// Errors (XEP-0313 §4.1.3, §4.1.5, §4.3.2).
	mamFails(t, alice, "e1", "", "<after>no-such-id</after>", "item-not-found")
	mamFails(t, alice, "e2", mamForm("before-id", "no-such-id"), "", "item-not-found")
	mamFails(t, alice, "e3", mamForm("start", "yesterday"), "", "bad-request")
	mamFails(t, alice, "e4", mamForm("{urn:example}search", "x"), "", "feature-not-implemented")
	mamFails(t, alice, "e5", "", "<index>3</index>", "feature-not-implemented")
	// Someone else's archive is forbidden (§8.1).
	if r := bob.IQ("<iq type='set' to='" + A + "'><query xmlns='" + nsMAM + "'/></iq>"); r.Condition() != "forbidden" {
		t.Errorf("bob querying alice's archive: %s", r)
	}
	// The form (§4.1.5) and the metadata (§5).
	form := alice.IQ("<iq type='get'><query xmlns='" + nsMAM + "'/></iq>")
	var fields []string
	for _, f := range form.Child(nsMAM, "query").Child("jabber:x:data", "x").Children("", "field") {
		fields = append(fields, f.Get("var"))
	}
	for _, f := range []string{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"} {
		if !slices.Contains(fields, f) {
			t.Errorf("query form lacks %s: %v", f, fields)
		}
	}
	md := alice.IQ("<iq type='get'><metadata xmlns='"+nsMAM+"'/></iq>").Child(nsMAM, "metadata")
	if md.Child(nsMAM, "start").Get("id") != ids[0] || md.Child(nsMAM, "end").Get("id") != ids[14] || md.Child(nsMAM, "end").Get("timestamp") == "" {
		t.Errorf("metadata: %s", md)
	}

	// Preferences: default never, always bob. carol's message is delivered bare, bob's archived.
	carol := xmppclient.Online(t, srv.Server, c, cpw, "c")
	if r := alice.IQ("<iq type='get'><prefs xmlns='" + nsMAM + "'/></iq>"); r.Child(nsMAM, "prefs").Get("default") != "always" {
		t.Errorf("default prefs: %s", r)
	}
	set := alice.IQ("<iq type='set'><prefs xmlns='" + nsMAM + "' default='never'><always><jid>" + B + "</jid></always><never/></prefs></iq>")
	if p := set.Child(nsMAM, "prefs"); p.Get("default") != "never" || p.Child(nsMAM, "always").ChildText("jid") != B {
		t.Fatalf("set prefs: %s", set)
	}
	carol.Send("<message to='" + A + "' type='chat'><body>from carol</body></message>")
	if m := alice.Expect("from carol", xmppclient.IsMessageWithBody("from carol")); m.Child(nsSID, "stanza-id") != nil {
		t.Errorf("prefs never: carol's message got a stanza-id: %s", m)
	}
	bob.Send("<message to='" + A + "' type='chat'><body>still archived</body></message>")
	kept := stanzaIDBy(t, alice.Expect("still archived", xmppclient.IsMessageWithBody("still archived")), A)
	if p := mustMAM(t, alice, "prefs", mamForm("with", C), "", ""); p.count != "0" {
		t.Errorf("carol's message archived against the prefs: %v", p.bodies)
	}
	alice.IQ("<iq type='set'><prefs xmlns='" + nsMAM + "' default='always'/></iq>")

	// An offline recipient: archived when it arrives, the offline copy carries the same stanza-id, once.
	bob.Send("<message to='" + D + "' type='chat'><body>while you were away</body></message>")
	bob.IQ("<iq type='get' to='" + D + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>") // handled (ARCHITECTURE.md "Durability")
	dave := xmppclient.Online(t, srv.Server, d, dpw, "d")
	off := dave.Expect("offline message", xmppclient.IsMessageWithBody("while you were away"))
	if off.Child(xmppclient.NSDelay, "delay") == nil {
		t.Errorf("offline message without delay: %s", off)
	}
	offID := stanzaIDBy(t, off, D)
	if p := mustMAM(t, dave, "dave", "", "", ""); !slices.Equal(p.ids, []string{offID}) {
		t.Errorf("dave's archive %v, want [%s]", p.ids, offID)
	}

	// kill -9 and a restart: everything archived is still there, under the same ids.
	alice.Close()
	alice2.Close()
	bob.Close()
	carol.Close()
	dave.Close()
	srv.Kill()
	srv.Restart(t)
	alice = xmppclient.Online(t, srv.Server, a, apw, "a")
	p := mustMAM(t, alice, "restart", mamForm("with", B), "<max>5</max><before/>", "")
	if p.count != "16" || p.last != kept || !slices.Equal(p.ids[:4], ids[11:15]) {
		t.Errorf("after restart: count %s last %s, ids %v", p.count, p.last, p.ids)
	}
	if r := alice.IQ("<iq type='get'><prefs xmlns='" + nsMAM + "'/></iq>"); r.Child(nsMAM, "prefs").Get("default") != "always" {
		t.Errorf("prefs after restart: %s", r)
	}
}

// urn:xmpp:mam:1 (XEP-0313 0.5–0.6): advertised beside mam:2, a query in it is answered in it (results, <fin/>,
// the form without the extended fields, preferences), over the same archive and ids as mam:2.
func TestMAMv1(t *testing.T) {
	const nsMAM1 = "urn:xmpp:mam:1"
	srv := own(t, harness.Options{})
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	A, B := srv.bare(a), srv.bare(b)
	alice := xmppclient.Online(t, srv.Server, a, apw, "a")
	bob := xmppclient.Online(t, srv.Server, b, bpw, "b")

	info := alice.IQ("<iq type='get' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	var vars []string
	for _, f := range info.Child("", "query").Children("", "feature") {
		vars = append(vars, f.Get("var"))
	}
	if !slices.Contains(vars, nsMAM1) || !slices.Contains(vars, nsMAM) {
		t.Errorf("account disco#info lacks mam:1 or mam:2: %v", vars)
	}
	var live []string
	for i := 0; i < 5; i++ {
		body := fmt.Sprintf("v1 message %d", i)
		bob.Send("<message to='" + A + "' type='chat'><body>" + body + "</body></message>")
		live = append(live, stanzaIDBy(t, alice.Expect(body, xmppclient.IsMessageWithBody(body)), A))
	}
	form1 := func(fields string) string {
		return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + nsMAM1 + "</value></field>" + fields + "</x>"
	}
	with := form1("<field var='with'><value>" + B + "</value></field>")
	p1, errIQ := mamQueryNS(t, alice, nsMAM1, "v1a", with, "<max>3</max>", "")
	if errIQ != nil {
		t.Fatalf("mam:1 query: %s", errIQ)
	}
	p2, errIQ := mamQueryNS(t, alice, nsMAM1, "v1b", with, "<max>3</max><after>"+p1.last+"</after>", "")
	if errIQ != nil {
		t.Fatalf("mam:1 second page: %s", errIQ)
	}
	if got := append(p1.ids, p2.ids...); !slices.Equal(got, live) || p1.complete || !p2.complete || p1.count != "5" {
		t.Errorf("mam:1 pages %v (complete %v, %v, count %s), live stanza-ids %v", got, p1.complete, p2.complete, p1.count, live)
	}
	// The same archive through mam:2; and a mam:2 query gets no mam:1 results (mamQueryNS matches by namespace).
	if p := mustMAM(t, alice, "v2", mamForm("with", B), "", ""); !slices.Equal(p.ids, live) {
		t.Errorf("mam:2 sees %v, mam:1 %v", p.ids, live)
	}
	// mam:1's form has no extended fields, and refuses them (§4.1.5); a mam:2 FORM_TYPE is refused.
	form := alice.IQ("<iq type='get'><query xmlns='"+nsMAM1+"'/></iq>").Child(nsMAM1, "query")
	if form == nil || strings.Contains(form.String(), "after-id") || !strings.Contains(form.String(), nsMAM1) {
		t.Errorf("mam:1 form: %v", form)
	}
	if _, errIQ := mamQueryNS(t, alice, nsMAM1, "v1c", form1("<field var='after-id'><value>"+live[0]+"</value></field>"), "", ""); errIQ.Condition() != "feature-not-implemented" {
		t.Errorf("mam:1 with after-id: %v", errIQ)
	}
	if _, errIQ := mamQueryNS(t, alice, nsMAM1, "v1d", mamForm("with", B), "", ""); errIQ.Condition() != "bad-request" {
		t.Errorf("mam:1 query with the mam:2 FORM_TYPE: %v", errIQ)
	}
	// Preferences in mam:1, read back in mam:2.
	r := alice.IQ("<iq type='set'><prefs xmlns='" + nsMAM1 + "' default='roster'><always><jid>" + B + "</jid></always><never/></prefs></iq>")
	if pr := r.Child(nsMAM1, "prefs"); pr.Get("default") != "roster" || pr.Child(nsMAM1, "always").ChildText("jid") != B {
		t.Errorf("mam:1 prefs set: %s", r)
	}
	if r := alice.IQ("<iq type='get'><prefs xmlns='" + nsMAM + "'/></iq>"); r.Child(nsMAM, "prefs").Get("default") != "roster" {
		t.Errorf("prefs set in mam:1 read in mam:2: %s", r)
	}
	if r := alice.IQ("<iq type='get'><prefs xmlns='" + nsMAM1 + "'/></iq>"); r.Child(nsMAM1, "prefs").Child(nsMAM1, "always").ChildText("jid") != B {
		t.Errorf("mam:1 prefs get: %s", r)
	}
	// The metadata (§5) is mam:2's: not served in mam:1.
	if r := alice.IQ("<iq type='get'><metadata xmlns='" + nsMAM1 + "'/></iq>"); r.Get("type") != "error" {
		t.Errorf("mam:1 metadata answered: %s", r)
	}
}

// urn:xmpp:mam:0 (XEP-0313 0.3) through a raw socket, where the order of what arrives is what is checked: the
// empty IQ result first, then the results, then <fin queryid complete/> with its RSM <set/> in a message (0.3's
// sentinel, as ejabberd, Prosody and Openfire sent it); paging forwards and backwards with RSM over the same ids
// as the live stanza-ids and as mam:2; a refused query gets only its IQ error; the form and preferences in mam:0;
// advertised on the account.
func TestMAMv0(t *testing.T) {
	const nsMAM0 = "urn:xmpp:mam:0"
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "mam0a"), newName(t, "mam0b")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	A, B := srv.bare(a), srv.bare(b)
	ra, _ := smLogin(t, srv, a, pw, "old", true)
	rb, _ := smLogin(t, srv, b, pw, "pc", true)

	ra.Write("<iq type='get' id='disco' to='" + A + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	var vars []string
	for _, f := range ra.ExpectIQ("disco").Child("", "query").Children("", "feature") {
		vars = append(vars, f.Get("var"))
	}
	if !slices.Contains(vars, nsMAM0) || !slices.Contains(vars, "urn:xmpp:mam:1") || !slices.Contains(vars, nsMAM) {
		t.Errorf("account disco#info lacks a MAM version: %v", vars)
	}

	var live []string
	for i := 0; i < 5; i++ {
		sendChat(rb, A+"/old", fmt.Sprintf("v0 message %d", i))
		for {
			if e := nextNot(t, ra, true); e.Is(xmppclient.NSClient, "message") {
				live = append(live, stanzaIDBy(t, e, A))
				break
			}
		}
	}

	form := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + nsMAM0 + "</value></field>" +
		"<field var='with'><value>" + B + "</value></field></x>"
	type page struct {
		ids, bodies        []string
		complete           bool
		first, last, count string
	}
	// query reads exactly what the server sends for one query, in order.
	query := func(id, rsm string) page {
		t.Helper()
		ra.Write("<iq type='set' id='" + id + "'><query xmlns='" + nsMAM0 + "' queryid='" + id + "'>" + form +
			"<set xmlns='" + nsRSM + "'>" + rsm + "</set></query></iq>")
		if e := nextNot(t, ra, true); !e.Is(xmppclient.NSClient, "iq") || e.Get("id") != id || e.Get("type") != "result" || e.Child("", "fin") != nil {
			t.Fatalf("%s: the first answer must be the empty IQ result: %s", id, e)
		}
		var p page
		for {
			e := nextNot(t, ra, true)
			if !e.Is(xmppclient.NSClient, "message") || e.Get("from") != A {
				t.Fatalf("%s: got %s, want a message from %s", id, e, A)
			}
			if r := e.Child(nsMAM0, "result"); r != nil {
				if r.Get("queryid") != id {
					t.Fatalf("%s: result of another query: %s", id, e)
				}
				p.ids = append(p.ids, r.Get("id"))
				p.bodies = append(p.bodies, r.Child(nsForward, "forwarded").Child(xmppclient.NSClient, "message").ChildText("body"))
				continue
			}
			fin := e.Child(nsMAM0, "fin")
			if fin == nil || fin.Get("queryid") != id {
				t.Fatalf("%s: got %s, want a result or the <fin/> of this query", id, e)
			}
			set := fin.Child(nsRSM, "set")
			p.complete = fin.Get("complete") == "true"
			p.first, p.last, p.count = set.ChildText("first"), set.ChildText("last"), set.ChildText("count")
			return p
		}
	}
	p1 := query("v0a", "<max>2</max>")
	p2 := query("v0b", "<max>2</max><after>"+p1.last+"</after>")
	p3 := query("v0c", "<max>2</max><after>"+p2.last+"</after>")
	if got := append(append(p1.ids, p2.ids...), p3.ids...); !slices.Equal(got, live) || p1.complete || p2.complete || !p3.complete ||
		p1.count != "5" || p1.first != p1.ids[0] || p1.last != p1.ids[1] || p1.bodies[0] != "v0 message 0" {
		t.Errorf("mam:0 pages forwards %+v %+v %+v, live stanza-ids %v", p1, p2, p3, live)
	}
	back1 := query("v0d", "<max>2</max><before/>")
	back2 := query("v0e", "<max>2</max><before>"+back1.first+"</before>")
	if !slices.Equal(back1.ids, live[3:]) || !slices.Equal(back2.ids, live[1:3]) || back1.complete || back2.complete || back2.count != "5" {
		t.Errorf("mam:0 pages backwards %+v %+v, live %v", back1, back2, live)
	}
	if p := query("v0f", "<max>0</max>"); len(p.ids) != 0 || p.count != "5" || p.first != "" {
		t.Errorf("mam:0 count only: %+v", p)
	}
	// The same archive in mam:2.
	if p := mustMAM(t, xmppclient.Online(t, srv.Server, a, pw, "new"), "v2", mamForm("with", B), "", ""); !slices.Equal(p.ids, live) {
		t.Errorf("mam:2 sees %v, mam:0 %v", p.ids, live)
	}

	// Refused: only the IQ error, nothing before it and no <fin/> after it.
	ra.Write("<iq type='set' id='bad'><query xmlns='" + nsMAM0 + "' queryid='bad'><set xmlns='" + nsRSM + "'><after>no-such-id</after></set></query></iq>")
	if e := nextNot(t, ra, true); !e.Is(xmppclient.NSClient, "iq") || e.Get("id") != "bad" || e.Condition() != "item-not-found" {
		t.Errorf("unknown RSM id: %s", e)
	}
	ra.Write("<iq type='set' id='ext'><query xmlns='" + nsMAM0 + "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsMAM0 +
		"</value></field><field var='after-id'><value>" + live[0] + "</value></field></x></query></iq>")
	if e := nextNot(t, ra, true); e.Get("id") != "ext" || e.Condition() != "feature-not-implemented" {
		t.Errorf("mam:0 with an extended field: %s", e)
	}
	// The form, in mam:0 and without the extended fields.
	ra.Write("<iq type='get' id='form'><query xmlns='" + nsMAM0 + "'/></iq>")
	if f := ra.ExpectIQ("form").Child(nsMAM0, "query"); f == nil || !strings.Contains(f.String(), "<value>"+nsMAM0+"</value>") || strings.Contains(f.String(), "after-id") {
		t.Errorf("mam:0 form: %v", f)
	}

	// Preferences in mam:0: set, read back in mam:0 and in mam:2, and applied (never: bob's next message is not kept).
	ra.Write("<iq type='set' id='ps'><prefs xmlns='" + nsMAM0 + "' default='always'><always/><never><jid>" + B + "</jid></never></prefs></iq>")
	if pr := ra.ExpectIQ("ps").Child(nsMAM0, "prefs"); pr == nil || pr.Get("default") != "always" || pr.Child(nsMAM0, "never").ChildText("jid") != B {
		t.Errorf("mam:0 prefs set: %v", pr)
	}
	ra.Write("<iq type='get' id='pg'><prefs xmlns='" + nsMAM0 + "'/></iq>")
	if pr := ra.ExpectIQ("pg").Child(nsMAM0, "prefs"); pr == nil || pr.Child(nsMAM0, "never").ChildText("jid") != B {
		t.Errorf("mam:0 prefs get: %v", pr)
	}
	ra.Write("<iq type='get' id='pg2'><prefs xmlns='" + nsMAM + "'/></iq>")
	if pr := ra.ExpectIQ("pg2").Child(nsMAM, "prefs"); pr == nil || pr.Child(nsMAM, "never").ChildText("jid") != B {
		t.Errorf("prefs set in mam:0 read in mam:2: %v", pr)
	}
	sendChat(rb, A+"/old", "not archived")
	for {
		if e := nextNot(t, ra, true); e.Is(xmppclient.NSClient, "message") {
			if e.ChildText("body") != "not archived" || len(e.Children(nsSID, "stanza-id")) != 0 {
				t.Errorf("a message under never: %s", e)
			}
			break
		}
	}
	if p := query("v0g", "<max>10</max>"); p.count != "5" || !p.complete {
		t.Errorf("after never: %+v", p)
	}
}

// A message archived on arrival that then goes through RFC 6121 §8.5 again (the stream-management window of the
// session it was delivered to closed before the client acknowledged it) keeps its stanza-id and is archived once.
func TestMAMWindowExpiresArchivedOnce(t *testing.T) {
	srv := shared(t)
	pw := secret()
	a, b := newName(t, "mamsma"), newName(t, "mamsmb")
	srv.AddUser(t, a, pw)
	srv.AddUser(t, b, pw)
	A := a + "@" + srv.Domain
	ra, _ := smLogin(t, srv, a, pw, "phone", true)
	ra.Write("<enable xmlns='urn:xmpp:sm:3' resume='true' max='1'/>")
	ra.Expect(nsSM, "enabled")
	rb, _ := smLogin(t, srv, b, pw, "pc", true)
	sendChat(rb, A+"/phone", "archived once")
	var first string
	for first == "" {
		if e := nextNot(t, ra, true); e.Is(xmppclient.NSClient, "message") {
			first = stanzaIDBy(t, e, A)
		}
	}
	ra.Conn().Close() // never acknowledged
	time.Sleep(2500 * time.Millisecond)
	ra2, _ := smLogin(t, srv, a, pw, "laptop", true)
	ra2.Write("<presence/>")
	var again *xmppclient.Elem
	for again == nil {
		if e := nextNot(t, ra2, true); e.Is(xmppclient.NSClient, "message") {
			again = e
		}
	}
	if again.Child(xmppclient.NSDelay, "delay") == nil || stanzaIDBy(t, again, A) != first {
		t.Fatalf("redelivered as %s, first delivered with stanza-id %s", again, first)
	}
	ra2.Write("<iq type='set' id='q1'><query xmlns='" + nsMAM + "' queryid='once'/></iq>")
	var results []string
	for {
		e := nextNot(t, ra2, true)
		if r := e.Child(nsMAM, "result"); r != nil {
			results = append(results, r.Get("id"))
			continue
		}
		if e.Is(xmppclient.NSClient, "iq") && e.Get("id") == "q1" {
			if c := e.Child(nsMAM, "fin").Child(nsRSM, "set").ChildText("count"); c != "1" {
				t.Errorf("count %s, want 1", c)
			}
			break
		}
	}
	if len(results) != 1 || results[0] != first {
		t.Errorf("archive %v, want [%s]", results, first)
	}
}
