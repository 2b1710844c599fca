package actors

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0280 message carbons. Whether carbons are on is the session's own state (enable/disable act on "the
// sending resource" only, §4); the session tells its user actor on every change (carbonsState), and the roster
// actor, which knows the user's sessions, tells every session how many of them have carbons on (carbonPeers).
// So a message costs nothing extra unless some other resource of the user has carbons on: only then does the
// sender's session hand it to the user actor (carbonSent), and only then does the user actor copy an inbound
// one after delivering it (rosterDelivered), to exactly the resources that enabled carbons.
//
// Eligible (§6): type chat, or type normal with a body; not errors; not already a carbon; and neither
// <private xmlns='urn:xmpp:carbons:2'/> nor XEP-0334 <no-copy xmlns='urn:xmpp:hints'/>.

const (
	nsCarbons = "urn:xmpp:carbons:2"
	nsForward = "urn:xmpp:forward:0"
	nsHints   = "urn:xmpp:hints"
)

var featureCarbons = &feature{
	name:       "carbons",
	serverVars: []string{nsCarbons},
	iqs: []iqRoute{
		{name: xmlstream.Name{Space: nsCarbons, Local: "enable"}, session: func(q *iqReq) { carbonsToggle(q, true) }},
		{name: xmlstream.Name{Space: nsCarbons, Local: "disable"}, session: func(q *iqReq) { carbonsToggle(q, false) }},
	},
	sessionOut: func(s *session, ctx actor.Context, st *Stanza) bool {
		others := s.carbonPeers
		if s.carbons {
			others--
		}
		if others > 0 && st.Head.Name == "message" && !st.To.IsZero() && carbonEligible(st) {
			ctx.Send(ctx.Parent(), &carbonSent{from: s.full, st: st})
		}
		return true
	},
	rosterDelivered: func(r *userActor, ctx actor.Context, st *Stanza, to []*resourceState) {
		var copies []*resourceState
	next:
		for _, rs := range r.resources {
			if !rs.carbons {
				continue
			}
			for _, t := range to {
				if t == rs {
					continue next
				}
			}
			copies = append(copies, rs)
		}
		if len(copies) == 0 || !carbonEligible(st) {
			return
		}
		for _, rs := range copies {
			ctx.Send(rs.pid, &carbonCopy{raw: carbonWrap("received", r.bare, rs.full, st.Raw)})
		}
	},
}

func carbonsToggle(q *iqReq, on bool) {
	if q.st.Head.Type != "set" {
		q.fail(badRequest())
		return
	}
	if q.s.carbons != on {
		q.s.carbons = on
		q.ctx.Send(q.ctx.Parent(), &carbonsState{resource: q.s.full.Resource(), on: on})
	}
	q.result("")
}

// carbonsState: a session turned its carbons on or off.
type carbonsState struct {
	resource string
	on       bool
}

func (m *carbonsState) onUser(r *userActor, ctx actor.Context) {
	if rs, ok := r.resources[m.resource]; ok {
		rs.carbons = m.on
	}
	r.announceCarbonPeers(ctx)
}

// announceCarbonPeers tells every session how many of the user's sessions have carbons on; called when that
// number may have changed (a toggle, a session gone).
func (r *userActor) announceCarbonPeers(ctx actor.Context) {
	n := r.carbonsOn()
	for _, rs := range r.resources {
		ctx.Send(rs.pid, &carbonPeers{n: n})
	}
}

func (r *userActor) carbonsOn() int {
	n := 0
	for _, rs := range r.resources {
		if rs.carbons {
			n++
		}
	}
	return n
}

// carbonPeers: how many of the user's sessions (this one included) have carbons on.
type carbonPeers struct{ n int }

func (m *carbonPeers) onSession(s *session, _ actor.Context) { s.carbonPeers = m.n }

// carbonEligible decides §6 eligibility. The common cases are settled by looking at the head and scanning the
// raw bytes; the stanza is parsed only when it mentions the carbons or hints namespaces.
func carbonEligible(st *Stanza) bool {
	switch st.Head.Type {
	case "chat":
	case "", "normal":
		if !strings.Contains(st.Raw, "body") {
			return false
		}
	default:
		return false
	}
	if !strings.Contains(st.Raw, nsCarbons) && !strings.Contains(st.Raw, nsHints) {
		if st.Head.Type == "chat" {
			return true
		}
		if strings.Contains(st.Raw, "<body>") || strings.Contains(st.Raw, "<body ") {
			return true
		}
	}
	n, err := xmlstream.ParseNode(st.Raw, stanza.NSClient)
	if err != nil {
		return false
	}
	if st.Head.Type != "chat" && n.Child(stanza.NSClient, "body") == nil {
		return false
	}
	for _, k := range n.Elements() {
		switch {
		case k.Name.Space == nsCarbons: // <private/>, or already a <sent/>/<received/> carbon
			return false
		case k.Name.Space == nsHints && k.Name.Local == "no-copy":
			return false
		}
	}
	return true
}

// carbonWrap builds the §5/§6 copy for one resource: the original stanza inside <forwarded/>, with its
// namespace made explicit since it moves out of the stream's default jabber:client.
func carbonWrap(kind string, bare, to jid.JID, raw string) string {
	inner := raw
	if n, err := xmlstream.ParseNode(raw, stanza.NSClient); err == nil {
		inner = n.String() // serialised without a parent namespace, the root declares jabber:client
	}
	return stanza.Build("message", bare.String(), to.String(), "chat", "",
		"<"+kind+" xmlns='"+nsCarbons+"'><forwarded xmlns='"+nsForward+"'>"+inner+"</forwarded></"+kind+">")
}

// carbonSent: a session's client sent an eligible message; the user actor copies it to the other sessions.
type carbonSent struct {
	from jid.JID
	st   *Stanza
}

func (m *carbonSent) onUser(r *userActor, ctx actor.Context) {
	for _, rs := range r.resources {
		if rs.full != m.from && rs.carbons {
			ctx.Send(rs.pid, &carbonCopy{raw: carbonWrap("sent", r.bare, rs.full, m.st.Raw)})
		}
	}
}

// carbonCopy is a copy for one session; dropped if its carbons went off while the copy was on its way.
type carbonCopy struct{ raw string }

func (m *carbonCopy) onSession(s *session, ctx actor.Context) {
	if s.carbons {
		s.deliver(ctx, &Deliver{Stanza: m.raw})
	}
}
