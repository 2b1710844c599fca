package disco

import (
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
)

const (
	alice = "alice@example.com"
	nsInf = stanza.NSDiscoInf
	nsIt  = stanza.NSDiscoIt
)

// nodeCall is one call of the fake feature's DiscoNode.
type nodeCall struct {
	requester, account jid.JID
	node               string
	items              bool
}

// nodeOwner is a feature that claims node "x" (info and items), at the server and at alice's bare JID, and
// records how it was asked.
func nodeOwner(calls *[]nodeCall) *feature.Feature {
	return &feature.Feature{Name: "owner", DiscoNode: func(_ feature.Server, requester, account jid.JID, node string, items bool) (string, bool) {
		*calls = append(*calls, nodeCall{requester, account, node, items})
		if node != "x" {
			return "", false
		}
		if items {
			return "<query xmlns='" + nsIt + "' node='x'><item jid='example.com' node='x1'/></query>", true
		}
		return "<query xmlns='" + nsInf + "' node='x'><identity category='automation' type='command-list'/></query>", true
	}}
}

func serverIQ(t *testing.T, s *featuretest.Session, route int, raw string) *stanza.Routed {
	t.Helper()
	before := len(s.Client)
	r := Feature.IQs[route]
	r.Server(featuretest.IQ(t, s, nil, raw))
	if len(s.Client) != before+1 {
		t.Fatalf("%s: %d answers", raw, len(s.Client)-before)
	}
	return s.Client[before]
}

func TestRoutes(t *testing.T) {
	if len(Feature.IQs) != 2 {
		t.Fatalf("routes %+v", Feature.IQs)
	}
	info, items := Feature.IQs[0], Feature.IQs[1]
	if info.Name.Space != nsInf || info.Anyone || info.Session != nil || info.Server == nil || info.Account == nil {
		t.Errorf("disco#info route %+v", info)
	}
	// XEP-0030 §8: disco#items to a bare JID is answered whether the account exists or not.
	if items.Name.Space != nsIt || !items.Anyone || items.Session != nil || items.Server == nil || items.Account == nil {
		t.Errorf("disco#items route %+v", items)
	}
}

func TestServerInfo(t *testing.T) {
	var calls []nodeCall
	srv := featuretest.NewServer(t, Feature, nodeOwner(&calls))
	s := featuretest.NewSession(srv, alice+"/r")

	got := serverIQ(t, s, 0, "<iq from='alice@example.com/r' to='example.com' type='get' id='i1'><query xmlns='"+nsInf+"'/></iq>")
	want := "<iq type='result' from='example.com' to='alice@example.com/r' id='i1'>" + srv.DiscoInfo("") + "</iq>"
	if got.Raw != want {
		t.Errorf("plain info\n got %q\nwant %q", got.Raw, want)
	}
	if len(calls) != 0 {
		t.Errorf("plain info asked the node owners: %+v", calls)
	}

	got = serverIQ(t, s, 0, "<iq from='alice@example.com/r' to='example.com' type='get' id='i2'><query xmlns='"+nsInf+"' node='x'/></iq>")
	want = "<iq type='result' from='example.com' to='alice@example.com/r' id='i2'><query xmlns='" + nsInf + "' node='x'><identity category='automation' type='command-list'/></query></iq>"
	if got.Raw != want {
		t.Errorf("claimed node\n got %q\nwant %q", got.Raw, want)
	}
	if len(calls) != 1 || calls[0] != (nodeCall{requester: s.FullJID, node: "x"}) {
		t.Errorf("DiscoNode calls %+v", calls)
	}

	got = serverIQ(t, s, 0, "<iq from='alice@example.com/r' to='example.com' type='get' id='i3'><query xmlns='"+nsInf+"' node='nobody'/></iq>")
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.ItemNotFound) {
		t.Errorf("unclaimed node: %q %s", c, got.Raw)
	}
	got = serverIQ(t, s, 0, "<iq from='alice@example.com/r' to='example.com' type='set' id='i4'><query xmlns='"+nsInf+"'/></iq>")
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.BadRequest) {
		t.Errorf("set: %q %s", c, got.Raw)
	}
}

func TestServerItems(t *testing.T) {
	var calls []nodeCall
	srv := featuretest.NewServer(t, Feature, nodeOwner(&calls))
	s := featuretest.NewSession(srv, alice+"/r")

	got := serverIQ(t, s, 1, "<iq from='alice@example.com/r' to='example.com' type='get' id='t1'><query xmlns='"+nsIt+"'/></iq>")
	if want := "<iq type='result' from='example.com' to='alice@example.com/r' id='t1'><query xmlns='" + nsIt + "'/></iq>"; got.Raw != want {
		t.Errorf("plain items\n got %q\nwant %q", got.Raw, want)
	}
	// XEP-0030 §4.1: the services at domains of their own are the server's items.
	srv.Svcs = []feature.ServiceRef{{JID: featuretest.MustJID("pubsub.example.com"), Name: "Publish-Subscribe"}, {JID: featuretest.MustJID("x.example.com")}}
	got = serverIQ(t, s, 1, "<iq from='alice@example.com/r' to='example.com' type='get' id='t1b'><query xmlns='"+nsIt+"'/></iq>")
	if want := "<iq type='result' from='example.com' to='alice@example.com/r' id='t1b'><query xmlns='" + nsIt + "'><item jid='pubsub.example.com' name='Publish-Subscribe'/><item jid='x.example.com'/></query></iq>"; got.Raw != want {
		t.Errorf("items with services\n got %q\nwant %q", got.Raw, want)
	}
	got = serverIQ(t, s, 1, "<iq from='alice@example.com/r' to='example.com' type='get' id='t2'><query xmlns='"+nsIt+"' node='x'/></iq>")
	if want := "<iq type='result' from='example.com' to='alice@example.com/r' id='t2'><query xmlns='" + nsIt + "' node='x'><item jid='example.com' node='x1'/></query></iq>"; got.Raw != want {
		t.Errorf("claimed node\n got %q\nwant %q", got.Raw, want)
	}
	if len(calls) != 1 || calls[0] != (nodeCall{requester: s.FullJID, node: "x", items: true}) {
		t.Errorf("DiscoNode calls %+v", calls)
	}
	got = serverIQ(t, s, 1, "<iq from='alice@example.com/r' to='example.com' type='get' id='t3'><query xmlns='"+nsIt+"' node='nobody'/></iq>")
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.ItemNotFound) {
		t.Errorf("unclaimed node: %q %s", c, got.Raw)
	}
	got = serverIQ(t, s, 1, "<iq from='alice@example.com/r' to='example.com' type='set' id='t4'><query xmlns='"+nsIt+"'/></iq>")
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.BadRequest) {
		t.Errorf("set: %q %s", c, got.Raw)
	}
}

// account is alice's user actor with bob (from), carol (to) in her roster and one session r.
type account struct {
	srv   *featuretest.Server
	u     *featuretest.User
	r     feature.Resource
	calls []nodeCall
}

func newAccount(t *testing.T, exists bool) *account {
	a := &account{}
	a.srv = featuretest.NewServer(t, Feature, nodeOwner(&a.calls))
	a.u = featuretest.NewUser(a.srv, alice, exists)
	if exists {
		a.u.Subs[featuretest.MustJID("bob@example.com")] = "from"
		a.u.Subs[featuretest.MustJID("carol@example.com")] = "to"
		a.r = a.u.Online("r", 0)
	}
	return a
}

// ask sends raw to alice through route (0 info, 1 items) and returns the answer: from another user it is
// routed, from alice's own session delivered to it.
func (a *account) ask(t *testing.T, route int, raw string, owner bool) *stanza.Routed {
	t.Helper()
	r := Feature.IQs[route]
	routed, delivered := len(a.u.Routed), len(a.u.Delivered[a.r.Full])
	r.Account(featuretest.AccountIQ(t, a.u, nil, raw, owner, a.r))
	if owner {
		if got := a.u.Delivered[a.r.Full]; len(got) == delivered+1 && len(a.u.Routed) == routed {
			return got[delivered]
		}
	} else if len(a.u.Routed) == routed+1 && len(a.u.Delivered[a.r.Full]) == delivered {
		return a.u.Routed[routed]
	}
	t.Fatalf("%s: routed %d, delivered %d", raw, len(a.u.Routed)-routed, len(a.u.Delivered[a.r.Full])-delivered)
	return nil
}

func TestAccountInfo(t *testing.T) {
	a := newAccount(t, true)
	q := "<query xmlns='" + nsInf + "'/>"

	got := a.ask(t, 0, "<iq from='bob@example.com/b' to='alice@example.com' type='get' id='a1'>"+q+"</iq>", false)
	if want := "<iq type='result' from='alice@example.com' to='bob@example.com/b' id='a1'>" + a.srv.AccountDiscoInfo() + "</iq>"; got.Raw != want {
		t.Errorf("subscriber\n got %q\nwant %q", got.Raw, want)
	}
	got = a.ask(t, 0, "<iq from='alice@example.com/r' type='get' id='a2'>"+q+"</iq>", true)
	if want := "<iq type='result' to='alice@example.com/r' id='a2'>" + a.srv.AccountDiscoInfo() + "</iq>"; got.Raw != want {
		t.Errorf("owner, no 'to'\n got %q\nwant %q", got.Raw, want)
	}
	// carol has only a 'to' subscription (alice sees carol, not the other way round); eve is a stranger: the
	// answer must be the one for a missing account.
	for _, from := range []string{"carol@example.com/c", "eve@example.com/e"} {
		got = a.ask(t, 0, "<iq from='"+from+"' to='alice@example.com' type='get' id='a3'>"+q+"</iq>", false)
		if c := featuretest.ErrorCondition(t, got); c != string(stanza.ServiceUnavailable) {
			t.Errorf("%s: %q %s", from, c, got.Raw)
		}
	}
	got = a.ask(t, 0, "<iq from='bob@example.com/b' to='alice@example.com' type='set' id='a4'>"+q+"</iq>", false)
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.ServiceUnavailable) {
		t.Errorf("set: %q %s", c, got.Raw)
	}
	if len(a.calls) != 0 {
		t.Errorf("node owners asked without a node: %+v", a.calls)
	}
}

func TestAccountInfoNode(t *testing.T) {
	a := newAccount(t, true)
	got := a.ask(t, 0, "<iq from='alice@example.com/r' to='alice@example.com' type='get' id='n1'><query xmlns='"+nsInf+"' node='x'/></iq>", true)
	if want := "<iq type='result' from='alice@example.com' to='alice@example.com/r' id='n1'><query xmlns='" + nsInf + "' node='x'><identity category='automation' type='command-list'/></query></iq>"; got.Raw != want {
		t.Errorf("claimed node\n got %q\nwant %q", got.Raw, want)
	}
	want := nodeCall{requester: a.r.Full, account: a.u.BareJID, node: "x"}
	if len(a.calls) != 1 || a.calls[0] != want {
		t.Errorf("DiscoNode calls %+v, want %+v", a.calls, want)
	}
	got = a.ask(t, 0, "<iq from='bob@example.com/b' to='alice@example.com' type='get' id='n2'><query xmlns='"+nsInf+"' node='nobody'/></iq>", false)
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.ItemNotFound) {
		t.Errorf("unclaimed node: %q %s", c, got.Raw)
	}
	// A stranger asking about a node learns no more than about the account itself.
	got = a.ask(t, 0, "<iq from='eve@example.com/e' to='alice@example.com' type='get' id='n3'><query xmlns='"+nsInf+"' node='x'/></iq>", false)
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.ServiceUnavailable) {
		t.Errorf("stranger, node: %q %s", c, got.Raw)
	}
}

func TestAccountItemsEmptyForEveryone(t *testing.T) {
	for _, exists := range []bool{true, false} {
		a := newAccount(t, exists)
		for _, from := range []string{"bob@example.com/b", "carol@example.com/c", "eve@example.com/e"} {
			for _, c := range []struct{ node, query string }{
				{"", "<query xmlns='" + nsIt + "'/>"},
				{"nobody", "<query xmlns='" + nsIt + "' node='nobody'/>"},
				{"a'b&c", "<query xmlns='" + nsIt + "' node='a&apos;b&amp;c'/>"},
			} {
				req := "<query xmlns='" + nsIt + "'/>"
				if c.node != "" {
					req = "<query xmlns='" + nsIt + "' node='" + string(escapeAttr(c.node)) + "'/>"
				}
				got := a.ask(t, 1, "<iq from='"+from+"' to='alice@example.com' type='get' id='e1'>"+req+"</iq>", false)
				want := "<iq type='result' from='alice@example.com' to='" + from + "' id='e1'>" + c.query + "</iq>"
				if got.Raw != want {
					t.Errorf("exists=%v from %s node %q\n got %q\nwant %q", exists, from, c.node, got.Raw, want)
				}
			}
		}
	}
}

func escapeAttr(s string) string {
	out := ""
	for _, r := range s {
		switch r {
		case '\'':
			out += "&apos;"
		case '&':
			out += "&amp;"
		default:
			out += string(r)
		}
	}
	return out
}

func TestAccountItemsOwnerAndClaimedNode(t *testing.T) {
	a := newAccount(t, true)
	got := a.ask(t, 1, "<iq from='alice@example.com/r' type='get' id='o1'><query xmlns='"+nsIt+"'/></iq>", true)
	if want := "<iq type='result' to='alice@example.com/r' id='o1'><query xmlns='" + nsIt + "'/></iq>"; got.Raw != want {
		t.Errorf("owner\n got %q\nwant %q", got.Raw, want)
	}
	if len(a.calls) != 0 {
		t.Errorf("node owners asked without a node: %+v", a.calls)
	}
	got = a.ask(t, 1, "<iq from='alice@example.com/r' to='alice@example.com' type='get' id='o2'><query xmlns='"+nsIt+"' node='x'/></iq>", true)
	if want := "<iq type='result' from='alice@example.com' to='alice@example.com/r' id='o2'><query xmlns='" + nsIt + "' node='x'><item jid='example.com' node='x1'/></query></iq>"; got.Raw != want {
		t.Errorf("claimed node\n got %q\nwant %q", got.Raw, want)
	}
	want := nodeCall{requester: a.r.Full, account: a.u.BareJID, node: "x", items: true}
	if len(a.calls) != 1 || a.calls[0] != want {
		t.Errorf("DiscoNode calls %+v, want %+v", a.calls, want)
	}
	got = a.ask(t, 1, "<iq from='bob@example.com/b' to='alice@example.com' type='set' id='o3'><query xmlns='"+nsIt+"'/></iq>", false)
	if c := featuretest.ErrorCondition(t, got); c != string(stanza.ServiceUnavailable) {
		t.Errorf("set: %q %s", c, got.Raw)
	}
}

func TestContactForm(t *testing.T) {
	if got := ContactForm(config.ContactConfig{}); got != "" {
		t.Errorf("no addresses: %q", got)
	}
	got := ContactForm(config.ContactConfig{Abuse: []string{"mailto:abuse@example.com"}, Support: []string{"xmpp:help@example.com", "https://example.com/?a=1&b=<2>"}})
	want := "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/network/serverinfo</value></field>" +
		"<field var='abuse-addresses'><value>mailto:abuse@example.com</value></field>" +
		"<field var='support-addresses'><value>xmpp:help@example.com</value><value>https://example.com/?a=1&amp;b=&lt;2&gt;</value></field></x>"
	if got != want {
		t.Errorf("form\n got %q\nwant %q", got, want)
	}
	cfg := config.Default()
	cfg.Contact.Admin = []string{"xmpp:op@example.com"}
	if Feature.ExtendedInfo(&cfg) != ContactForm(cfg.Contact) {
		t.Error("ExtendedInfo is not the contact form")
	}
}
