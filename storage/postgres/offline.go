package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// sqlPushOffline checks the limit and appends; $4 <= 0 means no limit. No row returned means the limit was
// reached, or that the queue holds the idempotency key $5 already (NULL: none). It runs after lockOwner(lockOffline): under READ COMMITTED the count is of every message
// committed before the lock was granted, and no other writer of the queue can insert until this transaction
// ends, so the limit holds across nodes and ids increase in commit order.
const sqlPushOffline = `
INSERT INTO offline (owner, stanza, stamp, once_key)
SELECT $1, $2, $3, $5
WHERE $4 <= 0 OR (SELECT count(*) FROM offline WHERE owner = $1) < $4
ON CONFLICT DO NOTHING
RETURNING id`

// sqlOfflineHasKey: under the owner's lock (no writer can add or remove the key meanwhile).
const sqlOfflineHasKey = `SELECT EXISTS (SELECT 1 FROM offline WHERE owner = $1 AND once_key = $2)`

const sqlOfflineQueue = `SELECT id, stanza, stamp FROM offline WHERE owner = $1 ORDER BY id`

// PushOffline implements storage.Offline. The lock and the insert go in one round trip: a pgx batch is one
// implicit transaction (a single Sync), so the advisory lock is held until the insert commits.
func (db *DB) PushOffline(ctx context.Context, owner, stanza string, stamp time.Time, max int) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockOffline, owner)
	b.Queue(sqlPushOffline, owner, stanza, stamp, max, nil)
	br := db.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return 0, wrap("push offline", err)
	}
	var id int64
	err := br.QueryRow().Scan(&id)
	closeErr := br.Close() // the implicit commit: its error is this call's
	switch {
	case err == pgx.ErrNoRows:
		if closeErr != nil {
			return 0, wrap("push offline", closeErr)
		}
		return 0, fmt.Errorf("%w: %d offline messages for %s", storage.ErrLimit, max, owner)
	case err != nil:
		return 0, wrap("push offline", err)
	case closeErr != nil:
		return 0, wrap("push offline", closeErr)
	}
	return id, nil
}

// PushOfflineBatch implements storage.Offline: the same statement per message, in one transaction under the
// owner's lock (one commit, whatever the number of messages).
func (db *DB) PushOfflineBatch(ctx context.Context, owner string, msgs []storage.OfflineInput, max int) (int, error) {
	stored := 0
	err := db.write(ctx, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, lockOffline, owner); err != nil {
			return err
		}
		for _, m := range msgs {
			var key *string // NULL: no key
			if m.Key != "" {
				key = &m.Key
			}
			var id int64
			err := tx.QueryRow(ctx, sqlPushOffline, owner, m.Stanza, m.Stamp, max, key).Scan(&id)
			if err == pgx.ErrNoRows && key != nil {
				// The key queued already (a second arrival: stored, takes no room), or the limit.
				var held bool
				if err := tx.QueryRow(ctx, sqlOfflineHasKey, owner, m.Key).Scan(&held); err != nil {
					return wrap("push offline batch", err)
				}
				if held {
					stored++
					continue
				}
			}
			if err == pgx.ErrNoRows {
				break // the limit: every later message would hit it too
			}
			if err != nil {
				return wrap("push offline batch", err)
			}
			stored++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return stored, nil
}

// OfflineMessages implements storage.Offline.
func (db *DB) OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	rows, err := db.pool.Query(ctx, sqlOfflineQueue, owner)
	if err != nil {
		return nil, wrap("offline messages", err)
	}
	defer rows.Close()
	var out []storage.OfflineMessage
	for rows.Next() {
		var m storage.OfflineMessage
		if err := rows.Scan(&m.ID, &m.Stanza, &m.Stamp); err != nil {
			return nil, wrap("offline messages", err)
		}
		m.Stamp = utc(m.Stamp)
		out = append(out, m)
	}
	return out, wrap("offline messages", rows.Err())
}

// OfflinePage implements storage.Offline. The running total of the stanzas' sizes is computed by the server
// (a window over the queue in id order), so it sends only the page and one row past it (the first row is in
// the page whatever its size, the second may be the one past it), not the whole queue.
func (db *DB) OfflinePage(ctx context.Context, owner string, maxBytes int) ([]storage.OfflineMessage, bool, error) {
	rows, err := db.pool.Query(ctx, `
SELECT id, stanza, stamp, total FROM (
	SELECT id, stanza, stamp, sum(octet_length(stanza)) OVER (ORDER BY id) AS total, row_number() OVER (ORDER BY id) AS n
	FROM offline WHERE owner = $1
) q WHERE n <= 2 OR total - octet_length(stanza) <= $2
ORDER BY id`, owner, maxBytes)
	if err != nil {
		return nil, false, wrap("offline page", err)
	}
	defer rows.Close()
	var out []storage.OfflineMessage
	for rows.Next() {
		var (
			m     storage.OfflineMessage
			total int64
		)
		if err := rows.Scan(&m.ID, &m.Stanza, &m.Stamp, &total); err != nil {
			return nil, false, wrap("offline page", err)
		}
		if total > int64(maxBytes) && len(out) > 0 {
			return out, true, nil
		}
		m.Stamp = utc(m.Stamp)
		out = append(out, m)
	}
	return out, false, wrap("offline page", rows.Err())
}

// DeleteOffline implements storage.Offline.
func (db *DB) DeleteOffline(ctx context.Context, owner string, upToID int64) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM offline WHERE owner = $1 AND id <= $2`, owner, upToID)
	return wrap("delete offline", err)
}

// CountOffline implements storage.Offline.
// DeleteOfflineIDs implements storage.Offline.
func (db *DB) DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `DELETE FROM offline WHERE owner = $1 AND id = ANY($2)`, owner, ids)
	return wrap("delete offline ids", err)
}

func (db *DB) CountOffline(ctx context.Context, owner string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM offline WHERE owner = $1`, owner).Scan(&n)
	return n, wrap("count offline", err)
}
