package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/xmppd/xmppd/storage"
)

const (
	sqlFastTokens = `SELECT pending, key, mechanism, expiry, count FROM fast_tokens
		WHERE bare = ? AND client = ? ORDER BY pending DESC`
	sqlUseFastToken = `UPDATE fast_tokens SET count = max(count, ?)
			WHERE bare = ? AND client = ? AND key = ? AND (? = 0 OR count < ?) RETURNING pending`
	sqlRaiseFastCount = `UPDATE fast_tokens SET count = ?
			WHERE bare = ? AND client = ? AND key = ? AND pending = 0 AND count < ?`
)

// FastTokens implements storage.FastTokens.
func (db *DB) FastTokens(ctx context.Context, account, client string) ([]storage.FastToken, error) {
	rows, err := db.fastTokens.QueryContext(ctx, account, client)
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
//
// A count alone (a token in use, count raised) is committed without an fsync (writeUnsynced): XEP-0484 §4.4's
// counter is for authentication requests received in TLS 0-RTT data ("Servers MUST reject any authentication
// requests received via TLS 0-RTT payloads that do not include a count, or where the count is less than or
// equal to a count that has already been processed"), which xmppd never accepts (crypto/tls has no 0-RTT). The
// check still holds across connections and a killed process; an OS crash could only roll the counter back to a
// count the same client sent over TLS before (docs/benchmarks.md has what the fsync cost). A pending token
// becoming the one in use (§4.5: the older one dies) is a change of credentials and keeps its fsync, as do a
// replayed count and an unknown token (the unsynced update matched no row: the durable path answers them).
func (db *DB) UseFastToken(ctx context.Context, account, client string, key []byte, count uint32) (bool, error) {
	ok := false
	if count > 0 {
		err := db.writeUnsynced(ctx, func(tx *sql.Tx) error {
			res, err := tx.StmtContext(ctx, db.raiseFastCount).ExecContext(ctx, int64(count), account, client, key, int64(count))
			if err != nil {
				return wrap("use fast token", err)
			}
			n, err := res.RowsAffected()
			ok = n == 1
			return wrap("use fast token", err)
		})
		if err != nil || ok {
			return ok, err
		}
		// Not a token in use with a lower count: a pending one, a replay, or none; the durable path decides.
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		// One statement on the common path: the count check and update, and whether the token was pending.
		var pending int64
		err := tx.StmtContext(ctx, db.useFastToken).QueryRowContext(ctx,
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
