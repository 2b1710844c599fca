// Package featuretest is a fake host for the unit tests of features: a Server, Session and User that record what
// a feature's parts do (stanzas to the client, routed, delivered; messages to the other parts) instead of
// running actors. Tests drive a part directly, then look at the records and hand the recorded messages on.
package featuretest

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// Server is a fake feature.Server over a real SQLite store in a temporary directory.
type Server struct {
	Cfg       config.Config
	DB        storage.Store
	StartedAt time.Time
	Ver       string
	Admins    map[jid.JID]bool
	// Features answer DiscoNode and feed DiscoInfo's vars.
	Features []*feature.Feature
	// ShutdownCalls records Shutdown(restart) calls; Created the accounts passed to AccountCreated.
	ShutdownCalls []bool
	Created       []jid.JID
	// LimitHits counts LimitHit calls by name.
	LimitHits map[string]int
	// Svcs is what Services lists.
	Svcs []feature.ServiceRef
	// counts records Count calls by name (locked: a service's HTTP side counts from its own goroutines).
	countMu sync.Mutex
	counts  map[string]float64
}

// Count records a feature counter's increment.
func (s *Server) Count(name string, delta float64) {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	if s.counts == nil {
		s.counts = map[string]float64{}
	}
	s.counts[name] += delta
}

// Counted is the sum of the Count calls for name.
func (s *Server) Counted(name string) float64 {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	return s.counts[name]
}

// NewServer opens a fresh SQLite store for t (closed at cleanup) with the default configuration.
func NewServer(t testing.TB, features ...*feature.Feature) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &Server{Cfg: cfg, DB: db, StartedAt: time.Now().Add(-time.Minute), Ver: "test", Admins: map[jid.JID]bool{}, Features: features,
		LimitHits: map[string]int{}}
}

// AddAccount creates an account (password "pw").
func (s *Server) AddAccount(t testing.TB, bare string) jid.JID {
	t.Helper()
	j := MustJID(bare)
	if err := s.DB.CreateAccount(context.Background(), j.String(), []storage.Credential{{Hash: "SHA-256", Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("k"), ServerKey: []byte("k")}}); err != nil {
		t.Fatal(err)
	}
	return j
}

func (s *Server) Config() *config.Config         { return &s.Cfg }
func (s *Server) Store() storage.Store           { return s.DB }
func (s *Server) Started() time.Time             { return s.StartedAt }
func (s *Server) Version() string                { return s.Ver }
func (s *Server) IsAdmin(bare jid.JID) bool      { return s.Admins[bare.Bare()] }
func (s *Server) LimitHit(name string)           { s.LimitHits[name]++ }
func (s *Server) CapsVer() string                { return "fakever=" }
func (s *Server) Services() []feature.ServiceRef { return s.Svcs }
func (s *Server) Shutdown(restart bool)          { s.ShutdownCalls = append(s.ShutdownCalls, restart) }
func (s *Server) AccountDiscoInfo() string {
	return "<query xmlns='" + stanza.NSDiscoInf + "'><identity category='account' type='registered'/></query>"
}
func (s *Server) DiscoInfo(node string) string {
	var vars []string
	for _, f := range s.Features {
		vars = append(vars, f.ServerVars...)
	}
	sort.Strings(vars)
	b := "<query xmlns='" + stanza.NSDiscoInf + "'"
	if node != "" {
		b += " node='" + string(xmlstream.AppendEscapedAttr(nil, node)) + "'"
	}
	b += "><identity category='server' type='im' name='xmppd'/>"
	for _, v := range vars {
		b += "<feature var='" + v + "'/>"
	}
	return b + "</query>"
}

func (s *Server) DiscoNode(requester, account jid.JID, node string, items bool) (string, bool) {
	for _, f := range s.Features {
		if f.DiscoNode != nil {
			if p, ok := f.DiscoNode(s, requester, account, node, items); ok {
				return p, true
			}
		}
	}
	return "", false
}

// Sent is something a part sent to another part (ToUser, ToSession, ToUserOf).
type Sent struct {
	To  jid.JID // the user (ToUserOf), the resource's full JID (ToSession), or the own bare JID (ToUser)
	Msg any
}

// Session is a fake feature.Session.
type Session struct {
	Srv      *Server
	FullJID  jid.JID
	Logger   zerolog.Logger
	Client   []*stanza.Routed // ToClient, Deliver, Result and Error, in order
	Routed   []*stanza.Routed
	Sent     []Sent
	Ended    []string // EndStream conditions
	Removed  bool     // AccountRemoved was called
	Lookups  []string // CapsLookup "hash ver node"
	Verified map[string][]string
	// SurveyAnswers / AskAnswers are what Survey and Ask report (set by the test).
	SurveyAnswers []any
	AskAnswers    map[jid.JID]any
}

// NewSession is a session of full on srv.
func NewSession(srv *Server, full string) *Session {
	return &Session{Srv: srv, FullJID: MustJID(full), Logger: zerolog.Nop(), Verified: map[string][]string{}, AskAnswers: map[jid.JID]any{}}
}

func (s *Session) Server() feature.Server      { return s.Srv }
func (s *Session) Full() jid.JID               { return s.FullJID }
func (s *Session) Log() *zerolog.Logger        { return &s.Logger }
func (s *Session) ToClient(st *stanza.Routed)  { s.Client = append(s.Client, st) }
func (s *Session) Deliver(st *stanza.Routed)   { s.Client = append(s.Client, st) }
func (s *Session) Route(st *stanza.Routed)     { s.Routed = append(s.Routed, st) }
func (s *Session) ToUser(msg any)              { s.Sent = append(s.Sent, Sent{To: s.FullJID.Bare(), Msg: msg}) }
func (s *Session) ToUserOf(b jid.JID, msg any) { s.Sent = append(s.Sent, Sent{To: b, Msg: msg}) }
func (s *Session) EndStream(cond, _ string)    { s.Ended = append(s.Ended, cond) }
func (s *Session) AccountRemoved()             { s.Removed = true }
func (s *Session) CapsLookup(hash, ver, node string) {
	s.Lookups = append(s.Lookups, hash+" "+ver+" "+node)
}
func (s *Session) CapsVerified(hash, ver string, features []string) {
	s.Verified[hash+" "+ver] = features
}
func (s *Session) Survey(_ any, _ time.Duration, done func([]any)) { done(s.SurveyAnswers) }
func (s *Session) Ask(bare jid.JID, _ any, _ time.Duration, done func(any, bool)) {
	a, ok := s.AskAnswers[bare]
	done(a, ok)
}

func (s *Session) Result(st *stanza.Routed, from, payload string) {
	raw := stanza.IQResult(stanza.Head{ID: st.Head.ID, From: s.FullJID.String()}, from, payload)
	s.Client = append(s.Client, stanza.New(stanza.Head{Name: "iq", Type: "result", ID: st.Head.ID, From: from, To: s.FullJID.String()}, st.To, s.FullJID, raw))
}

func (s *Session) Error(st *stanza.Routed, from string, e stanza.Error) {
	if st.Head.Type == "error" {
		return
	}
	h := st.Head
	h.From = s.FullJID.String()
	raw := stanza.ErrorReply(h, from, e)
	s.Client = append(s.Client, stanza.New(stanza.Head{Name: h.Name, Type: "error", ID: h.ID, From: from, To: h.From}, st.To, s.FullJID, raw))
}

// User is a fake feature.User.
type User struct {
	Srv       *Server
	BareJID   jid.JID
	Logger    zerolog.Logger
	Exist     bool
	Res       []feature.Resource
	Subs      map[jid.JID]string // roster subscriptions
	Filter    func(jid.JID) bool // the presence filter (nil: allow)
	Seen      time.Time
	SeenPres  string
	Delivered map[jid.JID][]*stanza.Routed // by full JID of the resource
	Routed    []*stanza.Routed
	Bounced   []*stanza.Routed // the stanzas bounced
	BouncedAs []stanza.Error
	Sent      []Sent
	EndedRes  map[jid.JID]string
	// FilterChanges counts PresenceFilterChanged calls; Removed is set by AccountRemoved.
	FilterChanges int
	Removed       bool
	ids           int
	// Watched records WatchCaps calls ("hash ver"); Items answers AccountItems.
	Watched []string
	Items   func(requester jid.JID) string
	// Announced records Announce calls, in order.
	Announced []any
	// CommitsAsked counts CommitSoon calls (the test calls the part's Commit itself).
	CommitsAsked int
}

// NewUser is the user actor host of bare (an existing account when exists).
func NewUser(srv *Server, bare string, exists bool) *User {
	return &User{Srv: srv, BareJID: MustJID(bare), Logger: zerolog.Nop(), Exist: exists, Subs: map[jid.JID]string{},
		Delivered: map[jid.JID][]*stanza.Routed{}, EndedRes: map[jid.JID]string{}}
}

// Online adds an available resource with priority prio.
func (u *User) Online(resource string, prio int) feature.Resource {
	full, _ := jid.New(u.BareJID.Local(), u.BareJID.Domain(), resource)
	r := feature.Resource{Full: full, Available: true, Priority: prio,
		Presence: stanza.New(stanza.Head{Name: "presence", From: full.String()}, full, jid.JID{}, "<presence from='"+full.String()+"'/>")}
	u.Res = append(u.Res, r)
	return r
}

func (u *User) Server() feature.Server        { return u.Srv }
func (u *User) Bare() jid.JID                 { return u.BareJID }
func (u *User) Log() *zerolog.Logger          { return &u.Logger }
func (u *User) Exists() bool                  { return u.Exist }
func (u *User) Resources() []feature.Resource { return u.Res }
func (u *User) Subscription(c jid.JID) string { return u.Subs[c.Bare()] }
func (u *User) Roster() []storage.RosterItem {
	var out []storage.RosterItem
	for c, s := range u.Subs {
		out = append(out, storage.RosterItem{JID: c.String(), Subscription: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out
}
func (u *User) LastSeen() (time.Time, string) { return u.Seen, u.SeenPres }
func (u *User) Route(st *stanza.Routed)       { u.Routed = append(u.Routed, st) }
func (u *User) ToUserOf(b jid.JID, msg any)   { u.Sent = append(u.Sent, Sent{To: b, Msg: msg}) }
func (u *User) PresenceFilterChanged()        { u.FilterChanges++ }
func (u *User) WatchCaps(hash, ver string)    { u.Watched = append(u.Watched, hash+" "+ver) }
func (u *User) Announce(ev any)               { u.Announced = append(u.Announced, ev) }
func (u *User) CommitSoon()                   { u.CommitsAsked++ }
func (u *User) AccountItems(r jid.JID) string {
	if u.Items == nil {
		return ""
	}
	return u.Items(r)
}
func (u *User) ToSession(r feature.Resource, msg any) {
	u.Sent = append(u.Sent, Sent{To: r.Full, Msg: msg})
}
func (u *User) Deliver(r feature.Resource, st *stanza.Routed) {
	u.Delivered[r.Full] = append(u.Delivered[r.Full], st)
}
func (u *User) EndSession(r feature.Resource, cond, _ string) { u.EndedRes[r.Full] = cond }
func (u *User) NextID(prefix string) string {
	u.ids++
	return prefix + strconv.Itoa(u.ids)
}

func (u *User) MaySeePresence(c jid.JID) bool {
	s := u.Subs[c.Bare()]
	return (s == "from" || s == "both") && (u.Filter == nil || u.Filter(c))
}

func (u *User) ContactsSeeingPresence() []jid.JID {
	var out []jid.JID
	for c := range u.Subs {
		if u.MaySeePresence(c) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (u *User) Bounce(st *stanza.Routed, e stanza.Error) {
	u.Bounced = append(u.Bounced, st)
	u.BouncedAs = append(u.BouncedAs, e)
}

// MustJID parses a JID or panics (test input).
func MustJID(s string) jid.JID {
	j, err := jid.Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// Stanza parses a stanza the way a session would route it (from stamped by the caller).
func Stanza(t testing.TB, raw string) *stanza.Routed {
	t.Helper()
	st, err := stanza.Parse(raw)
	if err != nil {
		t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	return st
}

// IQ is the request of raw (an iq with one payload) from the session s.
func IQ(t testing.TB, s *Session, part any, raw string) *feature.IQ {
	t.Helper()
	st := Stanza(t, raw)
	n, _ := st.Node()
	kids := n.Elements()
	if len(kids) != 1 {
		t.Fatalf("test iq needs one payload: %q", raw)
	}
	from := ""
	if !st.To.IsZero() {
		from = st.To.String()
	}
	return &feature.IQ{Session: s, Part: part, St: st, Payload: kids[0], From: from}
}

// AccountIQ is the request of raw to the user u; owner when it comes from one of u's own resources r.
func AccountIQ(t testing.TB, u *User, part any, raw string, owner bool, r feature.Resource) *feature.AccountIQ {
	t.Helper()
	st := Stanza(t, raw)
	n, _ := st.Node()
	kids := n.Elements()
	if len(kids) != 1 {
		t.Fatalf("test iq needs one payload: %q", raw)
	}
	return &feature.AccountIQ{User: u, Part: part, St: st, Payload: kids[0], Owner: owner, Resource: r, ExplicitTo: !st.To.IsZero()}
}

// Node parses the raw bytes of a recorded stanza (fails the test if it does not parse).
func Node(t testing.TB, st *stanza.Routed) *xmlstream.Node {
	t.Helper()
	n, err := st.Node()
	if err != nil {
		t.Fatalf("recorded stanza does not parse: %q: %v", st.Raw, err)
	}
	return n
}

// ErrorCondition is the defined condition of an error stanza ("" if none).
func ErrorCondition(t testing.TB, st *stanza.Routed) string {
	t.Helper()
	e := Node(t, st).Child(stanza.NSClient, "error")
	if e == nil {
		return ""
	}
	for _, k := range e.Elements() {
		if k.Name.Space == stanza.NSStanzas && k.Name.Local != "text" {
			return k.Name.Local
		}
	}
	return ""
}

var (
	_ feature.Server  = (*Server)(nil)
	_ feature.Session = (*Session)(nil)
	_ feature.User    = (*User)(nil)
)

// AccountCreated records account and runs the hooks of s.Features.
func (s *Server) AccountCreated(account jid.JID) {
	s.Created = append(s.Created, account)
	for _, f := range s.Features {
		if f.AccountCreated != nil {
			f.AccountCreated(s, account)
		}
	}
}

// AccountRemoved records the call.
func (u *User) AccountRemoved() { u.Removed = true }
