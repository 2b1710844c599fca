// Package privatexml is XEP-0049 private XML storage: one XML element per namespace, readable and writable only
// by its owner, kept in the KV namespace "urn:xmppd:private" (key: namespace + " " + local name) by the user's
// actor. Every element stored is announced (feature.PrivateChanged), and another feature may ask to store one
// (feature.StorePrivate): that is how bookmarks stay in step with PEP (XEP-0411).
package privatexml

import (
	"context"
	"errors"
	"strings"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

const (
	// NS is the XEP-0049 namespace.
	NS = "jabber:iq:private"
	// KVNamespace is where the elements are stored.
	KVNamespace = "urn:xmppd:private"
)

// Feature is XEP-0049.
var Feature = &feature.Feature{
	Name:       "private",
	ServerVars: []string{NS},
	IQs: []feature.IQRoute{{
		Name:    xmlstream.Name{Space: NS, Local: "query"},
		Account: privateIQ,
	}},
	NewUser: func(u feature.User) any { return &part{u: u} },
}

// part is the private storage of one account, in its user actor: it stores what other features ask it to.
type part struct{ u feature.User }

// Heard (feature.Listener) takes feature.StorePrivate and feature.ReadPrivate.
func (p *part) Heard(ev any) {
	if q, ok := ev.(feature.ReadPrivate); ok {
		v, err := p.u.Server().Store().GetKV(context.Background(), p.u.Bare().String(), KVNamespace, q.Space+" "+q.Local)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			v = ""
		case err != nil:
			p.u.Log().Error().Err(err).Str("by", q.By).Msg("reading private XML failed")
			return // no answer: the asker must not take an unreadable element for a missing one
		}
		p.u.Announce(feature.PrivateRead{Space: q.Space, Local: q.Local, Element: v, By: q.By})
		return
	}
	req, ok := ev.(feature.StorePrivate)
	if !ok {
		return
	}
	el, err := xmlstream.ParseNode(req.Element, "")
	if err != nil || el.Name.Space == "" || strings.HasPrefix(el.Name.Space, "jabber:") {
		p.u.Log().Error().Str("by", req.By).Msg("private XML: refusing to store an element asked for by a feature")
		return
	}
	if err := store(p.u, el.Name, req.Element, req.By); err != nil {
		p.u.Log().Error().Err(err).Str("by", req.By).Msg("storing private XML failed")
	}
}

// store keeps element (named name) and announces it.
func store(u feature.User, name xmlstream.Name, element, by string) error {
	if err := u.Server().Store().PutKV(context.Background(), u.Bare().String(), KVNamespace, name.Space+" "+name.Local, element); err != nil {
		return err
	}
	u.Announce(feature.PrivateChanged{Space: name.Space, Local: name.Local, Element: element, By: by})
	return nil
}

func privateIQ(a *feature.AccountIQ) {
	// §3: only the owner may read or write private data.
	if !a.Owner {
		a.Fail(stanza.NewError(stanza.Forbidden))
		return
	}
	kids := a.Payload.Elements()
	if len(kids) != 1 {
		a.Fail(stanza.NewError(stanza.NotAcceptable)) // §3: exactly one child element
		return
	}
	el := kids[0]
	set := a.St.Head.Type == "set"
	// §3: "jabber:*" namespaces are reserved and may not be stored; reading one back is harmless (it is never
	// there), but an element without a namespace or in jabber:iq:private itself is never a valid key.
	if el.Name.Space == "" || el.Name.Space == NS || set && strings.HasPrefix(el.Name.Space, "jabber:") {
		a.Fail(stanza.NewError(stanza.NotAcceptable))
		return
	}
	key := el.Name.Space + " " + el.Name.Local
	if set {
		if err := store(a.User, el.Name, el.String(), ""); err != nil {
			a.User.Log().Error().Err(err).Msg("storing private XML failed")
			a.Fail(stanza.NewError(stanza.InternalServerError))
			return
		}
		a.Result("")
		return
	}
	v, err := a.User.Server().Store().GetKV(context.Background(), a.User.Bare().String(), KVNamespace, key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		v = el.String() // §3.2: nothing stored: the empty element comes back
	case err != nil:
		a.User.Log().Error().Err(err).Msg("reading private XML failed")
		a.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	a.Result("<query xmlns='" + NS + "'>" + v + "</query>")
}
