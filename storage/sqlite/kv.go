package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/xmppd/xmppd/storage"
)

const sqlGetKV = `SELECT value FROM kv WHERE owner = ? AND ns = ? AND key = ?`

// GetKV implements storage.KV.
func (db *DB) GetKV(ctx context.Context, owner, ns, key string) (string, error) {
	var v string
	err := db.getKV.QueryRowContext(ctx, owner, ns, key).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", fmt.Errorf("%w: %s {%s}%s", storage.ErrNotFound, owner, ns, key)
	case err != nil:
		return "", wrap("get kv", err)
	}
	return v, nil
}

// PutKV implements storage.KV.
func (db *DB) PutKV(ctx context.Context, owner, ns, key, value string) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO kv (owner, ns, key, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (owner, ns, key) DO UPDATE SET value = excluded.value`,
		owner, ns, key, value)
	return wrap("put kv", err)
}

// PutKVIfAbsent implements storage.KV: the insert and the read in one transaction of the single writer.
func (db *DB) PutKVIfAbsent(ctx context.Context, owner, ns, key, value string) (string, error) {
	var stored string
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kv (owner, ns, key, value) VALUES (?, ?, ?, ?)
			ON CONFLICT (owner, ns, key) DO NOTHING`, owner, ns, key, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM kv WHERE owner = ? AND ns = ? AND key = ?`, owner, ns, key).Scan(&stored)
	})
	return stored, wrap("put kv if absent", err)
}

// DeleteKV implements storage.KV.
func (db *DB) DeleteKV(ctx context.Context, owner, ns, key string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM kv WHERE owner = ? AND ns = ? AND key = ?`, owner, ns, key)
	return wrap("delete kv", err)
}

// ListKV implements storage.KV.
func (db *DB) ListKV(ctx context.Context, owner, ns string) (map[string]string, error) {
	rows, err := db.query(ctx, `SELECT key, value FROM kv WHERE owner = ? AND ns = ?`, owner, ns)
	if err != nil {
		return nil, wrap("list kv", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, wrap("list kv", err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list kv", err)
	}
	return out, nil
}
