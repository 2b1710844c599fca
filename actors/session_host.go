package actors

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
)

// sessionHost is the feature.Session one feature's session part sees: the session, and which feature it is
// (idx), so that the part's messages reach the same feature's parts elsewhere. Its methods run on the session's
// goroutine only (inside a hook or a handler the session called).
type sessionHost struct {
	s   *session
	idx int
}

func (h *sessionHost) Server() feature.Server     { return h.s.env.srv }
func (h *sessionHost) Full() jid.JID              { return h.s.full }
func (h *sessionHost) Log() *zerolog.Logger       { return &h.s.log }
func (h *sessionHost) ToClient(st *stanza.Routed) { h.s.toClient(h.s.ctx, st) }
func (h *sessionHost) Deliver(st *stanza.Routed)  { h.s.deliverFrom(h.idx, st) }
func (h *sessionHost) Route(st *stanza.Routed)    { h.s.route(h.s.ctx, st) }
func (h *sessionHost) EndStream(cond, text string) {
	h.s.ctx.Send(h.s.conn, &closeStream{condition: stream.Condition(cond), text: text})
}
func (h *sessionHost) AccountRemoved() { h.s.ctx.Send(h.s.ctx.Parent(), &accountRemoved{}) }

func (h *sessionHost) Result(st *stanza.Routed, from, payload string) {
	h.s.resultToClient(h.s.ctx, st, from, payload)
}

func (h *sessionHost) Error(st *stanza.Routed, from string, e stanza.Error) {
	h.s.errorToClient(h.s.ctx, st, from, e)
}

func (h *sessionHost) ToUser(msg any) {
	h.s.ctx.Send(h.s.ctx.Parent(), &featureMsg{idx: h.idx, msg: msg})
}

func (h *sessionHost) ToUserOf(bare jid.JID, msg any) {
	h.s.ctx.Send(h.s.env.router, &toUser{bare: bare.Bare(), msg: &featureMsg{idx: h.idx, msg: msg}})
}

func (h *sessionHost) Survey(q any, timeout time.Duration, done func([]any)) {
	h.s.await(&surveyCollector{router: h.s.env.router, idx: h.idx, q: q, timeout: timeout}, done)
}

func (h *sessionHost) Ask(bare jid.JID, q any, timeout time.Duration, done func(any, bool)) {
	h.s.await(&surveyCollector{router: h.s.env.router, idx: h.idx, q: q, one: bare.Bare(), timeout: timeout}, func(a []any) {
		if len(a) == 0 {
			done(nil, false)
			return
		}
		done(a[0], true)
	})
}

func (h *sessionHost) CapsLookup(hash, ver, node string) {
	if h.s.env.caps != nil {
		h.s.ctx.Request(h.s.env.caps, &capsLookup{hash: hash, ver: ver, node: node, idx: h.idx})
	}
}

func (h *sessionHost) CapsVerified(hash, ver string, features []string) {
	if h.s.env.caps != nil {
		h.s.ctx.Send(h.s.env.caps, &capsVerified{hash: hash, ver: ver, features: features})
	}
}

var _ feature.Session = (*sessionHost)(nil)
