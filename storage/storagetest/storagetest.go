// Package storagetest is the contract every storage engine must meet. An
// engine's tests call Run with a function that opens a fresh, empty store;
// every subtest gets its own store, so subtests do not see each other's data.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Open returns a fresh, empty store and arranges (t.Cleanup) for it to be
// closed when the test ends.
type Open func(t *testing.T) storage.Store

// Run runs the contract suite against the engine opened by open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"Ping", testPing},
		{"Accounts/CreateAndCredentials", testCreateAndCredentials},
		{"Accounts/CreateExists", testCreateExists},
		{"Accounts/NotFound", testAccountNotFound},
		{"Accounts/SetCredentials", testSetCredentials},
		{"Accounts/Invalid", testAccountInvalid},
		{"Accounts/ListAndCount", testListAndCount},
		{"Accounts/Delete", testDeleteAccount},
		{"Accounts/DeleteCascade", testDeleteCascade},
		{"Roster/Empty", testRosterEmpty},
		{"Roster/PutGet", testRosterPutGet},
		{"Roster/Update", testRosterUpdate},
		{"Roster/Delete", testRosterDelete},
		{"Roster/Ordering", testRosterOrdering},
		{"Roster/Groups", testRosterGroups},
		{"Roster/Invalid", testRosterInvalid},
		{"Roster/VersionsPerOwner", testRosterVersionsPerOwner},
		{"Offline/PushAndRead", testOfflinePushRead},
		{"Offline/Page", testOfflinePage},
		{"Offline/Limit", testOfflineLimit},
		{"Offline/Batch", testOfflineBatch},
		{"Offline/Keyed", testOfflineKeyed},
		{"Offline/Delete", testOfflineDelete},
		{"Offline/DeleteIDs", testOfflineDeleteIDs},
		{"Offline/IDsNotReused", testOfflineIDsNotReused},
		{"Offline/ConcurrentPush", testOfflineConcurrent},
		{"Offline/ConcurrentLimit", testOfflineConcurrentLimit},
		{"Presence", testPresence},
		{"KV", testKV},
		{"PubSub/Nodes", testPubSubNodes},
		{"PubSub/Items", testPubSubItems},
		{"PubSub/MaxItems", testPubSubMaxItems},
		{"PubSub/Replace", testPubSubReplace},
		{"PubSub/Retract", testPubSubRetract},
		{"PubSub/Purge", testPubSubPurge},
		{"PubSub/Members", testPubSubMembers},
		{"PubSub/DeleteNodeCascade", testPubSubDeleteNodeCascade},
		{"PubSub/DeleteService", testPubSubDeleteService},
		{"PubSub/NotFound", testPubSubNotFound},
		{"PubSub/Isolation", testPubSubIsolation},
		{"FastTokens", testFastTokens},
		{"FastTokens/DieWithCredentials", testFastTokensDieWithCredentials},

		// Multi-user chat (muc.go).
		{"MUC/Rooms", testMUCRooms},
		{"MUC/Affiliations", testMUCAffiliations},
		{"MUC/DeleteCascade", testMUCDeleteCascade},

		{"Archive/AppendQuery", testArchiveAppendQuery},
		{"Archive/Batch", testArchiveBatch},
		{"Archive/Paging", testArchivePaging},
		{"Archive/Order", testArchiveOrder},
		{"Archive/NotFound", testArchiveNotFound},
		{"Archive/ArchivedIDs", testArchivedIDs},
		{"Archive/ExpireTrim", testArchiveExpireTrim},
		{"Archive/Prefs", testArchivePrefs},
		{"Archive/DeleteAccount", testArchiveDeleteAccount},
		{"Uploads/Slots", testUploadSlots},
		{"Uploads/Usage", testUploadUsage},
		{"Uploads/Expired", testUploadExpired},
		{"Unicode", testUnicode},
		{"CanceledContext", testCanceled},
		{"ConcurrentMixed", testConcurrentMixed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// stamp is a fixed time with microsecond precision, what every engine keeps.
var stamp = time.Date(2024, 5, 17, 13, 45, 30, 123456000, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func cred(hash string, seed byte) storage.Credential {
	return storage.Credential{
		Hash:       hash,
		Salt:       []byte{seed, 1, 2, 3, 0, 255},
		Iterations: 4096 + int(seed),
		StoredKey:  bytes.Repeat([]byte{seed + 1}, 32),
		ServerKey:  bytes.Repeat([]byte{seed + 2}, 32),
	}
}

func credsEqual(a, b []storage.Credential) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Hash != b[i].Hash || a[i].Iterations != b[i].Iterations ||
			!bytes.Equal(a[i].Salt, b[i].Salt) || !bytes.Equal(a[i].StoredKey, b[i].StoredKey) ||
			!bytes.Equal(a[i].ServerKey, b[i].ServerKey) {
			return false
		}
	}
	return true
}

func testPing(t *testing.T, s storage.Store) {
	must(t, s.Ping(ctx(t)))
}

func testCreateAndCredentials(t *testing.T, s storage.Store) {
	want := []storage.Credential{cred("SHA-256", 1), cred("SHA-1", 2), cred("SHA-512", 3)}
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", want))
	got, err := s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if !credsEqual(got, want) {
		t.Fatalf("Credentials = %+v, want %+v (same order)", got, want)
	}

	// Mutating what the caller passed or got must not reach the store.
	want[0].Salt[0] = 99
	got[1].StoredKey[0] = 99
	again, err := s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if again[0].Salt[0] != 1 || again[1].StoredKey[0] != 3 {
		t.Fatalf("stored credentials alias caller memory: %+v", again)
	}

	// An account may exist without credentials.
	must(t, s.CreateAccount(ctx(t), "romeo@example.com", nil))
	got, err = s.Credentials(ctx(t), "romeo@example.com")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("Credentials of account without any = %+v", got)
	}

	// Empty byte fields round-trip as empty.
	empty := storage.Credential{Hash: "SHA-1", Iterations: 1}
	must(t, s.CreateAccount(ctx(t), "nurse@example.com", []storage.Credential{empty}))
	got, err = s.Credentials(ctx(t), "nurse@example.com")
	must(t, err)
	if len(got) != 1 || len(got[0].Salt) != 0 || len(got[0].StoredKey) != 0 || got[0].Iterations != 1 {
		t.Fatalf("Credentials = %+v, want one empty SHA-1 credential", got)
	}
}

func testCreateExists(t *testing.T, s storage.Store) {
	first := []storage.Credential{cred("SHA-256", 1)}
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", first))
	err := s.CreateAccount(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-256", 7)})
	wantErr(t, err, storage.ErrExists)
	got, err := s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if !credsEqual(got, first) {
		t.Fatalf("failed CreateAccount changed credentials: %+v", got)
	}
	// Same local part, other domain: a different account.
	must(t, s.CreateAccount(ctx(t), "juliet@example.net", nil))
	n, err := s.CountAccounts(ctx(t), "")
	must(t, err)
	if n != 2 {
		t.Fatalf("CountAccounts = %d, want 2", n)
	}
}

func testAccountNotFound(t *testing.T, s storage.Store) {
	_, err := s.Credentials(ctx(t), "ghost@example.com")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.SetCredentials(ctx(t), "ghost@example.com", []storage.Credential{cred("SHA-1", 1)}), storage.ErrNotFound)
	wantErr(t, s.DeleteAccount(ctx(t), "ghost@example.com"), storage.ErrNotFound)
	// SetCredentials on a missing account must not have created one.
	_, err = s.Credentials(ctx(t), "ghost@example.com")
	wantErr(t, err, storage.ErrNotFound)
	// Lookups are exact: no case folding or prefix matching in storage.
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", nil))
	for _, other := range []string{"Juliet@example.com", "juliet@example.co", "juliet@example.com.", "juli@example.com"} {
		_, err := s.Credentials(ctx(t), other)
		wantErr(t, err, storage.ErrNotFound)
	}
}

func testSetCredentials(t *testing.T, s storage.Store) {
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-1", 1), cred("SHA-256", 2)}))
	must(t, s.CreateAccount(ctx(t), "romeo@example.com", []storage.Credential{cred("SHA-1", 5)}))

	// Replaces all: fewer and different credentials.
	next := []storage.Credential{cred("SHA-512", 9)}
	must(t, s.SetCredentials(ctx(t), "juliet@example.com", next))
	got, err := s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if !credsEqual(got, next) {
		t.Fatalf("after SetCredentials: %+v, want %+v", got, next)
	}
	// Same hash names again (no leftover uniqueness conflict).
	next = []storage.Credential{cred("SHA-1", 3), cred("SHA-512", 4)}
	must(t, s.SetCredentials(ctx(t), "juliet@example.com", next))
	got, err = s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if !credsEqual(got, next) {
		t.Fatalf("after second SetCredentials: %+v, want %+v", got, next)
	}
	// To none.
	must(t, s.SetCredentials(ctx(t), "juliet@example.com", nil))
	got, err = s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("after clearing: %+v", got)
	}
	// Other accounts untouched.
	got, err = s.Credentials(ctx(t), "romeo@example.com")
	must(t, err)
	if !credsEqual(got, []storage.Credential{cred("SHA-1", 5)}) {
		t.Fatalf("romeo's credentials changed: %+v", got)
	}
}

func testAccountInvalid(t *testing.T, s storage.Store) {
	for _, bare := range []string{"", "example.com", "@example.com", "juliet@", "juliet@example.com/balcony"} {
		wantErr(t, s.CreateAccount(ctx(t), bare, nil), storage.ErrInvalid)
	}
	for name, creds := range map[string][]storage.Credential{
		"duplicate hash": {cred("SHA-1", 1), cred("SHA-1", 2)},
		"empty hash":     {{Hash: "", Iterations: 1}},
		"no iterations":  {{Hash: "SHA-1"}},
	} {
		wantErr(t, s.CreateAccount(ctx(t), "juliet@example.com", creds), storage.ErrInvalid)
		_, err := s.Credentials(ctx(t), "juliet@example.com")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s: rejected CreateAccount left an account behind (err %v)", name, err)
		}
	}
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-1", 1)}))
	wantErr(t, s.SetCredentials(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-1", 1), cred("SHA-1", 2)}), storage.ErrInvalid)
	got, err := s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if !credsEqual(got, []storage.Credential{cred("SHA-1", 1)}) {
		t.Fatalf("rejected SetCredentials changed credentials: %+v", got)
	}
}

func testListAndCount(t *testing.T, s storage.Store) {
	list, err := s.ListAccounts(ctx(t), "")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("empty store lists %v", list)
	}
	// Inserted out of order, with domains that share suffixes and prefixes so
	// a LIKE '%domain' or prefix match would show.
	all := []string{
		"zed@example.com", "alice@example.com", "bob@sub.example.com", "Carol@example.com",
		"alice@example.com.evil", "dave@xample.com", "erin@example.net", "alice@example.co",
	}
	for _, b := range all {
		must(t, s.CreateAccount(ctx(t), b, nil))
	}
	sorted := slices.Clone(all)
	sort.Strings(sorted)
	list, err = s.ListAccounts(ctx(t), "")
	must(t, err)
	if !reflect.DeepEqual(list, sorted) {
		t.Fatalf("ListAccounts(\"\") = %v, want %v", list, sorted)
	}
	n, err := s.CountAccounts(ctx(t), "")
	must(t, err)
	if n != len(all) {
		t.Fatalf("CountAccounts(\"\") = %d, want %d", n, len(all))
	}
	for domain, want := range map[string][]string{
		"example.com":     {"Carol@example.com", "alice@example.com", "zed@example.com"},
		"sub.example.com": {"bob@sub.example.com"},
		"example.net":     {"erin@example.net"},
		"example.org":     nil,
	} {
		list, err := s.ListAccounts(ctx(t), domain)
		must(t, err)
		if len(list) != len(want) || (len(want) > 0 && !reflect.DeepEqual(list, want)) {
			t.Errorf("ListAccounts(%q) = %v, want %v", domain, list, want)
		}
		n, err := s.CountAccounts(ctx(t), domain)
		must(t, err)
		if n != len(want) {
			t.Errorf("CountAccounts(%q) = %d, want %d", domain, n, len(want))
		}
	}
}

func testDeleteAccount(t *testing.T, s storage.Store) {
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-1", 1)}))
	must(t, s.CreateAccount(ctx(t), "romeo@example.com", []storage.Credential{cred("SHA-1", 2)}))
	must(t, s.DeleteAccount(ctx(t), "juliet@example.com"))
	_, err := s.Credentials(ctx(t), "juliet@example.com")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteAccount(ctx(t), "juliet@example.com"), storage.ErrNotFound)
	list, err := s.ListAccounts(ctx(t), "")
	must(t, err)
	if !reflect.DeepEqual(list, []string{"romeo@example.com"}) {
		t.Fatalf("ListAccounts after delete = %v", list)
	}
	// The name can be registered again, with fresh credentials only.
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-256", 3)}))
	got, err := s.Credentials(ctx(t), "juliet@example.com")
	must(t, err)
	if !credsEqual(got, []storage.Credential{cred("SHA-256", 3)}) {
		t.Fatalf("recreated account credentials = %+v", got)
	}
}

func testDeleteCascade(t *testing.T, s storage.Store) {
	const victim, bystander = "juliet@example.com", "romeo@example.com"
	for _, u := range []string{victim, bystander} {
		must(t, s.CreateAccount(ctx(t), u, []storage.Credential{cred("SHA-1", 1)}))
		for _, c := range []string{"nurse@example.com", "tybalt@example.com"} {
			_, err := s.PutRosterItem(ctx(t), u, storage.RosterItem{JID: c, Subscription: "both", Groups: []string{"Verona"}})
			must(t, err)
		}
		// The bystander lists the victim; deleting the victim's account must
		// not edit other users' rosters.
		_, err := s.PutRosterItem(ctx(t), u, storage.RosterItem{JID: victim, Subscription: "to"})
		must(t, err)
		for i := 0; i < 3; i++ {
			_, err := s.PushOffline(ctx(t), u, fmt.Sprintf("<message id='%d'/>", i), stamp, 0)
			must(t, err)
		}
		must(t, s.SetLastPresence(ctx(t), u, "<presence type='unavailable'/>", stamp))
		must(t, s.PutKV(ctx(t), u, "vcard-temp", "", "<vCard xmlns='vcard-temp'/>"))
		must(t, s.PutKV(ctx(t), u, "jabber:iq:private", "storage:bookmarks", "<storage/>"))
	}

	// The victim writes last, so its version is the highest any roster has:
	// an engine deriving versions from the surviving rows would reuse it.
	oldVersion, err := s.PutRosterItem(ctx(t), victim, storage.RosterItem{JID: "friar@example.com"})
	must(t, err)

	must(t, s.DeleteAccount(ctx(t), victim))

	items, version, err := s.Roster(ctx(t), victim)
	must(t, err)
	if items != nil || version != 0 {
		t.Errorf("victim roster after delete = %v, version %d; want nil, 0", items, version)
	}
	msgs, err := s.OfflineMessages(ctx(t), victim)
	must(t, err)
	if n, err := s.CountOffline(ctx(t), victim); err != nil || n != 0 || len(msgs) != 0 {
		t.Errorf("victim offline after delete: %d messages, count %d, err %v", len(msgs), n, err)
	}
	_, _, err = s.LastPresence(ctx(t), victim)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetKV(ctx(t), victim, "vcard-temp", "")
	wantErr(t, err, storage.ErrNotFound)
	kv, err := s.ListKV(ctx(t), victim, "jabber:iq:private")
	must(t, err)
	if len(kv) != 0 {
		t.Errorf("victim private XML after delete: %v", kv)
	}

	// The bystander keeps everything.
	items, _, err = s.Roster(ctx(t), bystander)
	must(t, err)
	if len(items) != 3 {
		t.Errorf("bystander roster has %d items, want 3 (including the deleted user)", len(items))
	}
	if n, err := s.CountOffline(ctx(t), bystander); err != nil || n != 3 {
		t.Errorf("bystander offline count %d, err %v; want 3", n, err)
	}
	if _, _, err := s.LastPresence(ctx(t), bystander); err != nil {
		t.Errorf("bystander last presence: %v", err)
	}
	if v, err := s.GetKV(ctx(t), bystander, "vcard-temp", ""); err != nil || v != "<vCard xmlns='vcard-temp'/>" {
		t.Errorf("bystander vCard = %q, %v", v, err)
	}

	// A re-registered account starts empty, and its roster versions never
	// repeat one the deleted account had: a client that cached the old
	// roster under an old version must not match the new roster.
	must(t, s.CreateAccount(ctx(t), victim, nil))
	items, version, err = s.Roster(ctx(t), victim)
	must(t, err)
	if items != nil || version != 0 {
		t.Errorf("recreated roster = %v, version %d; want nil, 0", items, version)
	}
	v, err := s.PutRosterItem(ctx(t), victim, storage.RosterItem{JID: "nurse@example.com"})
	must(t, err)
	if v <= oldVersion {
		t.Errorf("recreated account roster version %d, not above the deleted account's %d", v, oldVersion)
	}
}

func testRosterEmpty(t *testing.T, s storage.Store) {
	items, version, err := s.Roster(ctx(t), "juliet@example.com")
	if err != nil || items != nil || version != 0 {
		t.Fatalf("Roster of nobody = %v, %d, %v; want nil, 0, nil", items, version, err)
	}
}

func fullItem() storage.RosterItem {
	return storage.RosterItem{
		JID:             "romeo@example.net",
		Name:            "Romeo",
		Groups:          []string{"Friends", "Lovers"},
		Subscription:    "from",
		Ask:             true,
		PendingIn:       true,
		PendingInStanza: "<presence from='romeo@example.net' to='juliet@example.com' type='subscribe'><status>Wherefore?</status></presence>",
		PreApproved:     true,
	}
}

func testRosterPutGet(t *testing.T, s storage.Store) {
	it := fullItem()
	v1, err := s.PutRosterItem(ctx(t), "juliet@example.com", it)
	must(t, err)
	if v1 <= 0 {
		t.Fatalf("first version = %d, want > 0", v1)
	}
	items, version, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if version != v1 {
		t.Errorf("Roster version = %d, PutRosterItem returned %d", version, v1)
	}
	if len(items) != 1 || !reflect.DeepEqual(items[0], it) {
		t.Fatalf("Roster = %+v, want [%+v]", items, it)
	}

	// Each boolean on its own, so a column mix-up shows.
	for i, flip := range []func(*storage.RosterItem){
		func(it *storage.RosterItem) { it.Ask = false },
		func(it *storage.RosterItem) { it.PendingIn = false; it.PendingInStanza = "" },
		func(it *storage.RosterItem) { it.PreApproved = false },
	} {
		it := fullItem()
		it.JID = fmt.Sprintf("contact%d@example.org", i)
		flip(&it)
		_, err := s.PutRosterItem(ctx(t), "juliet@example.com", it)
		must(t, err)
		items, _, err := s.Roster(ctx(t), "juliet@example.com")
		must(t, err)
		got := findItem(items, it.JID)
		if got == nil || !reflect.DeepEqual(*got, it) {
			t.Errorf("item %d = %+v, want %+v", i, got, it)
		}
	}

	// "" subscription is stored as "none".
	_, err = s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: "benvolio@example.net"})
	must(t, err)
	items, _, err = s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	got := findItem(items, "benvolio@example.net")
	if got == nil || got.Subscription != "none" || got.Groups != nil || got.Name != "" || got.Ask || got.PendingIn || got.PreApproved {
		t.Fatalf("minimal item = %+v, want subscription none and zero values", got)
	}
}

func findItem(items []storage.RosterItem, jid string) *storage.RosterItem {
	for i := range items {
		if items[i].JID == jid {
			return &items[i]
		}
	}
	return nil
}

func testRosterUpdate(t *testing.T, s storage.Store) {
	it := fullItem()
	v1, err := s.PutRosterItem(ctx(t), "juliet@example.com", it)
	must(t, err)
	it = storage.RosterItem{JID: it.JID, Name: "Montague", Subscription: "both"}
	v2, err := s.PutRosterItem(ctx(t), "juliet@example.com", it)
	must(t, err)
	if v2 <= v1 {
		t.Fatalf("version after update = %d, not above %d", v2, v1)
	}
	items, version, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if version != v2 || len(items) != 1 || !reflect.DeepEqual(items[0], it) {
		t.Fatalf("after update: %+v version %d; want [%+v] version %d", items, version, it, v2)
	}
	// Every write bumps, even one that changes nothing.
	v3, err := s.PutRosterItem(ctx(t), "juliet@example.com", it)
	must(t, err)
	if v3 <= v2 {
		t.Fatalf("version after identical put = %d, not above %d", v3, v2)
	}
}

func testRosterDelete(t *testing.T, s storage.Store) {
	_, err := s.DeleteRosterItem(ctx(t), "juliet@example.com", "romeo@example.net")
	wantErr(t, err, storage.ErrNotFound)

	v1, err := s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: "romeo@example.net"})
	must(t, err)
	v2, err := s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: "nurse@example.com"})
	must(t, err)
	if v2 <= v1 {
		t.Fatalf("second put version %d, not above %d", v2, v1)
	}
	v3, err := s.DeleteRosterItem(ctx(t), "juliet@example.com", "romeo@example.net")
	must(t, err)
	if v3 <= v2 {
		t.Fatalf("delete version %d, not above %d", v3, v2)
	}
	_, err = s.DeleteRosterItem(ctx(t), "juliet@example.com", "romeo@example.net")
	wantErr(t, err, storage.ErrNotFound)
	items, version, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if version != v3 {
		t.Errorf("failed delete changed version: %d, want %d", version, v3)
	}
	if len(items) != 1 || items[0].JID != "nurse@example.com" {
		t.Fatalf("after delete: %+v", items)
	}
	// Emptied roster: no items but a version, so a client holding v3's
	// predecessor learns that the roster changed.
	v4, err := s.DeleteRosterItem(ctx(t), "juliet@example.com", "nurse@example.com")
	must(t, err)
	items, version, err = s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if items != nil || version != v4 || v4 <= v3 {
		t.Fatalf("emptied roster = %v, version %d; want nil, %d (> %d)", items, version, v4, v3)
	}
}

func testRosterOrdering(t *testing.T, s storage.Store) {
	jids := []string{"zoe@example.com", "Adam@example.com", "adam@example.com", "example.com", "bob@a.example", "émile@example.fr", "bob@example.com/phone"}
	for _, j := range jids {
		_, err := s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: j})
		must(t, err)
	}
	items, _, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	var got []string
	for _, it := range items {
		got = append(got, it.JID)
	}
	want := slices.Clone(jids)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("roster order = %v, want bytewise %v", got, want)
	}
}

func testRosterGroups(t *testing.T, s storage.Store) {
	cases := [][]string{
		nil,
		{"One"},
		{"z-last", "a-first", "Middle"}, // order preserved, not sorted
		{"with space", "with,comma", "with\"quote", "with\\backslash", "with<xml>&amp;", "[brackets]", "with\nnewline"},
		{"", "empty name above"},
		{"Ελληνικά", "日本語", "emoji 😀"},
	}
	for i, groups := range cases {
		jid := fmt.Sprintf("c%d@example.com", i)
		_, err := s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: jid, Groups: groups})
		must(t, err)
	}
	items, _, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	for i, groups := range cases {
		got := findItem(items, fmt.Sprintf("c%d@example.com", i))
		if got == nil || !reflect.DeepEqual(got.Groups, groups) {
			t.Errorf("groups %d = %#v, want %#v", i, got, groups)
		}
	}
	// An empty non-nil slice reads back as nil.
	_, err = s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: "c0@example.com", Groups: []string{}})
	must(t, err)
	items, _, err = s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if g := findItem(items, "c0@example.com").Groups; g != nil {
		t.Errorf("empty groups read back as %#v, want nil", g)
	}
}

func testRosterInvalid(t *testing.T, s storage.Store) {
	for _, it := range []storage.RosterItem{
		{JID: "romeo@example.net", Subscription: "remove"},
		{JID: "romeo@example.net", Subscription: "Both"},
		{JID: ""},
	} {
		_, err := s.PutRosterItem(ctx(t), "juliet@example.com", it)
		wantErr(t, err, storage.ErrInvalid)
	}
	items, version, err := s.Roster(ctx(t), "juliet@example.com")
	if err != nil || items != nil || version != 0 {
		t.Fatalf("rejected puts left %v, version %d, %v", items, version, err)
	}
}

func testRosterVersionsPerOwner(t *testing.T, s storage.Store) {
	va, err := s.PutRosterItem(ctx(t), "juliet@example.com", storage.RosterItem{JID: "romeo@example.net"})
	must(t, err)
	_, err = s.PutRosterItem(ctx(t), "romeo@example.net", storage.RosterItem{JID: "juliet@example.com"})
	must(t, err)
	items, version, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if version != va || len(items) != 1 {
		t.Fatalf("juliet's roster changed by romeo's write: version %d (want %d), %d items", version, va, len(items))
	}
}

func testOfflinePushRead(t *testing.T, s storage.Store) {
	msgs, err := s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	if len(msgs) != 0 {
		t.Fatalf("empty queue = %v", msgs)
	}
	// A stamp in another zone comes back as the same instant, in UTC.
	cest := time.FixedZone("CEST", 2*3600)
	var want []storage.OfflineMessage
	for i := 0; i < 5; i++ {
		st := stamp.Add(time.Duration(i) * time.Second).In(cest)
		stanza := fmt.Sprintf("<message from='romeo@example.net' to='juliet@example.com' id='m%d'><body>%d</body></message>", i, i)
		id, err := s.PushOffline(ctx(t), "juliet@example.com", stanza, st, 0)
		must(t, err)
		if len(want) > 0 && id <= want[len(want)-1].ID {
			t.Fatalf("id %d not above previous %d", id, want[len(want)-1].ID)
		}
		want = append(want, storage.OfflineMessage{ID: id, Stanza: stanza, Stamp: st})
	}
	_, err = s.PushOffline(ctx(t), "romeo@example.net", "<message/>", stamp, 0)
	must(t, err)

	msgs, err = s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		m := msgs[i]
		if m.ID != want[i].ID || m.Stanza != want[i].Stanza || !m.Stamp.Equal(want[i].Stamp) || m.Stamp.Location() != time.UTC {
			t.Errorf("message %d = %+v, want %+v (UTC)", i, m, want[i])
		}
	}
	n, err := s.CountOffline(ctx(t), "juliet@example.com")
	must(t, err)
	if n != 5 {
		t.Errorf("CountOffline = %d, want 5", n)
	}

	// Microsecond precision is kept; finer is truncated by some engines, so
	// only check that nothing coarser than a microsecond is lost.
	fine := stamp.Add(789 * time.Nanosecond)
	_, err = s.PushOffline(ctx(t), "nurse@example.com", "<message/>", fine, 0)
	must(t, err)
	msgs, err = s.OfflineMessages(ctx(t), "nurse@example.com")
	must(t, err)
	if d := fine.Sub(msgs[0].Stamp); d < 0 || d >= time.Microsecond {
		t.Errorf("stamp %v read back as %v", fine, msgs[0].Stamp)
	}
}

func testOfflineLimit(t *testing.T, s storage.Store) {
	for i := 0; i < 3; i++ {
		_, err := s.PushOffline(ctx(t), "juliet@example.com", "<message/>", stamp, 3)
		must(t, err)
	}
	_, err := s.PushOffline(ctx(t), "juliet@example.com", "<message id='over'/>", stamp, 3)
	wantErr(t, err, storage.ErrLimit)
	// A lower limit than the queue length also refuses.
	_, err = s.PushOffline(ctx(t), "juliet@example.com", "<message/>", stamp, 1)
	wantErr(t, err, storage.ErrLimit)
	if n, err := s.CountOffline(ctx(t), "juliet@example.com"); err != nil || n != 3 {
		t.Fatalf("after refused pushes: count %d, err %v; want 3", n, err)
	}
	// The limit is per owner.
	_, err = s.PushOffline(ctx(t), "romeo@example.net", "<message/>", stamp, 3)
	must(t, err)
	// max <= 0: no limit.
	for _, max := range []int{0, -1} {
		_, err = s.PushOffline(ctx(t), "juliet@example.com", "<message/>", stamp, max)
		must(t, err)
	}
	// Room again after delivery.
	msgs, err := s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	must(t, s.DeleteOffline(ctx(t), "juliet@example.com", msgs[len(msgs)-1].ID))
	_, err = s.PushOffline(ctx(t), "juliet@example.com", "<message/>", stamp, 1)
	must(t, err)
}

func testOfflineBatch(t *testing.T, s storage.Store) {
	batch := func(ids ...string) []storage.OfflineInput {
		var out []storage.OfflineInput
		for _, id := range ids {
			out = append(out, storage.OfflineInput{Stanza: "<message id='" + id + "'/>", Stamp: stamp})
		}
		return out
	}
	_, err := s.PushOffline(ctx(t), "juliet@example.com", "<message id='first'/>", stamp, 0)
	must(t, err)
	n, err := s.PushOfflineBatch(ctx(t), "juliet@example.com", batch("a", "b", "c", "d"), 3)
	must(t, err)
	if n != 2 {
		t.Fatalf("batch of 4 with room for 2: stored %d", n)
	}
	n, err = s.PushOfflineBatch(ctx(t), "juliet@example.com", batch("e"), 3)
	if err != nil || n != 0 {
		t.Fatalf("batch into a full queue: stored %d, err %v", n, err)
	}
	n, err = s.PushOfflineBatch(ctx(t), "juliet@example.com", nil, 0)
	if err != nil || n != 0 {
		t.Fatalf("empty batch: stored %d, err %v", n, err)
	}
	n, err = s.PushOfflineBatch(ctx(t), "romeo@example.net", batch("x", "y"), 0)
	if err != nil || n != 2 {
		t.Fatalf("unlimited batch: stored %d, err %v", n, err)
	}
	msgs, err := s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Stanza)
	}
	want := []string{"<message id='first'/>", "<message id='a'/>", "<message id='b'/>"}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("queue %q, want %q (in order)", got, want)
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].ID <= msgs[i-1].ID {
			t.Fatalf("ids not increasing: %v", msgs)
		}
	}
}

// A message with an idempotency key is queued at most once per owner: a second push of the key (in a later
// batch, or the same one) stores nothing, succeeds and counts as stored, and takes no room under the limit; the
// same key for another owner is stored; unkeyed messages are not affected; once delivered (deleted), the key is
// free again.
func testOfflineKeyed(t *testing.T, s storage.Store) {
	const owner, other = "juliet@example.com", "romeo@example.net"
	keyed := func(id, key string) storage.OfflineInput {
		return storage.OfflineInput{Stanza: "<message id='" + id + "'/>", Stamp: stamp, Key: key}
	}
	queue := func(owner string) (got []string) {
		t.Helper()
		msgs, err := s.OfflineMessages(ctx(t), owner)
		must(t, err)
		for _, m := range msgs {
			got = append(got, m.Stanza)
		}
		return got
	}
	push := func(owner string, max int, want int, in ...storage.OfflineInput) {
		t.Helper()
		n, err := s.PushOfflineBatch(ctx(t), owner, in, max)
		if err != nil || n != want {
			t.Fatalf("push %d to %s (max %d): stored %d, err %v; want %d", len(in), owner, max, n, err, want)
		}
	}
	push(owner, 0, 3, keyed("a", "k1"), keyed("plain", ""), keyed("b", "k2"))
	push(owner, 0, 2, keyed("a-again", "k1"), keyed("plain", "")) // k1 is queued: counted, not stored
	push(owner, 0, 2, keyed("c", "k3"), keyed("c-again", "k3"))   // twice in one batch: once
	push(other, 0, 1, keyed("a", "k1"))                           // another owner's queue is apart
	want := []string{"<message id='a'/>", "<message id='plain'/>", "<message id='b'/>", "<message id='plain'/>", "<message id='c'/>"}
	if got := queue(owner); strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("queue %q, want %q", got, want)
	}
	if got := queue(other); len(got) != 1 {
		t.Fatalf("the other owner's queue %q, want its one message", got)
	}
	// A full queue (5 of 5): a key it holds is still stored (no room needed), a new one hits the limit and so
	// does everything after it.
	push(owner, 5, 1, keyed("b-again", "k2"), keyed("d", "k4"), keyed("e", "k2"))
	if got := queue(owner); len(got) != 5 {
		t.Fatalf("full queue: %d messages, want 5", len(got))
	}
	// Delivered (deleted), the key may be queued again: the queue only remembers what it holds.
	msgs, err := s.OfflineMessages(ctx(t), owner)
	must(t, err)
	must(t, s.DeleteOffline(ctx(t), owner, msgs[len(msgs)-1].ID))
	push(owner, 0, 1, keyed("a-later", "k1"))
	if got := queue(owner); len(got) != 1 || got[0] != "<message id='a-later'/>" {
		t.Fatalf("after delivery: %q", got)
	}
}

// queueOffline pushes n messages <message id='0'/>… to owner's queue and returns their ids.
func queueOffline(t *testing.T, s storage.Store, owner string, n int) []int64 {
	t.Helper()
	var ids []int64
	for i := 0; i < n; i++ {
		id, err := s.PushOffline(ctx(t), owner, fmt.Sprintf("<message id='%d'/>", i), stamp, 0)
		must(t, err)
		ids = append(ids, id)
	}
	return ids
}

// DeleteOfflineIDs removes exactly the ids named, of that owner only; the queue keeps its order.
func testOfflineDeleteIDs(t *testing.T, s storage.Store) {
	ids := queueOffline(t, s, "juliet@example.com", 5)
	other, err := s.PushOffline(ctx(t), "romeo@example.net", "<message/>", stamp, 0)
	must(t, err)
	must(t, s.DeleteOfflineIDs(ctx(t), "juliet@example.com", []int64{ids[3], ids[0], other, 1 << 62}))
	must(t, s.DeleteOfflineIDs(ctx(t), "juliet@example.com", nil))
	msgs, err := s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	var got []string
	for _, m := range msgs {
		got = append(got, m.Stanza)
	}
	if want := []string{"<message id='1'/>", "<message id='2'/>", "<message id='4'/>"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after DeleteOfflineIDs: %v, want %v", got, want)
	}
	if n, err := s.CountOffline(ctx(t), "romeo@example.net"); err != nil || n != 1 {
		t.Fatalf("romeo's queue after juliet's delete: %d, %v", n, err)
	}
}

func testOfflineDelete(t *testing.T, s storage.Store) {
	ids := queueOffline(t, s, "juliet@example.com", 6)
	other, err := s.PushOffline(ctx(t), "romeo@example.net", "<message/>", stamp, 0)
	must(t, err)
	// Deleting up to an id also removes nothing of other owners, even ones
	// with smaller ids.
	must(t, s.DeleteOffline(ctx(t), "juliet@example.com", ids[2]))
	msgs, err := s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	if len(msgs) != 3 || msgs[0].ID != ids[3] || msgs[0].Stanza != "<message id='3'/>" {
		t.Fatalf("after DeleteOffline(%d): %+v", ids[2], msgs)
	}
	// Nothing to delete is no error.
	must(t, s.DeleteOffline(ctx(t), "juliet@example.com", ids[2]))
	must(t, s.DeleteOffline(ctx(t), "nobody@example.com", 1<<62))
	must(t, s.DeleteOffline(ctx(t), "juliet@example.com", ids[5]))
	if n, err := s.CountOffline(ctx(t), "juliet@example.com"); err != nil || n != 0 {
		t.Fatalf("after deleting all: count %d, err %v", n, err)
	}
	msgs, err = s.OfflineMessages(ctx(t), "romeo@example.net")
	must(t, err)
	if len(msgs) != 1 || msgs[0].ID != other {
		t.Fatalf("romeo's queue: %+v", msgs)
	}
}

func testOfflineIDsNotReused(t *testing.T, s storage.Store) {
	id1, err := s.PushOffline(ctx(t), "juliet@example.com", "<message/>", stamp, 0)
	must(t, err)
	must(t, s.DeleteOffline(ctx(t), "juliet@example.com", id1))
	id2, err := s.PushOffline(ctx(t), "juliet@example.com", "<message/>", stamp, 0)
	must(t, err)
	if id2 <= id1 {
		t.Fatalf("id after deleting the newest message = %d, not above %d: a stale DeleteOffline(%d) would delete it", id2, id1, id1)
	}
}

func testOfflineConcurrent(t *testing.T, s storage.Store) {
	const workers, each = 50, 4
	type pushed struct {
		id     int64
		stanza string
	}
	results := make([][]pushed, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				stanza := fmt.Sprintf("<message id='w%d-%d'/>", w, i)
				id, err := s.PushOffline(context.Background(), "juliet@example.com", stanza, stamp, 0)
				if err != nil {
					errs <- err
					return
				}
				results[w] = append(results[w], pushed{id, stanza})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent push: %v", err)
	}
	byID := map[int64]string{}
	for w, rs := range results {
		for i, r := range rs {
			if i > 0 && r.id <= rs[i-1].id {
				t.Fatalf("worker %d: id %d after %d", w, r.id, rs[i-1].id)
			}
			if _, dup := byID[r.id]; dup {
				t.Fatalf("id %d returned twice", r.id)
			}
			byID[r.id] = r.stanza
		}
	}
	msgs, err := s.OfflineMessages(ctx(t), "juliet@example.com")
	must(t, err)
	if len(msgs) != workers*each {
		t.Fatalf("queue has %d messages, want %d", len(msgs), workers*each)
	}
	for i, m := range msgs {
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Fatalf("queue not in id order at %d: %d after %d", i, m.ID, msgs[i-1].ID)
		}
		if byID[m.ID] != m.Stanza {
			t.Fatalf("message %d = %q, push returned that id for %q", m.ID, m.Stanza, byID[m.ID])
		}
	}
}

func testOfflineConcurrentLimit(t *testing.T, s storage.Store) {
	const workers, max = 50, 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
		other    []error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.PushOffline(context.Background(), "juliet@example.com", fmt.Sprintf("<message id='%d'/>", w), stamp, max)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, storage.ErrLimit):
				full++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("unexpected errors: %v", other)
	}
	if ok != max || full != workers-max {
		t.Fatalf("%d pushes succeeded and %d hit the limit; want %d and %d", ok, full, max, workers-max)
	}
	if n, err := s.CountOffline(ctx(t), "juliet@example.com"); err != nil || n != max {
		t.Fatalf("count %d, err %v; want %d", n, err, max)
	}
}

func testPresence(t *testing.T, s storage.Store) {
	_, _, err := s.LastPresence(ctx(t), "juliet@example.com")
	wantErr(t, err, storage.ErrNotFound)

	p1 := "<presence from='juliet@example.com/balcony' type='unavailable'><status>Gone</status></presence>"
	must(t, s.SetLastPresence(ctx(t), "juliet@example.com", p1, stamp.In(time.FixedZone("X", -5*3600))))
	got, at, err := s.LastPresence(ctx(t), "juliet@example.com")
	must(t, err)
	if got != p1 || !at.Equal(stamp) || at.Location() != time.UTC {
		t.Fatalf("LastPresence = %q at %v, want %q at %v UTC", got, at, p1, stamp)
	}
	p2 := "<presence type='unavailable'/>"
	later := stamp.Add(time.Hour)
	must(t, s.SetLastPresence(ctx(t), "juliet@example.com", p2, later))
	got, at, err = s.LastPresence(ctx(t), "juliet@example.com")
	must(t, err)
	if got != p2 || !at.Equal(later) {
		t.Fatalf("after overwrite: %q at %v, want %q at %v", got, at, p2, later)
	}
	_, _, err = s.LastPresence(ctx(t), "romeo@example.net")
	wantErr(t, err, storage.ErrNotFound)
}

func testKV(t *testing.T, s storage.Store) {
	const owner = "juliet@example.com"
	// PutKVIfAbsent: the first value stays; later ones get it back, and the key is an ordinary KV entry.
	v, err := s.PutKVIfAbsent(ctx(t), "", "urn:xmppd:test", "secret", "first")
	if err != nil || v != "first" {
		t.Fatalf("PutKVIfAbsent on an empty key = %q, %v; want first", v, err)
	}
	if v, err = s.PutKVIfAbsent(ctx(t), "", "urn:xmppd:test", "secret", "second"); err != nil || v != "first" {
		t.Fatalf("PutKVIfAbsent on a stored key = %q, %v; want first", v, err)
	}
	if v, err = s.GetKV(ctx(t), "", "urn:xmppd:test", "secret"); err != nil || v != "first" {
		t.Fatalf("GetKV after PutKVIfAbsent = %q, %v", v, err)
	}
	// Writers racing on one key all get one value.
	vals := make(chan string, 8)
	for i := range 8 {
		go func() {
			v, err := s.PutKVIfAbsent(ctx(t), "", "urn:xmppd:test", "raced", fmt.Sprint("w", i))
			if err != nil {
				v = "error: " + err.Error()
			}
			vals <- v
		}()
	}
	first := <-vals
	for range 7 {
		if v := <-vals; v != first {
			t.Fatalf("racing PutKVIfAbsent: %q and %q", first, v)
		}
	}
	must(t, s.DeleteKV(ctx(t), "", "urn:xmppd:test", "secret"))
	must(t, s.DeleteKV(ctx(t), "", "urn:xmppd:test", "raced"))
	_, err = s.GetKV(ctx(t), owner, "vcard-temp", "")
	wantErr(t, err, storage.ErrNotFound)
	m, err := s.ListKV(ctx(t), owner, "jabber:iq:private")
	must(t, err)
	if m == nil || len(m) != 0 {
		t.Fatalf("ListKV of nothing = %#v, want empty non-nil map", m)
	}

	must(t, s.PutKV(ctx(t), owner, "vcard-temp", "", "<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>"))
	must(t, s.PutKV(ctx(t), owner, "jabber:iq:private", "storage:bookmarks", "<storage xmlns='storage:bookmarks'/>"))
	must(t, s.PutKV(ctx(t), owner, "jabber:iq:private", "storage:rosternotes", "<storage xmlns='storage:rosternotes'/>"))
	must(t, s.PutKV(ctx(t), "romeo@example.net", "jabber:iq:private", "storage:bookmarks", "<romeo/>"))
	must(t, s.PutKV(ctx(t), owner, "urn:xmpp:blocking", "list", "")) // empty value is a value

	v, err = s.GetKV(ctx(t), owner, "vcard-temp", "")
	must(t, err)
	if v != "<vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>" {
		t.Fatalf("GetKV = %q", v)
	}
	v, err = s.GetKV(ctx(t), owner, "urn:xmpp:blocking", "list")
	if err != nil || v != "" {
		t.Fatalf("empty value: %q, %v", v, err)
	}
	// Keys are scoped by namespace.
	_, err = s.GetKV(ctx(t), owner, "vcard-temp", "storage:bookmarks")
	wantErr(t, err, storage.ErrNotFound)

	m, err = s.ListKV(ctx(t), owner, "jabber:iq:private")
	must(t, err)
	want := map[string]string{
		"storage:bookmarks":   "<storage xmlns='storage:bookmarks'/>",
		"storage:rosternotes": "<storage xmlns='storage:rosternotes'/>",
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("ListKV = %v, want %v", m, want)
	}

	must(t, s.PutKV(ctx(t), owner, "jabber:iq:private", "storage:bookmarks", "<storage xmlns='storage:bookmarks'><conference/></storage>"))
	v, err = s.GetKV(ctx(t), owner, "jabber:iq:private", "storage:bookmarks")
	must(t, err)
	if v != "<storage xmlns='storage:bookmarks'><conference/></storage>" {
		t.Fatalf("after overwrite: %q", v)
	}

	must(t, s.DeleteKV(ctx(t), owner, "jabber:iq:private", "storage:bookmarks"))
	must(t, s.DeleteKV(ctx(t), owner, "jabber:iq:private", "storage:bookmarks")) // absent: no error
	_, err = s.GetKV(ctx(t), owner, "jabber:iq:private", "storage:bookmarks")
	wantErr(t, err, storage.ErrNotFound)
	v, err = s.GetKV(ctx(t), "romeo@example.net", "jabber:iq:private", "storage:bookmarks")
	if err != nil || v != "<romeo/>" {
		t.Fatalf("other owner's value: %q, %v", v, err)
	}
	m, err = s.ListKV(ctx(t), owner, "jabber:iq:private")
	must(t, err)
	if len(m) != 1 {
		t.Fatalf("ListKV after delete = %v", m)
	}

	// Large value (a vCard with a photo).
	big := "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + string(bytes.Repeat([]byte("QUJD"), 64<<10)) + "</BINVAL></PHOTO></vCard>"
	must(t, s.PutKV(ctx(t), owner, "vcard-temp", "", big))
	v, err = s.GetKV(ctx(t), owner, "vcard-temp", "")
	must(t, err)
	if v != big {
		t.Fatalf("large value: got %d bytes, want %d", len(v), len(big))
	}
}

func testUnicode(t *testing.T, s storage.Store) {
	// Prepared (RFC 7622) JIDs may contain any Unicode; storage must keep
	// the bytes, not fold or normalise them: "ß" vs "ss", composed é vs e+◌́.
	users := []string{"ju̇liet@例え.jp", "straße@example.de", "strasse@example.de", "é@example.fr", "e\u0301@example.fr"}
	for i, u := range users {
		must(t, s.CreateAccount(ctx(t), u, []storage.Credential{cred("SHA-256", byte(i))}))
	}
	for i, u := range users {
		got, err := s.Credentials(ctx(t), u)
		must(t, err)
		if !credsEqual(got, []storage.Credential{cred("SHA-256", byte(i))}) {
			t.Errorf("%q: credentials of another account", u)
		}
	}
	list, err := s.ListAccounts(ctx(t), "例え.jp")
	must(t, err)
	if !reflect.DeepEqual(list, []string{"ju̇liet@例え.jp"}) {
		t.Errorf("ListAccounts(例え.jp) = %v", list)
	}

	it := storage.RosterItem{JID: "ромео@пример.рф", Name: "Ромео 🌹", Groups: []string{"家族", "друзья"}, Subscription: "both"}
	_, err = s.PutRosterItem(ctx(t), users[0], it)
	must(t, err)
	items, _, err := s.Roster(ctx(t), users[0])
	must(t, err)
	if len(items) != 1 || !reflect.DeepEqual(items[0], it) {
		t.Errorf("unicode roster item = %+v, want %+v", items, it)
	}

	stanza := "<message><body>Ο Ρωμαίος 💘 ジュリエット — \u200d\U0001F469\u200d</body></message>"
	_, err = s.PushOffline(ctx(t), users[0], stanza, stamp, 0)
	must(t, err)
	msgs, err := s.OfflineMessages(ctx(t), users[0])
	must(t, err)
	if len(msgs) != 1 || msgs[0].Stanza != stanza {
		t.Errorf("unicode stanza = %+v", msgs)
	}

	must(t, s.PutKV(ctx(t), users[1], "urn:例", "ключ", "<v>значение</v>"))
	v, err := s.GetKV(ctx(t), users[1], "urn:例", "ключ")
	if err != nil || v != "<v>значение</v>" {
		t.Errorf("unicode kv = %q, %v", v, err)
	}
	_, err = s.GetKV(ctx(t), users[2], "urn:例", "ключ")
	wantErr(t, err, storage.ErrNotFound)

	must(t, s.SetLastPresence(ctx(t), users[3], "<presence><status>partí</status></presence>", stamp))
	_, _, err = s.LastPresence(ctx(t), users[4])
	wantErr(t, err, storage.ErrNotFound)
}

func testCanceled(t *testing.T, s storage.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.PushOffline(c, "juliet@example.com", "<message/>", stamp, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("PushOffline with canceled context: %v", err)
	}
	if err := s.CreateAccount(c, "juliet@example.com", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateAccount with canceled context: %v", err)
	}
	if _, _, err := s.Roster(c, "juliet@example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("Roster with canceled context: %v", err)
	}
	// Nothing was written.
	if n, err := s.CountOffline(ctx(t), "juliet@example.com"); err != nil || n != 0 {
		t.Errorf("after canceled push: count %d, err %v", n, err)
	}
	if _, err := s.Credentials(ctx(t), "juliet@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after canceled create: %v", err)
	}
}

// testConcurrentMixed runs readers and writers of every kind at once; an
// engine that lets SQLITE_BUSY or a deadlock through fails here.
func testConcurrentMixed(t *testing.T, s storage.Store) {
	const workers, rounds = 8, 20
	must(t, s.CreateAccount(ctx(t), "juliet@example.com", []storage.Credential{cred("SHA-1", 1)}))
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := context.Background()
			contact := fmt.Sprintf("c%d@example.com", w)
			for i := 0; i < rounds; i++ {
				if _, err := s.PutRosterItem(c, "juliet@example.com", storage.RosterItem{JID: contact, Name: fmt.Sprint(i)}); err != nil {
					errs <- err
				}
				if _, _, err := s.Roster(c, "juliet@example.com"); err != nil {
					errs <- err
				}
				if err := s.PutKV(c, "juliet@example.com", "ns", contact, fmt.Sprint(i)); err != nil {
					errs <- err
				}
				if _, err := s.Credentials(c, "juliet@example.com"); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	items, _, err := s.Roster(ctx(t), "juliet@example.com")
	must(t, err)
	if len(items) != workers {
		t.Fatalf("%d roster items, want %d", len(items), workers)
	}
	for _, it := range items {
		if it.Name != fmt.Sprint(rounds-1) {
			t.Errorf("%s: last write lost, name %q", it.JID, it.Name)
		}
	}
}

func testOfflinePage(t *testing.T, s storage.Store) {
	const owner = "paged@example.com"
	msgs, more, err := s.OfflinePage(ctx(t), owner, 100)
	must(t, err)
	if len(msgs) != 0 || more {
		t.Fatalf("empty queue: %v, more %v", msgs, more)
	}
	var ids []int64
	for i := 0; i < 5; i++ {
		stanza := fmt.Sprintf("<message id='p%d'><body>%s</body></message>", i, strings.Repeat("x", 60)) // 100 bytes
		id, err := s.PushOffline(ctx(t), owner, stanza, stamp, 0)
		must(t, err)
		ids = append(ids, id)
	}
	for _, tc := range []struct {
		max  int
		want int
		more bool
	}{{1, 1, true}, {100, 1, true}, {200, 2, true}, {299, 2, true}, {500, 5, false}, {1 << 20, 5, false}} {
		msgs, more, err := s.OfflinePage(ctx(t), owner, tc.max)
		must(t, err)
		if len(msgs) != tc.want || more != tc.more {
			t.Fatalf("page of %d bytes: %d messages, more %v; want %d, %v", tc.max, len(msgs), more, tc.want, tc.more)
		}
		for i, m := range msgs {
			if m.ID != ids[i] || !m.Stamp.Equal(stamp) {
				t.Fatalf("page of %d bytes: message %d is %+v, want id %d oldest first", tc.max, i, m, ids[i])
			}
		}
	}
	must(t, s.DeleteOffline(ctx(t), owner, ids[1]))
	msgs, more, err = s.OfflinePage(ctx(t), owner, 200)
	must(t, err)
	if len(msgs) != 2 || msgs[0].ID != ids[2] || !more {
		t.Fatalf("after deleting the first page: %v, more %v", msgs, more)
	}
}
