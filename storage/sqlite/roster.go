package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/xmppd/xmppd/storage"
)

// sqlRoster reads the version and all items in one statement, so they come
// from the same snapshot: a roster paired with the wrong version would let a
// client cache a state under a version that never had it (RFC 6121 §2.6).
// No row means the roster was never written.
const sqlRoster = `
SELECT v.version, i.jid, i.name, i.groups, i.subscription, i.ask, i.pending_in, i.pending_in_stanza, i.pre_approved
FROM roster_versions v LEFT JOIN roster_items i ON i.owner = v.owner
WHERE v.owner = ?
ORDER BY i.jid`

const sqlPutRoster = `
INSERT INTO roster_items (owner, jid, name, groups, subscription, ask, pending_in, pending_in_stanza, pre_approved)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (owner, jid) DO UPDATE SET
	name = excluded.name,
	groups = excluded.groups,
	subscription = excluded.subscription,
	ask = excluded.ask,
	pending_in = excluded.pending_in,
	pending_in_stanza = excluded.pending_in_stanza,
	pre_approved = excluded.pre_approved`

const sqlBumpVersion = `UPDATE counters SET value = value + 1 WHERE name = 'roster_version' RETURNING value`

const sqlSetVersion = `
INSERT INTO roster_versions (owner, version) VALUES (?, ?)
ON CONFLICT (owner) DO UPDATE SET version = excluded.version`

// Roster implements storage.Rosters.
func (db *DB) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	rows, err := db.roster.QueryContext(ctx, owner)
	if err != nil {
		return nil, 0, wrap("roster", err)
	}
	defer rows.Close()
	var (
		items   []storage.RosterItem
		version int64
	)
	for rows.Next() {
		var (
			jid, name, groups, sub, pendingStanza sql.NullString
			ask, pendingIn, preApproved           sql.NullBool
		)
		if err := rows.Scan(&version, &jid, &name, &groups, &sub, &ask, &pendingIn, &pendingStanza, &preApproved); err != nil {
			return nil, 0, wrap("roster", err)
		}
		if !jid.Valid {
			continue // roster written before, no items now
		}
		it := storage.RosterItem{
			JID:             jid.String,
			Name:            name.String,
			Subscription:    sub.String,
			Ask:             ask.Bool,
			PendingIn:       pendingIn.Bool,
			PendingInStanza: pendingStanza.String,
			PreApproved:     preApproved.Bool,
		}
		if groups.String != "[]" {
			if err := json.Unmarshal([]byte(groups.String), &it.Groups); err != nil {
				return nil, 0, fmt.Errorf("sqlite: roster %s item %s: groups: %w", owner, it.JID, err)
			}
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap("roster", err)
	}
	return items, version, nil
}

// PutRosterItem implements storage.Rosters.
func (db *DB) PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (int64, error) {
	it, err := storage.NormalizeRosterItem(it)
	if err != nil {
		return 0, err
	}
	groups := []byte("[]")
	if it.Groups != nil {
		if groups, err = json.Marshal(it.Groups); err != nil {
			return 0, fmt.Errorf("sqlite: roster groups: %w", err)
		}
	}
	var version int64
	err = db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.putRoster).ExecContext(ctx,
			owner, it.JID, it.Name, string(groups), it.Subscription,
			boolInt(it.Ask), boolInt(it.PendingIn), it.PendingInStanza, boolInt(it.PreApproved))
		if err != nil {
			return wrap("put roster item", err)
		}
		version, err = db.bump(ctx, tx, owner)
		return err
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// DeleteRosterItem implements storage.Rosters.
func (db *DB) DeleteRosterItem(ctx context.Context, owner, jid string) (int64, error) {
	var version int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM roster_items WHERE owner = ? AND jid = ?`, owner, jid)
		if err != nil {
			return wrap("delete roster item", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrap("delete roster item", err)
		} else if n == 0 {
			return fmt.Errorf("%w: roster item %s of %s", storage.ErrNotFound, jid, owner)
		}
		version, err = db.bump(ctx, tx, owner)
		return err
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// bump gives owner's roster the next value of the global version counter.
func (db *DB) bump(ctx context.Context, tx *sql.Tx, owner string) (int64, error) {
	var v int64
	if err := tx.StmtContext(ctx, db.bumpVersion).QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, wrap("roster version", err)
	}
	if _, err := tx.StmtContext(ctx, db.setVersion).ExecContext(ctx, owner, v); err != nil {
		return 0, wrap("roster version", err)
	}
	return v, nil
}
