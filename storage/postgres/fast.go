package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// FastTokens implements storage.FastTokens.
func (db *DB) FastTokens(ctx context.Context, account, client string) ([]storage.FastToken, error) {
	rows, err := db.pool.Query(ctx, `SELECT pending, key, mechanism, expiry, count FROM fast_tokens
		WHERE bare = $1 AND client = $2 ORDER BY pending DESC`, account, client)
	if err != nil {
		return nil, wrap("fast tokens", err)
	}
	defer rows.Close()
	out := []storage.FastToken{}
	for rows.Next() {
		t := storage.FastToken{Account: account, Client: client}
		var count int64
		if err := rows.Scan(&t.Pending, &t.Key, &t.Mechanism, &t.Expiry, &count); err != nil {
			return nil, wrap("fast tokens", err)
		}
		t.Expiry, t.Count = utc(t.Expiry), uint32(count)
		out = append(out, t)
	}
	return out, wrap("fast tokens", rows.Err())
}

// PutFastToken implements storage.FastTokens. The account's row is locked FOR SHARE so that a concurrent
// DeleteAccount waits (or has already won, and this is ErrNotFound).
func (db *DB) PutFastToken(ctx context.Context, t storage.FastToken) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, t.Account, "FOR SHARE"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO fast_tokens (bare, client, pending, key, mechanism, expiry, count)
			VALUES ($1, $2, true, $3, $4, $5, 0)
			ON CONFLICT (bare, client, pending) DO UPDATE SET key = excluded.key, mechanism = excluded.mechanism,
				expiry = excluded.expiry, count = 0`,
			t.Account, t.Client, nonNil(t.Key), t.Mechanism, t.Expiry)
		return wrap("put fast token", err)
	})
}

// UseFastToken implements storage.FastTokens: the count check and the move from pending to in use are one
// transaction. The UPDATE locks the token's row; a concurrent use of the same token waits for it and then
// re-checks its WHERE against the committed row (READ COMMITTED), so a replayed count passes once only.
func (db *DB) UseFastToken(ctx context.Context, account, client string, key []byte, count uint32) (bool, error) {
	ok := false
	err := db.write(ctx, func(tx pgx.Tx) error {
		var pending bool
		err := tx.QueryRow(ctx, `UPDATE fast_tokens SET count = greatest(count, $1)
			WHERE bare = $2 AND client = $3 AND key = $4 AND ($1 = 0 OR count < $1) RETURNING pending`,
			int64(count), account, client, nonNil(key)).Scan(&pending)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // no such token, or a replayed count
		}
		if err != nil {
			return wrap("use fast token", err)
		}
		ok = true
		if pending {
			// The pending token was used: it becomes the one in use, and the one it replaces dies (XEP-0484 §4.5).
			if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE bare = $1 AND client = $2 AND NOT pending`, account, client); err != nil {
				return wrap("use fast token", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE fast_tokens SET pending = false WHERE bare = $1 AND client = $2 AND pending`, account, client); err != nil {
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
		_, err = db.pool.Exec(ctx, `DELETE FROM fast_tokens WHERE bare = $1`, account)
	} else {
		_, err = db.pool.Exec(ctx, `DELETE FROM fast_tokens WHERE bare = $1 AND client = $2`, account, client)
	}
	return wrap("delete fast tokens", err)
}
