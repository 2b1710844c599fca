package actors

import (
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0280 message carbons. Whether carbons are on is the session's own state (enable/disable act on "the
// sending resource" only, §4). Copies are made by the roster actor, which knows the user's sessions: the sender's
// session hands it each eligible outbound message (carbonSent), and after delivering an inbound one it copies it
// to the other sessions (rosterDelivered). Every other session gets the copy as carbonCopy and keeps it only if
// its carbons are on, so the roster actor needs no copy of the flag.
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
		if st.Head.Name == "message" && !st.To.IsZero() && carbonEligible(st) {
			ctx.Send(ctx.Parent(), &carbonSent{from: s.full, st: st})
		}
		return true
	},
	rosterDelivered: func(r *rosterActor, ctx actor.Context, st *Stanza, to []*resourceState) {
		if !carbonEligible(st) {
			return
		}
	next:
		for _, rs := range r.resources {
			for _, t := range to {
				if t == rs {
					continue next
				}
			}
			ctx.Send(rs.pid, &carbonCopy{raw: carbonWrap("received", r.bare, rs.full, st.Raw)})
		}
	},
}

func carbonsToggle(q *iqReq, on bool) {
	if q.st.Head.Type != "set" {
		q.fail(badRequest())
		return
	}
	q.s.carbons = on
	q.result("")
}

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
	if !strings.Contains(st.Raw, nsCarbons) && !strings.Contains(st.Raw, nsHints) && !strings.Contains(st.Raw, "body") {
		return st.Head.Type == "chat" // fast path: nothing to look at
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

// carbonSent: a session's client sent an eligible message; the roster actor copies it to the other sessions.
type carbonSent struct {
	from jid.JID
	st   *Stanza
}

func (m *carbonSent) onRoster(r *rosterActor, ctx actor.Context) {
	for _, rs := range r.resources {
		if rs.full != m.from {
			ctx.Send(rs.pid, &carbonCopy{raw: carbonWrap("sent", r.bare, rs.full, m.st.Raw)})
		}
	}
}

// carbonCopy is a copy for one session; dropped unless its carbons are on.
type carbonCopy struct{ raw string }

func (m *carbonCopy) onSession(s *session, ctx actor.Context) {
	if s.carbons {
		s.deliver(ctx, &Deliver{Stanza: m.raw})
	}
}
