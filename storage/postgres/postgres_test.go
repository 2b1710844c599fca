package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestConcurrentRosterVersions is several nodes (one pool each) writing one roster at once: every bump must
// get its own version, a writer's versions must increase, a reader must never see the version go back, and
// the final version must be the highest one handed out. Without the row lock of sqlBump, two transactions can
// draw versions in one order and commit in the other, and the roster then goes back to an older version.
func TestConcurrentRosterVersions(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	const nodes, writers, rounds = 3, 4, 25
	const owner = "juliet@example.com"
	ctx := context.Background()
	var pools []*DB
	for i := 0; i < nodes; i++ {
		db, err := Open(ctx, dsn, WithPoolSize(writers))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		pools = append(pools, db)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[int64]string{}
		errs     []error
	)
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() { // a reader on another pool: versions it sees never decrease
		var last int64
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			_, v, err := pools[0].Roster(ctx, owner)
			if err != nil {
				readerDone <- err
				return
			}
			if v < last {
				readerDone <- fmt.Errorf("roster version went back from %d to %d", last, v)
				return
			}
			last = v
		}
	}()
	for n := 0; n < nodes; n++ {
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db := pools[n]
				contact := fmt.Sprintf("c%d-%d@example.net", n, w)
				var last int64
				for i := 0; i < rounds; i++ {
					var v int64
					var err error
					if i%5 == 4 {
						v, err = db.DeleteRosterItem(ctx, owner, contact)
					} else {
						v, err = db.PutRosterItem(ctx, owner, storage.RosterItem{JID: contact, Name: fmt.Sprint(i)})
					}
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if prev, dup := versions[v]; dup {
						errs = append(errs, fmt.Errorf("version %d handed out twice (%s and %s)", v, prev, contact))
					} else if v <= last {
						errs = append(errs, fmt.Errorf("%s: version %d after %d", contact, v, last))
					} else {
						versions[v] = contact
					}
					mu.Unlock()
					last = v
				}
			}()
		}
	}
	wg.Wait()
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		t.Error(err)
	}
	if len(versions) != nodes*writers*rounds {
		t.Fatalf("%d distinct versions, want %d (one per write)", len(versions), nodes*writers*rounds)
	}
	var highest int64
	for v := range versions {
		highest = max(highest, v)
	}
	items, v, err := pools[1].Roster(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if v != highest {
		t.Fatalf("final version %d, want the highest handed out, %d", v, highest)
	}
	// rounds-1 is a delete (i%5 == 4): every contact's last write removed it.
	if len(items) != 0 {
		t.Fatalf("%d items left, want 0: %+v", len(items), items)
	}
}

// TestOfflineCommitOrder is the delivery loop of XEP-0160 against pushes from several nodes: a reader reads
// the queue, "delivers" it and deletes up to the highest id it read. If ids could commit out of order, a
// message committed after the read with an id below the highest read would be deleted undelivered.
func TestOfflineCommitOrder(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	const nodes, pushers, each = 3, 4, 40
	const owner = "juliet@example.com"
	ctx := context.Background()
	var pools []*DB
	for i := 0; i < nodes+1; i++ {
		db, err := Open(ctx, dsn, WithPoolSize(pushers))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		pools = append(pools, db)
	}
	var wg sync.WaitGroup
	pushErr := make(chan error, nodes*pushers)
	for n := 0; n < nodes; n++ {
		for p := 0; p < pushers; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					stanza := fmt.Sprintf("<message id='%d-%d-%d'/>", n, p, i)
					if i%4 == 0 {
						if _, err := pools[n].PushOfflineBatch(ctx, owner, []storage.OfflineInput{{Stanza: stanza, Stamp: time.Now()}}, 0); err != nil {
							pushErr <- err
							return
						}
					} else if _, err := pools[n].PushOffline(ctx, owner, stanza, time.Now(), 0); err != nil {
						pushErr <- err
						return
					}
				}
			}()
		}
	}
	pushed := make(chan struct{})
	go func() { wg.Wait(); close(pushed) }()
	delivered := map[string]bool{}
	reader := pools[nodes]
	drain := func() {
		msgs, err := reader.OfflineMessages(ctx, owner)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return
		}
		for _, m := range msgs {
			if delivered[m.Stanza] {
				t.Fatalf("%s delivered twice", m.Stanza)
			}
			delivered[m.Stanza] = true
		}
		if err := reader.DeleteOffline(ctx, owner, msgs[len(msgs)-1].ID); err != nil {
			t.Fatal(err)
		}
	}
	for done := false; !done; {
		select {
		case <-pushed:
			done = true
		default:
		}
		drain()
	}
	drain()
	close(pushErr)
	for err := range pushErr {
		t.Fatal(err)
	}
	if len(delivered) != nodes*pushers*each {
		t.Fatalf("%d messages delivered, want %d: the others were deleted unread", len(delivered), nodes*pushers*each)
	}
}

// TestMigrations: a fresh database opened by several nodes at once is migrated once; reopening keeps the data;
// a database migrated by a newer build is refused.
func TestMigrations(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(ctx, dsn, WithPoolSize(2))
			if err != nil {
				errs <- err
				return
			}
			db.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent open of a fresh database: %v", err)
	}

	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var n, top int
	if err := db.pool.QueryRow(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &top); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) || top != len(migrations) {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, top, len(migrations))
	}
	if err := db.CreateAccount(ctx, "juliet@example.com", nil); err != nil {
		t.Fatal(err)
	}
	v1, err := db.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{JID: "romeo@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	items, v, err := db.Roster(ctx, "juliet@example.com")
	if err != nil || v != v1 || len(items) != 1 {
		t.Fatalf("after reopen: %v, version %d (want %d), err %v", items, v, v1, err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(ctx, dsn); err == nil {
		db.Close()
		t.Fatal("a database of a newer schema version opened")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestDSNNotInErrors: a DSN that does not parse, or names a server that refuses, must not put its password
// into the error (which the server logs).
func TestDSNNotInErrors(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	for _, dsn := range []string{
		"postgres://xmppd:s3cr3t-pw@127.0.0.1:%d/nodb?sslmode=disable&pool_max_conns=x",
		"host=127.0.0.1 port=%d user=nobody password=s3cr3t-pw dbname=nodb sslmode=disable",
	} {
		_, err := Open(ctx, fmt.Sprintf(dsn, srv.Port))
		if err == nil {
			t.Fatalf("%s opened", dsn)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the password is in the error: %v", err)
		}
	}
}

// BenchmarkStore is storagetest's hot-path benchmarks on PostgreSQL (loopback TCP, the server in the test's
// own directory): a database per benchmark, on one server.
func BenchmarkStore(b *testing.B) {
	srv := pgtest.Start(b)
	storagetest.Bench(b, func(b *testing.B) storage.Store { return openFresh(b, srv) })
}
