package migrate

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// scramSHA1 is what another server stores for password with salt and iterations (RFC 5802 §3), as base64 for
// a <scram-credentials/> element: computed here with the standard library only, like a foreign server would.
func scramSHA1(t *testing.T, password, salt string, iterations int) (storedKey, serverKey string) {
	t.Helper()
	out, err := exec.Command("python3", "-c", `
import hashlib, hmac, base64, sys
p, s, i = sys.argv[1].encode(), sys.argv[2].encode(), int(sys.argv[3])
sp = hashlib.pbkdf2_hmac('sha1', p, s, i)
ck = hmac.new(sp, b'Client Key', 'sha1').digest()
sk = hmac.new(sp, b'Server Key', 'sha1').digest()
print(base64.b64encode(hashlib.sha1(ck).digest()).decode(), base64.b64encode(sk).decode())
`, password, salt, strconv.Itoa(iterations)).Output()
	if err != nil {
		t.Fatalf("computing SCRAM-SHA-1 keys with python3: %v", err)
	}
	f := strings.Fields(string(out))
	return f[0], f[1]
}

// fixture is a XEP-0227 file of every kind of data xmppd imports: alice has a plaintext password (hashed on
// import for every SCRAM hash), bob only SCRAM-SHA-1 credentials as another server keeps them.
func fixture(t *testing.T, dir string) string {
	stored, server := scramSHA1(t, "bob-old-pw", "bobsalt", 4096)
	doc := `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='localhost'>
    <user name='alice' password='alice-old-pw'>
      <query xmlns='jabber:iq:roster'>
        <item jid='bob@localhost' name='Bob' subscription='both'><group>Friends</group><group>Work</group></item>
        <item jid='carol@localhost' subscription='none' ask='subscribe'/>
      </query>
      <presence xmlns='jabber:client' type='subscribe' from='dave@localhost'/>
      <vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>ali</NICKNAME></vCard>
      <query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><colour>blue</colour></prefs></query>
      <blocklist xmlns='urn:xmpp:blocking'><item jid='mallory@localhost'/></blocklist>
      <offline-messages>
        <message xmlns='jabber:client' from='bob@localhost/phone' to='alice@localhost' type='chat' id='m1'><body>while you were away</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2021-02-03T04:05:06Z'/></message>
      </offline-messages>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:example:node'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#max_items'><value>5</value></field><field var='pubsub#access_model'><value>open</value></field><field var='pubsub#itemreply'><value>owner</value></field></x></configure></pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:node'><item id='one'><entry xmlns='urn:example:entry'>first</entry></item><item id='two'><entry xmlns='urn:example:entry'>second</entry></item></items></pubsub>
      <query xmlns='jabber:iq:privacy'><list name='x'/></query>
    </user>
    <user name='bob'>
      <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'><iter-count>4096</iter-count><salt>` +
		base64.StdEncoding.EncodeToString([]byte("bobsalt")) + `</salt><server-key>` + server + `</server-key><stored-key>` + stored + `</stored-key></scram-credentials>
      <query xmlns='jabber:iq:roster'><item jid='alice@localhost' subscription='both'/></query>
      <offline-messages><message xmlns='jabber:client' from='alice@localhost/r' to='bob@localhost' type='chat'><body>for bob, still queued</body><delay xmlns='urn:xmpp:delay' from='localhost' stamp='2022-03-04T05:06:07.5Z'/></message></offline-messages>
    </user>
  </host>
</server-data>
`
	p := filepath.Join(dir, "fixture.xml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func stampIs(got, want string) bool {
	g, err1 := time.Parse(time.RFC3339Nano, got)
	w, err2 := time.Parse(time.RFC3339Nano, want)
	return err1 == nil && err2 == nil && g.Equal(w)
}

func run(t *testing.T, s *harness.Server, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := s.Run(args...)
	if err != nil {
		t.Fatalf("xmppd %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out, errOut
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// stopped starts a server (for its config and data directory) and stops it, for an import.
func stopped(t *testing.T) *harness.Server {
	s := harness.Start(t, harness.Options{})
	s.Stop()
	return s
}

func TestRoundTrip(t *testing.T) {
	a := stopped(t)
	file := fixture(t, t.TempDir())

	// Importing into a running server is refused (the data directory lock): exit code 4.
	a.Restart(t)
	if _, stderr, err := a.Run("import", file); exitCode(err) != 4 || !strings.Contains(stderr, "stop the server") {
		t.Fatalf("import beside a running server: exit %d, stderr %s", exitCode(err), stderr)
	}
	a.Stop()

	// A dry run writes nothing.
	out, _ := run(t, a, "import", "--dry-run", file)
	if !strings.Contains(out, "dry run") || !strings.Contains(out, "users: 2 (accounts created 2") {
		t.Fatalf("dry run summary:\n%s", out)
	}
	if list, _ := run(t, a, "user", "list"); strings.TrimSpace(list) != "" {
		t.Fatalf("a dry run created accounts: %q", list)
	}

	out, _ = run(t, a, "import", file)
	for _, want := range []string{"users: 2 (accounts created 2", "plaintext passwords hashed 1", "roster items 3, pending subscription requests 1, vCards 1, private XML 1, blocked JIDs 1, offline messages 2",
		"PEP nodes 1, items 2", "skipped: alice@localhost: {jabber:iq:privacy}query", "pubsub#itemreply", "SCRAM-SHA-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	// What was imported is what the live server serves.
	a.Restart(t)
	bob := xmppclient.MustLoginTo(t, a, "bob", "bob-old-pw", xmppclient.Options{Mechs: []sasl.Mechanism{sasl.ScramSha1}})
	bob.Close()
	alice := xmppclient.MustLoginTo(t, a, "alice", "alice-old-pw", xmppclient.Options{Resource: "r"})
	roster := alice.IQ("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>").Child(xmppclient.NSRoster, "query")
	items := roster.Children(xmppclient.NSRoster, "item")
	if len(items) != 2 || items[0].Get("jid") != "bob@localhost" || items[0].Get("subscription") != "both" || items[0].Get("name") != "Bob" ||
		len(items[0].Children(xmppclient.NSRoster, "group")) != 2 || items[1].Get("jid") != "carol@localhost" || items[1].Get("ask") != "subscribe" {
		t.Errorf("roster: %s", roster)
	}
	vc := alice.IQ("<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>")
	if !strings.Contains(vc.String(), "Alice Liddell") {
		t.Errorf("vCard: %s", vc)
	}
	pr := alice.IQ("<iq type='get' id='p1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>")
	if !strings.Contains(pr.String(), "blue") {
		t.Errorf("private XML: %s", pr)
	}
	bl := alice.IQ("<iq type='get' id='b1'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	if !strings.Contains(bl.String(), "mallory@localhost") {
		t.Errorf("blocklist: %s", bl)
	}
	pep := alice.IQ("<iq type='get' id='e1' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:node'/></pubsub></iq>")
	if s := pep.String(); !strings.Contains(s, "first") || !strings.Contains(s, "second") {
		t.Errorf("PEP items: %s", s)
	}
	alice.Send("<presence/>")
	m := alice.Expect("the offline message", xmppclient.IsMessageWithBody("while you were away"))
	if d := m.Child(xmppclient.NSDelay, "delay"); d == nil || !stampIs(d.Get("stamp"), "2021-02-03T04:05:06Z") {
		t.Errorf("offline message delay: %s", m)
	}
	alice.Expect("the pending subscription request", xmppclient.IsPresence("dave@localhost", "subscribe"))
	alice.Close()
	a.Stop()

	// Export from a, import into a fresh b, export b: the two exports are the same file.
	dir := t.TempDir()
	fa, fb := filepath.Join(dir, "a.xml"), filepath.Join(dir, "b.xml")
	run(t, a, "export", fa)
	b := stopped(t)
	run(t, b, "import", fa)
	run(t, b, "export", fb)
	ea, _ := os.ReadFile(fa)
	eb, _ := os.ReadFile(fb)
	if string(ea) != string(eb) {
		t.Fatalf("export of the import differs:\n%s\n---\n%s", ea, eb)
	}
	if fi, _ := os.Stat(fa); fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v, want 0600 (XEP-0227 §8: it holds credentials)", fi.Mode().Perm())
	}
	for _, want := range []string{"<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'>", "dave@localhost", "Alice Liddell", "urn:example:prefs",
		"mallory@localhost", "for bob, still queued", "stamp='2022-03-04T05:06:07.5Z'", "<entry xmlns='urn:example:entry'>second</entry>", "<value>5</value>"} {
		if !strings.Contains(string(ea), want) {
			t.Errorf("export lacks %q", want)
		}
	}
	// Idempotent: importing the same file again writes nothing, and the data is unchanged.
	out, _ = run(t, b, "import", fa)
	if !strings.Contains(out, "accounts created 0, kept 2, credentials written 0") || !strings.Contains(out, "roster items 0, pending subscription requests 0, vCards 0, private XML 0, blocked JIDs 0, offline messages 0") ||
		!strings.Contains(out, "PEP nodes 0, items 0, members 0") {
		t.Errorf("second import wrote something:\n%s", out)
	}
	run(t, b, "export", fb)
	if eb, _ := os.ReadFile(fb); string(ea) != string(eb) {
		t.Errorf("a second import changed the data")
	}
	// The original file once more into a: alice's plaintext password still verifies, nothing changes either.
	out, _ = run(t, a, "import", file)
	// (alice's offline message was delivered meanwhile, so the file queues it again: that is what it says.)
	if !strings.Contains(out, "accounts created 0, kept 2") || !strings.Contains(out, "offline messages 1") {
		t.Errorf("re-import of the original:\n%s", out)
	}
	b.Restart(t)
	xmppclient.MustLoginTo(t, b, "bob", "bob-old-pw", xmppclient.Options{Mechs: []sasl.Mechanism{sasl.ScramSha1}}).Close()
	xmppclient.MustLoginTo(t, b, "alice", "alice-old-pw", xmppclient.Options{}).Close()
}
