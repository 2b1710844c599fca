package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

const benchOwner = "juliet@example.com"

// fillArchive writes n messages of benchOwner straight in one transaction (the setup of the benchmarks: appending
// them one by one would take an fsync each): 100 contacts in turn, two resources each, one second apart.
func fillArchive(tb testing.TB, db *DB, n int) {
	tb.Helper()
	start := time.Now()
	_, err := db.w.Exec(`WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?1)
INSERT INTO mam (owner, seq, id, with_full, with_bare, stamp, stanza)
SELECT ?2, i + 1, 'm' || i, 'contact' || (i % 100) || '@example.net/r' || (i % 2), 'contact' || (i % 100) || '@example.net',
	?3 + i * 1000000, '<message xmlns=''jabber:client'' type=''chat''><body>message ' || i || '</body></message>' FROM c`,
		n, benchOwner, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.w.Exec(`INSERT INTO mam_counts (owner, n) VALUES (?, ?)`, benchOwner, n); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.w.Exec(`UPDATE counters SET value = ? WHERE name = 'mam_seq'`, n); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("setup: %d archived messages in %v", n, time.Since(start).Round(time.Millisecond))
}

// TestArchiveQueryPlan pins that a page reads an index range, not the table: the plan of every query shape names
// one of the archive's indexes and never a full scan or a temporary sort.
func TestArchiveQueryPlan(t *testing.T) {
	db := openTemp(t)
	fillArchive(t, db, 1000)
	ctx := context.Background()
	for _, q := range []storage.ArchiveQuery{
		{Limit: 50},
		{Limit: 50, Last: true},
		{Limit: 50, With: "contact7@example.net", AfterIDs: []string{"m307"}},
		{Limit: 50, With: "contact7@example.net/r1", Last: true, BeforeIDs: []string{"m907"}},
		{Limit: 50, Start: time.Date(2024, 1, 1, 0, 5, 0, 0, time.UTC), End: time.Date(2024, 1, 1, 0, 9, 0, 0, time.UTC)},
	} {
		tx, err := db.r.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		where, args, err := db.selection(ctx, tx, benchOwner, q)
		if err != nil {
			t.Fatal(err)
		}
		order := "stamp, seq"
		if q.Last {
			order = "stamp DESC, seq DESC"
		}
		rows, err := tx.Query(`EXPLAIN QUERY PLAN SELECT id FROM `+where+` ORDER BY `+order+` LIMIT 51`, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		tx.Rollback()
		all := strings.Join(plan, "; ")
		index := "SEARCH mam USING PRIMARY KEY (owner=?"
		if q.With != "" {
			index = "USING INDEX mam_by_with (owner=? AND with_bare=? AND (stamp,seq)>"
		}
		if !strings.Contains(all, index) || strings.Contains(all, "TEMP B-TREE") || strings.Contains(all, "SCAN mam") {
			t.Errorf("query %+v: plan %q reads more than an index range", q, all)
		}
	}
}

// BenchmarkArchiveQueryPage: one RSM page (50 messages) of a user with 100k and 1M archived messages: the last
// page with one contact (what a client opening a chat asks), the page after an id in the middle of the archive,
// the count of one contact's messages and of the whole archive (RSM <count/>, which reads the whole selection). Run with
// go test ./storage/sqlite -run '^$' -bench ArchiveQueryPage -benchtime 300x -v (-v shows how long the setup took)
func BenchmarkArchiveQueryPage(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "xmppd.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			fillArchive(b, db, n)
			ctx := context.Background()
			mid := fmt.Sprintf("m%d", n/2)
			b.Run("with-last-page", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					page, _, err := db.QueryArchive(ctx, benchOwner, storage.ArchiveQuery{With: fmt.Sprintf("contact%d@example.net", i%100), Limit: 50, Last: true})
					if err != nil || len(page) != 50 {
						b.Fatal(len(page), err)
					}
				}
			})
			b.Run("after-id-page", func(b *testing.B) {
				for b.Loop() {
					page, _, err := db.QueryArchive(ctx, benchOwner, storage.ArchiveQuery{AfterIDs: []string{mid}, Limit: 50})
					if err != nil || len(page) != 50 {
						b.Fatal(len(page), err)
					}
				}
			})
			b.Run("with-after-id-page", func(b *testing.B) {
				for b.Loop() {
					page, _, err := db.QueryArchive(ctx, benchOwner, storage.ArchiveQuery{With: "contact0@example.net", AfterIDs: []string{mid}, Limit: 50})
					if err != nil || len(page) != 50 {
						b.Fatal(len(page), err)
					}
				}
			})
			b.Run("with-count", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					c, err := db.CountArchive(ctx, benchOwner, storage.ArchiveQuery{With: fmt.Sprintf("contact%d@example.net", i%100)})
					if err != nil || c != n/100 {
						b.Fatal(c, err)
					}
				}
			})
			b.Run("count-walk", func(b *testing.B) {
				// A bound before every message: the count walks the whole archive's index range.
				q := storage.ArchiveQuery{Start: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)}
				for b.Loop() {
					c, err := db.CountArchive(ctx, benchOwner, q)
					if err != nil || c != n {
						b.Fatal(c, err)
					}
				}
			})
			b.Run("count-all", func(b *testing.B) {
				for b.Loop() {
					c, err := db.CountArchive(ctx, benchOwner, storage.ArchiveQuery{})
					if err != nil || c != n {
						b.Fatal(c, err)
					}
				}
			})
		})
	}
}

// BenchmarkArchiveAppend: two users' archives grow by batches of 32 messages each, in the group commit, as two
// chatting users' actors write them; ids are random (96 bits) or time-ordered (a big-endian clock then random
// bits, what features/mam hands out). The archive starts with 100k messages per user, so the (owner, id) index is
// deep enough for where an id lands to matter. cpu-µs/msg is the process's CPU time per archived row.
func BenchmarkArchiveAppend(b *testing.B) {
	stanza := "<message xmlns='jabber:client' from='alice@localhost/a' to='bob@localhost/b' type='chat' id='m'>" +
		"<body>hello there, how are you today?</body><stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='x'/></message>"
	ordered := func(i int) string {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixMicro()))
		_, _ = rand.Read(id[8:])
		return base64.RawURLEncoding.EncodeToString(id[:])
	}
	random := func(int) string {
		var id [12]byte
		_, _ = rand.Read(id[:])
		return base64.RawURLEncoding.EncodeToString(id[:])
	}
	for _, v := range []struct {
		name string
		id   func(int) string
	}{{"random-ids", random}, {"ordered-ids", ordered}} {
		b.Run(v.name, func(b *testing.B) {
			db := openTemp(b)
			ctx := context.Background()
			owners := []string{"alice@localhost", "bob@localhost"}
			batch := func() []storage.ArchivedMessage {
				msgs := make([]storage.ArchivedMessage, 32)
				for i := range msgs {
					msgs[i] = storage.ArchivedMessage{ID: v.id(i), With: "carol@localhost/c", WithBare: "carol@localhost", Stamp: time.Now(), Stanza: stanza}
				}
				return msgs
			}
			// Setup, not measured: 100k messages per owner, in batches of 3200.
			for _, o := range owners {
				for k := 0; k < 100000/3200; k++ {
					var msgs []storage.ArchivedMessage
					for j := 0; j < 100; j++ {
						msgs = append(msgs, batch()...)
					}
					if _, err := db.AppendArchiveBatch(ctx, o, msgs); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			start := cpuTime()
			n := 0
			for n < b.N {
				done := make(chan error, len(owners))
				for _, o := range owners {
					go func() {
						_, err := db.AppendArchiveBatch(ctx, o, batch())
						done <- err
					}()
				}
				for range owners {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
				}
				n += 32 * len(owners)
			}
			b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/1000/float64(n), "cpu-µs/msg")
		})
	}
}

// BenchmarkArchiveAppendOwners: the server's shape at an ordinary rate (issue 13's chat runs: 200 users, each
// message two rows in two archives): 200 archives, each already holding 2000 messages with two contacts, and
// every round of the group commit holding one message of each owner, appended concurrently as 200 user actors
// do. Each row lands at its own owner's place in the owner-ordered b-trees, so this is the write amplification
// the two-owner benchmark above hides. cpu-µs/msg is the process's CPU time per archived row. Run with
// go test ./storage/sqlite -run '^$' -bench ArchiveAppendOwners -benchtime 20000x
func BenchmarkArchiveAppendOwners(b *testing.B) {
	const owners, prefill = 200, 2000
	db := openTemp(b)
	ctx := context.Background()
	stanza := "<message xmlns='jabber:client' from='bench1@localhost/xl' to='bench2@localhost/xl' type='chat' id='m'>" +
		"<body>xl1 80936211 161 250 11889493868</body><stanza-id xmlns='urn:xmpp:sid:0' by='bench2@localhost' id='x'/></message>"
	msg := func(o, i int) storage.ArchivedMessage {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixMicro()))
		_, _ = rand.Read(id[8:])
		with := fmt.Sprintf("bench%d@localhost", (o+1+i%2)%owners)
		return storage.ArchivedMessage{ID: sortedIDs.EncodeToString(id[:]), With: with + "/xl", WithBare: with, Stamp: time.Now(), Stanza: stanza}
	}
	for o := range owners {
		msgs := make([]storage.ArchivedMessage, prefill)
		for i := range msgs {
			msgs[i] = msg(o, i)
		}
		if _, err := db.AppendArchiveBatch(ctx, fmt.Sprintf("bench%d@localhost", o), msgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start, written := cpuTime(), writtenBytes()
	n := 0
	for n < b.N {
		done := make(chan error, owners)
		for o := range owners {
			go func() {
				_, err := db.AppendArchiveBatch(ctx, fmt.Sprintf("bench%d@localhost", o), []storage.ArchivedMessage{msg(o, n)})
				done <- err
			}()
		}
		for range owners {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		n += owners
	}
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/1000/float64(n), "cpu-µs/msg")
	if w := writtenBytes(); w >= 0 && written >= 0 {
		b.ReportMetric(float64(w-written)/1024/float64(n), "written-KiB/msg") // WAL frames and checkpoints
	}
}

// writtenBytes is what the process handed to write system calls so far (/proc/self/io's wchar: the WAL frames,
// the checkpoints' copies, the WAL headers), or -1 where that is not readable.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// sortedIDs is features/mam's id encoding (base64 with its alphabet in ASCII order): ids sort as their clocks.
var sortedIDs = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").WithPadding(base64.NoPadding)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestArchiveMigration8 migrates an archive written by schema version 6 (a rowid table with AUTOINCREMENT seq,
// UNIQUE (owner, id), by_time, by_with) in place: every row keeps its position, every query shape still answers,
// an old id is still a duplicate, and a new message gets a seq above every one the old table handed out (the
// newest row was deleted, so max(seq) is below sqlite_sequence's).
func TestArchiveMigration8(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "xmppd.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, old, migrations[:6]); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	owners := []string{"juliet@example.com", "romeo@example.net"}
	for i := range 60 {
		for _, o := range owners {
			with := fmt.Sprintf("contact%d@example.org", i%3)
			// Two messages in the same microsecond now and then: the order among them is seq's.
			stamp := t0.Add(time.Duration(i/2) * time.Second).UnixMicro()
			if _, err := old.Exec(`INSERT INTO mam (owner, id, with_full, with_bare, stamp, stanza) VALUES (?, ?, ?, ?, ?, ?)`,
				o, fmt.Sprintf("%s-%02d", o[:1], i), with+"/r", with, stamp, fmt.Sprintf("<message><body>%d</body></message>", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var maxSeq int64
	if err := old.QueryRow(`SELECT max(seq) FROM mam`).Scan(&maxSeq); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`DELETE FROM mam WHERE seq = ?`, maxSeq); err != nil { // romeo's r-59
		t.Fatal(err)
	}
	if _, err := old.Exec(`INSERT INTO mam_counts (owner, n) VALUES ('juliet@example.com', 60), ('romeo@example.net', 59)`); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.w.QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", version, err, len(migrations))
	}
	ids := func(page []storage.ArchivedMessage) string {
		var s []string
		for _, m := range page {
			s = append(s, m.ID)
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		q    storage.ArchiveQuery
		want string
		more bool
	}{
		{storage.ArchiveQuery{Limit: 3}, "j-00 j-01 j-02", true},
		{storage.ArchiveQuery{Limit: 3, Last: true}, "j-57 j-58 j-59", true},
		{storage.ArchiveQuery{With: "contact1@example.org", Limit: 3, AfterIDs: []string{"j-04"}}, "j-07 j-10 j-13", true},
		{storage.ArchiveQuery{With: "contact2@example.org/r", Limit: 2, Last: true, BeforeIDs: []string{"j-11"}}, "j-05 j-08", true},
		{storage.ArchiveQuery{Start: t0.Add(10 * time.Second), End: t0.Add(11 * time.Second)}, "j-20 j-21 j-22 j-23", false},
		{storage.ArchiveQuery{IDs: []string{"j-31", "j-30"}}, "j-30 j-31", false},
	} {
		page, more, err := db.QueryArchive(ctx, owners[0], c.q)
		if err != nil || ids(page) != c.want || more != c.more {
			t.Errorf("query %+v after the migration: %q more=%v (%v), want %q more=%v", c.q, ids(page), more, err, c.want, c.more)
		}
	}
	if n, err := db.CountArchive(ctx, owners[0], storage.ArchiveQuery{With: "contact0@example.org"}); err != nil || n != 20 {
		t.Errorf("count with contact0: %d (%v), want 20", n, err)
	}
	if n, err := db.CountArchive(ctx, owners[1], storage.ArchiveQuery{}); err != nil || n != 59 {
		t.Errorf("romeo's count: %d (%v), want 59", n, err)
	}
	if held, err := db.ArchivedIDs(ctx, owners[1], []string{"r-58", "r-59", "j-01", "r-00"}); err != nil || strings.Join(held, " ") != "r-58 r-00" {
		t.Errorf("archived ids: %q (%v), want r-58 r-00", held, err)
	}
	first, last, err := db.ArchiveBounds(ctx, owners[1])
	if err != nil || first.ID != "r-00" || last.ID != "r-58" || !first.Stamp.Equal(t0) || first.WithBare != "contact0@example.org" || first.Stanza != "<message><body>0</body></message>" {
		t.Errorf("bounds: %+v %+v (%v)", first, last, err)
	}
	if err := db.AppendArchive(ctx, owners[1], storage.ArchivedMessage{ID: "r-10", Stamp: time.Now()}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("an old id appended again: %v, want ErrExists", err)
	}
	// A new message in the same microsecond as romeo's newest: it sorts after it by a seq above the old ones.
	if err := db.AppendArchive(ctx, owners[1], storage.ArchivedMessage{ID: "r-new", With: "x@example.org", WithBare: "x@example.org", Stamp: last.Stamp, Stanza: "<message/>"}); err != nil {
		t.Fatal(err)
	}
	var seq int64
	if err := db.w.QueryRow(`SELECT seq FROM mam WHERE owner = ? AND id = 'r-new'`, owners[1]).Scan(&seq); err != nil || seq <= maxSeq {
		t.Errorf("new seq %d (%v), want above the old table's %d", seq, err, maxSeq)
	}
	if page, _, err := db.QueryArchive(ctx, owners[1], storage.ArchiveQuery{Limit: 2, Last: true}); err != nil || ids(page) != "r-58 r-new" {
		t.Errorf("romeo's last page: %q (%v), want r-58 r-new", ids(page), err)
	}
	if n, err := db.TrimArchive(ctx, owners[1], 10); err != nil || n != 50 {
		t.Errorf("trim to 10: %d (%v), want 50 deleted", n, err)
	}
	if page, _, err := db.QueryArchive(ctx, owners[1], storage.ArchiveQuery{Limit: 1}); err != nil || ids(page) != "r-50" {
		t.Errorf("romeo's first after the trim: %q (%v), want r-50", ids(page), err)
	}
}
