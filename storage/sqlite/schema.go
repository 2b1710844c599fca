package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] takes the schema from version i to version i+1. Append only:
// a released migration is never edited, because databases in the field have
// already run it. Each runs in the same transaction as the version update, so
// a crash mid-migration leaves the previous version intact.
//
// Tables are STRICT so a type mix-up is an error rather than silent
// coercion. Times are INTEGER Unix microseconds.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE accounts (
	bare    TEXT PRIMARY KEY,
	domain  TEXT NOT NULL,
	created INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX accounts_by_domain ON accounts (domain, bare);

-- pos keeps the order credentials were given in; UNIQUE (bare, hash) backs
-- storage.CheckCredentials.
CREATE TABLE credentials (
	bare       TEXT NOT NULL REFERENCES accounts (bare) ON DELETE CASCADE,
	pos        INTEGER NOT NULL,
	hash       TEXT NOT NULL,
	salt       BLOB NOT NULL,
	iterations INTEGER NOT NULL,
	stored_key BLOB NOT NULL,
	server_key BLOB NOT NULL,
	PRIMARY KEY (bare, pos),
	UNIQUE (bare, hash)
) STRICT, WITHOUT ROWID;

-- WITHOUT ROWID clusters a roster's items together on disk: Roster() reads
-- one contiguous range. groups is a JSON array of strings.
CREATE TABLE roster_items (
	owner             TEXT NOT NULL,
	jid               TEXT NOT NULL,
	name              TEXT NOT NULL,
	groups            TEXT NOT NULL,
	subscription      TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	ask               INTEGER NOT NULL,
	pending_in        INTEGER NOT NULL,
	pending_in_stanza TEXT NOT NULL,
	pre_approved      INTEGER NOT NULL,
	PRIMARY KEY (owner, jid)
) STRICT, WITHOUT ROWID;

-- A row exists once the owner's roster was first written. Versions come from
-- the global counter below, so they are never reused for an owner, even when
-- the account is deleted and created again (see package storage).
CREATE TABLE roster_versions (
	owner   TEXT PRIMARY KEY,
	version INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('roster_version', 0);

-- AUTOINCREMENT, not a plain rowid: a plain rowid reuses max(id)+1 after the
-- newest rows are deleted, and then DeleteOffline(upToID) from a stale read
-- could delete a message that arrived later with a recycled id.
CREATE TABLE offline (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	owner  TEXT NOT NULL,
	stanza TEXT NOT NULL,
	stamp  INTEGER NOT NULL
) STRICT;
CREATE INDEX offline_by_owner ON offline (owner, id);

CREATE TABLE last_presence (
	owner  TEXT PRIMARY KEY,
	stanza TEXT NOT NULL,
	at     INTEGER NOT NULL
) STRICT;

-- A rowid table, unlike the small-row tables above: values can be large
-- (a vCard with a photo), and WITHOUT ROWID suits small rows only.
CREATE TABLE kv (
	owner TEXT NOT NULL,
	ns    TEXT NOT NULL,
	key   TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (owner, ns, key)
) STRICT;
`,
	// 2: publish-subscribe (XEP-0060 / XEP-0163 PEP). Items and members go with their node (foreign keys are on).
	// seq orders a node's items by publication: republishing an id takes a new seq, so it becomes the newest.
	`
CREATE TABLE pubsub_nodes (
	service TEXT NOT NULL,
	node    TEXT NOT NULL,
	config  TEXT NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (service, node)
) STRICT, WITHOUT ROWID;

CREATE TABLE pubsub_items (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	service   TEXT NOT NULL,
	node      TEXT NOT NULL,
	id        TEXT NOT NULL,
	publisher TEXT NOT NULL,
	payload   TEXT NOT NULL,
	published INTEGER NOT NULL,
	UNIQUE (service, node, id),
	FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE
) STRICT;
CREATE INDEX pubsub_items_by_node ON pubsub_items (service, node, seq);

CREATE TABLE pubsub_members (
	service      TEXT NOT NULL,
	node         TEXT NOT NULL,
	jid          TEXT NOT NULL,
	affiliation  TEXT NOT NULL,
	subscription TEXT NOT NULL,
	subid        TEXT NOT NULL,
	options      TEXT NOT NULL,
	PRIMARY KEY (service, node, jid),
	FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
`,
	// 3: XEP-0484 FAST tokens, at most one pending and one in use per client. key is the HMAC key (a digest of
	// the token), never the token.
	`
CREATE TABLE fast_tokens (
	bare      TEXT NOT NULL REFERENCES accounts (bare) ON DELETE CASCADE,
	client    TEXT NOT NULL,
	pending   INTEGER NOT NULL CHECK (pending IN (0, 1)),
	key       BLOB NOT NULL,
	mechanism TEXT NOT NULL,
	expiry    INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	PRIMARY KEY (bare, client, pending)
) STRICT, WITHOUT ROWID;
`,
	// 4: multi-user chat (XEP-0045): persistent rooms and their affiliations (with reserved nicks).
	`
CREATE TABLE muc_rooms (
	service TEXT NOT NULL,
	room    TEXT NOT NULL,
	config  TEXT NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (service, room)
) STRICT, WITHOUT ROWID;

CREATE TABLE muc_affiliations (
	service     TEXT NOT NULL,
	room        TEXT NOT NULL,
	jid         TEXT NOT NULL,
	affiliation TEXT NOT NULL,
	nick        TEXT NOT NULL,
	reason      TEXT NOT NULL,
	PRIMARY KEY (service, room, jid),
	FOREIGN KEY (service, room) REFERENCES muc_rooms (service, room) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
`,
	// 5: the message archive (XEP-0313). A page is read in (stamp, seq) order, the archive's chronological
	// order: by_time serves queries without 'with', by_with those with one, so a page costs the rows it returns
	// (plus one index probe per id bound), whatever the archive's size. seq is AUTOINCREMENT so that a
	// trimmed archive never hands out a position twice.
	`
CREATE TABLE mam (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	owner     TEXT NOT NULL,
	id        TEXT NOT NULL,
	with_full TEXT NOT NULL,
	with_bare TEXT NOT NULL,
	stamp     INTEGER NOT NULL,
	stanza    TEXT NOT NULL,
	UNIQUE (owner, id)
) STRICT;
CREATE INDEX mam_by_time ON mam (owner, stamp, seq);
CREATE INDEX mam_by_with ON mam (owner, with_bare, stamp, seq);

-- The size of each archive, updated in the same transaction as the rows (once per batch, not by a trigger per
-- row: a trigger makes every insert open a statement journal): the RSM <count/> of a query without bounds (a
-- client's first sync asks for the last page of everything) is then one row, not a walk of the whole archive.
CREATE TABLE mam_counts (
	owner TEXT PRIMARY KEY,
	n     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE mam_prefs (
	owner   TEXT PRIMARY KEY,
	deflt   TEXT NOT NULL,
	always  TEXT NOT NULL,
	never   TEXT NOT NULL
) STRICT, WITHOUT ROWID;
`,
	// 6: XEP-0363 upload slots and file metadata. uploaded is 0 until the PUT completed.
	`
CREATE TABLE upload_slots (
	id           TEXT PRIMARY KEY,
	service      TEXT NOT NULL,
	owner        TEXT NOT NULL,
	filename     TEXT NOT NULL,
	content_type TEXT NOT NULL,
	size         INTEGER NOT NULL,
	created      INTEGER NOT NULL,
	slot_expires INTEGER NOT NULL,
	uploaded     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX upload_slots_by_owner ON upload_slots (service, owner, created);
CREATE INDEX upload_slots_by_created ON upload_slots (service, created);
`,
	// 7: the offline queue's idempotency keys (a stanza a cluster may route twice, storage.OfflineInput.Key):
	// at most one queued message per (owner, key); unkeyed messages (NULL) are not in the index.
	`
ALTER TABLE offline ADD COLUMN once_key TEXT;
CREATE UNIQUE INDEX offline_once ON offline (owner, once_key) WHERE once_key IS NOT NULL;
`,
	// 8: the archive's rows in their owner's chronological order, for the write cost (issues 13 and 17). The
	// table of migration 5 was four b-trees per row (the rowid table, UNIQUE (owner, id), by_time, by_with)
	// and sqlite_sequence's row, three of them ordered by owner: with 200 users chatting, every commit of
	// the group commit dirtied one page per owner in each, each written to the WAL and again at the
	// checkpoint. Now the table is clustered on (owner, stamp, seq) (it is the by_time index), and the id
	// index leads with the id, which features/mam makes time-ordered, so every new id of every owner lands at
	// the end of that index: two owner-ordered b-trees per row, and one that appends. seq is handed out by
	// the group commit from the mam_seq counter (WITHOUT ROWID has no AUTOINCREMENT), above every seq ever
	// used, so a position is never reused. The rows are copied in key order (appends), the indexes built after.
	`
CREATE TABLE mam_rows (
	owner     TEXT NOT NULL,
	stamp     INTEGER NOT NULL,
	seq       INTEGER NOT NULL,
	id        TEXT NOT NULL,
	with_full TEXT NOT NULL,
	with_bare TEXT NOT NULL,
	stanza    TEXT NOT NULL,
	PRIMARY KEY (owner, stamp, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO mam_rows (owner, stamp, seq, id, with_full, with_bare, stanza)
	SELECT owner, stamp, seq, id, with_full, with_bare, stanza FROM mam INDEXED BY mam_by_time ORDER BY owner, stamp, seq;
INSERT INTO counters (name, value) VALUES ('mam_seq', max(
	coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'mam'), 0), coalesce((SELECT max(seq) FROM mam), 0)));
DROP TABLE mam;
ALTER TABLE mam_rows RENAME TO mam;
CREATE UNIQUE INDEX mam_by_id ON mam (id, owner);
CREATE INDEX mam_by_with ON mam (owner, with_bare, stamp, seq);
`,
}

// migrate brings the database to version len(migrations). It runs under BEGIN
// IMMEDIATE, so two processes opening a fresh file at once cannot both apply
// migration 1.
func migrate(ctx context.Context, w *sql.DB) error { return migrateTo(ctx, w, migrations) }

// migrateTo applies list, a prefix of migrations (a test builds an older version's database with it).
func migrateTo(ctx context.Context, w *sql.DB, migrations []string) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	var current int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&current)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if current > len(migrations) {
		// Opening with an older binary after an upgrade: refuse rather than
		// write rows the newer schema's constraints were not checked against.
		return fmt.Errorf("sqlite: database schema version %d is newer than this build's %d", current, len(migrations))
	}
	for v := current; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v+1, err)
		}
	}
	if current == len(migrations) {
		return nil // nothing to commit
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: commit: %w", err)
	}
	return nil
}
