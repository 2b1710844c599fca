package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/xmppd/xmppd/storage"
)

// FastTokens implements storage.FastTokens.
func (db *DB) FastTokens(ctx context.Context, account, client string) ([]storage.FastToken, error) {
	rows, err := db.query(ctx, `SELECT pending, key, mechanism, expiry, count FROM fast_tokens
		WHERE bare = ? AND client = ? ORDER BY pending DESC`, account, client)
	if err != nil {
		return nil, wrap("fast tokens", err)
	}
	defer rows.Close()
	out := []storage.FastToken{}
	for rows.Next() {
		t := storage.FastToken{Account: account, Client: client}
		var pending, expiry, count int64
		if err := rows.Scan(&pending, &t.Key, &t.Mechanism, &expiry, &count); err != nil {
			return nil, wrap("fast tokens", err)
		}
		t.Pending, t.Expiry, t.Count = pending == 1, fromMicro(expiry), uint32(count)
		out = append(out, t)
	}
	return out, wrap("fast tokens", rows.Err())
}

// PutFastToken implements storage.FastTokens.
func (db *DB) PutFastToken(ctx context.Context, t storage.FastToken) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := accountExists(ctx, tx, t.Account); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO fast_tokens (bare, client, pending, key, mechanism, expiry, count)
			VALUES (?, ?, 1, ?, ?, ?, 0)
			ON CONFLICT (bare, client, pending) DO UPDATE SET key = excluded.key, mechanism = excluded.mechanism,
				expiry = excluded.expiry, count = 0`,
			t.Account, t.Client, t.Key, t.Mechanism, micro(t.Expiry))
		return wrap("put fast token", err)
	})
}

// UseFastToken implements storage.FastTokens: the count check and the move from pending to in use are one
// transaction, so two connections replaying one count cannot both pass.
func (db *DB) UseFastToken(ctx context.Context, account, client string, key []byte, count uint32) (bool, error) {
	ok := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		// One statement on the common path: the count check and update, and whether the token was pending.
		var pending int64
		err := tx.QueryRowContext(ctx, `UPDATE fast_tokens SET count = max(count, ?)
			WHERE bare = ? AND client = ? AND key = ? AND (? = 0 OR count < ?) RETURNING pending`,
			int64(count), account, client, key, int64(count), int64(count)).Scan(&pending)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no such token, or a replayed count
		}
		if err != nil {
			return wrap("use fast token", err)
		}
		ok = true
		if pending == 1 {
			// The pending token was used: it becomes the one in use, and the one it replaces dies (XEP-0484 §4.5).
			if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE bare = ? AND client = ? AND pending = 0`, account, client); err != nil {
				return wrap("use fast token", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE fast_tokens SET pending = 0 WHERE bare = ? AND client = ? AND pending = 1`, account, client); err != nil {
				return wrap("use fast token", err)
			}
		}
		return nil
	})
	return ok && err == nil, err
}

// DeleteFastTokens implements storage.FastTokens.
func (db *DB) DeleteFastTokens(ctx context.Context, account, client string) error {
	var err error
	if client == "" {
		_, err = db.w.ExecContext(ctx, `DELETE FROM fast_tokens WHERE bare = ?`, account)
	} else {
		_, err = db.w.ExecContext(ctx, `DELETE FROM fast_tokens WHERE bare = ? AND client = ?`, account, client)
	}
	return wrap("delete fast tokens", err)
}
