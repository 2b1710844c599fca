package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// sqlCredentials distinguishes "no account" (no row) from "account without credentials" (one row of NULLs)
// in one statement, hence one snapshot.
const sqlCredentials = `
SELECT c.hash, c.salt, c.iterations, c.stored_key, c.server_key
FROM accounts a LEFT JOIN credentials c ON c.bare = a.bare
WHERE a.bare = $1
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
	return db.write(ctx, func(tx pgx.Tx) error {
		// ON CONFLICT DO NOTHING: a concurrent creator of the same account (another node) makes this one insert
		// nothing once the other commits, rather than fail with a unique violation.
		tag, err := tx.Exec(ctx,
			`INSERT INTO accounts (bare, domain, created) VALUES ($1, $2, $3) ON CONFLICT (bare) DO NOTHING`,
			bare, domain, time.Now())
		if err != nil {
			return wrap("create account", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: account %s", storage.ErrExists, bare)
		}
		return insertCredentials(ctx, tx, bare, creds)
	})
}

func insertCredentials(ctx context.Context, tx pgx.Tx, bare string, creds []storage.Credential) error {
	for i, c := range creds {
		_, err := tx.Exec(ctx,
			`INSERT INTO credentials (bare, pos, hash, salt, iterations, stored_key, server_key) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			bare, i, c.Hash, nonNil(c.Salt), c.Iterations, nonNil(c.StoredKey), nonNil(c.ServerKey))
		if err != nil {
			return wrap("store credentials", err)
		}
	}
	return nil
}

// nonNil: pgx binds a nil []byte as NULL, which the NOT NULL bytea columns reject; an empty value is what the
// caller meant.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Credentials implements storage.Accounts.
func (db *DB) Credentials(ctx context.Context, bare string) ([]storage.Credential, error) {
	rows, err := db.pool.Query(ctx, sqlCredentials, bare)
	if err != nil {
		return nil, wrap("credentials", err)
	}
	defer rows.Close()
	found := false
	var creds []storage.Credential
	for rows.Next() {
		found = true
		var (
			hash       *string
			iterations *int
			c          storage.Credential
		)
		if err := rows.Scan(&hash, &c.Salt, &iterations, &c.StoredKey, &c.ServerKey); err != nil {
			return nil, wrap("credentials", err)
		}
		if hash == nil {
			continue // the account exists but has no credentials
		}
		c.Hash, c.Iterations = *hash, *iterations
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

// SetCredentials implements storage.Accounts. The account row is locked first, so two nodes replacing the
// credentials at once take turns instead of colliding on (bare, pos).
func (db *DB) SetCredentials(ctx context.Context, bare string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return err
	}
	return db.write(ctx, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, bare, "FOR UPDATE"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE bare = $1`, bare); err != nil {
			return wrap("set credentials", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE bare = $1`, bare); err != nil {
			return wrap("set credentials", err)
		}
		return insertCredentials(ctx, tx, bare, creds)
	})
}

// lockAccount locks the account's row (mode "FOR UPDATE" or "FOR SHARE") until the end of the transaction;
// ErrNotFound if there is none.
func lockAccount(ctx context.Context, tx pgx.Tx, bare, mode string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE bare = $1 `+mode, bare).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: account %s", storage.ErrNotFound, bare)
	}
	return wrap("account", err)
}

// DeleteAccount implements storage.Accounts. Credentials and FAST tokens go by the foreign key cascade; the
// per-user tables are keyed by owner without a foreign key (they may hold data for JIDs that are not local
// accounts), so they are deleted explicitly, in the same transaction.
func (db *DB) DeleteAccount(ctx context.Context, bare string) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE bare = $1`, bare)
		if err != nil {
			return wrap("delete account", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: account %s", storage.ErrNotFound, bare)
		}
		for _, q := range []string{
			`DELETE FROM roster_items WHERE owner = $1`,
			`DELETE FROM roster_versions WHERE owner = $1`,
			`DELETE FROM offline WHERE owner = $1`,
			`DELETE FROM last_presence WHERE owner = $1`,
			`DELETE FROM kv WHERE owner = $1`,
			`DELETE FROM pubsub_nodes WHERE service = $1`, // the account's PEP service; items and members cascade
			`DELETE FROM mam WHERE owner = $1`,
			`DELETE FROM mam_prefs WHERE owner = $1`,
			`DELETE FROM mam_counts WHERE owner = $1`,
		} {
			if _, err := tx.Exec(ctx, q, bare); err != nil {
				return wrap("delete account", err)
			}
		}
		return nil
	})
}

// ListAccounts implements storage.Accounts. bare is COLLATE "C": bytewise, Go's string order.
func (db *DB) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if domain == "" {
		rows, err = db.pool.Query(ctx, `SELECT bare FROM accounts ORDER BY bare`)
	} else {
		rows, err = db.pool.Query(ctx, `SELECT bare FROM accounts WHERE domain = $1 ORDER BY bare`, domain)
	}
	if err != nil {
		return nil, wrap("list accounts", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(out) == 0 {
		out = nil
	}
	return out, wrap("list accounts", err)
}

// CountAccounts implements storage.Accounts.
func (db *DB) CountAccounts(ctx context.Context, domain string) (int, error) {
	var n int
	var err error
	if domain == "" {
		err = db.pool.QueryRow(ctx, `SELECT count(*) FROM accounts`).Scan(&n)
	} else {
		err = db.pool.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE domain = $1`, domain).Scan(&n)
	}
	return n, wrap("count accounts", err)
}
