package actors

import (
	"slices"
	"testing"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features"
	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

func serverFor(t *testing.T, cfg *config.Config) *serverInfo {
	t.Helper()
	reg, err := newRegistry(cfg, features.All())
	if err != nil {
		t.Fatal(err)
	}
	s := &serverInfo{cfg: cfg, reg: reg}
	s.capsVer = caps.ServerVer(s.DiscoInfo(""))
	return s
}

// The server's own caps hash changes exactly when what it advertises changes, and verifies against its own
// disco#info (XEP-0115 §5.4).
func TestServerCapsFollowFeatures(t *testing.T) {
	cfg := config.Default()
	a := serverFor(t, &cfg)
	if a.capsVer == "" {
		t.Fatal("no caps ver")
	}
	cfg2 := config.Default()
	cfg2.Features.Disable = []string{"carbons"}
	b := serverFor(t, &cfg2)
	if a.capsVer == b.capsVer {
		t.Errorf("disabling carbons did not change the caps ver")
	}
	n, err := xmlstream.ParseNode(b.DiscoInfo(""), "")
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Verify(n, "sha-1", b.capsVer) {
		t.Errorf("the server's disco#info does not verify against its own ver")
	}
	if slices.Contains(b.reg.serverVars, stanza.NSCarbons) {
		t.Errorf("carbons advertised while disabled")
	}
	if !slices.Contains(a.reg.serverVars, stanza.NSCarbons) || !slices.Contains(a.reg.serverVars, caps.NS) || !slices.Contains(a.reg.serverVars, "urn:xmpp:csi:0") {
		t.Errorf("server vars %v lack carbons, caps or csi", a.reg.serverVars)
	}
	cfg3 := config.Default()
	cfg3.Features.Disable = []string{"nonsense"}
	if _, err := newRegistry(&cfg3, features.All()); err == nil {
		t.Errorf("unknown feature name accepted")
	}
}

// Every feature's IQ payloads, nonzas and names are distinct: one registry line cannot shadow another.
func TestRegistryIsConsistent(t *testing.T) {
	cfg := config.Default()
	cfg.Registration.Allow = true
	cfg.ExternalServices = []config.ExternalService{{Type: "stun", Host: "stun.example.org", Port: 3478}} // XEP-0215 is on with a service
	reg, err := newRegistry(&cfg, features.All())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range reg.list {
		if f.Name == "" || names[f.Name] {
			t.Errorf("feature name %q empty or twice", f.Name)
		}
		names[f.Name] = true
	}
	if len(reg.list) != len(features.All()) {
		t.Errorf("with registration allowed and an external service every feature should be enabled: %d of %d", len(reg.list), len(features.All()))
	}
}

// echoPart answers every event it hears with another, up to limit (limit < 0: forever).
type echoPart struct {
	host  *userHost
	heard []any
	limit int
}

func (e *echoPart) Heard(ev any) {
	e.heard = append(e.heard, ev)
	if e.limit != 0 {
		e.limit--
		e.host.Announce(ev.(int) + 1)
	}
}

// Events reach every other part in order, never the announcer; a chain of answers runs to its end within the
// same message; an endless one is cut off instead of spinning the actor.
func TestUserEvents(t *testing.T) {
	u := &userActor{}
	a, b, c := &echoPart{host: &userHost{u: u, idx: 0}}, &echoPart{host: &userHost{u: u, idx: 1}, limit: 2}, &echoPart{host: &userHost{u: u, idx: 2}}
	u.parts = []any{a, b, c}
	u.listeners = collect[feature.Listener](u.parts)
	a.host.Announce(1)
	a.host.Announce(10)
	u.tellEvents()
	if !slices.Equal(a.heard, []any{2, 11}) || !slices.Equal(b.heard, []any{1, 10}) || !slices.Equal(c.heard, []any{1, 10, 2, 11}) {
		t.Fatalf("a heard %v, b %v, c %v", a.heard, b.heard, c.heard)
	}
	b.limit, c.limit = -1, -1
	b.heard, c.heard = nil, nil
	a.host.Announce(100)
	u.tellEvents()
	if len(u.events) != 0 || len(c.heard) > maxEventRounds+1 {
		t.Fatalf("an endless chain: %d events left, c heard %d", len(u.events), len(c.heard))
	}
}
