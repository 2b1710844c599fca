// Package mam is XEP-0313 message archive management for accounts: every user's archive of the chat and normal
// messages the user sends and receives, with XEP-0359 stanza ids, preferences, XEP-0059 paging, retention.
//
// The user actor owns the archive; the feature's user part is the only one that writes it:
//   - a message for the user is archived when the user actor accepts it for delivery (the Accepting hook: after
//     blocking, before the sessions or the offline queue get it), and the live stanza carries the archive id as
//     <stanza-id by='user@domain'/> (XEP-0359 §3: any stanza-id claiming to be ours is a forgery and removed
//     first). One message is archived once: what comes back undelivered (a lost connection, a stream-management
//     window that closed) carries our stanza-id and is not archived again; offline messages are archived when
//     they arrive, not when they are flushed; carbon copies are not messages of their own (their body is inside
//     <forwarded/>).
//   - a message the user sends is handed by the sending session's part (Outbound) to the user part, which
//     archives it in the sender's archive once, whatever number of carbons it gets.
//
// Archived messages are committed in batches (feature.Committer): the user actor calls Commit at its group-commit
// points, so a burst costs one transaction (one fsync), as the offline queue does, and a query (an IQ) always sees
// every message delivered before it. The live stanza goes out before its row is committed: a crash in between
// leaves a stanza-id the archive does not have (the message itself is delivered or in the offline queue).
//
// Queries, preferences and metadata are IQs to the own bare JID, answered in the user actor (Account routes):
// results are delivered to the asking session, then the IQ result with <fin/> (in mam:0: the empty IQ result,
// the results, then <fin/> in a message).
package mam

import (
	"context"
	"errors"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features/mam/mamquery"
	"github.com/xmppd/xmppd/protocol/jid"
	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Feature is XEP-0313 (with XEP-0359 stanza ids). Its Name is what [features] disable lists; [mam] enabled turns
// it off too.
var Feature = &feature.Feature{
	Name:    "mam",
	Enabled: func(cfg *config.Config) bool { return cfg.MAM.Enabled },
	// mam:1 and mam:0 are served too (the same query, results and preferences in the older namespaces: clients
	// that predate mam:2 ask in them), without the extended fields and the metadata, which are mam:2's; mam:0
	// ends a query with its <fin/> in a message (query).
	AccountVars: []string{wire.NS, wire.NSExtended, wire.NS1, wire.NS0, wire.NSSID},
	IQs: []feature.IQRoute{
		{Name: xmlstream.Name{Space: wire.NS, Local: "query"}, Account: query},
		{Name: xmlstream.Name{Space: wire.NS, Local: "prefs"}, Account: prefs},
		{Name: xmlstream.Name{Space: wire.NS1, Local: "query"}, Account: query},
		{Name: xmlstream.Name{Space: wire.NS1, Local: "prefs"}, Account: prefs},
		{Name: xmlstream.Name{Space: wire.NS0, Local: "query"}, Account: query},
		{Name: xmlstream.Name{Space: wire.NS0, Local: "prefs"}, Account: prefs},
		{Name: xmlstream.Name{Space: wire.NS, Local: "metadata"}, Account: metadata},
	},
	NewSession: func(s feature.Session) any { return &Session{s: s} },
	NewUser:    newUser,
}

// trimEvery: the quota (mam.max_messages) is enforced when the user actor starts and after this many archived
// messages, so that trimming (which walks the kept messages' index) is not paid per message.
const trimEvery = 1000

// sweepEvery: how often a running user actor deletes what passed mam.retention_days.
const sweepEvery = time.Hour

// outgoing is a message the user sent, for the own archive (session part → user part). It only adds to the
// archive's batch, so the user actor may take it before committing (feature.Batched).
type outgoing struct{ st *stanza.Routed }

func (outgoing) Batched() {}

// ---- session part ----

// Session is the part of one session: it hands the messages its client sends to the user part.
type Session struct{ s feature.Session }

// Outbound passes every archivable message to the user part. Messages to the own bare JID (or without 'to') are
// archived once, on their way in; messages to a domain (the server, a service) are not conversations.
func (p *Session) Outbound(st *stanza.Routed) bool {
	if st.Head.Name != "message" || st.To.Local() == "" || st.To.Bare() == p.s.Full().Bare() {
		return true
	}
	switch st.Head.Type {
	case "", "normal", "chat":
	default:
		return true
	}
	if n, err := st.Node(); err == nil && wire.Archivable(n, st.Head.Type) {
		p.s.ToUser(outgoing{st: st})
	}
	return true
}

// ---- user part ----

// User is the part of one user actor: the preferences (loaded once) and the retention bookkeeping.
type User struct {
	u     feature.User
	prefs wire.Prefs
	// appended counts messages archived since the last trim; swept is when old messages were last deleted.
	appended int
	swept    time.Time
	// pending are archived messages waiting for the user actor's group commit (Commit).
	pending []storage.ArchivedMessage
}

func newUser(u feature.User) any {
	p := &User{u: u}
	stored, err := u.Server().Store().ArchivePrefs(context.Background(), u.Bare().String())
	switch {
	case err == nil:
		p.prefs = wire.Prefs{Default: stored.Default, Always: stored.Always, Never: stored.Never}
	case errors.Is(err, storage.ErrNotFound):
		p.prefs = wire.Prefs{Default: u.Server().Config().MAM.Default}
	default:
		u.Log().Error().Err(err).Msg("reading archive preferences failed; archiving nothing until they can be read")
		p.prefs = wire.Prefs{Default: wire.Never}
	}
	p.retain(true)
	return p
}

// retain deletes what passed retention_days and, with trim, what is beyond max_messages.
func (p *User) retain(trim bool) {
	cfg := p.u.Server().Config().MAM
	ctx, owner := context.Background(), p.u.Bare().String()
	p.swept = time.Now()
	if cfg.RetentionDays > 0 {
		cut := p.swept.Add(-time.Duration(cfg.RetentionDays) * 24 * time.Hour)
		// The bounds first: an archive with nothing to expire costs one index probe, not a write.
		if first, _, err := p.u.Server().Store().ArchiveBounds(ctx, owner); err == nil && first.Stamp.Before(cut) {
			if n, err := p.u.Server().Store().DeleteArchiveBefore(ctx, owner, cut); err != nil {
				p.u.Log().Error().Err(err).Msg("expiring archived messages failed")
			} else {
				p.u.Log().Debug().Int("deleted", n).Msg("expired archived messages")
			}
		}
	}
	if trim && cfg.MaxMessages > 0 {
		p.appended = 0
		// The size first (an unbounded count is one row): trimming walks the kept messages' index.
		if size, err := p.u.Server().Store().CountArchive(ctx, owner, storage.ArchiveQuery{}); err != nil || size <= cfg.MaxMessages {
			return
		}
		if n, err := p.u.Server().Store().TrimArchive(ctx, owner, cfg.MaxMessages); err != nil {
			p.u.Log().Error().Err(err).Msg("trimming the archive failed")
		} else if n > 0 {
			p.u.Log().Debug().Int("deleted", n).Msg("archive over its quota: oldest messages deleted")
		}
	}
}

func (p *User) inRoster(c jid.JID) bool { return p.u.Subscription(c) != "" }

// Accepting archives a message for the user and returns it with the archive's stanza-id.
func (p *User) Accepting(st *stanza.Routed, again bool) *stanza.Routed {
	if st.Head.Name != "message" || again {
		return st // again: archived (or not) when it first arrived; ours is the only stanza-id by us it carries
	}
	if !wire.ArchivableType(st.Head.Type) && !wire.MayClaimStanzaIDBy(st.Raw, p.u.Bare().String()) {
		// Not archived (a headline: PEP notifications; a room's groupchat, with the room's own stanza-id) and no
		// <stanza-id/> by us to remove: nothing to do, and no parse of every copy of a fan-out.
		return st
	}
	n, err := st.Node()
	if err != nil {
		return st
	}
	by := p.u.Bare().String()
	clean := wire.WithoutStanzaIDs(n, by) // XEP-0359 §3.3
	raw := st.Raw
	if clean != n {
		raw = string(clean.AppendXML(nil, stanza.NSClient))
	}
	if !wire.Archivable(clean, st.Head.Type) || !p.prefs.Archives(st.From, p.inRoster) {
		if clean == n {
			return st
		}
		return copyWith(st, raw, clean)
	}
	id := p.archive(st.From, clean, st.Once)
	return copyWith(st, stanza.InsertChild(raw, "message", wire.StanzaID(id, by)), nil)
}

// copyWith is st with other bytes (n their element, or nil to parse them when asked).
func copyWith(st *stanza.Routed, raw string, n *xmlstream.Node) *stanza.Routed {
	var c *stanza.Routed
	if n != nil {
		c = stanza.WithNode(st.Head, st.From, st.To, raw, n)
	} else {
		c = stanza.New(st.Head, st.From, st.To, raw)
	}
	c.Accepted, c.Once = st.Accepted, st.Once
	return c
}

// archive queues message n exchanged with with for the archive and returns its id; the archived copy carries
// its stanza-id. A message with an idempotency key (stanza.Routed.Once: it crossed cluster nodes with its
// sender waiting for the confirmation) is archived under the key as its id: if it arrives again (its first home
// stored it, then left before confirming), the batch skips the id the archive already holds (storage.Archive:
// one row per (owner, id)), and the second live copy carries the same stanza-id as the first, which is what
// clients deduplicate by (XEP-0359). The user actor commits the queue (Commit) once the messages already in its mailbox are
// handled, and before anything that could observe the archive (a query is an IQ: it comes after the commit).
func (p *User) archive(with jid.JID, n *xmlstream.Node, key string) string {
	owner := p.u.Bare().String()
	id := key
	if id == "" {
		id = stanza.UniqueID()
	}
	p.pending = append(p.pending, storage.ArchivedMessage{ID: id, With: with.String(), WithBare: with.Bare().String(),
		Stamp:  time.Now().UTC(),
		Stanza: stanza.InsertChild(n.String(), "message", wire.StanzaID(id, owner))}) // n.String(): with xmlns='jabber:client', as it goes inside <forwarded/>
	if len(p.pending) == 1 {
		p.u.CommitSoon()
	}
	return id
}

// Commit stores the queued messages in one transaction (feature.Committer: the user actor's group commit).
func (p *User) Commit() {
	batch := p.pending
	p.pending = nil
	if len(batch) == 0 {
		return
	}
	n, err := p.u.Server().Store().AppendArchiveBatch(context.Background(), p.u.Bare().String(), batch)
	if err != nil {
		// Their live copies went out with stanza-ids the archive does not have: say so, loudly.
		p.u.Log().Error().Err(err).Int("messages", len(batch)).Msg("archiving messages failed")
		return
	}
	if n < len(batch) {
		// A message that arrived again with its idempotency key (its first home archived it): expected after a
		// cluster node left; with fresh ids it would be a collision.
		p.u.Log().Info().Int("skipped", len(batch)-n).Msg("archive ids met existing ones; those messages are archived already")
	}
	p.appended += n
	cfg := p.u.Server().Config().MAM
	if (cfg.MaxMessages > 0 && p.appended >= trimEvery) || time.Since(p.swept) > sweepEvery {
		p.retain(p.appended >= trimEvery)
	}
}

// Handle takes the session parts' messages.
func (p *User) Handle(msg any) {
	if m, ok := msg.(outgoing); ok {
		if !p.prefs.Archives(m.st.To, p.inRoster) {
			return
		}
		if n, err := m.st.Node(); err == nil {
			p.archive(m.st.To, n, "")
		}
	}
}

// ---- IQs ----

// owner refuses anyone but the user (XEP-0313 §8.1: an archive is the user's own).
func owner(q *feature.AccountIQ) (*User, bool) {
	p, _ := q.Part.(*User)
	if !q.Owner || p == nil {
		q.Fail(stanza.NewError(stanza.Forbidden))
		return nil, false
	}
	return p, true
}

func fail(q *feature.AccountIQ, err error) {
	e, ok := mamquery.Refusal(err)
	if !ok {
		q.User.Log().Error().Err(err).Msg("archive query failed")
	}
	q.Fail(e)
}

// query answers a query (§4): the form for a get, the matching messages then <fin/> for a set. In mam:0
// (XEP-0313 0.3) the IQ result is empty and comes first, and <fin/> (with the queryid) follows the results in a
// message, as ejabberd's, Prosody's and Openfire's mam:0 did; whatever refuses the query is found before
// anything is sent, so a refused query still gets only its IQ error.
func query(q *feature.AccountIQ) {
	p, ok := owner(q)
	if !ok {
		return
	}
	p.Commit() // the user actor committed before this IQ already; a direct call (tests) may not have
	if q.IsGet() {
		q.Result(wire.QueryFormNS(q.Payload.Name.Space))
		return
	}
	req, err := wire.ParseQuery(q.Payload)
	if err != nil {
		fail(q, err)
		return
	}
	pg, err := mamquery.Run(context.Background(), p.u.Server().Store(), p.u.Bare().String(), req, mamquery.Selection(req), p.u.Server().Config().MAM.MaxPage)
	if err != nil {
		fail(q, err)
		return
	}
	sentinel := wire.FinInMessage(req.NS)
	if sentinel {
		q.Result("")
	}
	for _, m := range pg.Messages {
		res := stanza.Generate("message", "", p.u.Bare(), q.Resource.Full, p.u.NextID("mam"), wire.ResultNS(req.NS, req.QueryID, m.ID, m.Stamp, m.Stanza))
		p.u.Deliver(q.Resource, res)
	}
	if sentinel {
		pg.Fin.QueryID = req.QueryID
		p.u.Deliver(q.Resource, stanza.Generate("message", "", p.u.Bare(), q.Resource.Full, p.u.NextID("mam"), pg.Fin.String()))
		return
	}
	q.Result(pg.Fin.String())
}

// prefs reads or replaces the preferences (§6).
func prefs(q *feature.AccountIQ) {
	p, ok := owner(q)
	if !ok {
		return
	}
	if q.IsGet() {
		cur := p.prefs
		cur.NS = q.Payload.Name.Space
		q.Result(cur.String())
		return
	}
	np, err := wire.ParsePrefs(q.Payload)
	if err != nil {
		fail(q, err)
		return
	}
	if err := p.u.Server().Store().SetArchivePrefs(context.Background(), p.u.Bare().String(),
		storage.ArchivePrefs{Default: np.Default, Always: np.Always, Never: np.Never}); err != nil {
		fail(q, err)
		return
	}
	p.prefs = np
	q.Result(np.String())
}

// Bind2Bound puts the archive's metadata into a XEP-0386 <bound/> (§2.2: "the state of the user's message archive
// at the precise time of resource binding"): the user actor calls it when it binds, after committing what was
// pending, so the <end/> is the newest message the client can have missed.
func (p *User) Bind2Bound() string {
	md, err := p.metadata()
	if err != nil {
		p.u.Log().Error().Err(err).Msg("reading the archive's metadata for bind 2 failed; <bound/> goes without it")
		return ""
	}
	return md
}

// InArchive tells the user actor which offline messages the archive holds (feature.ArchiveHolder: a XEP-0386 Bind
// 2 bind clears them from the offline queue). An offline copy that was archived carries the archive's stanza-id
// (Accepting); the archive is asked whether it still holds that id, as retention or the quota may have deleted
// it since. On a storage error none is held: delivering a message twice is better than not at all.
func (p *User) InArchive(offline []string) []bool {
	p.Commit()
	by := p.u.Bare().String()
	held := make([]bool, len(offline))
	at := make(map[string]int, len(offline))
	ids := make([]string, 0, len(offline))
	for i, raw := range offline {
		if !wire.MayClaimStanzaIDBy(raw, by) {
			continue
		}
		st, err := stanza.Parse(raw)
		if err != nil {
			continue
		}
		n, err := st.Node()
		if err != nil {
			continue
		}
		if id := wire.StanzaIDBy(n, by); id != "" {
			at[id] = i
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return held
	}
	in, err := p.u.Server().Store().ArchivedIDs(context.Background(), by, ids)
	if err != nil {
		p.u.Log().Error().Err(err).Msg("reading which offline messages are archived failed; none is cleared")
		return held
	}
	for _, id := range in {
		held[at[id]] = true
	}
	return held
}

// metadata is the <metadata/> of the committed archive: its first and last message, or empty for an empty one.
func (p *User) metadata() (string, error) {
	p.Commit()
	first, last, err := p.u.Server().Store().ArchiveBounds(context.Background(), p.u.Bare().String())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return wire.Metadata(nil, nil), nil
	case err != nil:
		return "", err
	}
	return wire.Metadata(&wire.Bound{ID: first.ID, Stamp: first.Stamp}, &wire.Bound{ID: last.ID, Stamp: last.Stamp}), nil
}

// metadata answers <metadata/> (§5): the first and last message of the archive.
func metadata(q *feature.AccountIQ) {
	p, ok := owner(q)
	if !ok {
		return
	}
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest).WithText("metadata is read with a get"))
		return
	}
	md, err := p.metadata()
	if err != nil {
		fail(q, err)
		return
	}
	q.Result(md)
}
