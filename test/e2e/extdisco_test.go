package e2e

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0215 external services: the shared server has a STUN and a TURN service, the TURN one with a shared
// secret. The credentials are checked here as a TURN server (coturn with use-auth-secret) checks them:
// username = <expiry>:<user>, password = base64(HMAC-SHA1(secret, username)).

const nsExtdisco = "urn:xmpp:extdisco:2"

func turnPassword(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// checkTURN checks one <service/> with credentials for bare, valid for about ttl.
func checkTURN(t testing.TB, s *xmppclient.Elem, bare string, ttl time.Duration) {
	t.Helper()
	user, pass := s.Get("username"), s.Get("password")
	ts, who, ok := strings.Cut(user, ":")
	exp, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || who != bare {
		t.Fatalf("username %q: want <unix expiry>:%s", user, bare)
	}
	if pass != turnPassword(sharedTURNSecret, user) {
		t.Fatalf("password %q does not validate against the shared secret", pass)
	}
	if d := time.Until(time.Unix(exp, 0)); d < ttl-time.Minute || d > ttl+time.Minute {
		t.Fatalf("credentials valid for %v, want about %v", d, ttl)
	}
	if s.Get("restricted") != "1" {
		t.Fatalf("credentials without restricted='1': %s", s)
	}
	if at, err := time.Parse(time.RFC3339, s.Get("expires")); err != nil || at.Unix() != exp {
		t.Fatalf("expires %q does not match the username's %d", s.Get("expires"), exp)
	}
}

func TestExtdiscoServices(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "extdisco")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	bare := srv.bare(local)

	info := c.IQ("<iq type='get' to='" + srv.Domain + "' id='di'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if !strings.Contains(info.String(), nsExtdisco) {
		t.Fatalf("disco#info does not advertise %s: %s", nsExtdisco, info)
	}

	r := c.IQ("<iq type='get' to='" + srv.Domain + "' id='all'><services xmlns='" + nsExtdisco + "'/></iq>")
	list := r.Child(nsExtdisco, "services").Children(nsExtdisco, "service")
	if r.Get("type") != "result" || len(list) != 2 {
		t.Fatalf("services: %s", r)
	}
	for _, s := range list {
		switch s.Get("type") {
		case "stun":
			if s.Get("host") != "stun.example.org" || s.Get("port") != "3478" || s.Get("transport") != "udp" || s.Has("username") || s.Has("restricted") {
				t.Errorf("stun service: %s", s)
			}
		case "turn":
			if s.Get("host") != "turn.example.org" || s.Get("port") != "3478" {
				t.Errorf("turn service: %s", s)
			}
			checkTURN(t, s, bare, time.Hour)
		default:
			t.Errorf("unexpected service %s", s)
		}
	}

	r = c.IQ("<iq type='get' to='" + srv.Domain + "' id='turn'><services xmlns='" + nsExtdisco + "' type='turn'/></iq>")
	if l := r.Child(nsExtdisco, "services").Children(nsExtdisco, "service"); len(l) != 1 || l[0].Get("type") != "turn" {
		t.Fatalf("services of type turn: %s", r)
	}

	r = c.IQ("<iq type='get' to='" + srv.Domain + "' id='cred'><credentials xmlns='" + nsExtdisco + "'><service host='turn.example.org' type='turn'/></credentials></iq>")
	s := r.Child(nsExtdisco, "credentials").Child(nsExtdisco, "service")
	if r.Get("type") != "result" || s == nil {
		t.Fatalf("credentials: %s", r)
	}
	checkTURN(t, s, bare, time.Hour)

	r = c.IQ("<iq type='get' to='" + srv.Domain + "' id='none'><credentials xmlns='" + nsExtdisco + "'><service host='nowhere.example.org' type='turn'/></credentials></iq>")
	wantStanzaError(t, "credentials of an unknown service", r, "cancel", "item-not-found")
}

// Without [[external_services]] nothing is advertised and the query is not answered (service-unavailable).
func TestExtdiscoOffWithoutServices(t *testing.T) {
	srv := own(t, harness.Options{})
	local, pw := srv.user(t, "noext")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	info := c.IQ("<iq type='get' to='" + srv.Domain + "' id='di'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if strings.Contains(info.String(), nsExtdisco) {
		t.Fatalf("disco#info advertises %s with no service configured", nsExtdisco)
	}
	r := c.IQ("<iq type='get' to='" + srv.Domain + "' id='q'><services xmlns='" + nsExtdisco + "'/></iq>")
	wantStanzaError(t, "services without configuration", r, "cancel", "service-unavailable")
}
