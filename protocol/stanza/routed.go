package stanza

import (
	"sync"
	"time"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Routed is a stanza on its way through the server: the parsed head, the parsed addresses and the raw bytes
// (with 'from' already stamped by the sender's session, RFC 6120 §8.1.2.1). It is immutable once handed on:
// whoever needs it with another 'to' makes a copy with Retarget. The parsed element is computed at most once,
// by whoever asks first (Node), and shared by everyone after: a memo of an immutable value, guarded by
// sync.Once so that two actors asking at the same moment parse once and see the same result.
type Routed struct {
	Head     Head
	From, To jid.JID
	Raw      string
	// Accepted is when the sender's session accepted the stanza from its client (zero for stanzas the server
	// generates): the start of xmppd_routing_latency_seconds.
	Accepted time.Time
	// Once is the stanza's idempotency key ("" for none): given where a stanza whose sender waits for its
	// confirmation (XEP-0198) first crosses to another cluster node, kept wherever it is forwarded or routed
	// again, so that the recipient's home stores and delivers it once however often it arrives (the user actor,
	// the offline queue's (owner, key), the archive's id). Only the server sets it, never from a client's bytes.
	// Copies for other recipients or senders (Retarget, Restamp, the errors) do not carry it.
	Once string

	once    sync.Once
	node    *xmlstream.Node
	nodeErr error
}

// New is a routed stanza from its parts (the caller vouches that h, from, to and raw agree).
func New(h Head, from, to jid.JID, raw string) *Routed {
	return &Routed{Head: h, From: from, To: to, Raw: raw}
}

// WithNode is New for a stanza whose element the caller has already parsed: later readers reuse n. n must not be
// modified afterwards.
func WithNode(h Head, from, to jid.JID, raw string, n *xmlstream.Node) *Routed {
	r := &Routed{Head: h, From: from, To: to, Raw: raw, node: n}
	r.once.Do(func() {})
	return r
}

// Generate builds a stanza the server itself sends (Build, plus the head).
func Generate(name, typ string, from, to jid.JID, id, payload string) *Routed {
	h := Head{Name: name, ID: id, Type: typ, From: from.String(), To: to.String()}
	return &Routed{Head: h, From: from, To: to, Raw: Build(name, h.From, h.To, typ, id, payload)}
}

// Parse reads a complete stanza in the jabber:client namespace (one kept in storage, or bytes the server had
// queued) into a routed stanza. Addresses that do not parse are left zero.
func Parse(raw string) (*Routed, error) {
	n, err := xmlstream.ParseNode(raw, NSClient)
	if err != nil {
		return nil, err
	}
	h := Head{Name: n.Name.Local, ID: n.Attr("id"), Type: n.Attr("type"), From: n.Attr("from"), To: n.Attr("to")}
	from, _ := jid.Parse(h.From)
	to, _ := jid.Parse(h.To)
	return WithNode(h, from, to, raw, n), nil
}

// Node is the parsed element (read-only: it is shared). The first call parses Raw; later calls return the same.
func (r *Routed) Node() (*xmlstream.Node, error) {
	r.once.Do(func() { r.node, r.nodeErr = xmlstream.ParseNode(r.Raw, NSClient) })
	return r.node, r.nodeErr
}

// Retarget is a copy addressed to to: 'to' is set in the head and the bytes; the payload is not re-serialised.
func (r *Routed) Retarget(to jid.JID) *Routed {
	h := r.Head
	h.To = to.String()
	return &Routed{Head: h, From: r.From, To: to, Raw: xmlstream.SetHeadAttr(r.Raw, "to", h.To), Accepted: r.Accepted}
}

// WithOnce is a copy carrying the idempotency key (the bytes, head and addresses are r's; the element is parsed
// again when asked).
func (r *Routed) WithOnce(key string) *Routed {
	return &Routed{Head: r.Head, From: r.From, To: r.To, Raw: r.Raw, Accepted: r.Accepted, Once: key}
}

// Restamp is a copy that comes from from: 'from' is set in the head and the bytes.
func (r *Routed) Restamp(from jid.JID) *Routed {
	h := r.Head
	h.From = from.String()
	return &Routed{Head: h, From: from, To: r.To, Raw: xmlstream.SetHeadAttr(r.Raw, "from", h.From), Accepted: r.Accepted}
}

// Bounce is the stanza error answering r, from r's 'to' back to its sender (RFC 6120 §8.3.1). The caller checks
// that r is not itself an error.
func (r *Routed) Bounce(e Error) *Routed { return r.Error(r.To.String(), e) }

// Error is the stanza error answering r, carrying 'from' ("" to omit it: the user's own server answering
// without a 'to').
func (r *Routed) Error(from string, e Error) *Routed {
	h := Head{Name: r.Head.Name, ID: r.Head.ID, Type: "error", From: from, To: r.Head.From}
	fj, _ := jid.Parse(from)
	return &Routed{Head: h, From: fj, To: r.From, Raw: ErrorReply(r.Head, from, e)}
}

// Result is the IQ result answering r, carrying 'from' ("" to omit it) and payload ("" for an empty result).
func (r *Routed) Result(from, payload string) *Routed {
	h := Head{Name: "iq", ID: r.Head.ID, Type: "result", From: from, To: r.Head.From}
	fj, _ := jid.Parse(from)
	return &Routed{Head: h, From: fj, To: r.From, Raw: IQResult(r.Head, from, payload)}
}
