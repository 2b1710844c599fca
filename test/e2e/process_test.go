package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"

	"github.com/xmppd/xmppd/test/xmppclient"
)

// SIGTERM: every stream gets <system-shutdown/>, the process exits 0, and
// what was acknowledged before (an offline message) survives the restart.
func TestSIGTERMShutdownAndRestart(t *testing.T) {
	srv := own(t, harness.Options{})
	a, apw := srv.user(t, "alice")
	b, bpw := srv.user(t, "bob")
	c, cpw := srv.user(t, "carol")
	alice := mustLogin(t, srv, a, apw, loginOpts{resource: "st"})
	bob := mustLogin(t, srv, b, bpw, loginOpts{resource: "dt", direct: true})
	alice.Send(`<presence/>`)
	bob.Send(`<presence/>`)
	alice.Send(`<message to='` + srv.bare(c) + `' type='chat'><body>kept across restart</body></message>`)
	// A round trip after the message: the server has taken it.
	alice.IQ(`<iq type='get' to='` + srv.Domain + `'><ping xmlns='urn:xmpp:ping'/></iq>`)
	// A raw, not yet authenticated stream gets the error too.
	rc := dialRaw(t, srv)
	rc.open(srv.Domain)

	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*xmppclient.Client{alice, bob} {
		if cond := cl.StreamError(); cond != "system-shutdown" {
			t.Errorf("%s: stream ended with %q, want system-shutdown\ntranscript tail:\n%s", cl.JID, cond, cl.TranscriptTail(1024))
		}
	}
	rc.expectStreamError("system-shutdown")
	code, ok := srv.WaitExit(10 * time.Second)
	if !ok {
		t.Fatal("xmppd still running 10 s after SIGTERM")
	}
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	// Stop (from cleanup) must not complain about the clean exit: Restart
	// starts it again.
	srv.Restart(t)

	carol := mustLogin(t, srv, c, cpw, loginOpts{})
	carol.Send(`<presence/>`)
	m := carol.Expect("offline message stored before SIGTERM", xmppclient.IsMessageWithBody("kept across restart"))
	if m.Child(xmppclient.NSDelay, "delay") == nil {
		t.Errorf("no delay stamp: %s", m)
	}
	mustLogin(t, srv, b, bpw, loginOpts{})
}

// SIGKILL mid-session loses nothing that was acknowledged: accounts and
// roster items are in storage.
func TestCrashRestart(t *testing.T) {
	srv := own(t, harness.Options{})
	a, apw := srv.user(t, "alice")
	b, _ := srv.user(t, "bob")
	alice := mustLogin(t, srv, a, apw, loginOpts{})
	e := alice.IQ(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='` + srv.bare(b) + `' name='B'><group>g</group></item></query></iq>`)
	if e.Get("type") != "result" {
		t.Fatalf("roster set: %s", e)
	}
	srv.Kill()
	if _, ended := alice.WaitEnd(xmppclient.WaitTimeout); !ended {
		t.Fatal("stream still open after SIGKILL")
	}
	srv.Restart(t)
	alice2 := mustLogin(t, srv, a, apw, loginOpts{})
	if it, ok := fetchRoster(t, alice2)[srv.bare(b)]; !ok || it.Name != "B" || len(it.Group) != 1 || it.Group[0] != "g" {
		t.Fatalf("roster after crash: %+v (present %v)", it, ok)
	}
}
