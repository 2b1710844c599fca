package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// sqlRoster reads the version and all items in one statement, so they come from the same snapshot: a roster
// paired with the wrong version would let a client cache a state under a version that never had it
// (RFC 6121 §2.6). No row means the roster was never written.
const sqlRoster = `
SELECT v.version, i.jid, i.name, i.groups, i.subscription, i.ask, i.pending_in, i.pending_in_stanza, i.pre_approved
FROM roster_versions v LEFT JOIN roster_items i ON i.owner = v.owner
WHERE v.owner = $1
ORDER BY i.jid`

const sqlPutRoster = `
INSERT INTO roster_items (owner, jid, name, groups, subscription, ask, pending_in, pending_in_stanza, pre_approved)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (owner, jid) DO UPDATE SET
	name = excluded.name,
	groups = excluded.groups,
	subscription = excluded.subscription,
	ask = excluded.ask,
	pending_in = excluded.pending_in,
	pending_in_stanza = excluded.pending_in_stanza,
	pre_approved = excluded.pre_approved`

// sqlBump gives the owner's roster the next value of the global sequence. The upsert locks the owner's row
// until commit; a concurrent writer of the same roster (any node) blocks here and, once this transaction
// commits, evaluates nextval after it: the version it commits is larger, so no bump is lost or reordered. On
// the insert path, two first writers meet on the primary key: the second waits for the first to commit and
// takes the update path.
const sqlBump = `
INSERT INTO roster_versions (owner, version) VALUES ($1, nextval('roster_version_seq'))
ON CONFLICT (owner) DO UPDATE SET version = nextval('roster_version_seq')
RETURNING version`

// Roster implements storage.Rosters.
func (db *DB) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	rows, err := db.pool.Query(ctx, sqlRoster, owner)
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
			jid, name, sub, pendingStanza *string
			groups                        []string
			ask, pendingIn, preApproved   *bool
		)
		if err := rows.Scan(&version, &jid, &name, &groups, &sub, &ask, &pendingIn, &pendingStanza, &preApproved); err != nil {
			return nil, 0, wrap("roster", err)
		}
		if jid == nil {
			continue // roster written before, no items now
		}
		it := storage.RosterItem{
			JID:             *jid,
			Name:            *name,
			Subscription:    *sub,
			Ask:             *ask,
			PendingIn:       *pendingIn,
			PendingInStanza: *pendingStanza,
			PreApproved:     *preApproved,
		}
		if len(groups) > 0 {
			it.Groups = groups
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap("roster", err)
	}
	return items, version, nil
}

// PutRosterItem implements storage.Rosters. The version is bumped first, which takes the roster's lock before
// the item is written (see sqlBump): one owner's writers are serialised from their first statement.
func (db *DB) PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (int64, error) {
	it, err := storage.NormalizeRosterItem(it)
	if err != nil {
		return 0, err
	}
	groups := it.Groups
	if groups == nil {
		groups = []string{} // NOT NULL; read back as nil
	}
	var version int64
	err = db.write(ctx, func(tx pgx.Tx) error {
		if version, err = bump(ctx, tx, owner); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlPutRoster,
			owner, it.JID, it.Name, groups, it.Subscription, it.Ask, it.PendingIn, it.PendingInStanza, it.PreApproved)
		return wrap("put roster item", err)
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// DeleteRosterItem implements storage.Rosters. An absent item rolls the transaction back, bump included: the
// version stays (the sequence value is skipped, never reused).
func (db *DB) DeleteRosterItem(ctx context.Context, owner, jid string) (int64, error) {
	var version int64
	err := db.write(ctx, func(tx pgx.Tx) error {
		var err error
		if version, err = bump(ctx, tx, owner); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM roster_items WHERE owner = $1 AND jid = $2`, owner, jid)
		if err != nil {
			return wrap("delete roster item", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: roster item %s of %s", storage.ErrNotFound, jid, owner)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

func bump(ctx context.Context, tx pgx.Tx, owner string) (int64, error) {
	var v int64
	if err := tx.QueryRow(ctx, sqlBump, owner).Scan(&v); err != nil {
		return 0, wrap("roster version", err)
	}
	return v, nil
}
