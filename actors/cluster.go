package actors

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/asynkron/protoactor-go/scheduler"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/nodewire"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// The cluster (issue 19, ARCHITECTURE.md "The cluster"). Every node runs the whole actor tree. protoactor-go's
// cluster keeps the member list (etcd or automanaged membership) and its remote carries messages between the
// nodes. Each account (bare JID) and each service domain is placed on one member by rendezvous hashing over the
// live members (cluster.Rendezvous, the function protoactor's disthash identity lookup places grains with); the
// router of that node (its "home") activates the user actor, as it does on a single node. A client may connect
// to any node: its conn stays there (the edge) and its session lives under the user actor at the home, joined by
// a pair of stand-ins (cluster_proxy.go). Stanzas for an account placed elsewhere are forwarded to the home's
// cluster actor, which hands them to its router.
//
// Why the router activates, not protoactor's grain activator: the router counts what it sent to each user actor
// and stops one only when nothing is in flight (userIdle), so no stanza is ever sent to a stopping actor and
// there are never two actors for one account on a node. A grain activation behind a PID cache gives neither: a
// message to a passivated grain's cached PID is a dead letter.

// clusterKind is the kind placed by rendezvous hashing: every member hosts accounts and service domains.
const clusterKind = "xmppd"

// clusterActorName is the cluster actor's name on every node: the address the others send to.
const clusterActorName = "cluster"

// maxHops bounds forwards between nodes whose member lists differ (while a change propagates): a stanza that
// was forwarded this often is handled where it is.
const maxHops = 2

// Messages of the cluster actor from the local actors.
type (
	// forwardRoute: the router hands over a stanza for an address placed on home.
	forwardRoute struct {
		home string
		r    *Route
	}
	// forwardAttach: the router hands over a bind (or XEP-0198 resumption) of a client connected here whose
	// account is placed on home; the cluster actor spawns the session's stand-in (sessionProxy).
	forwardAttach struct {
		home   string
		bind   *bindRequest
		resume *resumeRequest
	}
	// clusterTopology is the member list as the router sees it.
	clusterTopology struct {
		self    string
		members []string
	}
	// clusterMembers asks the cluster actor for the member list (a Request; the debug endpoint), and where key
	// (an address's placement key, "" for none) is placed.
	clusterMembers  struct{ key string }
	clusterMemberIs struct {
		self    string
		members []string
		home    string
	}
	// clusterClose ends, at shutdown, the streams of clients connected to other nodes whose sessions are here.
	clusterClose struct{}
	// routerCount asks the router how many user actors it has (answered with routerCounted).
	routerCount   struct{}
	routerCounted struct{ users int }
)

// remoteConfirm is a stanza from another node waiting for its recipient to handle it (XEP-0198, session_sm.go).
type remoteConfirm struct {
	node string
	seq  uint64
}

// localConfirm is a stanza forwarded to another node whose local sender waits for its confirmation: if that
// node leaves the cluster first, the stanza is routed again (to the account's new home), with its key.
type localConfirm struct {
	pid  *actor.PID
	seq  uint32
	home string
	// homeID is the member id home had when the stanza went out: a node restarted on the same address is a new
	// member, and what the old one did not confirm must be routed again although the address is live.
	homeID string
	st     *stanza.Routed
	key    string // the idempotency key it was forwarded with (stanza.Routed.Once)
}

// clusterActor is the cluster's end on one node: it owns the member list, translates between the in-process
// messages and the wire (protocol/nodewire), and parents the stand-ins of sessions split across nodes.
type clusterActor struct {
	env  *env
	self string
	// members are the live members' addresses, this node's included once it has joined; memberIDs their
	// member ids by address.
	members   []string
	memberIDs map[string]string
	// sent: forwarded stanzas waiting for Handled, by the sequence number this node gave them.
	sent    map[uint64]localConfirm
	nextOut uint64
	// received: stanzas from other nodes waiting for stanzaHandled from the local recipient.
	received map[uint32]remoteConfirm
	nextIn   uint32
	// homes are the conn stand-ins (sessions here, clients elsewhere), edges the session stand-ins.
	homes, edges map[string]*actor.PID
	closing      bool
	closeWaiter  *actor.PID
	// lease tells when the membership provider last renewed this member (etcd); nil when it cannot tell
	// (automanaged). isolated: it has not for longer than its TTL, so the others have dropped this node.
	lease     func() (time.Time, time.Duration)
	isolated  bool
	stopTick  func()
	routedOut uint64
	routedIn  uint64
}

func newClusterProps(e *env, self string, lease func() (time.Time, time.Duration)) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &clusterActor{env: e, self: self, sent: map[uint64]localConfirm{}, received: map[uint32]remoteConfirm{},
			homes: map[string]*actor.PID{}, edges: map[string]*actor.PID{}, lease: lease}
	}, actor.WithSupervisor(stopStrategy), withInspection(e, kindCluster))
}

func (c *clusterActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if c.lease != nil {
			c.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(time.Second, time.Second, ctx.Self(), &leaseTick{})
		}
	case *actor.Stopping:
		if c.stopTick != nil {
			c.stopTick()
		}
	case *leaseTick:
		c.checkLease(ctx)
	case *cluster.ClusterTopology:
		if !c.closing {
			c.topology(ctx, m)
		}
	case *clusterMembers:
		res := &clusterMemberIs{self: c.self, members: c.members}
		if m.key != "" {
			if res.home = newPlacement(&clusterTopology{self: c.self, members: c.members}).home(m.key); res.home == "" {
				res.home = c.self
			}
		}
		ctx.Respond(res)
	case *forwardRoute:
		c.forward(ctx, m)
	case *forwardAttach:
		c.attachOut(ctx, m)
	case *nodewire.Route:
		c.routeIn(ctx, m)
	case *nodewire.Handled:
		if w, ok := c.sent[m.ConfirmSeq]; ok {
			delete(c.sent, m.ConfirmSeq)
			ctx.Send(w.pid, &stanzaHandled{seq: w.seq})
		}
	case *stanzaHandled:
		if w, ok := c.received[m.seq]; ok {
			delete(c.received, m.seq)
			ctx.Send(actor.NewPID(w.node, clusterActorName), &nodewire.Handled{ConfirmSeq: w.seq})
		}
	case *nodewire.Attach:
		c.attachIn(ctx, m)
	case *nodewire.StatusRequest:
		c.status(ctx)
	case *forwardUser, *forwardSurvey, *nodewire.UserCall, *nodewire.Survey, *nodewire.Answer, *nodewire.Reached:
		c.featureWire(ctx, m) // cluster_feature.go
	case *clusterLeave:
		c.leave(ctx)
	case *clusterClose:
		c.closing = true
		c.closeWaiter = ctx.Sender()
		for _, p := range c.homes {
			ctx.Send(p, m)
		}
		c.maybeClosed(ctx)
	case *actor.Terminated:
		delete(c.homes, m.Who.Id)
		delete(c.edges, m.Who.Id)
		c.maybeClosed(ctx)
	}
}

func (c *clusterActor) maybeClosed(ctx actor.Context) {
	if c.closing && len(c.homes) == 0 && c.closeWaiter != nil {
		ctx.Send(c.closeWaiter, &clusterClose{})
		c.closeWaiter = nil
	}
}

// topology keeps the members that are alive (not blocked) and tells the router.
func (c *clusterActor) topology(ctx actor.Context, t *cluster.ClusterTopology) {
	blocked := make(map[string]bool, len(t.Blocked))
	for _, id := range t.Blocked {
		blocked[id] = true
	}
	var members []string
	ids := make(map[string]string, len(t.Members))
	for _, m := range t.Members {
		if !blocked[m.Id] {
			members = append(members, m.Address())
			ids[m.Address()] = m.Id
		}
	}
	c.members, c.memberIDs = members, ids
	c.env.log.Info().Strs("members", members).Str("self", c.self).Msg("cluster topology")
	c.env.metrics.clusterMembers.Set(float64(len(members)))
	c.tellRouter(ctx)
	c.rerouteUnconfirmed(ctx)
}

// rerouteUnconfirmed: stanzas forwarded to a node that has left the member list (stopped, killed, cut off)
// before it confirmed them may never have been stored there. They are routed again, after the router has the
// new list, so they reach the account's new home: a sender's XEP-0198 acknowledgement then still means stored,
// and it is not held up for ever by a dead node. A stanza the old home had stored (or forwarded on) just before
// it left arrives a second time: it carries the key it was first forwarded with, and the recipient's home
// handles a key it has handled already as done (user_once.go: the user actor's recent keys, the offline queue's
// (owner, key), the archive's id), so it is stored and delivered once.
func (c *clusterActor) rerouteUnconfirmed(ctx actor.Context) {
	live := make(map[string]bool, len(c.members))
	for _, m := range c.members {
		live[m] = true
	}
	for seq, w := range c.sent {
		// Under load the provider may report a node's leave and its restart on the same address as one change:
		// the address stays, the member id does not.
		if live[w.home] && (w.homeID == "" || c.memberIDs[w.home] == w.homeID) {
			continue
		}
		delete(c.sent, seq)
		c.env.metrics.clusterRouted.WithLabelValues("rerouted").Inc()
		c.env.log.Info().Str("to", w.st.To.String()).Str("node", w.home).Msg("cluster: routing a stanza again, its node left before confirming it")
		ctx.Send(c.env.router, &Route{St: w.st.WithOnce(w.key), confirm: w.pid, seq: w.seq})
	}
}

// tellRouter gives the router the member list to place by: without this node while it is isolated.
func (c *clusterActor) tellRouter(ctx actor.Context) {
	members := c.members
	if c.isolated {
		members = slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == c.self })
	}
	ctx.Send(c.env.router, &clusterTopology{self: c.self, members: members})
}

// leaseTick: once a second, whether the provider still holds this node's membership.
type leaseTick struct{}

// checkLease: a node cut off from etcd (its lease unrenewed for longer than the TTL, so etcd has expired its key
// and the others have placed its accounts elsewhere) stops placing accounts on itself: its user actors retire
// and what it receives it forwards, instead of keeping a second live copy of accounts that moved. When the
// lease is renewed again it places as before.
func (c *clusterActor) checkLease(ctx actor.Context) {
	at, ttl := c.lease()
	isolated := !at.IsZero() && time.Since(at) > ttl
	if isolated == c.isolated || c.closing {
		return
	}
	c.isolated = isolated
	if isolated {
		c.env.log.Warn().Dur("since", time.Since(at)).Msg("cluster: the membership lease is not renewed (etcd unreachable); placing no account here")
	} else {
		c.env.log.Info().Msg("cluster: the membership lease is renewed again")
	}
	c.env.metrics.clusterIsolated.Set(map[bool]float64{true: 1, false: 0}[isolated])
	c.tellRouter(ctx)
}

// forward sends a stanza to the home of its address; the sender's confirmation waits for the home's Handled.
// A stanza with a confirmation gets its idempotency key here, the first time it crosses (128 bits: the time and
// 64 random bits, stanza.UniqueID, so that it can serve as the recipient's archive id too); one that has a key
// (forwarded on by a node whose view differs, or routed again) keeps it.
func (c *clusterActor) forward(ctx actor.Context, f *forwardRoute) {
	if _, member := c.memberIDs[f.home]; f.r.confirm != nil && !member && !c.closing {
		// The router placed it by a member list this actor has already replaced (the new list is in the router's
		// mailbox ahead of this): sent on, it would wait for a confirmation from a node that has left, and no
		// later change of the list would route it again. Back to the router, which places it by the new list.
		c.env.metrics.clusterRouted.WithLabelValues("rerouted").Inc()
		ctx.Send(c.env.router, f.r)
		return
	}
	w := &nodewire.Route{Stanza: wireStanza(f.r.St), Hops: uint32(f.r.hops) + 1, Origin: c.self, SentUnixNano: time.Now().UnixNano()}
	if f.r.confirm != nil {
		if w.Stanza.OnceKey == "" {
			w.Stanza.OnceKey = stanza.UniqueID()
		}
		c.nextOut++
		c.sent[c.nextOut] = localConfirm{pid: f.r.confirm, seq: f.r.seq, home: f.home, homeID: c.memberIDs[f.home], st: f.r.St, key: w.Stanza.OnceKey}
		w.Confirm, w.ConfirmSeq = true, c.nextOut
	}
	c.routedOut++
	c.env.metrics.clusterRouted.WithLabelValues("out").Inc()
	ctx.Send(actor.NewPID(f.home, clusterActorName), w)
}

// routeIn hands a stanza from another node to the router, which delivers it here (or, if its view of the
// members differs, forwards it once more, at most maxHops in all).
func (c *clusterActor) routeIn(ctx actor.Context, w *nodewire.Route) {
	st, err := routedStanza(w.Stanza)
	if err != nil {
		c.env.log.Warn().Err(err).Msg("cluster: a stanza from another node has an invalid address; dropped")
		return
	}
	r := &Route{St: st, hops: uint8(min(w.Hops, maxHops))}
	if w.Confirm && w.Origin != "" {
		c.nextIn++
		c.received[c.nextIn] = remoteConfirm{node: w.Origin, seq: w.ConfirmSeq}
		r.confirm, r.seq = ctx.Self(), c.nextIn
	}
	c.routedIn++
	c.env.metrics.clusterRouted.WithLabelValues("in").Inc()
	if w.SentUnixNano > 0 {
		// One hop between nodes, sender's clock to ours: meaningful as far as the nodes' clocks agree (NTP).
		c.env.metrics.clusterHop.Observe(max(time.Since(time.Unix(0, w.SentUnixNano)).Seconds(), 0))
	}
	ctx.Send(c.env.router, r)
}

// attachOut: a client connected here binds or resumes at its account's home; its session's stand-in here
// speaks for the session to the conn.
func (c *clusterActor) attachOut(ctx actor.Context, f *forwardAttach) {
	p := &sessionProxy{env: c.env, home: f.home}
	w := &nodewire.Attach{Edge: c.self}
	if f.bind != nil {
		p.conn = f.bind.conn
		w.Full, w.Addr = f.bind.full.String(), f.bind.addr
		if in := f.bind.inline; in != nil {
			for _, n := range in.els {
				w.Inline = append(w.Inline, n.String())
			}
			if in.sm != nil {
				w.SmEnable, w.SmResume, w.SmMax = true, in.sm.Resume, int32(in.sm.Max)
			}
		}
	} else {
		p.conn = f.resume.conn
		w.Resume, w.Bare, w.Previd, w.H, w.Addr = true, f.resume.bare.String(), f.resume.previd, f.resume.h, f.resume.addr
	}
	p.attach = w
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }, withInspection(c.env, kindSessionProxy)))
	c.edges[pid.Id] = pid
	ctx.Watch(pid)
}

// attachIn: a client connected to another node binds or resumes here; the conn's stand-in speaks for the conn.
func (c *clusterActor) attachIn(ctx actor.Context, w *nodewire.Attach) {
	if w.Edge == "" || w.Proxy == "" {
		return
	}
	p := &connProxy{env: c.env, edge: actor.NewPID(w.Edge, w.Proxy), attach: w}
	if c.closing {
		// Shutting down: the client is told to reconnect (to a node that stays).
		ctx.Send(p.edge, &nodewire.Close{Condition: "system-shutdown"})
		return
	}
	pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }, withInspection(c.env, kindConnProxy)))
	c.homes[pid.Id] = pid
	ctx.Watch(pid)
}

// status answers a node's StatusRequest with what this one hosts.
func (c *clusterActor) status(ctx actor.Context) {
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	f := ctx.RequestFuture(c.env.router, &routerCount{}, 2*time.Second)
	ctx.ReenterAfter(f, func(res any, err error) {
		users := int64(-1)
		if n, ok := res.(*routerCounted); ok && err == nil {
			users = int64(n.users)
		}
		ctx.Send(sender, &nodewire.StatusReply{Node: c.self, Address: c.self, Users: users,
			Sessions: int64(gaugeValue(c.env.metrics.sessions)), Connections: int64(gaugeValue(c.env.metrics.connections)),
			ProxiesHome: int64(len(c.homes)), ProxiesEdge: int64(len(c.edges)),
			RoutedOut: int64(c.routedOut), RoutedIn: int64(c.routedIn)})
	})
}

func (c *clusterActor) describe() map[string]string {
	return map[string]string{"self": c.self, "members": strconv.Itoa(len(c.members)),
		"split_sessions_home": strconv.Itoa(len(c.homes)), "split_sessions_edge": strconv.Itoa(len(c.edges)),
		"waiting_confirmations": strconv.Itoa(len(c.sent) + len(c.received))}
}

// wireStanza and routedStanza carry a routed stanza across: its head, stamped addresses and bytes.
func wireStanza(st *stanza.Routed) *nodewire.Stanza {
	w := &nodewire.Stanza{Name: st.Head.Name, Id: st.Head.ID, Type: st.Head.Type, HeadFrom: st.Head.From,
		HeadTo: st.Head.To, From: st.From.String(), To: st.To.String(), Raw: st.Raw, OnceKey: st.Once}
	if !st.Accepted.IsZero() {
		w.AcceptedUnixNano = st.Accepted.UnixNano()
	}
	return w
}

func routedStanza(w *nodewire.Stanza) (*stanza.Routed, error) {
	if w == nil {
		return nil, errors.New("no stanza")
	}
	var from, to jid.JID
	var err error
	if w.From != "" {
		if from, err = jid.Parse(w.From); err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
	}
	if to, err = jid.Parse(w.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	st := stanza.New(stanza.Head{Name: w.Name, ID: w.Id, Type: w.Type, From: w.HeadFrom, To: w.HeadTo}, from, to, w.Raw)
	st.Once = w.OnceKey // a fresh value, not handed on yet
	if w.AcceptedUnixNano != 0 {
		st.Accepted = time.Unix(0, w.AcceptedUnixNano)
	}
	return st, nil
}

// placement is the router's view of the cluster: which member an address is placed on.
type placement struct {
	self    string
	n       int
	rv      *cluster.Rendezvous
	members []string // read only (the cluster actor replaces its list, never changes it)
}

func newPlacement(t *clusterTopology) *placement {
	p := &placement{self: t.self, n: len(t.members), rv: cluster.NewRendezvous(), members: t.members}
	ms := make([]*cluster.Member, 0, len(t.members))
	for _, a := range t.members {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		pn, _ := strconv.Atoi(port)
		ms = append(ms, &cluster.Member{Host: host, Port: int32(pn), Id: a, Kinds: []string{clusterKind}})
	}
	p.rv.UpdateMembers(ms)
	return p
}

// home is the member key (a bare JID, or a service domain) is placed on. Before this node has seen a member list
// it is the node itself. A node that is not in the list (it lost its membership, e.g. cut off from etcd) places
// nothing on itself: it forwards everything to the members that hold the identities, rather than activating a
// second actor for an account that lives elsewhere.
func (p *placement) home(key string) string {
	if p == nil || p.n == 0 {
		return ""
	}
	a := p.rv.GetByClusterIdentity(&cluster.ClusterIdentity{Identity: key, Kind: clusterKind})
	if a == p.self {
		return ""
	}
	return a
}

// joinCluster joins before any actor exists: the actor remote on [cluster] bind, then the membership provider.
// The member-list events from then on queue in the returned channel until spawnCluster hands them on.
func (e *env) joinCluster(sys *actor.ActorSystem) (c *cluster.Cluster, topologies <-chan *cluster.ClusterTopology, err error) {
	cc := &e.cfg.Cluster
	host, portS, _ := net.SplitHostPort(cc.Bind)
	port, _ := strconv.Atoi(portS)
	var provider cluster.ClusterProvider
	switch cc.Provider {
	case "etcd":
		p, err := etcd.NewWithConfig(cc.EtcdPrefix, clientv3.Config{Endpoints: cc.EtcdEndpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: etcd: %w", err)
		}
		provider = p
	case "automanaged":
		provider = automanaged.NewWithConfig(2*time.Second, cc.AutomanagedPort, cc.AutomanagedPeers...)
	}
	// Member lists change rarely (a node joins or leaves); the queue only has to hold those of the start.
	ch := make(chan *cluster.ClusterTopology, 256)
	sys.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*cluster.ClusterTopology); ok {
			ch <- t
		}
	})
	var opts []remote.ConfigOption
	if cc.Advertise != "" {
		opts = append(opts, remote.WithAdvertisedHost(cc.Advertise))
	}
	rc := remote.Configure(host, port, opts...)
	c = cluster.New(sys, cluster.Configure(cc.Name, provider, disthash.New(), rc))
	defer func() {
		// StartMember panics when the provider cannot register (etcd unreachable).
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: joining failed: %v", r)
		}
	}()
	c.StartMember()
	e.log.Info().Str("address", sys.Address()).Str("provider", cc.Provider).Str("cluster", cc.Name).Msg("cluster member started")
	return c, ch, nil
}

// spawnCluster starts the cluster actor (after the router, which it tells the member lists; the router sends to
// it only once it has had one) and hands it the member lists; the goroutine lives as long as the process.
func (e *env) spawnCluster(sys *actor.ActorSystem, c *cluster.Cluster, topologies <-chan *cluster.ClusterTopology) error {
	var lease func() (time.Time, time.Duration)
	if p, ok := c.Config.ClusterProvider.(*etcd.Provider); ok {
		lease = p.LeaseRenewed
	}
	// sys.Address() is what the remote advertises: the advertised address, or the one bound (bind port 0).
	pid, err := sys.Root.SpawnNamed(newClusterProps(e, sys.Address(), lease), clusterActorName)
	if err != nil {
		return err
	}
	e.cluster = pid
	go func() {
		for t := range topologies {
			sys.Root.Send(pid, t)
		}
	}()
	return nil
}

// clusterLeave: shutting down, this node leaves the member list first (the provider deregisters it; the others
// place its accounts elsewhere) and its own router places nothing here any more, so that its user actors end
// their sessions and retire while what is still routed here is forwarded to the new homes.
type clusterLeave struct{}

func (c *clusterActor) leave(ctx actor.Context) {
	c.closing = true
	var rest []string
	for _, m := range c.members {
		if m != c.self {
			rest = append(rest, m)
		}
	}
	c.members = rest
	if len(rest) > 0 {
		ctx.Send(c.env.router, &clusterTopology{self: c.self, members: rest})
	}
	ctx.Respond(&clusterLeave{})
}
