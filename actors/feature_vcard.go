package actors

import (
	"context"
	"errors"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0054 vcard-temp, answered by the user's user actor (the only writer of the user's vCard) and stored in
// storage.KV. The user reads and replaces it (no 'to' or the own bare JID); others may read it when
// [vcard] access allows: "everyone", or "contacts" (a 'from'/'both' subscription, i.e. allowed to see presence).
// A vCard larger than [vcard] max_size is refused with not-acceptable.

const (
	nsVCard = "vcard-temp"
	vcardNS = "urn:xmppd:vcard" // KV namespace
)

var featureVCard = &feature{
	name:       "vcard",
	serverVars: []string{nsVCard},
	iqs: []iqRoute{{
		name:    xmlstream.Name{Space: nsVCard, Local: "vCard"},
		account: vcardIQ,
	}},
}

func vcardIQ(a *accountReq) {
	r := a.r
	bg := context.Background()
	if a.st.Head.Type == "set" {
		if !a.owner {
			a.fail(stanza.NewError(stanza.Forbidden))
			return
		}
		v := a.q.String()
		if max := r.env.cfg.VCard.MaxSize; max > 0 && len(v) > max {
			a.fail(stanza.NewError(stanza.NotAcceptable).WithText("the vCard is larger than the server accepts"))
			return
		}
		if err := r.env.store.PutKV(bg, r.bare.String(), vcardNS, "", v); err != nil {
			r.log.Error().Err(err).Msg("storing vCard failed")
			a.fail(stanza.NewError(stanza.InternalServerErr))
			return
		}
		a.result("")
		return
	}
	if !a.owner && r.env.cfg.VCard.Access != "everyone" && !a.subscriber() {
		a.fail(stanza.NewError(stanza.Forbidden))
		return
	}
	v, err := r.env.store.GetKV(bg, r.bare.String(), vcardNS, "")
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// XEP-0054 §3.1: no vCard yet → item-not-found.
		a.fail(stanza.NewError(stanza.ItemNotFound))
	case err != nil:
		r.log.Error().Err(err).Msg("reading vCard failed")
		a.fail(stanza.NewError(stanza.InternalServerErr))
	default:
		a.result(v)
	}
}
