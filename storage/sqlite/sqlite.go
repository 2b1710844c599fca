// Package sqlite is the embedded storage engine: storage.Store on
// modernc.org/sqlite (pure Go, no cgo) in WAL mode.
//
// Concurrency model. SQLite allows one writer at a time per database file. If
// several pooled connections tried to write, SQLite would make all but one
// wait in its busy handler and, for a deferred transaction that read before
// writing, fail at once with SQLITE_BUSY_SNAPSHOT (the busy handler is not
// even called). Instead every write goes through one dedicated connection
// (database/sql pool of size 1), so writers queue in Go, in FIFO-ish order,
// honouring their contexts, and never meet each other inside SQLite. Write
// transactions start with BEGIN IMMEDIATE, so a transaction holds the write
// lock from its first statement and cannot fail half-way to upgrade it (which
// matters when another process, e.g. a backup tool, has the file open).
// Reads go to a small pool of read-only connections; in WAL mode readers never
// block the writer nor are blocked by it, and each read statement or read
// transaction sees one consistent snapshot. busy_timeout covers the remaining
// cases where SQLite takes a lock briefly (WAL recovery after a crash, a
// checkpoint, another process), so SQLITE_BUSY does not reach callers.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	// The driver registers itself with database/sql as "sqlite".
	_ "modernc.org/sqlite"

	"github.com/xmppd/xmppd/storage"
)

// Option configures Open.
type Option func(*options)

type options struct {
	readers     int
	busyTimeout time.Duration
}

// WithReaders sets the number of read connections (default 4; minimum 1).
func WithReaders(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.readers = n
		}
	}
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another connection or process before failing with SQLITE_BUSY
// (default 10s). Within one process the single writer makes waits rare.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.busyTimeout = d
		}
	}
}

// DB is a storage.Store backed by one SQLite database file.
type DB struct {
	w *sql.DB // exactly one connection: the only writer
	r *sql.DB // read-only connections

	// Prepared statements for the hot paths. Statements on w run on its single
	// connection; statements on r are prepared lazily per reader connection
	// by database/sql.
	pushOffline  *sql.Stmt // w
	credentials  *sql.Stmt // r
	roster       *sql.Stmt // r
	bumpVersion  *sql.Stmt // w
	setVersion   *sql.Stmt // w
	putRoster    *sql.Stmt // w
	offlineQueue *sql.Stmt // r
	appendMAM    *sql.Stmt // w
	addMAMCount  *sql.Stmt // w
	// The archive's seq counter, read and written once per group-commit round (archive.go).
	archiveSeq, setArchiveSeq *sql.Stmt // w
	// A PEP/PubSub publish (pubsub.go): node check, replace, insert, trim; one publish fans out to every
	// subscriber, so its commit is on the notification path.
	pubsubNode, pubsubDelete, pubsubInsert, pubsubTrim *sql.Stmt // w
	// On every authentication (SASL: accounts.DisabledReason's GetKV; XEP-0484 FAST: the token read and the
	// counter update) and every XEP-0386 bind (the archive's bounds): preparing them on each query was about a
	// tenth of a FAST login's server CPU.
	getKV, fastTokens, useFastToken, raiseFastCount, archiveFirst, archiveLast *sql.Stmt
	// stmts is every prepared statement, for Close.
	stmts []*sql.Stmt

	// reads caches a prepared statement on r per constant read query (text → *sql.Stmt), prepared on first use:
	// modernc's SQLite parses and plans a statement on every unprepared query, which was a third of a login's
	// storage cost (issue 17). The set is bounded: the keys are the query literals of this package.
	reads sync.Map

	// archive is the archive's group commit (archive.go): appends from every user actor, one transaction per
	// round.
	archive archiveCommitter

	closeOnce sync.Once
	closeErr  error
}

var _ storage.Store = (*DB)(nil)

// Open opens (creating if needed, parent directories included) the database
// at path, migrates its schema to the current version and returns a Store.
func Open(path string, opts ...Option) (*DB, error) {
	o := options{readers: 4, busyTimeout: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}

	// A file: URI with an escaped path, so that a path containing '?', '#'
	// or '%' is not mistaken for query parameters.
	base := (&url.URL{Scheme: "file", Path: abs}).String()
	common := url.Values{}
	common.Set("_busy_timeout", strconv.FormatInt(o.busyTimeout.Milliseconds(), 10))
	common.Set("_foreign_keys", "1")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = v
	}
	wq.Set("_journal_mode", "WAL")
	// synchronous=FULL, not NORMAL. In WAL mode NORMAL fsyncs only at
	// checkpoints: a commit is appended to the WAL and left in the OS page
	// cache. That survives the process being killed (kill -9, a panic) but not
	// an OS crash or power loss, which can roll back the last transactions
	// after they were acknowledged, i.e. after we told a client its message
	// was stored or its roster changed. FULL fsyncs the WAL on every commit,
	// so an acknowledged write is on stable storage. The cost is one fsync per
	// write transaction, which is why writes are kept to one transaction each.
	wq.Set("_synchronous", "FULL")
	wq.Set("_txlock", "immediate")
	// The writer's page cache and checkpoint, for the archive's group commit (issues 13 and 17; figures in
	// docs/benchmarks.md). Each round dirties a page per active owner in each of the archive's owner-ordered
	// b-trees: with SQLite's default 2 MiB cache, 200 chatting users' pages (and the interior pages above them)
	// did not stay cached and a quarter of the commit's CPU was pread. And the default auto-checkpoint after
	// 1000 WAL pages ran every few rounds, copying the same hot pages into the database file again each time:
	// after 10000 pages (a 40 MiB WAL) a page rewritten by many rounds is copied once. Neither changes what a
	// commit guarantees (synchronous=FULL fsyncs the WAL at every commit); the WAL file grows to about 40 MiB
	// before it is reused. Readers keep the default cache: they read pages, not the same few again.
	wq.Add("_pragma", "cache_size(-16384)")
	wq.Add("_pragma", "wal_autocheckpoint(10000)")

	db := &DB{}
	db.w, err = sql.Open("sqlite", base+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := db.checkWriter(ctx); err != nil {
		db.w.Close()
		return nil, err
	}
	if err := migrate(ctx, db.w); err != nil {
		db.w.Close()
		return nil, err
	}

	rq := url.Values{}
	for k, v := range common {
		rq[k] = v
	}
	// query_only makes a reader connection refuse writes, so a write routed to
	// the wrong pool fails loudly instead of bypassing the single writer.
	rq.Set("_query_only", "1")
	db.r, err = sql.Open("sqlite", base+"?"+rq.Encode())
	if err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db.r.SetMaxOpenConns(o.readers)
	db.r.SetMaxIdleConns(o.readers)
	db.r.SetConnMaxLifetime(0)
	db.r.SetConnMaxIdleTime(0)

	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.archive.start(db)
	return db, nil
}

// checkWriter connects the writer and verifies that the pragmas took effect:
// journal_mode silently stays as it was on file systems without shared memory
// support, and we would rather refuse to start than run without the
// durability and concurrency the rest of this package assumes.
func (db *DB) checkWriter(ctx context.Context) error {
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite: journal_mode is %q, want wal", mode)
	}
	var sync int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if sync != 2 {
		return fmt.Errorf("sqlite: synchronous is %d, want 2 (FULL)", sync)
	}
	return nil
}

func (db *DB) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst   **sql.Stmt
		on    *sql.DB
		query string
	}{
		{&db.pushOffline, db.w, sqlPushOffline},
		{&db.credentials, db.r, sqlCredentials},
		{&db.roster, db.r, sqlRoster},
		{&db.bumpVersion, db.w, sqlBumpVersion},
		{&db.setVersion, db.w, sqlSetVersion},
		{&db.putRoster, db.w, sqlPutRoster},
		{&db.offlineQueue, db.r, sqlOfflineQueue},
		{&db.appendMAM, db.w, sqlAppendArchive},
		{&db.addMAMCount, db.w, sqlAddCount},
		{&db.archiveSeq, db.w, sqlArchiveSeq},
		{&db.setArchiveSeq, db.w, sqlSetArchiveSeq},
		{&db.pubsubNode, db.w, sqlPubSubNode},
		{&db.pubsubDelete, db.w, sqlPubSubDeleteItem},
		{&db.pubsubInsert, db.w, sqlPubSubInsertItem},
		{&db.pubsubTrim, db.w, sqlPubSubTrim},
		{&db.getKV, db.r, sqlGetKV},
		{&db.fastTokens, db.r, sqlFastTokens},
		{&db.useFastToken, db.w, sqlUseFastToken},
		{&db.raiseFastCount, db.w, sqlRaiseFastCount},
		{&db.archiveFirst, db.r, sqlArchiveFirst},
		{&db.archiveLast, db.r, sqlArchiveLast},
	} {
		s, err := p.on.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = s
		db.stmts = append(db.stmts, s)
	}
	return nil
}

// readStmt returns the cached prepared statement of the constant read query q on the reader pool, preparing it
// on first use (database/sql then prepares it once on each reader connection it runs on).
func (db *DB) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := db.reads.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.r.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.reads.LoadOrStore(q, s); loaded {
		s.Close() // prepared concurrently by another caller: keep theirs
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// query runs the constant read query q (a literal of this package, never text built from data) with args on
// the reader pool through its cached prepared statement.
func (db *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRow is query for one row. A statement that fails to prepare runs unprepared, so that its error reaches
// the caller through Scan as it would have.
func (db *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := db.readStmt(ctx, q)
	if err != nil {
		return db.r.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// Ping checks that both pools can reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping readers: %w", err)
	}
	return nil
}

// Close waits for operations in progress, checkpoints the WAL into the
// database file and closes every connection. It is safe to call twice.
//
// Every acknowledged write is already durable (synchronous=FULL); the
// checkpoint only leaves a compact single file behind, e.g. for a backup.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.archive.stop()
		var errs []error
		for _, s := range db.stmts {
			errs = append(errs, s.Close())
		}
		db.reads.Range(func(_, v any) bool {
			errs = append(errs, v.(*sql.Stmt).Close())
			return true
		})
		// Readers first, so that the writer is the last connection: SQLite
		// then checkpoints fully and removes the -wal and -shm files.
		if db.r != nil {
			errs = append(errs, db.r.Close())
		}
		if _, err := db.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			errs = append(errs, fmt.Errorf("sqlite: checkpoint: %w", err))
		}
		errs = append(errs, db.w.Close())
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the writer) and
// commits it; any error from fn rolls back.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTx(ctx, db.w.BeginTx, fn)
}

// inTx runs fn in a transaction begun by begin and commits it, or rolls it back when fn fails.
func inTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), fn func(tx *sql.Tx) error) error {
	tx, err := begin(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// writeUnsynced is write for a transaction that need not reach stable storage before it returns: it commits with
// synchronous=NORMAL (no fsync; in WAL mode the commit survives the process being killed, and the next FULL
// commit's fsync covers it, but an OS crash or power loss may roll it back). Only for writes whose loss in an OS
// crash promises nothing to anyone (the XEP-0484 replay counter, fast.go). The writer connection is held for the
// whole of it, so no other write commits under NORMAL; if FULL cannot be set again the connection is discarded
// (a new one opens with FULL from the DSN).
func (db *DB) writeUnsynced(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	c, err := db.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: writer: %w", err)
	}
	defer func() {
		if _, rerr := c.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); rerr != nil {
			_ = c.Raw(func(any) error { return driver.ErrBadConn }) // not back into the pool with NORMAL
			if err == nil {
				err = fmt.Errorf("sqlite: restoring synchronous: %w", rerr)
			}
		}
		c.Close()
	}()
	if _, err := c.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
		return fmt.Errorf("sqlite: synchronous: %w", err)
	}
	return inTx(ctx, c.BeginTx, fn)
}

// wrap adds the package prefix to driver errors but leaves the storage
// sentinels and context errors recognisable through errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// micro converts a time to what is stored: Unix microseconds, the precision
// PostgreSQL keeps, so that every engine returns the same value.
func micro(t time.Time) int64 { return t.UnixMicro() }

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
