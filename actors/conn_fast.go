package actors

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/sasl2"
	"github.com/xmppd/xmppd/storage"
)

// XEP-0484 FAST in the conn: authentication with a token (the HT-SHA-256 mechanisms of protocol/sasl) and the
// issue of tokens inside SASL2 <success/>. Tokens are stored by the conn, as credentials are by in-band
// registration: per account and user-agent id, as the digest the HMAC is keyed with, never the token itself.
// Nothing here logs a token or a hashed token.

// fastMechanisms are the HT mechanisms this stream offers: only with SASL2, only on TLS (XEP-0484 §7), each
// channel-bound one only with its binding.
func (c *conn) fastMechanisms() []string {
	cfg := &c.env.cfg
	if !cfg.Fast.Enabled || !cfg.SASL2.Enabled || !c.secure {
		return nil
	}
	return sasl.HTOffered(c.cbTypes())
}

// fastAuth verifies a token authentication (XEP-0484 §4.4) and, if it is right, goes on as any other success.
func (c *conn) fastAuth(ctx actor.Context, ht sasl.HTMechanism) {
	s := c.s2
	c.mech = sasl.Mechanism{Name: ht.Name}
	if !s.req.HasInitial || s.req.Fast == nil {
		// §4.4: the client MUST include <fast/>; the HT mechanisms have no challenge (one round trip).
		c.saslFailure(ctx, sasl.MalformedRequest, "a FAST authentication needs an initial response and <fast/>")
		return
	}
	if s.req.UserAgent.ID == "" {
		c.saslFailure(ctx, sasl.MalformedRequest, "a FAST authentication needs a user-agent id")
		return
	}
	if s.req.Fast.HasCount && s.req.Fast.Count == 0 {
		c.saslFailure(ctx, sasl.MalformedRequest, "the FAST count is a positive integer")
		return
	}
	authcid, hashed, err := sasl.ParseHT(s.req.Initial)
	if err != nil {
		c.saslFailure(ctx, sasl.MalformedRequest, "")
		return
	}
	user, ok := c.saslIdentity(ctx, authcid, "", nil)
	if !ok {
		return
	}
	cb := c.cb.Data(ht.CB) // nil for -NONE; fastMechanisms offered the others only with their binding
	toks, err := c.env.store.FastTokens(context.Background(), user.String(), s.req.UserAgent.ID)
	if err != nil {
		c.log.Error().Err(err).Msg("FAST token lookup failed")
		c.saslFailure(ctx, sasl.TemporaryAuthFailure, "")
		return
	}
	now := time.Now()
	var match *storage.FastToken
	expired := false
	for i := range toks {
		t := &toks[i]
		// §4.4: a token works only with the mechanism it was issued for; every comparison is constant-time.
		if t.Mechanism != ht.Name || !sasl.HTVerify(t.Key, cb, hashed) {
			continue
		}
		if !now.Before(t.Expiry) {
			expired = true
			continue
		}
		match = t
		break
	}
	if match == nil {
		if expired {
			// §5.2: a token the server no longer trusts gets credentials-expired; the client falls back.
			c.saslFailure(ctx, sasl.CredentialsExpired, "the token has expired")
			return
		}
		c.credentialFailure(ctx) // a wrong token is a wrong credential: counted and delayed like a password
		return
	}
	var count uint32
	if s.req.Fast.HasCount {
		count = s.req.Fast.Count
	}
	// Without a count and with the token already in use nothing changes, and nothing is written: the counter is
	// XEP-0484's defence for TLS 0-RTT (§4.4), and a client that does not send one is not using early data.
	used := !s.req.Fast.HasCount && !match.Pending
	if !used {
		used, err = c.env.store.UseFastToken(context.Background(), user.String(), s.req.UserAgent.ID, match.Key, count)
		if err != nil {
			c.log.Error().Err(err).Msg("FAST token update failed")
			c.saslFailure(ctx, sasl.TemporaryAuthFailure, "")
			return
		}
	}
	if !used {
		// §4.4: a count not above one already processed for this token is a replay.
		c.log.Info().Str("account", user.String()).Uint32("count", count).Msg("FAST authentication refused: count replayed")
		c.env.metrics.authFailures.WithLabelValues(ht.Name).Inc()
		c.saslFailure(ctx, sasl.NotAuthorized, "the FAST count was used before")
		return
	}
	s.fastUsed = match
	if s.req.Fast.Invalidate {
		// §4.6: the token dies now; a new one only if the client asked for one in the same request.
		if err := c.env.store.DeleteFastTokens(context.Background(), user.String(), s.req.UserAgent.ID); err != nil {
			c.log.Error().Err(err).Msg("FAST token invalidation failed")
			c.saslFailure(ctx, sasl.TemporaryAuthFailure, "")
			return
		}
		c.log.Info().Str("account", user.String()).Msg("FAST token invalidated")
	}
	c.authSuccess(ctx, user, sasl.HTResponder(match.Key, cb))
}

// fastIssue adds a new token to <success/> when the client asked for one (§4.2), or when it logged in with a
// token that has less than half of its lifetime left (§4.5 rotation). The new token is stored as the client's
// pending one: the one in use stays valid until the new one is used.
func (c *conn) fastIssue(ctx actor.Context) {
	s := c.s2
	cfg := &c.env.cfg.Fast
	mech := s.req.RequestToken
	if mech == "" && s.fastUsed != nil && !s.req.Fast.Invalidate && time.Until(s.fastUsed.Expiry) < cfg.TokenLifetime.Duration/2 {
		mech = s.fastUsed.Mechanism
	}
	if mech == "" {
		return
	}
	if !contains(c.fastMechanisms(), mech) || s.req.UserAgent.ID == "" {
		// §4.2: one of the advertised mechanisms; §5.1: clients MUST send a user-agent id.
		c.log.Info().Str("mechanism", mech).Bool("user_agent", s.req.UserAgent.ID != "").Msg("FAST token not issued")
		return
	}
	token, key, err := sasl.NewHTToken(rand.Reader)
	if err != nil {
		c.log.Error().Err(err).Msg("FAST token generation failed")
		return
	}
	expiry := time.Now().Add(cfg.TokenLifetime.Duration).Truncate(time.Second)
	if err := c.env.store.PutFastToken(context.Background(), storage.FastToken{Account: c.user.String(),
		Client: s.req.UserAgent.ID, Key: key, Mechanism: mech, Expiry: expiry}); err != nil {
		c.log.Error().Err(err).Msg("storing a FAST token failed")
		return
	}
	c.log.Info().Str("mechanism", mech).Time("expiry", expiry).Msg("FAST token issued")
	s.extra.WriteString(sasl2.Token(token, expiry))
}
