package actors

import (
	"fmt"
	"sort"
	"strings"

	"github.com/xmppd/xmppd/config"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// The feature registry. A feature (one XEP, or one group of closely tied namespaces) is a value of type feature
// declared in its own file actors/feature_<name>.go and listed once in registry below. The session and the
// user actor never name a feature: they ask the registry which IQ handler serves a payload, what to advertise in
// disco#info and stream features, and run every enabled feature's hooks at fixed points of the stanza path.
//
// State a feature needs lives in the actor that owns it (ARCHITECTURE.md, "How a feature plugs in"): per-session
// state (carbons, CSI) in the session struct, per-user state (the blocklist) in the user actor. A feature talks
// to its own state in another actor with its own message types, which implement sessionMsg or userMsg so that
// the actors route them without knowing them.

// registry lists every feature. Adding a feature: one file, one line here. (Filled in init because handlers
// refer back to the registry, e.g. disco#info lists every feature.)
var registry []*feature

func init() {
	registry = []*feature{
		featureCore,
		featureRoster,
		featurePing,
		featureRegister,
		featureDisco,
		featureCaps,
		featureVersion,
		featureTime,
		featureLast,
		featureVCard,
		featurePrivate,
		featureBlocking,
		featureCarbons,
		featureCSI,
		featureAdHoc,
	}
}

// feature is one pluggable unit. Every field is optional.
type feature struct {
	// name is what [features] disable lists to turn the feature off.
	name string
	// enabled adds a configuration condition of the feature's own (registration.allow for XEP-0077).
	enabled func(cfg *config.Config) bool
	// serverVars / accountVars are the disco#info <feature var/> values of the server and of accounts.
	serverVars  []string
	accountVars []string
	// streamFeature is a child of <stream:features> offered after authentication (XEP-0352 <csi/>).
	streamFeature func(e *env) string
	// extendedInfo is an XEP-0128 data form appended to the server's disco#info.
	extendedInfo func(cfg *config.Config) string
	// iqs are the IQ payloads the feature answers.
	iqs []iqRoute
	// nonzas are top-level elements other than stanzas the feature accepts from a bound client (XEP-0352).
	nonzas map[xmlstream.Name]func(s *session, ctx actor.Context, el *xmlstream.Element)

	// Hooks on the stanza path. A hook returning false consumed the stanza: later hooks and the normal path
	// do not see it.
	//
	// sessionOut runs in the sender's session for every stanza its client sends, after 'from' is stamped and
	// 'to' parsed, before the session routes or answers it.
	sessionOut func(s *session, ctx actor.Context, st *Stanza) bool
	// sessionIn runs in the recipient's session for every stanza about to be written to its client.
	sessionIn func(s *session, ctx actor.Context, d *Deliver) bool
	// rosterIn runs in the recipient's user actor for every stanza routed to the user (RFC 6121 §8.5),
	// before delivery.
	rosterIn func(r *userActor, ctx actor.Context, st *Stanza) bool
	// rosterDelivered runs after the user actor delivered a message to some of its sessions.
	rosterDelivered func(r *userActor, ctx actor.Context, st *Stanza, to []*resourceState)
	// rosterLoad runs when a user actor of an existing account starts: load the feature's per-user state.
	rosterLoad func(r *userActor)
	// rosterBound runs when the user actor has spawned a new session, before the client can send anything.
	rosterBound func(r *userActor, ctx actor.Context, rs *resourceState)
}

// iqRoute answers one IQ payload (namespace and local name of the single child, RFC 6120 §8.2.3). Where the
// handler runs depends on the address:
//   - to the server's domain: server, in the requester's session;
//   - without 'to', or to the requester's own bare JID: session if set (per-session state), else account in
//     the user's user actor with owner=true, else server (no 'to' only);
//   - to another user's bare JID: account in that user's user actor, owner=false (RFC 6121 §8.5.2.1.3: the
//     server answers on the user's behalf).
//
// Anything without a handler is service-unavailable (RFC 6120 §8.4).
type iqRoute struct {
	name    xmlstream.Name
	server  func(q *iqReq)
	session func(q *iqReq)
	account func(q *accountReq)
}

// iqReq is an IQ get/set being answered in a session.
type iqReq struct {
	s   *session
	ctx actor.Context
	st  *Stanza
	q   *xmlstream.Node
	// from is what the answer carries as 'from': the original 'to', or "" when there was none.
	from string
}

func (q *iqReq) result(payload string) {
	q.s.toClient(q.ctx, stanza.IQResult(stanza.Head{ID: q.st.Head.ID, From: q.s.full.String()}, q.from, payload))
}

func (q *iqReq) fail(e stanza.Error) { q.s.errorToClient(q.ctx, q.st.Head, q.from, e) }

func (q *iqReq) isGet() bool { return q.st.Head.Type == "get" }

// accountReq is an IQ get/set to a user's bare JID being answered in that user's user actor.
type accountReq struct {
	r     *userActor
	ctx   actor.Context
	st    *Stanza
	q     *xmlstream.Node
	owner bool // sent by the user, from one of the user's own sessions
	// rs is the sending session when owner, for the answer.
	rs *resourceState
	// explicitTo: the request named the bare JID (answers carry it as 'from'); false for no 'to'.
	explicitTo bool
}

func (a *accountReq) send(raw string) {
	if a.owner {
		if a.rs != nil {
			deliverTo(a.ctx, a.rs.pid, raw)
		}
		return
	}
	a.r.route(a.ctx, raw, "iq", "", a.r.bare, a.st.From)
}

func (a *accountReq) fromAttr() string {
	if a.owner && !a.explicitTo {
		return ""
	}
	return a.r.bare.String()
}

func (a *accountReq) result(payload string) {
	a.send(stanza.IQResult(a.st.Head, a.fromAttr(), payload))
}

func (a *accountReq) fail(e stanza.Error) {
	if a.st.Head.Type == "error" || a.st.Head.Type == "result" {
		return
	}
	a.send(stanza.ErrorReply(a.st.Head, a.fromAttr(), e))
}

func (a *accountReq) isGet() bool { return a.st.Head.Type == "get" }

// subscriber: the requester may see the user's presence (a 'from' or 'both' subscription, RFC 6121 §2.1.2.1) or
// is the user.
func (a *accountReq) subscriber() bool {
	if a.owner || a.st.From.Bare() == a.r.bare {
		return true
	}
	it := a.r.items[a.st.From.Bare()]
	return it != nil && (it.Subscription == "from" || it.Subscription == "both")
}

// Messages between a feature's parts in different actors implement one of these; the actors hand them over
// without knowing them.
type (
	sessionMsg interface {
		onSession(s *session, ctx actor.Context)
	}
	userMsg interface {
		onUser(r *userActor, ctx actor.Context)
	}
)

// ownIQ is an IQ from the user's session for the user's account, answered by the user actor.
type ownIQ struct {
	resource   string
	st         *Stanza
	q          *xmlstream.Node
	h          func(*accountReq)
	explicitTo bool
}

func (m *ownIQ) onUser(r *userActor, ctx actor.Context) {
	rs := r.resources[m.resource]
	if rs == nil {
		return
	}
	m.h(&accountReq{r: r, ctx: ctx, st: m.st, q: m.q, owner: true, rs: rs, explicitTo: m.explicitTo})
}

// userCall wraps a feature message sent to a user actor through the router (which counts it, see userIdle).
type userCall struct{ msg userMsg }

// toUser asks the router to hand msg to the actor of bare, spawning it if needed.
type toUser struct {
	bare jid.JID
	msg  userMsg
}

// toAllUsers asks the router to hand msg to every user actor that exists; a Request gets usersReached back.
type toAllUsers struct{ msg userMsg }

// usersReached answers toAllUsers: how many user actors got the message.
type usersReached struct{ n int }

// ---- the registry's queries ----

// enabledFeatures is the registry filtered by configuration.
func enabledFeatures(cfg *config.Config) []*feature {
	out := make([]*feature, 0, len(registry))
	for _, f := range registry {
		if featureEnabled(cfg, f) {
			out = append(out, f)
		}
	}
	return out
}

func featureEnabled(cfg *config.Config, f *feature) bool {
	for _, d := range cfg.Features.Disable {
		if d == f.name {
			return false
		}
	}
	return f.enabled == nil || f.enabled(cfg)
}

// findIQ returns the enabled route for a payload name.
func findIQ(cfg *config.Config, name xmlstream.Name) *iqRoute {
	for _, f := range registry {
		for i := range f.iqs {
			if f.iqs[i].name == name {
				if !featureEnabled(cfg, f) {
					return nil
				}
				return &f.iqs[i]
			}
		}
	}
	return nil
}

// findNonza returns the handler of a top-level non-stanza element.
func findNonza(cfg *config.Config, name xmlstream.Name) func(*session, actor.Context, *xmlstream.Element) {
	for _, f := range registry {
		if h := f.nonzas[name]; h != nil && featureEnabled(cfg, f) {
			return h
		}
	}
	return nil
}

// discoVars returns the sorted, deduplicated disco#info features of the server or of accounts.
func discoVars(cfg *config.Config, account bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range enabledFeatures(cfg) {
		vars := f.serverVars
		if account {
			vars = f.accountVars
		}
		for _, v := range vars {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

// serverIdentity is the server's XEP-0030 identity (category "server", type "im": the registry's value).
const serverIdentity = "<identity category='server' type='im' name='xmppd'/>"

// serverDiscoInfo is the server's disco#info payload, also the input of its XEP-0115 caps hash.
func serverDiscoInfo(cfg *config.Config, node string) string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + stanza.NSDiscoInf + "'")
	if node != "" {
		b.WriteString(" node='")
		b.Write(xmlstream.AppendEscapedAttr(nil, node))
		b.WriteString("'")
	}
	b.WriteString(">" + serverIdentity)
	for _, v := range discoVars(cfg, false) {
		b.WriteString("<feature var='" + v + "'/>")
	}
	for _, f := range enabledFeatures(cfg) {
		if f.extendedInfo != nil {
			b.WriteString(f.extendedInfo(cfg))
		}
	}
	b.WriteString("</query>")
	return b.String()
}

// accountDiscoInfo is the disco#info of a bare account JID (XEP-0030 §3.1, answered by the server).
func accountDiscoInfo(cfg *config.Config) string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + stanza.NSDiscoInf + "'><identity category='account' type='registered'/>")
	for _, v := range discoVars(cfg, true) {
		b.WriteString("<feature var='" + v + "'/>")
	}
	b.WriteString("</query>")
	return b.String()
}

// streamFeatures is what enabled features add to <stream:features> after authentication.
func streamFeatures(e *env) string {
	var b strings.Builder
	for _, f := range enabledFeatures(&e.cfg) {
		if f.streamFeature != nil {
			b.WriteString(f.streamFeature(e))
		}
	}
	return b.String()
}

// ---- hook runners ----

func (s *session) hooksOut(ctx actor.Context, st *Stanza) bool {
	for _, f := range registry {
		if f.sessionOut != nil && featureEnabled(&s.env.cfg, f) && !f.sessionOut(s, ctx, st) {
			return false
		}
	}
	return true
}

// deliver writes a stanza to the client after the sessionIn hooks (CSI may hold it back).
func (s *session) deliver(ctx actor.Context, d *Deliver) {
	for _, f := range registry {
		if f.sessionIn != nil && featureEnabled(&s.env.cfg, f) && !f.sessionIn(s, ctx, d) {
			return
		}
	}
	ctx.Send(s.conn, d)
}

func (r *userActor) hooksIn(ctx actor.Context, st *Stanza) bool {
	for _, f := range registry {
		if f.rosterIn != nil && featureEnabled(&r.env.cfg, f) && !f.rosterIn(r, ctx, st) {
			return false
		}
	}
	return true
}

// delivered runs the rosterDelivered hooks for a message just handed to the sessions in to.
func (r *userActor) delivered(ctx actor.Context, st *Stanza, to ...*resourceState) {
	for _, f := range registry {
		if f.rosterDelivered != nil && featureEnabled(&r.env.cfg, f) {
			f.rosterDelivered(r, ctx, st, to)
		}
	}
}

func (r *userActor) loadFeatures() {
	for _, f := range registry {
		if f.rosterLoad != nil && featureEnabled(&r.env.cfg, f) {
			f.rosterLoad(r)
		}
	}
}

func (r *userActor) boundFeatures(ctx actor.Context, rs *resourceState) {
	for _, f := range registry {
		if f.rosterBound != nil && featureEnabled(&r.env.cfg, f) {
			f.rosterBound(r, ctx, rs)
		}
	}
}

// ---- IQ dispatch ----

// serverIQ answers IQ get/set addressed to the server, to the user's own account or without 'to' through the
// registry (see iqRoute for where each handler runs).
func (s *session) serverIQ(ctx actor.Context, st *Stanza, q *xmlstream.Node, forAccount bool) {
	from := ""
	if !st.To.IsZero() {
		from = st.To.String()
	}
	req := &iqReq{s: s, ctx: ctx, st: st, q: q, from: from}
	h := findIQ(&s.env.cfg, q.Name)
	switch {
	case h == nil:
		req.fail(stanza.NewError(stanza.ServiceUnavailable))
	case !forAccount: // to the server's domain
		if h.server == nil {
			req.fail(stanza.NewError(stanza.ServiceUnavailable))
			return
		}
		h.server(req)
	case h.session != nil:
		h.session(req)
	case h.account != nil:
		ctx.Send(ctx.Parent(), &ownIQ{resource: s.full.Resource(), st: st, q: q, h: h.account, explicitTo: !st.To.IsZero()})
	case h.server != nil && st.To.IsZero():
		h.server(req)
	default:
		req.fail(stanza.NewError(stanza.ServiceUnavailable))
	}
}

// accountIQ answers an IQ get/set from someone else to the user's bare JID (RFC 6121 §8.5.2.1.3).
func (r *userActor) accountIQ(ctx actor.Context, st *Stanza) {
	if st.Head.Type != "get" && st.Head.Type != "set" {
		return
	}
	n, err := xmlstream.ParseNode(st.Raw, stanza.NSClient)
	if err != nil {
		return
	}
	kids := n.Elements()
	if len(kids) != 1 {
		r.bounce(ctx, st, stanza.NewError(stanza.BadRequest))
		return
	}
	q := kids[0]
	if q.Name.Space == stanza.NSRoster {
		// RFC 6121 §2.1.5 / §2.3.3: only the user may read or change the user's roster.
		r.bounce(ctx, st, stanza.NewError(stanza.Forbidden))
		return
	}
	h := findIQ(&r.env.cfg, q.Name)
	if h == nil || h.account == nil {
		r.bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	h.account(&accountReq{r: r, ctx: ctx, st: st, q: q, explicitTo: true})
}

// ---- small shared helpers ----

// xmlText escapes character data.
func xmlText(s string) string { return string(xmlstream.AppendEscapedText(nil, s)) }

// xmlAttr escapes an attribute value (for '...').
func xmlAttr(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }

// isAdmin: the bare JID is listed in the top-level admins key.
func isAdmin(cfg *config.Config, bare jid.JID) bool {
	for _, a := range cfg.Admins {
		if j, err := jid.Parse(a); err == nil && j.Bare() == bare {
			return true
		}
	}
	return false
}

// featureCore is what every server answers: RFC 3921 legacy session establishment and the server identity's
// base features (offline storage, RFC 6121 §2.6 roster versioning and §3.4 pre-approval live in roster.go).
var featureCore = &feature{
	name:       "core",
	serverVars: []string{"msgoffline"},
	iqs: []iqRoute{{
		name: xmlstream.Name{Space: stanza.NSSession, Local: "session"},
		// RFC 3921 §3: a no-op that old clients still send.
		server:  func(q *iqReq) { q.result("") },
		session: func(q *iqReq) { q.result("") },
	}},
}

// featureRoster routes RFC 6121 §2 roster IQs to the user actor (roster.go holds the logic).
var featureRoster = &feature{
	name:       "roster",
	serverVars: []string{stanza.NSRosterV, stanza.NSPreApp},
	iqs: []iqRoute{{
		name: xmlstream.Name{Space: stanza.NSRoster, Local: "query"},
		session: func(q *iqReq) {
			q.ctx.Send(q.ctx.Parent(), &rosterIQ{resource: q.s.full.Resource(), st: q.st, query: q.q})
		},
	}},
}

// featurePing: XEP-0199 §4: the server answers pings to itself and on behalf of accounts.
var featurePing = &feature{
	name:       "ping",
	serverVars: []string{stanza.NSPing},
	iqs: []iqRoute{{
		name:    xmlstream.Name{Space: stanza.NSPing, Local: "ping"},
		server:  func(q *iqReq) { q.result("") },
		session: func(q *iqReq) { q.result("") },
	}},
}

// featureRegister: XEP-0077 password change and removal for a logged-in user (register.go).
var featureRegister = &feature{
	name:       "register",
	enabled:    func(cfg *config.Config) bool { return cfg.Registration.Allow },
	serverVars: []string{stanza.NSRegister},
	iqs: []iqRoute{{
		name:    xmlstream.Name{Space: stanza.NSRegister, Local: "query"},
		server:  func(q *iqReq) { q.s.registerIQ(q.ctx, q.st, q.q, q.from) },
		session: func(q *iqReq) { q.s.registerIQ(q.ctx, q.st, q.q, q.from) },
	}},
}

// checkDisabled reports a [features] disable entry that names no feature.
func checkDisabled(cfg *config.Config) error {
	for _, d := range cfg.Features.Disable {
		found := false
		for _, f := range registry {
			found = found || f.name == d
		}
		if !found {
			return fmt.Errorf("config: features.disable: no feature %q", d)
		}
	}
	return nil
}
