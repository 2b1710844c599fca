package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Offline messages (XEP-0160, RFC 6121 §8.5.2.1.1): stored when no resource takes a message, delivered with an
// XEP-0203 delay at the first available presence with a non-negative priority.

// Group commit. Every offline message must be durable before anything can acknowledge it (ARCHITECTURE.md
// "Durability"), and one commit with synchronous=FULL is one fsync: a user actor that stored messages one by one
// would spend its mailbox's time in fsyncs while a burst waits behind them. So storeOffline only queues the
// message and, for the first one, sends the actor a flushOffline: the messages already in the mailbox ahead of
// it (a burst) join the batch, and one transaction stores them all. Whatever else the actor handles first
// flushes the batch before it (Receive): an IQ (the acknowledgement of ARCHITECTURE.md), presence that makes a
// resource available and reads the queue, a stop.

// flushOffline asks the actor to commit the pending offline messages.
type flushOffline struct{}

// offlinePending is one message waiting for the group commit.
type offlinePending struct {
	st    *stanza.Routed
	raw   string
	stamp time.Time
	// confirm: the Route it came in, when its sender waits for it to be durable (XEP-0198 h).
	confirm *Route
}

// joinsBatch: msg may be handled before the pending batch is committed (it can only add to it). Feature parts
// batch too (feature.Committer: the archive): their own Batched messages join.
func joinsBatch(msg any) bool {
	switch m := msg.(type) {
	case *Route:
		return m.St.Head.Name == "message"
	case *flushOffline:
		return true
	case *featureMsg:
		_, ok := m.msg.(feature.Batched)
		return ok
	}
	return false
}

// commitSoon: a feature part has writes to commit at the next group-commit point (User.CommitSoon).
func (r *userActor) commitSoon(ctx actor.Context) {
	if r.partsPending {
		return
	}
	r.partsPending = true
	ctx.Send(ctx.Self(), &flushOffline{}) // behind what the mailbox holds now: the burst commits once
}

// commitParts runs the feature parts' commits.
func (r *userActor) commitParts() {
	if !r.partsPending {
		return
	}
	r.partsPending = false
	for _, c := range r.committers {
		c.h.Commit()
	}
	for _, m := range r.confirmAfterCommit {
		m.confirmed(r.ctx)
	}
	clear(r.confirmAfterCommit)
	r.confirmAfterCommit = r.confirmAfterCommit[:0]
}

func (r *userActor) storeOffline(ctx actor.Context, st *stanza.Routed) {
	if len(r.offlineBatch) == 0 {
		ctx.Send(ctx.Self(), &flushOffline{})
	}
	r.offlineBatch = append(r.offlineBatch, offlinePending{st: st, raw: xmlstream.SetHeadAttr(st.Raw, "to", st.To.String()), stamp: time.Now().UTC()})
}

// flushOfflineBatch commits the pending offline messages in one transaction; those beyond offline.max_messages
// and all of them on a storage error go back to their senders.
func (r *userActor) flushOfflineBatch(ctx actor.Context) {
	if len(r.confirmAfterFlush) > 0 {
		// Arrived again (user_once.go): handled once what came before them is, after the commits below.
		again := r.confirmAfterFlush
		r.confirmAfterFlush = nil
		defer func() {
			for _, m := range again {
				m.confirmed(ctx)
			}
		}()
	}
	r.commitParts() // first: what a part archived was accepted before it was queued offline
	batch := r.offlineBatch
	r.offlineBatch = nil
	if len(batch) == 0 {
		return
	}
	in := make([]storage.OfflineInput, len(batch))
	for i, p := range batch {
		in[i] = storage.OfflineInput{Stanza: p.raw, Stamp: p.stamp, Key: p.st.Once} // keyed: queued once (user_once.go)
	}
	n, err := r.env.store.PushOfflineBatch(context.Background(), r.bare.String(), in, r.env.cfg.Offline.MaxMessages)
	if err != nil {
		r.log.Error().Err(err).Int("messages", len(batch)).Msg("storing offline messages failed")
		for _, p := range batch {
			r.bounce(ctx, p.st, stanza.NewError(stanza.InternalServerError))
		}
		confirmBatch(ctx, batch) // handled: the senders got the error
		return
	}
	r.env.metrics.offlineStored.Add(float64(n))
	for _, p := range batch[:n] {
		r.delivered(p.st) // stored: the archive point sees it too
	}
	for _, p := range batch[n:] {
		r.env.metrics.hit(limitOfflineQueue)
		r.bounce(ctx, p.st, stanza.NewError(stanza.ServiceUnavailable).WithText("the recipient's offline storage is full"))
	}
	confirmBatch(ctx, batch)
}

// confirmBatch tells the senders that wait for it (XEP-0198) that the batch is handled: committed, or bounced.
func confirmBatch(ctx actor.Context, batch []offlinePending) {
	for _, p := range batch {
		if p.confirm != nil {
			p.confirm.confirmed(ctx)
		}
	}
}

func (r *userActor) deliverOffline(ctx actor.Context, rs *resourceState) {
	bg := context.Background()
	// Paged by bytes, half of c2s.write_queue_bytes at a time: a long backlog must not overflow the client's
	// write queue and make a reading client look like a slow consumer. Only the page is read from storage, so a
	// backlog of n pages costs n page reads, not n reads of the whole queue.
	msgs, more, err := r.env.store.OfflinePage(bg, r.bare.String(), r.env.cfg.C2S.WriteQueueBytes/2)
	if err != nil {
		r.log.Error().Err(err).Msg("reading offline messages failed")
		return
	}
	if len(msgs) == 0 {
		return
	}
	for _, m := range msgs {
		delay := stanza.Delay(r.bare.Domain(), m.Stamp.UTC().Format("2006-01-02T15:04:05.000Z"), "Offline Storage")
		st, err := stanza.Parse(stanza.InsertChild(xmlstream.SetHeadAttr(m.Stanza, "to", rs.full.String()), "message", delay))
		if err != nil {
			r.log.Error().Err(err).Int64("id", m.ID).Msg("an offline message does not parse; dropped")
			continue
		}
		deliverTo(ctx, rs.pid, st)
	}
	if err := r.env.store.DeleteOffline(bg, r.bare.String(), msgs[len(msgs)-1].ID); err != nil {
		r.log.Error().Err(err).Msg("deleting delivered offline messages failed")
	} else {
		r.env.metrics.offlineDelivered.Add(float64(len(msgs)))
	}
	r.log.Debug().Int("count", len(msgs)).Str("resource", rs.full.Resource()).Msg("offline messages delivered")
	if more {
		ctx.Send(rs.pid, &offlineMore{})
	}
}

// clearArchivedOffline: a XEP-0386 Bind 2 bind "clear[s] the offline messages for this user, if any, without
// sending them (as they will be provided by MAM)" (§2.2). The client syncs from the archive, starting from the
// <metadata/> its <bound/> carries, which is read after this and so covers every message cleared here. Only what
// the archive holds is cleared (feature.ArchiveHolder, asked of the archive itself, not guessed from the
// stanza-id: retention may have deleted an archived copy since): a message the archive does not keep (the
// preferences, <no-store/>, no body) stays queued and is delivered at the first available presence as before.
// Without an archive (MAM off) nothing is cleared. The queue is read whole: it is at most offline.max_messages.
func (r *userActor) clearArchivedOffline() {
	if len(r.archiveHolders) == 0 {
		return
	}
	bg := context.Background()
	msgs, err := r.env.store.OfflineMessages(bg, r.bare.String())
	if err != nil {
		r.log.Error().Err(err).Msg("reading offline messages for bind 2 failed; they stay queued")
		return
	}
	if len(msgs) == 0 {
		return
	}
	raw := make([]string, len(msgs))
	for i, m := range msgs {
		raw[i] = m.Stanza
	}
	held := make([]bool, len(msgs))
	for _, h := range r.archiveHolders {
		for i, in := range h.h.InArchive(raw) {
			held[i] = held[i] || in
		}
	}
	var drop []int64
	for i, m := range msgs {
		if held[i] {
			drop = append(drop, m.ID)
		}
	}
	if len(drop) == 0 {
		return
	}
	if err := r.env.store.DeleteOfflineIDs(bg, r.bare.String(), drop); err != nil {
		r.log.Error().Err(err).Msg("clearing archived offline messages for bind 2 failed; they stay queued")
		return
	}
	r.log.Debug().Int("cleared", len(drop)).Int("kept", len(msgs)-len(drop)).Msg("bind 2: archived offline messages cleared")
}

// bounce returns an error to the sender of st, unless st is itself an error (RFC 6120 §8.3.1).

// Offline delivery is paged so that a backlog never overflows the client's write queue (which would make a
// client that reads look like a slow consumer): the user actor sends one page of at most half the write queue,
// then offlineMore along the same path (user actor → session → conn); the conn waits until its writer has handed
// everything before it to the socket and answers offlineNext (conn → session → user actor), which sends the next
// page. A page is deleted from storage when it is handed to the session, as before paging.
type (
	offlineMore    struct{}
	offlineDrained struct{}
	offlineNext    struct{ resource string }
)
