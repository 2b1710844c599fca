package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// SetLastPresence implements storage.Presence.
func (db *DB) SetLastPresence(ctx context.Context, owner, stanza string, at time.Time) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO last_presence (owner, stanza, at) VALUES ($1, $2, $3)
		ON CONFLICT (owner) DO UPDATE SET stanza = excluded.stanza, at = excluded.at`,
		owner, stanza, at)
	return wrap("set last presence", err)
}

// LastPresence implements storage.Presence.
func (db *DB) LastPresence(ctx context.Context, owner string) (string, time.Time, error) {
	var (
		stanza string
		at     time.Time
	)
	err := db.pool.QueryRow(ctx, `SELECT stanza, at FROM last_presence WHERE owner = $1`, owner).Scan(&stanza, &at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", time.Time{}, fmt.Errorf("%w: last presence of %s", storage.ErrNotFound, owner)
	case err != nil:
		return "", time.Time{}, wrap("last presence", err)
	}
	return stanza, utc(at), nil
}
