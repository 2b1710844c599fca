package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0352 client state indication. <inactive/> and <active/> are nonzas handled by the session, which owns the
// state. While inactive the session holds back what the client need not see at once: presence updates (only the
// latest per sender is kept: an older one is superseded, §5 "presence updates") and messages without a body
// (chat states, receipts, markers). A message with a body, an IQ, an error or a subscription request goes out
// at once; anything with a body first flushes what was held so the client sees everything in order. <active/>
// flushes in arrival order. The queue is bounded: reaching csiMaxHeld flushes it.

const (
	nsCSI      = "urn:xmpp:csi:0"
	csiMaxHeld = 256
)

var featureCSI = &feature{
	name:          "csi",
	streamFeature: func(*env) string { return "<csi xmlns='" + nsCSI + "'/>" },
	nonzas: map[xmlstream.Name]func(*session, actor.Context, *xmlstream.Element){
		{Space: nsCSI, Local: "inactive"}: func(s *session, _ actor.Context, _ *xmlstream.Element) { s.csiInactive = true },
		{Space: nsCSI, Local: "active"}: func(s *session, ctx actor.Context, _ *xmlstream.Element) {
			s.csiInactive = false
			s.csiFlush(ctx)
		},
	},
	sessionIn: csiDeliver,
}

// csiHeld is one held stanza; from is set for presence (to supersede it).
type csiHeld struct {
	from string
	d    *Deliver
}

func csiDeliver(s *session, ctx actor.Context, d *Deliver) bool {
	if !s.csiInactive {
		return true
	}
	n, err := xmlstream.ParseNode(d.Stanza, stanza.NSClient)
	if err != nil {
		return true
	}
	typ := n.Attr("type")
	switch n.Name.Local {
	case "presence":
		if typ != "" && typ != "unavailable" {
			s.csiFlush(ctx) // subscription requests and errors want attention, in order
			return true
		}
		from := n.Attr("from")
		if from != "" {
			for i := range s.csiHeld {
				if s.csiHeld[i].from == from {
					// Superseded: only the latest presence of a sender is worth sending.
					s.csiHeld = append(s.csiHeld[:i], s.csiHeld[i+1:]...)
					break
				}
			}
		}
		s.csiHold(ctx, csiHeld{from: from, d: d})
		return false
	case "message":
		if typ == "error" || hasBody(n) || carbonHasBody(n) {
			s.csiFlush(ctx)
			return true
		}
		s.csiHold(ctx, csiHeld{d: d})
		return false
	}
	return true // IQs are answered by the client; never hold them
}

func hasBody(n *xmlstream.Node) bool { return n.Child(stanza.NSClient, "body") != nil }

// carbonHasBody: a carbon is urgent when the message it carries is.
func carbonHasBody(n *xmlstream.Node) bool {
	r := n.Child(nsCarbons, "received")
	if r == nil {
		r = n.Child(nsCarbons, "sent")
	}
	if r != nil {
		if f := r.Child(nsForward, "forwarded"); f != nil {
			if m := f.Child(stanza.NSClient, "message"); m != nil {
				return hasBody(m)
			}
		}
	}
	return false
}

func (s *session) csiHold(ctx actor.Context, h csiHeld) {
	s.csiHeld = append(s.csiHeld, h)
	if len(s.csiHeld) >= csiMaxHeld {
		s.csiFlush(ctx)
	}
}

func (s *session) csiFlush(ctx actor.Context) {
	held := s.csiHeld
	s.csiHeld = nil
	for _, h := range held {
		ctx.Send(s.conn, h.d)
	}
}
