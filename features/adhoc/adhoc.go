// Package adhoc is XEP-0050 ad-hoc commands carrying the XEP-0133 service administration commands, for the bare
// JIDs listed in the top-level config key admins.
//
// Discovery (XEP-0050 §2.2): the commands are the items of the node "http://jabber.org/protocol/commands"
// of the server's domain, listed to admins only (everyone else gets the empty list; executing one is forbidden).
// An admin also finds them at the admin's own bare JID, because clients offer "execute command" on the account
// itself as well as on the server; items name the JID they were asked at, since XEP-0050 §5 tells requesters to
// ignore command nodes that do not belong to the responder, and so the command IQ is served there too (and
// without 'to', which RFC 6120 §10.3.3 treats as addressed to the account).
//
// Execution: every command has at most one form stage. execute returns the form (status executing, a sessionid
// kept in the requesting session's part); the submitted form, or action complete, runs it (status completed). A
// submitted form with the first request runs it at once; a command without a form runs at once. cancel ends a
// session (status canceled). Forms carry the exact fields (var, type, label) of XEP-0133 §4.
//
// Where the work happens: storage work (accounts, MOTD, welcome message) in the admin's session; what concerns a
// user's live state goes to that user's actor, the feature's user part: Session.Ask for one user (roster,
// statistics, last login, ending sessions), Session.Survey for every user (online/active/idle users,
// announcements, the new MOTD), Session.ToUserOf where no answer is needed (disable-user, delete-user).
package adhoc

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NSCommands is XEP-0050, also the node that lists the commands.
	NSCommands = "http://jabber.org/protocol/commands"
	// NSAdmin is XEP-0133: the FORM_TYPE of its forms and the prefix of its command nodes.
	NSAdmin = "http://jabber.org/protocol/admin"
	// KVMOTD is the KV namespace of the message of the day: key "motd" under the domain as owner, key "seen"
	// (the id of the last one the user got) under each user.
	KVMOTD = "urn:xmppd:motd"
	// KVWelcome is the KV namespace of the welcome message: key "welcome" under the domain as owner.
	KVWelcome = "urn:xmppd:welcome"
	// MaxSessions bounds the open command sessions (forms shown, not yet submitted) of one session.
	MaxSessions = 16
	// answerTimeout bounds the wait for user actors (Ask, Survey): one that stopped meanwhile never answers.
	answerTimeout = 3 * time.Second
)

// Feature is XEP-0050 with XEP-0133.
var Feature = &feature.Feature{
	Name:       "adhoc",
	ServerVars: []string{NSCommands},
	DiscoNode:  discoNode,
	IQs: []feature.IQRoute{{
		Name:   xmlstream.Name{Space: NSCommands, Local: "command"},
		Server: commandIQ,
		// To the admin's own bare JID (or without 'to'), where the commands are listed too.
		Session: commandIQ,
	}},
	AccountCreated: func(srv feature.Server, account jid.JID) { _ = welcome(srv, account) },
	NewSession:     func(s feature.Session) any { return newSession(s) },
	NewUser:        func(u feature.User) any { return &userPart{u: u} },
	Wire:           wire,
}

// session is the feature's part of one session: the command sessions it has open.
type session struct {
	s feature.Session
	// open maps a sessionid whose form was shown to its command's node.
	open map[string]string
	// after runs f after d on a timer goroutine (restart/shutdown with a delay); f only calls Server.Shutdown,
	// which is safe from any goroutine, never the part.
	after func(d time.Duration, f func())
}

func newSession(s feature.Session) *session {
	return &session{s: s, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// discoNode answers the commands node and each command node (XEP-0050 §2.2). At the server (account zero)
// anyone may read a command's info (only the list is restricted); at a bare JID only the admin asking about the
// admin's own JID gets anything, so that a user's JID shows no commands to anybody else.
func discoNode(srv feature.Server, requester, account jid.JID, node string, items bool) (string, bool) {
	at := requester.Domain()
	if !account.IsZero() {
		if requester.Bare() != account || !srv.IsAdmin(account) {
			return "", false
		}
		at = account.String()
	}
	if items {
		if node != NSCommands {
			return "", false
		}
		var b strings.Builder
		b.WriteString("<query xmlns='" + stanza.NSDiscoIt + "' node='" + NSCommands + "'>")
		if srv.IsAdmin(requester.Bare()) {
			for _, c := range commands {
				b.WriteString("<item jid='" + attr(at) + "' node='" + NSAdmin + "#" + c.node + "' name='" + attr(c.name) + "'/>")
			}
		}
		b.WriteString("</query>")
		return b.String(), true
	}
	head := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + attr(node) + "'>"
	if node == NSCommands {
		return head + "<identity category='automation' type='command-list' name='Commands'/></query>", true
	}
	c := findCommand(node)
	if c == nil {
		return "", false
	}
	return head + "<identity category='automation' type='command-node' name='" + attr(c.name) + "'/><feature var='" +
		NSCommands + "'/><feature var='" + stanza.NSXData + "'/></query>", true
}

// commandIQ executes a command (XEP-0050 §2.4).
func commandIQ(q *feature.IQ) {
	p, _ := q.Part.(*session)
	if p == nil {
		q.Fail(stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	if q.St.Head.Type != "set" {
		q.Fail(stanza.NewError(stanza.BadRequest).WithText("commands are executed with type 'set'"))
		return
	}
	node := q.Payload.Attr("node")
	cmd := findCommand(node)
	if cmd == nil {
		q.Fail(stanza.NewError(stanza.ItemNotFound))
		return
	}
	// XEP-0133 §6: only service-level admins; XEP-0050 §4.4: forbidden.
	if !q.Session.Server().IsAdmin(q.Session.Full().Bare()) {
		q.Fail(stanza.NewError(stanza.Forbidden))
		return
	}
	action := q.Payload.Attr("action")
	switch action {
	case "", "execute", "complete", "cancel":
	case "next", "prev":
		// Our forms have one stage: <actions/> offers complete only (XEP-0050 §4.4 bad-action).
		q.Fail(commandError(stanza.BadRequest, "bad-action", "this command has a single stage: complete or cancel it"))
		return
	default:
		q.Fail(commandError(stanza.BadRequest, "malformed-action", "unknown action "+action))
		return
	}
	sid := q.Payload.Attr("sessionid")
	continued := sid != ""
	if continued {
		if p.open[sid] != cmd.node {
			q.Fail(commandError(stanza.BadRequest, "bad-sessionid", "no such command session"))
			return
		}
		// The session ends here whatever happens (XEP-0050 §3.3: completed or canceled; an error ends it too).
		delete(p.open, sid)
	} else {
		sid = newSessionID()
	}
	r := &run{p: p, q: q, cmd: cmd, node: node, sid: sid, domain: q.Session.Full().Domain()}
	if !q.St.To.IsZero() {
		r.domain = q.St.To.Domain()
	}
	if action == "cancel" {
		r.reply("canceled", "")
		return
	}
	var form *xmlstream.Node
	if x := q.Payload.Child(stanza.NSXData, "x"); x != nil && (x.Attr("type") == "submit" || x.Attr("type") == "cancel") {
		// XEP-0050 §3.5.1: a responder treats <x type='cancel'/> like submit.
		form = x
	}
	switch {
	case form != nil:
		vals := formValues{}
		for _, f := range form.ChildrenNamed(stanza.NSXData, "field") {
			v := f.Attr("var")
			if _, ok := vals[v]; !ok {
				vals[v] = nil // present, maybe without values (has)
			}
			for _, val := range f.ChildrenNamed(stanza.NSXData, "value") {
				vals[v] = append(vals[v], val.TextContent())
			}
		}
		if ft, ok := vals["FORM_TYPE"]; ok && (len(ft) != 1 || ft[0] != NSAdmin) {
			r.badForm("FORM_TYPE must be " + NSAdmin)
			return
		}
		cmd.run(r, vals)
	case cmd.fields == nil || action == "complete" || continued:
		// Nothing submitted: a command with required fields says which one is missing.
		cmd.run(r, formValues{})
	default:
		fields, err := cmd.fields(r)
		if err != nil {
			r.internal(err, "building the form")
			return
		}
		if p.open == nil {
			p.open = map[string]string{}
		}
		if len(p.open) >= MaxSessions {
			clear(p.open) // abandoned forms: start over rather than grow
		}
		p.open[sid] = cmd.node
		r.reply("executing", "<actions execute='complete'><complete/></actions><x xmlns='"+stanza.NSXData+"' type='form'><title>"+
			text(cmd.title)+"</title><instructions>"+text(cmd.instructions)+"</instructions>"+formType+fields+"</x>")
	}
}

// commandError is a stanza error with an XEP-0050 §4.4 specific condition.
func commandError(c stanza.Condition, specific, txt string) stanza.Error {
	e := stanza.NewError(c).WithText(txt)
	e.Extra = "<" + specific + " xmlns='" + NSCommands + "'/>"
	return e
}

func newSessionID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run is one execution of a command in the admin's session.
type run struct {
	p   *session
	q   *feature.IQ
	cmd *command
	// node is the node as the request spelled it (XEP-0050 §5: answers carry it unchanged).
	node, sid string
	// domain is the domain the command was sent to (the admin's own for own-JID and no-'to' requests): the
	// scope of user lists, counts, MOTD and welcome message.
	domain string
}

func (r *run) srv() feature.Server { return r.q.Session.Server() }

func (r *run) reply(status, payload string) {
	r.q.Result("<command xmlns='" + NSCommands + "' node='" + attr(r.node) + "' sessionid='" + r.sid + "' status='" + status + "'>" +
		payload + "</command>")
}

// done completes the command with an informational note.
func (r *run) done(note string) {
	r.reply("completed", "<note type='info'>"+text(note)+"</note>")
}

// result completes the command with a result form of fields (and extra payload after them, inside the form).
func (r *run) result(fields string) {
	r.reply("completed", "<x xmlns='"+stanza.NSXData+"' type='result'>"+formType+fields+"</x>")
}

func (r *run) fail(e stanza.Error) { r.q.Fail(e) }

// badForm refuses a submitted form (XEP-0050 §4.4 bad-payload).
func (r *run) badForm(txt string) { r.fail(commandError(stanza.BadRequest, "bad-payload", txt)) }

func (r *run) internal(err error, what string) {
	r.q.Session.Log().Error().Err(err).Str("command", r.cmd.node).Msg("admin command failed: " + what)
	r.fail(stanza.NewError(stanza.InternalServerError))
}

// formValues are the submitted values per field var.
type formValues map[string][]string

func (f formValues) one(v string) string {
	if len(f[v]) == 0 {
		return ""
	}
	return strings.TrimSpace(f[v][0])
}

// text is a text-multi field: its values are lines (XEP-0004 §3.3).
func (f formValues) text(v string) string {
	return strings.TrimSpace(strings.Join(f[v], "\n"))
}

func (f formValues) has(v string) bool {
	_, ok := f[v]
	return ok
}

const formType = "<field var='FORM_TYPE' type='hidden'><value>" + NSAdmin + "</value></field>"

func text(s string) string { return string(xmlstream.AppendEscapedText(nil, s)) }
func attr(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }
