package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// The archive (XEP-0313). Every query is turned into one range of the index it reads: an exclusive lower and
// upper (stamp, seq) pair, the tightest of the time bounds and the positions of the id bounds. SQLite walks
// the range in index order and stops after Limit+1 rows, so a page is O(page) plus one probe of the (id, owner)
// index per id bound, at any archive size. Counting the selection reads the same range (O(selection)). The table
// is clustered on (owner, stamp, seq) (schema migration 8): a query without 'with' reads the table itself.

// pos is a position in an archive's chronological order.
type pos struct{ stamp, seq int64 }

func (a pos) less(b pos) bool { return a.stamp < b.stamp || (a.stamp == b.stamp && a.seq < b.seq) }

// sqlAppendArchive inserts one message; OR IGNORE settles a duplicate id before anything is written, so the
// statement needs no statement journal inside a batch's transaction.
const sqlAppendArchive = `INSERT OR IGNORE INTO mam (owner, stamp, seq, id, with_full, with_bare, stanza) VALUES (?, ?, ?, ?, ?, ?, ?)`

// The archive's positions: seq orders messages of the same stamp by insertion, and is never reused (a trimmed
// archive must not hand out a position a client saw). The group commit takes a range of them per round.
const (
	sqlArchiveSeq    = `SELECT value FROM counters WHERE name = 'mam_seq'`
	sqlSetArchiveSeq = `UPDATE counters SET value = ? WHERE name = 'mam_seq'`
)

// sqlAddCount changes owner's archive size by delta (mam_counts), in the transaction that changed the rows.
// Prepared (db.addMAMCount): the group commit runs it once per owner in every round, and an unprepared
// statement is parsed and planned on every call (a tenth of the commit's CPU with 200 owners a round).
const sqlAddCount = `INSERT INTO mam_counts (owner, n) VALUES (?1, ?2) ON CONFLICT (owner) DO UPDATE SET n = n + ?2`

// addCount runs sqlAddCount in tx.
func (db *DB) addCount(ctx context.Context, tx *sql.Tx, owner string, delta int) error {
	if delta == 0 {
		return nil
	}
	_, err := tx.StmtContext(ctx, db.addMAMCount).ExecContext(ctx, owner, delta)
	return wrap("archive count", err)
}

// AppendArchive implements storage.Archive.
func (db *DB) AppendArchive(ctx context.Context, owner string, m storage.ArchivedMessage) error {
	n, err := db.AppendArchiveBatch(ctx, owner, []storage.ArchivedMessage{m})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: archived message %s of %s", storage.ErrExists, m.ID, owner)
	}
	return nil
}

// AppendArchiveBatch implements storage.Archive. The batch joins the archive's group commit: while one
// transaction runs, the batches of every other user actor queue, and the next transaction takes them all.
func (db *DB) AppendArchiveBatch(ctx context.Context, owner string, msgs []storage.ArchivedMessage) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	return db.archive.append(ctx, owner, msgs)
}

// archiveCommitter is the archive's group commit across users. Each user actor already commits its own burst
// in one batch; but 200 users chatting still meant hundreds of small transactions a second queued behind the
// one writer, each with its fsync (synchronous=FULL), each holding its user actor (and the messages behind it)
// until its turn. One goroutine, started by Open and ended by Close, takes every batch queued while its
// previous transaction ran and writes them in one: one fsync for all. The channel and the goroutine are this
// package's own synchronisation of the storage handle.
type archiveCommitter struct {
	reqs chan *archiveReq
	quit chan struct{}
	done chan struct{}
}

type archiveReq struct {
	owner string
	msgs  []storage.ArchivedMessage
	reply chan archiveRes
}

type archiveRes struct {
	stored int
	err    error
}

func (a *archiveCommitter) start(db *DB) {
	a.reqs = make(chan *archiveReq, 1024)
	a.quit = make(chan struct{})
	a.done = make(chan struct{})
	go a.run(db)
}

func (a *archiveCommitter) stop() {
	if a.quit == nil {
		return
	}
	close(a.quit)
	<-a.done
}

// maxArchiveRound bounds one transaction (batches, not messages).
const maxArchiveRound = 256

func (a *archiveCommitter) run(db *DB) {
	defer close(a.done)
	for {
		var first *archiveReq
		select {
		case first = <-a.reqs:
		case <-a.quit:
			for {
				select {
				case r := <-a.reqs: // queued before Close: still written
					db.commitArchive([]*archiveReq{r})
				default:
					return
				}
			}
		}
		round := []*archiveReq{first}
	more:
		for len(round) < maxArchiveRound {
			select {
			case r := <-a.reqs:
				round = append(round, r)
			default:
				break more
			}
		}
		db.commitArchive(round)
	}
}

func (a *archiveCommitter) append(ctx context.Context, owner string, msgs []storage.ArchivedMessage) (int, error) {
	req := &archiveReq{owner: owner, msgs: msgs, reply: make(chan archiveRes, 1)}
	select {
	case a.reqs <- req:
	case <-a.quit:
		return 0, errors.New("sqlite: append archive: the database is closed")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// Once queued the batch is written whatever the caller's context does: wait for the outcome. A batch that
	// slipped into the queue after Close drained it has no outcome coming.
	select {
	case res := <-req.reply:
		return res.stored, res.err
	case <-a.done:
		select {
		case res := <-req.reply:
			return res.stored, res.err
		default:
			return 0, errors.New("sqlite: append archive: the database is closed")
		}
	}
}

// commitArchive writes a round in one transaction and answers each batch: how many of its messages were new,
// or the transaction's error for all of them.
func (db *DB) commitArchive(round []*archiveReq) {
	stored := make([]int, len(round))
	ctx := context.Background()
	err := db.write(ctx, func(tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, db.appendMAM)
		var seq int64
		if err := tx.StmtContext(ctx, db.archiveSeq).QueryRowContext(ctx).Scan(&seq); err != nil {
			return wrap("append archive", err)
		}
		counts := map[string]int{}
		for i, r := range round {
			for _, m := range r.msgs {
				seq++ // a skipped duplicate leaves a gap: harmless, positions only need to grow
				res, err := stmt.ExecContext(ctx, r.owner, micro(m.Stamp), seq, m.ID, m.With, m.WithBare, m.Stanza)
				if err != nil {
					return wrap("append archive", err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return wrap("append archive", err)
				}
				stored[i] += int(n)
			}
			counts[r.owner] += stored[i]
		}
		for owner, n := range counts {
			if err := db.addCount(ctx, tx, owner, n); err != nil {
				return err
			}
		}
		_, err := tx.StmtContext(ctx, db.setArchiveSeq).ExecContext(ctx, seq)
		return wrap("append archive", err)
	})
	for i, r := range round {
		if err != nil {
			r.reply <- archiveRes{err: err}
		} else {
			r.reply <- archiveRes{stored: stored[i]}
		}
	}
}

// position looks up an archived message's position; ErrNotFound if absent.
func (db *DB) position(ctx context.Context, q querier, owner, id string) (pos, error) {
	var p pos
	err := q.QueryRowContext(ctx, `SELECT stamp, seq FROM mam WHERE owner = ? AND id = ?`, owner, id).Scan(&p.stamp, &p.seq)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: archived message %s", storage.ErrNotFound, id)
	}
	return p, wrap("archive position", err)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// selection builds the FROM and WHERE clauses ("mam INDEXED BY … WHERE …") and their arguments for q, reading
// on one snapshot (tx). The index is named: without statistics SQLite's planner takes mam_by_time for a query by
// 'with' as well (both give the order), and would then scan the whole archive for one contact's page.
func (db *DB) selection(ctx context.Context, tx querier, owner string, q storage.ArchiveQuery) (string, []any, error) {
	lo := pos{math.MinInt64, math.MinInt64}
	hi := pos{math.MaxInt64, math.MaxInt64}
	if !q.Start.IsZero() {
		lo = pos{micro(q.Start), math.MinInt64} // inclusive start: every seq is above MinInt64
	}
	if !q.End.IsZero() {
		hi = pos{micro(q.End), math.MaxInt64}
	}
	for _, id := range q.AfterIDs {
		p, err := db.position(ctx, tx, owner, id)
		if err != nil {
			return "", nil, err
		}
		if lo.less(p) {
			lo = p
		}
	}
	for _, id := range q.BeforeIDs {
		p, err := db.position(ctx, tx, owner, id)
		if err != nil {
			return "", nil, err
		}
		if p.less(hi) {
			hi = p
		}
	}
	var b strings.Builder
	args := []any{owner}
	switch {
	case len(q.IDs) > 0:
		b.WriteString("mam WHERE owner = ?") // the (id, owner) index: a few rows, sorted after
	case q.With != "":
		b.WriteString("mam INDEXED BY mam_by_with WHERE owner = ?")
	default:
		b.WriteString("mam NOT INDEXED WHERE owner = ?") // the table's own (owner, stamp, seq) order
	}
	if q.With != "" {
		bare, _, full := strings.Cut(q.With, "/")
		b.WriteString(" AND with_bare = ?")
		args = append(args, bare)
		if full {
			b.WriteString(" AND with_full = ?")
			args = append(args, q.With)
		}
	}
	b.WriteString(" AND (stamp, seq) > (?, ?) AND (stamp, seq) < (?, ?)")
	args = append(args, lo.stamp, lo.seq, hi.stamp, hi.seq)
	if len(q.IDs) > 0 {
		for _, id := range q.IDs {
			if _, err := db.position(ctx, tx, owner, id); err != nil {
				return "", nil, err
			}
		}
		b.WriteString(" AND id IN (?" + strings.Repeat(", ?", len(q.IDs)-1) + ")")
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	return b.String(), args, nil
}

// readTx runs fn in a read transaction: the id lookups and the page see one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return wrap("begin read", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// QueryArchive implements storage.Archive.
func (db *DB) QueryArchive(ctx context.Context, owner string, q storage.ArchiveQuery) ([]storage.ArchivedMessage, bool, error) {
	var page []storage.ArchivedMessage
	more := false
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		where, args, err := db.selection(ctx, tx, owner, q)
		if err != nil {
			return err
		}
		order := "stamp, seq"
		if q.Last {
			order = "stamp DESC, seq DESC"
		}
		limit := -1
		if q.Limit > 0 {
			limit = q.Limit + 1
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, with_full, with_bare, stamp, stanza FROM `+where+
			` ORDER BY `+order+` LIMIT ?`, append(args, limit)...)
		if err != nil {
			return wrap("query archive", err)
		}
		defer rows.Close()
		for rows.Next() {
			var m storage.ArchivedMessage
			var stamp int64
			if err := rows.Scan(&m.ID, &m.With, &m.WithBare, &stamp, &m.Stanza); err != nil {
				return wrap("query archive", err)
			}
			m.Stamp = fromMicro(stamp)
			page = append(page, m)
		}
		return wrap("query archive", rows.Err())
	})
	if err != nil {
		return nil, false, err
	}
	if q.Limit > 0 && len(page) > q.Limit {
		page, more = page[:q.Limit], true
	}
	if q.Last {
		for i, j := 0, len(page)-1; i < j; i, j = i+1, j-1 {
			page[i], page[j] = page[j], page[i]
		}
	}
	return page, more, nil
}

// CountArchive implements storage.Archive. Without bounds it reads the archive's size (mam_counts); otherwise
// it counts the selection's index range.
func (db *DB) CountArchive(ctx context.Context, owner string, q storage.ArchiveQuery) (int, error) {
	n := 0
	if q.With == "" && q.Start.IsZero() && q.End.IsZero() && len(q.AfterIDs) == 0 && len(q.BeforeIDs) == 0 && len(q.IDs) == 0 {
		err := db.queryRow(ctx, `SELECT n FROM mam_counts WHERE owner = ?`, owner).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return n, wrap("count archive", err)
	}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		where, args, err := db.selection(ctx, tx, owner, q)
		if err != nil {
			return err
		}
		return wrap("count archive", tx.QueryRowContext(ctx, `SELECT count(*) FROM `+where, args...).Scan(&n))
	})
	return n, err
}

// ArchiveBounds implements storage.Archive.
const (
	sqlArchiveFirst = `SELECT id, with_full, with_bare, stamp, stanza FROM mam WHERE owner = ? ORDER BY stamp, seq LIMIT 1`
	sqlArchiveLast  = `SELECT id, with_full, with_bare, stamp, stanza FROM mam WHERE owner = ? ORDER BY stamp DESC, seq DESC LIMIT 1`
)

// ArchivedIDs implements storage.Archive: one probe of the (id, owner) index per id, in one statement, whose
// answer is one JSON array.
func (db *DB) ArchivedIDs(ctx context.Context, owner string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, wrap("archived ids", err)
	}
	var held string
	if err := db.r.QueryRowContext(ctx, `SELECT json_group_array(value) FROM (SELECT j.value FROM json_each(?) AS j
WHERE EXISTS (SELECT 1 FROM mam WHERE owner = ? AND id = j.value) ORDER BY j.key)`, string(list), owner).Scan(&held); err != nil {
		return nil, wrap("archived ids", err)
	}
	var out []string
	return out, wrap("archived ids", json.Unmarshal([]byte(held), &out))
}

func (db *DB) ArchiveBounds(ctx context.Context, owner string) (first, last storage.ArchivedMessage, err error) {
	one := func(q *sql.Stmt) (storage.ArchivedMessage, error) {
		var m storage.ArchivedMessage
		var stamp int64
		err := q.QueryRowContext(ctx, owner).Scan(&m.ID, &m.With, &m.WithBare, &stamp, &m.Stanza)
		if errors.Is(err, sql.ErrNoRows) {
			return m, fmt.Errorf("%w: empty archive of %s", storage.ErrNotFound, owner)
		}
		m.Stamp = fromMicro(stamp)
		return m, wrap("archive bounds", err)
	}
	if first, err = one(db.archiveFirst); err != nil {
		return first, last, err
	}
	last, err = one(db.archiveLast)
	return first, last, err
}

// deleteRows runs a DELETE of owner's messages and the size update in one transaction.
func (db *DB) deleteRows(ctx context.Context, op, owner, query string, args ...any) (int, error) {
	deleted := 0
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return wrap(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrap(op, err)
		}
		deleted = int(n)
		return db.addCount(ctx, tx, owner, -deleted)
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// DeleteArchiveBefore implements storage.Archive.
func (db *DB) DeleteArchiveBefore(ctx context.Context, owner string, t time.Time) (int, error) {
	return db.deleteRows(ctx, "expire archive", owner, `DELETE FROM mam WHERE owner = ? AND stamp < ?`, owner, micro(t))
}

// TrimArchive implements storage.Archive: the newest kept message's position is found by walking keep rows
// back from the archive's end; everything of the owner at or before the next older one goes.
func (db *DB) TrimArchive(ctx context.Context, owner string, keep int) (int, error) {
	if keep < 0 {
		keep = 0
	}
	return db.deleteRows(ctx, "trim archive", owner, `DELETE FROM mam WHERE owner = ?1 AND (stamp, seq) <= (
	SELECT stamp, seq FROM mam WHERE owner = ?1 ORDER BY stamp DESC, seq DESC LIMIT 1 OFFSET ?2)`, owner, keep)
}

// ArchivePrefs implements storage.Archive.
func (db *DB) ArchivePrefs(ctx context.Context, owner string) (storage.ArchivePrefs, error) {
	var p storage.ArchivePrefs
	var always, never string
	err := db.queryRow(ctx, `SELECT deflt, always, never FROM mam_prefs WHERE owner = ?`, owner).Scan(&p.Default, &always, &never)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: archive preferences of %s", storage.ErrNotFound, owner)
	}
	if err != nil {
		return p, wrap("archive prefs", err)
	}
	if err := json.Unmarshal([]byte(always), &p.Always); err != nil {
		return p, wrap("archive prefs", err)
	}
	if err := json.Unmarshal([]byte(never), &p.Never); err != nil {
		return p, wrap("archive prefs", err)
	}
	return p, nil
}

// SetArchivePrefs implements storage.Archive.
func (db *DB) SetArchivePrefs(ctx context.Context, owner string, p storage.ArchivePrefs) error {
	always, err := json.Marshal(p.Always)
	if err != nil {
		return wrap("set archive prefs", err)
	}
	never, err := json.Marshal(p.Never)
	if err != nil {
		return wrap("set archive prefs", err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO mam_prefs (owner, deflt, always, never) VALUES (?, ?, ?, ?)
ON CONFLICT (owner) DO UPDATE SET deflt = excluded.deflt, always = excluded.always, never = excluded.never`,
		owner, p.Default, string(always), string(never))
	return wrap("set archive prefs", err)
}
