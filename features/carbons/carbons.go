// Package carbons is XEP-0280 message carbons.
//
// Whether carbons are on is the session part's own state: enable and disable act on "the sending resource" only
// (§4). The session part tells the user part on every change (toggled); the user part, which knows the user's
// sessions, keeps one flag per resource and tells every session part how many of them have carbons on (peers).
// So a message costs nothing extra unless some other resource of the user has carbons on: only then does the
// sender's session part hand it to the user part (sent), and only then does the user part copy an inbound one
// after its delivery, to exactly the resources that enabled carbons and did not get the message itself.
//
// Eligible (§6): type chat, or type normal with a body; not errors; not already a carbon; and neither
// <private xmlns='urn:xmpp:carbons:2'/> (§7) nor XEP-0334 <no-copy xmlns='urn:xmpp:hints'/>.
package carbons

import (
	"strings"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Feature is XEP-0280. Its Name is what [features] disable lists.
var Feature = &feature.Feature{
	Name:       "carbons",
	ServerVars: []string{stanza.NSCarbons},
	IQs: []feature.IQRoute{
		{Name: xmlstream.Name{Space: stanza.NSCarbons, Local: "enable"}, Session: func(q *feature.IQ) { toggle(q, true) }},
		{Name: xmlstream.Name{Space: stanza.NSCarbons, Local: "disable"}, Session: func(q *feature.IQ) { toggle(q, false) }},
	},
	// XEP-0386 §2.2: carbons enabled inline in Bind 2.
	Bind2:      &feature.Bind2Spec{Var: stanza.NSCarbons, Elements: []xmlstream.Name{{Space: stanza.NSCarbons, Local: "enable"}}},
	NewSession: func(s feature.Session) any { return &Session{s: s} },
	NewUser:    func(u feature.User) any { return &User{u: u, on: map[string]bool{}} },
}

// ---- messages between the parts (immutable values) ----

// toggled: a session turned its carbons on or off (session → user).
type toggled struct {
	resource string
	on       bool
}

// peers: how many of the user's sessions, the receiving one included, have carbons on (user → session).
type peers struct{ n int }

// sent: the session's client sent an eligible message while another resource has carbons on (session → user).
type sent struct {
	from jid.JID
	st   *stanza.Routed
}

// carbon is a copy for one session (user → session); dropped if the session's carbons went off while it was on
// its way.
type carbon struct{ st *stanza.Routed }

// ---- session part ----

// Session is the part of one session: its own carbons flag and what the user part last said about the others.
type Session struct {
	s     feature.Session
	on    bool // XEP-0280 enabled on this resource
	peers int  // sessions of this user with carbons on, this one included (told by the user part)
}

// Enabled reports whether the session's client enabled carbons.
func (p *Session) Enabled() bool { return p.on }

func toggle(q *feature.IQ, on bool) {
	// §4: enable and disable are IQ sets; a get has no meaning.
	if q.St.Head.Type != "set" {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	p := q.Part.(*Session)
	if p.on != on {
		p.on = on
		p.s.ToUser(toggled{resource: p.s.Full().Resource(), on: on})
	}
	q.Result("")
}

// Bind2 enables carbons for a session bound with XEP-0386 <enable xmlns='urn:xmpp:carbons:2'/>: as the IQ
// would, but with no answer (§2.2: "this operation MUST succeed, no response is necessary").
func (p *Session) Bind2(_ *xmlstream.Node) string {
	if !p.on {
		p.on = true
		p.s.ToUser(toggled{resource: p.s.Full().Resource(), on: true})
	}
	return ""
}

// Outbound hands an eligible outgoing message to the user part for the §6 'sent' copies, but only when some other
// resource has carbons on: otherwise the eligibility check is not even made.
func (p *Session) Outbound(st *stanza.Routed) bool {
	others := p.peers
	if p.on {
		others--
	}
	if others > 0 && st.Head.Name == "message" && !st.To.IsZero() && eligible(st) {
		p.s.ToUser(sent{from: p.s.Full(), st: st})
	}
	return true
}

// Handle takes the user part's messages.
func (p *Session) Handle(msg any) {
	switch m := msg.(type) {
	case peers:
		p.peers = m.n
	case carbon:
		// Through the later Inbound hooks (CSI may hold a carbon without a body back).
		if p.on {
			p.s.Deliver(m.st)
		}
	}
}

// ---- user part ----

// User is the part of one user actor: which of the user's resources have carbons on.
type User struct {
	u  feature.User
	on map[string]bool // resource → carbons on; only resources with carbons on are kept
}

// Bound tells a new session how many of the others want copies (nothing when none: a new session starts at 0).
func (p *User) Bound(r feature.Resource) {
	if p.on[r.Full.Resource()] {
		// Left over from a replaced session of the same resource: a newly bound session has carbons off.
		delete(p.on, r.Full.Resource())
		p.announce(jid.JID{})
	}
	if n := len(p.on); n > 0 {
		p.u.ToSession(r, peers{n: n})
	}
}

// Dropped forgets a session's flag and, if it had carbons on, tells the remaining sessions.
func (p *User) Dropped(r feature.Resource) {
	if !p.on[r.Full.Resource()] {
		return
	}
	delete(p.on, r.Full.Resource())
	p.announce(r.Full)
}

// announce tells every session (but skip, which is gone) how many sessions have carbons on.
func (p *User) announce(skip jid.JID) {
	m := peers{n: len(p.on)}
	for _, r := range p.u.Resources() {
		if r.Full != skip {
			p.u.ToSession(r, m)
		}
	}
}

// Handle takes the session parts' messages.
func (p *User) Handle(msg any) {
	switch m := msg.(type) {
	case toggled:
		if m.on == p.on[m.resource] {
			return
		}
		if !m.on {
			delete(p.on, m.resource)
		} else if p.bound(m.resource) {
			p.on[m.resource] = true
		} else {
			return // the session is gone already
		}
		p.announce(jid.JID{})
	case sent:
		for _, r := range p.u.Resources() {
			if r.Full != m.from && p.on[r.Full.Resource()] {
				p.u.ToSession(r, carbon{st: wrap("sent", p.u.Bare(), r.Full, m.st)})
			}
		}
	}
}

func (p *User) bound(resource string) bool {
	for _, r := range p.u.Resources() {
		if r.Full.Resource() == resource {
			return true
		}
	}
	return false
}

// Delivered sends the §5 'received' copies of a message just handed to the sessions in to: to every resource with
// carbons on that did not get it. A message stored offline (to empty) gets none, as before: it waits in the
// offline store for the user's next available resource instead.
func (p *User) Delivered(st *stanza.Routed, to []feature.Resource) {
	if len(to) == 0 || len(p.on) == 0 {
		return
	}
	var copies []feature.Resource
next:
	for _, r := range p.u.Resources() {
		if !p.on[r.Full.Resource()] {
			continue
		}
		for _, t := range to {
			if t.Full == r.Full {
				continue next
			}
		}
		copies = append(copies, r)
	}
	if len(copies) == 0 || !eligible(st) {
		return
	}
	for _, r := range copies {
		p.u.ToSession(r, carbon{st: wrap("received", p.u.Bare(), r.Full, st)})
	}
}

// ---- the rules ----

// eligible decides §6 eligibility. The common cases are settled by looking at the head and scanning the raw
// bytes; the stanza is parsed (once, cached in st) only when it mentions the carbons or hints namespaces, or is a
// normal message whose "body" may be something else than a <body/> child.
func eligible(st *stanza.Routed) bool {
	switch st.Head.Type {
	case "chat":
	case "", "normal":
		if !strings.Contains(st.Raw, "body") {
			return false
		}
	default:
		return false // error, groupchat (§6 leaves MUC to XEP-0045), headline
	}
	if !strings.Contains(st.Raw, stanza.NSCarbons) && !strings.Contains(st.Raw, stanza.NSHints) {
		if st.Head.Type == "chat" {
			return true
		}
		if strings.Contains(st.Raw, "<body>") || strings.Contains(st.Raw, "<body ") {
			return true
		}
	}
	n, err := st.Node()
	if err != nil {
		return false
	}
	if st.Head.Type != "chat" && n.Child(stanza.NSClient, "body") == nil {
		return false
	}
	for _, k := range n.Elements() {
		switch {
		case k.Name.Space == stanza.NSCarbons: // <private/> (§7), or already a <sent/>/<received/> carbon
			return false
		case k.Name.Space == stanza.NSHints && k.Name.Local == "no-copy":
			return false
		}
	}
	return true
}

// wrap builds the §5/§6 copy for one resource: from the user's bare JID (§11: a client accepts carbons only
// from its own bare JID), the original inside <forwarded/>, its namespace made explicit since it moves out of the
// stream's default jabber:client.
func wrap(kind string, bare, to jid.JID, st *stanza.Routed) *stanza.Routed {
	inner := st.Raw
	if n, err := st.Node(); err == nil {
		inner = n.String() // serialised without a parent namespace: the root declares jabber:client
	}
	return stanza.Generate("message", "chat", bare, to, "",
		"<"+kind+" xmlns='"+stanza.NSCarbons+"'><forwarded xmlns='"+stanza.NSForward+"'>"+inner+"</forwarded></"+kind+">")
}
