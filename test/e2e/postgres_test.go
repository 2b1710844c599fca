package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xmppd/xmppd/storage/postgres/pgtest"
	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// postgresSection is the [storage] of a server on PostgreSQL.
func postgresSection(dsn string) string {
	return "driver = \"postgres\"\ndsn = " + strconv.Quote(dsn) + "\npool_size = 4"
}

// TestPostgresEngine runs the real xmppd on a real PostgreSQL (started by the test): one user registers in band
// (XEP-0077), the other is made by the CLI; they subscribe and chat, one goes offline and gets a message; after
// a restart the roster and the offline message are there, from PostgreSQL (no SQLite file is ever created).
// Then the XEP-0227 export reads the accounts and rosters back, an import is refused while the server runs (the database's
// advisory lock, not the data directory's flock) and, with the server stopped, fills a second database.
func TestPostgresEngine(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	srv := own(t, harness.Options{RegistrationAllow: true, Sections: map[string]string{"storage": postgresSection(dsn)}})

	a, apw := newName(t, "alice"), secret()
	rc, e := registerRaw(t, srv, a, apw)
	if e.Get("type") != "result" {
		t.Fatalf("in-band registration: %s", e)
	}
	rc.Close()
	b, bpw := srv.user(t, "bob")
	A, B := srv.bare(a), srv.bare(b)

	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "a"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "b"})
	fetchRoster(t, alice)
	fetchRoster(t, bob)
	alice.Send(`<presence/>`)
	bob.Send(`<presence/>`)
	subscribeBoth(t, alice, bob, A, B)

	alice.Send(`<message to='` + B + `' type='chat' id='m1'><body>wherefore art thou</body></message>`)
	bob.Expect("alice's message", xmppclient.IsMessageWithBody("wherefore art thou"))
	bob.Send(`<message to='` + A + `' type='chat' id='m2'><body>here</body></message>`)
	alice.Expect("bob's answer", xmppclient.IsMessageWithBody("here"))

	bobFull := bob.JID.String()
	bob.Close()
	alice.Expect("bob gone", xmppclient.IsPresence(bobFull, "unavailable"))
	alice.Send(`<message to='` + B + `' type='chat' id='m3'><body>see you at the balcony</body></message>`)
	// The message is stored when alice's next stanza is answered: her stanzas are handled in order.
	fetchRoster(t, alice)
	alice.Close()

	if err := srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)

	bob = mustLogin(t, srv, b, bpw, loginOpts{resource: "b2"})
	if it := fetchRoster(t, bob); it[A].Subscription != "both" {
		t.Fatalf("bob's roster after restart: %+v", it)
	}
	bob.Send(`<presence/>`)
	m := bob.Expect("the offline message after restart", xmppclient.IsMessageWithBody("see you at the balcony"))
	if d := m.Child("urn:xmpp:delay", "delay"); d == nil {
		t.Errorf("offline message without its delay stamp (XEP-0203): %s", m)
	}
	bob.Close()
	alice = mustLogin(t, srv, a, apw, loginOpts{resource: "a2"})
	if it := fetchRoster(t, alice); it[B].Subscription != "both" {
		t.Fatalf("alice's roster after restart: %+v", it)
	}
	alice.Close()
	if _, err := os.Stat(filepath.Join(srv.DataDir, "xmppd.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an SQLite database in the data directory of a server on PostgreSQL (stat: %v)", err)
	}

	// XEP-0227 export through the Store interfaces, from PostgreSQL.
	export := filepath.Join(t.TempDir(), "export.xml")
	if _, stderr, err := srv.Run("export", export); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	x, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name='" + a + "'", "name='" + b + "'", "jid='" + A + "'", "jid='" + B + "'"} {
		if !strings.Contains(strings.ReplaceAll(string(x), `"`, `'`), want) {
			t.Errorf("export lacks %s:\n%s", want, x)
		}
	}

	// Import is refused while a server uses the database, even from another machine's data directory, and fills
	// another database (with its own configuration) while the first server runs.
	dsn2 := pg.NewDatabase(t)
	cfg, err := os.ReadFile(srv.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := filepath.Join(t.TempDir(), "config2.toml")
	data2 := filepath.Join(t.TempDir(), "data2")
	c2 := strings.Replace(string(cfg), strconv.Quote(dsn), strconv.Quote(dsn2), 1)
	c2 = strings.Replace(c2, "data_dir = "+strconv.Quote(srv.DataDir), "data_dir = "+strconv.Quote(data2), 1)
	if c2 == string(cfg) || !strings.Contains(c2, data2) {
		t.Fatalf("could not rewrite the config for the second database:\n%s", cfg)
	}
	if err := os.WriteFile(cfg2, []byte(c2), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another node's configuration: the same database, a data directory of its own (so no flock is shared).
	cfg3 := filepath.Join(t.TempDir(), "config3.toml")
	c3 := strings.Replace(string(cfg), "data_dir = "+strconv.Quote(srv.DataDir), "data_dir = "+strconv.Quote(filepath.Join(t.TempDir(), "data3")), 1)
	if err := os.WriteFile(cfg3, []byte(c3), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := srv.Run("import", export, "-c", cfg3)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("import into the database of a running server, from another data directory: %v (want exit 4)\n%s", err, stderr)
	}
	if _, stderr, err := srv.Run("import", export, "-c", cfg2); err != nil {
		t.Fatalf("import into the second database: %v\n%s", err, stderr)
	}
	out, stderr, err := srv.Run("user", "list", "-c", cfg2)
	if err != nil {
		t.Fatalf("user list: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, A) || !strings.Contains(out, B) {
		t.Fatalf("accounts in the second database: %q, want %s and %s", out, A, B)
	}
	out, stderr, err = srv.Run("user", "show", B, "-c", cfg2)
	if err != nil {
		t.Fatalf("user show: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "roster items: 1") {
		t.Fatalf("%s in the second database has not its roster:\n%s", B, out)
	}
}
