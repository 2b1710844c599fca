package actors

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus instruments. They live in a registry per server (not the global default),
// so two servers in one test process do not collide. Instruments are atomic counters updated by the actor that
// observes the event; nothing reads them but the /metrics handler.
type metrics struct {
	registry      *prometheus.Registry
	connections   prometheus.Gauge
	sessions      prometheus.Gauge
	stanzasIn     *prometheus.CounterVec
	stanzasOut    *prometheus.CounterVec
	authSuccesses *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	streamErrors  *prometheus.CounterVec
	slowConsumers prometheus.Counter
	offlineStored prometheus.Counter
	routed        prometheus.Counter
	actorPanics   prometheus.Counter
}

func newMetrics() *metrics {
	r := prometheus.NewRegistry()
	m := &metrics{
		registry: r,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_c2s_connections", Help: "Open client connections."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "xmppd_sessions", Help: "Bound client sessions."}),
		stanzasIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_stanzas_in_total", Help: "Top-level elements received from clients, by element name."}, []string{"kind"}),
		stanzasOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xmppd_stanzas_out_total", Help: "Stanzas delivered to client sessions, by element name."}, []string{"kind"}),
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
		routed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_routed_total", Help: "Stanzas routed between users by the router."}),
		actorPanics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xmppd_actor_failures_total", Help: "Actors stopped by their supervisor after a panic."}),
	}
	r.MustRegister(m.connections, m.sessions, m.stanzasIn, m.stanzasOut, m.authSuccesses, m.authFailures,
		m.streamErrors, m.slowConsumers, m.offlineStored, m.routed, m.actorPanics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
