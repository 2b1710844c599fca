package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// SetLastPresence implements storage.Presence.
func (db *DB) SetLastPresence(ctx context.Context, owner, stanza string, at time.Time) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO last_presence (owner, stanza, at) VALUES (?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET stanza = excluded.stanza, at = excluded.at`,
		owner, stanza, micro(at))
	return wrap("set last presence", err)
}

// LastPresence implements storage.Presence.
func (db *DB) LastPresence(ctx context.Context, owner string) (string, time.Time, error) {
	var (
		stanza string
		us     int64
	)
	err := db.queryRow(ctx, `SELECT stanza, at FROM last_presence WHERE owner = ?`, owner).Scan(&stanza, &us)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", time.Time{}, fmt.Errorf("%w: last presence of %s", storage.ErrNotFound, owner)
	case err != nil:
		return "", time.Time{}, wrap("last presence", err)
	}
	return stanza, fromMicro(us), nil
}
