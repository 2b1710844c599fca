package portable

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage/sqlite"
)

func TestOpenFileStaysInside(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in", "host"), 0o700)
	os.WriteFile(filepath.Join(dir, "in", "host", "u.xml"), []byte("<user/>"), 0o600)
	os.WriteFile(filepath.Join(dir, "secret.xml"), []byte("<user/>"), 0o600)
	open := OpenFile(filepath.Join(dir, "in"))
	main := filepath.Join(dir, "in", "main.xml")
	if _, r, err := open(main, "host/u.xml"); err != nil {
		t.Errorf("a file below the main file's directory: %v", err)
	} else {
		r.Close()
	}
	for _, href := range []string{"../secret.xml", "host/../../secret.xml", filepath.Join(dir, "secret.xml"), "file:///etc/passwd", "http://example.com/x.xml"} {
		if _, r, err := open(main, href); err == nil {
			r.Close()
			t.Errorf("href %q was opened", href)
		}
	}
}

// Import on real SQLite: a file is checked whole before anything is written, and a second import writes nothing.
func TestImportAllOrNothingAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("<server-data xmlns='urn:xmpp:pie:0'><host jid='example.org'>"+body+"</host></server-data>"), 0o600)
		return p
	}
	serves := func(d string) bool { return d == "example.org" }
	good := "<user name='a' password='pw-a'><query xmlns='jabber:iq:roster'><item jid='b@example.org' subscription='to'/></query></user>"
	bad := write("bad.xml", good+"<user name='b' password='pw-b'/><user name='a' password='again'/>")
	if _, err := Import(ctx, st, []string{bad}, Options{Serves: serves, Iterations: 4096}); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("a duplicate user: %v", err)
	}
	if n, _ := st.CountAccounts(ctx, ""); n != 0 {
		t.Fatalf("a refused file created %d accounts", n)
	}
	ok := write("ok.xml", good)
	s, err := Import(ctx, st, []string{ok}, Options{Serves: serves, Iterations: 4096})
	if err != nil || s.Accounts != 1 || s.RosterItems != 1 || s.PlainPasswords != 1 {
		t.Fatalf("import: %+v %v", s, err)
	}
	_, v1, _ := st.Roster(ctx, "a@example.org")
	s, err = Import(ctx, st, []string{ok}, Options{Serves: serves, Iterations: 4096})
	if err != nil || s.Accounts != 0 || s.Credentials != 0 || s.RosterItems != 0 || s.AccountsKept != 1 {
		t.Fatalf("second import: %+v %v", s, err)
	}
	if _, v2, _ := st.Roster(ctx, "a@example.org"); v2 != v1 {
		t.Errorf("a second import bumped the roster version %d -> %d (RFC 6121 §2.6: clients would refetch)", v1, v2)
	}
	other := write("other.xml", "<user name='c' password='pw'/>")
	if _, err := Import(ctx, st, []string{other}, Options{Serves: func(string) bool { return false }, Iterations: 4096}); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Errorf("a host we do not serve: %v", err)
	}
}
