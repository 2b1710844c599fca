// Package register is the authenticated part of XEP-0077 in-band registration: a logged-in user reads the
// registration (§3.2 get), removes the account (§3.2 cancellation) or changes the password (§3.3). Creating an
// account before authentication is the conn actor's (actors/conn_register.go). Credentials are derived here and
// stored only as SCRAM keys.
//
// A refusal that follows from a rule says the rule in its <text/> (issue 11 item 8), so that a client can show
// the user what to do, not just that it failed.
package register

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The texts of the refusals with a rule.
const (
	// TextRemoveAlone: §3.2: the cancellation request carries <remove/> and nothing else.
	TextRemoveAlone = "the <remove/> element must be the only child of the query"
	// TextDisabled: registration.allow is off (same text as before authentication).
	TextDisabled = "in-band registration is disabled"
)

// TextOwnUsername is the refusal of a password change that names another account: §3.3 changes the password
// of the account the stream is authenticated as, and no other.
func TextOwnUsername(local string) string {
	return "the username must be the account's own (" + local + ")"
}

// Feature is XEP-0077 for authenticated sessions, served only with registration.allow.
var Feature = &feature.Feature{
	Name:       "register",
	Enabled:    func(cfg *config.Config) bool { return cfg.Registration.Allow },
	ServerVars: []string{stanza.NSRegister},
	IQs: []feature.IQRoute{{
		Name: xmlstream.Name{Space: stanza.NSRegister, Local: "query"},
		// To the server's domain and to the own account alike: both mean "my registration with this server".
		Server:  handle,
		Session: handle,
	}},
}

func handle(q *feature.IQ) {
	s := q.Session
	cfg := s.Server().Config()
	bare := s.Full().Bare()
	if !cfg.Registration.Allow {
		// Unreachable through the host (Enabled keeps the route away), kept so the handler is safe alone.
		q.Fail(stanza.NewError(stanza.NotAllowed).WithText(TextDisabled))
		return
	}
	switch q.St.Head.Type {
	case "get":
		// §3.2: an entity that is registered gets <registered/> with its current data (the password is never
		// given back).
		q.Result("<query xmlns='" + stanza.NSRegister + "'><registered/><username>" +
			string(xmlstream.AppendEscapedText(nil, bare.Local())) + "</username><password/></query>")
	case "set":
		if q.Payload.Child(stanza.NSRegister, "remove") != nil {
			remove(q, bare)
			return
		}
		changePassword(q, cfg, bare)
	default:
		q.Fail(stanza.NewError(stanza.BadRequest))
	}
}

// remove: §3.2 cancellation. The result goes out before the sessions end, so the client learns that it worked.
func remove(q *feature.IQ, bare jid.JID) {
	s := q.Session
	if len(q.Payload.Elements()) != 1 {
		q.Fail(stanza.NewError(stanza.BadRequest).WithText(TextRemoveAlone))
		return
	}
	// Already gone (another session removed it a moment ago) is the outcome asked for, not an error.
	if err := s.Server().Store().DeleteAccount(context.Background(), bare.String()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.Log().Error().Err(err).Msg("account removal failed")
		q.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	s.Log().Info().Msg("account removed in-band")
	q.Result("")
	// §3.2: the server then cancels the subscriptions and ends every session of the account (the user actor).
	s.AccountRemoved()
}

// changePassword: §3.3.
func changePassword(q *feature.IQ, cfg *config.Config, bare jid.JID) {
	s := q.Session
	user := q.Payload.Child(stanza.NSRegister, "username")
	pass := q.Payload.Child(stanza.NSRegister, "password")
	min := cfg.Registration.MinPasswordLength
	if pass == nil || pass.TextContent() == "" {
		// §3.3: an empty password never replaces the existing one. (bad-request as before; the text is the
		// same rule as for a short one.)
		q.Fail(stanza.NewError(stanza.BadRequest).WithText(accounts.PasswordRule(min)))
		return
	}
	if user != nil {
		if u, err := jid.New(user.TextContent(), bare.Domain(), ""); err != nil || u != bare {
			q.Fail(stanza.NewError(stanza.NotAuthorized).WithText(TextOwnUsername(bare.Local())))
			return
		}
	}
	password := pass.TextContent()
	// registration.min_password_length counts bytes, as before authentication (conn_register.go).
	if utf8.RuneCountInString(password) < min {
		q.Fail(stanza.NewError(stanza.NotAcceptable).WithText(accounts.PasswordRule(min)))
		return
	}
	creds, err := accounts.StoredCredentials(password, cfg.Auth.ScramIterations)
	if err == nil {
		err = s.Server().Store().SetCredentials(context.Background(), bare.String(), creds)
	}
	if err != nil {
		s.Log().Error().Err(err).Msg("password change failed")
		q.Fail(stanza.NewError(stanza.InternalServerError))
		return
	}
	s.Log().Info().Msg("password changed in-band")
	q.Result("")
}
