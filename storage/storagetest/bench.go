package storagetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/xmppd/xmppd/storage"
)

// Bench runs the hot-path benchmarks against the engine opened by open, which
// must return a fresh store and close it at the end of the benchmark.
func Bench(b *testing.B, open func(b *testing.B) storage.Store) {
	b.Run("PushOffline", func(b *testing.B) {
		s := open(b)
		stanza := "<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat' id='a1b2c3'><body>Wherefore art thou?</body></message>"
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			// 100 owners, limit 1000: the count subquery does real work.
			if _, err := s.PushOffline(ctx, fmt.Sprintf("user%d@example.com", i%100), stanza, stamp, 1000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PushOfflineParallel", func(b *testing.B) {
		s := open(b)
		stanza := "<message to='juliet@example.com'><body>hi</body></message>"
		b.ReportAllocs()
		b.SetParallelism(8) // many actors writing at once: writes queue behind one writer
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.PushOffline(context.Background(), "juliet@example.com", stanza, stamp, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Credentials", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		for i := 0; i < 1000; i++ {
			if err := s.CreateAccount(ctx, fmt.Sprintf("user%d@example.com", i), []storage.Credential{cred("SHA-1", 1), cred("SHA-256", 2), cred("SHA-512", 3)}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			creds, err := s.Credentials(ctx, fmt.Sprintf("user%d@example.com", i%1000))
			if err != nil || len(creds) != 3 {
				b.Fatal(len(creds), err)
			}
		}
	})
	b.Run("Roster500", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		for i := 0; i < 500; i++ {
			_, err := s.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{
				JID: fmt.Sprintf("contact%03d@example.net", i), Name: fmt.Sprintf("Contact %d", i),
				Groups: []string{"Friends", "Work"}, Subscription: "both",
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			items, _, err := s.Roster(ctx, "juliet@example.com")
			if err != nil || len(items) != 500 {
				b.Fatal(len(items), err)
			}
		}
	})
}
