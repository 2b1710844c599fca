package feature

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Services: a feature may run a service at a domain of its own (XEP-0060 pubsub.<domain>, XEP-0045
// conference.<domain>). The host runs one service actor per enabled service domain, with the feature's service
// part in it, under the server-wide "services" actor; the part may have entity actors of its own below it
// (pubsub nodes, MUC rooms), each with the feature's entity part, spawned on demand by key and stopped when
// quiet. Everything addressed to the service's domain or to any JID at it (node@domain/resource included) reaches
// the service part, in the order each sender sent it; what the parts send goes through the router like any
// other routed stanza, so users get it under the RFC 6121 §8.5 delivery rules.
//
// As for the other parts: the service part lives in the service actor and each entity part in its entity
// actor, only that actor's goroutine calls into it (no locking), they may use storage (the service's data
// belongs to them) and must not block otherwise. A panicking part stops its actor, never the server: the next
// message for it spawns a fresh one, which loads its state from storage again.

// ServiceSpec declares a feature's service.
type ServiceSpec struct {
	// Host is the service's domain from the configuration; "" leaves the service off.
	Host func(cfg *config.Config) string
	// Name is the service's name in the server's disco#items (XEP-0030 §4.2 <item name/>).
	Name string
	// Identities and Vars are the service JID's disco#info (XEP-0030 §3.1): the host answers disco#info without
	// a node at the service's domain JID itself, with these. Everything else goes to the part.
	Identities []string
	Vars       []string
	// ExtendedInfo is an XEP-0128 data form appended to that disco#info (XEP-0363 §2: max-file-size).
	ExtendedInfo func(cfg *config.Config) string
	// New makes the part of the service actor. It may implement ServiceStanza (what is addressed to the service),
	// Handler (its entities' messages, ServiceHost.ToEntity's counterpart EntityHost.ToService, and the feature's
	// other parts' Session.ToUserOf / User.ToUserOf to the service's domain JID) and Answerer (Session.Ask of the
	// service's domain JID).
	New func(h ServiceHost) any
	// EntityKind names the entity actors in /debug/actors ("pubsub-node", "room"); NewEntity makes the part of
	// the entity key, spawned by the first ServiceHost.ToEntity(key, …). It may implement Handler, EntityIdle and EntityDescriber.
	EntityKind string
	NewEntity  func(h EntityHost, key string) any

	// Outside starts what the service runs outside the actor tree (a SOCKS5 relay's listener, a timer), once at
	// start after the service actor is spawned; stop is called at shutdown before the services drain. It is the
	// one place a feature may do network I/O and run goroutines of its own, and those goroutines reach the
	// service part only by messages, through mb (Mailbox): they share no mutable state with it. An error stops
	// the server's start.
	Outside func(srv Server, mb Mailbox, log zerolog.Logger) (stop func(), err error)
	// HTTP is the service's side on the public HTTP listener: a handler for the paths under HTTPPath (which
	// ends in "/"), made once at start with the service's Mailbox. The server's listener mounts it as
	// mux.Handle(HTTPPath, handler) (Server.ServiceHandlers).
	HTTPPath string
	HTTP     func(srv Server, mb Mailbox) http.Handler

	// InCluster, when set, says whether the service can run in a cluster as configured ([cluster] enabled): an
	// error (what is missing) leaves the service off on that node, logged at start, rather than running it where
	// it would misbehave (the upload's files on each node's own disk).
	InCluster func(cfg *config.Config) error
}

// Mailbox is how code outside the actor tree (an HTTP handler's goroutines, a relay's connection goroutines)
// reaches a service part: by messages, safe from any goroutine. A message sent to a service actor that is
// being respawned after a failure reaches the fresh one; after shutdown it is dropped.
//
// In a cluster the service part runs on one node, its domain's home, and every node runs the Outside: a
// message goes to the home. On another node it crosses when its type is in the feature's Wire (the upload's
// questions); one that is not (what holds a net.Conn or a Mailbox, the notices of this node's own listener
// and timers) is not for the home: a question gets no answer at once (ok false), a Tell is dropped.
type Mailbox interface {
	// Tell hands msg to the service part's Handler.
	Tell(msg any)
	// Ask hands q to the service part's Answerer and waits for its answer; ok false when none came within
	// timeout (or the part is no Answerer).
	Ask(q any, timeout time.Duration) (answer any, ok bool)
}

// ServiceRef is an enabled service as the server lists it (Server.Services, the domain's disco#items).
type ServiceRef struct {
	JID  jid.JID
	Name string
}

// ServiceStanza is the service part's hook: st is addressed to the service's domain or a JID at it. Disco#info
// without a node to the domain JID is answered by the host (ServiceSpec.Identities and Vars) and not seen here.
type ServiceStanza interface{ Stanza(st *stanza.Routed) }

// ServiceStopped is the service part's hook when its actor stops (shutdown, a failure, or in a cluster its
// domain placed on another node): it releases what only it holds and nobody else would close (the proxy's
// connections waiting for activation). It runs on the service actor's goroutine.
type ServiceStopped interface{ Stopped() }

// EntityIdle is asked when an entity actor has had nothing to do for a while: true lets the host stop it (it
// is spawned again, from storage, by the next message); false keeps it (a MUC room with occupants).
type EntityIdle interface{ Idle() bool }

// EntityDescriber adds what an entity part says of itself to its actor's attributes in /debug/actors (a MUC
// room's occupant count). It runs on the entity actor's goroutine.
type EntityDescriber interface{ Describe() map[string]string }

// ServiceHost is what the service part sees: the service actor.
type ServiceHost interface {
	Server() Server
	// JID is the service's domain JID.
	JID() jid.JID
	Log() *zerolog.Logger
	// Route sends a stanza from the service through the router (to users, or back to a service).
	Route(st *stanza.Routed)
	// Bounce answers st with a stanza error from its 'to' (never to an error or a result).
	Bounce(st *stanza.Routed, e stanza.Error)
	// ToEntity hands msg to the entity part key (its Handler), spawning the entity actor if needed. Messages to
	// one entity arrive in the order they were sent; an entity never stops with a message in flight to it.
	ToEntity(key string, msg any)
	// Entities is the number of entity actors alive now.
	Entities() int
	// NextID is a fresh stanza id (prefix + a counter of the service actor).
	NextID(prefix string) string
}

// EntityHost is what an entity part sees: one entity actor under the service actor.
type EntityHost interface {
	Server() Server
	// Service is the service's domain JID; Key the entity's key.
	Service() jid.JID
	Key() string
	Log() *zerolog.Logger
	// Route sends a stanza from the entity through the router.
	Route(st *stanza.Routed)
	// Bounce answers st with a stanza error from its 'to' (never to an error or a result).
	Bounce(st *stanza.Routed, e stanza.Error)
	// ToService hands msg to the service part (its Handler).
	ToService(msg any)
	// NextID is a fresh stanza id (prefix + a counter of the entity actor).
	NextID(prefix string) string
}

// Answered is a helper of service and entity parts: the IQ result or error answering st, from st's 'to'.
func Answered(st *stanza.Routed, payload string) *stanza.Routed {
	return st.Result(st.To.String(), payload)
}

// Refusal is the stanza error answering st from its 'to', nil for an error or a result (RFC 6120 §8.3.1: never
// answered with an error).
func Refusal(st *stanza.Routed, e stanza.Error) *stanza.Routed {
	if st.Head.Type == "error" || st.Head.Type == "result" || st.From.IsZero() {
		return nil
	}
	return st.Bounce(e)
}

// ServiceQuery is the payload of an IQ get or set a service part got, or nil when there is nothing more to do:
// a message has been bounced with <service-unavailable/> (there is no one to read it), presence and IQ results
// and errors are ignored, and an IQ without exactly one payload has got <bad-request/> (RFC 6120 §8.2.3).
func ServiceQuery(bounce func(*stanza.Routed, stanza.Error), st *stanza.Routed) *xmlstream.Node {
	if st.Head.Name != "iq" {
		if st.Head.Name == "message" {
			bounce(st, stanza.NewError(stanza.ServiceUnavailable))
		}
		return nil
	}
	if st.Head.Type != "get" && st.Head.Type != "set" {
		return nil
	}
	n, err := st.Node()
	if err != nil {
		return nil
	}
	kids := n.Elements()
	if len(kids) != 1 {
		bounce(st, stanza.NewError(stanza.BadRequest))
		return nil
	}
	return kids[0]
}
