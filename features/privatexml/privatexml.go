// Package privatexml is XEP-0049 private XML storage: one XML element per namespace, readable and writable only
// by its owner, kept in the KV namespace "urn:xmppd:private" (key: namespace + " " + local name) by the user's
// actor.
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
	store, owner := a.User.Server().Store(), a.User.Bare().String()
	key := el.Name.Space + " " + el.Name.Local
	bg := context.Background()
	if set {
		if err := store.PutKV(bg, owner, KVNamespace, key, el.String()); err != nil {
			a.User.Log().Error().Err(err).Msg("storing private XML failed")
			a.Fail(stanza.NewError(stanza.InternalServerError))
			return
		}
		a.Result("")
		return
	}
	v, err := store.GetKV(bg, owner, KVNamespace, key)
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
