package actors

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/storage"
)

// recentKeys holds the last recentKeysMax keys: a key is known until that many newer ones came, then forgotten,
// oldest first.
func TestRecentKeys(t *testing.T) {
	var k recentKeys
	if k.has("k0") {
		t.Fatal("an empty set holds a key")
	}
	for i := range recentKeysMax {
		k.add("k" + strconv.Itoa(i))
	}
	for i := range recentKeysMax {
		if !k.has("k" + strconv.Itoa(i)) {
			t.Fatalf("k%d forgotten while the set is not over its bound", i)
		}
	}
	k.add("new0")
	k.add("new1")
	if k.has("k0") || k.has("k1") {
		t.Fatal("the oldest keys are kept beyond the bound")
	}
	if !k.has("k2") || !k.has("new0") || !k.has("new1") || !k.has("k"+strconv.Itoa(recentKeysMax-1)) {
		t.Fatal("a key within the bound was forgotten")
	}
	if len(k.set) != recentKeysMax || len(k.ring) != recentKeysMax {
		t.Fatalf("%d keys in the set, %d in the ring; want %d", len(k.set), len(k.ring), recentKeysMax)
	}
}

// A stanza that arrives twice with its idempotency key (routed again after its node left unconfirmed) is
// handled once by the recipient's user actor: queued offline once, archived once under its key as id, and
// confirmed both times, the second time not before the first is durable. A real server with SQLite; the Routes
// are what the cluster actor hands the router.
func TestUserActorHandlesKeyOnce(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.C2S.Listen, cfg.C2S.DirectTLSListen, cfg.Debug.Listen, cfg.Proxy65.Listen, cfg.HTTP.Listen = "127.0.0.1:0", "", "", "", ""
	cfg.Auth.ScramIterations = 4096
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := OpenStorage(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		j, _ := accounts.ParseAccount(&cfg, u+"@localhost")
		if err := accounts.AddUser(context.Background(), &cfg, store, j, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	srv, err := Start(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(5 * time.Second) })

	// The confirmations, and what storage holds when each comes.
	type confirmed struct {
		seq     uint32
		offline int
	}
	got := make(chan confirmed, 16)
	bg := context.Background()
	collector := srv.sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if h, ok := ctx.Message().(*stanzaHandled); ok {
			n, err := srv.env.store.CountOffline(bg, "bob@localhost")
			if err != nil {
				t.Error(err)
			}
			got <- confirmed{h.seq, n}
		}
	}))
	keyA, keyB := stanza.UniqueID(), stanza.UniqueID()
	route := func(seq uint32, key, body string) *Route {
		st, err := stanza.Parse(`<message xmlns='jabber:client' from='alice@localhost/x' to='bob@localhost' type='chat' id='m` +
			strconv.Itoa(int(seq)) + `'><body>` + body + `</body></message>`)
		if err != nil {
			t.Fatal(err)
		}
		return &Route{St: st.WithOnce(key), confirm: collector, seq: seq}
	}
	// One burst (one group commit): A, A again, B; then A once more after the commit.
	for _, r := range []*Route{route(1, keyA, "a"), route(2, keyA, "a again"), route(3, keyB, "b")} {
		srv.sys.Root.Send(srv.env.router, r)
	}
	wait := func(n int) map[uint32]int {
		t.Helper()
		seen := map[uint32]int{}
		for range n {
			select {
			case c := <-got:
				seen[c.seq] = c.offline
			case <-time.After(10 * time.Second):
				t.Fatalf("confirmations: %v, want %d", seen, n)
			}
		}
		return seen
	}
	seen := wait(3)
	if seen[2] < 1 {
		t.Fatalf("the second arrival of A was confirmed before A was stored (offline %d)", seen[2])
	}
	srv.sys.Root.Send(srv.env.router, route(4, keyA, "a late"))
	wait(1)
	msgs, err := srv.env.store.OfflineMessages(bg, "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		st, err := stanza.Parse(m.Stanza)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := st.Node()
		bodies = append(bodies, n.Child(stanza.NSClient, "body").TextContent())
	}
	if strings.Join(bodies, ",") != "a,b" {
		t.Fatalf("offline queue %q, want a and b once each", bodies)
	}
	ids, err := srv.env.store.ArchivedIDs(bg, "bob@localhost", []string{keyA, keyB})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := srv.env.store.CountArchive(bg, "bob@localhost", storage.ArchiveQuery{}); err != nil || n != 2 || len(ids) != 2 {
		t.Fatalf("archive: %d messages (err %v), under the keys %v; want a and b, archived under their keys", n, err, ids)
	}
	// The user actor itself recognised both second arrivals (so an online recipient gets no second copy either),
	// rather than leaving them to storage.
	var m dto.Metric
	if err := srv.env.metrics.clusterRouted.WithLabelValues("again").Write(&m); err != nil || m.Counter.GetValue() != 2 {
		t.Fatalf("stanzas handled again: %v (err %v), want 2", m.Counter.GetValue(), err)
	}
}
