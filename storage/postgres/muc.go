package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// MUCRooms implements storage.MUC.
func (db *DB) MUCRooms(ctx context.Context, service string) ([]storage.MUCRoom, error) {
	rows, err := db.pool.Query(ctx, `SELECT room, config, created FROM muc_rooms WHERE service = $1 ORDER BY room`, service)
	if err != nil {
		return nil, wrap("muc rooms", err)
	}
	defer rows.Close()
	out := []storage.MUCRoom{}
	for rows.Next() {
		var r storage.MUCRoom
		if err := rows.Scan(&r.Room, &r.Config, &r.Created); err != nil {
			return nil, wrap("muc rooms", err)
		}
		r.Created = utc(r.Created)
		out = append(out, r)
	}
	return out, wrap("muc rooms", rows.Err())
}

// MUCRoom implements storage.MUC.
func (db *DB) MUCRoom(ctx context.Context, service, room string) (storage.MUCRoom, error) {
	r := storage.MUCRoom{Room: room}
	err := db.pool.QueryRow(ctx, `SELECT config, created FROM muc_rooms WHERE service = $1 AND room = $2`, service, room).
		Scan(&r.Config, &r.Created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.MUCRoom{}, fmt.Errorf("%w: muc room %s %s", storage.ErrNotFound, service, room)
	case err != nil:
		return storage.MUCRoom{}, wrap("muc room", err)
	}
	r.Created = utc(r.Created)
	return r, nil
}

// PutMUCRoom implements storage.MUC.
func (db *DB) PutMUCRoom(ctx context.Context, service string, r storage.MUCRoom) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO muc_rooms (service, room, config, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (service, room) DO UPDATE SET config = excluded.config`,
		service, r.Room, r.Config, r.Created)
	return wrap("put muc room", err)
}

// DeleteMUCRoom implements storage.MUC (the affiliations go with the room: ON DELETE CASCADE).
func (db *DB) DeleteMUCRoom(ctx context.Context, service, room string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM muc_rooms WHERE service = $1 AND room = $2`, service, room)
	return wrap("delete muc room", err)
}

// MUCAffiliations implements storage.MUC.
func (db *DB) MUCAffiliations(ctx context.Context, service, room string) ([]storage.MUCAffiliation, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT jid, affiliation, nick, reason FROM muc_affiliations WHERE service = $1 AND room = $2 ORDER BY jid`, service, room)
	if err != nil {
		return nil, wrap("muc affiliations", err)
	}
	defer rows.Close()
	out := []storage.MUCAffiliation{}
	for rows.Next() {
		var a storage.MUCAffiliation
		if err := rows.Scan(&a.JID, &a.Affiliation, &a.Nick, &a.Reason); err != nil {
			return nil, wrap("muc affiliations", err)
		}
		out = append(out, a)
	}
	return out, wrap("muc affiliations", rows.Err())
}

// PutMUCAffiliation implements storage.MUC. The room's row is locked FOR SHARE: a concurrent DeleteMUCRoom
// waits, so no affiliation outlives its room's check.
func (db *DB) PutMUCAffiliation(ctx context.Context, service, room string, a storage.MUCAffiliation) error {
	return wrap("put muc affiliation", db.write(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM muc_rooms WHERE service = $1 AND room = $2 FOR SHARE`, service, room).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: muc room %s %s", storage.ErrNotFound, service, room)
		}
		if err != nil {
			return err
		}
		if (a.Affiliation == "" || a.Affiliation == "none") && a.Nick == "" {
			_, err = tx.Exec(ctx, `DELETE FROM muc_affiliations WHERE service = $1 AND room = $2 AND jid = $3`, service, room, a.JID)
			return err
		}
		if a.Affiliation == "" {
			a.Affiliation = "none"
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO muc_affiliations (service, room, jid, affiliation, nick, reason) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (service, room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
			service, room, a.JID, a.Affiliation, a.Nick, a.Reason)
		return err
	}))
}
