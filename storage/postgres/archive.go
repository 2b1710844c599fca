package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// The archive (XEP-0313). A query becomes one range of the index it reads, bounded by the time bounds and the
// (stamp, seq) positions of the id bounds; PostgreSQL walks the range in index order and stops after Limit+1
// rows, so a page costs O(page) plus one probe of the (id, owner) index per id bound.
//
// No group-commit goroutine as in storage/sqlite: there, every transaction queues behind the one writer and
// pays its own fsync, so batching the users' bursts saves both. Here the pool's connections commit in
// parallel and PostgreSQL flushes the WAL of concurrent commits together.

// pos is a position in an archive's chronological order.
type pos struct {
	stamp time.Time
	seq   int64
}

// sqlAppendArchive inserts one message; a duplicate id inserts nothing (the first copy stays).
const sqlAppendArchive = `INSERT INTO mam (owner, id, with_full, with_bare, stamp, stanza) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (owner, id) DO NOTHING`

// addCount changes owner's archive size by delta (mam_counts), in the transaction that changed the rows.
func addCount(ctx context.Context, tx pgx.Tx, owner string, delta int) error {
	if delta == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO mam_counts (owner, n) VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE SET n = mam_counts.n + excluded.n`, owner, delta)
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

// AppendArchiveBatch implements storage.Archive: one transaction under the owner's archive lock (so seq
// follows commit order in the archive: a client paging after the newest id it saw never misses a message
// committed later with a smaller seq), the inserts sent in one pgx batch (one round trip).
func (db *DB) AppendArchiveBatch(ctx context.Context, owner string, msgs []storage.ArchivedMessage) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	stored := 0
	err := db.write(ctx, func(tx pgx.Tx) error {
		stored = 0
		if err := lockOwner(ctx, tx, lockArchive, owner); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, m := range msgs {
			b.Queue(sqlAppendArchive, owner, m.ID, m.With, m.WithBare, m.Stamp, m.Stanza)
		}
		br := tx.SendBatch(ctx, b)
		for range msgs {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return wrap("append archive", err)
			}
			stored += int(tag.RowsAffected())
		}
		if err := br.Close(); err != nil {
			return wrap("append archive", err)
		}
		return addCount(ctx, tx, owner, stored)
	})
	if err != nil {
		return 0, err
	}
	return stored, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// position looks up an archived message's position; ErrNotFound if absent.
func position(ctx context.Context, q querier, owner, id string) (pos, error) {
	var p pos
	err := q.QueryRow(ctx, `SELECT stamp, seq FROM mam WHERE owner = $1 AND id = $2`, owner, id).Scan(&p.stamp, &p.seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("%w: archived message %s", storage.ErrNotFound, id)
	}
	return p, wrap("archive position", err)
}

// args collects a statement's arguments and names their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// selection builds the WHERE clause and its arguments for q, reading the id bounds on the same snapshot as the
// page (tx, REPEATABLE READ). Every bound becomes a condition; PostgreSQL's planner combines them into the
// tightest index range itself.
func selection(ctx context.Context, tx querier, owner string, q storage.ArchiveQuery) (string, args, error) {
	var a args
	var b strings.Builder
	b.WriteString("owner = " + a.add(owner))
	if q.With != "" {
		bare, _, full := strings.Cut(q.With, "/")
		b.WriteString(" AND with_bare = " + a.add(bare))
		if full {
			b.WriteString(" AND with_full = " + a.add(q.With))
		}
	}
	if !q.Start.IsZero() {
		b.WriteString(" AND stamp >= " + a.add(q.Start))
	}
	if !q.End.IsZero() {
		b.WriteString(" AND stamp <= " + a.add(q.End))
	}
	for _, id := range q.AfterIDs {
		p, err := position(ctx, tx, owner, id)
		if err != nil {
			return "", nil, err
		}
		b.WriteString(" AND (stamp, seq) > (" + a.add(p.stamp) + ", " + a.add(p.seq) + ")")
	}
	for _, id := range q.BeforeIDs {
		p, err := position(ctx, tx, owner, id)
		if err != nil {
			return "", nil, err
		}
		b.WriteString(" AND (stamp, seq) < (" + a.add(p.stamp) + ", " + a.add(p.seq) + ")")
	}
	if len(q.IDs) > 0 {
		for _, id := range q.IDs {
			if _, err := position(ctx, tx, owner, id); err != nil {
				return "", nil, err
			}
		}
		b.WriteString(" AND id = ANY(" + a.add(slices.Clone(q.IDs)) + ")")
	}
	return b.String(), a, nil
}

// readTx runs fn in a read-only REPEATABLE READ transaction: the id lookups and the page see one snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return wrap("begin read", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	return fn(tx)
}

// QueryArchive implements storage.Archive.
func (db *DB) QueryArchive(ctx context.Context, owner string, q storage.ArchiveQuery) ([]storage.ArchivedMessage, bool, error) {
	var page []storage.ArchivedMessage
	more := false
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		where, a, err := selection(ctx, tx, owner, q)
		if err != nil {
			return err
		}
		order := "stamp, seq"
		if q.Last {
			order = "stamp DESC, seq DESC"
		}
		var limit *int
		if q.Limit > 0 {
			n := q.Limit + 1
			limit = &n
		}
		lim := a.add(limit)
		rows, err := tx.Query(ctx, `SELECT id, with_full, with_bare, stamp, stanza FROM mam WHERE `+where+
			` ORDER BY `+order+` LIMIT `+lim, a...)
		if err != nil {
			return wrap("query archive", err)
		}
		defer rows.Close()
		for rows.Next() {
			var m storage.ArchivedMessage
			if err := rows.Scan(&m.ID, &m.With, &m.WithBare, &m.Stamp, &m.Stanza); err != nil {
				return wrap("query archive", err)
			}
			m.Stamp = utc(m.Stamp)
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
		slices.Reverse(page)
	}
	return page, more, nil
}

// CountArchive implements storage.Archive. Without bounds it reads the archive's size (mam_counts); otherwise
// it counts the selection's index range.
func (db *DB) CountArchive(ctx context.Context, owner string, q storage.ArchiveQuery) (int, error) {
	n := 0
	if q.With == "" && q.Start.IsZero() && q.End.IsZero() && len(q.AfterIDs) == 0 && len(q.BeforeIDs) == 0 && len(q.IDs) == 0 {
		err := db.pool.QueryRow(ctx, `SELECT n FROM mam_counts WHERE owner = $1`, owner).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
		return n, wrap("count archive", err)
	}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		where, a, err := selection(ctx, tx, owner, q)
		if err != nil {
			return err
		}
		return wrap("count archive", tx.QueryRow(ctx, `SELECT count(*) FROM mam WHERE `+where, a...).Scan(&n))
	})
	return n, err
}

// ArchiveBounds implements storage.Archive. Both ends are read in one statement, hence one snapshot.
// ArchivedIDs implements storage.Archive: one statement, one row (the ids held, in the order asked).
func (db *DB) ArchivedIDs(ctx context.Context, owner string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var held []string
	err := db.pool.QueryRow(ctx, `SELECT coalesce(array_agg(u.id ORDER BY u.n), '{}') FROM unnest($2::text[]) WITH ORDINALITY AS u(id, n)
WHERE EXISTS (SELECT 1 FROM mam WHERE owner = $1 AND id = u.id)`, owner, ids).Scan(&held)
	return held, wrap("archived ids", err)
}

func (db *DB) ArchiveBounds(ctx context.Context, owner string) (first, last storage.ArchivedMessage, err error) {
	rows, err := db.pool.Query(ctx, `
(SELECT id, with_full, with_bare, stamp, stanza FROM mam WHERE owner = $1 ORDER BY stamp, seq LIMIT 1)
UNION ALL
(SELECT id, with_full, with_bare, stamp, stanza FROM mam WHERE owner = $1 ORDER BY stamp DESC, seq DESC LIMIT 1)`, owner)
	if err != nil {
		return first, last, wrap("archive bounds", err)
	}
	defer rows.Close()
	var got []storage.ArchivedMessage
	for rows.Next() {
		var m storage.ArchivedMessage
		if err := rows.Scan(&m.ID, &m.With, &m.WithBare, &m.Stamp, &m.Stanza); err != nil {
			return first, last, wrap("archive bounds", err)
		}
		m.Stamp = utc(m.Stamp)
		got = append(got, m)
	}
	if err := rows.Err(); err != nil {
		return first, last, wrap("archive bounds", err)
	}
	if len(got) < 2 {
		return first, last, fmt.Errorf("%w: empty archive of %s", storage.ErrNotFound, owner)
	}
	return got[0], got[1], nil
}

// deleteRows runs a DELETE of owner's messages and the size update in one transaction, under the owner's
// archive lock (so the size stays the count of rows against concurrent appends).
func (db *DB) deleteRows(ctx context.Context, op, owner, query string, args ...any) (int, error) {
	deleted := 0
	err := db.write(ctx, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, lockArchive, owner); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return wrap(op, err)
		}
		deleted = int(tag.RowsAffected())
		return addCount(ctx, tx, owner, -deleted)
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// DeleteArchiveBefore implements storage.Archive.
func (db *DB) DeleteArchiveBefore(ctx context.Context, owner string, t time.Time) (int, error) {
	return db.deleteRows(ctx, "expire archive", owner, `DELETE FROM mam WHERE owner = $1 AND stamp < $2`, owner, t)
}

// TrimArchive implements storage.Archive: the rows past the newest keep, walked on the by_time index.
func (db *DB) TrimArchive(ctx context.Context, owner string, keep int) (int, error) {
	if keep < 0 {
		keep = 0
	}
	return db.deleteRows(ctx, "trim archive", owner, `DELETE FROM mam WHERE seq IN (
	SELECT seq FROM mam WHERE owner = $1 ORDER BY stamp DESC, seq DESC OFFSET $2)`, owner, keep)
}

// ArchivePrefs implements storage.Archive.
func (db *DB) ArchivePrefs(ctx context.Context, owner string) (storage.ArchivePrefs, error) {
	var p storage.ArchivePrefs
	err := db.pool.QueryRow(ctx, `SELECT deflt, always, never FROM mam_prefs WHERE owner = $1`, owner).Scan(&p.Default, &p.Always, &p.Never)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("%w: archive preferences of %s", storage.ErrNotFound, owner)
	}
	if err != nil {
		return p, wrap("archive prefs", err)
	}
	if len(p.Always) == 0 {
		p.Always = nil
	}
	if len(p.Never) == 0 {
		p.Never = nil
	}
	return p, nil
}

// SetArchivePrefs implements storage.Archive.
func (db *DB) SetArchivePrefs(ctx context.Context, owner string, p storage.ArchivePrefs) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO mam_prefs (owner, deflt, always, never) VALUES ($1, $2, $3, $4)
ON CONFLICT (owner) DO UPDATE SET deflt = excluded.deflt, always = excluded.always, never = excluded.never`,
		owner, p.Default, orEmpty(p.Always), orEmpty(p.Never))
	return wrap("set archive prefs", err)
}

// orEmpty: a nil slice binds as NULL, which the NOT NULL array columns reject.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
