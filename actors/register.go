package actors

import (
	"context"
	"errors"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0077 in-band registration: account creation before authentication (in the conn actor), password change
// and account removal after it (in the session). Credentials are derived here, stored only as SCRAM keys.

// accountRemoved tells a user actor that its account is gone: it cancels subscriptions and ends every session.
type accountRemoved struct{}

// registerIQ: XEP-0077 §3.2 (cancel) and §3.3 (password change) from an authenticated session.
func (s *session) registerIQ(ctx actor.Context, st *Stanza, q *xmlstream.Node, from string) {
	h := st.Head
	if !s.env.cfg.Registration.Allow {
		s.errorToClient(ctx, h, from, stanza.NewError(stanza.NotAllowed))
		return
	}
	result := func() { s.toClient(ctx, stanza.IQResult(stanza.Head{ID: h.ID, From: s.full.String()}, from, "")) }
	switch h.Type {
	case "get":
		s.toClient(ctx, stanza.IQResult(stanza.Head{ID: h.ID, From: s.full.String()}, from,
			"<query xmlns='"+stanza.NSRegister+"'><registered/><username>"+
				string(xmlstream.AppendEscapedText(nil, s.bare.Local()))+"</username><password/></query>"))
	case "set":
		bg := context.Background()
		if q.Child(stanza.NSRegister, "remove") != nil {
			if len(q.Elements()) != 1 {
				s.errorToClient(ctx, h, from, stanza.NewError(stanza.BadRequest))
				return
			}
			if err := s.env.store.DeleteAccount(bg, s.bare.String()); err != nil && !errors.Is(err, storage.ErrNotFound) {
				s.log.Error().Err(err).Msg("account removal failed")
				s.errorToClient(ctx, h, from, stanza.NewError(stanza.InternalServerErr))
				return
			}
			s.log.Info().Msg("account removed in-band")
			result()
			// §3.2: the server then ends every session of the account with <not-authorized/>.
			ctx.Send(ctx.Parent(), &accountRemoved{})
			return
		}
		user := q.Child(stanza.NSRegister, "username")
		pass := q.Child(stanza.NSRegister, "password")
		if pass == nil || pass.TextContent() == "" {
			// §3.3: an empty password never replaces the existing one.
			s.errorToClient(ctx, h, from, stanza.NewError(stanza.BadRequest))
			return
		}
		if user != nil {
			if u, err := jid.New(user.TextContent(), s.bare.Domain(), ""); err != nil || u != s.bare {
				s.errorToClient(ctx, h, from, stanza.NewError(stanza.NotAuthorizedErr))
				return
			}
		}
		if len(pass.TextContent()) < s.env.cfg.Registration.MinPasswordLength {
			s.errorToClient(ctx, h, from, stanza.NewError(stanza.NotAcceptable).WithText("the password is too short"))
			return
		}
		creds, err := accounts.StoredCredentials(pass.TextContent(), s.env.cfg.Auth.ScramIterations)
		if err == nil {
			err = s.env.store.SetCredentials(bg, s.bare.String(), creds)
		}
		if err != nil {
			s.log.Error().Err(err).Msg("password change failed")
			s.errorToClient(ctx, h, from, stanza.NewError(stanza.InternalServerErr))
			return
		}
		s.log.Info().Msg("password changed in-band")
		result()
	default:
		s.errorToClient(ctx, h, from, stanza.NewError(stanza.BadRequest))
	}
}

// accountGone: the user actor's part of account removal (XEP-0077 §3.2): cancel subscriptions with every contact
// (RFC 6121 §3.2, §3.3: unsubscribe and unsubscribed), then end every session.
func (r *userActor) accountGone(ctx actor.Context) {
	for c, it := range r.items {
		s := stateOf(it, false)
		if s.To || s.PendingOut {
			r.route(ctx, stanza.Build("presence", r.bare.String(), c.String(), "unsubscribe", "", ""), "presence", "unsubscribe", r.bare, c)
		}
		if s.From {
			r.route(ctx, stanza.Build("presence", r.bare.String(), c.String(), "unsubscribed", "", ""), "presence", "unsubscribed", r.bare, c)
		}
	}
	for c := range r.pendingIn {
		r.route(ctx, stanza.Build("presence", r.bare.String(), c.String(), "unsubscribed", "", ""), "presence", "unsubscribed", r.bare, c)
	}
	r.exists = false
	clear(r.items)
	clear(r.pendingIn)
	for _, rs := range r.resources {
		ctx.Send(rs.pid, &sessionEnd{condition: stanza.NotAuthorized, text: "the account was removed"})
	}
}
