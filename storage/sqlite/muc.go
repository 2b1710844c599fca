package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/xmppd/xmppd/storage"
)

// MUCRooms implements storage.MUC.
func (db *DB) MUCRooms(ctx context.Context, service string) ([]storage.MUCRoom, error) {
	rows, err := db.query(ctx, `SELECT room, config, created FROM muc_rooms WHERE service = ? ORDER BY room`, service)
	if err != nil {
		return nil, wrap("muc rooms", err)
	}
	defer rows.Close()
	out := []storage.MUCRoom{}
	for rows.Next() {
		var r storage.MUCRoom
		var created int64
		if err := rows.Scan(&r.Room, &r.Config, &created); err != nil {
			return nil, wrap("muc rooms", err)
		}
		r.Created = fromMicro(created)
		out = append(out, r)
	}
	return out, wrap("muc rooms", rows.Err())
}

// MUCRoom implements storage.MUC.
func (db *DB) MUCRoom(ctx context.Context, service, room string) (storage.MUCRoom, error) {
	r := storage.MUCRoom{Room: room}
	var created int64
	err := db.queryRow(ctx, `SELECT config, created FROM muc_rooms WHERE service = ? AND room = ?`, service, room).
		Scan(&r.Config, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.MUCRoom{}, fmt.Errorf("%w: muc room %s %s", storage.ErrNotFound, service, room)
	case err != nil:
		return storage.MUCRoom{}, wrap("muc room", err)
	}
	r.Created = fromMicro(created)
	return r, nil
}

// PutMUCRoom implements storage.MUC.
func (db *DB) PutMUCRoom(ctx context.Context, service string, r storage.MUCRoom) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO muc_rooms (service, room, config, created) VALUES (?, ?, ?, ?)
		ON CONFLICT (service, room) DO UPDATE SET config = excluded.config`,
		service, r.Room, r.Config, micro(r.Created))
	return wrap("put muc room", err)
}

// DeleteMUCRoom implements storage.MUC (the affiliations go with the room: foreign keys are on).
func (db *DB) DeleteMUCRoom(ctx context.Context, service, room string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM muc_rooms WHERE service = ? AND room = ?`, service, room)
	return wrap("delete muc room", err)
}

// MUCAffiliations implements storage.MUC.
func (db *DB) MUCAffiliations(ctx context.Context, service, room string) ([]storage.MUCAffiliation, error) {
	rows, err := db.query(ctx,
		`SELECT jid, affiliation, nick, reason FROM muc_affiliations WHERE service = ? AND room = ? ORDER BY jid`, service, room)
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

// PutMUCAffiliation implements storage.MUC.
func (db *DB) PutMUCAffiliation(ctx context.Context, service, room string, a storage.MUCAffiliation) error {
	return wrap("put muc affiliation", db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM muc_rooms WHERE service = ? AND room = ?`, service, room).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: muc room %s %s", storage.ErrNotFound, service, room)
		}
		if err != nil {
			return err
		}
		if (a.Affiliation == "" || a.Affiliation == "none") && a.Nick == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE service = ? AND room = ? AND jid = ?`, service, room, a.JID)
			return err
		}
		if a.Affiliation == "" {
			a.Affiliation = "none"
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO muc_affiliations (service, room, jid, affiliation, nick, reason) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (service, room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
			service, room, a.JID, a.Affiliation, a.Nick, a.Reason)
		return err
	}))
}
