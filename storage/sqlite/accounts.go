package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// sqlCredentials distinguishes "no account" (no row) from "account without
// credentials" (one row of NULLs) in one statement, hence one snapshot.
const sqlCredentials = `
SELECT c.hash, c.salt, c.iterations, c.stored_key, c.server_key
FROM accounts a LEFT JOIN credentials c ON c.bare = a.bare
WHERE a.bare = ?
ORDER BY c.pos`

// CreateAccount implements storage.Accounts.
func (db *DB) CreateAccount(ctx context.Context, bare string, creds []storage.Credential) error {
	domain, err := storage.AccountDomain(bare)
	if err != nil {
		return err
	}
	if err := storage.CheckCredentials(creds); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO accounts (bare, domain, created) VALUES (?, ?, ?) ON CONFLICT (bare) DO NOTHING`,
			bare, domain, micro(time.Now()))
		if err != nil {
			return wrap("create account", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap("create account", err)
		} else if n == 0 {
			return fmt.Errorf("%w: account %s", storage.ErrExists, bare)
		}
		return insertCredentials(ctx, tx, bare, creds)
	})
}

func insertCredentials(ctx context.Context, tx *sql.Tx, bare string, creds []storage.Credential) error {
	for i, c := range creds {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO credentials (bare, pos, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			bare, i, c.Hash, nonNil(c.Salt), c.Iterations, nonNil(c.StoredKey), nonNil(c.ServerKey))
		if err != nil {
			return wrap("store credentials", err)
		}
	}
	return nil
}

// nonNil: the driver binds a nil []byte as NULL, which the NOT NULL BLOB
// columns reject; an empty value is what the caller meant.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Credentials implements storage.Accounts.
func (db *DB) Credentials(ctx context.Context, bare string) ([]storage.Credential, error) {
	rows, err := db.credentials.QueryContext(ctx, bare)
	if err != nil {
		return nil, wrap("credentials", err)
	}
	defer rows.Close()
	found := false
	var creds []storage.Credential
	for rows.Next() {
		found = true
		var (
			hash       sql.NullString
			iterations sql.NullInt64
			c          storage.Credential
		)
		if err := rows.Scan(&hash, &c.Salt, &iterations, &c.StoredKey, &c.ServerKey); err != nil {
			return nil, wrap("credentials", err)
		}
		if !hash.Valid {
			continue // the account exists but has no credentials
		}
		c.Hash, c.Iterations = hash.String, int(iterations.Int64)
		creds = append(creds, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("credentials", err)
	}
	if !found {
		return nil, fmt.Errorf("%w: account %s", storage.ErrNotFound, bare)
	}
	return creds, nil
}

// SetCredentials implements storage.Accounts.
func (db *DB) SetCredentials(ctx context.Context, bare string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return err
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := accountExists(ctx, tx, bare); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE bare = ?`, bare); err != nil {
			return wrap("set credentials", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE bare = ?`, bare); err != nil {
			return wrap("set credentials", err)
		}
		return insertCredentials(ctx, tx, bare, creds)
	})
}

func accountExists(ctx context.Context, tx *sql.Tx, bare string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE bare = ?`, bare).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: account %s", storage.ErrNotFound, bare)
	}
	return wrap("account", err)
}

// DeleteAccount implements storage.Accounts. Credentials go by the foreign
// key cascade; the per-user tables are keyed by owner without a foreign key
// (they may hold data for JIDs that are not local accounts, and the caller
// decides that), so they are deleted explicitly, in the same transaction.
func (db *DB) DeleteAccount(ctx context.Context, bare string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE bare = ?`, bare)
		if err != nil {
			return wrap("delete account", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap("delete account", err)
		} else if n == 0 {
			return fmt.Errorf("%w: account %s", storage.ErrNotFound, bare)
		}
		for _, q := range []string{
			`DELETE FROM roster_items WHERE owner = ?`,
			`DELETE FROM roster_versions WHERE owner = ?`,
			`DELETE FROM offline WHERE owner = ?`,
			`DELETE FROM last_presence WHERE owner = ?`,
			`DELETE FROM kv WHERE owner = ?`,
			`DELETE FROM pubsub_nodes WHERE service = ?`, // the account's PEP service; items and members cascade
			`DELETE FROM mam WHERE owner = ?`,
			`DELETE FROM mam_prefs WHERE owner = ?`,
			`DELETE FROM mam_counts WHERE owner = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, bare); err != nil {
				return wrap("delete account", err)
			}
		}
		return nil
	})
}

// ListAccounts implements storage.Accounts. ORDER BY uses SQLite's default
// BINARY collation: bytewise, the same order as Go's string comparison.
func (db *DB) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if domain == "" {
		rows, err = db.query(ctx, `SELECT bare FROM accounts ORDER BY bare`)
	} else {
		rows, err = db.query(ctx, `SELECT bare FROM accounts WHERE domain = ? ORDER BY bare`, domain)
	}
	if err != nil {
		return nil, wrap("list accounts", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, wrap("list accounts", err)
		}
		out = append(out, b)
	}
	return out, wrap("list accounts", rows.Err())
}

// CountAccounts implements storage.Accounts.
func (db *DB) CountAccounts(ctx context.Context, domain string) (int, error) {
	var n int
	var err error
	if domain == "" {
		err = db.queryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n)
	} else {
		err = db.queryRow(ctx, `SELECT count(*) FROM accounts WHERE domain = ?`, domain).Scan(&n)
	}
	return n, wrap("count accounts", err)
}
