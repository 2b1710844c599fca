// Package feature is the contract between the actor tree (package actors) and the features (packages under
// features/). A feature is one XEP, or a few tightly tied namespaces: a *Feature value that declares what it
// advertises and answers, and that gives each session and each user actor a part of its own.
//
// What a feature may touch:
//   - its own parts: the value NewSession returns lives in one session actor, the value NewUser returns in one
//     user actor; only that actor's goroutine ever calls into it, so a part needs no locking;
//   - the host interfaces its parts are given (Session, User) and the read-only Server;
//   - storage through Store(), for data that belongs to its own feature (a KV namespace of its own);
//   - protocol/, config/, accounts/, storage/.
//
// What it may not: import package actors (the compiler enforces it: actors imports the features), keep global
// mutable state, block (no network, no sleeping; storage calls are the only slow thing allowed, and only in
// parts, which run in per-user or per-session actors), hand a part's mutable state to another actor (messages
// are immutable values), or call another feature: features that cooperate do so through a hook point of the
// host (disco node providers, the presence filter, the delivery hooks, the events one user actor's parts
// announce to each other: events.go).
//
// Parts talk to each other with their own message types: Session.ToUser sends a message to the same feature's
// part in the user actor, User.ToSession the other way, Session.ToUserOf / User.ToUserOf to the same feature's
// part in another user's actor; the host delivers them to the part's Handle method.
package feature

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Feature is one pluggable unit. Every field but Name is optional.
type Feature struct {
	// Name is what [features] disable lists to turn the feature off.
	Name string
	// Enabled adds a configuration condition of the feature's own (registration.allow for XEP-0077).
	Enabled func(cfg *config.Config) bool
	// ServerVars / AccountVars are the XEP-0030 disco#info <feature var/> values of the server and of accounts.
	// A disabled feature is neither advertised nor served.
	ServerVars, AccountVars []string
	// AccountIdentities are XEP-0030 <identity/> elements of accounts' disco#info beside account/registered
	// (XEP-0163 §4: <identity category='pubsub' type='pep'/>).
	AccountIdentities []string
	// StreamFeature is a child of <stream:features> offered after authentication (XEP-0352 <csi/>).
	StreamFeature func(srv Server) string
	// ExtendedInfo is an XEP-0128 data form appended to the server's disco#info (XEP-0157 contacts).
	ExtendedInfo func(cfg *config.Config) string
	// DiscoNode answers disco#info (items false) or disco#items (items true) for a node the feature owns, asked
	// by requester of the server (account is zero) or of the account whose bare JID was asked. ok false: not
	// the feature's node.
	DiscoNode func(srv Server, requester, account jid.JID, node string, items bool) (payload string, ok bool)
	// IQs are the IQ payloads the feature answers.
	IQs []IQRoute
	// Nonzas are top-level elements other than stanzas the feature accepts from a bound client (XEP-0352
	// <active/>); they go to the session part's Nonza method (a part of type NonzaHandler).
	Nonzas []xmlstream.Name
	// Bind2 is what a client may enable for its new session inline in XEP-0386 resource binding, nil for
	// nothing.
	Bind2 *Bind2Spec
	// Service is a service of the feature at a domain of its own (service.go), nil for none.
	Service *ServiceSpec
	// Wire are the feature's message types that may cross between cluster nodes (wire.go): what its parts send
	// with Session.ToUserOf, Ask and Survey, and what its Answerer answers. Without them such a message reaches
	// only accounts placed on the sender's node.
	Wire []WireType

	// Limits are the labels of xmppd_limit_hits_total the feature counts with Server.LimitHit (pre-created so a
	// scrape shows 0 for a limit that never triggered).
	Limits []string
	// Counters are counters of the feature's own in /metrics (xmppd_<Name>, e.g. upload bytes stored), which it
	// adds to with Server.Count; pre-created at start.
	Counters []Counter

	// AccountCreated runs in the actor that created an account (in-band registration, an admin command), after
	// it is stored (XEP-0133 welcome message).
	AccountCreated func(srv Server, account jid.JID)

	// NewSession makes the feature's part of one session (nil: none). It may implement Rewriter, Outbound,
	// Inbound, NonzaHandler, Handler, Resumable.
	NewSession func(s Session) any
	// NewUser makes the feature's part of one user actor, for an existing account, after the roster is loaded
	// (nil: none). It may implement UserInbound, Accepting, Delivered, Bound, Dropped, PresenceFilter, Handler,
	// Answerer, PresenceChanged, ItemsProvider, Listener, Hibernated, Committer.
	NewUser func(u User) any
}

// IQRoute answers one IQ payload (the namespace and local name of the single child, RFC 6120 §8.2.3). Where the
// handler runs depends on the address:
//   - to the server's domain: Server, in the requester's session;
//   - without 'to', or to the requester's own bare JID: Session if set (per-session state), else Account in the
//     user's actor with Owner set, else Server (no 'to' only);
//   - to another user's bare JID: Account in that user's actor, Owner false (RFC 6121 §8.5.2.1.3: the server
//     answers on the user's behalf).
//
// Anything without a handler is service-unavailable (RFC 6120 §8.4).
type IQRoute struct {
	Name    xmlstream.Name
	Server  func(q *IQ)
	Session func(q *IQ)
	Account func(q *AccountIQ)
	// Anyone: Account also runs for a bare JID with no account behind it (User.Exists false), so that the answer
	// does not reveal whether the account exists (XEP-0030 §8 disco#items: an empty result either way).
	Anyone bool
}

// IQ is an IQ get/set being answered in the requester's session.
type IQ struct {
	Session Session
	// Part is the feature's session part (nil without NewSession).
	Part    any
	St      *stanza.Routed
	Payload *xmlstream.Node
	// From is what the answer carries as 'from': the original 'to', or "" when there was none.
	From string
}

// IsGet reports type='get'.
func (q *IQ) IsGet() bool { return q.St.Head.Type == "get" }

// Result answers with payload (already serialised; "" for an empty result).
func (q *IQ) Result(payload string) { q.Session.Result(q.St, q.From, payload) }

// Fail answers with a stanza error.
func (q *IQ) Fail(e stanza.Error) { q.Session.Error(q.St, q.From, e) }

// AccountIQ is an IQ get/set to a user's bare JID being answered in that user's actor.
type AccountIQ struct {
	User User
	// Part is the feature's user part (nil without NewUser, or when the account does not exist).
	Part    any
	St      *stanza.Routed
	Payload *xmlstream.Node
	// Owner: sent by the user, from one of the user's own sessions (Resource is that session).
	Owner    bool
	Resource Resource
	// ExplicitTo: the request named the bare JID (the answer carries it as 'from'); false for no 'to'.
	ExplicitTo bool
}

// IsGet reports type='get'.
func (a *AccountIQ) IsGet() bool { return a.St.Head.Type == "get" }

func (a *AccountIQ) fromAttr() string {
	if a.Owner && !a.ExplicitTo {
		return ""
	}
	return a.User.Bare().String()
}

func (a *AccountIQ) send(raw, typ string) {
	st := stanza.New(stanza.Head{Name: "iq", Type: typ, ID: a.St.Head.ID, From: a.fromAttr(), To: a.St.Head.From}, a.User.Bare(), a.St.From, raw)
	if a.Owner {
		a.User.Deliver(a.Resource, st)
		return
	}
	a.User.Route(st)
}

// Result answers with payload.
func (a *AccountIQ) Result(payload string) {
	a.send(stanza.IQResult(a.St.Head, a.fromAttr(), payload), "result")
}

// Fail answers with a stanza error (never to an error or a result, RFC 6120 §8.3.1).
func (a *AccountIQ) Fail(e stanza.Error) {
	if a.St.Head.Type == "error" || a.St.Head.Type == "result" {
		return
	}
	a.send(stanza.ErrorReply(a.St.Head, a.fromAttr(), e), "error")
}

// Subscriber: the requester may see the user's presence (RFC 6121 §2.1.2.1: a 'from' or 'both' subscription,
// and not blocked) or is the user.
func (a *AccountIQ) Subscriber() bool {
	return a.Owner || a.St.From.Bare() == a.User.Bare() || a.User.MaySeePresence(a.St.From)
}

// Server is what every feature may read of the whole server. It is immutable.
type Server interface {
	Config() *config.Config
	Store() storage.Store
	// Started is when the server started (XEP-0012 server uptime).
	Started() time.Time
	// Version is the software version (XEP-0092).
	Version() string
	// IsAdmin: bare is listed in the admins key (XEP-0133).
	IsAdmin(bare jid.JID) bool
	// DiscoInfo is the server's disco#info <query/> for node ("" or our own caps node#ver), built from every
	// enabled feature; also the input of the server's XEP-0115 hash.
	DiscoInfo(node string) string
	// AccountDiscoInfo is the disco#info of a bare account JID (XEP-0030 §3.1).
	AccountDiscoInfo() string
	// DiscoNode asks every enabled feature's DiscoNode (see Feature.DiscoNode).
	DiscoNode(requester, account jid.JID, node string, items bool) (string, bool)
	// CapsVer is the XEP-0115 verification string of DiscoInfo("").
	CapsVer() string
	// Shutdown asks the process to end every stream with <system-shutdown/> and exit (XEP-0133 shut down), or
	// to do so and start again (restart). It only posts the request, and is safe from any goroutine.
	Shutdown(restart bool)
	// AccountCreated runs every feature's AccountCreated hook: a feature that created an account (an admin
	// command) calls it, as the actors do after in-band registration.
	AccountCreated(account jid.JID)
	// LimitHit counts one trigger of a configured limit in xmppd_limit_hits_total; name is the limit's label,
	// one of the feature's Limits.
	LimitHit(name string)
	// Services are the enabled features' services (service.go), in registry order, then the configured XEP-0114
	// components (the server's disco#items lists them all).
	Services() []ServiceRef
	// Count adds delta to the feature's counter name (one of its Counters; xmppd_<name> in /metrics). Safe from
	// any goroutine (the counters are atomic), so a service's HTTP handler or relay counts too.
	Count(name string, delta float64)
}

// Counter is a counter a feature declares (Feature.Counters).
type Counter struct {
	// Name is the metric's name without the xmppd_ prefix, ending in _total ("upload_bytes_stored_total").
	Name, Help string
}

// Session is the host a session part sees: one bound resource (RFC 6120 §7).
type Session interface {
	Server() Server
	Full() jid.JID
	Log() *zerolog.Logger
	// ToClient writes a stanza to the own client now (past every Inbound hook).
	ToClient(st *stanza.Routed)
	// Deliver writes a stanza to the own client through the Inbound hooks of the features after this one (CSI
	// may hold it back).
	Deliver(st *stanza.Routed)
	// Result answers the client's IQ st with a result from 'from' ("" for none) carrying payload ("" for none).
	Result(st *stanza.Routed, from, payload string)
	// Error answers the client's st with a stanza error from 'from' (never to an error, RFC 6120 §8.3.1).
	Error(st *stanza.Routed, from string, e stanza.Error)
	// Route hands a stanza from this session to another entity of the server (through the router).
	Route(st *stanza.Routed)
	// ToUser sends msg to this feature's part in the own user actor.
	ToUser(msg any)
	// ToUserOf sends msg to this feature's part in the actor of another user (spawned if needed).
	ToUserOf(bare jid.JID, msg any)
	// Survey asks this feature's part in every user actor (an Answerer) and calls done, on the session's
	// goroutine, with the answers that came within timeout.
	Survey(q any, timeout time.Duration, done func(answers []any))
	// Ask asks this feature's part in the actor of bare (an Answerer) and calls done, on the session's goroutine,
	// with its answer, or ok false when none came within timeout.
	Ask(bare jid.JID, q any, timeout time.Duration, done func(answer any, ok bool))
	// EndStream ends the own stream with a stream error condition.
	EndStream(condition, text string)
	// AccountRemoved tells the own user actor that the account is gone: it cancels the subscriptions and ends
	// every session of the user.
	AccountRemoved()
	// CapsLookup asks the server-wide XEP-0115 cache about hash+ver; if it does not know them, the session part
	// gets a CapsUnknown message (Handler). CapsVerified stores a verified entry.
	CapsLookup(hash, ver, node string)
	CapsVerified(hash, ver string, features []string)
}

// Resource is what a user actor knows of one of the user's sessions, as a snapshot value.
type Resource struct {
	Full      jid.JID
	Available bool
	Priority  int
	// Presence is the last broadcast presence (no 'to'), nil while unavailable.
	Presence *stanza.Routed
	// Addr is the client's network address (host:port).
	Addr string
	// Hibernating: the session lost its connection and waits to be resumed (XEP-0198); what is delivered to it
	// waits in its queue, and the client does not see it until it comes back (XEP-0357 push wakes it).
	Hibernating bool
}

// User is the host a user part sees: the actor of one bare JID.
type User interface {
	Server() Server
	Bare() jid.JID
	Log() *zerolog.Logger
	// Exists: there is an account behind the bare JID.
	Exists() bool
	// Resources are the user's sessions now.
	Resources() []Resource
	// Roster is a copy of the user's roster.
	Roster() []storage.RosterItem
	// Subscription is the roster state of contact (RFC 6121: none/to/from/both; "" when not in the roster).
	Subscription(contact jid.JID) string
	// MaySeePresence: contact is allowed to see the user's presence (a 'from' or 'both' subscription, and no
	// feature's PresenceFilter forbids it).
	MaySeePresence(contact jid.JID) bool
	// ContactsSeeingPresence are the contacts for which MaySeePresence holds.
	ContactsSeeingPresence() []jid.JID
	// LastSeen is when the last resource went offline, with its unavailable presence (zero/"" if never).
	LastSeen() (time.Time, string)
	// Deliver writes a stanza to one of the user's sessions.
	Deliver(r Resource, st *stanza.Routed)
	// Route sends a stanza from this user to another entity of the server (through the router).
	Route(st *stanza.Routed)
	// Bounce answers st with a stanza error from its 'to' (never to an error).
	Bounce(st *stanza.Routed, e stanza.Error)
	// ToSession sends msg to this feature's part in one of the user's sessions.
	ToSession(r Resource, msg any)
	// ToUserOf sends msg to this feature's part in the actor of another user.
	ToUserOf(bare jid.JID, msg any)
	// AccountRemoved does what the user actor does when an account is removed: cancel the subscriptions both ways
	// (pending requests included) and end every session with <not-authorized/> (XEP-0077 §3.2).
	AccountRemoved()
	// EndSession ends the stream of one of the user's sessions with a stream error condition.
	EndSession(r Resource, condition, text string)
	// PresenceFilterChanged: the feature's PresenceFilter answers differently now; the user actor recomputes
	// who gets the user's broadcast presence.
	PresenceFilterChanged()
	// NextID is a fresh stanza id for a push ("push" + a counter of the user actor).
	NextID(prefix string) string
	// WatchCaps asks the server-wide XEP-0115 cache for the features of hash+ver: the part gets a CapsKnown
	// message (Handler) once they are known — now, or when a session verifies them; never if nobody does.
	WatchCaps(hash, ver string)
	// AccountItems gathers the disco#items <item/> elements every feature's ItemsProvider lists for requester
	// (XEP-0030 §4, XEP-0163: the account's PEP nodes).
	AccountItems(requester jid.JID) string
	// CommitSoon asks for a commit point: the part (a Committer) batches writes and wants Commit called before
	// the user actor handles anything that must not overtake them (see Committer). Call it for the first write of
	// a batch; more calls before the commit are harmless.
	CommitSoon()
	// Announce tells the other features' parts of this user actor that implement Listener about ev (one of the
	// events of events.go). They hear it once the hook or handler that announced it has returned, on the same
	// goroutine, in the order of announcement; a part never hears its own announcements.
	Announce(ev any)
}

// Hooks a session part may implement.
type (
	// Outbound runs for every stanza the client sends, after 'from' is stamped and 'to' parsed, before the
	// session routes or answers it. false: consumed (later hooks and the normal path do not see it).
	Outbound interface{ Outbound(st *stanza.Routed) bool }
	// Inbound runs for every stanza about to be written to the client. false: consumed (held back or dropped).
	Inbound interface{ Inbound(st *stanza.Routed) bool }
	// Rewriter runs first for every stanza the client sends (before the Outbound hooks) and returns the stanza to
	// go on with: st itself, or a changed copy (XEP-0398 §5: the avatar hash in the user's presence).
	Rewriter interface {
		Rewrite(st *stanza.Routed) *stanza.Routed
	}
	// NonzaHandler receives the feature's Nonzas.
	NonzaHandler interface{ Nonza(el *xmlstream.Element) }
	// Bind2Enabler takes the children of a XEP-0386 <bind/> named in the feature's Bind2Spec, once, when the
	// session starts and before it handles anything else; it returns what goes into <bound/> ("" nothing).
	Bind2Enabler interface {
		Bind2(n *xmlstream.Node) string
	}
	// Resumable is the stream management point (XEP-0198): the session got a new connection (resumed true)
	// or lost its connection while resumption stays possible (resumed false).
	Resumable interface{ ConnectionChanged(resumed bool) }
)

// Bind2Spec is a feature's part in XEP-0386 Bind 2: Var is listed in the bind feature's <inline/> (§2.1, the
// feature's disco#info var), Elements are the children of a client's <bind/> (§2.2) handed to the session part,
// a Bind2Enabler.
type Bind2Spec struct {
	Var      string
	Elements []xmlstream.Name
}

// Hooks a user part may implement.
type (
	// UserInbound runs for every stanza routed to the user before RFC 6121 §8.5 delivery. false: consumed.
	UserInbound interface{ Inbound(st *stanza.Routed) bool }
	// Accepting runs for a message the user actor is about to deliver by RFC 6121 §8.5 (to one of the user's
	// sessions or to the offline queue), after the UserInbound hooks, and returns the message to deliver: st, or a
	// changed copy (XEP-0359: the archive's <stanza-id/>), never nil. again: the message comes back undelivered (a
	// session ended before its client had it, actors/undelivered.go) and was accepted once already. The archive
	// point (XEP-0313): what is archived here is what the user's clients get.
	Accepting interface {
		Accepting(st *stanza.Routed, again bool) *stanza.Routed
	}
	// Delivered runs after a message was handed to sessions (to) or stored offline (to empty): the carbons
	// point (XEP-0280). to is valid during the call only (it is reused).
	Delivered interface {
		Delivered(st *stanza.Routed, to []Resource)
	}
	// Bound runs when a session was bound, before its client can send anything.
	Bound interface{ Bound(r Resource) }
	// Bind2Bound adds to the <bound/> of a XEP-0386 Bind 2 request (§2.2: the account's state "at the precise
	// time of resource binding", the XEP-0313 archive metadata): called by the user actor when it binds the
	// session, after its pending writes are committed; the elements it returns go into <bound/>.
	Bind2Bound interface{ Bind2Bound() string }
	// ArchiveHolder says which of the user's offline messages (their stanzas, oldest first) are in the user's
	// archive: held[i] for offline[i]. A XEP-0386 Bind 2 bind clears those from the offline queue without sending
	// them, "as they will be provided by MAM" (§2.2), and only those: a message the archive does not hold (the
	// preferences, <no-store/>, a message without a body) is still delivered. Called by the user actor when it
	// binds a Bind 2 session, after its pending writes are committed, before the Bind2Bound hooks.
	ArchiveHolder interface {
		InArchive(offline []string) (held []bool)
	}
	// Dropped runs when a session is gone.
	Dropped interface{ Dropped(r Resource) }
	// Hibernated runs when a session lost its connection and waits to be resumed (XEP-0198), with the messages
	// its client had not acknowledged (valid during the call only): the XEP-0357 push point.
	Hibernated interface {
		Hibernated(r Resource, unacked []*stanza.Routed)
	}
	// PresenceChanged runs when a resource sent broadcast presence (initial: it just became available): the
	// PEP notification point (XEP-0163 sends the last items on initial presence).
	PresenceChanged interface {
		PresenceChanged(r Resource, initial bool)
	}
	// PresenceFilter: false forbids contact to see the user's presence (XEP-0191 blocking).
	PresenceFilter interface{ AllowPresence(contact jid.JID) bool }
	// Answerer answers a Session.Survey.
	Answerer interface{ Answer(q any) any }
	// ItemsProvider lists disco#items <item/> elements of the account for requester (User.AccountItems).
	ItemsProvider interface {
		AccountItems(requester jid.JID) string
	}
	// Listener hears what other features of the user actor announce (User.Announce).
	Listener interface{ Heard(ev any) }
	// Committer is a part that batches its writes (the XEP-0313 archive): one transaction, one fsync, for all the
	// messages a burst brings. The user actor calls Commit at its group-commit points (actors/user_offline.go):
	// after the messages already in its mailbox when the part asked (User.CommitSoon), before it handles anything
	// but a message routed to the user or a Batched feature message (an IQ, presence, a stop), and when it stops.
	Committer interface{ Commit() }
	// Batched marks a feature message (Session.ToUser) that only adds to a part's batch, so the user actor may
	// handle it before committing what is pending (the archive's copy of a message the user sent).
	Batched interface{ Batched() }
)

// Handler receives the feature's own messages (session and user parts alike).
type Handler interface{ Handle(msg any) }

// CapsUnknown is what a session part gets after CapsLookup when the cache does not know hash+ver.
type CapsUnknown struct{ Hash, Ver, Node string }

// CapsKnown is what a user part gets after WatchCaps: the verified features of hash+ver.
type CapsKnown struct {
	Hash, Ver string
	Features  []string
}
