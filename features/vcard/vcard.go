// Package vcard is XEP-0054 vcard-temp, answered in the user's actor (the only writer of the user's vCard) and
// stored in the KV namespace "urn:xmppd:vcard". The user reads and replaces it (no 'to' or the own bare JID);
// others may read it when [vcard] access allows: "everyone", or "contacts" (allowed to see the user's presence).
// A vCard larger than [vcard] max_size is refused with not-acceptable.
//
// The vCard's photo is the user's XEP-0153 avatar: its SHA-1 goes into every available presence the user's
// clients send (XEP-0398 §5, the session part's Rewriter), and every replacement is announced
// (feature.VCardChanged) so that PEP can publish it as an XEP-0084 avatar; PEP in turn asks for the photo of an
// avatar published there (feature.SetVCardPhoto).
package vcard

import (
	"context"
	"errors"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/avatar"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

const (
	// NS is the vcard-temp namespace.
	NS = "vcard-temp"
	// KVNamespace is where the vCard is stored (key "").
	KVNamespace = "urn:xmppd:vcard"
)

// Feature is XEP-0054. Anyone: the handler also runs for bare JIDs without an account, so that the answer is
// the same as for an account without a vCard (see get).
var Feature = &feature.Feature{
	Name:       "vcard",
	ServerVars: []string{NS},
	IQs: []feature.IQRoute{{
		Name:    xmlstream.Name{Space: NS, Local: "vCard"},
		Account: vcardIQ,
		Anyone:  true,
	}},
	NewUser:    func(u feature.User) any { return &userPart{u: u} },
	NewSession: func(feature.Session) any { return &sessionPart{} },
}

func vcardIQ(a *feature.AccountIQ) {
	if a.St.Head.Type == "set" {
		set(a)
		return
	}
	get(a)
}

// set replaces the user's vCard. Another entity's set is forbidden (XEP-0054 §3.2), whether or not an account
// exists: that answer does not depend on the account either.
func set(a *feature.AccountIQ) {
	if !a.Owner {
		a.Fail(stanza.NewError(stanza.Forbidden))
		return
	}
	srv := a.User.Server()
	v := a.Payload.String()
	if max := srv.Config().VCard.MaxSize; max > 0 && len(v) > max {
		a.Fail(stanza.NewError(stanza.NotAcceptable).WithText("the vCard is larger than the server accepts"))
		return
	}
	p := a.Part.(*userPart)
	if err := p.store(v, ""); err != nil {
		a.User.Log().Error().Err(err).Msg("storing vCard failed")
		a.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	a.Result("")
}

// get answers a vCard request.
//
// XEP-0054 §3.3 (another user's vCard): "If no vCard exists or the user does not exist, the server MUST return a
// stanza error, which SHOULD be <service-unavailable/> or <item-not-found/>." We answer every such case with
// service-unavailable, and so does a requester that [vcard] access = "contacts" does not let read the vCard:
//   - it is what the host answers, per RFC 6121 §8.5.1, to any other IQ for a bare JID without an account, so
//     vcard-temp to a missing account looks like every other namespace to a missing account;
//   - forbidden for a non-contact would tell a stranger that the account exists (there is no one to forbid
//     behind a missing account), so a stranger must get exactly what a missing account gives;
//   - a permitted requester asking an account without a vCard must get it too, or "everyone" access would let
//     anyone tell accounts without a vCard from missing ones.
//
// The user's own request (§3.1: "SHOULD be <item-not-found/>") reveals nothing and keeps item-not-found, which
// clients read as "no vCard yet" rather than "not supported".
func get(a *feature.AccountIQ) {
	hidden := stanza.NewError(stanza.ServiceUnavailable)
	if !a.User.Exists() {
		a.Fail(hidden)
		return
	}
	srv := a.User.Server()
	if !a.Owner && srv.Config().VCard.Access != "everyone" && !a.Subscriber() {
		a.Fail(hidden)
		return
	}
	v, err := srv.Store().GetKV(context.Background(), a.User.Bare().String(), KVNamespace, "")
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if a.Owner {
			a.Fail(stanza.NewError(stanza.ItemNotFound))
		} else {
			a.Fail(hidden)
		}
	case err != nil:
		a.User.Log().Error().Err(err).Msg("reading vCard failed")
		a.Fail(stanza.NewError(stanza.InternalServerError))
	default:
		a.Result(v)
	}
}

// userPart is the avatar side of the vCard in the user actor: the photo's hash, which the sessions stamp into
// presence.
type userPart struct {
	u      feature.User
	loaded bool
	hash   string // SHA-1 of the vCard's photo, "" for none
}

// photoHash tells a session the hash to stamp.
type photoHash struct{ hash string }

// load reads the photo's hash once, when the first session is bound.
func (p *userPart) load() {
	if p.loaded {
		return
	}
	p.loaded = true
	v, err := p.u.Server().Store().GetKV(context.Background(), p.u.Bare().String(), KVNamespace, "")
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			p.u.Log().Error().Err(err).Msg("reading vCard failed")
		}
		return
	}
	p.hash = hashOf(v)
}

func hashOf(vcard string) string {
	n, err := xmlstream.ParseNode(vcard, "")
	if err != nil {
		return ""
	}
	if _, bv, ok := avatar.Photo(n); ok {
		if h, _, ok := avatar.Hash(bv); ok {
			return h
		}
	}
	return ""
}

// store replaces the vCard, tells the sessions a new hash, and announces the change.
func (p *userPart) store(vcard, by string) error {
	if err := p.u.Server().Store().PutKV(context.Background(), p.u.Bare().String(), KVNamespace, "", vcard); err != nil {
		return err
	}
	p.loaded = true
	if h := hashOf(vcard); h != p.hash {
		p.hash = h
		for _, r := range p.u.Resources() {
			p.u.ToSession(r, photoHash{h})
		}
	}
	p.u.Announce(feature.VCardChanged{VCard: vcard, By: by})
	return nil
}

// Bound (feature.Bound): the new session stamps the current hash from its first presence on.
func (p *userPart) Bound(r feature.Resource) {
	p.load()
	if p.hash != "" {
		p.u.ToSession(r, photoHash{p.hash})
	}
}

// Heard (feature.Listener) takes feature.SetVCardPhoto (XEP-0398 §4.1: the avatar published in PEP becomes the
// vCard's photo). The result may exceed [vcard] max_size by up to one PEP item ([pep] max_item_bytes): the image
// was accepted under that limit already.
func (p *userPart) Heard(ev any) {
	req, ok := ev.(feature.SetVCardPhoto)
	if !ok {
		return
	}
	srv := p.u.Server()
	var cur *xmlstream.Node
	v, err := srv.Store().GetKV(context.Background(), p.u.Bare().String(), KVNamespace, "")
	switch {
	case err == nil:
		if cur, err = xmlstream.ParseNode(v, ""); err != nil {
			p.u.Log().Warn().Err(err).Msg("stored vCard unreadable; replacing it with the photo alone")
			cur = nil
		}
	case !errors.Is(err, storage.ErrNotFound):
		p.u.Log().Error().Err(err).Msg("reading vCard failed")
		return
	case req.BinVal == "":
		return // no vCard, nothing to remove
	}
	next := avatar.WithPhoto(cur, req.Type, req.BinVal)
	if max := srv.Config().VCard.MaxSize; max > 0 && len(next) > max+srv.Config().PEP.MaxItemBytes {
		p.u.Log().Warn().Int("bytes", len(next)).Msg("the vCard with the PEP avatar would be too large; not converted")
		return
	}
	if err := p.store(next, req.By); err != nil {
		p.u.Log().Error().Err(err).Msg("storing vCard failed")
	}
}

// sessionPart stamps the photo's hash into the client's available presence.
type sessionPart struct{ hash string }

func (s *sessionPart) Handle(msg any) {
	if m, ok := msg.(photoHash); ok {
		s.hash = m.hash
	}
}

// Rewrite (feature.Rewriter): XEP-0398 §5, for broadcast and directed presence alike (MUC joins included).
func (s *sessionPart) Rewrite(st *stanza.Routed) *stanza.Routed { return avatar.Stamp(st, s.hash) }
