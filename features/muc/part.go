package muc

import (
	"errors"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/storage"
)

// part is the room actor's part: it loads the room, runs the logic on each stanza, stores what changed, and
// only then routes what the room sends (everything acknowledged is stored).
type part struct {
	h      feature.EntityHost
	r      *room
	loaded bool
	stored bool // storage has the room
	last   summary
	known  bool // the service was told about the room (or loaded it from storage)
	// appended counts messages archived since the archive was last trimmed; swept is when it was last expired.
	appended int
	swept    time.Time
	// pending are archived messages waiting for the group commit; asked: a commitNow is on its way.
	pending []storage.ArchivedMessage
	asked   bool
}

func newPart(h feature.EntityHost, key string) *part {
	return &part{h: h, r: newRoom(h.Server(), h.Service(), key)}
}

func (p *part) service() string { return p.h.Service().String() }

func (p *part) load() error {
	if p.loaded {
		return nil
	}
	store := p.h.Server().Store()
	sr, err := store.MUCRoom(bg, p.service(), p.r.name)
	if errors.Is(err, storage.ErrNotFound) {
		p.loaded = true
		return nil
	}
	if err != nil {
		return err
	}
	st, err := decodeState(sr.Config, roomConf{Archive: p.r.lim.defaults.Archive})
	if err != nil {
		p.h.Log().Warn().Err(err).Msg("muc: unreadable room state; using the defaults")
		st.Conf = p.r.defaultConf()
		st.Conf.Persistent = true
	}
	affs, err := store.MUCAffiliations(bg, p.service(), p.r.name)
	if err != nil {
		return err
	}
	r := p.r
	r.exists, r.st, r.created = true, st, sr.Created
	for _, a := range affs {
		r.affs[a.JID] = affiliation{aff: a.Affiliation, nick: a.Nick, reason: a.Reason}
	}
	p.loaded, p.stored, p.known, p.last = true, true, true, st.summary()
	return nil
}

// Handle (feature.Handler) takes the stanzas the service forwards.
func (p *part) Handle(msg any) {
	if _, ok := msg.(commitNow); ok {
		p.asked = false
		p.commit()
		return
	}
	f, ok := msg.(forward)
	if !ok {
		return
	}
	if err := p.load(); err != nil {
		p.h.Log().Error().Err(err).Msg("muc: loading room")
		p.h.Bounce(f.st, stanzaInternal)
		return
	}
	r := p.r
	if f.st.Head.Name != "message" {
		p.commit() // an IQ (a query) or an entry (the history) reads the archive: it sees every earlier message
	}
	r.handle(f, time.Now())
	if err := p.persist(); err != nil {
		p.h.Log().Error().Err(err).Msg("muc: storing room")
	}
	p.archive()
	for _, st := range r.out {
		p.h.Route(st)
	}
	clear(r.out)
	r.out = r.out[:0]
	p.tellService()
}

// persist stores what the last stanza changed: a persistent room's state and affiliations; a room that stopped
// being persistent, or is gone, is deleted.
func (p *part) persist() error {
	r := p.r
	store := p.h.Server().Store()
	defer func() {
		r.dirty, r.deleted = false, false
		clear(r.dirtyAff)
	}()
	if !r.exists || !r.st.Conf.Persistent {
		if p.stored && (r.deleted || !r.exists || !r.st.Conf.Persistent) {
			p.stored = false
			return store.DeleteMUCRoom(bg, p.service(), r.name)
		}
		return nil
	}
	first := !p.stored
	if r.dirty || first {
		created := r.created
		if created.IsZero() {
			created = time.Now()
		}
		if err := store.PutMUCRoom(bg, p.service(), storage.MUCRoom{Room: r.name, Config: r.st.encode(), Created: created.UTC().Truncate(time.Microsecond)}); err != nil {
			return err
		}
		p.stored = true
	}
	put := func(bare string) error {
		a := r.affs[bare]
		return store.PutMUCAffiliation(bg, p.service(), r.name, storage.MUCAffiliation{JID: bare, Affiliation: a.aff, Nick: a.nick, Reason: a.reason})
	}
	if first {
		for _, b := range sortedKeys(r.affs) {
			if err := put(b); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range sortedKeys(r.dirtyAff) {
		if err := put(b); err != nil {
			return err
		}
	}
	return nil
}

// archive takes what the last stanza archived into the group commit, or deletes the archive of a room that is
// gone. The rows are committed in one transaction (one fsync) for every message that reached the room before the
// commit: the room asks its service for a commitNow, which arrives after the stanzas already in the room's
// mailbox, and before any stanza but a message (a query, an entry with its history).
// As for the accounts' archive (features/mam), the live copies go out before their rows are committed: a crash
// in between loses the archive rows of messages that were delivered.
func (p *part) archive() {
	r := p.r
	if r.dropArchive {
		r.dropArchive = false
		p.pending = p.pending[:0]
		if n, err := p.h.Server().Store().DeleteArchiveBefore(bg, r.jid.String(), time.Now().Add(24*time.Hour)); err != nil {
			p.h.Log().Error().Err(err).Msg("muc: deleting the room's archive")
		} else if n > 0 {
			p.h.Log().Info().Int("messages", n).Msg("muc: room gone, its archive deleted")
		}
	}
	if len(r.archived) == 0 {
		if p.swept.IsZero() && r.exists && r.st.Conf.Archive {
			p.retain()
		}
		return
	}
	p.pending = append(p.pending, r.archived...)
	clear(r.archived)
	r.archived = r.archived[:0]
	if !p.asked {
		p.asked = true
		p.h.ToService(commitRoom{name: r.name})
	}
}

// commit stores the pending archive rows in one transaction.
func (p *part) commit() {
	if len(p.pending) == 0 {
		return
	}
	r := p.r
	n, err := p.h.Server().Store().AppendArchiveBatch(bg, r.jid.String(), p.pending)
	if err != nil {
		// Their copies went out with stanza-ids the archive lacks: say so, loudly.
		p.h.Log().Error().Err(err).Int("messages", len(p.pending)).Msg("muc: archiving groupchat messages failed")
	}
	clear(p.pending)
	p.pending = p.pending[:0]
	p.appended += n
	if p.swept.IsZero() || (r.lim.mamMax > 0 && p.appended >= trimEvery) || time.Since(p.swept) > time.Hour {
		p.retain()
	}
}

// trimEvery: the quota is enforced after this many archived messages (trimming walks the archive's index).
const trimEvery = 1000

// retain deletes what passed [mam] retention_days and what is beyond [mam] max_messages, oldest first (XEP-0313
// §3.2: no holes).
func (p *part) retain() {
	r := p.r
	store, owner := p.h.Server().Store(), r.jid.String()
	p.swept, p.appended = time.Now(), 0
	if r.lim.mamDays > 0 {
		cut := p.swept.Add(-time.Duration(r.lim.mamDays) * 24 * time.Hour)
		if first, _, err := store.ArchiveBounds(bg, owner); err == nil && first.Stamp.Before(cut) {
			if _, err := store.DeleteArchiveBefore(bg, owner, cut); err != nil {
				p.h.Log().Error().Err(err).Msg("muc: expiring archived messages")
			}
		}
	}
	if r.lim.mamMax > 0 {
		if size, err := store.CountArchive(bg, owner, storage.ArchiveQuery{}); err == nil && size > r.lim.mamMax {
			if _, err := store.TrimArchive(bg, owner, r.lim.mamMax); err != nil {
				p.h.Log().Error().Err(err).Msg("muc: trimming the room's archive")
			}
		}
	}
}

// tellService sends the directory what changed of the room.
func (p *part) tellService() {
	r := p.r
	if !r.exists {
		// Also when the room never existed: the service may hold a pending entry for it.
		p.h.ToService(roomInfo{name: r.name, gone: true})
		p.known = false
		return
	}
	s := r.st.summary()
	if !p.known || s != p.last {
		p.h.ToService(roomInfo{name: r.name, summary: s})
		p.known, p.last = true, s
	}
}

// Idle (feature.EntityIdle): a room with occupants, or with archive rows to commit, stays.
func (p *part) Idle() bool { return len(p.r.list) == 0 && len(p.pending) == 0 }

// Describe (feature.EntityDescriber): what /debug/actors shows of the room.
func (p *part) Describe() map[string]string {
	r := p.r
	m := map[string]string{"occupants": strconv.Itoa(len(r.list)), "exists": strconv.FormatBool(r.exists)}
	if r.exists {
		m["persistent"] = strconv.FormatBool(r.st.Conf.Persistent)
		m["locked"] = strconv.FormatBool(r.st.Locked)
		m["history"] = strconv.Itoa(len(r.hist))
	}
	return m
}
