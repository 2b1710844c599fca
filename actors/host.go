package actors

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The actors' side of the feature contract (package feature): the registry as the server runs it, and the
// read-only Server every feature sees. The session and user hosts are in session_host.go and user_host.go.
// The actors never name a feature: they run whatever list cmd/xmppd hands to Start (features/registry.go).

// baseVars are the disco#info features of what the actors do themselves: RFC 6121 §2.6 roster versioning and
// §3.4 subscription pre-approval (user_roster.go).
var baseVars = []string{stanza.NSRosterV, stanza.NSPreApp}

// registry is the enabled features in registry order, with the lookups the stanza path needs precomputed once
// at start. Immutable after newRegistry.
type registry struct {
	list   []*feature.Feature
	iqs    map[xmlstream.Name]iqEntry
	nonzas map[xmlstream.Name]int
	// bind2: XEP-0386 inline elements → feature index; bind2Vars what Bind 2's <inline/> lists (conn_sasl2.go).
	bind2     map[xmlstream.Name]int
	bind2Vars []string
	// serverVars / accountVars: sorted, deduplicated disco#info features.
	serverVars, accountVars []string
	// services are the enabled features' services (services.go), by domain in serviceOf; entityKinds the bits
	// of their entity kinds in the actor tree (inspect.go).
	services    []*serviceEntry
	serviceOf   map[string]*serviceEntry
	entityKinds map[string]kindSet
	// byName: feature name → index, for feature messages from other cluster nodes (cluster_feature.go), which
	// name the feature: another node's registry may differ (its own [features] disable).
	byName map[string]int
	// offInCluster: the services left off because they cannot run in this cluster as configured
	// (feature.ServiceSpec.InCluster), with why; logged at start.
	offInCluster []offService
}

// offService is a service left off in a cluster: its feature, domain and why.
type offService struct {
	feature, host string
	err           error
}

// iqEntry is the route of one IQ payload and the index of the feature it belongs to.
type iqEntry struct {
	idx   int
	route *feature.IQRoute
}

// newRegistry filters all by configuration: [features] disable and each feature's own condition. A disable
// entry that names no feature is a configuration error.
func newRegistry(cfg *config.Config, all []*feature.Feature) (*registry, error) {
	for _, d := range cfg.Features.Disable {
		if !slices.ContainsFunc(all, func(f *feature.Feature) bool { return f.Name == d }) {
			return nil, fmt.Errorf("config: features.disable: no feature %q", d)
		}
	}
	r := &registry{iqs: map[xmlstream.Name]iqEntry{}, nonzas: map[xmlstream.Name]int{}, bind2: map[xmlstream.Name]int{}, byName: map[string]int{}}
	server, account := slices.Clone(baseVars), []string(nil)
	for _, f := range all {
		if slices.Contains(cfg.Features.Disable, f.Name) || (f.Enabled != nil && !f.Enabled(cfg)) {
			continue
		}
		idx := len(r.list)
		r.list = append(r.list, f)
		if err := f.CheckWire(); err != nil {
			return nil, err
		}
		r.byName[f.Name] = idx
		for i := range f.IQs {
			if _, dup := r.iqs[f.IQs[i].Name]; dup {
				return nil, fmt.Errorf("features: %s: IQ payload %v is served twice", f.Name, f.IQs[i].Name)
			}
			r.iqs[f.IQs[i].Name] = iqEntry{idx: idx, route: &f.IQs[i]}
		}
		for _, n := range f.Nonzas {
			r.nonzas[n] = idx
		}
		if f.Bind2 != nil {
			r.bind2Vars = append(r.bind2Vars, f.Bind2.Var)
			for _, n := range f.Bind2.Elements {
				r.bind2[n] = idx
			}
		}
		server = append(server, f.ServerVars...)
		account = append(account, f.AccountVars...)
		if err := r.addService(cfg, f, idx); err != nil {
			return nil, err
		}
	}
	slices.Sort(server)
	slices.Sort(account)
	r.serverVars, r.accountVars = slices.Compact(server), slices.Compact(account)
	return r, nil
}

// addService records f's service if it has one and the configuration enables it.
func (r *registry) addService(cfg *config.Config, f *feature.Feature, idx int) error {
	if f.Service == nil || f.Service.Host == nil {
		return nil
	}
	host := f.Service.Host(cfg)
	if host == "" {
		return nil
	}
	if cfg.Cluster.Enabled && f.Service.InCluster != nil {
		if err := f.Service.InCluster(cfg); err != nil {
			r.offInCluster = append(r.offInCluster, offService{feature: f.Name, host: host, err: err})
			return nil
		}
	}
	j, err := jid.Parse(host)
	switch {
	case err != nil || j.Local() != "" || j.Resource() != "":
		return fmt.Errorf("features: %s: service host %q is not a domainpart", f.Name, host)
	case cfg.Serves(j.Domain()):
		return fmt.Errorf("features: %s: service host %q is a served domain", f.Name, host)
	case r.serviceOf[j.Domain()] != nil:
		return fmt.Errorf("features: %s: service host %q is taken by another service", f.Name, host)
	}
	if r.serviceOf == nil {
		r.serviceOf, r.entityKinds = map[string]*serviceEntry{}, map[string]kindSet{}
	}
	if k := f.Service.EntityKind; k != "" && r.entityKinds[k] == 0 {
		if _, static := kindBits[k]; static || len(r.entityKinds) >= maxEntityKinds {
			return fmt.Errorf("features: %s: entity kind %q is taken or one too many", f.Name, k)
		}
		r.entityKinds[k] = kFirstEntity << len(r.entityKinds)
	}
	sv := &serviceEntry{idx: idx, spec: f.Service, jid: j}
	r.services = append(r.services, sv)
	r.serviceOf[j.Domain()] = sv
	return nil
}

// serverIdentity is the server's XEP-0030 identity (category "server", type "im" in the registry).
const serverIdentity = "<identity category='server' type='im' name='xmppd'/>"

// serverInfo implements feature.Server. It is built once before the first actor starts and never changes.
type serverInfo struct {
	cfg      *config.Config
	store    storage.Store
	started  time.Time
	reg      *registry
	capsVer  string
	shutdown func(restart bool)
	metrics  *metrics
}

func (s *serverInfo) Config() *config.Config { return s.cfg }
func (s *serverInfo) Store() storage.Store   { return s.store }
func (s *serverInfo) Started() time.Time     { return s.started }
func (s *serverInfo) Version() string        { return Version }
func (s *serverInfo) CapsVer() string        { return s.capsVer }
func (s *serverInfo) LimitHit(name string)   { s.metrics.hit(name) }

func (s *serverInfo) Count(name string, delta float64) { s.metrics.count(name, delta) }

func (s *serverInfo) Services() []feature.ServiceRef {
	out := make([]feature.ServiceRef, 0, len(s.reg.services))
	for _, sv := range s.reg.services {
		out = append(out, feature.ServiceRef{JID: sv.jid, Name: sv.spec.Name})
	}
	if s.cfg.ComponentListen != "" {
		for _, c := range s.cfg.Components {
			if j, err := jid.Parse(c.Domain); err == nil {
				out = append(out, feature.ServiceRef{JID: j}) // XEP-0114: the component answers its own disco
			}
		}
	}
	return out
}

func (s *serverInfo) Shutdown(restart bool) {
	if s.shutdown != nil {
		s.shutdown(restart)
	}
}

func (s *serverInfo) IsAdmin(bare jid.JID) bool {
	for _, a := range s.cfg.Admins {
		if j, err := jid.Parse(a); err == nil && j.Bare() == bare.Bare() {
			return true
		}
	}
	return false
}

func (s *serverInfo) DiscoInfo(node string) string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + stanza.NSDiscoInf + "'")
	if node != "" {
		b.WriteString(" node='")
		b.Write(xmlstream.AppendEscapedAttr(nil, node))
		b.WriteString("'")
	}
	b.WriteString(">" + serverIdentity)
	for _, v := range s.reg.serverVars {
		b.WriteString("<feature var='" + v + "'/>")
	}
	for _, f := range s.reg.list {
		if f.ExtendedInfo != nil {
			b.WriteString(f.ExtendedInfo(s.cfg))
		}
	}
	b.WriteString("</query>")
	return b.String()
}

func (s *serverInfo) AccountDiscoInfo() string {
	var b strings.Builder
	b.WriteString("<query xmlns='" + stanza.NSDiscoInf + "'><identity category='account' type='registered'/>")
	for _, f := range s.reg.list {
		for _, id := range f.AccountIdentities {
			b.WriteString(id)
		}
	}
	for _, v := range s.reg.accountVars {
		b.WriteString("<feature var='" + v + "'/>")
	}
	b.WriteString("</query>")
	return b.String()
}

func (s *serverInfo) DiscoNode(requester, account jid.JID, node string, items bool) (string, bool) {
	for _, f := range s.reg.list {
		if f.DiscoNode == nil {
			continue
		}
		if p, ok := f.DiscoNode(s, requester, account, node, items); ok {
			return p, true
		}
	}
	return "", false
}

// streamFeatures is what enabled features add to <stream:features> after authentication.
func (s *serverInfo) streamFeatures() string {
	var b strings.Builder
	for _, f := range s.reg.list {
		if f.StreamFeature != nil {
			b.WriteString(f.StreamFeature(s))
		}
	}
	return b.String()
}

// AccountCreated runs every feature's AccountCreated hook (in the actor that created the account).
func (s *serverInfo) AccountCreated(account jid.JID) {
	for _, f := range s.reg.list {
		if f.AccountCreated != nil {
			f.AccountCreated(s, account)
		}
	}
}

// featureMsg carries a feature's own message to the same feature's part in another actor (idx: registry index).
type featureMsg struct {
	idx int
	msg any
}

// partHandle hands msg to part if it takes messages.
func partHandle(part any, msg any) {
	if h, ok := part.(feature.Handler); ok {
		h.Handle(msg)
	}
}

// hooked is one feature's implementation of a hook, with the feature's registry index.
type hooked[H any] struct {
	idx int
	h   H
}

// collect gathers the parts that implement H, in registry order.
func collect[H any](parts []any) []hooked[H] {
	var out []hooked[H]
	for i, p := range parts {
		if h, ok := p.(H); ok {
			out = append(out, hooked[H]{idx: i, h: h})
		}
	}
	return out
}

// ---- surveys: a question to the same feature's part in many user actors ----

type (
	// surveyAsk is what a user actor gets: answer q through the part's Answerer and send surveyAnswer to
	// replyTo (even without an answerer, so that collectors can count). timeout is how long replyTo waits (what
	// a node answering for another one waits too, cluster_feature.go).
	surveyAsk struct {
		q       any
		replyTo *actor.PID
		timeout time.Duration
	}
	// surveyAnswer is one answer; node is the cluster node it came from ("" this one).
	surveyAnswer struct {
		a    any
		node string
	}
	// surveyReached: node asked n user actors (a survey over the cluster, cluster_feature.go).
	surveyReached struct {
		node string
		n    int
	}
	// surveyDone goes from the collector to its session with what came in.
	surveyDone struct {
		id      string
		answers []any
	}
)

// surveyCollector is a short-lived child of a session: it asks the router to hand a question to every user
// actor (or one), gathers the answers, and gives up after a timeout (a user actor that stopped meanwhile never
// answers). In a cluster a survey reaches every member: the router asks its own user actors and the cluster
// actor the others (cluster_feature.go); each member says how many it asked (surveyReached) and each of its
// user actors answers. The collector is done when every member has answered as often as it said, and does not
// wait for a member that is gone (it watches each member's cluster actor: AddressTerminated).
type surveyCollector struct {
	router  *actor.PID
	idx     int
	q       any
	one     jid.JID // Ask: only this user; zero for every user
	timeout time.Duration
	// want: how many answers each node ("" this one) said it would send, -1 until it said; got: how many came.
	want, got map[string]int
	gone      map[string]bool // members whose cluster actor is gone (not waited for)
	watched   []*actor.PID
	count     int // answers received, nil ones included
	answers   []any
	done      bool
}

// surveyTimeout: the collector's time is up; it reports what it has.
type surveyTimeout struct{}

func (surveyTimeout) IgnoreDeadLetterLogging() {} // usually the collector has finished long before

func (c *surveyCollector) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.want, c.got, c.gone = map[string]int{}, map[string]int{}, map[string]bool{}
		// A message of our own, not SetReceiveTimeout (idle.go: protoactor's receive timeout races).
		scheduler.NewTimerScheduler(ctx).SendOnce(c.timeout, ctx.Self(), surveyTimeout{})
		ask := &featureMsg{idx: c.idx, msg: &surveyAsk{q: c.q, replyTo: ctx.Self(), timeout: c.timeout}}
		if c.one.IsZero() {
			ctx.Request(c.router, &toAllUsers{msg: ask})
		} else {
			ctx.Send(c.router, &toUser{bare: c.one, msg: ask})
		}
	case *usersReached:
		c.want[""] = m.n
		for _, node := range m.members {
			if _, said := c.want[node]; !said && !c.gone[node] {
				c.want[node] = -1
			}
			pid := actor.NewPID(node, clusterActorName)
			ctx.Watch(pid)
			c.watched = append(c.watched, pid)
		}
	case *surveyReached:
		if !c.gone[m.node] {
			c.want[m.node] = m.n
		}
	case *surveyAnswer:
		c.count++
		c.got[m.node]++
		if m.a != nil {
			c.answers = append(c.answers, m.a)
		}
	case *actor.Terminated:
		// A member left (stopped, killed, cut off) or never had a cluster actor: what it sent is kept, what it
		// did not is not waited for.
		c.gone[m.Who.Address] = true
		delete(c.want, m.Who.Address)
	case surveyTimeout:
		c.finish(ctx)
		return
	case *actor.Stopping:
		if !c.done { // its session ended first
			c.unwatch(ctx)
		}
		return
	default:
		return
	}
	if c.complete() {
		c.finish(ctx)
	}
}

// complete: an Ask has its answer (from whichever node the account is placed on); a survey has heard from this
// node and from every member that is still there, as many answers as each said.
func (c *surveyCollector) complete() bool {
	if !c.one.IsZero() {
		return c.count >= 1
	}
	if _, ok := c.want[""]; !ok {
		return false
	}
	for node, n := range c.want {
		if n < 0 || c.got[node] < n {
			return false
		}
	}
	return true
}

func (c *surveyCollector) finish(ctx actor.Context) {
	if c.done {
		return
	}
	c.done = true
	c.unwatch(ctx)
	ctx.Send(ctx.Parent(), &surveyDone{id: ctx.Self().Id, answers: c.answers})
	ctx.Stop(ctx.Self())
}

// unwatch: each member's cluster actor would otherwise keep this collector among its watchers.
func (c *surveyCollector) unwatch(ctx actor.Context) {
	for _, pid := range c.watched {
		ctx.Unwatch(pid)
	}
	c.watched = nil
}

// serviceDomains are the enabled services' domains (what a generated certificate must cover besides the served
// domains).
func (r *registry) serviceDomains() []string {
	out := make([]string, 0, len(r.services))
	for _, sv := range r.services {
		out = append(out, sv.jid.Domain())
	}
	return out
}
