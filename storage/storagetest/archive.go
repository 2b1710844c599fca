package storagetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

const archOwner = "juliet@example.com"

// archMsg is message i of a test archive: one second after stamp per i, with the other party with.
func archMsg(i int, with string) storage.ArchivedMessage {
	bare := with
	for j := 0; j < len(with); j++ {
		if with[j] == '/' {
			bare = with[:j]
			break
		}
	}
	return storage.ArchivedMessage{ID: fmt.Sprintf("id%02d", i), With: with, WithBare: bare,
		Stamp: stamp.Add(time.Duration(i) * time.Second), Stanza: fmt.Sprintf("<message><body>%d</body></message>", i)}
}

// archive fills owner's archive with msgs in order.
func archive(t *testing.T, s storage.Store, owner string, msgs ...storage.ArchivedMessage) {
	t.Helper()
	for _, m := range msgs {
		must(t, s.AppendArchive(ctx(t), owner, m))
	}
}

func archIDs(page []storage.ArchivedMessage) []string {
	out := []string{}
	for _, m := range page {
		out = append(out, m.ID)
	}
	return out
}

func wantPage(t *testing.T, s storage.Store, q storage.ArchiveQuery, wantMore bool, want ...string) {
	t.Helper()
	page, more, err := s.QueryArchive(ctx(t), archOwner, q)
	must(t, err)
	if want == nil {
		want = []string{}
	}
	if got := archIDs(page); !reflect.DeepEqual(got, want) || more != wantMore {
		t.Errorf("query %+v = %v more=%v, want %v more=%v", q, got, more, want, wantMore)
	}
}

func wantCount(t *testing.T, s storage.Store, q storage.ArchiveQuery, want int) {
	t.Helper()
	n, err := s.CountArchive(ctx(t), archOwner, q)
	must(t, err)
	if n != want {
		t.Errorf("count %+v = %d, want %d", q, n, want)
	}
}

// sixMessages: romeo's two resources, nurse, and romeo's bare JID.
func sixMessages(t *testing.T, s storage.Store) {
	archive(t, s, archOwner,
		archMsg(0, "romeo@example.net/orchard"),
		archMsg(1, "nurse@example.com/kitchen"),
		archMsg(2, "romeo@example.net/balcony"),
		archMsg(3, "romeo@example.net"),
		archMsg(4, "nurse@example.com/kitchen"),
		archMsg(5, "romeo@example.net/orchard"),
	)
}

func testArchiveAppendQuery(t *testing.T, s storage.Store) {
	sixMessages(t, s)
	archive(t, s, "other@example.com", archMsg(0, "romeo@example.net/orchard")) // the same id in another archive
	page, more, err := s.QueryArchive(ctx(t), archOwner, storage.ArchiveQuery{})
	must(t, err)
	if len(page) != 6 || more {
		t.Fatalf("all: %d more=%v", len(page), more)
	}
	if want := archMsg(2, "romeo@example.net/balcony"); !reflect.DeepEqual(page[2], want) {
		t.Errorf("message 2 = %+v, want %+v", page[2], want)
	}
	if page[2].Stamp.Location() != time.UTC {
		t.Errorf("stamp not UTC: %v", page[2].Stamp)
	}
	// §4.1.1: a bare JID matches every resource, a full JID only itself.
	wantPage(t, s, storage.ArchiveQuery{With: "romeo@example.net"}, false, "id00", "id02", "id03", "id05")
	wantPage(t, s, storage.ArchiveQuery{With: "romeo@example.net/orchard"}, false, "id00", "id05")
	wantPage(t, s, storage.ArchiveQuery{With: "tybalt@example.net"}, false)
	wantCount(t, s, storage.ArchiveQuery{With: "romeo@example.net"}, 4)
	wantCount(t, s, storage.ArchiveQuery{With: "nurse@example.com/kitchen"}, 2)
	wantCount(t, s, storage.ArchiveQuery{}, 6)
	// Time bounds are inclusive.
	wantPage(t, s, storage.ArchiveQuery{Start: stamp.Add(2 * time.Second), End: stamp.Add(4 * time.Second)}, false, "id02", "id03", "id04")
	wantPage(t, s, storage.ArchiveQuery{Start: stamp.Add(2*time.Second + time.Microsecond)}, false, "id03", "id04", "id05")
	wantPage(t, s, storage.ArchiveQuery{End: stamp.Add(time.Second - time.Microsecond)}, false, "id00")
	wantCount(t, s, storage.ArchiveQuery{With: "romeo@example.net", Start: stamp.Add(time.Second)}, 3)
	// Id bounds are exclusive; the tightest applies.
	wantPage(t, s, storage.ArchiveQuery{AfterIDs: []string{"id01"}, BeforeIDs: []string{"id04"}}, false, "id02", "id03")
	wantPage(t, s, storage.ArchiveQuery{AfterIDs: []string{"id01", "id02"}, BeforeIDs: []string{"id05", "id04"}}, false, "id03")
	wantPage(t, s, storage.ArchiveQuery{With: "romeo@example.net", AfterIDs: []string{"id01"}}, false, "id02", "id03", "id05")
	wantCount(t, s, storage.ArchiveQuery{AfterIDs: []string{"id03"}}, 2)
	// Ids select, with the other bounds.
	wantPage(t, s, storage.ArchiveQuery{IDs: []string{"id04", "id01"}}, false, "id01", "id04")
	wantPage(t, s, storage.ArchiveQuery{IDs: []string{"id04", "id01"}, With: "romeo@example.net"}, false)
	wantPage(t, s, storage.ArchiveQuery{IDs: []string{"id04", "id01"}, AfterIDs: []string{"id02"}}, false, "id04")
	// A duplicate id keeps the first copy.
	dup := archMsg(3, "tybalt@example.net")
	wantErr(t, s.AppendArchive(ctx(t), archOwner, dup), storage.ErrExists)
	wantPage(t, s, storage.ArchiveQuery{With: "tybalt@example.net"}, false)
	// The other archive is apart.
	wantCount(t, s, storage.ArchiveQuery{}, 6)
}

func testArchiveBatch(t *testing.T, s storage.Store) {
	archive(t, s, archOwner, archMsg(0, "romeo@example.net"))
	n, err := s.AppendArchiveBatch(ctx(t), archOwner, []storage.ArchivedMessage{
		archMsg(1, "romeo@example.net"), archMsg(0, "tybalt@example.net"), archMsg(2, "nurse@example.com/k"),
	})
	must(t, err)
	if n != 2 {
		t.Errorf("stored %d, want 2 (id00 is there already)", n)
	}
	wantPage(t, s, storage.ArchiveQuery{}, false, "id00", "id01", "id02")
	wantPage(t, s, storage.ArchiveQuery{With: "tybalt@example.net"}, false)
	wantCount(t, s, storage.ArchiveQuery{}, 3)
	// The same id twice in one batch (a cluster's message that arrived twice, its key the id): the first copy.
	n, err = s.AppendArchiveBatch(ctx(t), archOwner, []storage.ArchivedMessage{archMsg(3, "romeo@example.net"), archMsg(3, "tybalt@example.net")})
	must(t, err)
	if n != 1 {
		t.Errorf("a batch with one id twice stored %d, want 1", n)
	}
	wantPage(t, s, storage.ArchiveQuery{With: "tybalt@example.net"}, false)
	wantCount(t, s, storage.ArchiveQuery{}, 4)
	n, err = s.AppendArchiveBatch(ctx(t), archOwner, nil)
	must(t, err)
	if n != 0 {
		t.Errorf("empty batch stored %d", n)
	}
}

func testArchivePaging(t *testing.T, s storage.Store) {
	sixMessages(t, s)
	wantPage(t, s, storage.ArchiveQuery{Limit: 2}, true, "id00", "id01")
	wantPage(t, s, storage.ArchiveQuery{Limit: 2, AfterIDs: []string{"id01"}}, true, "id02", "id03")
	wantPage(t, s, storage.ArchiveQuery{Limit: 2, AfterIDs: []string{"id03"}}, false, "id04", "id05")
	wantPage(t, s, storage.ArchiveQuery{Limit: 2, AfterIDs: []string{"id05"}}, false)
	wantPage(t, s, storage.ArchiveQuery{Limit: 6}, false, "id00", "id01", "id02", "id03", "id04", "id05")
	// Last: the newest page first, still in chronological order; more means older ones exist.
	wantPage(t, s, storage.ArchiveQuery{Limit: 4, Last: true}, true, "id02", "id03", "id04", "id05")
	wantPage(t, s, storage.ArchiveQuery{Limit: 4, Last: true, BeforeIDs: []string{"id02"}}, false, "id00", "id01")
	wantPage(t, s, storage.ArchiveQuery{Limit: 2, Last: true, With: "romeo@example.net"}, true, "id03", "id05")
	wantPage(t, s, storage.ArchiveQuery{Limit: 2, Last: true, With: "romeo@example.net", BeforeIDs: []string{"id03"}}, false, "id00", "id02")
	wantPage(t, s, storage.ArchiveQuery{Last: true}, false, "id00", "id01", "id02", "id03", "id04", "id05")
	wantCount(t, s, storage.ArchiveQuery{Limit: 2, Last: true}, 6)
}

func testArchiveOrder(t *testing.T, s storage.Store) {
	// Equal stamps keep the order of arrival; an earlier stamp appended later sorts by its stamp (a clock that
	// stepped back).
	a, b, c := archMsg(5, "x@example.net"), archMsg(5, "x@example.net"), archMsg(1, "x@example.net")
	a.ID, b.ID, c.ID = "a", "b", "c"
	archive(t, s, archOwner, a, b, c)
	wantPage(t, s, storage.ArchiveQuery{}, false, "c", "a", "b")
	wantPage(t, s, storage.ArchiveQuery{AfterIDs: []string{"a"}}, false, "b")
	wantPage(t, s, storage.ArchiveQuery{BeforeIDs: []string{"b"}}, false, "c", "a")
	wantPage(t, s, storage.ArchiveQuery{Limit: 1, Last: true}, true, "b")
	first, last, err := s.ArchiveBounds(ctx(t), archOwner)
	must(t, err)
	if first.ID != "c" || last.ID != "b" || !first.Stamp.Equal(c.Stamp) {
		t.Errorf("bounds %s..%s", first.ID, last.ID)
	}
}

// ArchivedIDs answers which ids the owner's archive holds, in the order asked, and no other owner's.
func testArchivedIDs(t *testing.T, s storage.Store) {
	sixMessages(t, s)
	archive(t, s, "romeo@example.net", archMsg(40, "juliet@example.com"))
	held, err := s.ArchivedIDs(ctx(t), archOwner, []string{"id04", "nope", "id40", "id00", "id05"})
	must(t, err)
	if want := []string{"id04", "id00", "id05"}; !reflect.DeepEqual(held, want) {
		t.Fatalf("ArchivedIDs: %v, want %v", held, want)
	}
	if held, err := s.ArchivedIDs(ctx(t), archOwner, nil); err != nil || len(held) != 0 {
		t.Fatalf("ArchivedIDs of none: %v, %v", held, err)
	}
}

func testArchiveNotFound(t *testing.T, s storage.Store) {
	_, _, err := s.ArchiveBounds(ctx(t), archOwner)
	wantErr(t, err, storage.ErrNotFound)
	sixMessages(t, s)
	archive(t, s, "other@example.com", archMsg(9, "romeo@example.net"))
	for _, q := range []storage.ArchiveQuery{
		{AfterIDs: []string{"nope"}},
		{BeforeIDs: []string{"id01", "nope"}},
		{IDs: []string{"id01", "nope"}},
		{AfterIDs: []string{"id09"}}, // another archive's
	} {
		_, _, err := s.QueryArchive(ctx(t), archOwner, q)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.CountArchive(ctx(t), archOwner, q)
		wantErr(t, err, storage.ErrNotFound)
	}
}

func testArchiveExpireTrim(t *testing.T, s storage.Store) {
	sixMessages(t, s)
	archive(t, s, "other@example.com", archMsg(0, "romeo@example.net"), archMsg(1, "romeo@example.net"))
	n, err := s.DeleteArchiveBefore(ctx(t), archOwner, stamp.Add(2*time.Second))
	must(t, err)
	if n != 2 {
		t.Errorf("expired %d, want 2", n)
	}
	wantPage(t, s, storage.ArchiveQuery{}, false, "id02", "id03", "id04", "id05")
	n, err = s.TrimArchive(ctx(t), archOwner, 3)
	must(t, err)
	if n != 1 {
		t.Errorf("trimmed %d, want 1", n)
	}
	wantPage(t, s, storage.ArchiveQuery{}, false, "id03", "id04", "id05")
	n, err = s.TrimArchive(ctx(t), archOwner, 3)
	must(t, err)
	if n != 0 {
		t.Errorf("trimmed %d again", n)
	}
	// Ids are not reused after a trim: appending an old id's successor works, the other archive is untouched.
	archive(t, s, archOwner, archMsg(6, "romeo@example.net"))
	wantPage(t, s, storage.ArchiveQuery{Limit: 1, Last: true}, true, "id06")
	// The unbounded count follows appends, expiry and trims (an engine may keep it apart from the rows).
	wantCount(t, s, storage.ArchiveQuery{}, 4)
	wantCount(t, s, storage.ArchiveQuery{Start: stamp}, 4)
	n, err = s.CountArchive(ctx(t), "other@example.com", storage.ArchiveQuery{})
	must(t, err)
	if n != 2 {
		t.Errorf("other archive has %d", n)
	}
}

func testArchivePrefs(t *testing.T, s storage.Store) {
	_, err := s.ArchivePrefs(ctx(t), archOwner)
	wantErr(t, err, storage.ErrNotFound)
	p := storage.ArchivePrefs{Default: "roster", Always: []string{"romeo@example.net"}, Never: []string{"tybalt@example.net", "paris@example.net/x"}}
	must(t, s.SetArchivePrefs(ctx(t), archOwner, p))
	got, err := s.ArchivePrefs(ctx(t), archOwner)
	must(t, err)
	if !reflect.DeepEqual(got, p) {
		t.Errorf("prefs %+v, want %+v", got, p)
	}
	p = storage.ArchivePrefs{Default: "never"}
	must(t, s.SetArchivePrefs(ctx(t), archOwner, p))
	got, err = s.ArchivePrefs(ctx(t), archOwner)
	must(t, err)
	if got.Default != "never" || len(got.Always) != 0 || len(got.Never) != 0 {
		t.Errorf("replaced prefs %+v", got)
	}
	_, err = s.ArchivePrefs(ctx(t), "other@example.com")
	wantErr(t, err, storage.ErrNotFound)
}

func testArchiveDeleteAccount(t *testing.T, s storage.Store) {
	must(t, s.CreateAccount(ctx(t), archOwner, nil))
	sixMessages(t, s)
	must(t, s.SetArchivePrefs(ctx(t), archOwner, storage.ArchivePrefs{Default: "never"}))
	must(t, s.DeleteAccount(ctx(t), archOwner))
	_, _, err := s.ArchiveBounds(ctx(t), archOwner)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.ArchivePrefs(ctx(t), archOwner)
	wantErr(t, err, storage.ErrNotFound)
	wantCount(t, s, storage.ArchiveQuery{}, 0)
	// An account created again starts with an empty archive.
	must(t, s.CreateAccount(ctx(t), archOwner, nil))
	archive(t, s, archOwner, archMsg(7, "romeo@example.net"))
	wantCount(t, s, storage.ArchiveQuery{}, 1)
}
