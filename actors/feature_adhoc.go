package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0050 ad-hoc commands carrying the XEP-0133 service administration commands, for the bare JIDs listed in
// the top-level config key admins. Commands are listed (disco#items node=commands) to admins only; anyone else
// executing one gets forbidden. Every command has at most one form stage: execute returns the form (status
// executing, a sessionid), complete with the submitted form runs it (status completed); a submitted form with
// the first request runs it at once. Sessionids live in the requesting session.
//
// Storage work (accounts) happens in the admin's session, a per-connection actor; what concerns a user's live
// state goes to that user's actor through the router (delete-user), and questions to every user actor (online
// users, announce) go through the router's toAllUsers with a short-lived collector child of the session.

const (
	nsCommands = "http://jabber.org/protocol/commands"
	nsAdmin    = "http://jabber.org/protocol/admin"
	// maxCmdSessions bounds the open command sessions of one session.
	maxCmdSessions = 16
)

type adminCommand struct {
	node, name string
	fields     string // the form's fields; "" runs at once
	run        func(c *cmdRun, f formValues)
}

var adminCommands = []*adminCommand{
	{node: nsAdmin + "#add-user", name: "Add a User", fields: field("accountjid", "jid-single", "The Jabber ID for the account to be added", true) +
		field("password", "text-private", "The password for this account", true) +
		field("password-verify", "text-private", "Retype password", true), run: cmdAddUser},
	{node: nsAdmin + "#delete-user", name: "Delete a User", fields: field("accountjids", "jid-multi", "The Jabber ID(s) to delete", true), run: cmdDeleteUser},
	{node: nsAdmin + "#change-user-password", name: "Change User Password", fields: field("accountjid", "jid-single", "The Jabber ID for this account", true) +
		field("password", "text-private", "The password for this account", true), run: cmdChangePassword},
	{node: nsAdmin + "#get-online-users-list", name: "Get List of Online Users", run: cmdOnlineUsers},
	{node: nsAdmin + "#get-registered-users-num", name: "Get Number of Registered Users", run: cmdRegisteredNum},
	{node: nsAdmin + "#announce", name: "Send Announcement to Online Users", fields: field("subject", "text-single", "Subject", false) +
		field("announcement", "text-multi", "Announcement", true), run: cmdAnnounce},
}

var featureAdHoc = &feature{
	name:       "adhoc",
	serverVars: []string{nsCommands},
	iqs: []iqRoute{{
		name:   xmlstream.Name{Space: nsCommands, Local: "command"},
		server: commandIQ,
	}},
}

func field(v, typ, label string, required bool) string {
	s := "<field var='" + v + "' type='" + typ + "' label='" + xmlAttr(label) + "'>"
	if required {
		s += "<required/>"
	}
	return s + "</field>"
}

func findCommand(node string) *adminCommand {
	for _, c := range adminCommands {
		if c.node == node {
			return c
		}
	}
	return nil
}

// commandItems answers disco#items node=commands (XEP-0050 §2.2): the commands for admins, none for others.
func commandItems(q *iqReq, node string) (string, bool) {
	if node != nsCommands || !featureEnabled(&q.s.env.cfg, featureAdHoc) {
		return "", false
	}
	var b strings.Builder
	b.WriteString("<query xmlns='" + stanza.NSDiscoIt + "' node='" + nsCommands + "'>")
	if isAdmin(&q.s.env.cfg, q.s.bare) {
		for _, c := range adminCommands {
			b.WriteString("<item jid='" + xmlAttr(q.s.bare.Domain()) + "' node='" + c.node + "' name='" + xmlAttr(c.name) + "'/>")
		}
	}
	b.WriteString("</query>")
	return b.String(), true
}

// commandNodeInfo answers disco#info on the commands node and each command node (XEP-0050 §2.3).
func commandNodeInfo(q *iqReq, node string) (string, bool) {
	if !featureEnabled(&q.s.env.cfg, featureAdHoc) {
		return "", false
	}
	head := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + xmlAttr(node) + "'>"
	if node == nsCommands {
		return head + "<identity category='automation' type='command-list' name='Commands'/></query>", true
	}
	c := findCommand(node)
	if c == nil {
		return "", false
	}
	return head + "<identity category='automation' type='command-node' name='" + xmlAttr(c.name) + "'/><feature var='" +
		nsCommands + "'/><feature var='" + stanza.NSXData + "'/></query>", true
}

// cmdRun is one command execution in the admin's session.
type cmdRun struct {
	q         *iqReq
	node      string
	sessionID string
}

func (c *cmdRun) reply(status, payload string) {
	c.q.result("<command xmlns='" + nsCommands + "' node='" + c.node + "' sessionid='" + c.sessionID + "' status='" + status + "'>" + payload + "</command>")
}

func (c *cmdRun) done(note string) {
	c.reply("completed", "<note type='info'>"+xmlText(note)+"</note>")
}

func (c *cmdRun) resultForm(fields string) {
	c.reply("completed", "<x xmlns='"+stanza.NSXData+"' type='result'><field var='FORM_TYPE' type='hidden'><value>"+nsAdmin+"</value></field>"+fields+"</x>")
}

func (c *cmdRun) fail(e stanza.Error) { c.q.fail(e) }

func (c *cmdRun) badForm(text string) {
	c.fail(stanza.NewError(stanza.BadRequest).WithText(text))
}

// formValues are the submitted values per field var.
type formValues map[string][]string

func (f formValues) one(v string) string {
	if len(f[v]) == 0 {
		return ""
	}
	return f[v][0]
}

func commandIQ(q *iqReq) {
	if q.st.Head.Type != "set" {
		q.fail(badRequest())
		return
	}
	node := q.q.Attr("node")
	cmd := findCommand(node)
	if cmd == nil {
		q.fail(stanza.NewError(stanza.ItemNotFound))
		return
	}
	s := q.s
	if !isAdmin(&s.env.cfg, s.bare) {
		q.fail(stanza.NewError(stanza.Forbidden))
		return
	}
	action := q.q.Attr("action")
	sid := q.q.Attr("sessionid")
	if sid != "" {
		if s.cmdSessions[sid] != node {
			e := stanza.NewError(stanza.BadRequest)
			e.Extra = "<bad-sessionid xmlns='" + nsCommands + "'/>"
			q.fail(e)
			return
		}
		delete(s.cmdSessions, sid)
	} else {
		sid = newSessionID()
	}
	run := &cmdRun{q: q, node: node, sessionID: sid}
	if action == "cancel" {
		run.reply("canceled", "")
		return
	}
	var form *xmlstream.Node
	if x := q.q.Child(stanza.NSXData, "x"); x != nil && x.Attr("type") == "submit" {
		form = x
	}
	switch {
	case form != nil:
		vals := formValues{}
		for _, f := range form.ChildrenNamed(stanza.NSXData, "field") {
			for _, v := range f.ChildrenNamed(stanza.NSXData, "value") {
				vals[f.Attr("var")] = append(vals[f.Attr("var")], v.TextContent())
			}
		}
		cmd.run(run, vals)
	case cmd.fields == "" || action == "complete":
		cmd.run(run, formValues{})
	default:
		if s.cmdSessions == nil {
			s.cmdSessions = map[string]string{}
		}
		if len(s.cmdSessions) >= maxCmdSessions {
			clear(s.cmdSessions) // abandoned forms: start over rather than grow
		}
		s.cmdSessions[sid] = node
		run.reply("executing", "<actions execute='complete'><complete/></actions><x xmlns='"+stanza.NSXData+
			"' type='form'><title>"+xmlText(cmd.name)+"</title><field var='FORM_TYPE' type='hidden'><value>"+nsAdmin+"</value></field>"+cmd.fields+"</x>")
	}
}

func newSessionID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// accountArg parses an account JID field and checks it is on a served domain.
func accountArg(c *cmdRun, s string) (jid.JID, bool) {
	j, err := accounts.ParseAccount(&c.q.s.env.cfg, strings.TrimSpace(s))
	if err != nil {
		c.fail(stanza.NewError(stanza.JIDMalformed).WithText(err.Error()))
		return jid.JID{}, false
	}
	return j, true
}

func cmdAddUser(c *cmdRun, f formValues) {
	e := c.q.s.env
	j, ok := accountArg(c, f.one("accountjid"))
	if !ok {
		return
	}
	pw := f.one("password")
	if pw == "" || pw != f.one("password-verify") && len(f["password-verify"]) > 0 {
		c.badForm("the passwords are empty or do not match")
		return
	}
	switch err := accounts.AddUser(context.Background(), &e.cfg, e.store, j, pw); {
	case err == nil:
		c.q.s.log.Info().Str("account", j.String()).Msg("account added by an admin")
		c.done("The account " + j.String() + " was created.")
	case errors.Is(err, storage.ErrExists):
		c.fail(stanza.NewError(stanza.ConflictErr).WithText("the account exists"))
	default:
		c.q.s.log.Error().Err(err).Msg("admin add-user failed")
		c.fail(stanza.NewError(stanza.InternalServerErr))
	}
}

func cmdDeleteUser(c *cmdRun, f formValues) {
	e := c.q.s.env
	var done []string
	for _, v := range f["accountjids"] {
		j, ok := accountArg(c, v)
		if !ok {
			return
		}
		err := e.store.DeleteAccount(context.Background(), j.String())
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			c.q.s.log.Error().Err(err).Msg("admin delete-user failed")
			c.fail(stanza.NewError(stanza.InternalServerErr))
			return
		}
		if err == nil {
			// The user's actor cancels subscriptions and ends the user's sessions (XEP-0077 §3.2 semantics).
			c.q.ctx.Send(e.router, &toUser{bare: j, msg: accountRemovedMsg{}})
			done = append(done, j.String())
		}
	}
	if len(f["accountjids"]) == 0 {
		c.badForm("no account given")
		return
	}
	c.q.s.log.Info().Strs("accounts", done).Msg("accounts deleted by an admin")
	c.done("Deleted: " + strings.Join(done, ", "))
}

// accountRemovedMsg hands accountRemoved to a user actor through the router.
type accountRemovedMsg struct{}

func (accountRemovedMsg) onUser(r *userActor, ctx actor.Context) { r.accountGone(ctx) }

func cmdChangePassword(c *cmdRun, f formValues) {
	e := c.q.s.env
	j, ok := accountArg(c, f.one("accountjid"))
	if !ok {
		return
	}
	if f.one("password") == "" {
		c.badForm("the password must not be empty")
		return
	}
	switch err := accounts.SetPassword(context.Background(), &e.cfg, e.store, j, f.one("password")); {
	case err == nil:
		c.q.s.log.Info().Str("account", j.String()).Msg("password changed by an admin")
		c.done("The password of " + j.String() + " was changed.")
	case errors.Is(err, storage.ErrNotFound):
		c.fail(stanza.NewError(stanza.ItemNotFound).WithText("no such account"))
	default:
		c.q.s.log.Error().Err(err).Msg("admin change-user-password failed")
		c.fail(stanza.NewError(stanza.InternalServerErr))
	}
}

func cmdRegisteredNum(c *cmdRun, _ formValues) {
	n, err := c.q.s.env.store.CountAccounts(context.Background(), c.q.s.bare.Domain())
	if err != nil {
		c.fail(stanza.NewError(stanza.InternalServerErr))
		return
	}
	c.resultForm("<field var='registeredusersnum' type='text-single' label='The number of registered users'><value>" + strconv.Itoa(n) + "</value></field>")
}

func cmdAnnounce(c *cmdRun, f formValues) {
	body := strings.Join(f["announcement"], "\n")
	if body == "" {
		c.badForm("the announcement is empty")
		return
	}
	payload := ""
	if s := f.one("subject"); s != "" {
		payload = "<subject>" + xmlText(s) + "</subject>"
	}
	payload += "<body>" + xmlText(body) + "</body>"
	c.q.ctx.Send(c.q.s.env.router, &toAllUsers{msg: &announce{domain: c.q.s.bare.Domain(), payload: payload}})
	c.done("The announcement was sent.")
}

// announce is delivered by every user actor to its available resources as a headline from the server.
type announce struct{ domain, payload string }

func (m *announce) onUser(r *userActor, ctx actor.Context) {
	if r.bare.Domain() != m.domain {
		return
	}
	for _, rs := range r.resources {
		if rs.available {
			deliverTo(ctx, rs.pid, stanza.Build("message", m.domain, rs.full.String(), "headline", "", m.payload))
		}
	}
}

// ---- online users: a collector asks every user actor ----

func cmdOnlineUsers(c *cmdRun, _ formValues) {
	s := c.q.s
	if s.onlineQueries == nil {
		s.onlineQueries = map[string]*cmdRun{}
	}
	pid := c.q.ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &onlineCollector{router: s.env.router, domain: s.bare.Domain()}
	}))
	s.onlineQueries[pid.Id] = c
}

type (
	onlineQuery  struct{ replyTo *actor.PID }
	onlineAnswer struct{ jids []string }
	onlineResult struct {
		id   string
		jids []string
	}
)

func (m *onlineQuery) onUser(r *userActor, ctx actor.Context) {
	var jids []string
	for _, rs := range r.resources {
		jids = append(jids, rs.full.String())
	}
	ctx.Send(m.replyTo, &onlineAnswer{jids: jids})
}

func (m *onlineResult) onSession(s *session, _ actor.Context) {
	c := s.onlineQueries[m.id]
	if c == nil {
		return
	}
	delete(s.onlineQueries, m.id)
	sort.Strings(m.jids)
	var b strings.Builder
	b.WriteString("<field var='onlineuserjids' type='jid-multi' label='The list of all online users'>")
	for _, j := range m.jids {
		b.WriteString("<value>" + xmlText(j) + "</value>")
	}
	b.WriteString("</field>")
	c.resultForm(b.String())
}

// onlineCollector gathers one answer from each user actor the router reached, or gives up after a while
// (a user actor that stopped meanwhile never answers).
type onlineCollector struct {
	router *actor.PID
	domain string
	want   int // -1 until the router said how many
	got    int
	jids   []string
	done   bool
}

func (o *onlineCollector) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		o.want = -1
		ctx.SetReceiveTimeout(3 * time.Second)
		ctx.Request(o.router, &toAllUsers{msg: &onlineQuery{replyTo: ctx.Self()}})
	case *usersReached:
		o.want = m.n
	case *onlineAnswer:
		o.got++
		for _, j := range m.jids {
			if fj, err := jid.Parse(j); err == nil && fj.Domain() == o.domain {
				o.jids = append(o.jids, j)
			}
		}
	case *actor.ReceiveTimeout:
		o.finish(ctx)
		return
	default:
		return
	}
	if o.want >= 0 && o.got >= o.want {
		o.finish(ctx)
	}
}

func (o *onlineCollector) finish(ctx actor.Context) {
	if o.done {
		return
	}
	o.done = true
	ctx.Send(ctx.Parent(), &onlineResult{id: ctx.Self().Id, jids: o.jids})
	ctx.Stop(ctx.Self())
}
