package actors

import (
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
)

// metrics are the server's Prometheus instruments. They live in a registry per server (not the global default),
// so two servers in one test process do not collide. Instruments are atomic counters updated by the actor that
// observes the event; nothing reads them but the /metrics handler (and the live counts of the debug tree).
//
// Label values are always from a closed set (stanza kinds, mechanism names, stream error conditions, actor
// kinds, storage operations): a label taken from client input would let a client grow the registry without
// bound.
type metrics struct {
	registry      *prometheus.Registry
	connections   prometheus.Gauge
	connByState   [len(connStateNames)]prometheus.Gauge
	sessions      prometheus.Gauge
	stanzasIn     *prometheus.CounterVec
	stanzasOut    *prometheus.CounterVec
	authSuccesses *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	streamErrors  *prometheus.CounterVec
	slowConsumers prometheus.Counter
	// limits counts limit triggers by config key (limits.go).
	limits        *prometheus.CounterVec
	offlineStored prometheus.Counter
	// offlineDelivered counts offline messages handed to a session and deleted from the queue.
	offlineDelivered prometheus.Counter
	routed           prometheus.Counter
	actorPanics      prometheus.Counter
	// supervision counts supervisor decisions (stop, restart, …) by the failed actor's kind.
	supervision *prometheus.CounterVec
	// routingLatency: from the sending session accepting a client's stanza to the recipient's conn handing it
	// to its writer.
	routingLatency prometheus.Histogram
	storageLatency *prometheus.HistogramVec
	storageErrors  *prometheus.CounterVec
	snapshotTime   prometheus.Histogram
	// smHibernating: XEP-0198 sessions whose connection dropped, waiting to be resumed; smResumptions counts
	// <resume/> answers by result (resumed, failed).
	smHibernating prometheus.Gauge
	// clusterMembers is the size of the member list this node sees; clusterRouted counts stanzas forwarded to
	// ("out") and received from ("in") other nodes, feature messages that could not cross ("dropped"), stanzas
	// routed again because their node left before confirming them ("rerouted"), and stanzas a user actor had
	// handled already when they arrived again with their idempotency key ("again", user_once.go).
	clusterMembers prometheus.Gauge
	clusterRouted  *prometheus.CounterVec
	// clusterFeature counts feature messages (and questions) sent to ("out") and received from ("in") other
	// nodes, and the answers to questions, both ways ("answer_out", "answer_in"); cluster_feature.go.
	clusterFeature *prometheus.CounterVec
	// clusterIsolated: 1 while this node's membership lease is not renewed (it places no account on itself).
	clusterIsolated prometheus.Gauge
	// clusterHop: the time a forwarded stanza took from the forwarding node's cluster actor to this one's.
	clusterHop    prometheus.Histogram
	smResumptions *prometheus.CounterVec
	// features are the features' own counters (feature.Counter) by name; built at start, never changed.
	features map[string]prometheus.Counter
	// httpSessions: conns over the public HTTP listener, by transport (websocket, bosh; transport.go).
	httpSessions *prometheus.GaugeVec
	// live counts the actors of each kind (Started minus Stopped). The map is built here and never changed, so
	// reading it needs no lock; the values are atomics.
	live map[string]*atomic.Int64
}

// stanzaKinds is the closed label set of the stanza counters.
var stanzaKinds = []string{"message", "presence", "iq", "other"}

func stanzaLabel(name string) string {
	switch name {
	case "message", "presence", "iq":
		return name
	}
	return "other"
}

// newMetrics builds the server's metrics; kinds are the actor kinds of xmppd_actors (registry.kindNames).
func newMetrics(kinds []string) *metrics {
	r := prometheus.NewRegistry()
	m := &metrics{
		registry: r,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_c2s_connections", Help: "Open client connections (sockets)."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_sessions", Help: "Bound client sessions."}),
		stanzasIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_stanzas_in_total", Help: "Top-level elements received from clients, by kind (message, presence, iq, other)."}, []string{"kind"}),
		stanzasOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_stanzas_out_total", Help: "Stanzas routed to client connections, by kind."}, []string{"kind"}),
		authSuccesses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_auth_success_total", Help: "Successful SASL authentications, by mechanism."}, []string{"mechanism"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_auth_failure_total", Help: "Failed SASL attempts, by mechanism."}, []string{"mechanism"}),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_stream_errors_total", Help: "Stream errors sent, by condition."}, []string{"condition"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_slow_consumers_total", Help: "Connections closed because the client did not read."}),
		offlineStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_offline_stored_total", Help: "Messages stored for offline users."}),
		offlineDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_offline_delivered_total", Help: "Offline messages delivered at login and removed from the queue."}),
		routed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_routed_total", Help: "Stanzas routed between users by the router."}),
		actorPanics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_actor_failures_total", Help: "User or session actors stopped by their supervisor after a panic."}),
		supervision: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_actor_supervision_total",
			Help: "Supervisor decisions after an actor failed, by the actor's kind and the directive (restart counts restarts)."},
			[]string{"kind", "directive"}),
		routingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xmppd_routing_latency_seconds",
			Help:    "Time from the sender's session accepting a stanza to the recipient's connection queueing it for the socket.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1, 5},
		}),
		storageLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "xmppd_storage_latency_seconds",
			Help:    "Storage call latency, by operation.",
			Buckets: []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1, 5},
		}, []string{"op"}),
		storageErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_storage_errors_total", Help: "Storage calls that failed (not found and limit answers excluded), by operation."}, []string{"op"}),
		snapshotTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xmppd_debug_snapshot_seconds",
			Help:    "Time to gather the actor tree for /debug/actors.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10),
		}),
		smHibernating: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_sm_hibernated_sessions", Help: "XEP-0198 sessions without a connection, waiting for their client to resume them."}),
		smResumptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_sm_resumptions_total", Help: "XEP-0198 resumption attempts, by result (resumed, failed)."}, []string{"result"}),
		clusterMembers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_cluster_members", Help: "Members of the cluster this node sees, itself included (0 without [cluster])."}),
		clusterHop: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "xmppd_cluster_hop_seconds",
			Help:    "Time of one forward between cluster nodes (the forwarding node's clock to this one's), per stanza received.",
			Buckets: prometheus.ExponentialBuckets(5e-5, 2, 14),
		}),
		clusterIsolated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_cluster_isolated", Help: "1 while this node's membership lease is not renewed (cut off from etcd): it places no account on itself."}),
		clusterRouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_cluster_stanzas_total", Help: "Stanzas forwarded to (out) and received from (in) other cluster nodes; dropped: feature messages that cannot cross nodes; rerouted: routed again, their node left before confirming them; again: arrived again at a user actor that had handled them (not delivered twice)."}, []string{"direction"}),
		clusterFeature: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_cluster_feature_messages_total", Help: "Feature messages and questions sent to (out) and received from (in) other cluster nodes, and answers to questions (answer_out, answer_in); those that cannot cross are xmppd_cluster_stanzas_total{direction=\"dropped\"}."}, []string{"direction"}),
		live: map[string]*atomic.Int64{},
	}
	for _, d := range []string{"out", "in", "dropped", "rerouted", "again"} {
		m.clusterRouted.WithLabelValues(d)
	}
	for _, d := range []string{"out", "in", "answer_out", "answer_in"} {
		m.clusterFeature.WithLabelValues(d)
	}
	m.httpSessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xmppd_http_sessions", Help: "Client streams over the public HTTP listener, by transport (websocket, bosh)."}, []string{"transport"})
	m.httpSessions.WithLabelValues("websocket")
	m.httpSessions.WithLabelValues("bosh")
	m.smResumptions.WithLabelValues("resumed")
	m.smResumptions.WithLabelValues("failed")
	connStates := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "xmppd_c2s_connections_by_state", Help: "Client connection actors by stream state (header, negotiating, restart, authenticated, binding, bound, closed)."},
		[]string{"state"})
	for i, s := range connStateNames {
		m.connByState[i] = connStates.WithLabelValues(s)
	}
	for _, k := range stanzaKinds {
		m.stanzasIn.WithLabelValues(k)
		m.stanzasOut.WithLabelValues(k)
	}
	cs := []prometheus.Collector{m.connections, connStates, m.sessions, m.stanzasIn, m.stanzasOut, m.authSuccesses,
		m.authFailures, m.streamErrors, m.slowConsumers, m.offlineStored, m.offlineDelivered, m.routed, m.actorPanics,
		m.supervision, m.routingLatency, m.storageLatency, m.storageErrors, m.snapshotTime, m.smHibernating, m.smResumptions,
		m.httpSessions, m.clusterMembers, m.clusterRouted, m.clusterFeature, m.clusterIsolated, m.clusterHop,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	for _, k := range kinds {
		n := new(atomic.Int64)
		m.live[k] = n
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "xmppd_actors", Help: "Live actors by kind.", ConstLabels: prometheus.Labels{"kind": k},
		}, func() float64 { return float64(n.Load()) }))
	}
	r.MustRegister(cs...)
	m.limits = newLimitHits(r)
	return m
}

// addFeatureCounters registers the features' declared counters (xmppd_<name>).
func (m *metrics) addFeatureCounters(list []*feature.Feature) error {
	m.features = map[string]prometheus.Counter{}
	for _, f := range list {
		for _, c := range f.Counters {
			if _, dup := m.features[c.Name]; dup {
				return fmt.Errorf("features: %s: counter %q is declared twice", f.Name, c.Name)
			}
			ctr := prometheus.NewCounter(prometheus.CounterOpts{Name: "xmppd_" + c.Name, Help: c.Help})
			if err := m.registry.Register(ctr); err != nil {
				return fmt.Errorf("features: %s: counter %q: %w", f.Name, c.Name, err)
			}
			m.features[c.Name] = ctr
		}
	}
	return nil
}

// count adds to a feature counter; an undeclared name is a programming error, logged once per call site by
// nobody: it is simply not counted.
func (m *metrics) count(name string, delta float64) {
	if c := m.features[name]; c != nil && delta > 0 {
		c.Add(delta)
	}
}

// countIn counts one element from a client.
func (m *metrics) countIn(name string) { m.stanzasIn.WithLabelValues(stanzaLabel(name)).Inc() }

// observe runs from every inspectable actor's mailbox middleware, on the actor's goroutine, after the actor
// handled msg. It keeps the metrics that are properties of the actor kind rather than of one code path: live
// actors per kind, conns per stream state (a state change is seen after whichever message caused it), stanzas
// out and the routing latency at the recipient's conn.
func (m *metrics) observe(c actor.ReceiverContext, st *actorStats, msg interface{}) {
	switch msg := msg.(type) {
	case *actor.Started:
		if !st.live {
			st.live = true
			m.live[st.kind].Add(1)
			if cn, ok := c.Actor().(*conn); ok {
				st.lastState = cn.state
				m.connByState[cn.state].Inc()
			}
		}
		return
	case *actor.Stop:
		// The stop order (from the parent, a Poison, or the actor itself) is the last thing its mailbox sees.
		if st.live {
			st.live = false
			m.live[st.kind].Add(-1)
			if st.bit == kConn {
				m.connByState[st.lastState].Dec()
			}
		}
		return
	case *Deliver:
		if st.bit == kConn {
			m.written(msg.St)
		}
	}
	if st.bit == kConn && st.live {
		if cn, ok := c.Actor().(*conn); ok && cn.state != st.lastState && int(cn.state) < len(m.connByState) {
			m.connByState[st.lastState].Dec()
			m.connByState[cn.state].Inc()
			st.lastState = cn.state
		}
	}
}

// written counts a stanza handed to a client's writer (by its conn, or by its session directly: session.toConn)
// and observes its routing latency.
func (m *metrics) written(st *stanza.Routed) {
	m.stanzasOut.WithLabelValues(stanzaLabel(st.Head.Name)).Inc()
	if !st.Accepted.IsZero() {
		m.routingLatency.Observe(time.Since(st.Accepted).Seconds())
	}
}

// kindOfID names the kind of an actor from its id (the tree's layout, ARCHITECTURE.md).
func kindOfID(id string) string {
	switch {
	case id == "c2s":
		return kindListener
	case id == "router":
		return kindRouter
	case id == "caps":
		return kindCaps
	case strings.HasPrefix(id, "c2s/"):
		return kindConn
	case strings.HasPrefix(id, "router/"):
		if strings.Count(id, "/") == 1 {
			return kindUser
		}
		return kindSession
	case id == "services":
		return kindServices
	case strings.HasPrefix(id, "services/"):
		if strings.Count(id, "/") == 1 {
			return kindService
		}
		return "service-entity" // the entity kinds are the features'; one label for all of them
	}
	return "other"
}

// watchSupervision counts supervisor decisions from the actor system's event stream.
func (m *metrics) watchSupervision(sys *actor.ActorSystem) {
	sys.EventStream.Subscribe(func(evt interface{}) {
		if se, ok := evt.(*actor.SupervisorEvent); ok && se.Child != nil {
			m.supervision.WithLabelValues(kindOfID(se.Child.Id), strings.TrimSuffix(strings.ToLower(se.Directive.String()), "directive")).Inc()
		}
	})
}

// instrument hooks the server's metrics and the tree's dead-letter answers into a new actor system.
func (e *env) instrument(sys *actor.ActorSystem) {
	e.metrics.watchSupervision(sys)
	answerDeadInspect(sys)
}

// gaugeValue reads a gauge (for the cluster status; Prometheus gauges are atomic).
func gaugeValue(g prometheus.Gauge) float64 {
	var d dto.Metric
	if err := g.Write(&d); err != nil || d.Gauge == nil {
		return 0
	}
	return d.Gauge.GetValue()
}
