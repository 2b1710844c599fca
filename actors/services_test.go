package actors

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// seen is what the test service's entities report: which entity, which incarnation, and the message.
type seen struct {
	key         string
	incarnation int // the how-manieth entity part of this key
	nth         int // messages this incarnation handled
	body        string
}

// echoFeature is a service at echo.localhost whose service part hands every message to the entity named by the
// 'to' localpart; an entity reports each message on out, and panics on the body "panic".
func echoFeature(out chan<- seen) *feature.Feature {
	var mu sync.Mutex
	made := map[string]int{} // NewEntity runs on each entity's goroutine
	return &feature.Feature{Name: "echo", Service: &feature.ServiceSpec{
		Host:       func(*config.Config) string { return "echo.localhost" },
		Name:       "Echo",
		Identities: []string{"<identity category='test' type='echo'/>"},
		Vars:       []string{"urn:test:echo"},
		New:        func(h feature.ServiceHost) any { return &echoService{h: h} },
		EntityKind: "echo-entity",
		NewEntity: func(h feature.EntityHost, key string) any {
			mu.Lock()
			defer mu.Unlock()
			made[key]++
			return &echoEntity{out: out, key: key, incarnation: made[key]}
		},
	}}
}

type echoService struct{ h feature.ServiceHost }

func (s *echoService) Stanza(st *stanza.Routed) { s.h.ToEntity(st.To.Local(), st) }

type echoEntity struct {
	out         chan<- seen
	key         string
	incarnation int
	n           int
}

func (e *echoEntity) Handle(msg any) {
	st := msg.(*stanza.Routed)
	body := between(st.Raw, "<body>", "</body>")
	if body == "panic" {
		panic("the test entity was asked to fail")
	}
	e.n++
	e.out <- seen{key: e.key, incarnation: e.incarnation, nth: e.n, body: body}
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

func startWith(t *testing.T, all []*feature.Feature) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.C2S.Listen = "127.0.0.1:0"
	cfg.C2S.DirectTLSListen = ""
	cfg.Debug.Listen = ""
	cfg.Proxy65.Listen = "" // the default :7777 would be shared by every server of a test run
	cfg.HTTP.Listen = ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, zerolog.Nop(), all)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(10 * time.Second) })
	return srv
}

func sendTo(srv *Server, to, body string) {
	from := jid.MustParse("alice@localhost/r")
	st := stanza.Generate("message", "", from, jid.MustParse(to), "", "<body>"+body+"</body>")
	srv.sys.Root.Send(srv.env.router, &Route{St: st})
}

func next(t *testing.T, out <-chan seen) seen {
	t.Helper()
	select {
	case s := <-out:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the service's entity reported nothing")
		return seen{}
	}
}

// Stanzas to a service domain reach its entities through the router in order; a panicking entity is stopped
// without touching the service or its other entities, and the next stanza gets a fresh one.
func TestServiceRoutingAndSupervision(t *testing.T) {
	out := make(chan seen, 100)
	srv := startWith(t, append(features.All(), echoFeature(out)))
	if !srv.env.isService("echo.localhost") || srv.env.isService("localhost") || srv.env.cfg.Serves("echo.localhost") {
		t.Fatal("echo.localhost is not a service domain, or counts as served")
	}
	for i := 1; i <= 3; i++ {
		sendTo(srv, "room@echo.localhost", fmt.Sprint("m", i))
	}
	for i := 1; i <= 3; i++ {
		if s := next(t, out); s != (seen{key: "room", incarnation: 1, nth: i, body: fmt.Sprint("m", i)}) {
			t.Fatalf("message %d: %+v", i, s)
		}
	}
	panics := testutilValue(srv.env.metrics.actorPanics)
	sendTo(srv, "room@echo.localhost", "panic")
	sendTo(srv, "other@echo.localhost/res", "to another entity")
	if s := next(t, out); s.key != "other" || s.body != "to another entity" {
		t.Fatalf("another entity: %+v", s)
	}
	// The entity is stopped; the next message may still reach the dying actor's PID only if the service did not
	// learn of its end yet, so wait until it has.
	deadline := time.Now().Add(30 * time.Second)
	for testutilValue(srv.env.metrics.actorPanics) == panics && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if testutilValue(srv.env.metrics.actorPanics) != panics+1 {
		t.Fatal("the panic was not counted")
	}
	for {
		sendTo(srv, "room@echo.localhost", "after")
		s := next(t, out)
		if s.incarnation == 2 && s.nth == 1 && s.body == "after" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fresh entity after the panic: %+v", s)
		}
	}
}

// At shutdown the services drain: every stanza already routed to an entity is handled before it stops.
func TestServicesDrain(t *testing.T) {
	out := make(chan seen, 500)
	srv := startWith(t, append(features.All(), echoFeature(out)))
	const n = 300
	for i := 1; i <= n; i++ {
		sendTo(srv, fmt.Sprintf("e%d@echo.localhost", i%7), fmt.Sprint(i))
	}
	srv.Shutdown(20 * time.Second)
	if len(out) != n {
		t.Errorf("%d of %d stanzas handled before the services stopped", len(out), n)
	}
}

// testutilValue reads a counter through its Write method (what a scrape does).
func testutilValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
