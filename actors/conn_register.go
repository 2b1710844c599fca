package actors

import (
	"context"
	"errors"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0077 in-band registration before authentication, in the conn actor. Changing the password and removing
// the account after authentication are the register feature's.

// registerForm is the XEP-0077 §3.1 form.
const registerForm = "<query xmlns='" + stanza.NSRegister + "'><instructions>Choose a username and password for use with this service.</instructions><username/><password/></query>"

// onPreAuthIQ handles IQs before authentication: only jabber:iq:register is served there.
func (c *conn) onPreAuthIQ(ctx actor.Context, el *xmlstream.Element) {
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	q := n.FirstElement()
	if q == nil || q.Name.Space != stanza.NSRegister || q.Name.Local != "query" || el.ID == "" {
		c.finish(ctx, stream.NotAuthorized, "")
		return
	}
	h := stanza.Head{Name: "iq", ID: el.ID, Type: el.Type}
	errReply := func(e stanza.Error) { c.send(ctx, stanza.ErrorReply(h, c.domain, e)) }
	if !c.env.cfg.Registration.Allow {
		errReply(stanza.NewError(stanza.NotAllowed).WithText("in-band registration is disabled"))
		return
	}
	if !c.secure && c.env.cfg.C2S.RequireEncryption {
		c.finish(ctx, stream.NotAuthorized, "negotiate TLS first")
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
		if min := c.env.cfg.Registration.MinPasswordLength; utf8.RuneCountInString(password) < min || password == "" {
			// XEP-0077 §3.1 allows not-acceptable; the text tells the user the rule, not just the verdict.
			errReply(stanza.NewError(stanza.NotAcceptable).WithText(accounts.PasswordRule(min)))
			return
		}
		if slices.Contains(c.env.cfg.Registration.ReservedUsernames, account.Local()) {
			// Names that look official (admin, postmaster, …) are for the operator's CLI (XEP-0205 §9).
			c.env.metrics.hit(limitReservedUsername)
			errReply(stanza.NewError(stanza.NotAcceptable).WithText("the username " + account.Local() + " is reserved for the server's operators; choose another"))
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
				errReply(stanza.NewError(stanza.PolicyViolation).WithText("too many registrations from your address; try later"))
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
	creds, err := accounts.StoredCredentials(password, c.env.cfg.Auth.ScramIterations)
	if err != nil {
		errReply(stanza.NewError(stanza.NotAcceptable).WithText("the password is not acceptable"))
		return
	}
	switch err := c.env.store.CreateAccount(context.Background(), account.String(), creds); {
	case err == nil:
		c.log.Info().Str("account", account.String()).Msg("account registered in-band")
		c.env.srv.AccountCreated(account)
		c.send(ctx, stanza.IQResult(h, c.domain, ""))
	case errors.Is(err, storage.ErrExists):
		errReply(stanza.NewError(stanza.Conflict).WithText("the username is taken"))
	default:
		c.log.Error().Err(err).Msg("account creation failed")
		errReply(stanza.NewError(stanza.InternalServerError))
	}
}
