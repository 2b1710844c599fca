package register

import (
	"context"
	"errors"
	"testing"

	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/storage"
)

const alice = "alice@example.com"

func setup(t *testing.T) (*featuretest.Server, *featuretest.Session) {
	t.Helper()
	srv := featuretest.NewServer(t, Feature)
	srv.Cfg.Registration.Allow = true
	srv.Cfg.Registration.MinPasswordLength = 8
	srv.Cfg.Auth.ScramIterations = 4096
	srv.AddAccount(t, alice)
	return srv, featuretest.NewSession(srv, alice+"/r")
}

func iq(typ, payload string) string {
	return "<iq from='" + alice + "/r' type='" + typ + "' id='r1'><query xmlns='jabber:iq:register'>" + payload + "</query></iq>"
}

// refused checks the one answer: an error with cond and text.
func refused(t *testing.T, s *featuretest.Session, cond stanza.Condition, text string) {
	t.Helper()
	if len(s.Client) != 1 || s.Client[0].Head.Type != "error" {
		t.Fatalf("answers %+v", s.Client)
	}
	if c := featuretest.ErrorCondition(t, s.Client[0]); c != string(cond) {
		t.Errorf("condition %q, want %q", c, cond)
	}
	var got string
	if e := featuretest.Node(t, s.Client[0]).Child(stanza.NSClient, "error"); e != nil {
		if tx := e.Child(stanza.NSStanzas, "text"); tx != nil {
			got = tx.TextContent()
		}
	}
	if got != text {
		t.Errorf("text %q, want %q", got, text)
	}
}

func run(t *testing.T, s *featuretest.Session, raw string) {
	t.Helper()
	Feature.IQs[0].Session(featuretest.IQ(t, s, nil, raw))
}

func TestEnabled(t *testing.T) {
	srv := featuretest.NewServer(t)
	if Feature.Enabled(&srv.Cfg) != srv.Cfg.Registration.Allow {
		t.Error("Enabled does not follow registration.allow")
	}
	srv.Cfg.Registration.Allow = true
	if !Feature.Enabled(&srv.Cfg) {
		t.Error("not enabled with registration.allow")
	}
	srv.Cfg.Registration.Allow = false
	if Feature.Enabled(&srv.Cfg) {
		t.Error("enabled without registration.allow")
	}
	if Feature.Name != "register" || len(Feature.IQs) != 1 || Feature.IQs[0].Account != nil || Feature.IQs[0].Server == nil {
		t.Errorf("feature %+v", Feature)
	}
}

func TestGet(t *testing.T) {
	_, s := setup(t)
	Feature.IQs[0].Server(featuretest.IQ(t, s, nil, "<iq from='"+alice+"/r' to='example.com' type='get' id='g'><query xmlns='jabber:iq:register'/></iq>"))
	want := "<iq type='result' from='example.com' to='alice@example.com/r' id='g'><query xmlns='jabber:iq:register'><registered/><username>alice</username><password/></query></iq>"
	if len(s.Client) != 1 || s.Client[0].Raw != want {
		t.Fatalf("answers %+v\nwant %q", s.Client, want)
	}
}

func TestDisabledRefused(t *testing.T) {
	srv, s := setup(t)
	srv.Cfg.Registration.Allow = false
	run(t, s, iq("get", ""))
	refused(t, s, stanza.NotAllowed, "in-band registration is disabled")
}

func TestRemove(t *testing.T) {
	srv, s := setup(t)
	run(t, s, iq("set", "<remove/>"))
	if len(s.Client) != 1 || s.Client[0].Raw != "<iq type='result' to='alice@example.com/r' id='r1'/>" {
		t.Fatalf("answers %+v", s.Client)
	}
	if !s.Removed {
		t.Error("AccountRemoved not called")
	}
	if _, err := srv.DB.Credentials(context.Background(), alice); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("account still there: %v", err)
	}
	// Removing again (a second session, racing) still succeeds.
	s2 := featuretest.NewSession(srv, alice+"/other")
	run(t, s2, iq("set", "<remove/>"))
	if len(s2.Client) != 1 || s2.Client[0].Head.Type != "result" || !s2.Removed {
		t.Errorf("second removal: %+v removed=%v", s2.Client, s2.Removed)
	}
}

func TestRemoveWithOtherChildren(t *testing.T) {
	srv, s := setup(t)
	run(t, s, iq("set", "<remove/><username>alice</username>"))
	refused(t, s, stanza.BadRequest, "the <remove/> element must be the only child of the query")
	if s.Removed {
		t.Error("removed")
	}
	if _, err := srv.DB.Credentials(context.Background(), alice); err != nil {
		t.Errorf("account gone: %v", err)
	}
}

func TestChangePassword(t *testing.T) {
	for _, tc := range []struct{ name, payload string }{
		{"without username", "<password>correct horse</password>"},
		{"own username", "<username>alice</username><password>correct horse</password>"},
		{"own username, other case", "<username>Alice</username><password>correct horse</password>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, s := setup(t)
			run(t, s, iq("set", tc.payload))
			if len(s.Client) != 1 || s.Client[0].Raw != "<iq type='result' to='alice@example.com/r' id='r1'/>" {
				t.Fatalf("answers %+v", s.Client)
			}
			creds, err := srv.DB.Credentials(context.Background(), alice)
			if err != nil || len(creds) == 0 {
				t.Fatalf("credentials %v %v", creds, err)
			}
			for _, c := range creds {
				h := hashNamed(t, c.Hash)
				sc := sasl.Credentials{Hash: h, Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
				if !sasl.VerifyPassword(sc, "correct horse") || sasl.VerifyPassword(sc, "pw") {
					t.Errorf("%s credentials do not hold the new password", c.Hash)
				}
			}
			if s.Removed {
				t.Error("removed")
			}
		})
	}
}

func TestChangePasswordRefused(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		cond          stanza.Condition
		text          string
	}{
		{"short", "<password>1234567</password>", stanza.NotAcceptable, "the password must be at least 8 characters long"},
		{"empty", "<password/>", stanza.BadRequest, "the password must be at least 8 characters long"},
		{"missing", "<username>alice</username>", stanza.BadRequest, "the password must be at least 8 characters long"},
		{"other username", "<username>bob</username><password>correct horse</password>", stanza.NotAuthorized, "the username must be the account's own (alice)"},
		{"invalid username", "<username>a@b</username><password>correct horse</password>", stanza.NotAuthorized, "the username must be the account's own (alice)"},
		{"empty username", "<username/><password>correct horse</password>", stanza.NotAuthorized, "the username must be the account's own (alice)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, s := setup(t)
			run(t, s, iq("set", tc.payload))
			refused(t, s, tc.cond, tc.text)
			creds, err := srv.DB.Credentials(context.Background(), alice)
			if err != nil || len(creds) != 1 || string(creds[0].StoredKey) != "k" {
				t.Errorf("credentials changed: %v %v", creds, err)
			}
		})
	}
}

// A length of 0 still refuses the empty password, with the rule of at least 1 character.
func TestNoMinimum(t *testing.T) {
	srv, s := setup(t)
	srv.Cfg.Registration.MinPasswordLength = 0
	run(t, s, iq("set", "<password/>"))
	refused(t, s, stanza.BadRequest, "the password must be at least 1 characters long")
	s.Client = nil
	run(t, s, iq("set", "<password>x</password>"))
	if len(s.Client) != 1 || s.Client[0].Head.Type != "result" {
		t.Errorf("one-character password with no minimum: %+v", s.Client)
	}
}

// The store failing (here: the account is gone under us) is internal-server-error, and nothing is reported
// removed.
func TestStoreFailure(t *testing.T) {
	srv, s := setup(t)
	if err := srv.DB.DeleteAccount(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	run(t, s, iq("set", "<password>correct horse</password>"))
	refused(t, s, stanza.InternalServerError, "")
	if s.Removed {
		t.Error("removed")
	}
}

func hashNamed(t *testing.T, name string) sasl.Hash {
	t.Helper()
	for _, h := range sasl.Hashes {
		if h.String() == name {
			return h
		}
	}
	t.Fatalf("hash %q", name)
	return 0
}
