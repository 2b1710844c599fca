// Package measured decorates a storage.Store with a latency histogram and an error counter per call.
package measured

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xmppd/xmppd/storage"
)

// Store decorates a storage.Store with the latency histogram and error counter of every call. It holds no
// state of its own: the instruments are atomic and the wrapped store is safe for concurrent use by contract.
type Store struct {
	s   storage.Store
	lat *prometheus.HistogramVec
	err *prometheus.CounterVec
}

// Wrap wraps s so that every call is observed in lat (seconds, by operation) and failures counted in errs.
func Wrap(s storage.Store, lat *prometheus.HistogramVec, errs *prometheus.CounterVec) storage.Store {
	return &Store{s: s, lat: lat, err: errs}
}

// done records one call that started at t. ErrNotFound, ErrExists and ErrLimit are answers, not failures. The
// error series of op is created on its first call, failed or not, so a scrape shows 0 rather than nothing (the
// dashboard and the alert rules in docs/ query it).
func (t *Store) done(op string, start time.Time, err error) {
	t.lat.WithLabelValues(op).Observe(time.Since(start).Seconds())
	errs := t.err.WithLabelValues(op)
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrExists) && !errors.Is(err, storage.ErrLimit) {
		errs.Inc()
	}
}

func (t *Store) CreateAccount(ctx context.Context, bare string, creds []storage.Credential) error {
	start := time.Now()
	err := t.s.CreateAccount(ctx, bare, creds)
	t.done("create_account", start, err)
	return err
}

func (t *Store) Credentials(ctx context.Context, bare string) ([]storage.Credential, error) {
	start := time.Now()
	c, err := t.s.Credentials(ctx, bare)
	t.done("credentials", start, err)
	return c, err
}

func (t *Store) SetCredentials(ctx context.Context, bare string, creds []storage.Credential) error {
	start := time.Now()
	err := t.s.SetCredentials(ctx, bare, creds)
	t.done("set_credentials", start, err)
	return err
}

func (t *Store) DeleteAccount(ctx context.Context, bare string) error {
	start := time.Now()
	err := t.s.DeleteAccount(ctx, bare)
	t.done("delete_account", start, err)
	return err
}

func (t *Store) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	start := time.Now()
	l, err := t.s.ListAccounts(ctx, domain)
	t.done("list_accounts", start, err)
	return l, err
}

func (t *Store) CountAccounts(ctx context.Context, domain string) (int, error) {
	start := time.Now()
	n, err := t.s.CountAccounts(ctx, domain)
	t.done("count_accounts", start, err)
	return n, err
}

func (t *Store) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	start := time.Now()
	items, ver, err := t.s.Roster(ctx, owner)
	t.done("roster", start, err)
	return items, ver, err
}

func (t *Store) PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (int64, error) {
	start := time.Now()
	ver, err := t.s.PutRosterItem(ctx, owner, it)
	t.done("put_roster_item", start, err)
	return ver, err
}

func (t *Store) DeleteRosterItem(ctx context.Context, owner, jid string) (int64, error) {
	start := time.Now()
	ver, err := t.s.DeleteRosterItem(ctx, owner, jid)
	t.done("delete_roster_item", start, err)
	return ver, err
}

func (t *Store) PushOfflineBatch(ctx context.Context, owner string, msgs []storage.OfflineInput, max int) (int, error) {
	start := time.Now()
	n, err := t.s.PushOfflineBatch(ctx, owner, msgs, max)
	t.done("push_offline_batch", start, err)
	return n, err
}

func (t *Store) PushOffline(ctx context.Context, owner string, stanza string, stamp time.Time, max int) (int64, error) {
	start := time.Now()
	id, err := t.s.PushOffline(ctx, owner, stanza, stamp, max)
	t.done("push_offline", start, err)
	return id, err
}

func (t *Store) OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	start := time.Now()
	msgs, err := t.s.OfflineMessages(ctx, owner)
	t.done("offline_messages", start, err)
	return msgs, err
}

func (t *Store) OfflinePage(ctx context.Context, owner string, maxBytes int) ([]storage.OfflineMessage, bool, error) {
	start := time.Now()
	msgs, more, err := t.s.OfflinePage(ctx, owner, maxBytes)
	t.done("offline_page", start, err)
	return msgs, more, err
}

func (t *Store) DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) error {
	start := time.Now()
	err := t.s.DeleteOfflineIDs(ctx, owner, ids)
	t.done("delete_offline_ids", start, err)
	return err
}

func (t *Store) DeleteOffline(ctx context.Context, owner string, upToID int64) error {
	start := time.Now()
	err := t.s.DeleteOffline(ctx, owner, upToID)
	t.done("delete_offline", start, err)
	return err
}

func (t *Store) CountOffline(ctx context.Context, owner string) (int, error) {
	start := time.Now()
	n, err := t.s.CountOffline(ctx, owner)
	t.done("count_offline", start, err)
	return n, err
}

func (t *Store) SetLastPresence(ctx context.Context, owner, stanza string, at time.Time) error {
	start := time.Now()
	err := t.s.SetLastPresence(ctx, owner, stanza, at)
	t.done("set_last_presence", start, err)
	return err
}

func (t *Store) LastPresence(ctx context.Context, owner string) (string, time.Time, error) {
	start := time.Now()
	s, at, err := t.s.LastPresence(ctx, owner)
	t.done("last_presence", start, err)
	return s, at, err
}

func (t *Store) GetKV(ctx context.Context, owner, ns, key string) (string, error) {
	start := time.Now()
	v, err := t.s.GetKV(ctx, owner, ns, key)
	t.done("get_kv", start, err)
	return v, err
}

func (t *Store) PutKV(ctx context.Context, owner, ns, key, value string) error {
	start := time.Now()
	err := t.s.PutKV(ctx, owner, ns, key, value)
	t.done("put_kv", start, err)
	return err
}

func (t *Store) PutKVIfAbsent(ctx context.Context, owner, ns, key, value string) (string, error) {
	start := time.Now()
	v, err := t.s.PutKVIfAbsent(ctx, owner, ns, key, value)
	t.done("put_kv", start, err)
	return v, err
}

func (t *Store) DeleteKV(ctx context.Context, owner, ns, key string) error {
	start := time.Now()
	err := t.s.DeleteKV(ctx, owner, ns, key)
	t.done("delete_kv", start, err)
	return err
}

func (t *Store) ListKV(ctx context.Context, owner, ns string) (map[string]string, error) {
	start := time.Now()
	m, err := t.s.ListKV(ctx, owner, ns)
	t.done("list_kv", start, err)
	return m, err
}

func (t *Store) Ping(ctx context.Context) error {
	start := time.Now()
	err := t.s.Ping(ctx)
	t.done("ping", start, err)
	return err
}

func (t *Store) Close() error { return t.s.Close() }

func (t *Store) PubSubNodes(ctx context.Context, service string) ([]storage.PubSubNode, error) {
	start := time.Now()
	v, err := t.s.PubSubNodes(ctx, service)
	t.done("pubsub_nodes", start, err)
	return v, err
}

func (t *Store) PubSubNode(ctx context.Context, service, node string) (storage.PubSubNode, error) {
	start := time.Now()
	v, err := t.s.PubSubNode(ctx, service, node)
	t.done("pubsub_node", start, err)
	return v, err
}

func (t *Store) PutPubSubNode(ctx context.Context, service string, n storage.PubSubNode) error {
	start := time.Now()
	err := t.s.PutPubSubNode(ctx, service, n)
	t.done("put_pubsub_node", start, err)
	return err
}

func (t *Store) DeletePubSubNode(ctx context.Context, service, node string) error {
	start := time.Now()
	err := t.s.DeletePubSubNode(ctx, service, node)
	t.done("delete_pubsub_node", start, err)
	return err
}

func (t *Store) DeletePubSubService(ctx context.Context, service string) error {
	start := time.Now()
	err := t.s.DeletePubSubService(ctx, service)
	t.done("delete_pubsub_service", start, err)
	return err
}

func (t *Store) PublishPubSubItem(ctx context.Context, service, node string, it storage.PubSubItem, max int) error {
	start := time.Now()
	err := t.s.PublishPubSubItem(ctx, service, node, it, max)
	t.done("publish_pubsub_item", start, err)
	return err
}

func (t *Store) PubSubItems(ctx context.Context, service, node string, max int) ([]storage.PubSubItem, error) {
	start := time.Now()
	v, err := t.s.PubSubItems(ctx, service, node, max)
	t.done("pubsub_items", start, err)
	return v, err
}

func (t *Store) PubSubItem(ctx context.Context, service, node, id string) (storage.PubSubItem, error) {
	start := time.Now()
	v, err := t.s.PubSubItem(ctx, service, node, id)
	t.done("pubsub_item", start, err)
	return v, err
}

func (t *Store) RetractPubSubItem(ctx context.Context, service, node, id string) (bool, error) {
	start := time.Now()
	v, err := t.s.RetractPubSubItem(ctx, service, node, id)
	t.done("retract_pubsub_item", start, err)
	return v, err
}

func (t *Store) PurgePubSubNode(ctx context.Context, service, node string) error {
	start := time.Now()
	err := t.s.PurgePubSubNode(ctx, service, node)
	t.done("purge_pubsub_node", start, err)
	return err
}

func (t *Store) PubSubMembers(ctx context.Context, service, node string) ([]storage.PubSubMember, error) {
	start := time.Now()
	v, err := t.s.PubSubMembers(ctx, service, node)
	t.done("pubsub_members", start, err)
	return v, err
}

func (t *Store) PutPubSubMember(ctx context.Context, service, node string, m storage.PubSubMember) error {
	start := time.Now()
	err := t.s.PutPubSubMember(ctx, service, node, m)
	t.done("put_pubsub_member", start, err)
	return err
}

func (t *Store) FastTokens(ctx context.Context, account, client string) ([]storage.FastToken, error) {
	start := time.Now()
	v, err := t.s.FastTokens(ctx, account, client)
	t.done("fast_tokens", start, err)
	return v, err
}

func (t *Store) PutFastToken(ctx context.Context, tok storage.FastToken) error {
	start := time.Now()
	err := t.s.PutFastToken(ctx, tok)
	t.done("put_fast_token", start, err)
	return err
}

func (t *Store) UseFastToken(ctx context.Context, account, client string, key []byte, count uint32) (bool, error) {
	start := time.Now()
	ok, err := t.s.UseFastToken(ctx, account, client, key, count)
	t.done("use_fast_token", start, err)
	return ok, err
}

func (t *Store) DeleteFastTokens(ctx context.Context, account, client string) error {
	start := time.Now()
	err := t.s.DeleteFastTokens(ctx, account, client)
	t.done("delete_fast_tokens", start, err)
	return err
}

func (t *Store) MUCRooms(ctx context.Context, service string) ([]storage.MUCRoom, error) {
	start := time.Now()
	v, err := t.s.MUCRooms(ctx, service)
	t.done("muc_rooms", start, err)
	return v, err
}

func (t *Store) MUCRoom(ctx context.Context, service, room string) (storage.MUCRoom, error) {
	start := time.Now()
	v, err := t.s.MUCRoom(ctx, service, room)
	t.done("muc_room", start, err)
	return v, err
}

func (t *Store) PutMUCRoom(ctx context.Context, service string, r storage.MUCRoom) error {
	start := time.Now()
	err := t.s.PutMUCRoom(ctx, service, r)
	t.done("put_muc_room", start, err)
	return err
}

func (t *Store) DeleteMUCRoom(ctx context.Context, service, room string) error {
	start := time.Now()
	err := t.s.DeleteMUCRoom(ctx, service, room)
	t.done("delete_muc_room", start, err)
	return err
}

func (t *Store) MUCAffiliations(ctx context.Context, service, room string) ([]storage.MUCAffiliation, error) {
	start := time.Now()
	v, err := t.s.MUCAffiliations(ctx, service, room)
	t.done("muc_affiliations", start, err)
	return v, err
}

func (t *Store) PutMUCAffiliation(ctx context.Context, service, room string, a storage.MUCAffiliation) error {
	start := time.Now()
	err := t.s.PutMUCAffiliation(ctx, service, room, a)
	t.done("put_muc_affiliation", start, err)
	return err
}

func (t *Store) AppendArchive(ctx context.Context, owner string, m storage.ArchivedMessage) error {
	start := time.Now()
	err := t.s.AppendArchive(ctx, owner, m)
	t.done("append_archive", start, err)
	return err
}

func (t *Store) AppendArchiveBatch(ctx context.Context, owner string, msgs []storage.ArchivedMessage) (int, error) {
	start := time.Now()
	n, err := t.s.AppendArchiveBatch(ctx, owner, msgs)
	t.done("append_archive_batch", start, err)
	return n, err
}

func (t *Store) QueryArchive(ctx context.Context, owner string, q storage.ArchiveQuery) ([]storage.ArchivedMessage, bool, error) {
	start := time.Now()
	page, more, err := t.s.QueryArchive(ctx, owner, q)
	t.done("query_archive", start, err)
	return page, more, err
}

func (t *Store) CountArchive(ctx context.Context, owner string, q storage.ArchiveQuery) (int, error) {
	start := time.Now()
	n, err := t.s.CountArchive(ctx, owner, q)
	t.done("count_archive", start, err)
	return n, err
}

func (t *Store) ArchivedIDs(ctx context.Context, owner string, ids []string) ([]string, error) {
	start := time.Now()
	held, err := t.s.ArchivedIDs(ctx, owner, ids)
	t.done("archived_ids", start, err)
	return held, err
}

func (t *Store) ArchiveBounds(ctx context.Context, owner string) (storage.ArchivedMessage, storage.ArchivedMessage, error) {
	start := time.Now()
	first, last, err := t.s.ArchiveBounds(ctx, owner)
	t.done("archive_bounds", start, err)
	return first, last, err
}

func (t *Store) DeleteArchiveBefore(ctx context.Context, owner string, before time.Time) (int, error) {
	start := time.Now()
	n, err := t.s.DeleteArchiveBefore(ctx, owner, before)
	t.done("delete_archive_before", start, err)
	return n, err
}

func (t *Store) TrimArchive(ctx context.Context, owner string, keep int) (int, error) {
	start := time.Now()
	n, err := t.s.TrimArchive(ctx, owner, keep)
	t.done("trim_archive", start, err)
	return n, err
}

func (t *Store) ArchivePrefs(ctx context.Context, owner string) (storage.ArchivePrefs, error) {
	start := time.Now()
	p, err := t.s.ArchivePrefs(ctx, owner)
	t.done("archive_prefs", start, err)
	return p, err
}

func (t *Store) SetArchivePrefs(ctx context.Context, owner string, p storage.ArchivePrefs) error {
	start := time.Now()
	err := t.s.SetArchivePrefs(ctx, owner, p)
	t.done("set_archive_prefs", start, err)
	return err
}

func (t *Store) CreateUploadSlot(ctx context.Context, s storage.UploadSlot) error {
	start := time.Now()
	err := t.s.CreateUploadSlot(ctx, s)
	t.done("create_upload_slot", start, err)
	return err
}

func (t *Store) UploadSlot(ctx context.Context, id string) (storage.UploadSlot, error) {
	start := time.Now()
	v, err := t.s.UploadSlot(ctx, id)
	t.done("upload_slot", start, err)
	return v, err
}

func (t *Store) MarkUploaded(ctx context.Context, id string, at time.Time) error {
	start := time.Now()
	err := t.s.MarkUploaded(ctx, id, at)
	t.done("mark_uploaded", start, err)
	return err
}

func (t *Store) UploadUsage(ctx context.Context, service, owner string, since time.Time) (storage.UploadUsage, error) {
	start := time.Now()
	v, err := t.s.UploadUsage(ctx, service, owner, since)
	t.done("upload_usage", start, err)
	return v, err
}

func (t *Store) ExpiredUploads(ctx context.Context, service string, filesBefore, slotsBefore time.Time, limit int) ([]storage.UploadSlot, error) {
	start := time.Now()
	v, err := t.s.ExpiredUploads(ctx, service, filesBefore, slotsBefore, limit)
	t.done("expired_uploads", start, err)
	return v, err
}

func (t *Store) DeleteUpload(ctx context.Context, id string) error {
	start := time.Now()
	err := t.s.DeleteUpload(ctx, id)
	t.done("delete_upload", start, err)
	return err
}
