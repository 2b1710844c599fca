package actors

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xmppd/xmppd/storage"
)

// timedStore decorates a storage.Store with the latency histogram and error counter of every call. It holds no
// state of its own: the instruments are atomic and the wrapped store is safe for concurrent use by contract.
type timedStore struct {
	s   storage.Store
	lat *prometheus.HistogramVec
	err *prometheus.CounterVec
}

// instrumentStore wraps s so that every call is timed into m.
func instrumentStore(s storage.Store, m *metrics) storage.Store {
	return &timedStore{s: s, lat: m.storageLatency, err: m.storageErrors}
}

// done records one call that started at t. ErrNotFound, ErrExists and ErrLimit are answers, not failures.
func (t *timedStore) done(op string, start time.Time, err error) {
	t.lat.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrExists) && !errors.Is(err, storage.ErrLimit) {
		t.err.WithLabelValues(op).Inc()
	}
}

func (t *timedStore) CreateAccount(ctx context.Context, bare string, creds []storage.Credential) error {
	start := time.Now()
	err := t.s.CreateAccount(ctx, bare, creds)
	t.done("create_account", start, err)
	return err
}

func (t *timedStore) Credentials(ctx context.Context, bare string) ([]storage.Credential, error) {
	start := time.Now()
	c, err := t.s.Credentials(ctx, bare)
	t.done("credentials", start, err)
	return c, err
}

func (t *timedStore) SetCredentials(ctx context.Context, bare string, creds []storage.Credential) error {
	start := time.Now()
	err := t.s.SetCredentials(ctx, bare, creds)
	t.done("set_credentials", start, err)
	return err
}

func (t *timedStore) DeleteAccount(ctx context.Context, bare string) error {
	start := time.Now()
	err := t.s.DeleteAccount(ctx, bare)
	t.done("delete_account", start, err)
	return err
}

func (t *timedStore) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	start := time.Now()
	l, err := t.s.ListAccounts(ctx, domain)
	t.done("list_accounts", start, err)
	return l, err
}

func (t *timedStore) CountAccounts(ctx context.Context, domain string) (int, error) {
	start := time.Now()
	n, err := t.s.CountAccounts(ctx, domain)
	t.done("count_accounts", start, err)
	return n, err
}

func (t *timedStore) Roster(ctx context.Context, owner string) ([]storage.RosterItem, int64, error) {
	start := time.Now()
	items, ver, err := t.s.Roster(ctx, owner)
	t.done("roster", start, err)
	return items, ver, err
}

func (t *timedStore) PutRosterItem(ctx context.Context, owner string, it storage.RosterItem) (int64, error) {
	start := time.Now()
	ver, err := t.s.PutRosterItem(ctx, owner, it)
	t.done("put_roster_item", start, err)
	return ver, err
}

func (t *timedStore) DeleteRosterItem(ctx context.Context, owner, jid string) (int64, error) {
	start := time.Now()
	ver, err := t.s.DeleteRosterItem(ctx, owner, jid)
	t.done("delete_roster_item", start, err)
	return ver, err
}

func (t *timedStore) PushOffline(ctx context.Context, owner string, stanza string, stamp time.Time, max int) (int64, error) {
	start := time.Now()
	id, err := t.s.PushOffline(ctx, owner, stanza, stamp, max)
	t.done("push_offline", start, err)
	return id, err
}

func (t *timedStore) OfflineMessages(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	start := time.Now()
	msgs, err := t.s.OfflineMessages(ctx, owner)
	t.done("offline_messages", start, err)
	return msgs, err
}

func (t *timedStore) DeleteOffline(ctx context.Context, owner string, upToID int64) error {
	start := time.Now()
	err := t.s.DeleteOffline(ctx, owner, upToID)
	t.done("delete_offline", start, err)
	return err
}

func (t *timedStore) CountOffline(ctx context.Context, owner string) (int, error) {
	start := time.Now()
	n, err := t.s.CountOffline(ctx, owner)
	t.done("count_offline", start, err)
	return n, err
}

func (t *timedStore) SetLastPresence(ctx context.Context, owner, stanza string, at time.Time) error {
	start := time.Now()
	err := t.s.SetLastPresence(ctx, owner, stanza, at)
	t.done("set_last_presence", start, err)
	return err
}

func (t *timedStore) LastPresence(ctx context.Context, owner string) (string, time.Time, error) {
	start := time.Now()
	s, at, err := t.s.LastPresence(ctx, owner)
	t.done("last_presence", start, err)
	return s, at, err
}

func (t *timedStore) GetKV(ctx context.Context, owner, ns, key string) (string, error) {
	start := time.Now()
	v, err := t.s.GetKV(ctx, owner, ns, key)
	t.done("get_kv", start, err)
	return v, err
}

func (t *timedStore) PutKV(ctx context.Context, owner, ns, key, value string) error {
	start := time.Now()
	err := t.s.PutKV(ctx, owner, ns, key, value)
	t.done("put_kv", start, err)
	return err
}

func (t *timedStore) DeleteKV(ctx context.Context, owner, ns, key string) error {
	start := time.Now()
	err := t.s.DeleteKV(ctx, owner, ns, key)
	t.done("delete_kv", start, err)
	return err
}

func (t *timedStore) ListKV(ctx context.Context, owner, ns string) (map[string]string, error) {
	start := time.Now()
	m, err := t.s.ListKV(ctx, owner, ns)
	t.done("list_kv", start, err)
	return m, err
}

func (t *timedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := t.s.Ping(ctx)
	t.done("ping", start, err)
	return err
}

func (t *timedStore) Close() error { return t.s.Close() }
