package actors

import (
	"context"
	"errors"
	"strings"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0049 private XML storage: one XML element per namespace, readable and writable only by its owner, kept in
// storage.KV by the user's user actor. Others get forbidden (§3); a payload in a jabber: namespace or with
// other than exactly one child is not-acceptable (§3, "jabber:* namespaces are reserved").

const (
	nsPrivate = "jabber:iq:private"
	privateNS = "urn:xmppd:private" // KV namespace; key: namespace + " " + local name
)

var featurePrivate = &feature{
	name:       "private",
	serverVars: []string{nsPrivate},
	iqs: []iqRoute{{
		name:    xmlstream.Name{Space: nsPrivate, Local: "query"},
		account: privateIQ,
	}},
}

func privateIQ(a *accountReq) {
	if !a.owner {
		a.fail(stanza.NewError(stanza.Forbidden))
		return
	}
	kids := a.q.Elements()
	if len(kids) != 1 {
		a.fail(stanza.NewError(stanza.NotAcceptable))
		return
	}
	el := kids[0]
	if el.Name.Space == "" || el.Name.Space == nsPrivate || strings.HasPrefix(el.Name.Space, "jabber:") && a.st.Head.Type == "set" {
		a.fail(stanza.NewError(stanza.NotAcceptable))
		return
	}
	r := a.r
	key := el.Name.Space + " " + el.Name.Local
	bg := context.Background()
	if a.st.Head.Type == "set" {
		if err := r.env.store.PutKV(bg, r.bare.String(), privateNS, key, el.String()); err != nil {
			r.log.Error().Err(err).Msg("storing private XML failed")
			a.fail(stanza.NewError(stanza.InternalServerErr))
			return
		}
		a.result("")
		return
	}
	v, err := r.env.store.GetKV(bg, r.bare.String(), privateNS, key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// §3.2: nothing stored: the empty element comes back.
		v = el.String()
	case err != nil:
		r.log.Error().Err(err).Msg("reading private XML failed")
		a.fail(stanza.NewError(stanza.InternalServerErr))
		return
	}
	a.result("<query xmlns='" + nsPrivate + "'>" + v + "</query>")
}
