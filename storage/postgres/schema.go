package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations[i] takes the schema from version i to version i+1, in step with storage/sqlite's migrations
// (the same numbers hold the same tables). Append only: a released migration is never edited, because
// databases in the field have already run it. Each runs in its own transaction together with the row that
// records it in schema_migrations (PostgreSQL's DDL is transactional), so a crash mid-migration leaves the
// previous version intact.
//
// Text that is compared, sorted or unique is COLLATE "C": bytewise, as the storage contract says, even in a
// database created with a linguistic default collation (which would sort "Z" after "a" and may treat
// canonically equivalent strings as equal). Times are timestamptz.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE accounts (
	bare    text COLLATE "C" PRIMARY KEY,
	domain  text COLLATE "C" NOT NULL,
	created timestamptz NOT NULL
);
CREATE INDEX accounts_by_domain ON accounts (domain, bare);

-- pos keeps the order credentials were given in; UNIQUE (bare, hash) backs storage.CheckCredentials.
CREATE TABLE credentials (
	bare       text COLLATE "C" NOT NULL REFERENCES accounts (bare) ON DELETE CASCADE,
	pos        integer NOT NULL,
	hash       text COLLATE "C" NOT NULL,
	salt       bytea NOT NULL,
	iterations integer NOT NULL,
	stored_key bytea NOT NULL,
	server_key bytea NOT NULL,
	PRIMARY KEY (bare, pos),
	UNIQUE (bare, hash)
);

-- groups keeps the order the client gave.
CREATE TABLE roster_items (
	owner             text COLLATE "C" NOT NULL,
	jid               text COLLATE "C" NOT NULL,
	name              text NOT NULL,
	groups            text[] NOT NULL,
	subscription      text NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	ask               boolean NOT NULL,
	pending_in        boolean NOT NULL,
	pending_in_stanza text NOT NULL,
	pre_approved      boolean NOT NULL,
	PRIMARY KEY (owner, jid)
);

-- A row exists once the owner's roster was first written. Versions come from the global sequence, so they
-- are never reused for an owner, even when the account is deleted and created again (see package storage);
-- the row is the lock that orders one owner's writers (package comment).
CREATE SEQUENCE roster_version_seq;
CREATE TABLE roster_versions (
	owner   text COLLATE "C" PRIMARY KEY,
	version bigint NOT NULL
);

-- An identity column never hands out a value twice, so DeleteOffline(upToID) from a stale read cannot
-- delete a message that arrived later with a recycled id.
CREATE TABLE offline (
	id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner  text COLLATE "C" NOT NULL,
	stanza text NOT NULL,
	stamp  timestamptz NOT NULL
);
CREATE INDEX offline_by_owner ON offline (owner, id);

CREATE TABLE last_presence (
	owner  text COLLATE "C" PRIMARY KEY,
	stanza text NOT NULL,
	at     timestamptz NOT NULL
);

CREATE TABLE kv (
	owner text COLLATE "C" NOT NULL,
	ns    text COLLATE "C" NOT NULL,
	key   text COLLATE "C" NOT NULL,
	value text NOT NULL,
	PRIMARY KEY (owner, ns, key)
);
`,
	// 2: publish-subscribe (XEP-0060 / XEP-0163 PEP). Items and members go with their node. seq orders a node's
	// items by publication: republishing an id takes a new seq, so it becomes the newest.
	`
CREATE TABLE pubsub_nodes (
	service text COLLATE "C" NOT NULL,
	node    text COLLATE "C" NOT NULL,
	config  text NOT NULL,
	created timestamptz NOT NULL,
	PRIMARY KEY (service, node)
);

CREATE TABLE pubsub_items (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	service   text COLLATE "C" NOT NULL,
	node      text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	publisher text NOT NULL,
	payload   text NOT NULL,
	published timestamptz NOT NULL,
	UNIQUE (service, node, id),
	FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE
);
CREATE INDEX pubsub_items_by_node ON pubsub_items (service, node, seq);

CREATE TABLE pubsub_members (
	service      text COLLATE "C" NOT NULL,
	node         text COLLATE "C" NOT NULL,
	jid          text COLLATE "C" NOT NULL,
	affiliation  text NOT NULL,
	subscription text NOT NULL,
	subid        text NOT NULL,
	options      text NOT NULL,
	PRIMARY KEY (service, node, jid),
	FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE
);
`,
	// 3: XEP-0484 FAST tokens, at most one pending and one in use per client. key is the HMAC key (a digest of
	// the token), never the token.
	`
CREATE TABLE fast_tokens (
	bare      text COLLATE "C" NOT NULL REFERENCES accounts (bare) ON DELETE CASCADE,
	client    text COLLATE "C" NOT NULL,
	pending   boolean NOT NULL,
	key       bytea NOT NULL,
	mechanism text NOT NULL,
	expiry    timestamptz NOT NULL,
	count     bigint NOT NULL,
	PRIMARY KEY (bare, client, pending)
);
`,
	// 4: multi-user chat (XEP-0045): persistent rooms and their affiliations (with reserved nicks).
	`
CREATE TABLE muc_rooms (
	service text COLLATE "C" NOT NULL,
	room    text COLLATE "C" NOT NULL,
	config  text NOT NULL,
	created timestamptz NOT NULL,
	PRIMARY KEY (service, room)
);

CREATE TABLE muc_affiliations (
	service     text COLLATE "C" NOT NULL,
	room        text COLLATE "C" NOT NULL,
	jid         text COLLATE "C" NOT NULL,
	affiliation text NOT NULL,
	nick        text NOT NULL,
	reason      text NOT NULL,
	PRIMARY KEY (service, room, jid),
	FOREIGN KEY (service, room) REFERENCES muc_rooms (service, room) ON DELETE CASCADE
);
`,
	// 5: the message archive (XEP-0313). A page is read in (stamp, seq) order, the archive's chronological
	// order: by_time serves queries without 'with', by_with those with one. seq is an identity column, never
	// reused; the owner's advisory lock makes it increase in commit order within an archive.
	`
CREATE TABLE mam (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner     text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	with_full text COLLATE "C" NOT NULL,
	with_bare text COLLATE "C" NOT NULL,
	stamp     timestamptz NOT NULL,
	stanza    text NOT NULL,
	UNIQUE (owner, id)
);
CREATE INDEX mam_by_time ON mam (owner, stamp, seq);
CREATE INDEX mam_by_with ON mam (owner, with_bare, stamp, seq);

-- The size of each archive, updated in the same transaction as the rows: the RSM <count/> of a query without
-- bounds is one row, not a walk of the whole archive.
CREATE TABLE mam_counts (
	owner text COLLATE "C" PRIMARY KEY,
	n     bigint NOT NULL
);

CREATE TABLE mam_prefs (
	owner   text COLLATE "C" PRIMARY KEY,
	deflt   text NOT NULL,
	always  text[] NOT NULL,
	never   text[] NOT NULL
);
`,
	// 6: XEP-0363 upload slots and file metadata. uploaded is NULL until the PUT completed.
	`
CREATE TABLE upload_slots (
	id           text COLLATE "C" PRIMARY KEY,
	service      text COLLATE "C" NOT NULL,
	owner        text COLLATE "C" NOT NULL,
	filename     text NOT NULL,
	content_type text NOT NULL,
	size         bigint NOT NULL,
	created      timestamptz NOT NULL,
	slot_expires timestamptz NOT NULL,
	uploaded     timestamptz
);
CREATE INDEX upload_slots_by_owner ON upload_slots (service, owner, created);
CREATE INDEX upload_slots_by_created ON upload_slots (service, created);
`,
	// 7: the offline queue's idempotency keys (a stanza the cluster may route twice, storage.OfflineInput.Key):
	// at most one queued message per (owner, key); unkeyed messages (NULL) are not in the index.
	`
ALTER TABLE offline ADD COLUMN once_key text COLLATE "C";
CREATE UNIQUE INDEX offline_once ON offline (owner, once_key) WHERE once_key IS NOT NULL;
`,
	// 8: the archive's id index leads with the id (storage/sqlite's migration 8, for the write cost of issues
	// 13 and 17): features/mam's ids are time-ordered, so every owner's new ids land at the end of one index
	// instead of at each owner's place in it (an index page dirtied per owner per commit, and its full-page
	// image in the WAL after each checkpoint). ON CONFLICT (owner, id) infers it: the columns are the same.
	`
ALTER TABLE mam ADD CONSTRAINT mam_id_owner_key UNIQUE (id, owner);
ALTER TABLE mam DROP CONSTRAINT mam_owner_id_key;
`,
}

// migrate brings the database to version len(migrations), one transaction per migration. Each transaction
// first takes an advisory lock, so that nodes starting at once against a fresh database apply each migration
// once: the second waits, then reads the version the first committed.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	for {
		done, err := migrateOne(ctx, pool)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next migration, if any; done reports that the schema is current.
func migrateOne(ctx context.Context, pool *pgxpool.Pool) (done bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, wrap("migrate", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockMigrate); err != nil {
		return false, wrap("migrate: lock", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version integer PRIMARY KEY,
	applied timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return false, wrap("migrate", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return false, wrap("migrate", err)
	}
	if current > len(migrations) {
		// An older binary after an upgrade: refuse rather than write rows the newer schema's constraints were
		// not checked against.
		return false, fmt.Errorf("postgres: database schema version %d is newer than this build's %d", current, len(migrations))
	}
	if current == len(migrations) {
		return true, wrap("migrate: commit", tx.Commit(ctx))
	}
	if _, err := tx.Exec(ctx, migrations[current]); err != nil {
		return false, fmt.Errorf("postgres: migration %d: %w", current+1, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, current+1); err != nil {
		return false, wrap("migrate", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("postgres: migration %d: commit: %w", current+1, err)
	}
	return false, nil
}
