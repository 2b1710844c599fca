package migrate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// xmppd user list --json and user show, against a running server (sessions from its debug endpoint), and the
// exit codes scripts rely on.
func TestUserListShow(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	s.AddUser(t, "ann", "ann-pw-1")
	s.AddUser(t, "ben", "ben-pw-1")
	ann := xmppclient.Online(t, s, "ann", "ann-pw-1", "laptop")
	ann.IQ("<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='ben@localhost'/></query></iq>")

	out, _ := run(t, s, "user", "list", "--json")
	var list []struct {
		JID         string `json:"jid"`
		RosterItems int    `json:"roster_items"`
		Credentials []struct {
			Mechanism  string `json:"mechanism"`
			Iterations int    `json:"iterations"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("user list --json: %v\n%s", err, out)
	}
	if len(list) != 2 || list[0].JID != "ann@localhost" || list[0].RosterItems != 1 || list[1].JID != "ben@localhost" ||
		len(list[0].Credentials) != 3 || list[0].Credentials[0].Mechanism != "SCRAM-SHA-1" {
		t.Errorf("user list --json: %s", out)
	}
	if out, _ := run(t, s, "user", "list"); out != "ann@localhost\nben@localhost\n" {
		t.Errorf("user list: %q", out)
	}

	out, _ = run(t, s, "user", "show", "ann@localhost", "--json")
	var show struct {
		JID           string   `json:"jid"`
		RosterItems   int      `json:"roster_items"`
		Sessions      []string `json:"sessions"`
		SessionsError string   `json:"sessions_error"`
		LastSeen      *string  `json:"last_seen"`
	}
	if err := json.Unmarshal([]byte(out), &show); err != nil {
		t.Fatalf("user show --json: %v\n%s", err, out)
	}
	if show.JID != "ann@localhost" || show.RosterItems != 1 || len(show.Sessions) != 1 || show.Sessions[0] != "ann@localhost/laptop" || show.SessionsError != "" {
		t.Errorf("user show --json: %s", out)
	}
	ann.Close()
	// After the session ends, last seen is set (the user actor stores the last unavailable presence). Polled
	// through user list --json, which does not ask the debug endpoint.
	for i := 0; i < 100; i++ {
		if out, _ = run(t, s, "user", "list", "--json"); !strings.Contains(out, `"last_seen": null`) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ = run(t, s, "user", "show", "ann@localhost")
	if !strings.Contains(out, "roster items: 1") || !strings.Contains(out, "sessions online: 0") || strings.Contains(out, "last seen: never") {
		t.Errorf("user show after logout:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"user", "show", "nobody@localhost"}, 1},
		{[]string{"user", "delete", "nobody@localhost"}, 1},
		{[]string{"user", "passwd", "nobody@localhost", "--password", "x-long-enough"}, 1},
		{[]string{"user", "show"}, 2},
		{[]string{"user", "show", "not a jid"}, 2},
		{[]string{"user", "frobnicate"}, 2},
		{[]string{"nonsense"}, 2},
		{[]string{"export"}, 2},
		{[]string{"import", "/nonexistent/file.xml"}, 4}, // the running server holds the data directory
		{[]string{"user", "list", "--bogus"}, 2},
	} {
		if _, stderr, err := s.Run(tc.args...); exitCode(err) != tc.code {
			t.Errorf("xmppd %s: exit %d, want %d (%s)", strings.Join(tc.args, " "), exitCode(err), tc.code, stderr)
		}
	}
	s.Stop()
	// With the server stopped: user show says why it cannot count sessions, and exits 0.
	out, _ = run(t, s, "user", "show", "ben@localhost")
	if !strings.Contains(out, "sessions online: unknown (is xmppd running?") {
		t.Errorf("user show with the server stopped:\n%s", out)
	}
	if _, _, err := s.Run("import", "/nonexistent/file.xml"); exitCode(err) != 3 {
		t.Errorf("import of a missing file: exit %d, want 3", exitCode(err))
	}
}
