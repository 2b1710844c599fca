package actors

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/sasl2"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/stream"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The SASL driver of a conn (RFC 6120 §6): mechanisms offered, SCRAM and PLAIN exchanges, failure counting and
// the per-address failure delay.

// cbTypes are the channel binding types of this stream (tls-exporter, tls-unique on TLS 1.2, tls-server-end-point):
// what -PLUS can bind to, advertised with XEP-0440. None before TLS.
func (c *conn) cbTypes() []string {
	if !c.secure {
		return nil
	}
	return c.cb.Types()
}

func (c *conn) offeredMechanisms() []string {
	allowPlain := c.env.cfg.Auth.AllowPlain && (c.secure || c.env.cfg.Auth.AllowPlainOverPlain)
	return sasl.Offered(c.cbTypes(), allowPlain)
}

// plusOffered reports whether this stream's features list a -PLUS mechanism. It is what a client's "y" GS2 flag is
// checked against: "y" after we offered -PLUS means someone removed it on the way, a downgrade (RFC 5802 §6), and
// fails. -PLUS stays offered on TLS 1.3 although clients that know only tls-unique (slixmpp 1.8.3) cannot use it:
// withholding it there would let a man in the middle, who picks the TLS version of its own connection to us, relay
// any client's "y" exchange (docs/channel-binding.md).
func (c *conn) plusOffered() bool {
	for _, name := range c.offeredMechanisms() {
		if m, ok := sasl.Lookup(name); ok && m.Plus {
			return true
		}
	}
	return false
}

// channelBindingFeature is the XEP-0440 <sasl-channel-binding/> stream feature: the binding types -PLUS can use on
// this stream, so that a client picks one that works instead of guessing (and being refused). Empty when no -PLUS
// mechanism is offered; XEP-0440 requires at least one <channel-binding/>.
func (c *conn) channelBindingFeature() string {
	if !c.plusOffered() {
		return ""
	}
	var b strings.Builder
	b.WriteString("<sasl-channel-binding xmlns='" + sasl.NSChannelBinding + "'>")
	for _, t := range c.cbTypes() {
		b.WriteString("<channel-binding type='" + t + "'/>") // RFC 5802 cb-name: ALPHA, DIGIT, '.', '-'
	}
	b.WriteString("</sasl-channel-binding>")
	return b.String()
}

func (c *conn) saslFailure(ctx actor.Context, condition, text string) {
	if c.s2 != nil {
		c.sasl2Failure(ctx, condition, text) // the exchange is a XEP-0388 one (conn_sasl2.go)
		return
	}
	b := "<failure xmlns='" + stanza.NSSASL + "'><" + condition + "/>"
	if text != "" {
		b += "<text xml:lang='en'>" + string(xmlstream.AppendEscapedText(nil, text)) + "</text>"
	}
	c.send(ctx, b+"</failure>")
	c.scram = nil
	c.pendUser = jid.JID{}
}

// saslChallenge sends a challenge in the profile of the exchange (RFC 6120 §6.4.3 or XEP-0388 §2.4).
func (c *conn) saslChallenge(ctx actor.Context, data []byte) {
	if c.s2 != nil {
		c.send(ctx, sasl2.Challenge(data))
		return
	}
	c.send(ctx, "<challenge xmlns='"+stanza.NSSASL+"'>"+string(sasl.EncodeBase64(data))+"</challenge>")
}

// credentialFailure answers a wrong password or proof. Only these count towards auth.max_failures: they are the
// guesses the limit exists for. A client probing mechanisms or channel-binding types (slixmpp tries every -PLUS
// variant with tls-unique first) must still reach one that works.
//
// The answer is delayed per source address (auth.failure_delay): the listener, which owns the per-address
// state, says how long. The wait is a timer message to ourselves, never a sleep, so the mailbox stays live
// (shutdown, closeStream). Unknown accounts and wrong passwords take exactly this same path.
func (c *conn) credentialFailure(ctx actor.Context) {
	c.scram = nil
	c.pendUser = jid.JID{}
	c.failures++
	c.env.metrics.authFailures.WithLabelValues(c.mech.Name).Inc()
	c.authWait = true
	ctx.Request(ctx.Parent(), &authFailed{ip: c.ip})
}

func (c *conn) onAuthPenalty(ctx actor.Context, d time.Duration) {
	if !c.authWait || c.state == stateClosed {
		return
	}
	if d <= 0 {
		c.failureDue(ctx)
		return
	}
	c.env.metrics.hit(limitAuthDelay)
	c.cancelAuth = scheduler.NewTimerScheduler(ctx).SendOnce(d, ctx.Self(), &authFailureDue{})
}

func (c *conn) failureDue(ctx actor.Context) {
	if !c.authWait || c.state == stateClosed {
		return
	}
	c.authWait = false
	c.saslFailure(ctx, "not-authorized", "")
	if c.failures >= c.env.cfg.Auth.MaxFailures {
		c.log.Info().Int("failures", c.failures).Msg("too many authentication failures")
		c.env.metrics.hit(limitAuthFailures)
		c.finish(ctx, stream.PolicyViolation, "too many authentication failures")
	}
}

func (c *conn) onSASL(ctx actor.Context, el *xmlstream.Element) {
	if !c.secure && c.env.cfg.C2S.RequireEncryption {
		c.saslFailure(ctx, "encryption-required", "")
		return
	}
	n, err := el.Parse()
	if err != nil {
		c.finish(ctx, stream.NotWellFormed, "")
		return
	}
	switch el.Name.Local {
	case "auth":
		if c.scram != nil {
			c.saslFailure(ctx, "malformed-request", "an exchange is already in progress")
			return
		}
		name := n.Attr("mechanism")
		m, ok := sasl.Lookup(name)
		if !ok || !contains(c.offeredMechanisms(), name) {
			c.mech = sasl.Mechanism{Name: "unknown"}
			c.saslFailure(ctx, "invalid-mechanism", "")
			return
		}
		c.mech = m
		data, ok := decodeSASL(n.TextContent())
		if !ok {
			c.saslFailure(ctx, "incorrect-encoding", "")
			return
		}
		c.saslStart(ctx, name, data)
	case "response":
		if c.scram == nil {
			c.saslFailure(ctx, "malformed-request", "no exchange in progress")
			return
		}
		data, ok := decodeSASL(n.TextContent())
		if !ok {
			c.saslFailure(ctx, "incorrect-encoding", "")
			return
		}
		c.saslResponse(ctx, data)
	case "abort":
		c.saslFailure(ctx, "aborted", "")
	default:
		c.saslFailure(ctx, "malformed-request", "")
	}
}

// saslStart begins an exchange with mechanism name and the initial response data (empty: none), in either SASL
// profile.
func (c *conn) saslStart(ctx actor.Context, name string, data []byte) {
	m, ok := sasl.Lookup(name)
	if !ok || !contains(c.offeredMechanisms(), name) {
		c.mech = sasl.Mechanism{Name: "unknown"}
		c.saslFailure(ctx, "invalid-mechanism", "")
		return
	}
	c.mech = m
	if m.Plain {
		c.authPlain(ctx, data)
		return
	}
	c.scram = sasl.NewSCRAM(m, c.cb, c.plusOffered())
	// XEP-0474: the mechanisms and channel-binding types this stream advertised, signed by the client's proof.
	// Both profiles offer the same mechanism list, so one hash serves either.
	c.scram.SetDowngradeHash(sasl.DowngradeHash(m.Hash, c.offeredMechanisms(), c.cbTypes(), c.channelBindingFeature() != ""))
	if len(data) == 0 {
		// RFC 6120 §6.4.2: no initial response; an empty challenge asks for it.
		c.saslChallenge(ctx, nil)
		return
	}
	c.scramFirst(ctx, data)
}

// saslResponse takes the client's next SCRAM message.
func (c *conn) saslResponse(ctx actor.Context, data []byte) {
	if c.pendUser.IsZero() {
		c.scramFirst(ctx, data)
		return
	}
	final, err := c.scram.ClientFinal(data)
	var f *sasl.Failure
	if err == nil && !c.scramOK || errors.As(err, &f) && f.Text == "invalid-proof" {
		c.credentialFailure(ctx)
		return
	}
	if err != nil {
		c.saslFailure(ctx, saslCondition(err, "not-authorized"), "")
		return
	}
	c.authSuccess(ctx, c.pendUser, final)
}

func (c *conn) scramFirst(ctx actor.Context, data []byte) {
	username, authzid, err := c.scram.ClientFirst(data)
	user, ok := c.saslIdentity(ctx, username, authzid, err)
	if !ok {
		return
	}
	cred, real := c.credentials(user, c.mech.Hash)
	c.scramOK = real
	c.pendUser = user
	first, err := c.scram.ServerFirst(cred, rand.Reader)
	if err != nil {
		c.saslFailure(ctx, "temporary-auth-failure", "")
		return
	}
	c.saslChallenge(ctx, first)
}

// saslIdentity turns the authentication identity a mechanism parsed (err is its parse error) into the account's
// bare JID on this stream's domain, and checks the authorization identity: only the account itself may be
// requested (RFC 6120 §6.4.6, no proxy authorization).
func (c *conn) saslIdentity(ctx actor.Context, username, authzid string, err error) (jid.JID, bool) {
	if err != nil {
		c.saslFailure(ctx, saslCondition(err, "malformed-request"), "")
		return jid.JID{}, false
	}
	user, err := jid.New(username, c.domain, "")
	if err != nil {
		c.saslFailure(ctx, "not-authorized", "")
		return jid.JID{}, false
	}
	if authzid != "" && authzid != user.String() {
		c.saslFailure(ctx, "invalid-authzid", "")
		return jid.JID{}, false
	}
	return user, true
}

// credentials returns the stored SCRAM credentials, or fake ones when the account does not exist so that the
// exchange takes the same path and time (no account enumeration); real reports which.
func (c *conn) credentials(user jid.JID, h sasl.Hash) (cred sasl.Credentials, real bool) {
	creds, err := c.env.store.Credentials(context.Background(), user.String())
	if err == nil {
		for _, sc := range creds {
			if sc.Hash == h.String() {
				return sasl.Credentials{Hash: h, Salt: sc.Salt, Iterations: sc.Iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, true
			}
		}
	} else if !errors.Is(err, storage.ErrNotFound) {
		c.log.Error().Err(err).Msg("credential lookup failed")
	}
	return sasl.FakeCredentials(h, c.env.secret, user.String(), c.env.cfg.Auth.ScramIterations), false
}

func (c *conn) authPlain(ctx actor.Context, data []byte) {
	authzid, authcid, password, err := sasl.ParsePlain(data)
	user, ok := c.saslIdentity(ctx, authcid, authzid, err)
	if !ok {
		return
	}
	cred, real, complete := c.plainCredentials(user)
	if !sasl.VerifyPassword(cred, password) || !real {
		c.credentialFailure(ctx)
		return
	}
	if !complete {
		// An account imported from another server (xmppd import, XEP-0227) may hold SCRAM-SHA-1 keys only: now
		// that the password is known, derive the keys of every hash we offer, so that the client's next login
		// with SCRAM-SHA-256 or -512 works too.
		if creds, err := accounts.StoredCredentials(password, c.env.cfg.Auth.ScramIterations); err == nil {
			if err := c.env.store.SetCredentials(context.Background(), user.String(), creds); err != nil {
				c.log.Error().Err(err).Msg("upgrading the credentials of an imported account failed")
			} else {
				c.log.Info().Str("jid", user.String()).Msg("credentials completed for every SCRAM hash after a PLAIN login")
			}
		}
	}
	c.authSuccess(ctx, user, nil)
}

// plainCredentials picks the stored credential PLAIN verifies against: SCRAM-SHA-256, else whichever hash the
// account has (an imported account may have SCRAM-SHA-1 only); complete reports whether it has all of
// sasl.Hashes. One storage read, and fake credentials for an unknown account, as credentials does.
func (c *conn) plainCredentials(user jid.JID) (cred sasl.Credentials, real, complete bool) {
	creds, err := c.env.store.Credentials(context.Background(), user.String())
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			c.log.Error().Err(err).Msg("credential lookup failed")
		}
		return sasl.FakeCredentials(sasl.SHA256, c.env.secret, user.String(), c.env.cfg.Auth.ScramIterations), false, false
	}
	have := map[string]sasl.Credentials{}
	for _, sc := range creds {
		for _, h := range sasl.Hashes {
			if sc.Hash == h.String() {
				have[sc.Hash] = sasl.Credentials{Hash: h, Salt: sc.Salt, Iterations: sc.Iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}
			}
		}
	}
	complete = len(have) == len(sasl.Hashes)
	for _, h := range []sasl.Hash{sasl.SHA256, sasl.SHA512, sasl.SHA1} {
		if cr, ok := have[h.String()]; ok {
			return cr, true, complete
		}
	}
	return sasl.FakeCredentials(sasl.SHA256, c.env.secret, user.String(), c.env.cfg.Auth.ScramIterations), false, false
}

// authSuccess completes an exchange whose credentials were right; additional is the mechanism's success data
// (SCRAM's server-final-message), nil for none.
func (c *conn) authSuccess(ctx actor.Context, user jid.JID, additional []byte) {
	// RFC 6120 §6.5.1: the right credentials for an account an admin disabled (XEP-0133) get
	// <account-disabled/>; it says nothing a wrong password would not, since the proof was verified first.
	if reason, disabled, err := accounts.DisabledReason(context.Background(), c.env.store, user); err != nil {
		c.log.Error().Err(err).Msg("disabled-account lookup failed")
		c.saslFailure(ctx, "temporary-auth-failure", "")
		return
	} else if disabled {
		c.log.Info().Str("account", user.String()).Msg("login refused: the account is disabled")
		text := "the account is disabled"
		if reason != "" {
			text += ": " + reason
		}
		c.saslFailure(ctx, "account-disabled", text)
		return
	}
	c.user = user
	c.authMech = c.mech.Name
	c.scram = nil
	c.pendUser = jid.JID{}
	c.log = c.log.with("jid", user.String())
	c.log.Info().Str("mechanism", c.authMech).Msg("authenticated")
	c.env.metrics.authSuccesses.WithLabelValues(c.authMech).Inc()
	// XEP-0205: the small pre-authentication stanza limit ends here.
	c.limit.Store(int64(c.env.cfg.C2S.MaxStanzaSize))
	if c.s2 != nil {
		c.sasl2Authenticated(ctx, additional) // XEP-0388: no restart; inline resume, bind, token (conn_sasl2.go)
		return
	}
	if additional == nil {
		c.send(ctx, "<success xmlns='"+stanza.NSSASL+"'/>")
	} else {
		c.send(ctx, "<success xmlns='"+stanza.NSSASL+"'>"+base64.StdEncoding.EncodeToString(additional)+"</success>")
	}
	c.state = stateRestart
}

func decodeSASL(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "=" {
		return nil, true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

func saslCondition(err error, fallback string) string {
	var f *sasl.Failure
	if errors.As(err, &f) && f.Condition != "" {
		return f.Condition
	}
	return fallback
}

// ---- after authentication: bind (RFC 6120 §7) ----
