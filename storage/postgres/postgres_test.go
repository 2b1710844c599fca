package postgres

import (
	"context"
	"testing"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/postgres/pgtest"
	"github.com/xmppd/xmppd/storage/storagetest"
)

// openFresh opens a store on a new, empty database of srv, closed when the test ends.
func openFresh(tb testing.TB, srv *pgtest.Server, opts ...Option) *DB {
	tb.Helper()
	db, err := Open(context.Background(), srv.NewDatabase(tb), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// TestContract runs the storage contract suite, the one storage/sqlite passes, against a real PostgreSQL:
// every subtest on a database of its own.
func TestContract(t *testing.T) {
	srv := pgtest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return openFresh(t, srv) })
}
