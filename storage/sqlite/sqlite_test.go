package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/storagetest"
)

func openTemp(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(filepath.Join(tb.TempDir(), "xmppd.db"))
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

func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return openTemp(t) })
}

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, func(b *testing.B) storage.Store { return openTemp(b) })
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	// Nested directories that do not exist yet, and characters that mean
	// something in a URI.
	path := filepath.Join(t.TempDir(), "a b", "c?d#e%41", "xmppd.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.CreateAccount(ctx, "juliet@example.com", nil); err != nil {
		t.Fatal(err)
	}
	v1, err := db.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{JID: "romeo@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the literal path: %v", err)
	}
	// Close checkpointed and, as the last connection, removed the WAL.
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WAL file left after Close: %v", err)
	}

	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Credentials(ctx, "juliet@example.com"); err != nil {
		t.Fatalf("account lost across reopen: %v", err)
	}
	v2, err := db.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{JID: "nurse@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if v2 <= v1 {
		t.Fatalf("roster version went from %d to %d across reopen", v1, v2)
	}
	var version, rows int
	if err := db.r.QueryRow(`SELECT version, (SELECT count(*) FROM schema_version) FROM schema_version`).Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	if version != len(migrations) || rows != 1 {
		t.Fatalf("schema_version = %d in %d rows, want %d in 1", version, rows, len(migrations))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xmppd.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.Exec(`UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(path); err == nil {
		db.Close()
		t.Fatal("opened a database with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestPragmas(t *testing.T) {
	db := openTemp(t)
	check := func(label, query, want string) {
		t.Helper()
		var got string
		if err := db.w.QueryRow(query).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %s = %s, want %s", label, query, got, want)
		}
	}
	check("writer", "PRAGMA journal_mode", "wal")
	check("writer", "PRAGMA synchronous", "2")
	check("writer", "PRAGMA foreign_keys", "1")
	check("writer", "PRAGMA busy_timeout", "10000")
	check("writer", "PRAGMA cache_size", "-16384")
	check("writer", "PRAGMA wal_autocheckpoint", "10000")

	// Readers refuse writes, so nothing can bypass the single writer.
	if _, err := db.r.Exec(`INSERT INTO kv (owner, ns, key, value) VALUES ('a', 'b', 'c', 'd')`); err == nil {
		t.Fatal("reader connection accepted a write")
	}
}

// TestTwoHandlesSameFile: another process (here another *DB) writing the same
// file must make callers wait, not fail with SQLITE_BUSY.
func TestTwoHandlesSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "xmppd.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const each = 100
	var wg sync.WaitGroup
	errs := make(chan error, 4*each)
	for _, db := range []*DB{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := db.PushOffline(context.Background(), "juliet@example.com", "<message/>", time.Now(), 0); err != nil {
					errs <- err
					return
				}
				if _, err := db.PutRosterItem(context.Background(), "juliet@example.com", storage.RosterItem{JID: fmt.Sprint(i, "@x")}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := a.CountOffline(context.Background(), "juliet@example.com")
	if err != nil || n != 4*each {
		t.Fatalf("count %d, err %v; want %d", n, err, 4*each)
	}
}

// The durability test re-executes the test binary as a child that writes
// offline messages and prints "ok <id> <n>" after each PushOffline returns.
// The parent SIGKILLs it right after reading one of those lines, reopens the
// database and checks that every write the child reported is there.
//
// This catches anything that acknowledges before the commit reached the OS
// (buffering in the driver, a commit deferred to a later statement, a
// transaction left open). It cannot simulate power loss: after kill -9 the OS
// page cache still holds the WAL, so synchronous=NORMAL would pass too. That
// part rests on synchronous=FULL, which TestPragmas checks.
const durabilityEnv = "XMPPD_STORAGE_DURABILITY_DB"

func TestDurabilityChild(t *testing.T) {
	path := os.Getenv(durabilityEnv)
	if path == "" {
		t.Skip("only run as the child of TestDurabilityKill9")
	}
	db, err := Open(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for n := 0; ; n++ {
		id, err := db.PushOffline(context.Background(), "juliet@example.com", fmt.Sprintf("<message id='%d'/>", n), time.Now(), 0)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		// Printed only after PushOffline returned; flushed at once so the
		// parent sees it as soon as possible.
		fmt.Fprintf(out, "ok %d %d\n", id, n)
		out.Flush()
	}
}

func TestDurabilityKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	path := filepath.Join(t.TempDir(), "xmppd.db")
	acked := map[int64]string{}
	// Several rounds on the same file: each reopen also runs WAL recovery
	// after a crash, with the previous rounds' data to preserve.
	for round, killAfter := range []int{1, 37, 150, 400} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), durabilityEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		seen := 0
		killed := false
		for sc.Scan() {
			line := sc.Text()
			var id int64
			var n int
			if _, err := fmt.Sscanf(line, "ok %d %d", &id, &n); err != nil {
				if strings.HasPrefix(line, "error") {
					t.Fatalf("round %d: child: %s", round, line)
				}
				continue // test framework chatter
			}
			acked[id] = fmt.Sprintf("<message id='%d'/>", n)
			seen++
			if seen == killAfter && !killed {
				// Right after a write was acknowledged, while the next is
				// probably in flight. Lines already in the pipe are still
				// read below and count as acknowledged too.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited before being killed: %v", round, err)
		}
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v", round, err)
		}

		db, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		msgs, err := db.OfflineMessages(context.Background(), "juliet@example.com")
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		stored := map[int64]string{}
		for _, m := range msgs {
			stored[m.ID] = m.Stanza
		}
		for id, stanza := range acked {
			if got, ok := stored[id]; !ok || got != stanza {
				t.Fatalf("round %d: acknowledged write %d (%s) lost after kill -9: stored %q, %v", round, id, stanza, got, ok)
			}
		}
		// At most the one write in flight may be present without an ack.
		if len(stored) > len(acked)+round+1 {
			t.Fatalf("round %d: %d stored, only %d acknowledged", round, len(stored), len(acked))
		}
		t.Logf("round %d: %d acknowledged, %d stored", round, len(acked), len(stored))
	}
}

// A FAST counter raise commits with synchronous=NORMAL (writeUnsynced): the writer is back at FULL afterwards,
// for every write that follows, whether the raise passed or was a replay.
func TestFastCountLeavesWriterFull(t *testing.T) {
	db := openTemp(t)
	ctx := context.Background()
	const a = "fast@example.org"
	if err := db.CreateAccount(ctx, a, []storage.Credential{{Hash: "SHA-256", Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("k"), ServerKey: []byte("k")}}); err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if err := db.PutFastToken(ctx, storage.FastToken{Account: a, Client: "phone", Key: key, Mechanism: "HT-SHA-256-NONE", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		count uint32
		ok    bool
	}{{1, true}, {2, true}, {2, false}, {7, true}, {3, false}} {
		ok, err := db.UseFastToken(ctx, a, "phone", key, c.count)
		if err != nil || ok != c.ok {
			t.Fatalf("count %d: ok %v, err %v; want ok %v", c.count, ok, err, c.ok)
		}
		var sync string
		if err := db.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != "2" {
			t.Fatalf("after count %d: writer synchronous %s (%v), want 2 (FULL)", c.count, sync, err)
		}
	}
	toks, err := db.FastTokens(ctx, a, "phone")
	if err != nil || len(toks) != 1 || toks[0].Pending || toks[0].Count != 7 {
		t.Fatalf("token after the uses: %+v, %v", toks, err)
	}
}
