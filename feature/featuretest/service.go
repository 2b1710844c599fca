package featuretest

import (
	"strconv"
	"testing"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// Service runs a feature's service (feature.ServiceSpec) without actors: the service part and its entity parts
// on the test's goroutine, the messages between them queued in the order sent and handled by Run, as the actors
// would (one mailbox each, FIFO per sender). What the parts route is recorded in Routed.
type Service struct {
	Srv    *Server
	Spec   *feature.ServiceSpec
	Domain jid.JID
	Logger zerolog.Logger
	Part   any
	// Entities are the entity parts alive, by key; Spawned counts how many were ever made.
	Entities map[string]any
	Spawned  int
	Routed   []*stanza.Routed
	queue    []serviceMsg
	ids      int
}

type serviceMsg struct {
	entity string // "" : to the service part
	msg    any
}

// NewService starts the service of spec at the host its configuration names (the test fails if it is off).
func NewService(t testing.TB, srv *Server, spec *feature.ServiceSpec) *Service {
	t.Helper()
	host := spec.Host(srv.Config())
	if host == "" {
		t.Fatal("the service is off in the test configuration")
	}
	s := &Service{Srv: srv, Spec: spec, Domain: MustJID(host), Logger: zerolog.Nop()}
	s.Restart()
	return s
}

// Restart drops every part and makes a new service part: what the service knows afterwards comes from storage.
func (s *Service) Restart() {
	s.queue = nil
	s.Entities = map[string]any{}
	s.Part = s.Spec.New(&fakeServiceHost{s: s})
}

// Send hands st to the service part (feature.ServiceStanza) and runs until nothing is queued.
func (s *Service) Send(st *stanza.Routed) {
	if h, ok := s.Part.(feature.ServiceStanza); ok {
		h.Stanza(st)
	}
	s.Run()
}

// Run handles the queued messages between the parts, in order, until none is left.
func (s *Service) Run() {
	for len(s.queue) > 0 {
		m := s.queue[0]
		s.queue = s.queue[1:]
		if m.entity == "" {
			handle(s.Part, m.msg)
			continue
		}
		p, ok := s.Entities[m.entity]
		if !ok {
			s.Spawned++
			if s.Spec.NewEntity != nil {
				p = s.Spec.NewEntity(&fakeEntityHost{s: s, key: m.entity}, m.entity)
			}
			s.Entities[m.entity] = p
		}
		handle(p, m.msg)
	}
}

// Hibernate stops every entity whose part is idle (feature.EntityIdle, or no such hook), as the actors do after
// a quiet while; the next message spawns it again.
func (s *Service) Hibernate() {
	for k, p := range s.Entities {
		if i, ok := p.(feature.EntityIdle); ok && !i.Idle() {
			continue
		}
		delete(s.Entities, k)
	}
}

// Take returns what was routed since the last Take.
func (s *Service) Take() []*stanza.Routed {
	out := s.Routed
	s.Routed = nil
	return out
}

func handle(part, msg any) {
	if h, ok := part.(feature.Handler); ok {
		h.Handle(msg)
	}
}

func (s *Service) nextID(prefix string) string {
	s.ids++
	return prefix + strconv.Itoa(s.ids)
}

func (s *Service) route(st *stanza.Routed) {
	if st != nil {
		s.Routed = append(s.Routed, st)
	}
}

type fakeServiceHost struct{ s *Service }

func (h *fakeServiceHost) Server() feature.Server  { return h.s.Srv }
func (h *fakeServiceHost) JID() jid.JID            { return h.s.Domain }
func (h *fakeServiceHost) Log() *zerolog.Logger    { return &h.s.Logger }
func (h *fakeServiceHost) Route(st *stanza.Routed) { h.s.route(st) }
func (h *fakeServiceHost) Bounce(st *stanza.Routed, e stanza.Error) {
	h.s.route(feature.Refusal(st, e))
}
func (h *fakeServiceHost) Entities() int               { return len(h.s.Entities) }
func (h *fakeServiceHost) NextID(prefix string) string { return h.s.nextID(prefix) }
func (h *fakeServiceHost) ToEntity(key string, msg any) {
	h.s.queue = append(h.s.queue, serviceMsg{entity: key, msg: msg})
}

type fakeEntityHost struct {
	s   *Service
	key string
}

func (h *fakeEntityHost) Server() feature.Server                   { return h.s.Srv }
func (h *fakeEntityHost) Service() jid.JID                         { return h.s.Domain }
func (h *fakeEntityHost) Key() string                              { return h.key }
func (h *fakeEntityHost) Log() *zerolog.Logger                     { return &h.s.Logger }
func (h *fakeEntityHost) Route(st *stanza.Routed)                  { h.s.route(st) }
func (h *fakeEntityHost) Bounce(st *stanza.Routed, e stanza.Error) { h.s.route(feature.Refusal(st, e)) }
func (h *fakeEntityHost) NextID(prefix string) string              { return h.s.nextID(prefix) }
func (h *fakeEntityHost) ToService(msg any) {
	h.s.queue = append(h.s.queue, serviceMsg{msg: msg})
}

var (
	_ feature.ServiceHost = (*fakeServiceHost)(nil)
	_ feature.EntityHost  = (*fakeEntityHost)(nil)
)
