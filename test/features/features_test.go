package features

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/xmppclient"
)

const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsCarbons    = "urn:xmpp:carbons:2"
	nsBlocking   = "urn:xmpp:blocking"
	nsCommands   = "http://jabber.org/protocol/commands"
	nsAdmin      = "http://jabber.org/protocol/admin"
)

func TestServerDiscoAndStreamFeatures(t *testing.T) {
	s := server(t)
	u, pw := s.user(t, "disco")
	c := mustLogin(t, s, u, pw, loginOpts{})
	r := mustResult(t, c.IQ("<iq type='get' to='"+s.Domain+"'><query xmlns='"+nsDiscoInfo+"'/></iq>"))
	q := r.Child(nsDiscoInfo, "query")
	if id := q.Child("", "identity"); id.Get("category") != "server" || id.Get("type") != "im" {
		t.Errorf("identity %s", id)
	}
	for _, v := range []string{nsDiscoInfo, nsDiscoItems, nsCarbons, nsBlocking, nsCommands, "vcard-temp", "jabber:iq:private",
		"urn:xmpp:time", "jabber:iq:last", "jabber:iq:version", "urn:xmpp:ping", "urn:xmpp:features:rosterver"} {
		if !hasFeature(q, v) {
			t.Errorf("disco#info lacks %s", v)
		}
	}
	if hasFeature(q, "jabber:iq:register") {
		t.Errorf("jabber:iq:register advertised with registration off")
	}
	// XEP-0128 / XEP-0157 form.
	x := q.Child("jabber:x:data", "x")
	if x == nil || !strings.Contains(x.String(), "http://jabber.org/network/serverinfo") || !strings.Contains(x.String(), "mailto:abuse@localhost") {
		t.Errorf("no XEP-0157 contact form: %s", q)
	}
	// XEP-0115 caps and XEP-0352 csi in the stream features after authentication.
	tr := c.Transcript()
	if !strings.Contains(tr, "http://jabber.org/protocol/caps") || !strings.Contains(tr, "urn:xmpp:csi:0") {
		t.Errorf("stream features lack caps/csi:\n%s", tr)
	}
	// Server time, uptime, version.
	tm := mustResult(t, c.IQ("<iq type='get' to='"+s.Domain+"'><time xmlns='urn:xmpp:time'/></iq>")).Child("urn:xmpp:time", "time")
	if ts, err := time.Parse(time.RFC3339, tm.ChildText("utc")); err != nil || time.Since(ts).Abs() > time.Minute || tm.ChildText("tzo") == "" {
		t.Errorf("bad time %s (%v)", tm, err)
	}
	last := mustResult(t, c.IQ("<iq type='get' to='"+s.Domain+"'><query xmlns='jabber:iq:last'/></iq>")).Child("jabber:iq:last", "query")
	if last.Get("seconds") == "" {
		t.Errorf("no uptime: %s", last)
	}
	v := mustResult(t, c.IQ("<iq type='get' to='"+s.Domain+"'><query xmlns='jabber:iq:version'/></iq>")).Child("jabber:iq:version", "query")
	if v.ChildText("name") != "xmppd" {
		t.Errorf("version %s", v)
	}
	// An unknown namespace is still service-unavailable.
	if e := c.IQ("<iq type='get' to='" + s.Domain + "'><query xmlns='urn:example:nothing'/></iq>"); errCond(e) != "service-unavailable" {
		t.Errorf("unknown namespace: %s", e)
	}
}

func TestAccountDiscoAndLastActivity(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	x, xpw := s.user(t, "stranger")
	A, B := s.bare(a), s.bare(b)
	alice := online(t, s, a, apw, "pc")
	bob := online(t, s, b, bpw, "pc")
	stranger := online(t, s, x, xpw, "pc")
	subscribeBoth(t, alice, bob, A, B)

	info := func(c *xmppclient.Client, to string) *xmppclient.Elem {
		return c.IQ("<iq type='get' to='" + to + "'><query xmlns='" + nsDiscoInfo + "'/></iq>")
	}
	for name, c := range map[string]*xmppclient.Client{"owner": alice, "subscriber": bob} {
		q := mustResult(t, info(c, A)).Child(nsDiscoInfo, "query")
		if id := q.Child("", "identity"); id.Get("category") != "account" || id.Get("type") != "registered" {
			t.Errorf("%s: account identity %s", name, q)
		}
	}
	if e := info(stranger, A); errCond(e) != "service-unavailable" {
		t.Errorf("stranger's account disco: %s", e)
	}
	// Forwarded to a full JID: the client answers itself.
	alice.SetAnswer(func(req *xmppclient.Elem) string {
		if req.Child(nsDiscoInfo, "query") == nil {
			return ""
		}
		return "<iq type='result' id='" + req.Get("id") + "' to='" + req.Get("from") + "'><query xmlns='" + nsDiscoInfo + "'><identity category='client' type='pc'/></query></iq>"
	})
	got := bob.IQ("<iq type='get' to='" + alice.JID.String() + "'><query xmlns='" + nsDiscoInfo + "'/></iq>")
	if got.Get("from") != alice.JID.String() || got.Child(nsDiscoInfo, "query").Child("", "identity").Get("category") != "client" {
		t.Errorf("full-JID disco not forwarded: %s", got)
	}

	// XEP-0012 for accounts: online → 0; stranger → forbidden; after logout → seconds and status.
	lastQ := "<query xmlns='jabber:iq:last'/>"
	if q := mustResult(t, bob.IQ("<iq type='get' to='"+A+"'>"+lastQ+"</iq>")).Child("jabber:iq:last", "query"); q.Get("seconds") != "0" {
		t.Errorf("online user last = %s", q)
	}
	if e := stranger.IQ("<iq type='get' to='" + A + "'>" + lastQ + "</iq>"); errCond(e) != "forbidden" {
		t.Errorf("stranger's last activity: %s", e)
	}
	alice.Send("<presence type='unavailable'><status>gone fishing</status></presence>")
	bob.Expect("alice unavailable", xmppclient.IsPresence(A, "unavailable"))
	q := mustResult(t, bob.IQ("<iq type='get' to='"+A+"'>"+lastQ+"</iq>")).Child("jabber:iq:last", "query")
	if q.Get("seconds") == "" || !strings.Contains(q.Text, "gone fishing") {
		t.Errorf("last after logout = %s", q)
	}
}

func TestVCardAndPrivate(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	x, xpw := s.user(t, "stranger")
	A, B := s.bare(a), s.bare(b)
	alice := online(t, s, a, apw, "pc")
	bob := online(t, s, b, bpw, "pc")
	stranger := online(t, s, x, xpw, "pc")
	subscribeBoth(t, alice, bob, A, B)

	if e := alice.IQ("<iq type='get'><vCard xmlns='vcard-temp'/></iq>"); errCond(e) != "item-not-found" {
		t.Errorf("empty vCard: %s", e)
	}
	mustResult(t, alice.IQ("<iq type='set'><vCard xmlns='vcard-temp'><FN>Alice A</FN><NICKNAME>al</NICKNAME></vCard></iq>"))
	for name, c := range map[string]*xmppclient.Client{"owner": alice, "contact": bob} {
		to := ""
		if c != alice {
			to = " to='" + A + "'"
		}
		v := mustResult(t, c.IQ("<iq type='get'"+to+"><vCard xmlns='vcard-temp'/></iq>")).Child("vcard-temp", "vCard")
		if v.ChildText("FN") != "Alice A" {
			t.Errorf("%s reads %s", name, v)
		}
	}
	// XEP-0054 §3.3: a stranger may not read it, and the refusal is the one a missing account gets, so that it
	// does not reveal that the account exists.
	if e := stranger.IQ("<iq type='get' to='" + A + "'><vCard xmlns='vcard-temp'/></iq>"); errCond(e) != "service-unavailable" {
		t.Errorf("stranger reads vCard (access = contacts): %s", e)
	}
	if e := stranger.IQ("<iq type='get' to='" + s.bare("nobody-"+a) + "'><vCard xmlns='vcard-temp'/></iq>"); errCond(e) != "service-unavailable" {
		t.Errorf("stranger reads a missing account's vCard: %s", e)
	}
	if e := bob.IQ("<iq type='set' to='" + A + "'><vCard xmlns='vcard-temp'><FN>pwned</FN></vCard></iq>"); errCond(e) != "forbidden" {
		t.Errorf("bob writes alice's vCard: %s", e)
	}
	big := strings.Repeat("x", 5000)
	if e := alice.IQ("<iq type='set'><vCard xmlns='vcard-temp'><NOTE>" + big + "</NOTE></vCard></iq>"); errCond(e) != "not-acceptable" {
		t.Errorf("oversized vCard: %s", e)
	}

	// XEP-0049.
	empty := mustResult(t, alice.IQ("<iq type='get'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>"))
	if p := empty.Child("jabber:iq:private", "query").Child("urn:example:prefs", "prefs"); p == nil || len(p.Kids) != 0 {
		t.Errorf("unset private data: %s", empty)
	}
	mustResult(t, alice.IQ("<iq type='set'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><color>blue</color></prefs></query></iq>"))
	got := mustResult(t, alice.IQ("<iq type='get'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>"))
	if got.Child("jabber:iq:private", "query").Child("urn:example:prefs", "prefs").ChildText("color") != "blue" {
		t.Errorf("private data: %s", got)
	}
	if e := bob.IQ("<iq type='get' to='" + A + "'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>"); errCond(e) != "forbidden" {
		t.Errorf("bob reads alice's private data: %s", e)
	}
	if e := alice.IQ("<iq type='set'><query xmlns='jabber:iq:private'><x xmlns='jabber:iq:roster'/></query></iq>"); errCond(e) != "not-acceptable" {
		t.Errorf("jabber: namespace stored: %s", e)
	}
}

func isPush(local string) func(*xmppclient.Elem) bool {
	return func(e *xmppclient.Elem) bool {
		return e.Is("", "iq") && e.Get("type") == "set" && e.Child(nsBlocking, local) != nil
	}
}

func TestBlocking(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	A, B := s.bare(a), s.bare(b)
	alice := online(t, s, a, apw, "one")
	alice2 := online(t, s, a, apw, "two")
	bob := online(t, s, b, bpw, "pc")
	subscribeBoth(t, alice, bob, A, B)
	for _, c := range []*xmppclient.Client{alice, alice2} {
		l := mustResult(t, c.IQ("<iq type='get'><blocklist xmlns='"+nsBlocking+"'/></iq>")).Child(nsBlocking, "blocklist")
		if len(l.Kids) != 0 {
			t.Fatalf("fresh blocklist %s", l)
		}
	}
	if e := alice.IQ("<iq type='set'><block xmlns='" + nsBlocking + "'/></iq>"); errCond(e) != "bad-request" {
		t.Errorf("empty block: %s", e)
	}
	mustResult(t, alice.IQ("<iq type='set'><block xmlns='"+nsBlocking+"'><item jid='"+B+"'/></block></iq>"))
	for _, c := range []*xmppclient.Client{alice, alice2} {
		p := c.Expect("block push", isPush("block"))
		if p.Child(nsBlocking, "block").Child("", "item").Get("jid") != B {
			t.Errorf("push %s", p)
		}
	}
	// §3.3: bob sees alice go unavailable; his messages and IQs bounce, his presence is dropped.
	bob.Expect("alice unavailable after block", xmppclient.IsPresence(A, "unavailable"))
	bob.Send("<message to='" + A + "' type='chat' id='m1'><body>hi?</body></message>")
	if e := bob.Expect("bounce", func(e *xmppclient.Elem) bool { return e.Is("", "message") && e.Get("type") == "error" }); errCond(e) != "service-unavailable" {
		t.Errorf("blocked message bounced with %s", e)
	}
	if e := bob.IQ("<iq type='get' to='" + alice.JID.String() + "'><ping xmlns='urn:xmpp:ping'/></iq>"); errCond(e) != "service-unavailable" {
		t.Errorf("blocked iq: %s", e)
	}
	bob.Send("<presence><status>still here</status></presence>")
	alice.Absent("presence from blocked bob", 300*time.Millisecond, xmppclient.IsPresence(B, ""))
	alice.Absent("message from blocked bob", 0, xmppclient.IsMessageWithBody("hi?"))
	// The blocker's own outbound stanzas: not-acceptable + <blocked/>.
	alice.Send("<message to='" + B + "' type='chat' id='m2'><body>psst</body></message>")
	e := alice.Expect("blocked error", func(e *xmppclient.Elem) bool { return e.Is("", "message") && e.Get("type") == "error" })
	if errCond(e) != "not-acceptable" || e.Child("", "error").Child("urn:xmpp:blocking:errors", "blocked") == nil {
		t.Errorf("outbound to blocked: %s", e)
	}
	bob.Absent("message from blocker", 200*time.Millisecond, xmppclient.IsMessageWithBody("psst"))
	// Unblock all: pushes, and bob's messages flow again.
	mustResult(t, alice2.IQ("<iq type='set'><unblock xmlns='"+nsBlocking+"'/></iq>"))
	for _, c := range []*xmppclient.Client{alice, alice2} {
		p := c.Expect("unblock-all push", isPush("unblock"))
		if len(p.Child(nsBlocking, "unblock").Kids) != 0 {
			t.Errorf("unblock-all push names items: %s", p)
		}
	}
	bob.Expect("alice's presence after unblock", xmppclient.IsPresence(A, ""))
	bob.Send("<message to='" + A + "' type='chat'><body>back</body></message>")
	alice.Expect("message after unblock", xmppclient.IsMessageWithBody("back"))
	// Block/unblock one, persisted across a restart (below in TestPersistence).
}

func isCarbon(kind, body string) func(*xmppclient.Elem) bool {
	return func(e *xmppclient.Elem) bool {
		c := e.Child(nsCarbons, kind)
		if !e.Is("", "message") || c == nil {
			return false
		}
		m := c.Child("urn:xmpp:forward:0", "forwarded").Child("jabber:client", "message")
		return m != nil && m.ChildText("body") == body
	}
}

func TestCarbons(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	A := s.bare(a)
	phone := online(t, s, a, apw, "phone")
	laptop := online(t, s, a, apw, "laptop")
	tablet := online(t, s, a, apw, "tablet")
	bob := online(t, s, b, bpw, "pc")
	mustResult(t, laptop.IQ("<iq type='set'><enable xmlns='"+nsCarbons+"'/></iq>"))
	mustResult(t, tablet.IQ("<iq type='set'><enable xmlns='"+nsCarbons+"'/></iq>"))
	mustResult(t, tablet.IQ("<iq type='set'><disable xmlns='"+nsCarbons+"'/></iq>"))

	// Received: bob → alice/phone; laptop gets a <received/> copy.
	bob.Send("<message to='" + phone.JID.String() + "' type='chat'><body>r1</body></message>")
	phone.Expect("direct", xmppclient.IsMessageWithBody("r1"))
	laptop.Expect("received carbon", isCarbon("received", "r1"))
	// mellium hides a 'from' equal to the account's bare JID; the wire shows it (XEP-0280 §11 security).
	if !strings.Contains(laptop.Transcript(), "<message from='"+A+"' to='"+laptop.JID.String()+"' type='chat'><received") {
		t.Errorf("received carbon not from the bare JID")
	}
	// Sent: phone → bob; laptop gets a <sent/> copy.
	phone.Send("<message to='" + s.bare(b) + "' type='chat'><body>s1</body></message>")
	bob.Expect("sent message", xmppclient.IsMessageWithBody("s1"))
	laptop.Expect("sent carbon", isCarbon("sent", "s1"))
	// <private/> and <no-copy/> are not copied; carbons-disabled resources get nothing.
	phone.Send("<message to='" + s.bare(b) + "' type='chat'><body>s2</body><private xmlns='" + nsCarbons + "'/></message>")
	bob.Send("<message to='" + phone.JID.String() + "' type='chat'><body>r2</body><no-copy xmlns='urn:xmpp:hints'/></message>")
	bob.Expect("private message", xmppclient.IsMessageWithBody("s2"))
	phone.Expect("no-copy message", xmppclient.IsMessageWithBody("r2"))
	laptop.Absent("copy of private/no-copy", 300*time.Millisecond, func(e *xmppclient.Elem) bool {
		return e.Child(nsCarbons, "sent") != nil || e.Child(nsCarbons, "received") != nil
	})
	tablet.Absent("carbons while disabled", 0, func(e *xmppclient.Elem) bool {
		return e.Child(nsCarbons, "sent") != nil || e.Child(nsCarbons, "received") != nil
	})
	phone.Absent("carbons without enabling", 0, func(e *xmppclient.Elem) bool {
		return e.Child(nsCarbons, "sent") != nil || e.Child(nsCarbons, "received") != nil
	})
}

func TestCSI(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, bpw := s.user(t, "bob")
	A, B := s.bare(a), s.bare(b)
	alice := online(t, s, a, apw, "phone")
	bob := online(t, s, b, bpw, "pc")
	subscribeBoth(t, alice, bob, A, B)
	// Whatever subscribing produced is drained first.
	for {
		if _, err := alice.Wait(func(e *xmppclient.Elem) bool { return xmppclient.JIDMatch(e.Get("from"), B) }, 300*time.Millisecond); err != nil {
			break
		}
	}
	alice.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	// A ping answered by alice's own session proves <inactive/> was handled before bob starts: the two travel
	// different paths, so without it bob's presence could overtake.
	mustResult(t, alice.IQ("<iq type='get' to='"+s.Domain+"'><ping xmlns='urn:xmpp:ping'/></iq>"))
	for _, st := range []string{"one", "two", "three"} {
		bob.Send("<presence><status>" + st + "</status></presence>")
	}
	bob.Send("<message to='" + A + "' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	alice.Absent("held presence", 400*time.Millisecond, xmppclient.IsPresence(B, ""))
	alice.Absent("held chat state", 0, xmppclient.IsMessageFrom(B))
	bob.Send("<message to='" + A + "' type='chat'><body>urgent</body></message>")
	alice.Expect("urgent message", xmppclient.IsMessageWithBody("urgent"))
	// Everything held came first, in order, with only the latest presence.
	var seen []string
	for {
		e, err := alice.Wait(func(e *xmppclient.Elem) bool { return xmppclient.JIDMatch(e.Get("from"), B) }, 200*time.Millisecond)
		if err != nil {
			break
		}
		seen = append(seen, e.Name.Local+":"+e.ChildText("status"))
	}
	// bob sent three presences, then the chat state: the server keeps that order (RFC 6120 §10.1), and CSI
	// keeps only the latest presence.
	if strings.Join(seen, ",") != "presence:three,message:" {
		t.Errorf("after flush, before the urgent message: %v (want presence 'three' only, then the chat state)", seen)
	}
	// Active again: nothing held any more.
	alice.Send("<active xmlns='urn:xmpp:csi:0'/>")
	mustResult(t, alice.IQ("<iq type='get' to='"+s.Domain+"'><ping xmlns='urn:xmpp:ping'/></iq>"))
	bob.Send("<presence><status>four</status></presence>")
	alice.Expect("presence while active", func(e *xmppclient.Elem) bool {
		return xmppclient.IsPresence(B, "")(e) && e.ChildText("status") == "four"
	})
}

// runCommand executes an XEP-0050 command with one form stage and returns the completed <command/>.
func runCommand(t *testing.T, c *xmppclient.Client, s *testServer, node, fields string) *xmppclient.Elem {
	t.Helper()
	r := c.IQ("<iq type='set' to='" + s.Domain + "'><command xmlns='" + nsCommands + "' node='" + node + "' action='execute'/></iq>")
	cmd := r.Child(nsCommands, "command")
	if cmd == nil {
		return r
	}
	if cmd.Get("status") == "completed" {
		return cmd
	}
	if cmd.Get("status") != "executing" || cmd.Child("jabber:x:data", "x") == nil {
		t.Fatalf("execute %s: %s", node, r)
	}
	r = c.IQ("<iq type='set' to='" + s.Domain + "'><command xmlns='" + nsCommands + "' node='" + node + "' sessionid='" + cmd.Get("sessionid") +
		"' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + nsAdmin + "</value></field>" + fields + "</x></command></iq>")
	if done := r.Child(nsCommands, "command"); done != nil {
		if done.Get("status") != "completed" {
			t.Fatalf("complete %s: %s", node, r)
		}
		return done
	}
	return r
}

func fieldValues(cmd *xmppclient.Elem, v string) []string {
	var out []string
	for _, f := range cmd.Child("jabber:x:data", "x").Children("", "field") {
		if f.Get("var") == v {
			for _, val := range f.Children("", "value") {
				out = append(out, val.Text)
			}
		}
	}
	return out
}

func fv(v string, vals ...string) string {
	s := "<field var='" + v + "'>"
	for _, x := range vals {
		s += "<value>" + x + "</value>"
	}
	return s + "</field>"
}

func TestAdminCommands(t *testing.T) {
	s := server(t)
	u, upw := s.user(t, "user")
	admin := online(t, s, adminLocal, adminPassword, "console")
	user := online(t, s, u, upw, "pc")

	// Non-admins: no commands listed, forbidden to execute.
	items := mustResult(t, user.IQ("<iq type='get' to='"+s.Domain+"'><query xmlns='"+nsDiscoItems+"' node='"+nsCommands+"'/></iq>"))
	if n := len(items.Child(nsDiscoItems, "query").Kids); n != 0 {
		t.Errorf("non-admin sees %d commands", n)
	}
	if e := user.IQ("<iq type='set' to='" + s.Domain + "'><command xmlns='" + nsCommands + "' node='" + nsAdmin + "#add-user' action='execute'/></iq>"); errCond(e) != "forbidden" {
		t.Errorf("non-admin add-user: %s", e)
	}
	items = mustResult(t, admin.IQ("<iq type='get' to='"+s.Domain+"'><query xmlns='"+nsDiscoItems+"' node='"+nsCommands+"'/></iq>"))
	// XEP-0133 §4: every command an operator uses (get-user-password aside: only SCRAM keys are stored).
	if n := len(items.Child(nsDiscoItems, "query").Kids); n != 28 {
		t.Errorf("admin sees %d commands, want 28: %s", n, items)
	}

	// add-user, then the new account logs in; change its password; count; online list; announce; delete.
	newLocal := "made" + u
	newJID := s.bare(newLocal)
	runCommand(t, admin, s, nsAdmin+"#add-user", fv("accountjid", newJID)+fv("password", "first-pass")+fv("password-verify", "first-pass"))
	mustLogin(t, s, newLocal, "first-pass", loginOpts{}).Close()
	runCommand(t, admin, s, nsAdmin+"#change-user-password", fv("accountjid", newJID)+fv("password", "second-pass"))
	if _, err := login(t, s, newLocal, "first-pass", loginOpts{}); err == nil {
		t.Errorf("old password still works")
	}
	made := online(t, s, newLocal, "second-pass", "pc")

	num := runCommand(t, admin, s, nsAdmin+"#get-registered-users-num", "")
	if v := fieldValues(num, "registeredusersnum"); len(v) != 1 || v[0] == "0" || v[0] == "" {
		t.Errorf("registered users: %s", num)
	}
	onl := runCommand(t, admin, s, nsAdmin+"#get-online-users-list", "")
	list := strings.Join(fieldValues(onl, "onlineuserjids"), " ")
	// XEP-0133 §4.16: the list of online users' (bare) JIDs.
	for _, c := range []*xmppclient.Client{admin, user, made} {
		if !slices.Contains(fieldValues(onl, "onlineuserjids"), c.JID.Bare().String()) {
			t.Errorf("online list %q lacks %s", list, c.JID.Bare())
		}
	}
	runCommand(t, admin, s, nsAdmin+"#announce", fv("subject", "Maintenance")+fv("announcement", "Back soon"))
	for _, c := range []*xmppclient.Client{user, made} {
		m := c.Expect("announcement", xmppclient.IsMessageWithBody("Back soon"))
		if m.Get("from") != s.Domain || m.Get("type") != "headline" {
			t.Errorf("announcement %s", m)
		}
	}
	runCommand(t, admin, s, nsAdmin+"#delete-user", fv("accountjids", newJID))
	if cond := made.StreamError(); cond != "not-authorized" {
		t.Errorf("deleted user's stream ended with %q", cond)
	}
	if _, err := login(t, s, newLocal, "second-pass", loginOpts{}); err == nil {
		t.Errorf("deleted account still logs in")
	}
}

// XEP-0115: a client's caps are verified once and cached; a wrong answer is not cached.
func TestClientCaps(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	const ver = "QgayPKawpkPSDYmwT/WM94uAlu0=" // XEP-0115 §5.2
	const info = "<identity category='client' name='Exodus 0.9.1' type='pc'/><feature var='http://jabber.org/protocol/caps'/>" +
		"<feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>"
	isCapsQuery := func(e *xmppclient.Elem) bool {
		q := e.Child(nsDiscoInfo, "query")
		return e.Is("", "iq") && e.Get("type") == "get" && q != nil && strings.HasSuffix(q.Get("node"), "#"+ver)
	}
	caps := "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='" + ver + "'/></presence>"
	answer := func(body string) func(*xmppclient.Elem) string {
		return func(q *xmppclient.Elem) string {
			if !isCapsQuery(q) {
				return ""
			}
			return "<iq type='result' id='" + q.Get("id") + "' to='" + q.Get("from") + "'><query xmlns='" + nsDiscoInfo + "' node='" + q.Child(nsDiscoInfo, "query").Get("node") + "'>" + body + "</query></iq>"
		}
	}
	// A liar first: its answer does not hash to ver, so the next client is asked again.
	liar := mustLogin(t, s, a, apw, loginOpts{resource: "liar"})
	liar.SetAnswer(answer("<feature var='urn:example:evil'/>"))
	liar.Send(caps)
	liar.Expect("caps query", isCapsQuery)
	time.Sleep(200 * time.Millisecond) // the answer reaches the server before the next client asks
	honest := mustLogin(t, s, a, apw, loginOpts{resource: "honest"})
	honest.SetAnswer(answer(info))
	honest.Send(caps)
	honest.Expect("caps query after a wrong answer", isCapsQuery)
	time.Sleep(200 * time.Millisecond)
	// Verified and cached now: a third client with the same ver is not asked.
	third := mustLogin(t, s, a, apw, loginOpts{resource: "third"})
	third.Send(caps)
	third.Expect("own presence", xmppclient.IsPresence(third.JID.String(), ""))
	third.Absent("caps query for a cached ver", 500*time.Millisecond, isCapsQuery)
}

// Everything a feature stores survives a restart.
func TestPersistence(t *testing.T) {
	s := server(t)
	a, apw := s.user(t, "alice")
	b, _ := s.user(t, "bob")
	alice := online(t, s, a, apw, "pc")
	mustResult(t, alice.IQ("<iq type='set'><vCard xmlns='vcard-temp'><FN>Persistent</FN></vCard></iq>"))
	mustResult(t, alice.IQ("<iq type='set'><query xmlns='jabber:iq:private'><n xmlns='urn:example:n'>42</n></query></iq>"))
	mustResult(t, alice.IQ("<iq type='set'><block xmlns='"+nsBlocking+"'><item jid='"+s.bare(b)+"'/></block></iq>"))
	alice.Close()
	s.Restart(t)
	alice = online(t, s, a, apw, "pc")
	if v := mustResult(t, alice.IQ("<iq type='get'><vCard xmlns='vcard-temp'/></iq>")).Child("vcard-temp", "vCard"); v.ChildText("FN") != "Persistent" {
		t.Errorf("vCard after restart: %s", v)
	}
	if p := mustResult(t, alice.IQ("<iq type='get'><query xmlns='jabber:iq:private'><n xmlns='urn:example:n'/></query></iq>")); !strings.Contains(p.String(), "42") {
		t.Errorf("private after restart: %s", p)
	}
	l := mustResult(t, alice.IQ("<iq type='get'><blocklist xmlns='"+nsBlocking+"'/></iq>")).Child(nsBlocking, "blocklist")
	if l.Child("", "item").Get("jid") != s.bare(b) {
		t.Errorf("blocklist after restart: %s", l)
	}
}
