package pep

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The account and its roster: bob (both, group Friends), carol (from, group Work), dave (to, no group); eve is
// not in the roster.
const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	carol = "carol@example.com"
	dave  = "dave@example.com"
	eve   = "eve@example.com"

	tuneNS = "http://jabber.org/protocol/tune"
	moodNS = "http://jabber.org/protocol/mood"

	bobPhone  = bob + "/phone"
	bobTablet = bob + "/tablet"
	carolPC   = carol + "/pc"
	daveD     = dave + "/d"
	eveX      = eve + "/x"
)

var bg0 = context.Background()

// Compile-time: the hooks the user actor calls.
var (
	_ feature.UserInbound     = (*part)(nil)
	_ feature.PresenceChanged = (*part)(nil)
	_ feature.Dropped         = (*part)(nil)
	_ feature.Handler         = (*part)(nil)
	_ feature.ItemsProvider   = (*part)(nil)
)

// rosterUser adds roster groups to the fake user (featuretest.User's Roster carries none), for the roster
// access model.
type rosterUser struct {
	*featuretest.User
	groups map[string][]string
}

func (u *rosterUser) Roster() []storage.RosterItem {
	items := u.User.Roster()
	for i := range items {
		items[i].Groups = u.groups[items[i].JID]
	}
	return items
}

type fixture struct {
	srv  *featuretest.Server
	u    *featuretest.User
	host *rosterUser
	p    *part
	r1   feature.Resource
	ids  int
}

// newFixture: alice's account, online as r1, with the configuration tweaked before the part is made.
func newFixture(t *testing.T, tweak ...func(*config.Config)) *fixture {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	for _, fn := range tweak {
		fn(&srv.Cfg)
	}
	srv.AddAccount(t, alice)
	f := &fixture{srv: srv}
	f.attach()
	return f
}

// attach makes a fresh user host and PEP part of alice over the same server (a new user actor).
func (f *fixture) attach() {
	u := featuretest.NewUser(f.srv, alice, true)
	for c, s := range map[string]string{bob: "both", carol: "from", dave: "to"} {
		u.Subs[featuretest.MustJID(c)] = s
	}
	f.u = u
	f.host = &rosterUser{User: u, groups: map[string][]string{bob: {"Friends"}, carol: {"Work"}}}
	f.r1 = u.Online("r1", 0)
	f.p = Feature.NewUser(f.host).(*part)
}

func maxItems(n int) func(*config.Config) { return func(c *config.Config) { c.PEP.MaxItems = n } }

// call dispatches a through the feature's IQ routes, as the user actor does.
func (f *fixture) call(t *testing.T, a *feature.AccountIQ) {
	t.Helper()
	a.User = f.host
	for _, r := range Feature.IQs {
		if r.Name == a.Payload.Name {
			r.Account(a)
			return
		}
	}
	t.Fatalf("no IQ route for %v", a.Payload.Name)
}

type reply struct {
	raw string
	n   *xmlstream.Node
}

func (f *fixture) parse(t *testing.T, st *stanza.Routed, id string) reply {
	t.Helper()
	n := featuretest.Node(t, st)
	if n.Name.Local != "iq" || n.Attr("id") != id {
		t.Fatalf("answer to %s is not an iq with that id: %s", id, st.Raw)
	}
	return reply{raw: st.Raw, n: n}
}

// own is alice's request from r1; the one answer delivered to r1.
func (f *fixture) own(t *testing.T, typ, payload string) reply {
	t.Helper()
	f.ids++
	id := "o" + strconv.Itoa(f.ids)
	raw := "<iq from='" + f.r1.Full.String() + "' type='" + typ + "' id='" + id + "'>" + payload + "</iq>"
	before := len(f.u.Delivered[f.r1.Full])
	f.call(t, featuretest.AccountIQ(t, f.u, f.p, raw, true, f.r1))
	got := f.u.Delivered[f.r1.Full][before:]
	if len(got) != 1 {
		t.Fatalf("%s %s: %d answers, want 1", typ, payload, len(got))
	}
	return f.parse(t, got[0], id)
}

// other is a request of from (another entity) to alice's bare JID; its answer, routed. What else was routed
// (notifications) stays in f.u.Routed.
func (f *fixture) other(t *testing.T, from, typ, payload string) reply {
	t.Helper()
	f.ids++
	id := "x" + strconv.Itoa(f.ids)
	raw := "<iq from='" + from + "' to='" + alice + "' type='" + typ + "' id='" + id + "'>" + payload + "</iq>"
	before := len(f.u.Routed)
	f.call(t, featuretest.AccountIQ(t, f.u, f.p, raw, false, feature.Resource{}))
	got := f.u.Routed[before:]
	if len(got) == 0 {
		t.Fatalf("%s %s from %s: no answer", typ, payload, from)
	}
	r := f.parse(t, got[0], id)
	if r.n.Attr("to") != from || r.n.Attr("from") != alice || got[0].To.String() != from {
		t.Fatalf("answer not addressed from alice to %s: %s", from, r.raw)
	}
	f.u.Routed = append(f.u.Routed[:before], got[1:]...)
	return r
}

// req is own (from == alice) or other.
func (f *fixture) req(t *testing.T, from, typ, payload string) reply {
	t.Helper()
	if from == alice {
		return f.own(t, typ, payload)
	}
	return f.other(t, from, typ, payload)
}

// result fails the test unless r is a result; it returns the payload (nil for an empty result).
func (r reply) result(t *testing.T, what string) *xmlstream.Node {
	t.Helper()
	if r.n.Attr("type") != "result" {
		t.Fatalf("%s: want a result, got %s", what, r.raw)
	}
	return r.n.FirstElement()
}

func (r reply) errorOf() (typ, cond, app string) {
	e := r.n.Child(stanza.NSClient, "error")
	if e == nil {
		return "", "", ""
	}
	typ = e.Attr("type")
	for _, k := range e.Elements() {
		switch {
		case k.Name.Space == stanza.NSStanzas && k.Name.Local != "text":
			cond = k.Name.Local
		case k.Name.Space == pubsub.NSErrors:
			app = k.Name.Local
		}
	}
	return typ, cond, app
}

// fails reports unless r is an error with cond, the pubsub#errors condition app ("" none, "*" any) and the
// error type typ ("" any).
func (r reply) fails(t *testing.T, what, typ string, cond stanza.Condition, app string) {
	t.Helper()
	gt, gc, ga := r.errorOf()
	if r.n.Attr("type") != "error" || gc != string(cond) || (app != "*" && ga != app) || (typ != "" && gt != typ) {
		t.Errorf("%s: got %s\n want error type=%q %s + %q", what, r.raw, typ, cond, app)
	}
}

// ---- payload builders ----

func ps(inner string) string { return "<pubsub xmlns='" + pubsub.NS + "'>" + inner + "</pubsub>" }
func po(inner string) string { return "<pubsub xmlns='" + pubsub.NSOwner + "'>" + inner + "</pubsub>" }

func tune(title string) string {
	return "<tune xmlns='" + tuneNS + "'><title>" + title + "</title></tune>"
}

func publishXML(node, id, payload, options string) string {
	item := "<item"
	if id != "" {
		item += " id='" + id + "'"
	}
	s := "<publish node='" + node + "'>" + item + ">" + payload + "</item></publish>"
	if options != "" {
		s += "<publish-options>" + options + "</publish-options>"
	}
	return ps(s)
}

// form is a submitted data form of formType with var/value pairs.
func form(formType string, kv ...string) string {
	b := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + formType + "</value></field>"
	for i := 0; i+1 < len(kv); i += 2 {
		b += "<field var='" + kv[i] + "'><value>" + kv[i+1] + "</value></field>"
	}
	return b + "</x>"
}

func options(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	return form(pubsub.NSPublishOptions, kv...)
}

// publish publishes tune(title) as alice with publish-options kv; the item id of the result.
func (f *fixture) publish(t *testing.T, node, id, title string, kv ...string) string {
	t.Helper()
	r := f.own(t, "set", publishXML(node, id, tune(title), options(kv...)))
	p := r.result(t, "publish to "+node)
	if p == nil || p.Name != (xmlstream.Name{Space: pubsub.NS, Local: "pubsub"}) {
		t.Fatalf("publish result without <pubsub/>: %s", r.raw)
	}
	pub := p.Child(pubsub.NS, "publish")
	if pub == nil || pub.Attr("node") != node {
		t.Fatalf("publish result without <publish node='%s'/>: %s", node, r.raw)
	}
	items := pub.ChildrenNamed(pubsub.NS, "item")
	if len(items) != 1 || items[0].Attr("id") == "" || len(items[0].Elements()) != 0 {
		t.Fatalf("publish result must carry one empty <item id/>: %s", r.raw)
	}
	if id != "" && items[0].Attr("id") != id {
		t.Fatalf("publish result id %q, want %q", items[0].Attr("id"), id)
	}
	return items[0].Attr("id")
}

func titleOf(item *xmlstream.Node) string {
	if tn := item.Child(tuneNS, "tune"); tn != nil {
		if ti := tn.Child(tuneNS, "title"); ti != nil {
			return ti.TextContent()
		}
	}
	return ""
}

// itemsOf reads an items result: "id=title" in document order.
func itemsOf(t *testing.T, r reply, node string) []string {
	t.Helper()
	p := r.result(t, "items of "+node)
	if p == nil {
		t.Fatalf("empty items result: %s", r.raw)
	}
	its := p.Child(pubsub.NS, "items")
	if its == nil || its.Attr("node") != node {
		t.Fatalf("items result without <items node='%s'/>: %s", node, r.raw)
	}
	out := []string{}
	for _, it := range its.ChildrenNamed(pubsub.NS, "item") {
		out = append(out, it.Attr("id")+"="+titleOf(it))
	}
	return out
}

func itemsReq(node, attrs, inner string) string {
	return ps("<items node='" + node + "'" + attrs + ">" + inner + "</items>")
}

func (f *fixture) items(t *testing.T, from, node string) []string {
	t.Helper()
	return itemsOf(t, f.req(t, from, "get", itemsReq(node, "", "")), node)
}

// ---- presence and caps ----

func capsPresence(full, ver string) string {
	return "<presence from='" + full + "' to='" + alice + "'><c xmlns='" + caps.NS + "' hash='sha-1' node='https://client.example' ver='" + ver + "'/></presence>"
}

func (f *fixture) inbound(t *testing.T, raw string) {
	t.Helper()
	if !f.p.Inbound(featuretest.Stanza(t, raw)) {
		t.Fatalf("Inbound consumed %s", raw)
	}
}

// arrive: available presence of full with caps ver.
func (f *fixture) arrive(t *testing.T, full, ver string) {
	t.Helper()
	f.inbound(t, capsPresence(full, ver))
}

func (f *fixture) leave(t *testing.T, full string) {
	t.Helper()
	f.inbound(t, "<presence from='"+full+"' to='"+alice+"' type='unavailable'/>")
}

// capsKnown: the caps cache answers for ver, with +notify for nodes.
func (f *fixture) capsKnown(ver string, nodes ...string) {
	feats := []string{"http://jabber.org/protocol/disco#info"}
	for _, n := range nodes {
		feats = append(feats, n+pubsub.NotifySuffix)
	}
	f.p.Handle(feature.CapsKnown{Hash: "sha-1", Ver: ver, Features: feats})
}

// notes takes the notifications routed so far, sorted, each "to kind node [id=title | -id]… [(delayed)]".
func (f *fixture) notes(t *testing.T) []string {
	t.Helper()
	out := []string{}
	for _, st := range f.u.Routed {
		n := featuretest.Node(t, st)
		if n.Name.Local != "message" || n.Attr("from") != alice || n.Attr("type") != "headline" || n.Attr("id") == "" ||
			st.To.String() != n.Attr("to") || st.From.String() != alice {
			t.Errorf("not a headline PEP notification from %s: %s", alice, st.Raw)
			continue
		}
		ev := n.Child(pubsub.NSEvent, "event")
		if ev == nil || len(ev.Elements()) != 1 {
			t.Errorf("notification without one <event/> child: %s", st.Raw)
			continue
		}
		k := ev.FirstElement()
		s := n.Attr("to") + " " + k.Name.Local + " " + k.Attr("node")
		for _, it := range k.Elements() {
			switch it.Name.Local {
			case "item":
				s += " " + it.Attr("id")
				if ti := titleOf(it); ti != "" {
					s += "=" + ti
				}
				if p := it.Attr("publisher"); p != "" && p != alice {
					t.Errorf("publisher %q, want %s: %s", p, alice, st.Raw)
				}
			case "retract":
				s += " -" + it.Attr("id")
			default:
				s += " ?" + it.Name.Local
			}
		}
		if d := n.Child(stanza.NSDelay, "delay"); d != nil {
			stamp, err := time.Parse(time.RFC3339Nano, d.Attr("stamp"))
			if err != nil || d.Attr("from") != alice || stamp.After(time.Now()) || time.Since(stamp) > time.Minute {
				t.Errorf("bad XEP-0203 delay: %s", st.Raw)
			}
			s += " (delayed)"
		}
		out = append(out, s)
	}
	f.u.Routed = nil
	sort.Strings(out)
	return out
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

func (f *fixture) storedNodes(t *testing.T) []string {
	t.Helper()
	list, err := f.srv.DB.PubSubNodes(bg0, alice)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, n := range list {
		out = append(out, n.Node)
	}
	return out
}

func (f *fixture) storedConfig(t *testing.T, node string) pubsub.Config {
	t.Helper()
	list, err := f.srv.DB.PubSubNodes(bg0, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		if n.Node == node {
			c, err := pubsub.Decode(n.Config, pubsub.DefaultPEP())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("node %s not stored", node)
	return pubsub.Config{}
}

func (f *fixture) setAffiliation(t *testing.T, node, who, aff string) {
	t.Helper()
	f.own(t, "set", po("<affiliations node='"+node+"'><affiliation jid='"+who+"' affiliation='"+aff+"'/></affiliations>")).
		result(t, "affiliation "+aff+" for "+who)
}

// ---- tests ----

func TestFeatureDeclaration(t *testing.T) {
	if Feature.Name != "pep" || Feature.NewUser == nil {
		t.Fatal("pep feature without a user part")
	}
	eq(t, "limits", Feature.Limits, []string{"pep_max_nodes", "pep_max_item_bytes"})
	var spaces []string
	for _, r := range Feature.IQs {
		if r.Account == nil || r.Name.Local != "pubsub" {
			t.Errorf("route %v is not an account route for <pubsub/>", r.Name)
		}
		spaces = append(spaces, r.Name.Space)
	}
	sort.Strings(spaces)
	eq(t, "routes", spaces, []string{pubsub.NS, pubsub.NSOwner})
	for _, v := range []string{pubsub.NS + "#auto-create", pubsub.NS + "#publish-options", pubsub.NS + "#access-presence", pubsub.NS + "#last-published"} {
		if !slices.Contains(Feature.AccountVars, v) {
			t.Errorf("account vars lack %s", v)
		}
	}
	if !slices.Contains(Feature.AccountIdentities, "<identity category='pubsub' type='pep'/>") {
		t.Error("no pubsub/pep identity (XEP-0163 §6.1)")
	}
}

func TestPublishAutoCreates(t *testing.T) {
	f := newFixture(t)
	eq(t, "nodes before", f.storedNodes(t), []string{})
	r := f.own(t, "set", publishXML(tuneNS, "t1", tune("Song"), ""))
	eq(t, "publish result", r.raw, "<iq type='result' to='alice@example.com/r1' id='o1'><pubsub xmlns='"+pubsub.NS+"'>"+
		"<publish node='"+tuneNS+"'><item id='t1'/></publish></pubsub></iq>")
	eq(t, "stored nodes", f.storedNodes(t), []string{tuneNS})
	eq(t, "auto-created with the PEP default", f.storedConfig(t, tuneNS), pubsub.DefaultPEP())
	its, err := f.srv.DB.PubSubItems(bg0, alice, tuneNS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(its) != 1 || its[0].ID != "t1" || its[0].Publisher != alice || !strings.Contains(its[0].Payload, "<title>Song</title>") {
		t.Fatalf("stored items %+v", its)
	}
	eq(t, "items", f.items(t, alice, tuneNS), []string{"t1=Song"})
	eq(t, "nobody to notify", f.notes(t), []string{})
	// Publishing the same id again replaces the item.
	f.publish(t, tuneNS, "t1", "Song 2")
	eq(t, "items after replace", f.items(t, alice, tuneNS), []string{"t1=Song 2"})
}

func TestPublishGeneratedID(t *testing.T) {
	f := newFixture(t)
	id1 := f.publish(t, tuneNS, "", "One")
	id2 := f.publish(t, tuneNS, "", "Two")
	if id1 == "" || id2 == "" || id1 == id2 {
		t.Fatalf("generated ids %q, %q: want two distinct non-empty ids", id1, id2)
	}
	// The default max_items is 1: only the newest stays, under the id the result named.
	eq(t, "items", f.items(t, alice, tuneNS), []string{id2 + "=Two"})
}

func TestPublishErrors(t *testing.T) {
	song := tune("x")
	for _, c := range []struct {
		name, from, typ, payload string
		etyp                     string
		cond                     stanza.Condition
		app                      string
	}{
		{"contact publishes", bobPhone, "set", publishXML("n", "i", song, ""), "auth", stanza.Forbidden, ""},
		{"stranger publishes", eveX, "set", publishXML("n", "i", song, ""), "auth", stanza.Forbidden, ""},
		{"no node attribute", alice, "set", ps("<publish><item id='i'>" + song + "</item></publish>"), "modify", stanza.BadRequest, "nodeid-required"},
		{"empty node attribute", alice, "set", ps("<publish node=''><item id='i'>" + song + "</item></publish>"), "modify", stanza.BadRequest, "nodeid-required"},
		{"no item", alice, "set", ps("<publish node='n'/>"), "modify", stanza.BadRequest, "item-required"},
		{"two items", alice, "set", ps("<publish node='n'><item id='a'>" + song + "</item><item id='b'>" + song + "</item></publish>"), "modify", stanza.BadRequest, "*"},
		{"two payload elements", alice, "set", ps("<publish node='n'><item id='a'>" + song + song + "</item></publish>"), "modify", stanza.BadRequest, "invalid-payload"},
		// XEP-0060 §7.1.3.6 says SHOULD payload-required; the service answers invalid-payload: only bad-request is asserted.
		{"item without payload", alice, "set", ps("<publish node='n'><item id='a'/></publish>"), "modify", stanza.BadRequest, "*"},
		{"options of the wrong FORM_TYPE", alice, "set", publishXML("n", "i", song, form(pubsub.NSNodeConfig, "pubsub#access_model", "open")), "modify", stanza.BadRequest, "invalid-options"},
		{"publish as get", alice, "get", publishXML("n", "i", song, ""), "modify", stanza.BadRequest, ""},
		{"unknown action", alice, "set", ps("<frobnicate node='n'/>"), "modify", stanza.BadRequest, ""},
		{"no action", alice, "set", ps(""), "modify", stanza.BadRequest, ""},
		{"subscription options", alice, "get", ps("<options node='n' jid='alice@example.com'/>"), "cancel", stanza.FeatureNotImplemented, "unsupported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.req(t, c.from, c.typ, c.payload).fails(t, c.name, c.etyp, c.cond, c.app)
			eq(t, "stored nodes", f.storedNodes(t), []string{})
			eq(t, "nodes in memory", len(f.p.nodes), 0)
			eq(t, "notifications", f.notes(t), []string{})
		})
	}
}

func TestPublishItemTooBig(t *testing.T) {
	fits := tune(strings.Repeat("a", 100))
	n, err := xmlstream.ParseNode(fits, pubsub.NS)
	if err != nil {
		t.Fatal(err)
	}
	limit := len(n.String())
	f := newFixture(t, func(c *config.Config) { c.PEP.MaxItemBytes = limit })
	f.publish(t, "fits", "a", strings.Repeat("a", 100))
	eq(t, "limit hits after a payload of exactly the limit", f.srv.LimitHits[LimitItemBytes], 0)

	f.own(t, "set", publishXML("big", "b", tune(strings.Repeat("a", 101)), "")).
		fails(t, "one byte over", "modify", stanza.NotAcceptable, "payload-too-big")
	eq(t, "limit name", LimitItemBytes, "pep_max_item_bytes")
	eq(t, "limit hits", f.srv.LimitHits["pep_max_item_bytes"], 1)
	eq(t, "node limit hits", f.srv.LimitHits["pep_max_nodes"], 0)
	eq(t, "the refused publication created nothing", f.storedNodes(t), []string{"fits"})
	f.own(t, "get", itemsReq("big", "", "")).fails(t, "items of big", "cancel", stanza.ItemNotFound, "")
	// Too big for an existing node: refused, the node keeps its item.
	f.own(t, "set", publishXML("fits", "c", tune(strings.Repeat("a", 200)), "")).
		fails(t, "over on existing", "modify", stanza.NotAcceptable, "payload-too-big")
	eq(t, "limit hits", f.srv.LimitHits["pep_max_item_bytes"], 2)
	eq(t, "items of fits", f.items(t, alice, "fits"), []string{"a=" + strings.Repeat("a", 100)})
}

func TestTooManyNodes(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.PEP.MaxNodes = 2 })
	f.publish(t, "n1", "a", "A")
	f.publish(t, "n2", "b", "B")
	f.own(t, "set", publishXML("n3", "c", tune("C"), "")).fails(t, "third node", "modify", stanza.PolicyViolation, "")
	eq(t, "limit name", LimitNodes, "pep_max_nodes")
	eq(t, "limit hits", f.srv.LimitHits["pep_max_nodes"], 1)
	// Existing nodes take publications still.
	f.publish(t, "n1", "a2", "A2")
	f.own(t, "set", ps("<create node='n4'/>")).fails(t, "create a third node", "modify", stanza.PolicyViolation, "")
	eq(t, "limit hits", f.srv.LimitHits["pep_max_nodes"], 2)
	eq(t, "stored nodes", f.storedNodes(t), []string{"n1", "n2"})
	// Deleting one makes room.
	f.own(t, "set", po("<delete node='n2'/>")).result(t, "delete n2")
	f.publish(t, "n3", "c", "C")
	eq(t, "stored nodes", f.storedNodes(t), []string{"n1", "n3"})
	eq(t, "limit hits", f.srv.LimitHits["pep_max_nodes"], 2)
}

func TestPublishOptions(t *testing.T) {
	f := newFixture(t, maxItems(10))

	// §7.1.5: auto-create takes the options as configuration; open access lets a stranger read.
	f.publish(t, "open", "o1", "Open", "pubsub#access_model", "open")
	eq(t, "stored access model", f.storedConfig(t, "open").AccessModel, pubsub.AccessOpen)
	eq(t, "stranger reads the open node", f.items(t, eveX, "open"), []string{"o1=Open"})
	// Without options, a stranger may not read (presence access).
	f.publish(t, tuneNS, "t1", "Song")
	f.other(t, eveX, "get", itemsReq(tuneNS, "", "")).fails(t, "stranger on presence node", "auth", stanza.NotAuthorized, "presence-subscription-required")

	// An existing node whose configuration differs: conflict + precondition-not-met, nothing published.
	f.own(t, "set", publishXML(tuneNS, "t2", tune("Other"), options("pubsub#access_model", "whitelist"))).
		fails(t, "mismatching access model", "cancel", stanza.Conflict, "precondition-not-met")
	f.own(t, "set", publishXML("open", "o2", tune("Other"), options("pubsub#access_model", "presence"))).
		fails(t, "mismatching access model on open", "cancel", stanza.Conflict, "precondition-not-met")
	eq(t, "items unchanged", f.items(t, alice, tuneNS), []string{"t1=Song"})
	eq(t, "config unchanged", f.storedConfig(t, tuneNS).AccessModel, pubsub.AccessPresence)
	// Matching options publish; a boolean matches in any spelling.
	f.publish(t, tuneNS, "t2", "Match", "pubsub#access_model", "presence", "pubsub#persist_items", "1")
	f.publish(t, tuneNS, "t3", "Match2", "pubsub#persist_items", "true")
	eq(t, "items", f.items(t, alice, tuneNS), []string{"t3=Match2"})

	// 'max' for max_items matches the service's bound, and only it.
	f.publish(t, "many", "m1", "M1", "pubsub#max_items", "max")
	eq(t, "stored max_items", f.storedConfig(t, "many").MaxItems, pubsub.MaxItemsMax)
	f.publish(t, "many", "m2", "M2", "pubsub#max_items", "max")
	f.publish(t, "many", "m3", "M3", "pubsub#max_items", "10") // the bound, spelt out
	f.own(t, "set", publishXML("many", "m4", tune("M4"), options("pubsub#max_items", "5"))).
		fails(t, "max_items 5 on a max node", "cancel", stanza.Conflict, "precondition-not-met")
	f.own(t, "set", publishXML(tuneNS, "t4", tune("T4"), options("pubsub#max_items", "max"))).
		fails(t, "max on a max_items=1 node", "cancel", stanza.Conflict, "precondition-not-met")
	f.publish(t, tuneNS, "t5", "T5", "pubsub#max_items", "1")
	eq(t, "many keeps all", f.items(t, alice, "many"), []string{"m1=M1", "m2=M2", "m3=M3"})
}

func TestItemsAccessModels(t *testing.T) {
	f := newFixture(t)
	f.publish(t, "presence", "p", "P")
	f.publish(t, "open", "o", "O", "pubsub#access_model", "open")
	f.publish(t, "whitelist", "w", "W", "pubsub#access_model", "whitelist")
	f.publish(t, "roster", "r", "R", "pubsub#access_model", "roster", "pubsub#roster_groups_allowed", "Friends")
	eq(t, "roster groups stored", f.storedConfig(t, "roster").RosterGroups, []string{"Friends"})

	type want struct {
		etyp string
		cond stanza.Condition // "" for a result
		app  string
	}
	ok := want{}
	presenceReq := want{"auth", stanza.NotAuthorized, "presence-subscription-required"}
	closed := want{"cancel", stanza.NotAllowed, "closed-node"}
	notInGroup := want{"auth", stanza.NotAuthorized, "not-in-roster-group"}
	outcast := want{"auth", stanza.Forbidden, ""}
	check := func(t *testing.T, node, from string, w want) {
		t.Helper()
		r := f.req(t, from, "get", itemsReq(node, "", ""))
		if w.cond == "" {
			if got := itemsOf(t, r, node); len(got) != 1 {
				t.Errorf("%s reads %s: %v", from, node, got)
			}
			return
		}
		r.fails(t, from+" reads "+node, w.etyp, w.cond, w.app)
	}
	for _, c := range []struct {
		node, from string
		w          want
	}{
		{"presence", alice, ok},
		{"presence", bobPhone, ok},       // both
		{"presence", carolPC, ok},        // from
		{"presence", daveD, presenceReq}, // to: dave does not see alice's presence
		{"presence", eveX, presenceReq},
		{"open", alice, ok},
		{"open", bobPhone, ok},
		{"open", daveD, ok},
		{"open", eveX, ok},
		{"whitelist", alice, ok},
		{"whitelist", bobPhone, closed},
		{"whitelist", carolPC, closed},
		{"whitelist", eveX, closed},
		{"roster", alice, ok},
		{"roster", bobPhone, ok},        // in Friends
		{"roster", carolPC, notInGroup}, // in Work
		{"roster", daveD, notInGroup},   // in no group
		{"roster", eveX, notInGroup},    // not in the roster
	} {
		check(t, c.node, c.from, c.w)
	}

	// The owner manages affiliations (§8.9): members read a whitelist node, publishers too; outcasts nothing.
	f.setAffiliation(t, "whitelist", bob, "member")
	f.setAffiliation(t, "whitelist", carolPC, "publisher") // stored for the bare JID
	f.setAffiliation(t, "open", eve, "outcast")
	f.setAffiliation(t, "presence", carol, "outcast")
	f.setAffiliation(t, "roster", bob, "outcast")
	for _, c := range []struct {
		node, from string
		w          want
	}{
		{"whitelist", bobPhone, ok},
		{"whitelist", bobTablet, ok},
		{"whitelist", carolPC, ok},
		{"whitelist", daveD, closed},
		{"open", eveX, outcast},
		{"open", daveD, ok},
		{"presence", carolPC, outcast},
		{"presence", bobPhone, ok},
		{"roster", bobPhone, outcast},
	} {
		check(t, c.node, c.from, c.w)
	}

	p := f.own(t, "get", po("<affiliations node='whitelist'/>")).result(t, "affiliations of whitelist")
	var affs []string
	for _, a := range p.Child(pubsub.NSOwner, "affiliations").ChildrenNamed(pubsub.NSOwner, "affiliation") {
		affs = append(affs, a.Attr("jid")+" "+a.Attr("affiliation"))
	}
	eq(t, "affiliations", affs, []string{alice + " owner", bob + " member", carol + " publisher"})
	// A requester's own affiliations (§5.7).
	p = f.other(t, bobPhone, "get", ps("<affiliations/>")).result(t, "bob's affiliations")
	affs = nil
	for _, a := range p.Child(pubsub.NS, "affiliations").ChildrenNamed(pubsub.NS, "affiliation") {
		affs = append(affs, a.Attr("node")+" "+a.Attr("affiliation"))
	}
	eq(t, "bob's affiliations", affs, []string{"roster outcast", "whitelist member"})

	// Back to none: bob is out of the whitelist again.
	f.setAffiliation(t, "whitelist", bob, "none")
	check(t, "whitelist", bobPhone, closed)

	// Affiliation errors.
	f.own(t, "set", po("<affiliations node='whitelist'><affiliation jid='"+alice+"' affiliation='member'/></affiliations>")).
		fails(t, "the owner's own affiliation", "", stanza.NotAcceptable, "")
	f.own(t, "set", po("<affiliations node='whitelist'><affiliation jid='"+bob+"' affiliation='admin'/></affiliations>")).
		fails(t, "unknown affiliation", "", stanza.BadRequest, "")
	f.own(t, "set", po("<affiliations node='whitelist'><affiliation jid='a@b@c' affiliation='member'/></affiliations>")).
		fails(t, "bad jid", "", stanza.BadRequest, "")
	f.own(t, "set", po("<affiliations node='nope'><affiliation jid='"+bob+"' affiliation='member'/></affiliations>")).
		fails(t, "missing node", "cancel", stanza.ItemNotFound, "")
	f.other(t, bobPhone, "set", po("<affiliations node='whitelist'><affiliation jid='"+bob+"' affiliation='member'/></affiliations>")).
		fails(t, "a contact manages affiliations", "auth", stanza.Forbidden, "")
	check(t, "whitelist", bobPhone, closed)
}

func TestItemsRetrieval(t *testing.T) {
	f := newFixture(t, maxItems(10))
	for i := 1; i <= 5; i++ {
		f.publish(t, "feed", "i"+strconv.Itoa(i), "T"+strconv.Itoa(i), "pubsub#max_items", "max")
	}
	eq(t, "all items, in publication order", f.items(t, alice, "feed"), []string{"i1=T1", "i2=T2", "i3=T3", "i4=T4", "i5=T5"})
	eq(t, "a contact reads them", f.items(t, bobPhone, "feed"), []string{"i1=T1", "i2=T2", "i3=T3", "i4=T4", "i5=T5"})
	eq(t, "max_items=2: the two newest", itemsOf(t, f.own(t, "get", itemsReq("feed", " max_items='2'", "")), "feed"), []string{"i4=T4", "i5=T5"})
	eq(t, "max_items=10", itemsOf(t, f.own(t, "get", itemsReq("feed", " max_items='10'", "")), "feed"), []string{"i1=T1", "i2=T2", "i3=T3", "i4=T4", "i5=T5"})
	eq(t, "by id (unknown ids left out)", itemsOf(t, f.other(t, carolPC, "get", itemsReq("feed", "", "<item id='i2'/><item id='nope'/><item id='i5'/>")), "feed"),
		[]string{"i2=T2", "i5=T5"})
	eq(t, "by an unknown id", itemsOf(t, f.own(t, "get", itemsReq("feed", "", "<item id='nope'/>")), "feed"), []string{})
	for _, m := range []string{"0", "-1", "x"} {
		f.own(t, "get", itemsReq("feed", " max_items='"+m+"'", "")).fails(t, "max_items="+m, "modify", stanza.BadRequest, "")
	}
	f.own(t, "get", itemsReq("nope", "", "")).fails(t, "missing node", "cancel", stanza.ItemNotFound, "")
	f.other(t, bobPhone, "get", itemsReq("nope", "", "")).fails(t, "missing node, contact", "cancel", stanza.ItemNotFound, "")
	f.own(t, "get", ps("<items/>")).fails(t, "no node", "modify", stanza.BadRequest, "nodeid-required")
	f.own(t, "set", itemsReq("feed", "", "")).fails(t, "items as set", "modify", stanza.BadRequest, "")

	// Republishing an id replaces it and makes it the newest.
	f.publish(t, "feed", "i3", "T3b")
	eq(t, "after republish", len(f.items(t, alice, "feed")), 5)
	eq(t, "the newest", itemsOf(t, f.own(t, "get", itemsReq("feed", " max_items='1'", "")), "feed"), []string{"i3=T3b"})

	// The node keeps at most the service's bound under 'max'.
	for i := 6; i <= 13; i++ {
		f.publish(t, "feed", "i"+strconv.Itoa(i), "T"+strconv.Itoa(i))
	}
	got := f.items(t, alice, "feed")
	if len(got) != 10 || got[9] != "i13=T13" || slices.Contains(got, "i1=T1") {
		t.Errorf("items after 13 publications under max=10: %v", got)
	}
	// The default node keeps one.
	f.publish(t, tuneNS, "a", "A")
	f.publish(t, tuneNS, "b", "B")
	eq(t, "default max_items", f.items(t, alice, tuneNS), []string{"b=B"})
}

func TestNotificationsFollowCaps(t *testing.T) {
	f := newFixture(t)
	f.arrive(t, bobPhone, "V1")
	eq(t, "watched", f.u.Watched, []string{"sha-1 V1"})
	f.arrive(t, carolPC, "V2")
	f.arrive(t, daveD, "V1")                                                                                           // the same caps: watched once
	f.arrive(t, eveX, "V3")                                                                                            // not a contact: ignored
	f.inbound(t, "<presence from='"+bob+"/laptop' to='"+alice+"'/>")                                                   // no caps
	f.inbound(t, "<presence from='"+bob+"/old' to='"+alice+"'><c xmlns='"+caps.NS+"' node='n' ver='1.0'/></presence>") // legacy caps
	f.inbound(t, "<message from='"+bobPhone+"' to='"+alice+"' type='chat'><body>hi</body></message>")
	eq(t, "watched", f.u.Watched, []string{"sha-1 V1", "sha-1 V2"})
	if f.p.peers[eveX] != nil {
		t.Error("a stranger's presence was recorded")
	}
	f.capsKnown("V1", tuneNS)
	f.capsKnown("V2", moodNS)
	eq(t, "nothing published yet", f.notes(t), []string{})

	f.publish(t, tuneNS, "t1", "Song")
	// bob asked tune+notify; carol did not; dave may not see alice's presence; eve is not a contact.
	eq(t, "tune notifications", f.notes(t), []string{bobPhone + " items " + tuneNS + " t1=Song"})
	f.publish(t, moodNS, "m1", "Mood")
	eq(t, "mood notifications", f.notes(t), []string{carolPC + " items " + moodNS + " m1=Mood"})

	// The payload goes whole, in a headline message from the bare JID.
	f.publish(t, tuneNS, "t2", "Song 2")
	if len(f.u.Routed) != 1 {
		t.Fatalf("routed %d", len(f.u.Routed))
	}
	n := featuretest.Node(t, f.u.Routed[0])
	item := n.Child(pubsub.NSEvent, "event").Child(pubsub.NSEvent, "items").Child(pubsub.NSEvent, "item")
	if item == nil || item.Attr("id") != "t2" || titleOf(item) != "Song 2" || n.Child(stanza.NSDelay, "delay") != nil {
		t.Errorf("live notification: %s", f.u.Routed[0].Raw)
	}
	f.u.Routed = nil

	// On an open node dave (to) and a caps-less resource get nothing without +notify; dave with it does.
	f.publish(t, "open", "o1", "O", "pubsub#access_model", "open")
	eq(t, "open node without interest", f.notes(t), []string{})
	f.arrive(t, daveD, "V4")
	f.capsKnown("V4", "open")
	eq(t, "last item of open to dave", f.notes(t), []string{daveD + " items open o1=O (delayed)"})
	f.publish(t, "open", "o2", "O2")
	eq(t, "open notifications", f.notes(t), []string{daveD + " items open o2=O2"})

	// Unavailable presence removes the peer.
	f.leave(t, bobPhone)
	f.publish(t, tuneNS, "t3", "Song 3")
	eq(t, "after bob left", f.notes(t), []string{})
	if f.p.peers[bobPhone] != nil {
		t.Error("peer kept after unavailable presence")
	}
	// An error presence too.
	f.inbound(t, "<presence from='"+daveD+"' to='"+alice+"' type='error'/>")
	f.publish(t, "open", "o3", "O3")
	eq(t, "after dave's error presence", f.notes(t), []string{})
}

func TestLastItemOnAvailability(t *testing.T) {
	f := newFixture(t)
	f.arrive(t, bobPhone, "V1")
	f.capsKnown("V1", tuneNS)
	eq(t, "no items yet", f.notes(t), []string{})
	f.publish(t, tuneNS, "t1", "Song")
	eq(t, "live", f.notes(t), []string{bobPhone + " items " + tuneNS + " t1=Song"})

	// A +notify contact becoming available after the publication gets the last item, delayed (XEP-0163 §4.3.2).
	f.arrive(t, bobTablet, "V1")
	eq(t, "no second caps watch for known caps", f.u.Watched, []string{"sha-1 V1"})
	eq(t, "last item to the tablet", f.notes(t), []string{bobTablet + " items " + tuneNS + " t1=Song (delayed)"})
	// A presence update is not a new availability.
	f.inbound(t, "<presence from='"+bobTablet+"' to='"+alice+"'><show>away</show><c xmlns='"+caps.NS+"' hash='sha-1' node='https://client.example' ver='V1'/></presence>")
	eq(t, "presence update", f.notes(t), []string{})

	// Caps not yet known: WatchCaps first, the last item once they are.
	f.arrive(t, carolPC, "V2")
	eq(t, "watched", f.u.Watched, []string{"sha-1 V1", "sha-1 V2"})
	eq(t, "before the caps are known", f.notes(t), []string{})
	f.capsKnown("V2", tuneNS, moodNS)
	eq(t, "after the caps are known", f.notes(t), []string{carolPC + " items " + tuneNS + " t1=Song (delayed)"})
	f.capsKnown("V2", tuneNS, moodNS) // told once per availability
	eq(t, "caps known again", f.notes(t), []string{})

	// Neither a stranger nor a contact the access model refuses.
	f.arrive(t, eveX, "V1")
	f.arrive(t, daveD, "V1")
	eq(t, "eve and dave", f.notes(t), []string{})

	// Availability again after unavailable: the last item again, the newest one.
	f.leave(t, bobPhone)
	f.publish(t, tuneNS, "t2", "Song 2")
	eq(t, "t2", f.notes(t), []string{bobTablet + " items " + tuneNS + " t2=Song 2", carolPC + " items " + tuneNS + " t2=Song 2"})
	f.arrive(t, bobPhone, "V1")
	eq(t, "back", f.notes(t), []string{bobPhone + " items " + tuneNS + " t2=Song 2 (delayed)"})

	// New caps without the interest: no more notifications for that resource.
	f.arrive(t, bobTablet, "V3")
	eq(t, "watched V3", f.u.Watched, []string{"sha-1 V1", "sha-1 V2", "sha-1 V3"})
	f.capsKnown("V3", moodNS)
	f.publish(t, tuneNS, "t3", "Song 3")
	eq(t, "t3", f.notes(t), []string{bobPhone + " items " + tuneNS + " t3=Song 3", carolPC + " items " + tuneNS + " t3=Song 3"})

	// send_last_published_item never: no last item on availability.
	f.publish(t, "quiet", "q1", "Q", "pubsub#send_last_published_item", "never")
	f.arrive(t, daveD+"2", "V5")
	f.arrive(t, bob+"/new", "V5")
	f.capsKnown("V5", "quiet")
	eq(t, "send_last never", f.notes(t), []string{})
	f.publish(t, "quiet", "q2", "Q2")
	eq(t, "quiet live", f.notes(t), []string{bob + "/new items quiet q2=Q2"})
}

func TestOwnResources(t *testing.T) {
	f := newFixture(t)
	r2 := f.u.Online("r2", 0)
	r2.Presence = featuretest.Stanza(t, "<presence from='"+alice+"/r2'><c xmlns='"+caps.NS+"' hash='sha-1' node='n' ver='OWN'/></presence>")
	f.p.PresenceChanged(r2, true)
	eq(t, "watched", f.u.Watched, []string{"sha-1 OWN"})
	f.capsKnown("OWN", tuneNS)
	// Own presence reaching the user actor as inbound is not taken for a contact's.
	f.inbound(t, capsPresence(alice+"/r9", "OTHER"))
	eq(t, "watched", f.u.Watched, []string{"sha-1 OWN"})

	f.publish(t, tuneNS, "t1", "Song")
	eq(t, "to r2", f.notes(t), []string{alice + "/r2 items " + tuneNS + " t1=Song"})
	// The own resources get the last item on availability too, whatever the access model.
	f.publish(t, "private", "p1", "P", "pubsub#access_model", "whitelist")
	r3 := feature.Resource{Full: featuretest.MustJID(alice + "/r3"), Available: true,
		Presence: featuretest.Stanza(t, "<presence from='"+alice+"/r3'><c xmlns='"+caps.NS+"' hash='sha-1' node='n' ver='OWN2'/></presence>")}
	f.p.PresenceChanged(r3, true)
	f.capsKnown("OWN2", "private")
	eq(t, "last item to r3", f.notes(t), []string{alice + "/r3 items private p1=P (delayed)"})

	f.p.Dropped(r2)
	r3.Available, r3.Presence = false, nil
	f.p.PresenceChanged(r3, false)
	f.publish(t, tuneNS, "t2", "Song 2")
	f.publish(t, "private", "p2", "P2")
	eq(t, "after r2 dropped and r3 went away", f.notes(t), []string{})
}

func TestRetract(t *testing.T) {
	f := newFixture(t, maxItems(10))
	for _, id := range []string{"i1", "i2", "i3"} {
		f.publish(t, "feed", id, strings.ToUpper(id), "pubsub#max_items", "max")
	}
	f.arrive(t, bobPhone, "V1")
	f.capsKnown("V1", "feed", "quiet")
	eq(t, "last item", f.notes(t), []string{bobPhone + " items feed i3=I3 (delayed)"})

	f.own(t, "set", ps("<retract node='feed'><item id='i1'/></retract>")).result(t, "retract i1")
	eq(t, "retract notification (notify_retract)", f.notes(t), []string{bobPhone + " items feed -i1"})
	eq(t, "items", f.items(t, alice, "feed"), []string{"i2=I2", "i3=I3"})

	f.own(t, "set", ps("<retract node='feed'><item id='zz'/></retract>")).fails(t, "unknown id", "cancel", stanza.ItemNotFound, "")
	f.own(t, "set", ps("<retract node='feed'><item/></retract>")).fails(t, "no id", "modify", stanza.BadRequest, "item-required")
	f.own(t, "set", ps("<retract node='feed'/>")).fails(t, "no item", "modify", stanza.BadRequest, "item-required")
	f.own(t, "set", ps("<retract><item id='i2'/></retract>")).fails(t, "no node", "modify", stanza.BadRequest, "nodeid-required")
	f.own(t, "set", ps("<retract node='nope'><item id='i2'/></retract>")).fails(t, "missing node", "cancel", stanza.ItemNotFound, "")
	f.other(t, bobPhone, "set", ps("<retract node='feed'><item id='i2'/></retract>")).fails(t, "a contact retracts", "auth", stanza.Forbidden, "")
	eq(t, "no notifications for failed retractions", f.notes(t), []string{})
	eq(t, "items", f.items(t, alice, "feed"), []string{"i2=I2", "i3=I3"})

	// Retracting the newest: the previous one is the last item now.
	f.own(t, "set", ps("<retract node='feed'><item id='i3'/></retract>")).result(t, "retract i3")
	eq(t, "retract i3", f.notes(t), []string{bobPhone + " items feed -i3"})
	f.arrive(t, bobTablet, "V1")
	eq(t, "last item after retracting the newest", f.notes(t), []string{bobTablet + " items feed i2=I2 (delayed)"})

	// notify_retract off: silent unless the request asks notify (§7.2.2.1).
	f.publish(t, "quiet", "q1", "Q1", "pubsub#notify_retract", "0", "pubsub#max_items", "max")
	f.publish(t, "quiet", "q2", "Q2")
	f.publish(t, "quiet", "q3", "Q3")
	f.notes(t)
	f.own(t, "set", ps("<retract node='quiet'><item id='q1'/></retract>")).result(t, "retract q1")
	eq(t, "notify_retract off", f.notes(t), []string{})
	f.own(t, "set", ps("<retract node='quiet' notify='true'><item id='q2'/></retract>")).result(t, "retract q2")
	eq(t, "notify='true'", f.notes(t), []string{bobPhone + " items quiet -q2", bobTablet + " items quiet -q2"})
	f.own(t, "set", ps("<retract node='quiet' notify='false'><item id='q3'/></retract>")).result(t, "retract q3")
	eq(t, "notify='false'", f.notes(t), []string{})
}

func TestDeleteNode(t *testing.T) {
	f := newFixture(t)
	f.publish(t, tuneNS, "t1", "Song")
	f.arrive(t, bobPhone, "V1")
	f.capsKnown("V1", tuneNS, "quiet")
	f.notes(t)

	f.other(t, bobPhone, "set", po("<delete node='"+tuneNS+"'/>")).fails(t, "a contact deletes", "auth", stanza.Forbidden, "")
	f.own(t, "set", po("<delete node='"+tuneNS+"'/>")).result(t, "delete")
	eq(t, "delete notification", f.notes(t), []string{bobPhone + " delete " + tuneNS})
	eq(t, "stored nodes", f.storedNodes(t), []string{})
	f.own(t, "get", itemsReq(tuneNS, "", "")).fails(t, "items of a deleted node", "cancel", stanza.ItemNotFound, "")
	f.own(t, "set", po("<delete node='"+tuneNS+"'/>")).fails(t, "delete again", "cancel", stanza.ItemNotFound, "")
	f.own(t, "set", po("<delete/>")).fails(t, "delete without node", "modify", stanza.BadRequest, "nodeid-required")
	its, err := f.srv.DB.PubSubItems(bg0, alice, tuneNS, 0)
	if err != nil || len(its) != 0 {
		t.Errorf("items left in storage: %v %v", its, err)
	}
	// Publishing again creates a fresh node.
	f.publish(t, tuneNS, "t2", "New")
	eq(t, "fresh node", f.items(t, alice, tuneNS), []string{"t2=New"})
	eq(t, "live on the new node", f.notes(t), []string{bobPhone + " items " + tuneNS + " t2=New"})

	// notify_delete off.
	f.publish(t, "quiet", "q", "Q", "pubsub#notify_delete", "false")
	f.notes(t)
	f.own(t, "set", po("<delete node='quiet'/>")).result(t, "delete quiet")
	eq(t, "notify_delete off", f.notes(t), []string{})
}

func TestSubscribe(t *testing.T) {
	f := newFixture(t)
	f.publish(t, tuneNS, "t1", "Song")

	sub := func(from, jidAttr string) reply {
		return f.other(t, from, "set", ps("<subscribe node='"+tuneNS+"' jid='"+jidAttr+"'/>"))
	}
	p := sub(carolPC, carolPC).result(t, "carol subscribes")
	s := p.Child(pubsub.NS, "subscription")
	if s == nil || s.Attr("node") != tuneNS || s.Attr("jid") != carolPC || s.Attr("subscription") != "subscribed" || s.Attr("subid") == "" {
		t.Fatalf("subscribe result: %v", p)
	}
	subid := s.Attr("subid")
	eq(t, "last item on subscription (§6.1.7)", f.notes(t), []string{carolPC + " items " + tuneNS + " t1=Song (delayed)"})

	f.publish(t, tuneNS, "t2", "Song 2")
	eq(t, "to the subscriber", f.notes(t), []string{carolPC + " items " + tuneNS + " t2=Song 2"})

	// The subscriber's own subscriptions (§5.6) and the owner's view (§8.8.1).
	p = f.other(t, carolPC, "get", ps("<subscriptions/>")).result(t, "carol's subscriptions")
	ss := p.Child(pubsub.NS, "subscriptions").ChildrenNamed(pubsub.NS, "subscription")
	if len(ss) != 1 || ss[0].Attr("node") != tuneNS || ss[0].Attr("subid") != subid || ss[0].Attr("subscription") != "subscribed" {
		t.Errorf("carol's subscriptions: %v", p)
	}
	p = f.other(t, bobPhone, "get", ps("<subscriptions/>")).result(t, "bob's subscriptions")
	eq(t, "bob has none", len(p.Child(pubsub.NS, "subscriptions").Elements()), 0)
	p = f.own(t, "get", po("<subscriptions node='"+tuneNS+"'/>")).result(t, "owner's subscriptions")
	ss = p.Child(pubsub.NSOwner, "subscriptions").ChildrenNamed(pubsub.NSOwner, "subscription")
	if len(ss) != 1 || ss[0].Attr("jid") != carolPC || ss[0].Attr("subid") != subid {
		t.Errorf("owner's subscriptions: %v", p)
	}
	f.other(t, carolPC, "get", po("<subscriptions node='"+tuneNS+"'/>")).fails(t, "a contact manages subscriptions", "auth", stanza.Forbidden, "")

	// Also +notify with the same full JID: one notification, not two.
	f.arrive(t, carolPC, "V1")
	f.capsKnown("V1", tuneNS)
	f.notes(t)
	f.publish(t, tuneNS, "t3", "Song 3")
	eq(t, "subscriber with +notify", f.notes(t), []string{carolPC + " items " + tuneNS + " t3=Song 3"})
	f.leave(t, carolPC)

	// Errors.
	sub(eveX, eveX).fails(t, "a stranger on a presence node", "auth", stanza.NotAuthorized, "presence-subscription-required")
	sub(daveD, daveD).fails(t, "dave (to)", "auth", stanza.NotAuthorized, "presence-subscription-required")
	sub(carolPC, bobPhone).fails(t, "someone else's jid", "modify", stanza.BadRequest, "invalid-jid")
	f.other(t, carolPC, "set", ps("<subscribe node='"+tuneNS+"'/>")).fails(t, "no jid", "modify", stanza.BadRequest, "invalid-jid")
	f.other(t, carolPC, "set", ps("<subscribe node='nope' jid='"+carolPC+"'/>")).fails(t, "missing node", "cancel", stanza.ItemNotFound, "")
	eq(t, "no notifications for failed subscriptions", f.notes(t), []string{})

	// Unsubscribe (§6.2).
	unsub := func(extra string) reply {
		return f.other(t, carolPC, "set", ps("<unsubscribe node='"+tuneNS+"' jid='"+carolPC+"'"+extra+"/>"))
	}
	unsub(" subid='wrong'").fails(t, "wrong subid", "modify", stanza.NotAcceptable, "invalid-subid")
	f.other(t, eveX, "set", ps("<unsubscribe node='"+tuneNS+"' jid='"+carolPC+"'/>")).fails(t, "someone else unsubscribes carol", "modify", stanza.BadRequest, "invalid-jid")
	unsub(" subid='"+subid+"'").result(t, "unsubscribe")
	f.publish(t, tuneNS, "t4", "Song 4")
	eq(t, "after unsubscribe", f.notes(t), []string{})
	unsub("").fails(t, "unsubscribe again", "", stanza.UnexpectedRequest, "not-subscribed")

	// A bare-JID subscription: to the bare JID, and no second copy to a +notify resource of it.
	p = sub(bobPhone, bob).result(t, "bob subscribes his bare JID")
	eq(t, "bob's last item", f.notes(t), []string{bob + " items " + tuneNS + " t4=Song 4 (delayed)"})
	f.arrive(t, bobPhone, "V1")
	f.notes(t)
	f.publish(t, tuneNS, "t5", "Song 5")
	eq(t, "bare subscription", f.notes(t), []string{bob + " items " + tuneNS + " t5=Song 5"})

	// An outcast hears nothing more, subscribed or not.
	f.setAffiliation(t, tuneNS, bob, "outcast")
	f.publish(t, tuneNS, "t6", "Song 6")
	eq(t, "after outcast", f.notes(t), []string{})
	sub(bobPhone, bobPhone).fails(t, "an outcast subscribes", "auth", stanza.Forbidden, "")
	// Being made outcast removed bob's subscription (§4.1): back to none, he is a +notify contact only.
	f.setAffiliation(t, tuneNS, bob, "none")
	p = f.own(t, "get", po("<subscriptions node='"+tuneNS+"'/>")).result(t, "owner's subscriptions after outcast")
	eq(t, "subscriptions after outcast", len(p.Child(pubsub.NSOwner, "subscriptions").Elements()), 0)
	f.publish(t, tuneNS, "t7", "Song 7")
	eq(t, "after outcast and back", f.notes(t), []string{bobPhone + " items " + tuneNS + " t7=Song 7"})

	// On an open node a stranger may subscribe.
	f.publish(t, "open", "o1", "O", "pubsub#access_model", "open")
	f.other(t, eveX, "set", ps("<subscribe node='open' jid='"+eveX+"'/>")).result(t, "eve on open")
	eq(t, "eve's last item", f.notes(t), []string{eveX + " items open o1=O (delayed)"})
	f.publish(t, "open", "o2", "O2")
	eq(t, "eve notified", f.notes(t), []string{eveX + " items open o2=O2"})
}

func TestConfigure(t *testing.T) {
	f := newFixture(t, maxItems(10))
	f.publish(t, tuneNS, "t1", "Song")

	configureGet := func() dataform.Form {
		t.Helper()
		p := f.own(t, "get", po("<configure node='"+tuneNS+"'/>")).result(t, "configure get")
		c := p.Child(pubsub.NSOwner, "configure")
		if c == nil || c.Attr("node") != tuneNS || dataform.Find(c) == nil {
			t.Fatalf("configure result: %v", p)
		}
		return dataform.Parse(dataform.Find(c))
	}
	fm := configureGet()
	eq(t, "form type", fm.Type, "form")
	eq(t, "FORM_TYPE", fm.FormType, "http://jabber.org/protocol/pubsub#node_config")
	eq(t, "access_model", fm.One("pubsub#access_model"), "presence")
	eq(t, "max_items", fm.One("pubsub#max_items"), "1")
	eq(t, "send_last_published_item", fm.One("pubsub#send_last_published_item"), "on_sub_and_presence")
	// The roster groups are offered for roster access.
	p := f.own(t, "get", po("<configure node='"+tuneNS+"'/>")).result(t, "configure get")
	var groups []string
	for _, fl := range dataform.Find(p.Child(pubsub.NSOwner, "configure")).ChildrenNamed(dataform.NS, "field") {
		if fl.Attr("var") == "pubsub#roster_groups_allowed" {
			for _, o := range fl.ChildrenNamed(dataform.NS, "option") {
				groups = append(groups, o.Child(dataform.NS, "value").TextContent())
			}
		}
	}
	sort.Strings(groups)
	eq(t, "roster group options", groups, []string{"Friends", "Work"})

	f.other(t, bobPhone, "get", po("<configure node='"+tuneNS+"'/>")).fails(t, "a contact reads the configuration", "auth", stanza.Forbidden, "")
	f.own(t, "get", po("<configure node='nope'/>")).fails(t, "missing node", "cancel", stanza.ItemNotFound, "")
	f.own(t, "get", po("<configure/>")).fails(t, "no node", "modify", stanza.BadRequest, "nodeid-required")

	set := func(x string) reply { return f.own(t, "set", po("<configure node='"+tuneNS+"'>"+x+"</configure>")) }
	set(form(pubsub.NSNodeConfig, "pubsub#access_model", "bogus")).fails(t, "unknown access model", "modify", stanza.NotAcceptable, "")
	set(form(pubsub.NSNodeConfig, "pubsub#frobnicate", "1")).fails(t, "unknown field", "modify", stanza.NotAcceptable, "")
	set(form(pubsub.NSNodeConfig, "pubsub#max_items", "11")).fails(t, "max_items over the bound", "modify", stanza.NotAcceptable, "")
	set(form(pubsub.NSPublishOptions, "pubsub#access_model", "open")).fails(t, "wrong FORM_TYPE", "modify", stanza.BadRequest, "")
	f.other(t, bobPhone, "set", po("<configure node='"+tuneNS+"'>"+form(pubsub.NSNodeConfig, "pubsub#access_model", "open")+"</configure>")).
		fails(t, "a contact configures", "auth", stanza.Forbidden, "")
	eq(t, "unchanged", configureGet().One("pubsub#access_model"), "presence")
	eq(t, "stored unchanged", f.storedConfig(t, tuneNS), pubsub.DefaultPEP())
	f.other(t, eveX, "get", itemsReq(tuneNS, "", "")).fails(t, "stranger", "auth", stanza.NotAuthorized, "presence-subscription-required")

	set("<x xmlns='jabber:x:data' type='cancel'/>").result(t, "cancelled form")
	eq(t, "unchanged after cancel", configureGet().One("pubsub#access_model"), "presence")

	set(form(pubsub.NSNodeConfig, "pubsub#access_model", "open", "pubsub#title", "My tune")).result(t, "configure open")
	fm = configureGet()
	eq(t, "access_model now", fm.One("pubsub#access_model"), "open")
	eq(t, "title now", fm.One("pubsub#title"), "My tune")
	eq(t, "stored access model", f.storedConfig(t, tuneNS).AccessModel, pubsub.AccessOpen)
	eq(t, "stranger reads", f.items(t, eveX, tuneNS), []string{"t1=Song"})

	// Shrinking max_items trims now.
	for i := 1; i <= 5; i++ {
		f.publish(t, "feed", "i"+strconv.Itoa(i), "T"+strconv.Itoa(i), "pubsub#max_items", "10")
	}
	f.own(t, "set", po("<configure node='feed'>"+form(pubsub.NSNodeConfig, "pubsub#max_items", "2")+"</configure>")).result(t, "shrink")
	eq(t, "after shrinking", f.items(t, alice, "feed"), []string{"i4=T4", "i5=T5"})
	its, _ := f.srv.DB.PubSubItems(bg0, alice, "feed", 0)
	eq(t, "stored after shrinking", len(its), 2)

	// notify_config: the change is announced.
	f.arrive(t, bobPhone, "V1")
	f.capsKnown("V1", tuneNS)
	f.notes(t)
	set(form(pubsub.NSNodeConfig, "pubsub#notify_config", "1")).result(t, "notify_config on")
	eq(t, "configuration notification", f.notes(t), []string{bobPhone + " configuration " + tuneNS})
	set(form(pubsub.NSNodeConfig, "pubsub#notify_config", "0")).result(t, "notify_config off")
	eq(t, "no configuration notification", f.notes(t), []string{})

	// The default configuration (§8.3).
	p = f.own(t, "get", po("<default/>")).result(t, "default")
	d := p.Child(pubsub.NSOwner, "default")
	if d == nil || dataform.Find(d) == nil {
		t.Fatalf("default: %v", p)
	}
	df := dataform.Parse(dataform.Find(d))
	eq(t, "default FORM_TYPE", df.FormType, pubsub.NSNodeConfig)
	eq(t, "default access model", df.One("pubsub#access_model"), "presence")

	// Create with a configuration (§8.1.3), and the create errors.
	f.own(t, "set", ps("<create node='made'/><configure>"+form(pubsub.NSNodeConfig, "pubsub#access_model", "whitelist")+"</configure>")).result(t, "create and configure")
	eq(t, "created config", f.storedConfig(t, "made").AccessModel, pubsub.AccessWhitelist)
	f.own(t, "set", ps("<create node='made'/>")).fails(t, "create existing", "cancel", stanza.Conflict, "")
	f.own(t, "set", ps("<create/>")).fails(t, "instant node", "modify", stanza.NotAcceptable, "nodeid-required")
	f.other(t, bobPhone, "set", ps("<create node='bobs'/>")).fails(t, "a contact creates", "auth", stanza.Forbidden, "")
	f.own(t, "set", ps("<create node='bad'/><configure>"+form(pubsub.NSNodeConfig, "pubsub#access_model", "bogus")+"</configure>")).
		fails(t, "create with a bad configuration", "modify", stanza.NotAcceptable, "")
	eq(t, "stored nodes", f.storedNodes(t), []string{"feed", tuneNS, "made"})
}

func TestPurge(t *testing.T) {
	f := newFixture(t, maxItems(10))
	for _, id := range []string{"i1", "i2", "i3"} {
		f.publish(t, "feed", id, strings.ToUpper(id), "pubsub#max_items", "max")
	}
	f.arrive(t, bobPhone, "V1")
	f.capsKnown("V1", "feed")
	f.notes(t)

	f.other(t, bobPhone, "set", po("<purge node='feed'/>")).fails(t, "a contact purges", "auth", stanza.Forbidden, "")
	f.own(t, "set", po("<purge node='nope'/>")).fails(t, "missing node", "cancel", stanza.ItemNotFound, "")
	eq(t, "items before", len(f.items(t, alice, "feed")), 3)

	f.own(t, "set", po("<purge node='feed'/>")).result(t, "purge")
	eq(t, "purge notification", f.notes(t), []string{bobPhone + " purge feed"})
	eq(t, "items after purge", f.items(t, alice, "feed"), []string{})
	its, err := f.srv.DB.PubSubItems(bg0, alice, "feed", 0)
	if err != nil || len(its) != 0 {
		t.Errorf("stored after purge: %v %v", its, err)
	}
	eq(t, "the node stays", f.storedNodes(t), []string{"feed"})
	// Nothing to send on availability now.
	f.arrive(t, bobTablet, "V1")
	eq(t, "no last item after purge", f.notes(t), []string{})
	f.publish(t, "feed", "i4", "I4")
	eq(t, "items", f.items(t, alice, "feed"), []string{"i4=I4"})
}

func TestAccountItems(t *testing.T) {
	f := newFixture(t)
	f.publish(t, "o", "1", "O", "pubsub#access_model", "open")
	f.publish(t, "p", "1", "P")
	f.publish(t, "r", "1", "R", "pubsub#access_model", "roster", "pubsub#roster_groups_allowed", "Friends")
	f.publish(t, "w", "1", "W", "pubsub#access_model", "whitelist")
	list := func(nodes ...string) string {
		s := ""
		for _, n := range nodes {
			s += "<item jid='" + alice + "' node='" + n + "'/>"
		}
		return s
	}
	for _, c := range []struct {
		requester string
		want      string
	}{
		{alice, list("o", "p", "r", "w")},
		{alice + "/r1", list("o", "p", "r", "w")},
		{bobPhone, list("o", "p", "r")},
		{carolPC, list("o", "p")},
		{daveD, list("o")},
		{eveX, list("o")},
		{eve, list("o")},
	} {
		eq(t, "disco#items for "+c.requester, f.p.AccountItems(featuretest.MustJID(c.requester)), c.want)
	}
	f.setAffiliation(t, "w", bob, "member")
	f.setAffiliation(t, "o", eve, "outcast")
	eq(t, "bob as a member", f.p.AccountItems(featuretest.MustJID(bobPhone)), list("o", "p", "r", "w"))
	eq(t, "eve as an outcast", f.p.AccountItems(featuretest.MustJID(eveX)), "")
	// A fresh part (nothing loaded yet) answers the same.
	f.attach()
	eq(t, "fresh part, bob", f.p.AccountItems(featuretest.MustJID(bobPhone)), list("o", "p", "r", "w"))
	eq(t, "fresh part, dave", f.p.AccountItems(featuretest.MustJID(daveD)), list("o"))
}

func TestPersistence(t *testing.T) {
	f := newFixture(t, maxItems(10))
	f.publish(t, "open", "o1", "O1", "pubsub#access_model", "open", "pubsub#max_items", "10")
	f.publish(t, "open", "o2", "O2")
	f.publish(t, "w", "w1", "W1", "pubsub#access_model", "whitelist")
	f.setAffiliation(t, "w", bob, "member")
	f.publish(t, tuneNS, "t1", "Song")
	f.other(t, carolPC, "set", ps("<subscribe node='"+tuneNS+"' jid='"+carolPC+"'/>")).result(t, "carol subscribes")
	f.notes(t)
	first := f.p

	f.attach() // a new user actor over the same store
	if f.p == first {
		t.Fatal("attach did not make a new part")
	}
	eq(t, "open items", f.items(t, eveX, "open"), []string{"o1=O1", "o2=O2"})
	eq(t, "member reads whitelist", f.items(t, bobPhone, "w"), []string{"w1=W1"})
	f.other(t, carolPC, "get", itemsReq("w", "", "")).fails(t, "non-member", "cancel", stanza.NotAllowed, "closed-node")
	p := f.own(t, "get", po("<configure node='open'/>")).result(t, "configure")
	fm := dataform.Parse(dataform.Find(p.Child(pubsub.NSOwner, "configure")))
	eq(t, "access model kept", fm.One("pubsub#access_model"), "open")
	eq(t, "max_items kept", fm.One("pubsub#max_items"), "10")
	eq(t, "nodes", f.p.AccountItems(featuretest.MustJID(alice)), "<item jid='"+alice+"' node='"+tuneNS+"'/><item jid='"+alice+"' node='open'/><item jid='"+alice+"' node='w'/>")

	// The last item comes from storage on availability; the subscription was kept.
	f.arrive(t, bobPhone, "V1")
	eq(t, "new host watches", f.u.Watched, []string{"sha-1 V1"})
	f.capsKnown("V1", tuneNS)
	eq(t, "last item from storage", f.notes(t), []string{bobPhone + " items " + tuneNS + " t1=Song (delayed)"})
	f.publish(t, tuneNS, "t2", "Song 2")
	eq(t, "subscriber and peer", f.notes(t), []string{bobPhone + " items " + tuneNS + " t2=Song 2", carolPC + " items " + tuneNS + " t2=Song 2"})
	f.other(t, carolPC, "set", ps("<unsubscribe node='"+tuneNS+"' jid='"+carolPC+"'/>")).result(t, "unsubscribe on the new part")

	// And the other way round: what the second part did, a third sees.
	f.attach()
	f.other(t, carolPC, "set", ps("<unsubscribe node='"+tuneNS+"' jid='"+carolPC+"'/>")).fails(t, "unsubscribed stays", "", stanza.UnexpectedRequest, "not-subscribed")
	eq(t, "items", f.items(t, alice, tuneNS), []string{"t2=Song 2"})
}

// A contact on another server: no session here verifies its caps, so the part asks the resource itself
// (XEP-0115 §6.3), keeps the answer only if it hashes to ver (§5.4), and notifies by it; a forged answer is ignored.
func TestRemoteContactCaps(t *testing.T) {
	f := newFixture(t)
	const remote, remoteFull = "rob@remote.example", "rob@remote.example/desk"
	f.u.Subs[featuretest.MustJID(remote)] = "both"
	info := "<identity category='client' type='pc' name='r'/><feature var='" + caps.NS + "'/><feature var='" + tuneNS + pubsub.NotifySuffix + "'/>"
	q, err := xmlstream.ParseNode("<query xmlns='"+stanza.NSDiscoInf+"'>"+info+"</query>", stanza.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	s, err := caps.String(q)
	if err != nil {
		t.Fatal(err)
	}
	ver := caps.Hash("sha-1", s)
	f.arrive(t, remoteFull, ver)
	if len(f.u.Routed) != 1 {
		t.Fatalf("routed %d stanzas, want the caps query", len(f.u.Routed))
	}
	ask := featuretest.Node(t, f.u.Routed[0])
	if ask.Name.Local != "iq" || ask.Attr("type") != "get" || ask.Attr("to") != remoteFull ||
		ask.Child(stanza.NSDiscoInf, "query").Attr("node") != "https://client.example#"+ver {
		t.Fatalf("caps query: %s", f.u.Routed[0].Raw)
	}
	f.u.Routed = nil
	id := ask.Attr("id")
	answer := func(id, body string) bool {
		return f.p.Inbound(featuretest.Stanza(t, "<iq from='"+remoteFull+"' to='"+alice+"' type='result' id='"+id+"'><query xmlns='"+
			stanza.NSDiscoInf+"' node='https://client.example#"+ver+"'>"+body+"</query></iq>"))
	}
	// A local contact's caps are the cache's business: no query.
	f.arrive(t, bobPhone, "V1")
	eq(t, "nothing asked of a local contact", len(f.u.Routed), 0)

	if answer(id, "<feature var='"+moodNS+pubsub.NotifySuffix+"'/>") {
		t.Fatal("the answer to our own query was not consumed")
	}
	f.publish(t, tuneNS, "t1", "Song")
	eq(t, "a forged answer is not believed", f.notes(t), []string{})

	// The next availability asks again (the key is still unknown); the true answer is believed.
	f.leave(t, remoteFull)
	f.arrive(t, remoteFull, ver)
	if len(f.u.Routed) != 1 {
		t.Fatalf("routed %d stanzas, want a second caps query", len(f.u.Routed))
	}
	id = featuretest.Node(t, f.u.Routed[0]).Attr("id")
	f.u.Routed = nil
	answer(id, info)
	eq(t, "last item on verified caps", f.notes(t), []string{remoteFull + " items " + tuneNS + " t1=Song (delayed)"})
	f.publish(t, tuneNS, "t2", "Song 2")
	eq(t, "live notification", f.notes(t), []string{remoteFull + " items " + tuneNS + " t2=Song 2"})
}
