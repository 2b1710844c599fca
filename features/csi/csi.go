// Package csi is XEP-0352 client state indication.
//
// <inactive/> and <active/> are nonzas handled by the session part, which owns the state. While inactive it holds
// back what the client need not see at once (§5 leaves the policy to the server): presence updates, of which only
// the latest per sender is kept (an older one is superseded), and messages without a body (chat states, receipts,
// markers). A message with a body (or a carbon carrying one), an error, an IQ or a subscription request wants
// attention: it first flushes what was held, so the client sees everything in arrival order, then goes out.
// <active/> flushes in arrival order. The queue is bounded: reaching MaxHeld flushes it. When the connection is
// lost and the session waits to be resumed (XEP-0198), what is held goes into the stream management queue: it
// counts there, is sent on resumption, and is delivered again (RFC 6121 §8.5) if the window closes.
package csi

import (
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NS is the XEP-0352 namespace.
	NS = "urn:xmpp:csi:0"
	// MaxHeld bounds the stanzas held back while inactive.
	MaxHeld = 256
)

// Feature is XEP-0352. Its Name is what [features] disable lists.
var Feature = &feature.Feature{
	Name: "csi",
	// §6 (business rules) asks for the stream feature; disco#info lists the namespace too, so that a client
	// looking at the server's features (or its caps hash) finds CSI there as well.
	ServerVars:    []string{NS},
	StreamFeature: func(feature.Server) string { return "<csi xmlns='" + NS + "'/>" },
	Nonzas:        []xmlstream.Name{{Space: NS, Local: "inactive"}, {Space: NS, Local: "active"}},
	// XEP-0386 §2.2: "the session must begin in that state".
	Bind2:      &feature.Bind2Spec{Var: NS, Elements: []xmlstream.Name{{Space: NS, Local: "inactive"}, {Space: NS, Local: "active"}}},
	NewSession: func(s feature.Session) any { return &Session{s: s} },
}

// held is one held stanza; from is set for presence (to supersede it).
type held struct {
	from string
	st   *stanza.Routed
}

// Session is the part of one session: the client's state and what is held back.
type Session struct {
	s        feature.Session
	inactive bool   // the client said <inactive/>
	held     []held // held back while inactive, in arrival order
}

// Inactive reports whether the client said <inactive/> (and not <active/> since).
func (p *Session) Inactive() bool { return p.inactive }

// Held is how many stanzas are held back.
func (p *Session) Held() int { return len(p.held) }

// Nonza takes <inactive/> and <active/>.
func (p *Session) Nonza(el *xmlstream.Element) {
	switch el.Name.Local {
	case "inactive":
		p.inactive = true
	case "active":
		p.inactive = false
		p.flush()
	}
}

// Bind2 starts a session bound with XEP-0386 in the state the client named.
func (p *Session) Bind2(n *xmlstream.Node) string {
	p.inactive = n.Name.Local == "inactive"
	return ""
}

// Inbound holds back what can wait while the client is inactive.
func (p *Session) Inbound(st *stanza.Routed) bool {
	if !p.inactive {
		return true
	}
	typ := st.Head.Type
	switch st.Head.Name {
	case "presence":
		if typ != "" && typ != "unavailable" {
			p.flush() // subscription requests and errors want attention, in order
			return true
		}
		if from := st.Head.From; from != "" {
			for i := range p.held {
				if p.held[i].from == from {
					// Superseded: only the latest presence of a sender is worth sending.
					p.held = append(p.held[:i], p.held[i+1:]...)
					break
				}
			}
		}
		p.hold(held{from: st.Head.From, st: st})
		return false
	case "message":
		if typ == "error" {
			p.flush()
			return true
		}
		n, err := st.Node()
		if err != nil {
			return true // not ours to judge; the host writes what it was given
		}
		if hasBody(n) || carbonHasBody(n) {
			p.flush()
			return true
		}
		p.hold(held{st: st})
		return false
	}
	// IQs are answered by the client: never held, and what came before them goes first.
	p.flush()
	return true
}

func hasBody(n *xmlstream.Node) bool { return n.Child(stanza.NSClient, "body") != nil }

// carbonHasBody: a XEP-0280 carbon is urgent when the message it carries is.
func carbonHasBody(n *xmlstream.Node) bool {
	r := n.Child(stanza.NSCarbons, "received")
	if r == nil {
		r = n.Child(stanza.NSCarbons, "sent")
	}
	if r != nil {
		if f := r.Child(stanza.NSForward, "forwarded"); f != nil {
			if m := f.Child(stanza.NSClient, "message"); m != nil {
				return hasBody(m)
			}
		}
	}
	return false
}

// ConnectionChanged (feature.Resumable): a lost connection flushes into the stream management queue.
func (p *Session) ConnectionChanged(resumed bool) {
	if !resumed {
		p.flush()
	}
}

func (p *Session) hold(h held) {
	p.held = append(p.held, h)
	if len(p.held) >= MaxHeld {
		p.flush()
	}
}

// flush writes what was held, in arrival order. The stanzas already passed the Inbound hooks of the features
// before this one; ToClient writes them past the rest, as the old code did (it sent them straight to the conn).
func (p *Session) flush() {
	held := p.held
	p.held = nil
	for _, h := range held {
		p.s.ToClient(h.st)
	}
}
