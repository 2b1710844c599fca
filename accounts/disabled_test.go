package accounts

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

func TestDisabled(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	creds := []storage.Credential{{Hash: "SHA-256", Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("k"), ServerKey: []byte("k")}}
	for _, a := range []string{"alice@a.example", "bob@a.example", "carol@b.example"} {
		if err := db.CreateAccount(ctx, a, creds); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob, carol := jid.MustParse("alice@a.example"), jid.MustParse("bob@a.example"), jid.MustParse("carol@b.example")

	if d, err := IsDisabled(ctx, db, alice); d || err != nil {
		t.Fatalf("fresh account disabled=%v err=%v", d, err)
	}
	if err := Disable(ctx, db, jid.MustParse("nobody@a.example"), ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("disabling a missing account: %v", err)
	}
	// A full JID names its account.
	if err := Disable(ctx, db, jid.MustParse("alice@a.example/phone"), "spam"); err != nil {
		t.Fatal(err)
	}
	if err := Disable(ctx, db, carol, ""); err != nil {
		t.Fatal(err)
	}
	if r, d, err := DisabledReason(ctx, db, alice); r != "spam" || !d || err != nil {
		t.Errorf("alice: reason %q disabled=%v err=%v", r, d, err)
	}
	if r, d, err := DisabledReason(ctx, db, carol); r != "" || !d || err != nil {
		t.Errorf("carol: reason %q disabled=%v err=%v", r, d, err)
	}
	if d, _ := IsDisabled(ctx, db, bob); d {
		t.Error("bob disabled")
	}
	for domain, want := range map[string][]string{"a.example": {"alice@a.example"}, "b.example": {"carol@b.example"}, "": {"alice@a.example", "carol@b.example"}, "c.example": nil} {
		got, err := ListDisabled(ctx, db, domain)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ListDisabled(%q) = %v, %v; want %v", domain, got, err, want)
		}
	}

	if err := Enable(ctx, db, alice); err != nil {
		t.Fatal(err)
	}
	if err := Enable(ctx, db, bob); err != nil { // not disabled: no error
		t.Fatal(err)
	}
	if d, _ := IsDisabled(ctx, db, alice); d {
		t.Error("alice still disabled after Enable")
	}

	// Deleting the account deletes the mark: the name registered again starts enabled.
	if err := db.DeleteAccount(ctx, carol.String()); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, carol.String(), creds); err != nil {
		t.Fatal(err)
	}
	if d, _ := IsDisabled(ctx, db, carol); d {
		t.Error("re-created account inherited the disabled mark")
	}
}
