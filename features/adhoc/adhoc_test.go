package adhoc

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

const (
	admin = "op@example.com"
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

type fixture struct {
	srv *featuretest.Server
	s   *featuretest.Session
	p   *session
	ids int
	// delayed records restart/shutdown timers instead of starting them.
	delayed []time.Duration
	fire    []func()
}

// newFixture: example.com and example.net served, op@example.com the admin (logged in as op@example.com/r),
// alice and bob registered.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	srv.Cfg.Domains = []string{"example.com", "example.net"}
	srv.Cfg.Admins = []string{admin}
	srv.Admins[featuretest.MustJID(admin)] = true
	for _, a := range []string{admin, alice, bob} {
		srv.AddAccount(t, a)
	}
	f := &fixture{srv: srv, s: featuretest.NewSession(srv, admin+"/r")}
	f.p = Feature.NewSession(f.s).(*session)
	f.p.after = func(d time.Duration, fn func()) { f.delayed = append(f.delayed, d); f.fire = append(f.fire, fn) }
	return f
}

// send runs a command IQ (payload: the <command/> element) to to ("" for none) and returns the one answer.
func (f *fixture) send(t *testing.T, to, payload string) *stanza.Routed {
	t.Helper()
	f.ids++
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	raw := "<iq from='" + f.s.FullJID.String() + "'" + toAttr + " type='set' id='c" + strconv.Itoa(f.ids) + "'>" + payload + "</iq>"
	before := len(f.s.Client)
	q := featuretest.IQ(t, f.s, f.p, raw)
	if to == "example.com" || to == "example.net" {
		Feature.IQs[0].Server(q)
	} else {
		Feature.IQs[0].Session(q)
	}
	if len(f.s.Client) != before+1 {
		t.Fatalf("%s: %d answers", raw, len(f.s.Client)-before)
	}
	return f.s.Client[before]
}

// exec runs a command at the server: node is the part after admin#, extra the attributes and children.
func (f *fixture) exec(t *testing.T, node, attrs, children string) *stanza.Routed {
	t.Helper()
	return f.send(t, "example.com", "<command xmlns='"+NSCommands+"' node='"+NSAdmin+"#"+node+"'"+attrs+">"+children+"</command>")
}

// submit runs a command with a submitted form of fields (var → values), at once (no sessionid).
func (f *fixture) submit(t *testing.T, node string, fields map[string][]string) *stanza.Routed {
	t.Helper()
	return f.exec(t, node, "", submitForm(fields))
}

func submitForm(fields map[string][]string) string {
	b := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + NSAdmin + "</value></field>"
	for v, vals := range fields {
		b += "<field var='" + v + "'>"
		for _, val := range vals {
			b += "<value>" + text(val) + "</value>"
		}
		b += "</field>"
	}
	return b + "</x>"
}

// reply is a parsed command answer.
type reply struct {
	status, sid, node string
	form              *xmlstream.Node
	note              string
	fields            map[string]*xmlstream.Node
}

func parse(t *testing.T, st *stanza.Routed) reply {
	t.Helper()
	if st.Head.Type != "result" {
		t.Fatalf("not a result: %s", st.Raw)
	}
	c := featuretest.Node(t, st).Child(NSCommands, "command")
	if c == nil {
		t.Fatalf("no command: %s", st.Raw)
	}
	r := reply{status: c.Attr("status"), sid: c.Attr("sessionid"), node: c.Attr("node"), fields: map[string]*xmlstream.Node{}}
	if n := c.Child(NSCommands, "note"); n != nil {
		r.note = n.TextContent()
	}
	if r.form = c.Child(stanza.NSXData, "x"); r.form != nil {
		for _, fl := range r.form.ChildrenNamed(stanza.NSXData, "field") {
			r.fields[fl.Attr("var")] = fl
		}
	}
	return r
}

func values(fl *xmlstream.Node) []string {
	if fl == nil {
		return nil
	}
	var out []string
	for _, v := range fl.ChildrenNamed(stanza.NSXData, "value") {
		out = append(out, v.TextContent())
	}
	return out
}

// completed parses a completed answer.
func completed(t *testing.T, st *stanza.Routed) reply {
	t.Helper()
	r := parse(t, st)
	if r.status != "completed" {
		t.Fatalf("status %q: %s", r.status, st.Raw)
	}
	return r
}

// result is the values of field v of a completed answer's result form.
func result(t *testing.T, st *stanza.Routed, v string) []string {
	t.Helper()
	r := completed(t, st)
	if r.form == nil || r.form.Attr("type") != "result" || values(r.fields["FORM_TYPE"])[0] != NSAdmin {
		t.Fatalf("no result form: %s", st.Raw)
	}
	fl := r.fields[v]
	if fl == nil {
		t.Fatalf("no field %s: %s", v, st.Raw)
	}
	return values(fl)
}

// failed checks an error answer's condition, and the XEP-0050 specific condition when specific is not "".
func failed(t *testing.T, st *stanza.Routed, cond stanza.Condition, specific string) {
	t.Helper()
	if got := featuretest.ErrorCondition(t, st); got != string(cond) {
		t.Fatalf("condition %q, want %q: %s", got, cond, st.Raw)
	}
	if specific != "" && featuretest.Node(t, st).Child(stanza.NSClient, "error").Child(NSCommands, specific) == nil {
		t.Fatalf("no <%s/>: %s", specific, st.Raw)
	}
}

func TestRoutes(t *testing.T) {
	if len(Feature.IQs) != 1 {
		t.Fatalf("routes %+v", Feature.IQs)
	}
	r := Feature.IQs[0]
	if r.Name != (xmlstream.Name{Space: NSCommands, Local: "command"}) || r.Server == nil || r.Session == nil || r.Account != nil || r.Anyone {
		t.Fatalf("route %+v", r)
	}
	if !reflect.DeepEqual(Feature.ServerVars, []string{NSCommands}) || Feature.Name != "adhoc" {
		t.Fatalf("feature %+v", Feature)
	}
}

// ---- discovery ----

func TestDiscoItems(t *testing.T) {
	f := newFixture(t)
	op, al := featuretest.MustJID(admin+"/r"), featuretest.MustJID(alice+"/a")

	got, ok := Feature.DiscoNode(f.srv, op, jid.JID{}, NSCommands, true)
	if !ok {
		t.Fatal("commands node not answered")
	}
	n, err := xmlstream.ParseNode(got, "")
	if err != nil {
		t.Fatal(err)
	}
	items := n.ChildrenNamed(stanza.NSDiscoIt, "item")
	if n.Attr("node") != NSCommands || len(items) != len(commands) {
		t.Fatalf("%d items for %d commands: %s", len(items), len(commands), got)
	}
	if first := "<item jid='example.com' node='" + NSAdmin + "#add-user' name='Add a User'/>"; !strings.Contains(got, first) {
		t.Errorf("no %s in %s", first, got)
	}
	for i, it := range items {
		if it.Attr("jid") != "example.com" || it.Attr("node") != NSAdmin+"#"+commands[i].node || it.Attr("name") == "" {
			t.Errorf("item %d: %s", i, got)
		}
		if findCommand(it.Attr("node")) == nil {
			t.Errorf("listed %s is not executable", it.Attr("node"))
		}
	}
	// Everyone else gets the empty list at the server.
	got, ok = Feature.DiscoNode(f.srv, al, jid.JID{}, NSCommands, true)
	if want := "<query xmlns='" + stanza.NSDiscoIt + "' node='" + NSCommands + "'></query>"; !ok || got != want {
		t.Errorf("non-admin: %v %q", ok, got)
	}

	// At the admin's own bare JID the items name that JID (XEP-0050 §5).
	got, ok = Feature.DiscoNode(f.srv, op, op.Bare(), NSCommands, true)
	if !ok || !strings.Contains(got, "<item jid='op@example.com' node='"+NSAdmin+"#shutdown' name='Shut Down Service'/>") || strings.Contains(got, "jid='example.com'") {
		t.Errorf("own bare JID: %v %q", ok, got)
	}
	// Nobody else's JID shows commands, and nobody but an admin sees them at the own JID: the disco feature
	// then answers its empty result.
	for _, c := range []struct{ requester, account jid.JID }{{op, al.Bare()}, {al, al.Bare()}, {al, op.Bare()}} {
		if got, ok := Feature.DiscoNode(f.srv, c.requester, c.account, NSCommands, true); ok {
			t.Errorf("%s asking %s: %q", c.requester, c.account, got)
		}
	}
	if got, ok := Feature.DiscoNode(f.srv, op, jid.JID{}, "other", true); ok {
		t.Errorf("other node: %q", got)
	}
	if got, ok := Feature.DiscoNode(f.srv, op, jid.JID{}, NSAdmin+"#add-user", true); ok {
		t.Errorf("items of a command node: %q", got)
	}
}

func TestDiscoInfo(t *testing.T) {
	f := newFixture(t)
	op, al := featuretest.MustJID(admin+"/r"), featuretest.MustJID(alice+"/a")
	got, ok := Feature.DiscoNode(f.srv, al, jid.JID{}, NSCommands, false)
	if want := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + NSCommands + "'><identity category='automation' type='command-list' name='Commands'/></query>"; !ok || got != want {
		t.Errorf("commands node: %v %q", ok, got)
	}
	want := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + NSAdmin + "#announce'><identity category='automation' type='command-node' name='Send Announcement to Online Users'/>" +
		"<feature var='" + NSCommands + "'/><feature var='jabber:x:data'/></query>"
	if got, ok := Feature.DiscoNode(f.srv, al, jid.JID{}, NSAdmin+"#announce", false); !ok || got != want {
		t.Errorf("command node\n got %q\nwant %q", got, want)
	}
	if got, ok := Feature.DiscoNode(f.srv, op, op.Bare(), NSAdmin+"#announce", false); !ok || got != want {
		t.Errorf("command node at the own JID: %v %q", ok, got)
	}
	// An alias answers with the node as asked.
	if got, ok := Feature.DiscoNode(f.srv, op, jid.JID{}, NSAdmin+"#get-idle-users-list", false); !ok || !strings.Contains(got, "node='"+NSAdmin+"#get-idle-users-list'") {
		t.Errorf("alias: %v %q", ok, got)
	}
	for _, node := range []string{NSAdmin + "#get-user-password", NSAdmin + "#nope", NSAdmin, "add-user", ""} {
		if got, ok := Feature.DiscoNode(f.srv, op, jid.JID{}, node, false); ok {
			t.Errorf("%q answered: %q", node, got)
		}
	}
	if got, ok := Feature.DiscoNode(f.srv, al, al.Bare(), NSCommands, false); ok {
		t.Errorf("non-admin's own JID: %q", got)
	}
}

// ---- the XEP-0050 flow ----

func TestFormThenSubmit(t *testing.T) {
	f := newFixture(t)
	st := f.exec(t, "add-user", " action='execute'", "")
	r := parse(t, st)
	if r.status != "executing" || r.sid == "" || r.node != NSAdmin+"#add-user" {
		t.Fatalf("first stage: %s", st.Raw)
	}
	want := "<iq type='result' from='example.com' to='op@example.com/r' id='c1'><command xmlns='" + NSCommands + "' node='" + NSAdmin + "#add-user' sessionid='" + r.sid + "' status='executing'>" +
		"<actions execute='complete'><complete/></actions><x xmlns='jabber:x:data' type='form'><title>Adding a User</title><instructions>Fill out this form to add a user.</instructions>" +
		"<field var='FORM_TYPE' type='hidden'><value>" + NSAdmin + "</value></field>" +
		"<field var='accountjid' type='jid-single' label='The Jabber ID for the account to be added'><required/></field>" +
		"<field var='password' type='text-private' label='The password for this account'><required/></field>" +
		"<field var='password-verify' type='text-private' label='Retype password'></field></x></command></iq>"
	if st.Raw != want {
		t.Fatalf("form\n got %q\nwant %q", st.Raw, want)
	}
	st = f.exec(t, "add-user", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"accountjid": {"carol@example.com"}, "password": {"secret"}, "password-verify": {"secret"}}))
	done := completed(t, st)
	if done.sid != r.sid || done.note != "The account carol@example.com was created." {
		t.Fatalf("completion: %s", st.Raw)
	}
	if _, err := f.srv.DB.Credentials(context.Background(), "carol@example.com"); err != nil {
		t.Fatalf("account not created: %v", err)
	}
	// The session ended with the completion (XEP-0050 §3.3).
	failed(t, f.exec(t, "add-user", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"accountjid": {"dave@example.com"}, "password": {"x"}})), stanza.BadRequest, "bad-sessionid")
}

func TestCompleteWithoutForm(t *testing.T) {
	f := newFixture(t)
	r := parse(t, f.exec(t, "delete-user", "", ""))
	// complete without the form: the required field is missing.
	failed(t, f.exec(t, "delete-user", " sessionid='"+r.sid+"' action='complete'", ""), stanza.BadRequest, "bad-payload")
	// A list command without a submitted form lists everything.
	r = parse(t, f.exec(t, "get-registered-users-list", "", ""))
	if r.status != "executing" || r.fields["max_items"] == nil || r.fields["max_items"].Attr("type") != "list-single" {
		t.Fatalf("list form: %+v", r)
	}
	got := result(t, f.exec(t, "get-registered-users-list", " sessionid='"+r.sid+"'", ""), "registereduserjids")
	if want := []string{alice, bob, admin}; !reflect.DeepEqual(got, want) {
		t.Errorf("registered %v, want %v", got, want)
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	r := parse(t, f.exec(t, "set-motd", "", ""))
	st := f.exec(t, "set-motd", " sessionid='"+r.sid+"' action='cancel'", "")
	want := "<iq type='result' from='example.com' to='op@example.com/r' id='c2'><command xmlns='" + NSCommands + "' node='" + NSAdmin + "#set-motd' sessionid='" + r.sid + "' status='canceled'></command></iq>"
	if st.Raw != want {
		t.Fatalf("cancel\n got %q\nwant %q", st.Raw, want)
	}
	if len(f.p.open) != 0 {
		t.Errorf("open sessions after cancel: %v", f.p.open)
	}
	failed(t, f.exec(t, "set-motd", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"motd": {"hi"}})), stanza.BadRequest, "bad-sessionid")
	if _, err := f.srv.DB.GetKV(context.Background(), "example.com", KVMOTD, "motd"); err == nil {
		t.Error("canceled command ran")
	}
}

func TestBadSessionID(t *testing.T) {
	f := newFixture(t)
	failed(t, f.exec(t, "announce", " sessionid='made-up'", ""), stanza.BadRequest, "bad-sessionid")
	// A sessionid belongs to its command.
	r := parse(t, f.exec(t, "announce", "", ""))
	failed(t, f.exec(t, "set-motd", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"motd": {"x"}})), stanza.BadRequest, "bad-sessionid")
	// ... and to its session: another session of the same admin does not know it.
	other := featuretest.NewSession(f.srv, admin+"/other")
	q := featuretest.IQ(t, other, Feature.NewSession(other), "<iq from='op@example.com/other' to='example.com' type='set' id='x'><command xmlns='"+NSCommands+"' node='"+NSAdmin+"#announce' sessionid='"+r.sid+"'/></iq>")
	Feature.IQs[0].Server(q)
	failed(t, other.Client[0], stanza.BadRequest, "bad-sessionid")
}

func TestForbiddenAndUnknown(t *testing.T) {
	f := newFixture(t)
	s := featuretest.NewSession(f.srv, alice+"/a")
	p := Feature.NewSession(s)
	for i, node := range []string{"add-user", "shutdown", "get-online-users-num", "get-idle-users-list"} {
		raw := "<iq from='alice@example.com/a' to='example.com' type='set' id='f" + strconv.Itoa(i) + "'><command xmlns='" + NSCommands + "' node='" + NSAdmin + "#" + node + "'>" +
			submitForm(map[string][]string{"accountjid": {"x@example.com"}, "password": {"p"}}) + "</command></iq>"
		Feature.IQs[0].Server(featuretest.IQ(t, s, p, raw))
		failed(t, s.Client[i], stanza.Forbidden, "")
	}
	if _, err := f.srv.DB.Credentials(context.Background(), "x@example.com"); err == nil {
		t.Error("a non-admin created an account")
	}
	if len(f.srv.ShutdownCalls) != 0 {
		t.Error("a non-admin shut the server down")
	}
	for _, node := range []string{NSAdmin + "#get-user-password", NSAdmin + "#edit-blacklist", NSAdmin + "#nope", "add-user", ""} {
		failed(t, f.send(t, "example.com", "<command xmlns='"+NSCommands+"' node='"+node+"'/>"), stanza.ItemNotFound, "")
	}
	failed(t, f.send(t, "example.com", "<command xmlns='"+NSCommands+"' node='"+NSAdmin+"#nope'/>"), stanza.ItemNotFound, "")
	// type get is not how commands run.
	Feature.IQs[0].Server(featuretest.IQ(t, f.s, f.p, "<iq from='op@example.com/r' to='example.com' type='get' id='g'><command xmlns='"+NSCommands+"' node='"+NSAdmin+"#add-user'/></iq>"))
	failed(t, f.s.Client[len(f.s.Client)-1], stanza.BadRequest, "")
}

func TestActions(t *testing.T) {
	f := newFixture(t)
	failed(t, f.exec(t, "add-user", " action='next'", ""), stanza.BadRequest, "bad-action")
	failed(t, f.exec(t, "add-user", " action='prev'", ""), stanza.BadRequest, "bad-action")
	failed(t, f.exec(t, "add-user", " action='jump'", ""), stanza.BadRequest, "malformed-action")
	// cancel without a session is still canceled.
	if r := parse(t, f.exec(t, "add-user", " action='cancel'", "")); r.status != "canceled" || r.sid == "" {
		t.Errorf("cancel: %+v", r)
	}
}

func TestOwnBareJID(t *testing.T) {
	f := newFixture(t)
	st := f.send(t, admin, "<command xmlns='"+NSCommands+"' node='"+NSAdmin+"#get-registered-users-num'/>")
	if st.Head.From != admin || result(t, st, "registeredusersnum")[0] != "3" {
		t.Errorf("to own bare JID: %s", st.Raw)
	}
	st = f.send(t, "", "<command xmlns='"+NSCommands+"' node='"+NSAdmin+"#get-registered-users-num'/>")
	if st.Head.From != "" || result(t, st, "registeredusersnum")[0] != "3" {
		t.Errorf("without 'to': %s", st.Raw)
	}
	// A non-admin's own JID serves no commands.
	s := featuretest.NewSession(f.srv, alice+"/a")
	Feature.IQs[0].Session(featuretest.IQ(t, s, Feature.NewSession(s), "<iq from='alice@example.com/a' to='alice@example.com' type='set' id='o'><command xmlns='"+NSCommands+"' node='"+NSAdmin+"#get-registered-users-num'/></iq>"))
	failed(t, s.Client[0], stanza.Forbidden, "")
}

func TestMaxSessions(t *testing.T) {
	f := newFixture(t)
	var first string
	for i := 0; i < MaxSessions; i++ {
		r := parse(t, f.exec(t, "announce", "", ""))
		if i == 0 {
			first = r.sid
		}
	}
	if len(f.p.open) != MaxSessions {
		t.Fatalf("%d open", len(f.p.open))
	}
	parse(t, f.exec(t, "announce", "", ""))
	if len(f.p.open) != 1 {
		t.Fatalf("%d open after the limit", len(f.p.open))
	}
	failed(t, f.exec(t, "announce", " sessionid='"+first+"'", ""), stanza.BadRequest, "bad-sessionid")
}

func TestFormType(t *testing.T) {
	f := newFixture(t)
	st := f.exec(t, "add-user", "", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field>"+
		"<field var='accountjid'><value>carol@example.com</value></field><field var='password'><value>p</value></field></x>")
	failed(t, st, stanza.BadRequest, "bad-payload")
	// XEP-0050 §3.5.1: type='cancel' counts as submitted; a form without FORM_TYPE is accepted.
	st = f.exec(t, "add-user", "", "<x xmlns='jabber:x:data' type='cancel'><field var='accountjid'><value>carol@example.com</value></field><field var='password'><value>p</value></field></x>")
	completed(t, st)
}

// ---- accounts ----

func TestAddUserErrors(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		fields   map[string][]string
		cond     stanza.Condition
		specific string
	}{
		{map[string][]string{"password": {"p"}}, stanza.BadRequest, "bad-payload"},
		{map[string][]string{"accountjid": {"  "}, "password": {"p"}}, stanza.BadRequest, "bad-payload"},
		{map[string][]string{"accountjid": {"carol@example.com"}}, stanza.BadRequest, "bad-payload"},
		{map[string][]string{"accountjid": {"carol@example.com"}, "password": {"p"}, "password-verify": {"q"}}, stanza.BadRequest, "bad-payload"},
		{map[string][]string{"accountjid": {"carol@example.com"}, "password": {"p"}, "password-verify": {}}, stanza.BadRequest, "bad-payload"},
		{map[string][]string{"accountjid": {"carol@example.com", "dave@example.com"}, "password": {"p"}}, stanza.BadRequest, "bad-payload"},
		{map[string][]string{"accountjid": {"@@"}, "password": {"p"}}, stanza.JIDMalformed, ""},
		{map[string][]string{"accountjid": {"carol@elsewhere.org"}, "password": {"p"}}, stanza.JIDMalformed, ""},
		{map[string][]string{"accountjid": {"example.com"}, "password": {"p"}}, stanza.JIDMalformed, ""},
		{map[string][]string{"accountjid": {"carol@example.com/res"}, "password": {"p"}}, stanza.JIDMalformed, ""},
		{map[string][]string{"accountjid": {alice}, "password": {"p"}}, stanza.Conflict, ""},
	} {
		failed(t, f.submit(t, "add-user", c.fields), c.cond, c.specific)
	}
	if n, _ := f.srv.DB.CountAccounts(context.Background(), ""); n != 3 {
		t.Errorf("%d accounts after refused add-user", n)
	}
	// Without password-verify the password alone is enough; another served domain is fine.
	if r := completed(t, f.submit(t, "add-user", map[string][]string{"accountjid": {"Carol@Example.NET"}, "password": {"p"}})); r.note != "The account carol@example.net was created." {
		t.Errorf("note %q", r.note)
	}
}

func TestDeleteUser(t *testing.T) {
	f := newFixture(t)
	r := completed(t, f.submit(t, "delete-user", map[string][]string{"accountjids": {alice, "nobody@example.com", alice}}))
	if r.note != "Deleted: alice@example.com. No such account: nobody@example.com." {
		t.Errorf("note %q", r.note)
	}
	if _, err := f.srv.DB.Credentials(context.Background(), alice); err == nil {
		t.Error("alice still exists")
	}
	if len(f.s.Sent) != 1 || f.s.Sent[0].To.String() != alice || f.s.Sent[0].Msg != (accountDeleted{}) {
		t.Errorf("sent %+v", f.s.Sent)
	}
	// One bad JID: nothing is deleted.
	failed(t, f.submit(t, "delete-user", map[string][]string{"accountjids": {bob, "bad@@"}}), stanza.JIDMalformed, "")
	if _, err := f.srv.DB.Credentials(context.Background(), bob); err != nil {
		t.Error("bob deleted along with a malformed JID")
	}
	failed(t, f.submit(t, "delete-user", map[string][]string{}), stanza.BadRequest, "bad-payload")
}

func TestDisableReenable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := completed(t, f.submit(t, "disable-user", map[string][]string{"accountjids": {alice, "nobody@example.com"}}))
	if r.note != "Disabled: alice@example.com. No such account: nobody@example.com." {
		t.Errorf("note %q", r.note)
	}
	if reason, d, _ := accounts.DisabledReason(ctx, f.srv.DB, featuretest.MustJID(alice)); !d || reason != "disabled by "+admin {
		t.Errorf("alice disabled=%v reason %q", d, reason)
	}
	want := endSessions{Condition: "policy-violation", Text: "the account was disabled by an administrator"}
	if len(f.s.Sent) != 1 || f.s.Sent[0].To.String() != alice || f.s.Sent[0].Msg != want {
		t.Errorf("sent %+v", f.s.Sent)
	}
	if got := result(t, f.exec(t, "get-disabled-users-num", "", ""), "disabledusersnum"); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("disabled num %v", got)
	}
	if got := result(t, f.submit(t, "get-disabled-users-list", map[string][]string{"max_items": {"none"}}), "disableduserjids"); !reflect.DeepEqual(got, []string{alice}) {
		t.Errorf("disabled list %v", got)
	}
	r = completed(t, f.submit(t, "reenable-user", map[string][]string{"accountjids": {alice, bob}}))
	if r.note != "Re-enabled: alice@example.com. Not disabled: bob@example.com." {
		t.Errorf("note %q", r.note)
	}
	if d, _ := accounts.IsDisabled(ctx, f.srv.DB, featuretest.MustJID(alice)); d {
		t.Error("alice still disabled")
	}
	if got := result(t, f.exec(t, "get-disabled-users-num", "", ""), "disabledusersnum"); !reflect.DeepEqual(got, []string{"0"}) {
		t.Errorf("disabled num %v", got)
	}
}

func TestEndUserSession(t *testing.T) {
	f := newFixture(t)
	f.s.AskAnswers[featuretest.MustJID(alice)] = sessionsEnded{N: 2}
	r := completed(t, f.submit(t, "end-user-session", map[string][]string{"accountjids": {alice, bob + "/phone"}}))
	if r.note != "Ended 2 session(s) of: alice@example.com. No session: bob@example.com/phone." {
		t.Errorf("note %q", r.note)
	}
	failed(t, f.submit(t, "end-user-session", map[string][]string{"accountjids": {"example.com/x"}}), stanza.JIDMalformed, "")
	failed(t, f.submit(t, "end-user-session", map[string][]string{"accountjids": {"a@elsewhere.org/x"}}), stanza.JIDMalformed, "")
	failed(t, f.submit(t, "end-user-session", nil), stanza.BadRequest, "bad-payload")
}

func TestChangePassword(t *testing.T) {
	f := newFixture(t)
	before, _ := f.srv.DB.Credentials(context.Background(), alice)
	r := completed(t, f.submit(t, "change-user-password", map[string][]string{"accountjid": {alice}, "password": {"new"}}))
	if r.note != "The password of alice@example.com was changed." {
		t.Errorf("note %q", r.note)
	}
	if after, _ := f.srv.DB.Credentials(context.Background(), alice); reflect.DeepEqual(before, after) {
		t.Error("credentials unchanged")
	}
	failed(t, f.submit(t, "change-user-password", map[string][]string{"accountjid": {"nobody@example.com"}, "password": {"new"}}), stanza.ItemNotFound, "")
	failed(t, f.submit(t, "change-user-password", map[string][]string{"accountjid": {alice}}), stanza.BadRequest, "bad-payload")
	failed(t, f.submit(t, "change-user-password", map[string][]string{"password": {"x"}}), stanza.BadRequest, "bad-payload")
}

func TestUserRoster(t *testing.T) {
	f := newFixture(t)
	f.s.AskAnswers[featuretest.MustJID(alice)] = rosterAnswer{Items: []storage.RosterItem{
		{JID: "bob@example.com", Name: "Bob & co", Subscription: "both", Groups: []string{"Friends", "<Work>"}},
		{JID: "carol@example.net", Subscription: "none", Ask: true},
	}}
	st := f.submit(t, "get-user-roster", map[string][]string{"accountjids": {alice}})
	if got := result(t, st, "accountjids"); !reflect.DeepEqual(got, []string{alice}) {
		t.Errorf("accountjids %v", got)
	}
	want := "<query xmlns='jabber:iq:roster'><item jid='bob@example.com' name='Bob &amp; co' subscription='both'><group>Friends</group><group>&lt;Work&gt;</group></item>" +
		"<item jid='carol@example.net' subscription='none' ask='subscribe'/></query></x></command></iq>"
	if !strings.HasSuffix(st.Raw, want) {
		t.Errorf("roster\n got %q\nwant suffix %q", st.Raw, want)
	}
	// No answer from bob's actor: the stored roster.
	if _, err := f.srv.DB.PutRosterItem(context.Background(), bob, storage.RosterItem{JID: "dave@example.com", Subscription: "from"}); err != nil {
		t.Fatal(err)
	}
	st = f.submit(t, "get-user-roster", map[string][]string{"accountjids": {bob}})
	if want := "<query xmlns='jabber:iq:roster'><item jid='dave@example.com' subscription='from'/></query>"; !strings.Contains(st.Raw, want) {
		t.Errorf("stored roster: %s", st.Raw)
	}
	failed(t, f.submit(t, "get-user-roster", map[string][]string{"accountjids": {"nobody@example.com"}}), stanza.ItemNotFound, "")
	failed(t, f.submit(t, "get-user-roster", map[string][]string{"accountjids": {alice, bob}}), stanza.BadRequest, "bad-payload")
}

func TestUserLastLogin(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	f.s.AskAnswers[featuretest.MustJID(alice)] = lastLoginAnswer{At: at}
	st := f.submit(t, "get-user-lastlogin", map[string][]string{"accountjids": {alice}})
	if got := result(t, st, "lastlogin"); !reflect.DeepEqual(got, []string{"2024-05-06T07:08:09Z"}) {
		t.Errorf("lastlogin %v: %s", got, st.Raw)
	}
	if fl := completed(t, st).fields["lastlogin"]; fl.Attr("type") != "text-single" || fl.Attr("label") != "The last login time (per XEP-0082) of a user" {
		t.Errorf("field %s", st.Raw)
	}
	// Never logged in.
	if got := result(t, f.submit(t, "get-user-lastlogin", map[string][]string{"accountjids": {bob}}), "lastlogin"); got != nil {
		t.Errorf("bob never logged in: %v", got)
	}
	// No answer: the stored last presence.
	if err := f.srv.DB.SetLastPresence(context.Background(), bob, "<presence type='unavailable'/>", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := result(t, f.submit(t, "get-user-lastlogin", map[string][]string{"accountjids": {bob}}), "lastlogin"); !reflect.DeepEqual(got, []string{"2024-05-06T08:08:09Z"}) {
		t.Errorf("stored: %v", got)
	}
	failed(t, f.submit(t, "get-user-lastlogin", map[string][]string{"accountjids": {"nobody@example.com"}}), stanza.ItemNotFound, "")
}

func TestUserStats(t *testing.T) {
	f := newFixture(t)
	f.s.AskAnswers[featuretest.MustJID(alice)] = statsAnswer{RosterSize: 3, Resources: []string{"phone", "desk"}, Addresses: []string{"192.0.2.1", "2001:db8::1"}}
	st := f.submit(t, "user-stats", map[string][]string{"accountjid": {alice}})
	want := "<field var='ipaddresses' type='list-multi' label='The IP addresses of an account&apos;s online sessions'><value>192.0.2.1</value><value>2001:db8::1</value></field>" +
		"<field var='rostersize' type='text-single' label='Number of roster items for an account'><value>3</value></field>" +
		"<field var='onlineresources' type='text-multi' label='The names of an account&apos;s online sessions'><value>phone</value><value>desk</value></field>"
	if !strings.Contains(st.Raw, want) {
		t.Errorf("stats\n got %q\nwant %q", st.Raw, want)
	}
	if _, err := f.srv.DB.PutRosterItem(context.Background(), bob, storage.RosterItem{JID: "dave@example.com"}); err != nil {
		t.Fatal(err)
	}
	st = f.submit(t, "user-stats", map[string][]string{"accountjid": {bob}})
	if got := result(t, st, "rostersize"); !reflect.DeepEqual(got, []string{"1"}) || result(t, st, "onlineresources") != nil {
		t.Errorf("stored stats: %s", st.Raw)
	}
	failed(t, f.submit(t, "user-stats", map[string][]string{"accountjid": {"nobody@example.com"}}), stanza.ItemNotFound, "")
}

// ---- numbers and lists ----

func TestPopulation(t *testing.T) {
	f := newFixture(t)
	f.s.SurveyAnswers = []any{
		userState{Bare: "dan@example.com", Online: true, Active: false},
		userState{Bare: alice, Online: true, Active: true},
		userState{Bare: bob, Online: false},
		userState{Bare: "eve@example.com", Online: true, Active: true},
		announced{Reached: true}, // not an answer to this question
	}
	for node, want := range map[string]string{"get-online-users-num": "3", "get-active-users-num": "2", "get-idle-users-num": "1"} {
		v := strings.TrimPrefix(strings.TrimSuffix(node, "-num"), "get-")
		v = strings.ReplaceAll(v, "-", "") + "num"
		if got := result(t, f.exec(t, node, "", ""), v); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("%s: %v, want %s", node, got, want)
		}
	}
	for _, c := range []struct {
		node, v, label string
		max            []string
		want           []string
	}{
		{"get-online-users-list", "onlineuserjids", "The list of all online users", nil, []string{alice, "dan@example.com", "eve@example.com"}},
		{"get-online-users-list", "onlineuserjids", "The list of all online users", []string{"2"}, []string{alice, "dan@example.com"}},
		{"get-active-users", "activeuserjids", "The list of active users", []string{"none"}, []string{alice, "eve@example.com"}},
		{"get-active-users-list", "activeuserjids", "The list of active users", []string{"25"}, []string{alice, "eve@example.com"}},
		{"get-idle-users", "activeuserjids", "The list of idle users", nil, []string{"dan@example.com"}},
	} {
		fields := map[string][]string{}
		if c.max != nil {
			fields["max_items"] = c.max
		}
		st := f.submit(t, c.node, fields)
		if got := result(t, st, c.v); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %v: %v, want %v", c.node, c.max, got, c.want)
		}
		if fl := completed(t, st).fields[c.v]; fl.Attr("type") != "jid-multi" || fl.Attr("label") != c.label {
			t.Errorf("%s field: %s", c.node, st.Raw)
		}
		if r := completed(t, st); r.node != NSAdmin+"#"+c.node {
			t.Errorf("answer node %q for %s", r.node, c.node)
		}
	}
	for _, bad := range []string{"0", "-3", "many"} {
		failed(t, f.submit(t, "get-online-users-list", map[string][]string{"max_items": {bad}}), stanza.BadRequest, "bad-payload")
	}
}

func TestRegistered(t *testing.T) {
	f := newFixture(t)
	f.srv.AddAccount(t, "zed@example.net")
	st := f.exec(t, "get-registered-users-num", "", "")
	want := "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>" + NSAdmin + "</value></field>" +
		"<field var='registeredusersnum' type='text-single' label='The number of registered users'><value>3</value></field></x>"
	if !strings.Contains(st.Raw, want) {
		t.Errorf("num\n got %q\nwant %q", st.Raw, want)
	}
	// Scoped to the domain the command went to.
	st = f.send(t, "example.net", "<command xmlns='"+NSCommands+"' node='"+NSAdmin+"#get-registered-users-num'/>")
	if got := result(t, st, "registeredusersnum"); !reflect.DeepEqual(got, []string{"1"}) {
		t.Errorf("example.net: %v", got)
	}
	if got := result(t, f.submit(t, "get-registered-users-list", map[string][]string{"max_items": {"2"}}), "registereduserjids"); !reflect.DeepEqual(got, []string{alice, bob}) {
		t.Errorf("list %v", got)
	}
}

// ---- announcements, MOTD, welcome ----

func TestAnnounce(t *testing.T) {
	f := newFixture(t)
	f.s.SurveyAnswers = []any{announced{Reached: true}, announced{Reached: false}, announced{Reached: true}}
	r := parse(t, f.exec(t, "announce", "", ""))
	if fl := r.fields["announcement"]; fl == nil || fl.Attr("type") != "text-multi" || fl.Attr("label") != "Announcement" || fl.Child(stanza.NSXData, "required") == nil || len(r.fields) != 2 {
		t.Fatalf("form %+v", r.fields)
	}
	st := f.exec(t, "announce", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"announcement": {"Going down", "at noon"}}))
	if done := completed(t, st); done.note != "The announcement was sent to 2 online user(s)." {
		t.Errorf("note %q", done.note)
	}
	failed(t, f.submit(t, "announce", map[string][]string{"announcement": {" "}}), stanza.BadRequest, "bad-payload")
	if got := announcement("", "a\nb<"); got != "<body>a\nb&lt;</body>" {
		t.Errorf("payload %q", got)
	}
	if got := announcement("S", "b"); got != "<subject>S</subject><body>b</body>" {
		t.Errorf("payload %q", got)
	}
}

func TestMOTDCommands(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// edit-motd with none set: an empty required field.
	r := parse(t, f.exec(t, "edit-motd", "", ""))
	if fl := r.fields["motd"]; fl == nil || values(fl) != nil || fl.Attr("label") != "Message of the Day" || fl.Child(stanza.NSXData, "required") == nil {
		t.Fatalf("edit form %+v", r.fields)
	}
	f.s.SurveyAnswers = []any{motdDelivered{Delivered: true}, motdDelivered{}}
	if done := completed(t, f.submit(t, "set-motd", map[string][]string{"motd": {"Line one", "Line two"}})); done.note != "The message of the day was set and sent to 1 online user(s)." {
		t.Errorf("note %q", done.note)
	}
	v, err := f.srv.DB.GetKV(ctx, "example.com", KVMOTD, "motd")
	id, body, _ := strings.Cut(v, "\n")
	if err != nil || id == "" || body != "Line one\nLine two" {
		t.Fatalf("stored %q %v", v, err)
	}
	// §4.25: the edit form shows the current message.
	r = parse(t, f.exec(t, "edit-motd", "", ""))
	if got := values(r.fields["motd"]); !reflect.DeepEqual(got, []string{"Line one", "Line two"}) {
		t.Errorf("edit form values %v", got)
	}
	completed(t, f.exec(t, "edit-motd", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"motd": {"Fixed"}})))
	if v, _ := f.srv.DB.GetKV(ctx, "example.com", KVMOTD, "motd"); !strings.HasSuffix(v, "\nFixed") {
		t.Errorf("edited %q", v)
	}
	failed(t, f.submit(t, "set-motd", map[string][]string{"motd": {}}), stanza.BadRequest, "bad-payload")
	if done := completed(t, f.exec(t, "delete-motd", "", "")); done.note != "The message of the day was deleted." {
		t.Errorf("note %q", done.note)
	}
	if _, err := f.srv.DB.GetKV(ctx, "example.com", KVMOTD, "motd"); err == nil {
		t.Error("motd not deleted")
	}
}

func TestWelcome(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	carol := featuretest.MustJID("carol@example.com")
	// No welcome message: nothing queued.
	Feature.AccountCreated(f.srv, carol)
	if n, _ := f.srv.DB.CountOffline(ctx, carol.String()); n != 0 {
		t.Fatalf("%d queued without a welcome message", n)
	}
	r := parse(t, f.exec(t, "set-welcome", "", ""))
	if fl := r.fields["welcome"]; fl == nil || fl.Attr("type") != "text-multi" || fl.Attr("label") != "Welcome Message" {
		t.Fatalf("form %+v", r.fields)
	}
	completed(t, f.exec(t, "set-welcome", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"welcome": {"Welcome to example.com", "<be nice>"}})))
	if got := values(parse(t, f.exec(t, "set-welcome", "", "")).fields["welcome"]); !reflect.DeepEqual(got, []string{"Welcome to example.com", "<be nice>"}) {
		t.Errorf("form shows %v", got)
	}
	Feature.AccountCreated(f.srv, carol)
	msgs, err := f.srv.DB.OfflineMessages(ctx, carol.String())
	want := "<message from='example.com' to='carol@example.com'><body>Welcome to example.com\n&lt;be nice&gt;</body></message>"
	if err != nil || len(msgs) != 1 || msgs[0].Stanza != want {
		t.Fatalf("queued %+v %v\nwant %q", msgs, err, want)
	}
	// Another domain has its own (none).
	Feature.AccountCreated(f.srv, featuretest.MustJID("carol@example.net"))
	if n, _ := f.srv.DB.CountOffline(ctx, "carol@example.net"); n != 0 {
		t.Error("example.com's welcome message sent on example.net")
	}
	// add-user welcomes too.
	completed(t, f.submit(t, "add-user", map[string][]string{"accountjid": {"dave@example.com"}, "password": {"p"}}))
	if n, _ := f.srv.DB.CountOffline(ctx, "dave@example.com"); n != 1 {
		t.Errorf("add-user queued %d", n)
	}
	completed(t, f.exec(t, "delete-welcome", "", ""))
	Feature.AccountCreated(f.srv, featuretest.MustJID("erin@example.com"))
	if n, _ := f.srv.DB.CountOffline(ctx, "erin@example.com"); n != 0 {
		t.Error("deleted welcome message still sent")
	}
	failed(t, f.submit(t, "set-welcome", map[string][]string{"welcome": {""}}), stanza.BadRequest, "bad-payload")
}

// ---- admins, restart, shutdown ----

func TestEditAdmin(t *testing.T) {
	f := newFixture(t)
	f.srv.Cfg.Admins = []string{admin, "root@example.net/console"}
	r := parse(t, f.exec(t, "edit-admin", "", ""))
	fl := r.fields["adminjids"]
	if fl == nil || fl.Attr("type") != "jid-multi" || fl.Attr("label") != "The admin list" || !reflect.DeepEqual(values(fl), []string{admin, "root@example.net"}) {
		t.Fatalf("form %s", fl)
	}
	if done := completed(t, f.exec(t, "edit-admin", " sessionid='"+r.sid+"'", submitForm(map[string][]string{"adminjids": {"root@example.net", admin}}))); done.note != "The admin list is unchanged." {
		t.Errorf("note %q", done.note)
	}
	st := f.submit(t, "edit-admin", map[string][]string{"adminjids": {admin, alice}})
	failed(t, st, stanza.NotAllowed, "")
	if !strings.Contains(st.Raw, "the admin list is the admins key of config.toml") {
		t.Errorf("no explanation: %s", st.Raw)
	}
	failed(t, f.submit(t, "edit-admin", map[string][]string{"adminjids": {"@@"}}), stanza.JIDMalformed, "")
}

func TestShutdownAndRestart(t *testing.T) {
	f := newFixture(t)
	r := parse(t, f.exec(t, "restart", "", ""))
	d := r.fields["delay"]
	if d == nil || d.Attr("type") != "list-single" || d.Attr("label") != "Time delay before restarting" || len(d.ChildrenNamed(stanza.NSXData, "option")) != 7 {
		t.Fatalf("delay field %s", d)
	}
	if a := r.fields["announcement"]; a == nil || a.Attr("type") != "text-multi" || a.Child(stanza.NSXData, "required") != nil {
		t.Fatalf("announcement field %s", a)
	}
	if d := parse(t, f.exec(t, "shutdown", "", "")).fields["delay"]; d.Attr("label") != "Time delay before shutting down" {
		t.Errorf("shutdown delay label %q", d.Attr("label"))
	}

	// At once: answered first, then the server is asked to stop.
	n := len(f.s.Client)
	completed(t, f.exec(t, "restart", " sessionid='"+r.sid+"'", submitForm(map[string][]string{})))
	if len(f.s.Client) != n+1 || !reflect.DeepEqual(f.srv.ShutdownCalls, []bool{true}) {
		t.Fatalf("restart: answers %d, shutdown calls %v", len(f.s.Client)-n, f.srv.ShutdownCalls)
	}
	// With a delay and an announcement: the announcement is surveyed, the stop scheduled.
	f.s.SurveyAnswers = []any{announced{Reached: true}}
	st := f.submit(t, "shutdown", map[string][]string{"delay": {"120"}, "announcement": {"Bye"}})
	if done := completed(t, st); done.note != "The service will shut down in 120 seconds." {
		t.Errorf("note %q", done.note)
	}
	if !reflect.DeepEqual(f.delayed, []time.Duration{120 * time.Second}) || len(f.srv.ShutdownCalls) != 1 {
		t.Fatalf("delayed %v, calls %v", f.delayed, f.srv.ShutdownCalls)
	}
	f.fire[0]()
	if !reflect.DeepEqual(f.srv.ShutdownCalls, []bool{true, false}) {
		t.Errorf("calls %v", f.srv.ShutdownCalls)
	}
	for _, bad := range []string{"soon", "-1", "86400"} {
		failed(t, f.submit(t, "shutdown", map[string][]string{"delay": {bad}}), stanza.BadRequest, "bad-payload")
	}
	if len(f.srv.ShutdownCalls) != 2 || len(f.delayed) != 1 {
		t.Errorf("refused forms stopped the server: %v %v", f.srv.ShutdownCalls, f.delayed)
	}
}

// Every listed command has a form or runs at once, and its form has FORM_TYPE plus only XEP-0133 fields.
func TestEveryCommandForm(t *testing.T) {
	f := newFixture(t)
	registry := map[string]bool{"accountjid": true, "accountjids": true, "password": true, "password-verify": true, "max_items": true,
		"announcement": true, "motd": true, "welcome": true, "adminjids": true, "delay": true, "FORM_TYPE": true}
	for _, c := range commands {
		if c.fields == nil {
			continue
		}
		r := parse(t, f.exec(t, c.node, "", ""))
		if r.status != "executing" || r.form == nil || r.form.Attr("type") != "form" || values(r.fields["FORM_TYPE"])[0] != NSAdmin {
			t.Errorf("%s: %+v", c.node, r)
			continue
		}
		for v, fl := range r.fields {
			if !registry[v] || fl.Attr("type") == "" || v != "FORM_TYPE" && fl.Attr("label") == "" {
				t.Errorf("%s: field %s", c.node, fl)
			}
		}
	}
}

// ---- the user part ----

type userFixture struct {
	srv *featuretest.Server
	u   *featuretest.User
	p   *userPart
}

func newUser(t *testing.T, bare string) *userFixture {
	srv := featuretest.NewServer(t, Feature)
	srv.Cfg.Domains = []string{"example.com", "example.net"}
	srv.AddAccount(t, bare)
	u := featuretest.NewUser(srv, bare, true)
	return &userFixture{srv: srv, u: u, p: Feature.NewUser(u).(*userPart)}
}

// online adds a resource with the given show ("" none; "-" connected but not available yet).
func (f *userFixture) online(t *testing.T, res, show, addr string) {
	t.Helper()
	r := f.u.Online(res, 0)
	if show == "-" {
		r.Available, r.Presence = false, nil
	} else if show != "" {
		r.Presence = featuretest.Stanza(t, "<presence from='"+r.Full.String()+"'><show>"+show+"</show></presence>")
	}
	r.Addr = addr
	f.u.Res[len(f.u.Res)-1] = r
}

func TestUserPopulation(t *testing.T) {
	for _, c := range []struct {
		shows          []string
		online, active bool
	}{
		{nil, false, false},
		{[]string{""}, true, true},
		{[]string{"chat"}, true, true},
		{[]string{"dnd"}, true, true},
		{[]string{"away"}, true, false},
		{[]string{"xa", "-"}, true, false},
		{[]string{"-"}, true, false},
		{[]string{"away", "dnd"}, true, true},
	} {
		f := newUser(t, alice)
		for i, s := range c.shows {
			f.online(t, "r"+strconv.Itoa(i), s, "")
		}
		want := userState{Bare: alice, Online: c.online, Active: c.active}
		if got := f.p.Answer(populationQuery{Domain: "example.com"}); got != want {
			t.Errorf("%v: %+v, want %+v", c.shows, got, want)
		}
		if got := f.p.Answer(populationQuery{Domain: "example.net"}); got != nil {
			t.Errorf("other domain answered %+v", got)
		}
	}
}

func TestUserAnnounce(t *testing.T) {
	f := newUser(t, alice)
	if got := f.p.Answer(announceQuery{Domain: "example.com", Payload: "<body>x</body>"}); got != (announced{}) {
		t.Errorf("offline: %+v", got)
	}
	f.online(t, "a", "", "")
	f.online(t, "b", "-", "")
	if got := f.p.Answer(announceQuery{Domain: "example.net", Payload: "<body>x</body>"}); got != nil {
		t.Errorf("other domain: %+v", got)
	}
	for _, domain := range []string{"example.com", ""} {
		if got := f.p.Answer(announceQuery{Domain: domain, Payload: "<body>x</body>"}); got != (announced{Reached: true}) {
			t.Errorf("%q: %+v", domain, got)
		}
	}
	a, b := f.u.Res[0].Full, f.u.Res[1].Full
	want := "<message from='example.com' to='alice@example.com/a' type='headline'><body>x</body></message>"
	if got := f.u.Delivered[a]; len(got) != 2 || got[0].Raw != want || got[1].Raw != want {
		t.Errorf("delivered %+v", got)
	}
	if len(f.u.Delivered[b]) != 0 {
		t.Error("delivered to a resource that is not available")
	}
}

func TestUserMOTD(t *testing.T) {
	f := newUser(t, alice)
	ctx := context.Background()
	f.online(t, "a", "", "")
	// None set: nothing.
	f.p.PresenceChanged(f.u.Res[0], true)
	if len(f.u.Delivered) != 0 {
		t.Fatal("delivered without a MOTD")
	}
	// Set while alice is online: she gets it at once, from the survey.
	if err := f.srv.DB.PutKV(ctx, "example.com", KVMOTD, "motd", "id1\nHello"); err != nil {
		t.Fatal(err)
	}
	if got := f.p.Answer(motdUpdate{Domain: "example.com", ID: "id1", Body: "Hello"}); got != (motdDelivered{Delivered: true}) {
		t.Errorf("update: %+v", got)
	}
	a := f.u.Res[0].Full
	want := "<message from='example.com' to='alice@example.com/a' id='motd1'><body>Hello</body></message>"
	if got := f.u.Delivered[a]; len(got) != 1 || got[0].Raw != want {
		t.Fatalf("delivered %+v", got)
	}
	if seen, _ := f.srv.DB.GetKV(ctx, alice, KVMOTD, "seen"); seen != "id1" {
		t.Errorf("seen %q", seen)
	}
	// Once per user: neither a new resource nor a repeated survey gets it again.
	f.online(t, "b", "", "")
	f.p.PresenceChanged(f.u.Res[1], true)
	f.p.Answer(motdUpdate{Domain: "example.com", ID: "id1", Body: "Hello"})
	if len(f.u.Delivered[a]) != 1 || len(f.u.Delivered[f.u.Res[1].Full]) != 0 {
		t.Errorf("delivered again: %+v", f.u.Delivered)
	}
	// Another domain's MOTD is not alice's.
	if got := f.p.Answer(motdUpdate{Domain: "example.net", ID: "x", Body: "y"}); got != nil {
		t.Errorf("other domain: %+v", got)
	}

	// A new actor (the user logs in later): the stored MOTD, unless seen; only the resource that came online.
	g := newUser(t, bob)
	if err := g.srv.DB.PutKV(ctx, "example.com", KVMOTD, "motd", "id2\nNews"); err != nil {
		t.Fatal(err)
	}
	g.online(t, "a", "", "")
	g.online(t, "b", "", "")
	g.p.PresenceChanged(g.u.Res[0], false) // not initial: nothing
	if len(g.u.Delivered) != 0 {
		t.Fatal("delivered on a presence update")
	}
	g.p.PresenceChanged(g.u.Res[1], true)
	if got := g.u.Delivered[g.u.Res[1].Full]; len(got) != 1 || !strings.Contains(got[0].Raw, "<body>News</body>") || len(g.u.Delivered[g.u.Res[0].Full]) != 0 {
		t.Fatalf("delivered %+v", g.u.Delivered)
	}
	// Deleted: a user who has not seen it does not get it any more.
	h := newUser(t, "carol@example.com")
	if err := h.srv.DB.PutKV(ctx, "example.com", KVMOTD, "motd", "id3\nOld"); err != nil {
		t.Fatal(err)
	}
	h.online(t, "a", "-", "")
	if got := h.p.Answer(motdUpdate{Domain: "example.com", ID: "id3", Body: "Old"}); got != (motdDelivered{}) {
		t.Errorf("not available: %+v", got)
	}
	h.p.Answer(motdUpdate{Domain: "example.com"})
	r := h.u.Res[0]
	r.Available = true
	h.p.PresenceChanged(r, true)
	if len(h.u.Delivered) != 0 {
		t.Errorf("deleted MOTD delivered: %+v", h.u.Delivered)
	}
}

func TestUserRosterStatsLastLogin(t *testing.T) {
	f := newUser(t, alice)
	f.u.Subs[featuretest.MustJID(bob)] = "both"
	f.u.Subs[featuretest.MustJID("carol@example.com")] = "to"
	if got := f.p.Answer(rosterQuery{}).(rosterAnswer); len(got.Items) != 2 || got.Items[0].JID != bob {
		t.Errorf("roster %+v", got)
	}
	if got := f.p.Answer(statsQuery{}); !reflect.DeepEqual(got, statsAnswer{RosterSize: 2}) {
		t.Errorf("offline stats %+v", got)
	}
	f.u.Seen = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := f.p.Answer(lastLoginQuery{}); got != (lastLoginAnswer{At: f.u.Seen}) {
		t.Errorf("offline last login %+v", got)
	}
	f.online(t, "phone", "", "192.0.2.7:5222")
	f.online(t, "desk", "away", "[2001:db8::2]:40000")
	f.p.Bound(f.u.Res[1])
	want := statsAnswer{RosterSize: 2, Resources: []string{"phone", "desk"}, Addresses: []string{"192.0.2.7", "2001:db8::2"}}
	if got := f.p.Answer(statsQuery{}); !reflect.DeepEqual(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	got := f.p.Answer(lastLoginQuery{}).(lastLoginAnswer)
	if time.Since(got.At) > time.Minute {
		t.Errorf("online last login %v", got.At)
	}
	if f.p.Answer("what?") != nil {
		t.Error("unknown question answered")
	}
}

func TestUserEndSessions(t *testing.T) {
	f := newUser(t, alice)
	f.online(t, "phone", "", "")
	f.online(t, "desk", "", "")
	if got := f.p.Answer(endSessions{Resource: "tablet", Condition: kickCondition, Text: kickText}); got != (sessionsEnded{}) {
		t.Errorf("no such resource: %+v", got)
	}
	if got := f.p.Answer(endSessions{Resource: "desk", Condition: kickCondition, Text: kickText}); got != (sessionsEnded{N: 1}) {
		t.Errorf("one: %+v", got)
	}
	if want := map[jid.JID]string{f.u.Res[1].Full: "policy-violation"}; !reflect.DeepEqual(f.u.EndedRes, want) {
		t.Errorf("ended %v", f.u.EndedRes)
	}
	f.p.Handle(endSessions{Condition: disableCondition, Text: disableText})
	if len(f.u.EndedRes) != 2 || f.u.EndedRes[f.u.Res[0].Full] != "policy-violation" {
		t.Errorf("ended %v", f.u.EndedRes)
	}
}

func TestUserAccountDeleted(t *testing.T) {
	f := newUser(t, alice)
	f.online(t, "phone", "", "")
	f.p.Handle(accountDeleted{})
	// The user actor cancels the subscriptions and ends the sessions (its own tests cover how).
	if !f.u.Removed {
		t.Errorf("the deleted account's user actor was not told")
	}
}

// A failing store answers internal-server-error and changes nothing.
func TestStorageFailure(t *testing.T) {
	f := newFixture(t)
	if err := f.srv.DB.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node   string
		fields map[string][]string
	}{
		{"get-registered-users-num", nil},
		{"get-disabled-users-num", nil},
		{"get-registered-users-list", map[string][]string{}},
		{"get-disabled-users-list", map[string][]string{}},
		{"delete-user", map[string][]string{"accountjids": {alice}}},
		{"disable-user", map[string][]string{"accountjids": {alice}}},
		{"reenable-user", map[string][]string{"accountjids": {alice}}},
		{"get-user-roster", map[string][]string{"accountjids": {alice}}},
		{"set-motd", map[string][]string{"motd": {"x"}}},
		{"delete-motd", nil},
		{"set-welcome", map[string][]string{"welcome": {"x"}}},
		{"delete-welcome", nil},
		{"add-user", map[string][]string{"accountjid": {"carol@example.com"}, "password": {"p"}}},
	} {
		var st *stanza.Routed
		if c.fields == nil {
			st = f.exec(t, c.node, "", "")
		} else {
			st = f.submit(t, c.node, c.fields)
		}
		failed(t, st, stanza.InternalServerError, "")
	}
	// A form that shows stored text cannot be built either.
	failed(t, f.exec(t, "edit-motd", "", ""), stanza.InternalServerError, "")
	if len(f.s.Sent) != 0 || len(f.p.open) != 0 {
		t.Errorf("sent %+v, open %v", f.s.Sent, f.p.open)
	}

	u := newUser(t, alice)
	u.online(t, "a", "", "")
	if err := u.srv.DB.Close(); err != nil {
		t.Fatal(err)
	}
	u.p.PresenceChanged(u.u.Res[0], true)
	if got := u.p.Answer(motdUpdate{Domain: "example.com", ID: "1", Body: "x"}); got != (motdDelivered{}) || len(u.u.Delivered) != 0 {
		t.Errorf("delivered with a failing store: %+v %+v", got, u.u.Delivered)
	}
}
