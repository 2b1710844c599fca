package mam

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func node(t *testing.T, s string) *xmlstream.Node {
	t.Helper()
	n, err := xmlstream.ParseNode(s, stanza.NSClient)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return n
}

func form(fields string) string {
	return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>" + fields + "</x>"
}

func field(v string, vals ...string) string {
	s := "<field var='" + v + "'>"
	for _, x := range vals {
		s += "<value>" + x + "</value>"
	}
	return s + "</field>"
}

func TestParseQuery(t *testing.T) {
	romeo, _ := jid.Parse("romeo@montague.lit")
	romeoRes, _ := jid.Parse("romeo@montague.lit/orchard")
	start := time.Date(2010, 6, 7, 0, 0, 0, 0, time.UTC)
	end := time.Date(2010, 7, 7, 13, 23, 54, 500000000, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     Query
		cond     stanza.Condition
	}{
		{"empty", "<query xmlns='urn:xmpp:mam:2'/>", Query{RSM: RSM{Max: -1}}, ""},
		{"queryid", "<query xmlns='urn:xmpp:mam:2' queryid='f27'/>", Query{QueryID: "f27", RSM: RSM{Max: -1}}, ""},
		{"with bare", "<query xmlns='urn:xmpp:mam:2'>" + form(field("with", "romeo@montague.lit")) + "</query>", Query{With: romeo, RSM: RSM{Max: -1}}, ""},
		{"with full", "<query xmlns='urn:xmpp:mam:2'>" + form(field("with", "Romeo@Montague.lit/orchard")) + "</query>", Query{With: romeoRes, RSM: RSM{Max: -1}}, ""},
		{"times", "<query xmlns='urn:xmpp:mam:2'>" + form(field("start", "2010-06-07T00:00:00Z")+field("end", "2010-07-07T15:23:54.5+02:00")) + "</query>",
			Query{Start: start, End: end, RSM: RSM{Max: -1}}, ""},
		{"ids", "<query xmlns='urn:xmpp:mam:2'>" + form(field("after-id", "a")+field("before-id", "b")+field("ids", "x", "y")) + "</query>",
			Query{AfterID: "a", BeforeID: "b", IDs: []string{"x", "y"}, RSM: RSM{Max: -1}}, ""},
		{"empty values are absent", "<query xmlns='urn:xmpp:mam:2'>" + form(field("with")+field("start", "")) + "</query>", Query{RSM: RSM{Max: -1}}, ""},
		{"no form type", "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>" + field("with", "romeo@montague.lit") + "</x></query>",
			Query{With: romeo, RSM: RSM{Max: -1}}, ""},
		{"rsm max after", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3</after></set></query>",
			Query{RSM: RSM{Max: 10, After: "09af3", HasAfter: true}}, ""},
		{"rsm last page", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>0</max><before/></set><flip-page/></query>",
			Query{RSM: RSM{Max: 0, HasBefore: true}, Flip: true}, ""},
		{"rsm before", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><before>x</before></set></query>",
			Query{RSM: RSM{Max: -1, Before: "x", HasBefore: true}}, ""},
		{"wrong form type", "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>", Query{}, stanza.BadRequest},
		{"form not submit", "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='form'/></query>", Query{}, stanza.BadRequest},
		{"unknown field", "<query xmlns='urn:xmpp:mam:2'>" + form(field("{urn:example}search", "x")) + "</query>", Query{}, stanza.FeatureNotImplemented},
		{"groupchat field not advertised", "<query xmlns='urn:xmpp:mam:2'>" + form(field("include-groupchat", "true")) + "</query>", Query{}, stanza.FeatureNotImplemented},
		{"bad jid", "<query xmlns='urn:xmpp:mam:2'>" + form(field("with", "@nope")) + "</query>", Query{}, stanza.BadRequest},
		{"bad time", "<query xmlns='urn:xmpp:mam:2'>" + form(field("start", "2010-06-07")) + "</query>", Query{}, stanza.BadRequest},
		{"time without zone", "<query xmlns='urn:xmpp:mam:2'>" + form(field("end", "2010-06-07T00:00:00")) + "</query>", Query{}, stanza.BadRequest},
		{"two withs", "<query xmlns='urn:xmpp:mam:2'>" + form(field("with", "a@b", "c@d")) + "</query>", Query{}, stanza.BadRequest},
		{"bad max", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set></query>", Query{}, stanza.BadRequest},
		{"max not a number", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set></query>", Query{}, stanza.BadRequest},
		{"index", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set></query>", Query{}, stanza.FeatureNotImplemented},
		{"before and after", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after>a</after><before>b</before></set></query>", Query{}, stanza.BadRequest},
		{"empty after", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after/></set></query>", Query{}, stanza.BadRequest},
		{"mam:1", "<query xmlns='urn:xmpp:mam:1' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field>" +
			field("with", "romeo@montague.lit") + "</x><set xmlns='http://jabber.org/protocol/rsm'><max>5</max></set></query>",
			Query{NS: NS1, QueryID: "q", With: romeo, RSM: RSM{Max: 5}}, ""},
		{"mam:1 with mam:2 form type", "<query xmlns='urn:xmpp:mam:1'>" + form(field("with", "romeo@montague.lit")) + "</query>", Query{}, stanza.BadRequest},
		{"mam:1 has no extended fields", "<query xmlns='urn:xmpp:mam:1'><x xmlns='jabber:x:data' type='submit'>" + field("after-id", "a") + "</x></query>", Query{}, stanza.FeatureNotImplemented},
		// mam:0 (XEP-0313 0.3): the same form in its own FORM_TYPE, RSM paging, no extended fields.
		{"mam:0", "<query xmlns='urn:xmpp:mam:0' queryid='f27'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:0</value></field>" +
			field("with", "romeo@montague.lit") + field("start", "2010-06-07T00:00:00Z") + "</x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3</after></set></query>",
			Query{NS: NS0, QueryID: "f27", With: romeo, Start: start, RSM: RSM{Max: 10, After: "09af3", HasAfter: true}}, ""},
		{"mam:0 last page", "<query xmlns='urn:xmpp:mam:0'><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set></query>",
			Query{NS: NS0, RSM: RSM{Max: 2, HasBefore: true}}, ""},
		{"mam:0 with mam:1 form type", "<query xmlns='urn:xmpp:mam:0'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>", Query{}, stanza.BadRequest},
		{"mam:0 has no ids", "<query xmlns='urn:xmpp:mam:0'><x xmlns='jabber:x:data' type='submit'>" + field("ids", "a") + "</x></query>", Query{}, stanza.FeatureNotImplemented},
		{"mam:0 has no before-id", "<query xmlns='urn:xmpp:mam:0'><x xmlns='jabber:x:data' type='submit'>" + field("before-id", "a") + "</x></query>", Query{}, stanza.FeatureNotImplemented},
		{"mam:0 index", "<query xmlns='urn:xmpp:mam:0'><set xmlns='http://jabber.org/protocol/rsm'><index>0</index></set></query>", Query{}, stanza.FeatureNotImplemented},
		{"mam:tmp is not served: read as mam:2", "<query xmlns='urn:xmpp:mam:tmp' queryid='q'/>", Query{QueryID: "q", RSM: RSM{Max: -1}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQuery(node(t, tc.in))
			if tc.cond != "" {
				var e *Error
				if !errors.As(err, &e) || e.Condition != tc.cond {
					t.Fatalf("err = %v, want %s", err, tc.cond)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.NS == "" {
				tc.want.NS = NS
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestPrefs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Prefs
		cond stanza.Condition
	}{
		{"<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.lit</jid></always><never><jid>montague@montague.lit</jid></never></prefs>",
			Prefs{Default: "roster", Always: []string{"romeo@montague.lit"}, Never: []string{"montague@montague.lit"}}, ""},
		{"<prefs xmlns='urn:xmpp:mam:2' default='always'/>", Prefs{Default: "always"}, ""},
		{"<prefs xmlns='urn:xmpp:mam:1' default='always'><never><jid>a@b.lit</jid></never></prefs>", Prefs{Default: "always", Never: []string{"a@b.lit"}, NS: NS1}, ""},
		{"<prefs xmlns='urn:xmpp:mam:0' default='roster'><always><jid>a@b.lit</jid></always><never><jid>c@d.lit/r</jid></never></prefs>",
			Prefs{Default: "roster", Always: []string{"a@b.lit"}, Never: []string{"c@d.lit/r"}, NS: NS0}, ""},
		// The lists are read in the request's namespace only.
		{"<prefs xmlns='urn:xmpp:mam:0' default='always'><always xmlns='urn:xmpp:mam:2'><jid>a@b.lit</jid></always></prefs>", Prefs{Default: "always", NS: NS0}, ""},
		{"<prefs xmlns='urn:xmpp:mam:0' default='maybe'/>", Prefs{}, stanza.BadRequest},
		{"<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>A@B.lit/Res</jid><jid>a@b.lit/Res</jid></always><never/></prefs>",
			Prefs{Default: "never", Always: []string{"a@b.lit/Res"}}, ""},
		{"<prefs xmlns='urn:xmpp:mam:2'/>", Prefs{}, stanza.BadRequest},
		{"<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>", Prefs{}, stanza.BadRequest},
		{"<prefs xmlns='urn:xmpp:mam:2' default='always'><never><jid>@x</jid></never></prefs>", Prefs{}, stanza.JIDMalformed},
	} {
		got, err := ParsePrefs(node(t, tc.in))
		if tc.cond != "" {
			var e *Error
			if !errors.As(err, &e) || e.Condition != tc.cond {
				t.Errorf("%s: err = %v, want %s", tc.in, err, tc.cond)
			}
			continue
		}
		if tc.want.NS == "" {
			tc.want.NS = NS
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
			continue
		}
		again, err := ParsePrefs(node(t, got.String()))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip %s → %+v %v", got.String(), again, err)
		}
	}
	if got := (Prefs{Default: "roster"}).String(); got != "<prefs xmlns='urn:xmpp:mam:2' default='roster'><always/><never/></prefs>" {
		t.Errorf("empty lists: %s", got)
	}
	if got := (Prefs{Default: "roster", NS: NS1}).String(); got != "<prefs xmlns='urn:xmpp:mam:1' default='roster'><always/><never/></prefs>" {
		t.Errorf("mam:1: %s", got)
	}
	if got := (Prefs{Default: "never", Always: []string{"a@b.lit"}, NS: NS0}).String(); got != "<prefs xmlns='urn:xmpp:mam:0' default='never'><always><jid>a@b.lit</jid></always><never/></prefs>" {
		t.Errorf("mam:0: %s", got)
	}
}

func TestArchives(t *testing.T) {
	j := func(s string) jid.JID { x, _ := jid.Parse(s); return x }
	inRoster := func(c jid.JID) bool { return c.String() == "friend@x.lit" }
	p := Prefs{Default: Roster, Always: []string{"stranger@x.lit/res"}, Never: []string{"friend@x.lit"}}
	for _, tc := range []struct {
		prefs Prefs
		with  string
		want  bool
	}{
		{Prefs{Default: Always}, "anyone@x.lit/r", true},
		{Prefs{Default: Never}, "anyone@x.lit/r", false},
		{Prefs{Default: Roster}, "friend@x.lit/r", true},
		{Prefs{Default: Roster}, "stranger@x.lit", false},
		{p, "friend@x.lit/r", false},    // never wins over the roster, bare matches any resource
		{p, "stranger@x.lit/res", true}, // always by full JID
		{p, "stranger@x.lit/other", false},
		{Prefs{Default: Always, Always: []string{"a@x.lit"}, Never: []string{"a@x.lit"}}, "a@x.lit", false},
	} {
		if got := tc.prefs.Archives(j(tc.with), inRoster); got != tc.want {
			t.Errorf("%+v with %s = %v", tc.prefs, tc.with, got)
		}
	}
}

func TestArchivable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"<message type='chat'><body>hi</body></message>", true},
		{"<message><body>hi</body></message>", true},
		{"<message type='normal'><subject>s</subject><body>hi</body></message>", true},
		{"<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>", false}, // chat state alone
		{"<message type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>", true},
		{"<message type='chat'><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>", false},
		{"<message type='chat'><body>hi</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", false},
		{"<message type='groupchat'><body>hi</body></message>", false},
		{"<message type='headline'><body>hi</body></message>", false},
		{"<message type='error'><body>hi</body><error type='cancel'/></message>", false},
		{"<message type='chat'><body xmlns='urn:example'>hi</body></message>", false},
		{"<message type='chat'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>x</body></message></forwarded></received></message>", false},
		{"<message><result xmlns='urn:xmpp:mam:2' id='x'/><body>x</body></message>", false},
	} {
		n := node(t, tc.in)
		if got := Archivable(n, n.Attr("type")); got != tc.want {
			t.Errorf("%s: %v", tc.in, got)
		}
	}
}

func TestStanzaIDs(t *testing.T) {
	in := "<message to='j@c.lit' from='r@m.lit/o'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='j@c.lit'/>" +
		"<stanza-id xmlns='urn:xmpp:sid:0' id='theirs' by='r@m.lit'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>"
	n := node(t, in)
	if got := StanzaIDBy(n, "j@c.lit"); got != "forged" {
		t.Errorf("StanzaIDBy = %q", got)
	}
	clean := WithoutStanzaIDs(n, "j@c.lit")
	if StanzaIDBy(clean, "j@c.lit") != "" || StanzaIDBy(clean, "r@m.lit") != "theirs" || clean.Child(NSSID, "origin-id") == nil {
		t.Errorf("cleaned: %s", clean.String())
	}
	if StanzaIDBy(n, "j@c.lit") != "forged" {
		t.Error("the original was changed")
	}
	if WithoutStanzaIDs(clean, "j@c.lit") != clean {
		t.Error("nothing to strip must return the node itself")
	}
	if got := StanzaID("a'b", "j@c.lit"); got != "<stanza-id xmlns='urn:xmpp:sid:0' id='a&apos;b' by='j@c.lit'/>" {
		t.Errorf("StanzaID = %s", got)
	}
}

func TestEncoders(t *testing.T) {
	at := time.Date(2010, 7, 10, 23, 8, 25, 123456000, time.FixedZone("x", 3600))
	res := Result("f27", "28482", at, "<message xmlns='jabber:client'><body>Hail</body></message>")
	want := "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2010-07-10T22:08:25.123456Z'/>" +
		"<message xmlns='jabber:client'><body>Hail</body></message></forwarded></result>"
	if res != want {
		t.Errorf("Result:\n%s\n%s", res, want)
	}
	if _, err := xmlstream.ParseNode(res, stanza.NSClient); err != nil {
		t.Error(err)
	}
	if got := (Fin{Complete: true, First: "a", Last: "b", Count: 2}).String(); got != "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><first>a</first><last>b</last><count>2</count></set></fin>" {
		t.Errorf("Fin: %s", got)
	}
	if got := (Fin{Count: 0}).String(); got != "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set></fin>" {
		t.Errorf("empty Fin: %s", got)
	}
	if got := Metadata(nil, nil); got != "<metadata xmlns='urn:xmpp:mam:2'/>" {
		t.Errorf("empty metadata: %s", got)
	}
	md := Metadata(&Bound{ID: "a", Stamp: at}, &Bound{ID: "b", Stamp: at})
	if !strings.Contains(md, "<start id='a' timestamp='2010-07-10T22:08:25.123456Z'/><end id='b'") {
		t.Errorf("metadata: %s", md)
	}
	f := node(t, QueryForm())
	if x := f.Child("jabber:x:data", "x"); x == nil || len(x.ChildrenNamed("jabber:x:data", "field")) != 7 {
		t.Errorf("form: %s", QueryForm())
	}
	if tm, err := ParseTime(FormatTime(at)); err != nil || !tm.Equal(at) {
		t.Errorf("time round trip: %v %v", tm, err)
	}
}

// FuzzParseQuery: any element either parses or is refused with a defined condition, and never panics.
func FuzzParseQuery(f *testing.F) {
	f.Add("<query xmlns='urn:xmpp:mam:2' queryid='q'>" + form(field("with", "a@b/c")+field("start", "2010-06-07T00:00:00Z")+field("ids", "1", "2")) +
		"<set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set><flip-page/></query>")
	f.Add("<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>1</index></set></query>")
	f.Add("<query xmlns='urn:xmpp:mam:0' queryid='q0'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:0</value></field>" +
		"<field var='end'><value>2010-06-07T00:00:00Z</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>3</max><before>x</before></set></query>")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, stanza.NSClient)
		if err != nil {
			return
		}
		q, err := ParseQuery(n)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !e.Condition.Defined() {
				t.Fatalf("error %v is not a defined stanza error", err)
			}
			return
		}
		if q.RSM.Max < -1 || (q.RSM.HasAfter && q.RSM.HasBefore) {
			t.Fatalf("accepted %+v", q.RSM)
		}
	})
}

// FuzzParsePrefs: accepted preferences survive their own encoding.
func FuzzParsePrefs(f *testing.F) {
	f.Add("<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>a@b</jid></always><never><jid>c@d/e</jid></never></prefs>")
	f.Add("<prefs xmlns='urn:xmpp:mam:0' default='never'><always><jid>a@b</jid><jid>A@b</jid></always><never/></prefs>")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := xmlstream.ParseNode(s, stanza.NSClient)
		if err != nil {
			return
		}
		p, err := ParsePrefs(n)
		if err != nil {
			return
		}
		again, err := ParsePrefs(node(t, p.String()))
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%+v → %s → %+v %v", p, p.String(), again, err)
		}
	})
}

// TestNamespaces: the answers to a mam:1 query are in mam:1 (XEP-0313 §4.2, §4.3: <result/>, <fin/>, the form).
func TestNamespaces(t *testing.T) {
	stamp := time.Date(2010, 7, 10, 23, 8, 25, 0, time.UTC)
	for _, ns := range []string{NS, NS1, NS0} {
		res := node(t, ResultNS(ns, "q1", "id1", stamp, "<message xmlns='jabber:client'><body>x</body></message>"))
		if res.Name.Space != ns || res.Attr("id") != "id1" || res.Attr("queryid") != "q1" {
			t.Errorf("%s: result %s", ns, res.String())
		}
		fin := node(t, Fin{Complete: true, Count: 3, NS: ns}.String())
		if fin.Name.Space != ns || fin.Attr("complete") != "true" {
			t.Errorf("%s: fin %s", ns, fin.String())
		}
		f := node(t, QueryFormNS(ns))
		if f.Name.Space != ns || !strings.Contains(f.String(), "<value>"+ns+"</value>") {
			t.Errorf("%s: form %s", ns, f.String())
		}
		if extended := strings.Contains(f.String(), "after-id"); extended != (ns == NS) {
			t.Errorf("%s: form with extended fields = %v", ns, extended)
		}
	}
	if (Fin{}).String() != (Fin{NS: NS}).String() || Result("q", "i", stamp, "") != ResultNS(NS, "q", "i", stamp, "") {
		t.Error("the default namespace is not mam:2")
	}
	if Archivable(node(t, "<message type='chat'><body>b</body><result xmlns='urn:xmpp:mam:1' id='x'/></message>"), "chat") {
		t.Error("a mam:1 result is archived")
	}
	if Archivable(node(t, "<message type='chat'><body>b</body><result xmlns='urn:xmpp:mam:0' id='x'/></message>"), "chat") {
		t.Error("a mam:0 result is archived")
	}
}

// TestMAM0Fin: XEP-0313 0.3 ends a query with <fin/> in a message of its own, matched by its queryid (Example 9 of
// 0.3 as Swiften and Converse.js quote it: <fin xmlns='urn:xmpp:mam:0' complete='true'><set>…</set></fin>); the
// later versions' <fin/> rides in the IQ result and has no queryid.
func TestMAM0Fin(t *testing.T) {
	for _, tc := range []struct {
		fin  Fin
		want string
	}{
		{Fin{NS: NS0, QueryID: "f27", Complete: true, First: "23452-4534-1", Last: "390-2342-22", Count: 16},
			"<fin xmlns='urn:xmpp:mam:0' queryid='f27' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><first>23452-4534-1</first><last>390-2342-22</last><count>16</count></set></fin>"},
		{Fin{NS: NS0, QueryID: "a'b", Count: 0},
			"<fin xmlns='urn:xmpp:mam:0' queryid='a&apos;b'><set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set></fin>"},
		{Fin{NS: NS0, Count: -1}, "<fin xmlns='urn:xmpp:mam:0'><set xmlns='http://jabber.org/protocol/rsm'></set></fin>"},
		{Fin{NS: NS1, QueryID: "f27", Complete: true, Count: 1}, "<fin xmlns='urn:xmpp:mam:1' complete='true'><set xmlns='http://jabber.org/protocol/rsm'><count>1</count></set></fin>"},
		{Fin{QueryID: "f27", Count: 1}, "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><count>1</count></set></fin>"},
	} {
		if got := tc.fin.String(); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.fin, got, tc.want)
		}
		if _, err := xmlstream.ParseNode(tc.fin.String(), stanza.NSClient); err != nil {
			t.Errorf("%+v: %v", tc.fin, err)
		}
	}
	for ns, want := range map[string]bool{NS0: true, NS1: false, NS: false, "urn:xmpp:mam:tmp": false} {
		if FinInMessage(ns) != want || Served(ns) != (ns != "urn:xmpp:mam:tmp") {
			t.Errorf("%s: FinInMessage %v, Served %v", ns, FinInMessage(ns), Served(ns))
		}
	}
}

func TestMayClaimStanzaIDBy(t *testing.T) {
	const by = "juliet@example.com"
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{"<message to='juliet@example.com/r' type='groupchat'><body>x</body></message>", false},
		// A room's copy: its own stanza-id, the user's JID only with a resource.
		{"<message from='room@muc.example.com/n' to='juliet@example.com/r' type='groupchat'><body>x</body>" +
			"<stanza-id xmlns='urn:xmpp:sid:0' id='1' by='room@muc.example.com'/></message>", false},
		{"<message to='juliet@example.com.evil/r'><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='x'/></message>", false},
		{"<message to='ajuliet@example.com'><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='x'/></message>", false},
		// Forged ones, however written.
		{"<message><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='juliet@example.com'/></message>", true},
		{`<message><stanza-id xmlns="urn:xmpp:sid:0" id="f" by="juliet@example.com"/></message>`, true},
		{"<message><s:stanza-id xmlns:s='urn:xmpp:sid:0' id='f' by = 'juliet@example.com'/></message>", true},
		{"<message><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='&#106;uliet@example.com'/></message>", true},
		// A value that does not end (it would not parse): careful.
		{"<message><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='juliet@example.com\"/></message>", true},
		// The JID in another attribute (a 'from') is not a claim; text that looks like one makes it careful.
		{"<message from='juliet@example.com'><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='room@muc'/></message>", false},
		{"<message><body>stand by = 'juliet@example.com'</body><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='room@muc'/></message>", true},
		{"<message><body>goodbye</body><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='room@muc'/></message>", false},
		// Without the element's name nothing can be claimed.
		{"<message><delay xmlns='urn:xmpp:delay' by='juliet@example.com'/></message>", false},
	} {
		if got := MayClaimStanzaIDBy(c.raw, by); got != c.want {
			t.Errorf("MayClaimStanzaIDBy(%s) = %v, want %v", c.raw, got, c.want)
		}
	}
}

// FuzzMayClaimStanzaIDBy: whenever the parsed stanza holds a stanza-id by by, the byte check says it may.
func FuzzMayClaimStanzaIDBy(f *testing.F) {
	f.Add("<message><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='a@b'/></message>", "a@b")
	f.Add("<message to='a@b/r'><stanza-id xmlns='urn:xmpp:sid:0' id='f' by='room@muc'/></message>", "a@b")
	f.Add("<message><x:stanza-id xmlns:x='urn:xmpp:sid:0' by=\"&#x61;@b\"/></message>", "a@b")
	f.Fuzz(func(t *testing.T, raw, by string) {
		n, err := xmlstream.ParseNode(raw, stanza.NSClient)
		if err != nil {
			return
		}
		if WithoutStanzaIDs(n, by) != n && !MayClaimStanzaIDBy(raw, by) {
			t.Fatalf("%q holds a stanza-id by %q, but the byte check says it cannot", raw, by)
		}
	})
}
