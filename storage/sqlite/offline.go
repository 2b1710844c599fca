package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// sqlPushOffline checks the limit and appends in one statement, which SQLite
// runs atomically: no transaction round trips on the hot path, and no window
// between count and insert (there is only one writer anyway). ?4 <= 0 means
// no limit. Zero rows inserted means the limit was reached, or (?5, the
// idempotency key, NULL for none) that the queue holds the key already.
//
// Exec rather than INSERT ... RETURNING through Query: with RETURNING the
// autocommit COMMIT (and its fsync) happens when the rows are closed, and we
// want its error reported by the call that ran the statement.
const sqlPushOffline = `
INSERT INTO offline (owner, stanza, stamp, once_key)
SELECT ?1, ?2, ?3, ?5
WHERE ?4 <= 0 OR (SELECT count(*) FROM offline WHERE owner = ?1) < ?4
ON CONFLICT DO NOTHING`

const sqlOfflineHasKey = `SELECT count(*) FROM offline WHERE owner = ? AND once_key = ?`

const sqlOfflineQueue = `SELECT id, stanza, stamp FROM offline WHERE owner = ? ORDER BY id`

// PushOffline implements storage.Offline.
func (db *DB) PushOffline(ctx context.Context, owner, stanza string, stamp time.Time, max int) (int64, error) {
	res, err := db.pushOffline.ExecContext(ctx, owner, stanza, micro(stamp), max, nil)
	if err != nil {
		return 0, wrap("push offline", err)
	}
	// Both values are read from the connection right after the statement,
	// still under the single writer, so the id is this insert's.
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("push offline", err)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: %d offline messages for %s", storage.ErrLimit, max, owner)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, wrap("push offline", err)
	}
	return id, nil
}

// PushOfflineBatch implements storage.Offline: the same statement per message, in one transaction (one fsync
// of the WAL at commit, whatever the number of messages).
func (db *DB) PushOfflineBatch(ctx context.Context, owner string, msgs []storage.OfflineInput, max int) (int, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, wrap("push offline batch", err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	stmt := tx.StmtContext(ctx, db.pushOffline)
	stored := 0
	for _, m := range msgs {
		var key any // NULL: no key
		if m.Key != "" {
			key = m.Key
		}
		res, err := stmt.ExecContext(ctx, owner, m.Stanza, micro(m.Stamp), max, key)
		if err != nil {
			return 0, wrap("push offline batch", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, wrap("push offline batch", err)
		}
		if n == 0 && m.Key != "" {
			// The key queued already (a second arrival: stored, takes no room), or the limit.
			if err := tx.QueryRowContext(ctx, sqlOfflineHasKey, owner, m.Key).Scan(&n); err != nil {
				return 0, wrap("push offline batch", err)
			}
		}
		if n == 0 {
			break // the limit: every later message would hit it too
		}
		stored++
	}
	if err := tx.Commit(); err != nil {
		return 0, wrap("push offline batch", err)
	}
	return stored, nil
}

// OfflineMessages implements storage.Offline.
func (db *DB) OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	rows, err := db.offlineQueue.QueryContext(ctx, owner)
	if err != nil {
		return nil, wrap("offline messages", err)
	}
	defer rows.Close()
	var out []storage.OfflineMessage
	for rows.Next() {
		var (
			m  storage.OfflineMessage
			us int64
		)
		if err := rows.Scan(&m.ID, &m.Stanza, &us); err != nil {
			return nil, wrap("offline messages", err)
		}
		m.Stamp = fromMicro(us)
		out = append(out, m)
	}
	return out, wrap("offline messages", rows.Err())
}

// OfflinePage implements storage.Offline. It reads rows only until the page is full.
func (db *DB) OfflinePage(ctx context.Context, owner string, maxBytes int) ([]storage.OfflineMessage, bool, error) {
	rows, err := db.offlineQueue.QueryContext(ctx, owner)
	if err != nil {
		return nil, false, wrap("offline page", err)
	}
	defer rows.Close()
	var (
		out  []storage.OfflineMessage
		size int
	)
	for rows.Next() {
		var (
			m  storage.OfflineMessage
			us int64
		)
		if err := rows.Scan(&m.ID, &m.Stanza, &us); err != nil {
			return nil, false, wrap("offline page", err)
		}
		if size += len(m.Stanza); size > maxBytes && len(out) > 0 {
			return out, true, nil
		}
		m.Stamp = fromMicro(us)
		out = append(out, m)
	}
	return out, false, wrap("offline page", rows.Err())
}

// DeleteOffline implements storage.Offline.
func (db *DB) DeleteOffline(ctx context.Context, owner string, upToID int64) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM offline WHERE owner = ? AND id <= ?`, owner, upToID)
	return wrap("delete offline", err)
}

// DeleteOfflineIDs implements storage.Offline: one statement (one commit) for any number of ids, handed over as
// one JSON array rather than a variable per id.
func (db *DB) DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return wrap("delete offline ids", err)
	}
	_, err = db.w.ExecContext(ctx, `DELETE FROM offline WHERE owner = ? AND id IN (SELECT value FROM json_each(?))`, owner, string(list))
	return wrap("delete offline ids", err)
}

// CountOffline implements storage.Offline.
func (db *DB) CountOffline(ctx context.Context, owner string) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM offline WHERE owner = ?`, owner).Scan(&n)
	return n, wrap("count offline", err)
}
