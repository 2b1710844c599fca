package mam

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

const juliet = "juliet@example.com"

func setup(t *testing.T, cfg func(*featuretest.Server)) (*featuretest.Server, *featuretest.User) {
	srv := featuretest.NewServer(t, Feature)
	if cfg != nil {
		cfg(srv)
	}
	srv.AddAccount(t, juliet)
	return srv, featuretest.NewUser(srv, juliet, true)
}

func archived(t *testing.T, srv *featuretest.Server) []storage.ArchivedMessage {
	t.Helper()
	page, _, err := srv.DB.QueryArchive(context.Background(), juliet, storage.ArchiveQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func stanzaIDs(t *testing.T, st *stanza.Routed) []string {
	n := featuretest.Node(t, st)
	var out []string
	for _, k := range n.ChildrenNamed(wire.NSSID, "stanza-id") {
		out = append(out, k.Attr("by")+"="+k.Attr("id"))
	}
	return out
}

func TestAcceptingArchivesOnce(t *testing.T) {
	srv, uh := setup(t, nil)
	p := Feature.NewUser(uh).(*User)
	in := featuretest.Stanza(t, "<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat' id='m1'><body>hi</body>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='juliet@example.com'/><stanza-id xmlns='urn:xmpp:sid:0' id='r1' by='romeo@example.net'/>"+
		"<origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>")
	out := p.Accepting(in, false)
	if uh.CommitsAsked != 1 {
		t.Errorf("asked for %d commits", uh.CommitsAsked)
	}
	p.Commit()
	ids := stanzaIDs(t, out)
	if len(ids) != 2 || ids[0] != "romeo@example.net=r1" || !strings.HasPrefix(ids[1], juliet+"=") || strings.HasSuffix(ids[1], "=forged") {
		t.Fatalf("stanza-ids of the delivered copy: %v (%s)", ids, out.Raw)
	}
	if !strings.Contains(out.Raw, "origin-id") || out.Head != in.Head || out.To != in.To {
		t.Errorf("delivered copy lost something: %s", out.Raw)
	}
	arch := archived(t, srv)
	if len(arch) != 1 || juliet+"="+arch[0].ID != ids[1] || arch[0].With != "romeo@example.net/orchard" || arch[0].WithBare != "romeo@example.net" {
		t.Fatalf("archive %+v, delivered with %v", arch, ids)
	}
	if !strings.HasPrefix(arch[0].Stanza, "<message xmlns='jabber:client'") || strings.Contains(arch[0].Stanza, "forged") {
		t.Errorf("archived copy %s", arch[0].Stanza)
	}
	// Delivered again (undelivered, SM window closed): unchanged and not archived a second time.
	if again := p.Accepting(out, true); again != out {
		t.Errorf("a redelivered message was changed: %s", again.Raw)
	}
	p.Commit()
	if n := len(archived(t, srv)); n != 1 {
		t.Errorf("archived %d times", n)
	}
}

// A message with a cluster idempotency key is archived under its key as id: a second arrival of it (a new user
// actor after its first home left unconfirmed) is not archived again, and its live copy carries the same
// stanza-id; the key goes on with the delivered copy (the offline queue keys by it too).
func TestAcceptingKeyed(t *testing.T) {
	srv, uh := setup(t, nil)
	key := stanza.UniqueID()
	raw := "<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat' id='m1'><body>hi</body></message>"
	p1 := Feature.NewUser(uh).(*User)
	first := p1.Accepting(featuretest.Stanza(t, raw).WithOnce(key), false)
	p1.Commit()
	p := Feature.NewUser(uh).(*User) // another actor: what the first archived is in storage only
	second := p.Accepting(featuretest.Stanza(t, raw).WithOnce(key), false)
	p.Commit()
	for _, out := range []*stanza.Routed{first, second} {
		if ids := stanzaIDs(t, out); len(ids) != 1 || ids[0] != juliet+"="+key || out.Once != key {
			t.Fatalf("delivered copy: stanza-ids %v, key %q; want the key %s as both", ids, out.Once, key)
		}
	}
	if arch := archived(t, srv); len(arch) != 1 || arch[0].ID != key {
		t.Fatalf("archive %+v; want the message once, under its key", arch)
	}
}

func TestAcceptingSkips(t *testing.T) {
	srv, uh := setup(t, nil)
	p := Feature.NewUser(uh).(*User)
	for _, raw := range []string{
		"<message from='r@example.net/o' to='juliet@example.com' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>",
		"<message from='r@example.net/o' to='juliet@example.com' type='chat'><gone xmlns='http://jabber.org/protocol/chatstates'/></message>",
		"<message from='r@example.net/o' to='juliet@example.com' type='headline'><body>x</body></message>",
		"<message from='r@example.net/o' to='juliet@example.com' type='groupchat'><body>x</body></message>",
		"<message from='r@example.net/o' to='juliet@example.com' type='error'><body>x</body></message>",
		"<presence from='r@example.net/o' to='juliet@example.com'/>",
		// A room's copy with the room's stanza-id (XEP-0313 §8 via XEP-0359): not ours, not parsed, kept.
		"<message from='room@conference.example.com/n' to='juliet@example.com/r' type='groupchat'><body>x</body>" +
			"<stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@conference.example.com'/></message>",
	} {
		in := featuretest.Stanza(t, raw)
		if out := p.Accepting(in, false); out != in {
			t.Errorf("%s changed to %s", raw, out.Raw)
		}
	}
	// A forged stanza-id goes even when the message is not archived.
	in := featuretest.Stanza(t, "<message from='r@example.net/o' to='juliet@example.com' type='headline'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='juliet@example.com'/></message>")
	if out := p.Accepting(in, false); len(stanzaIDs(t, out)) != 0 {
		t.Errorf("forged stanza-id kept: %s", out.Raw)
	}
	// A room's copy carrying a forged one besides the room's: only the forged one goes.
	in = featuretest.Stanza(t, "<message from='room@conference.example.com/n' to='juliet@example.com/r' type='groupchat'><body>x</body>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='room@conference.example.com'/><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='juliet@example.com'/></message>")
	if out := p.Accepting(in, false); len(stanzaIDs(t, out)) != 1 || !strings.Contains(out.Raw, "id='s1'") {
		t.Errorf("groupchat copy: %s", out.Raw)
	}
	// Also with a prefix (the skip of unarchived types looks for the element's name in the bytes).
	in = featuretest.Stanza(t, "<message from='r@example.net/o' to='juliet@example.com' type='headline'><body>x</body><s:stanza-id xmlns:s='urn:xmpp:sid:0' id='f' by='juliet@example.com'/></message>")
	if out := p.Accepting(in, false); out == in || len(stanzaIDs(t, out)) != 0 {
		t.Errorf("prefixed forged stanza-id kept: %s", out.Raw)
	}
	p.Commit()
	if n := len(archived(t, srv)); n != 0 {
		t.Errorf("archived %d", n)
	}
}

func TestOutgoingAndPrefs(t *testing.T) {
	srv, uh := setup(t, func(s *featuretest.Server) { s.Cfg.MAM.Default = "roster" })
	uh.Subs[featuretest.MustJID("romeo@example.net")] = "both"
	p := Feature.NewUser(uh).(*User)
	sh := featuretest.NewSession(srv, juliet+"/balcony")
	sp := Feature.NewSession(sh).(*Session)
	for _, raw := range []string{
		"<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat'><body>to a contact</body></message>",
		"<message from='juliet@example.com/balcony' to='tybalt@example.net' type='chat'><body>to a stranger</body></message>",
		"<message from='juliet@example.com/balcony' to='juliet@example.com' type='chat'><body>to myself</body></message>",
		"<message from='juliet@example.com/balcony' to='example.com' type='normal'><body>to the server</body></message>",
		"<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
	} {
		if !sp.Outbound(featuretest.Stanza(t, raw)) {
			t.Fatalf("Outbound consumed %s", raw)
		}
	}
	if len(sh.Sent) != 2 {
		t.Fatalf("the session handed %d messages to the user part, want 2", len(sh.Sent))
	}
	for _, m := range sh.Sent {
		if _, ok := m.Msg.(feature.Batched); !ok {
			t.Errorf("%T does not join the user actor's batch", m.Msg)
		}
		p.Handle(m.Msg)
	}
	p.Commit()
	arch := archived(t, srv)
	if len(arch) != 1 || arch[0].With != "romeo@example.net" || !strings.Contains(arch[0].Stanza, "to a contact") {
		t.Fatalf("roster preference: archive %+v", arch)
	}
	// prefs through the IQ: stored, applied, and what the next user actor loads.
	r := uh.Online("balcony", 0)
	q := featuretest.AccountIQ(t, uh, p, "<iq type='set' id='p1'><prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>tybalt@example.net</jid></never></prefs></iq>", true, r)
	prefs(q)
	if got := uh.Delivered[r.Full]; len(got) != 1 || got[0].Head.Type != "result" {
		t.Fatalf("prefs set answered %v", got)
	}
	in := featuretest.Stanza(t, "<message from='tybalt@example.net/x' to='juliet@example.com' type='chat'><body>never</body></message>")
	if out := p.Accepting(in, false); out != in {
		t.Errorf("never: %s", out.Raw)
	}
	p2 := Feature.NewUser(featuretest.NewUser(srv, juliet, true)).(*User)
	if p2.prefs.Default != "always" || len(p2.prefs.Never) != 1 {
		t.Errorf("reloaded prefs %+v", p2.prefs)
	}
	// Someone else may neither read the prefs nor query.
	q = featuretest.AccountIQ(t, uh, p, "<iq type='get' id='p2' from='romeo@example.net/o' to='juliet@example.com'><prefs xmlns='urn:xmpp:mam:2'/></iq>", false, feature.Resource{})
	prefs(q)
	if len(uh.Routed) != 1 || !strings.Contains(uh.Routed[0].Raw, "forbidden") {
		t.Errorf("a stranger's prefs get: %v", uh.Routed)
	}
}

func TestRetention(t *testing.T) {
	srv, uh := setup(t, func(s *featuretest.Server) { s.Cfg.MAM.RetentionDays = 2; s.Cfg.MAM.MaxMessages = 3 })
	ctx := context.Background()
	now := time.Now().UTC()
	for i := 0; i < 6; i++ {
		age := time.Duration(5-i) * 24 * time.Hour // 5, 4, 3, 2 days (minus a second) ... old
		m := storage.ArchivedMessage{ID: fmt.Sprint("m", i), With: "r@example.net", WithBare: "r@example.net", Stamp: now.Add(-age + time.Minute), Stanza: "<message/>"}
		if err := srv.DB.AppendArchive(ctx, juliet, m); err != nil {
			t.Fatal(err)
		}
	}
	Feature.NewUser(uh) // expires m0..m2 (older than two days), then keeps the newest 3 of m3..m5
	var ids []string
	for _, m := range archived(t, srv) {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "m3,m4,m5" {
		t.Errorf("after retention: %v", ids)
	}
	srv.Cfg.MAM.MaxMessages = 2
	Feature.NewUser(uh)
	if n := len(archived(t, srv)); n != 2 {
		t.Errorf("quota 2 kept %d", n)
	}
}

func TestQueryCountOnly(t *testing.T) {
	_, uh := setup(t, nil)
	p := Feature.NewUser(uh).(*User)
	for i := 0; i < 3; i++ {
		p.Accepting(featuretest.Stanza(t, fmt.Sprintf("<message from='r@example.net/o' to='juliet@example.com' type='chat'><body>%d</body></message>", i)), false)
	}
	r := uh.Online("balcony", 0)
	query(featuretest.AccountIQ(t, uh, p, "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set></query></iq>", true, r))
	got := uh.Delivered[r.Full]
	if len(got) != 1 || !strings.Contains(got[0].Raw, "<count>3</count>") || strings.Contains(got[0].Raw, "complete") || strings.Contains(got[0].Raw, "<first>") {
		t.Errorf("max 0: %v", got)
	}
}

// InArchive (the XEP-0386 offline clearing) holds only what the archive still has: a copy with our stanza-id
// whose row retention deleted, a forged stanza-id by someone else, and a message never archived are not held.
func TestInArchive(t *testing.T) {
	srv, uh := setup(t, nil)
	p := Feature.NewUser(uh).(*User)
	msg := func(body, extra string) *stanza.Routed {
		return featuretest.Stanza(t, "<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat'><body>"+body+"</body>"+extra+"</message>")
	}
	old := p.Accepting(msg("old", ""), false)
	p.Commit()
	if n, err := srv.DB.DeleteArchiveBefore(context.Background(), juliet, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("expiring the old message: %d, %v", n, err)
	}
	kept := p.Accepting(msg("kept", ""), false) // committed by InArchive itself
	notStored := p.Accepting(msg("not stored", "<no-store xmlns='urn:xmpp:hints'/>"), false)
	other := msg("other", "<stanza-id xmlns='urn:xmpp:sid:0' id='x' by='romeo@example.net'/>")
	held := p.InArchive([]string{old.Raw, kept.Raw, notStored.Raw, other.Raw, "<message"})
	if want := []bool{false, true, false, false, false}; fmt.Sprint(held) != fmt.Sprint(want) {
		t.Errorf("held %v, want %v", held, want)
	}
}

// mam:0 (XEP-0313 0.3): the empty IQ result first, then the results, then <fin queryid/> in a message; paging by
// RSM over the same archive; a refused query gets its error and nothing else; preferences in mam:0.
func TestQueryMAM0(t *testing.T) {
	_, uh := setup(t, nil)
	p := Feature.NewUser(uh).(*User)
	for i := 0; i < 3; i++ {
		p.Accepting(featuretest.Stanza(t, fmt.Sprintf("<message from='r@example.net/o' to='juliet@example.com' type='chat'><body>%d</body></message>", i)), false)
	}
	r := uh.Online("balcony", 0)
	page := func(id, rsm string) (ids []string, fin *xmlstream.Node) {
		t.Helper()
		uh.Delivered[r.Full] = nil
		query(featuretest.AccountIQ(t, uh, p, "<iq type='set' id='"+id+"'><query xmlns='urn:xmpp:mam:0' queryid='q-"+id+"'>"+
			"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:0</value></field>"+
			"<field var='with'><value>r@example.net</value></field></x>"+
			"<set xmlns='http://jabber.org/protocol/rsm'>"+rsm+"</set></query></iq>", true, r))
		got := uh.Delivered[r.Full]
		if len(got) < 2 || got[0].Head.Name != "iq" || got[0].Head.Type != "result" || got[0].Head.ID != id || strings.Contains(got[0].Raw, "fin") {
			t.Fatalf("%s: the empty IQ result must come first: %v", id, got)
		}
		for _, m := range got[1 : len(got)-1] {
			res := featuretest.Node(t, m).Child(wire.NS0, "result")
			if m.Head.Name != "message" || res == nil || res.Attr("queryid") != "q-"+id {
				t.Fatalf("%s: not a mam:0 result: %s", id, m.Raw)
			}
			ids = append(ids, res.Attr("id"))
		}
		last := got[len(got)-1]
		fin = featuretest.Node(t, last).Child(wire.NS0, "fin")
		if last.Head.Name != "message" || fin == nil || fin.Attr("queryid") != "q-"+id || last.From != uh.Bare() {
			t.Fatalf("%s: the query must end with <fin/> in a message from the account: %s", id, last.Raw)
		}
		return ids, fin
	}
	rsmText := func(fin *xmlstream.Node, k string) string {
		return fin.Child(wire.NSRSM, "set").Child(wire.NSRSM, k).TextContent()
	}
	first, fin1 := page("p1", "<max>2</max>")
	if len(first) != 2 || fin1.Attr("complete") == "true" || rsmText(fin1, "count") != "3" || rsmText(fin1, "last") != first[1] {
		t.Errorf("first page %v, fin %s", first, fin1.String())
	}
	second, fin2 := page("p2", "<max>2</max><after>"+first[1]+"</after>")
	if len(second) != 1 || fin2.Attr("complete") != "true" || second[0] == first[0] || second[0] == first[1] {
		t.Errorf("second page %v, fin %s", second, fin2.String())
	}
	last, fin3 := page("p3", "<max>1</max><before/>")
	if len(last) != 1 || last[0] != second[0] || fin3.Attr("complete") == "true" {
		t.Errorf("last page %v, fin %s", last, fin3.String())
	}

	// An unknown RSM id is refused before anything is sent.
	uh.Delivered[r.Full] = nil
	query(featuretest.AccountIQ(t, uh, p, "<iq type='set' id='bad'><query xmlns='urn:xmpp:mam:0' queryid='x'><set xmlns='http://jabber.org/protocol/rsm'><after>nope</after></set></query></iq>", true, r))
	if got := uh.Delivered[r.Full]; len(got) != 1 || got[0].Head.Type != "error" || !strings.Contains(got[0].Raw, "item-not-found") {
		t.Errorf("unknown id: %v", got)
	}
	// The form: mam:0's, without the extended fields.
	uh.Delivered[r.Full] = nil
	query(featuretest.AccountIQ(t, uh, p, "<iq type='get' id='f'><query xmlns='urn:xmpp:mam:0'/></iq>", true, r))
	if got := uh.Delivered[r.Full]; len(got) != 1 || !strings.Contains(got[0].Raw, "<value>urn:xmpp:mam:0</value>") || strings.Contains(got[0].Raw, "after-id") {
		t.Errorf("form: %v", got)
	}

	// Preferences in mam:0, answered in mam:0 and applied.
	uh.Delivered[r.Full] = nil
	prefs(featuretest.AccountIQ(t, uh, p, "<iq type='set' id='pr'><prefs xmlns='urn:xmpp:mam:0' default='never'><always><jid>r@example.net</jid></always><never/></prefs></iq>", true, r))
	prefs(featuretest.AccountIQ(t, uh, p, "<iq type='get' id='pg'><prefs xmlns='urn:xmpp:mam:0'/></iq>", true, r))
	got := uh.Delivered[r.Full]
	if len(got) != 2 {
		t.Fatalf("prefs answers %v", got)
	}
	for _, a := range got {
		pr := featuretest.Node(t, a).Child(wire.NS0, "prefs")
		if a.Head.Type != "result" || pr == nil || pr.Attr("default") != "never" || pr.Child(wire.NS0, "always").Child(wire.NS0, "jid").TextContent() != "r@example.net" {
			t.Errorf("prefs answer %s", a.Raw)
		}
	}
	if p.prefs.Default != "never" || p.prefs.Archives(featuretest.MustJID("s@example.net/x"), p.inRoster) || !p.prefs.Archives(featuretest.MustJID("r@example.net/x"), p.inRoster) {
		t.Errorf("prefs not applied: %+v", p.prefs)
	}
}

// disco#info of an account lists every namespace served, mam:0 among them.
func TestAccountVars(t *testing.T) {
	for _, ns := range []string{wire.NS, wire.NS1, wire.NS0, wire.NSExtended, wire.NSSID} {
		if !slices.Contains(Feature.AccountVars, ns) {
			t.Errorf("%s is not advertised", ns)
		}
	}
	for _, ns := range []string{wire.NS, wire.NS1, wire.NS0} {
		for _, local := range []string{"query", "prefs"} {
			if !slices.ContainsFunc(Feature.IQs, func(r feature.IQRoute) bool {
				return r.Name == xmlstream.Name{Space: ns, Local: local} && r.Account != nil
			}) {
				t.Errorf("no route for {%s}%s", ns, local)
			}
		}
	}
}
