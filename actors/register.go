package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0077 in-band registration: account creation before authentication (in the conn actor), password change
// and account removal after it (in the session). Credentials are derived here, stored only as SCRAM keys.

// accountRemoved tells a user actor that its account is gone: it cancels subscriptions and ends every session.
type accountRemoved struct{}

// storedCredentials derives SCRAM credentials for every hash we offer (so enabling a mechanism later never locks
// anyone out) in the storage form.
func storedCredentials(password string, iterations int) ([]storage.Credential, error) {
	creds, err := sasl.NewCredentials(password, iterations, rand.Reader)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Credential, len(creds))
	for i, c := range creds {
		out[i] = storage.Credential{Hash: c.Hash.String(), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	return out, nil
}

// registerForm is the XEP-0077 §3.1 form.
const registerForm = "<query xmlns='" + stanza.NSRegister + "'><instructions>Choose a username and password for use with this service.</instructions><username/><password/></query>"

// onPreAuthIQ handles IQs before authentication: only jabber:iq:register is served there.
func (c *conn) onPreAuthIQ(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stanza.NotWellFormed, "")
		return
	}
	q := n.FirstElement()
	if q == nil || q.Name.Space != stanza.NSRegister || q.Name.Local != "query" || el.ID == "" {
		c.finish(ctx, stanza.NotAuthorized, "")
		return
	}
	h := stanza.Head{Name: "iq", ID: el.ID, Type: el.Type}
	errReply := func(e stanza.Error) { c.send(ctx, stanza.ErrorReply(h, c.domain, e)) }
	if !c.env.cfg.Registration.Allow {
		errReply(stanza.NewError(stanza.NotAllowed).WithText("in-band registration is disabled"))
		return
	}
	if !c.secure && c.env.cfg.C2S.RequireEncryption {
		c.finish(ctx, stanza.NotAuthorized, "negotiate TLS first")
		return
	}
	switch el.Type {
	case "get":
		c.send(ctx, stanza.IQResult(h, c.domain, registerForm))
	case "set":
		if q.Child(stanza.NSRegister, "remove") != nil {
			errReply(stanza.NewError(stanza.RegistrationRequired))
			return
		}
		user := q.Child(stanza.NSRegister, "username")
		pass := q.Child(stanza.NSRegister, "password")
		if user == nil || pass == nil {
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("username and password are required"))
			return
		}
		account, err := jid.New(user.TextContent(), c.domain, "")
		if err != nil || account.Local() == "" {
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("the username is not a valid JID localpart"))
			return
		}
		password := pass.TextContent()
		if len(password) < c.env.cfg.Registration.MinPasswordLength {
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("the password is too short"))
			return
		}
		if slices.Contains(c.env.cfg.Registration.ReservedUsernames, account.Local()) {
			// Names that look official (admin, postmaster, …) are for the operator's CLI (XEP-0205 §9).
			c.env.metrics.hit(limitReservedUsername)
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("the username is reserved"))
			return
		}
		// registration.max_per_ip: the listener owns the per-address budget. Asked before the expensive key
		// derivation, so a flood costs us a map look-up per attempt; the answer comes back into this actor
		// (ReenterAfter), the mailbox stays live meanwhile.
		f := ctx.RequestFuture(ctx.Parent(), &registrationAllowed{ip: c.ip}, 5*time.Second)
		ctx.ReenterAfter(f, func(res interface{}, err error) {
			if c.state != stateNegot {
				return
			}
			if v, ok := res.(*registrationVerdict); err != nil || !ok || !v.ok {
				c.env.metrics.hit(limitRegistrationRate)
				c.log.Info().Msg("in-band registration refused: too many from this address")
				errReply(stanza.NewError(stanza.PolicyViolationErr).WithText("too many registrations from your address; try later"))
				return
			}
			c.createAccount(ctx, h, account, password)
		})
	default:
		errReply(stanza.NewError(stanza.BadRequest))
	}
}

// createAccount finishes an in-band registration (XEP-0077 §3.1).
func (c *conn) createAccount(ctx actor.Context, h stanza.Head, account jid.JID, password string) {
	errReply := func(e stanza.Error) { c.send(ctx, stanza.ErrorReply(h, c.domain, e)) }
	creds, err := storedCredentials(password, c.env.cfg.Auth.ScramIterations)
	if err != nil {
		errReply(stanza.NewError(stanza.NotAcceptable).WithText("the password is not acceptable"))
		return
	}
	switch err := c.env.store.CreateAccount(context.Background(), account.String(), creds); {
	case err == nil:
		c.log.Info().Str("account", account.String()).Msg("account registered in-band")
		c.send(ctx, stanza.IQResult(h, c.domain, ""))
	case errors.Is(err, storage.ErrExists):
		errReply(stanza.NewError(stanza.ConflictErr).WithText("the username is taken"))
	default:
		c.log.Error().Err(err).Msg("account creation failed")
		errReply(stanza.NewError(stanza.InternalServerErr))
	}
}

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
		creds, err := storedCredentials(pass.TextContent(), s.env.cfg.Auth.ScramIterations)
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
func (r *rosterActor) accountGone(ctx actor.Context) {
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
