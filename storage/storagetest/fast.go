package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// The XEP-0484 FAST token contract: a pending and an in-use slot per client, the replay counter, rotation,
// invalidation, and the tokens dying with a password change or the account.

func fastKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func fastTok(account, client string, key byte) storage.FastToken {
	return storage.FastToken{Account: account, Client: client, Key: fastKey(key), Mechanism: "HT-SHA-256-NONE",
		Expiry: stamp.Add(24 * time.Hour)}
}

func fastTokens(t *testing.T, s storage.Store, account, client string) []storage.FastToken {
	t.Helper()
	toks, err := s.FastTokens(ctx(t), account, client)
	must(t, err)
	if toks == nil {
		t.Fatal("FastTokens returned nil, want empty")
	}
	return toks
}

func testFastTokens(t *testing.T, s storage.Store) {
	const a = "fast@example.org"
	must(t, s.CreateAccount(ctx(t), a, []storage.Credential{cred("SHA-256", 1)}))
	if got := fastTokens(t, s, a, "phone"); len(got) != 0 {
		t.Fatalf("tokens before any: %v", got)
	}
	wantErr(t, s.PutFastToken(ctx(t), fastTok("nobody@example.org", "phone", 1)), storage.ErrNotFound)

	// Issued: pending, with what was given.
	tok := fastTok(a, "phone", 1)
	tok.Mechanism = "HT-SHA-256-EXPR"
	must(t, s.PutFastToken(ctx(t), tok))
	got := fastTokens(t, s, a, "phone")
	if len(got) != 1 || !got[0].Pending || !bytes.Equal(got[0].Key, fastKey(1)) || got[0].Mechanism != "HT-SHA-256-EXPR" ||
		!got[0].Expiry.Equal(tok.Expiry) || got[0].Count != 0 || got[0].Account != a || got[0].Client != "phone" {
		t.Fatalf("after put: %+v", got)
	}
	if len(fastTokens(t, s, a, "laptop")) != 0 {
		t.Fatal("another client sees the token")
	}

	// Used with a counter: it is in use now, and the counter only goes up.
	ok, err := s.UseFastToken(ctx(t), a, "phone", fastKey(1), 5)
	must(t, err)
	if !ok {
		t.Fatal("first use refused")
	}
	got = fastTokens(t, s, a, "phone")
	if len(got) != 1 || got[0].Pending || got[0].Count != 5 {
		t.Fatalf("after use: %+v", got)
	}
	for _, c := range []uint32{5, 4} {
		if ok, err := s.UseFastToken(ctx(t), a, "phone", fastKey(1), c); err != nil || ok {
			t.Fatalf("count %d after 5: ok=%v err=%v (a replay)", c, ok, err)
		}
	}
	if ok, err := s.UseFastToken(ctx(t), a, "phone", fastKey(1), 0); err != nil || !ok {
		t.Fatalf("use without a counter: ok=%v err=%v", ok, err)
	}
	if ok, _ := s.UseFastToken(ctx(t), a, "phone", fastKey(1), 6); !ok {
		t.Fatal("count 6 after 5 refused")
	}
	if ok, err := s.UseFastToken(ctx(t), a, "phone", fastKey(9), 0); err != nil || ok {
		t.Fatalf("unknown key: ok=%v err=%v", ok, err)
	}
	if ok, _ := s.UseFastToken(ctx(t), a, "laptop", fastKey(1), 0); ok {
		t.Fatal("another client's token accepted")
	}

	// Rotation: a new token is pending beside the one in use; both work until the new one is used.
	must(t, s.PutFastToken(ctx(t), fastTok(a, "phone", 2)))
	must(t, s.PutFastToken(ctx(t), fastTok(a, "phone", 3))) // replaces the never-used pending one
	got = fastTokens(t, s, a, "phone")
	if len(got) != 2 || !got[0].Pending || !bytes.Equal(got[0].Key, fastKey(3)) || got[1].Pending || !bytes.Equal(got[1].Key, fastKey(1)) {
		t.Fatalf("after rotation: %+v", got)
	}
	if ok, _ := s.UseFastToken(ctx(t), a, "phone", fastKey(2), 0); ok {
		t.Fatal("the replaced pending token still works")
	}
	if ok, _ := s.UseFastToken(ctx(t), a, "phone", fastKey(1), 7); !ok {
		t.Fatal("the token in use stopped working before the new one was used")
	}
	if ok, _ := s.UseFastToken(ctx(t), a, "phone", fastKey(3), 1); !ok {
		t.Fatal("the new token refused")
	}
	got = fastTokens(t, s, a, "phone")
	if len(got) != 1 || got[0].Pending || !bytes.Equal(got[0].Key, fastKey(3)) || got[0].Count != 1 {
		t.Fatalf("after the new token was used: %+v", got)
	}
	if ok, _ := s.UseFastToken(ctx(t), a, "phone", fastKey(1), 8); ok {
		t.Fatal("the old token works after the new one was used")
	}

	// Invalidation of one client, then of the whole account.
	must(t, s.PutFastToken(ctx(t), fastTok(a, "laptop", 4)))
	must(t, s.DeleteFastTokens(ctx(t), a, "phone"))
	if len(fastTokens(t, s, a, "phone")) != 0 || len(fastTokens(t, s, a, "laptop")) != 1 {
		t.Fatal("DeleteFastTokens(client) deleted the wrong tokens")
	}
	must(t, s.DeleteFastTokens(ctx(t), a, "phone")) // none left: no error
	must(t, s.PutFastToken(ctx(t), fastTok(a, "phone", 5)))
	must(t, s.DeleteFastTokens(ctx(t), a, ""))
	if len(fastTokens(t, s, a, "phone")) != 0 || len(fastTokens(t, s, a, "laptop")) != 0 {
		t.Fatal("DeleteFastTokens(\"\") left tokens")
	}
}

func testFastTokensDieWithCredentials(t *testing.T, s storage.Store) {
	const a, b = "fastpw@example.org", "fastother@example.org"
	must(t, s.CreateAccount(ctx(t), a, []storage.Credential{cred("SHA-256", 1)}))
	must(t, s.CreateAccount(ctx(t), b, []storage.Credential{cred("SHA-256", 1)}))
	must(t, s.PutFastToken(ctx(t), fastTok(a, "phone", 1)))
	must(t, s.PutFastToken(ctx(t), fastTok(b, "phone", 1)))
	must(t, s.SetCredentials(ctx(t), a, []storage.Credential{cred("SHA-256", 2)}))
	if len(fastTokens(t, s, a, "phone")) != 0 {
		t.Fatal("a password change left the account's FAST tokens")
	}
	if len(fastTokens(t, s, b, "phone")) != 1 {
		t.Fatal("a password change deleted another account's tokens")
	}
	must(t, s.DeleteAccount(ctx(t), b))
	must(t, s.CreateAccount(ctx(t), b, nil))
	if len(fastTokens(t, s, b, "phone")) != 0 {
		t.Fatal("a token survived its account")
	}
}
