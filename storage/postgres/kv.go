package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// GetKV implements storage.KV.
func (db *DB) GetKV(ctx context.Context, owner, ns, key string) (string, error) {
	var v string
	err := db.pool.QueryRow(ctx, `SELECT value FROM kv WHERE owner = $1 AND ns = $2 AND key = $3`, owner, ns, key).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("%w: %s {%s}%s", storage.ErrNotFound, owner, ns, key)
	case err != nil:
		return "", wrap("get kv", err)
	}
	return v, nil
}

// PutKV implements storage.KV.
func (db *DB) PutKV(ctx context.Context, owner, ns, key, value string) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO kv (owner, ns, key, value) VALUES ($1, $2, $3, $4)
		ON CONFLICT (owner, ns, key) DO UPDATE SET value = excluded.value`,
		owner, ns, key, value)
	return wrap("put kv", err)
}

// PutKVIfAbsent implements storage.KV. ON CONFLICT DO NOTHING returns no row when another writer's insert won;
// the value is then read after it (READ COMMITTED: the winner's row is committed once the conflict is seen).
func (db *DB) PutKVIfAbsent(ctx context.Context, owner, ns, key, value string) (string, error) {
	var stored string
	err := db.pool.QueryRow(ctx, `INSERT INTO kv (owner, ns, key, value) VALUES ($1, $2, $3, $4)
		ON CONFLICT (owner, ns, key) DO NOTHING RETURNING value`, owner, ns, key, value).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		err = db.pool.QueryRow(ctx, `SELECT value FROM kv WHERE owner = $1 AND ns = $2 AND key = $3`, owner, ns, key).Scan(&stored)
	}
	return stored, wrap("put kv if absent", err)
}

// DeleteKV implements storage.KV.
func (db *DB) DeleteKV(ctx context.Context, owner, ns, key string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM kv WHERE owner = $1 AND ns = $2 AND key = $3`, owner, ns, key)
	return wrap("delete kv", err)
}

// ListKV implements storage.KV.
func (db *DB) ListKV(ctx context.Context, owner, ns string) (map[string]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT key, value FROM kv WHERE owner = $1 AND ns = $2`, owner, ns)
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
