// Package vcard is XEP-0054 vcard-temp, answered in the user's actor (the only writer of the user's vCard) and
// stored in the KV namespace "urn:xmppd:vcard". The user reads and replaces it (no 'to' or the own bare JID);
// others may read it when [vcard] access allows: "everyone", or "contacts" (allowed to see the user's presence).
// A vCard larger than [vcard] max_size is refused with not-acceptable.
package vcard

import (
	"context"
	"errors"

	"github.com/xmppd/xmppd/feature"
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
	if err := srv.Store().PutKV(context.Background(), a.User.Bare().String(), KVNamespace, "", v); err != nil {
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
