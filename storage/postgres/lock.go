package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// lockServers is the advisory lock class of LockServers (see the classes in postgres.go).
const lockServers int32 = 4

// LockServers is storage.LockDataDir for a shared database: a session-level advisory lock, shared for a
// running server (every node holds it at once), exclusive for `xmppd import`, which must not run beside any
// node (the nodes cache rosters and queues in their actors and would not see, or would overwrite, what the
// import writes). A flock on the data directory cannot do this: the nodes run on other machines, each with its
// own data directory, and only the database is common to them all.
//
// The lock lives on a connection of its own, outside the pool, for as long as the caller holds it: PostgreSQL
// releases it when that connection ends, also when the process is killed. It never waits: storage.ErrLocked if
// the other kind is held. If the database server restarts, the lock is gone until the server process is
// restarted too; the guard is for an operator's mistake, not a security boundary.
func LockServers(ctx context.Context, dsn string, exclusive bool) (release func(), err error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("postgres: the dsn does not parse (see storage.dsn in config.toml)")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("lock: connect", err)
	}
	fn := "pg_try_advisory_lock_shared"
	if exclusive {
		fn = "pg_try_advisory_lock"
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT `+fn+`($1, 0)`, lockServers).Scan(&ok); err != nil {
		_ = conn.Close(context.Background())
		return nil, wrap("lock", err)
	}
	if !ok {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("%w (a PostgreSQL advisory lock: another process uses this database)", storage.ErrLocked)
	}
	return func() { _ = conn.Close(context.Background()) }, nil
}
