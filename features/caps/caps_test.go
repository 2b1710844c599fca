package caps

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/jid"
)

// exodus is the XEP-0115 §5.2 client: its disco#info answer and ver.
const (
	exodusInfo = `<query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>` +
		`<identity category='client' name='Exodus 0.9.1' type='pc'/>` +
		`<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>` +
		`<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>`
	exodusVer  = "QgayPKawpkPSDYmwT/WM94uAlu0="
	exodusNode = "http://code.google.com/p/exodus"
)

func presence(node, hash, ver string) string {
	c := "<c xmlns='" + caps.NS + "'"
	if hash != "" {
		c += " hash='" + hash + "'"
	}
	if node != "" {
		c += " node='" + node + "'"
	}
	if ver != "" {
		c += " ver='" + ver + "'"
	}
	return "<presence from='a@example.com/r'>" + c + "/></presence>"
}

func newSession(t *testing.T) (*featuretest.Session, *session) {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	s := featuretest.NewSession(srv, "a@example.com/r")
	return s, Feature.NewSession(s).(*session)
}

func TestStreamFeatureAndVars(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	want := "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://github.com/xmppd/xmppd' ver='fakever='/>"
	if got := Feature.StreamFeature(srv); got != want {
		t.Errorf("stream feature %q, want %q", got, want)
	}
	// issue 11 item 4: the server's disco#info lists caps while the feature is enabled.
	if !strings.Contains(srv.DiscoInfo(""), "<feature var='http://jabber.org/protocol/caps'/>") {
		t.Errorf("disco#info without caps: %s", srv.DiscoInfo(""))
	}
	if Feature.Name != "caps" {
		t.Errorf("name %q", Feature.Name)
	}
}

func TestDiscoNode(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	requester := featuretest.MustJID("a@example.com/r")
	own := Node + "#fakever="
	got, ok := srv.DiscoNode(requester, jid.JID{}, own, false)
	if !ok || got != srv.DiscoInfo(own) {
		t.Errorf("own node#ver: %v %q", ok, got)
	}
	if !strings.Contains(got, "node='"+own+"'") {
		t.Errorf("answer without the node: %q", got)
	}
	for _, tc := range []struct {
		name    string
		account jid.JID
		node    string
		items   bool
	}{
		{"items", jid.JID{}, own, true},
		{"old ver", jid.JID{}, Node + "#other=", false},
		{"bare node", jid.JID{}, Node, false},
		{"other node", jid.JID{}, "urn:x", false},
		{"empty node", jid.JID{}, "", false},
		{"of an account", featuretest.MustJID("b@example.com"), own, false},
	} {
		if p, ok := Feature.DiscoNode(srv, requester, tc.account, tc.node, tc.items); ok {
			t.Errorf("%s: answered %q", tc.name, p)
		}
	}
}

// The whole round: presence → lookup → unknown → query to the client → answer → verified.
func TestLearnCaps(t *testing.T) {
	s, p := newSession(t)
	if !p.Outbound(featuretest.Stanza(t, presence(exodusNode, "sha-1", exodusVer))) {
		t.Fatal("presence consumed")
	}
	if len(s.Lookups) != 1 || s.Lookups[0] != "sha-1 "+exodusVer+" "+exodusNode {
		t.Fatalf("lookups %q", s.Lookups)
	}
	p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: exodusVer, Node: exodusNode})
	if len(s.Client) != 1 {
		t.Fatalf("to client: %d", len(s.Client))
	}
	want := "<iq from='example.com' to='a@example.com/r' type='get' id='caps1'><query xmlns='http://jabber.org/protocol/disco#info' node='" +
		exodusNode + "#" + exodusVer + "'/></iq>"
	if got := s.Client[0].Raw; got != want {
		t.Fatalf("query %q\nwant %q", got, want)
	}
	answer := "<iq from='a@example.com/r' to='example.com' type='result' id='caps1'>" + exodusInfo + "</iq>"
	if p.Outbound(featuretest.Stanza(t, answer)) {
		t.Fatal("answer not consumed")
	}
	feats := s.Verified["sha-1 "+exodusVer]
	if strings.Join(feats, " ") != "http://jabber.org/protocol/caps http://jabber.org/protocol/disco#info http://jabber.org/protocol/disco#items http://jabber.org/protocol/muc" {
		t.Fatalf("verified %q", feats)
	}
	// The id is spent: a second answer is an ordinary stanza.
	if !p.Outbound(featuretest.Stanza(t, answer)) {
		t.Error("second answer consumed")
	}
	// The next query gets a new id.
	p.Handle(&feature.CapsUnknown{Hash: "sha-1", Ver: "other=", Node: exodusNode})
	if len(s.Client) != 2 || s.Client[1].Head.ID != "caps2" {
		t.Errorf("second query: %+v", s.Client)
	}
}

func TestPresenceIgnored(t *testing.T) {
	for _, tc := range []struct{ name, raw string }{
		{"legacy caps without hash", presence(exodusNode, "", exodusVer)},
		{"unsupported hash", presence(exodusNode, "md5", exodusVer)},
		{"no ver", presence(exodusNode, "sha-1", "")},
		{"no node", presence("", "sha-1", exodusVer)},
		{"directed", "<presence from='a@example.com/r' to='b@example.com'><c xmlns='" + caps.NS + "' hash='sha-1' node='n' ver='v'/></presence>"},
		{"unavailable", "<presence from='a@example.com/r' type='unavailable'><c xmlns='" + caps.NS + "' hash='sha-1' node='n' ver='v'/></presence>"},
		{"no c", "<presence from='a@example.com/r'><status>" + caps.NS + "</status></presence>"},
		{"c in another namespace", "<presence from='a@example.com/r'><c xmlns='urn:x' hash='sha-1' node='n' ver='v'/><status>" + caps.NS + "</status></presence>"},
		{"message", "<message from='a@example.com/r'><c xmlns='" + caps.NS + "' hash='sha-1' node='n' ver='v'/></message>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := newSession(t)
			if !p.Outbound(featuretest.Stanza(t, tc.raw)) {
				t.Error("consumed")
			}
			if len(s.Lookups) != 0 {
				t.Errorf("looked up %q", s.Lookups)
			}
		})
	}
}

// At most MaxQueries in flight; one query per ver; lookups stop while the budget is spent.
func TestQueryLimits(t *testing.T) {
	s, p := newSession(t)
	p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: "v0", Node: "n"})
	p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: "v0", Node: "n"})
	if len(s.Client) != 1 {
		t.Fatalf("same ver asked %d times", len(s.Client))
	}
	for i := 1; i < MaxQueries+2; i++ {
		p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: "v" + string(rune('0'+i)), Node: "n"})
	}
	if len(s.Client) != MaxQueries {
		t.Fatalf("%d queries in flight, want %d", len(s.Client), MaxQueries)
	}
	p.Outbound(featuretest.Stanza(t, presence("n", "sha-1", "v9")))
	if len(s.Lookups) != 0 {
		t.Errorf("lookup with a full budget: %q", s.Lookups)
	}
	// An error answer frees its slot, verifies nothing, and is consumed.
	if p.Outbound(featuretest.Stanza(t, "<iq from='a@example.com/r' type='error' id='caps1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")) {
		t.Error("error answer not consumed")
	}
	if len(s.Verified) != 0 {
		t.Errorf("verified %v", s.Verified)
	}
	p.Outbound(featuretest.Stanza(t, presence("n", "sha-1", "v9")))
	if len(s.Lookups) != 1 {
		t.Errorf("no lookup after a slot was freed: %q", s.Lookups)
	}
	// Other messages are ignored.
	p.Handle("nonsense")
	if len(s.Client) != MaxQueries {
		t.Errorf("nonsense message sent something")
	}
}

func TestAnswerNotVerified(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"wrong hash", "<iq from='a@example.com/r' type='result' id='caps1'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='x'/></query></iq>"},
		{"ill-formed", "<iq from='a@example.com/r' type='result' id='caps1'>" + strings.Replace(exodusInfo, "<feature var='http://jabber.org/protocol/muc'/>", "<feature var='http://jabber.org/protocol/muc'/><feature var='http://jabber.org/protocol/muc'/>", 1) + "</iq>"},
		{"no query", "<iq from='a@example.com/r' type='result' id='caps1'/>"},
		{"query in another namespace", "<iq from='a@example.com/r' type='result' id='caps1'><query xmlns='urn:x'/></iq>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := newSession(t)
			p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: exodusVer, Node: exodusNode})
			if p.Outbound(featuretest.Stanza(t, tc.answer)) {
				t.Error("answer not consumed")
			}
			if len(s.Verified) != 0 {
				t.Errorf("verified %v", s.Verified)
			}
		})
	}
	// Not our id, or a get/set with our id: left alone.
	s, p := newSession(t)
	p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: exodusVer, Node: exodusNode})
	for _, raw := range []string{
		"<iq from='a@example.com/r' type='result' id='caps7'>" + exodusInfo + "</iq>",
		"<iq from='a@example.com/r' type='get' id='caps1'>" + exodusInfo + "</iq>",
	} {
		if !p.Outbound(featuretest.Stanza(t, raw)) {
			t.Errorf("consumed %q", raw)
		}
	}
	if len(s.Verified) != 0 || len(p.queries) != 1 {
		t.Errorf("verified %v, pending %v", s.Verified, p.queries)
	}
}

// Separate sessions number their queries independently: no global counter.
func TestIDsPerSession(t *testing.T) {
	s1, p1 := newSession(t)
	s2, p2 := newSession(t)
	p1.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: "v", Node: "n"})
	p2.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: "v", Node: "n"})
	if s1.Client[0].Head.ID != "caps1" || s2.Client[0].Head.ID != "caps1" {
		t.Errorf("ids %q %q", s1.Client[0].Head.ID, s2.Client[0].Head.ID)
	}
}

// The node is escaped in the query.
func TestQueryNodeEscaped(t *testing.T) {
	s, p := newSession(t)
	p.Handle(feature.CapsUnknown{Hash: "sha-1", Ver: "v'<", Node: "n&"})
	n := featuretest.Node(t, s.Client[0])
	if q := n.FirstElement(); q == nil || q.Attr("node") != "n&#v'<" {
		t.Errorf("query %q", s.Client[0].Raw)
	}
}
