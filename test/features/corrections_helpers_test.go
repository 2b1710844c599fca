package features

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// Helpers of corrections_test.go. Every name starts with corr so that they never collide with the rest of the
// package, and they depend on nothing of it but the shared server (featuresServer).

const (
	corrNSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	corrNSDiscoItems = "http://jabber.org/protocol/disco#items"
	corrNSCommands   = "http://jabber.org/protocol/commands"
	corrNSAdmin      = "http://jabber.org/protocol/admin"
	corrNSXData      = "jabber:x:data"
	corrNSVCard      = "vcard-temp"
)

// corrServer is a server under test: the package's shared one or one of a test's own.
type corrServer struct {
	*harness.Server
}

// corrShared is the package's shared server (admins = [boss@localhost], [vcard] access = "contacts").
func corrShared(t *testing.T) *corrServer {
	t.Helper()
	return &corrServer{featuresServer.Get(t)}
}

// corrOwnServer starts a server for this test alone (stopped, with a clean exit asserted, when the test ends).
// admins is a top-level key the harness cannot write, so with admins the config is patched and the server
// restarted, as the shared server's Setup does.
func corrOwnServer(t *testing.T, o harness.Options, admins ...string) *corrServer {
	t.Helper()
	srv := harness.Start(t, o)
	if len(admins) > 0 {
		// Only the config changes: how the first run ends does not matter (a SIGTERM right after start may
		// arrive before the server's handler is installed), so the outcome is not checked.
		_ = srv.Shutdown()
		b, err := os.ReadFile(srv.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		var q []string
		for _, a := range admins {
			q = append(q, strconv.Quote(a))
		}
		cfg := "admins = [" + strings.Join(q, ", ") + "]\n" + string(b)
		if err := os.WriteFile(srv.ConfigPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		srv.Restart(t)
	}
	return &corrServer{srv}
}

// account creates a fresh account through the CLI.
func (s *corrServer) account(t *testing.T, role string) (local, password string) {
	t.Helper()
	return xmppclient.NewAccount(t, s.Server, role)
}

// unusedLocal is a fresh localpart that no account has.
func (s *corrServer) unusedLocal(t *testing.T, role string) string {
	t.Helper()
	return xmppclient.NewLocal(t, role)
}

func (s *corrServer) bare(local string) string { return local + "@" + s.Domain }

// online logs in with resource and sends initial presence.
func (s *corrServer) online(t *testing.T, local, password, resource string) *xmppclient.Client {
	t.Helper()
	return xmppclient.Online(t, s.Server, local, password, resource)
}

// connected logs in with resource and sends no presence (a connected but not available resource).
func (s *corrServer) connected(t *testing.T, local, password, resource string) *xmppclient.Client {
	t.Helper()
	return xmppclient.MustLoginTo(t, s.Server, local, password, xmppclient.Options{Resource: resource})
}

func (s *corrServer) login(t *testing.T, local, password, resource string) (*xmppclient.Client, error) {
	t.Helper()
	return xmppclient.LoginTo(t, s.Server, local, password, xmppclient.Options{Resource: resource})
}

// raw opens a raw stream and negotiates TLS; it returns the connection and the features offered over TLS.
func (s *corrServer) raw(t *testing.T) (*xmppclient.Raw, *xmppclient.Elem) {
	t.Helper()
	r := xmppclient.MustDialRaw(t, xmppclient.TargetOf(s.Server), xmppclient.RawOptions{})
	_, f := r.Open()
	if f.Child(xmppclient.NSTLS, "starttls") == nil {
		t.Fatalf("no STARTTLS offered: %s", f)
	}
	return r, r.StartTLS()
}

// saslPlain runs SASL PLAIN on a fresh raw stream and returns the server's answer (<success/> or <failure/>).
func (s *corrServer) saslPlain(t *testing.T, local, password string) *xmppclient.Elem {
	t.Helper()
	r, f := s.raw(t)
	mechs := f.Child(xmppclient.NSSASL, "mechanisms")
	plain := false
	for _, m := range mechs.Children(xmppclient.NSSASL, "mechanism") {
		plain = plain || m.Text == "PLAIN"
	}
	if !plain {
		t.Fatalf("PLAIN not offered over TLS: %s", f)
	}
	e := r.AuthPlain(local, password)
	r.Close()
	return e
}

var corrIDs atomic.Int64

// corrID is a fresh stanza id.
func corrID(prefix string) string { return prefix + "-" + strconv.FormatInt(corrIDs.Add(1), 10) }

// corrSync makes a ping round trip to c's server: whatever the server sent c before the answer is queued by the
// time it returns.
func corrSync(t *testing.T, c *xmppclient.Client, domain string) {
	t.Helper()
	r := c.IQ("<iq type='get' to='" + domain + "' id='" + corrID("sync") + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r.Get("type") != "result" {
		t.Fatalf("%s: ping to %s: %s", c.JID, domain, r)
	}
}

// corrIQResult fails unless e is an IQ result.
func corrIQResult(t *testing.T, what string, e *xmppclient.Elem) *xmppclient.Elem {
	t.Helper()
	if !e.Is(xmppclient.NSClient, "iq") || e.Get("type") != "result" {
		t.Fatalf("%s: want an IQ result, got %s", what, e)
	}
	return e
}

// corrStanzaError fails unless e is a stanza of the given kind ("iq", "message") and type error with an <error/>
// whose defined condition (RFC 6120 §8.3.3, namespace urn:ietf:params:xml:ns:xmpp-stanzas) is cond.
func corrStanzaError(t *testing.T, what, kind, cond string, e *xmppclient.Elem) {
	t.Helper()
	if !e.Is(xmppclient.NSClient, kind) || e.Get("type") != "error" {
		t.Errorf("%s: want <%s type='error'>, got %s", what, kind, e)
		return
	}
	if typ, c := e.StanzaError(); c != cond || typ == "" {
		t.Errorf("%s: error condition %q (type %q), want %q with a type: %s", what, c, typ, cond, e)
	}
}

// corrErrorText is the <text/> of a stanza's <error/> ("" if none).
func corrErrorText(e *xmppclient.Elem) string {
	return e.Child("", "error").Child(xmppclient.NSStanzas, "text").Text
}

// corrIsMessageError matches the error bounced for the message with id.
func corrIsMessageError(id string) func(*xmppclient.Elem) bool {
	return func(e *xmppclient.Elem) bool {
		return e.Is(xmppclient.NSClient, "message") && e.Get("type") == "error" && e.Get("id") == id
	}
}

// corrIsAnyMessageError matches any bounced message.
func corrIsAnyMessageError(e *xmppclient.Elem) bool {
	return e.Is(xmppclient.NSClient, "message") && e.Get("type") == "error"
}

// corrIsRosterPush matches any roster push.
func corrIsRosterPush(e *xmppclient.Elem) bool {
	return e.Is(xmppclient.NSClient, "iq") && e.Get("type") == "set" && e.Child(xmppclient.NSRoster, "query") != nil
}

// corrDiscoItemsEmpty asserts an empty disco#items result (XEP-0030): an IQ result with exactly one child,
// <query xmlns='http://jabber.org/protocol/disco#items'/>, which has no children.
func corrDiscoItemsEmpty(t *testing.T, what string, e *xmppclient.Elem) {
	t.Helper()
	if !e.Is(xmppclient.NSClient, "iq") || e.Get("type") != "result" {
		t.Errorf("%s: want an empty disco#items result, got %s", what, e)
		return
	}
	q := e.Child(corrNSDiscoItems, "query")
	if q == nil || len(e.Kids) != 1 {
		t.Errorf("%s: want exactly one <query xmlns='%s'/>, got %s", what, corrNSDiscoItems, e)
		return
	}
	if len(q.Kids) != 0 {
		t.Errorf("%s: want no items, got %s", what, e)
	}
}

// ---- XEP-0050 / XEP-0133 ----

// corrField is one field of a submitted form.
type corrField struct {
	Var    string
	Values []string
}

func (f corrField) xml() string {
	s := "<field var='" + f.Var + "'>"
	for _, v := range f.Values {
		s += "<value>" + v + "</value>"
	}
	return s + "</field>"
}

// corrCommand sends one <command/> request (XEP-0050) and returns the <command/> of the IQ result; anything else
// fails the test.
func corrCommand(t *testing.T, c *xmppclient.Client, to, node, sessionID, action, payload string) *xmppclient.Elem {
	t.Helper()
	r := corrCommandIQ(t, c, to, node, sessionID, action, payload)
	cmd := r.Child(corrNSCommands, "command")
	if r.Get("type") != "result" || cmd == nil {
		t.Fatalf("command %s (action %s) at %s: want a result with <command/>, got %s", node, action, to, r)
	}
	if cmd.Get("node") != node {
		t.Errorf("command %s: response names node %q: %s", node, cmd.Get("node"), r)
	}
	return cmd
}

// corrCommandIQ sends one <command/> request and returns the response IQ whatever it is.
func corrCommandIQ(t *testing.T, c *xmppclient.Client, to, node, sessionID, action, payload string) *xmppclient.Elem {
	t.Helper()
	attrs := " node='" + node + "'"
	if sessionID != "" {
		attrs += " sessionid='" + sessionID + "'"
	}
	if action != "" {
		attrs += " action='" + action + "'"
	}
	return c.IQ("<iq type='set' to='" + to + "' id='" + corrID("cmd") + "'><command xmlns='" + corrNSCommands + "'" + attrs + ">" + payload + "</command></iq>")
}

// corrFormType is the value of a form's hidden FORM_TYPE field ("" if it has none).
func corrFormType(x *xmppclient.Elem) string {
	for _, f := range x.Children(corrNSXData, "field") {
		if f.Get("var") == "FORM_TYPE" {
			if f.Get("type") != "hidden" {
				return "(FORM_TYPE not hidden)"
			}
			return f.ChildText("value")
		}
	}
	return ""
}

// corrFormField returns the form's field var ("nil" if it has none).
func corrFormField(x *xmppclient.Elem, v string) *xmppclient.Elem {
	for _, f := range x.Children(corrNSXData, "field") {
		if f.Get("var") == v {
			return f
		}
	}
	return nil
}

// corrFieldValues are the values of field v of the command's form.
func corrFieldValues(cmd *xmppclient.Elem, v string) []string {
	var out []string
	for _, val := range corrFormField(cmd.Child(corrNSXData, "x"), v).Children(corrNSXData, "value") {
		out = append(out, val.Text)
	}
	return out
}

// corrExecuteForm executes node and asserts the first stage of XEP-0050 §3.4: status executing, a sessionid, and
// a form (XEP-0004, type form) with FORM_TYPE http://jabber.org/protocol/admin (XEP-0133 §4) holding every
// field in vars. It returns the sessionid and the <command/>.
func corrExecuteForm(t *testing.T, c *xmppclient.Client, to, node string, vars ...string) (string, *xmppclient.Elem) {
	t.Helper()
	cmd := corrCommand(t, c, to, node, "", "execute", "")
	sid := cmd.Get("sessionid")
	if cmd.Get("status") != "executing" || sid == "" {
		t.Fatalf("execute %s: want status executing with a sessionid, got %s", node, cmd)
	}
	x := cmd.Child(corrNSXData, "x")
	if x == nil || x.Get("type") != "form" {
		t.Fatalf("execute %s: want <x xmlns='jabber:x:data' type='form'>, got %s", node, cmd)
	}
	if ft := corrFormType(x); ft != corrNSAdmin {
		t.Errorf("execute %s: FORM_TYPE %q, want hidden %s: %s", node, ft, corrNSAdmin, cmd)
	}
	for _, v := range vars {
		if corrFormField(x, v) == nil {
			t.Errorf("execute %s: the form has no field %q (XEP-0133): %s", node, v, cmd)
		}
	}
	return sid, cmd
}

// corrSubmitAction is the action that submits a single-stage form (XEP-0050 §3.4): 'complete' when the form
// allows it or has no <actions/> (then 'execute' is 'complete'), otherwise its default action.
func corrSubmitAction(form *xmppclient.Elem) string {
	acts := form.Child(corrNSCommands, "actions")
	if acts == nil || acts.Child(corrNSCommands, "complete") != nil {
		return "complete"
	}
	if a := acts.Get("execute"); a != "" {
		return a
	}
	return "next"
}

// corrSubmit submits the form of session sid and asserts status completed for the same session.
func corrSubmit(t *testing.T, c *xmppclient.Client, to, node, sid, action string, fields ...corrField) *xmppclient.Elem {
	t.Helper()
	x := "<x xmlns='" + corrNSXData + "' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + corrNSAdmin + "</value></field>"
	for _, f := range fields {
		x += f.xml()
	}
	x += "</x>"
	cmd := corrCommand(t, c, to, node, sid, action, x)
	if cmd.Get("status") != "completed" {
		t.Fatalf("submit %s: want status completed, got %s", node, cmd)
	}
	if cmd.Get("sessionid") != sid {
		t.Errorf("submit %s: sessionid %q, want %q: %s", node, cmd.Get("sessionid"), sid, cmd)
	}
	for _, n := range cmd.Children(corrNSCommands, "note") {
		if n.Get("type") == "error" {
			t.Errorf("submit %s: completed with an error note: %s", node, cmd)
		}
	}
	return cmd
}

// corrRunForm runs a one-form command end to end: execute → form → submit → completed.
func corrRunForm(t *testing.T, c *xmppclient.Client, to, node string, fields ...corrField) *xmppclient.Elem {
	t.Helper()
	var vars []string
	for _, f := range fields {
		vars = append(vars, f.Var)
	}
	sid, form := corrExecuteForm(t, c, to, node, vars...)
	return corrSubmit(t, c, to, node, sid, corrSubmitAction(form), fields...)
}

// corrRunQuery runs a command without input (XEP-0133 get-*): executing it may complete at once with the
// result form, or return a form to submit first. It returns the completed <command/>, whose form (type result,
// FORM_TYPE admin) is asserted.
func corrRunQuery(t *testing.T, c *xmppclient.Client, to, node string) *xmppclient.Elem {
	t.Helper()
	cmd := corrCommand(t, c, to, node, "", "execute", "")
	switch cmd.Get("status") {
	case "completed":
	case "executing":
		sid := cmd.Get("sessionid")
		if sid == "" {
			t.Fatalf("execute %s: executing without a sessionid: %s", node, cmd)
		}
		cmd = corrSubmit(t, c, to, node, sid, corrSubmitAction(cmd))
	default:
		t.Fatalf("execute %s: status %q: %s", node, cmd.Get("status"), cmd)
	}
	x := cmd.Child(corrNSXData, "x")
	if x == nil || x.Get("type") != "result" {
		t.Fatalf("%s: want a result form, got %s", node, cmd)
	}
	if ft := corrFormType(x); ft != corrNSAdmin {
		t.Errorf("%s: result FORM_TYPE %q, want hidden %s: %s", node, ft, corrNSAdmin, cmd)
	}
	return cmd
}

// corrIntField is the one integer value of field v of a completed command.
func corrIntField(t *testing.T, cmd *xmppclient.Elem, v string) int {
	t.Helper()
	vals := corrFieldValues(cmd, v)
	if len(vals) != 1 {
		t.Fatalf("field %s: want one value, got %q: %s", v, vals, cmd)
	}
	n, err := strconv.Atoi(strings.TrimSpace(vals[0]))
	if err != nil {
		t.Fatalf("field %s: %q is not an integer: %s", v, vals[0], cmd)
	}
	return n
}

// corrCommandNodes lists the nodes of a disco#items answer for the commands node, asserting it is a result.
func corrCommandNodes(t *testing.T, c *xmppclient.Client, to string) []string {
	t.Helper()
	r := c.IQ("<iq type='get' to='" + to + "' id='" + corrID("cmds") + "'><query xmlns='" + corrNSDiscoItems + "' node='" + corrNSCommands + "'/></iq>")
	corrIQResult(t, "disco#items node=commands at "+to, r)
	q := r.Child(corrNSDiscoItems, "query")
	if q == nil {
		t.Fatalf("disco#items node=commands at %s: no <query/>: %s", to, r)
	}
	var nodes []string
	for _, it := range q.Kids {
		if !it.Is(corrNSDiscoItems, "item") {
			t.Errorf("disco#items at %s: unexpected child %s", to, it)
			continue
		}
		nodes = append(nodes, it.Get("node"))
	}
	return nodes
}

// corrWaitEnded waits for c's stream to end with a stream error (any defined condition: XEP-0133 names none)
// and returns how it ended, for the log.
func corrWaitEnded(t *testing.T, c *xmppclient.Client, what string) string {
	t.Helper()
	err, ended := c.WaitEnd(xmppclient.WaitTimeout)
	if !ended {
		t.Errorf("%s: the session of %s is still open %v later", what, c.JID, xmppclient.WaitTimeout)
		return ""
	}
	cond := c.StreamError()
	if cond == "" || strings.HasPrefix(cond, "(") {
		t.Errorf("%s: the session of %s ended without a stream error condition (RFC 6120 §4.9): %s", what, c.JID, corrErrString(err))
	}
	return cond + " (" + corrErrString(err) + ")"
}

func corrErrString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// corrNear reports whether the XEP-0082 timestamp s is within d of now.
func corrNear(s string, d time.Duration) bool {
	ts, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && time.Since(ts).Abs() < d
}
