package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Hostile or malformed files are refused with the line and the reason, and nothing is imported; with
// --continue-on-error the good users go in and the bad ones are reported.
func TestHostileFiles(t *testing.T) {
	s := stopped(t)
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.xml")
	os.WriteFile(outside, []byte("<user xmlns='urn:xmpp:pie:0' name='x' password='y'/>"), 0o600)
	good := "<user name='good' password='pw-good'/>"
	head := "<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='localhost'>\n" + good + "\n"
	tail := "\n</host>\n</server-data>\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"billion laughs", "<?xml version='1.0'?>\n<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]>\n<server-data xmlns='urn:xmpp:pie:0'/>", ":2: a DOCTYPE"},
		{"external entity", head + "<user name='e' password='p'><vCard xmlns='vcard-temp'><FN>&xxe;</FN></vCard></user>" + tail, ":5: malformed XML"},
		{"wrong namespace", "<server-data xmlns='http://example.com/not-pie'>\n</server-data>", ":1: the root element"},
		{"bad JID", head + "<user name='bad user' password='p'/>" + tail, ":5: <user name=\"bad user\"/> is not a valid localpart"},
		{"bad roster JID", head + "<user name='r' password='p'><query xmlns='jabber:iq:roster'>\n<item jid='a@b@c'/></query></user>" + tail, ":6: user r@localhost: roster item jid"},
		{"huge element", head + "<user name='h' password='p'><vCard xmlns='vcard-temp'><FN>" + strings.Repeat("A", 65<<20) + "</FN></vCard></user>" + tail, "bigger than 67108864 bytes"},
		{"include outside", "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\n<xi:include href='" + outside + "'/></server-data>", ":2: xi:include href"},
		{"foreign domain", "<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='elsewhere.example'><user name='u' password='p'/></host></server-data>", "host elsewhere.example is not served"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".xml")
			if err := os.WriteFile(f, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := s.Run("import", f)
			if exitCode(err) != 3 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d (want 3), stderr %q, want %q", exitCode(err), firstLines(stderr), tc.want)
			}
			if list, _ := run(t, s, "user", "list"); strings.TrimSpace(list) != "" {
				t.Errorf("a refused file imported %q", list)
			}
		})
	}
	// --continue-on-error: the users before and after a bad one are imported, the bad one is reported.
	f := filepath.Join(dir, "partial.xml")
	os.WriteFile(f, []byte(head+"<user name='r' password='p'><query xmlns='jabber:iq:roster'><item jid='a@b@c'/></query></user>\n<user name='after' password='pw-after'/>"+tail), 0o600)
	out, stderr, err := s.Run("import", "--continue-on-error", f)
	if exitCode(err) != 3 || !strings.Contains(out, "failed: ") || !strings.Contains(out, "roster item jid") || !strings.Contains(stderr, "1 users were not imported") {
		t.Errorf("continue-on-error: exit %d\nstdout %s\nstderr %s", exitCode(err), out, stderr)
	}
	if list, _ := run(t, s, "user", "list"); list != "after@localhost\ngood@localhost\n" {
		t.Errorf("continue-on-error imported %q", list)
	}
}

func firstLines(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}
