// Package postgres is the shared storage engine: storage.Store on PostgreSQL through
// github.com/jackc/pgx/v5 (its native protocol driver and pgxpool), for several xmppd nodes that use one
// database (issue 19).
//
// Concurrency model. Unlike SQLite (storage/sqlite), PostgreSQL has many writers at once: every pooled
// connection of every node may write. Where the SQLite engine relies on its single writer to make a
// read-then-write atomic, this engine takes a row or advisory lock inside the transaction instead, so that
// concurrent writers from several nodes neither lose updates nor see ids in a different order than they were
// committed:
//
//   - Roster versions: the owner's roster_versions row is upserted first in the transaction
//     (INSERT … ON CONFLICT DO UPDATE SET version = nextval(…) RETURNING version), which locks the row until
//     commit; the next writer of that roster waits and then draws a later value of the sequence. Versions are
//     therefore strictly increasing in commit order and never reused (the sequence is global), and the item
//     write and its version commit together (RFC 6121 §2.6).
//   - Offline queues and archives: an advisory transaction lock on the owner (lockOwner) serialises the
//     writers of one owner, so the count check of the limit and the insert are atomic, and ids (bigint
//     identity columns) are handed out in commit order: DeleteOffline(upToID) after a read cannot delete a
//     message committed later with a smaller id.
//   - Publish-subscribe and MUC: the node's or room's row is locked (FOR UPDATE to publish and trim, FOR SHARE
//     to add a member), the equivalent of SQLite's single writer for that node.
//   - FAST tokens: UseFastToken is one UPDATE … WHERE count < $n RETURNING, which PostgreSQL re-checks against
//     the newest row version after waiting for a concurrent writer (READ COMMITTED), so a count is accepted
//     once.
//
// Transactions run at READ COMMITTED, PostgreSQL's default; a statement sees one snapshot, which is what the
// joined reads (Roster with its version, Credentials with the account) need.
//
// Durability: a commit returns after PostgreSQL flushed its WAL (synchronous_commit=on, the server's default);
// concurrent commits share a WAL flush, PostgreSQL's own group commit, which is why this engine has no archive
// committer goroutine like storage/sqlite's: the pool's connections commit in parallel.
//
// Times are timestamptz (microseconds, the precision the storage contract keeps), returned in UTC; text that
// is compared or sorted is COLLATE "C", bytewise, whatever the database's default collation.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xmppd/xmppd/storage"
)

// Option configures Open.
type Option func(*options)

type options struct {
	poolSize int
}

// WithPoolSize sets the largest number of connections the pool opens (default 8; minimum 1). Every node opens
// its own pool: the sum over the nodes must stay below the server's max_connections.
func WithPoolSize(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.poolSize = n
		}
	}
}

// DB is a storage.Store backed by a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool

	closeOnce sync.Once
}

var _ storage.Store = (*DB)(nil)

// Open connects to the database named by dsn (a libpq keyword/value string or a postgres:// URL; see
// pgxpool.ParseConfig), migrates its schema to the current version and returns a Store. The DSN is never
// logged or returned in an error: it may hold a password.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{poolSize: 8}
	for _, f := range opts {
		f(&o)
	}
	if dsn == "" {
		return nil, errors.New("postgres: empty dsn")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's parse errors quote the offending part of the DSN: say only that it did not parse.
		return nil, errors.New("postgres: the dsn does not parse (see storage.dsn in config.toml)")
	}
	cfg.MaxConns = int32(o.poolSize)
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("connect", err)
	}
	db := &DB{pool: pool}
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	return wrap("ping", db.pool.Ping(ctx))
}

// Close waits for the connections in use to be released and closes the pool. Safe to call twice.
func (db *DB) Close() error {
	db.closeOnce.Do(db.pool.Close)
	return nil
}

// write runs fn in a transaction and commits it; any error from fn rolls back.
func (db *DB) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return wrap("begin", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }() // after Commit, a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return wrap("commit", tx.Commit(ctx))
}

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)): each names what is serialised,
// the second key is a hash of the owner.
const (
	lockOffline int32 = 1
	lockArchive int32 = 2
	lockMigrate int32 = 3
)

// lockOwner takes the transaction's advisory lock on (class, owner): writers of the same owner's queue or
// archive, on any node, wait for each other until commit. hashtext may map two owners to one key, which only
// makes them wait for each other.
func lockOwner(ctx context.Context, tx pgx.Tx, class int32, owner string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, class, owner)
	return wrap("lock", err)
}

// wrap adds the package prefix to driver errors but leaves the storage sentinels and context errors
// recognisable through errors.Is. A statement interrupted by its context surfaces from pgx as a pgconn error
// that wraps the context's error; the context's own error is what callers test for.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isUniqueViolation reports SQLSTATE 23505.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// utc returns what the contract returns: microseconds, in UTC (timestamptz is scanned in the local zone).
func utc(t time.Time) time.Time { return t.UTC() }

// micro truncates t to what timestamptz keeps, as pgx sends it, for values that are compared in Go.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
