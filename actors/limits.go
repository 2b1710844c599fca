package actors

import (
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Abuse limits (XEP-0205). Per-source-address state (connection counts, connect rate, authentication failures,
// registrations) is owned by the listener actor: it is the one actor every connection passes through, the
// decisions are map look-ups, and no conn has to share anything. Per-user limits live in the user actor
// (user_limits.go); per-connection ones in the conn and its reader.

// Limit names: the closed label set of xmppd_limit_hits_total.
const (
	limitConnections       = "connections"           // c2s.max_connections
	limitConnectionsPerIP  = "connections_per_ip"    // c2s.max_connections_per_ip
	limitConnectRate       = "connect_rate_per_ip"   // c2s.connect_rate_per_ip
	limitPreAuthElements   = "pre_auth_elements"     // c2s.pre_auth_max_elements
	limitPreAuthSize       = "pre_auth_stanza_size"  // c2s.pre_auth_stanza_size
	limitStanzaSize        = "max_stanza_size"       // c2s.max_stanza_size
	limitNegotiation       = "negotiation_timeout"   // c2s.negotiation_timeout
	limitIdle              = "idle_timeout"          // c2s.idle_timeout
	limitReadRate          = "read_rate"             // c2s.read_rate: the reader paused
	limitWriteQueue        = "write_queue_bytes"     // c2s.write_queue_bytes: slow consumer
	limitSessions          = "max_sessions_per_user" // c2s.max_sessions_per_user
	limitAuthFailures      = "auth_max_failures"     // auth.max_failures: stream closed
	limitAuthDelay         = "auth_failure_delay"    // auth.failure_delay: a failure answered late
	limitRegistrationRate  = "registration_rate"     // registration.max_per_ip
	limitReservedUsername  = "registration_reserved" // registration.reserved_usernames
	limitRosterItems       = "roster_max_items"      // roster.max_items
	limitPendingIn         = "roster_max_pending_in" // roster.max_pending_in
	limitStrangerSubscribe = "stranger_subscriptions"
	limitOfflineQueue      = "offline_max_messages" // offline.max_messages
	limitSMUnacked         = "sm_max_unacked"       // stream_management.max_unacked
)

var limitNames = []string{limitConnections, limitConnectionsPerIP, limitConnectRate, limitPreAuthElements,
	limitPreAuthSize, limitStanzaSize, limitNegotiation, limitIdle, limitReadRate, limitWriteQueue, limitSessions,
	limitAuthFailures, limitAuthDelay, limitRegistrationRate, limitReservedUsername, limitRosterItems, limitPendingIn,
	limitStrangerSubscribe, limitOfflineQueue, limitSMUnacked}

// newLimitHits registers xmppd_limit_hits_total on r with every label pre-created, so a scrape shows 0 for a limit
// that never triggered rather than nothing.
func newLimitHits(r *prometheus.Registry) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xmppd_limit_hits_total",
		Help: "Times a configured limit triggered, by limit (the config key it comes from; see config.toml).",
	}, []string{"limit"})
	for _, n := range limitNames {
		v.WithLabelValues(n)
	}
	r.MustRegister(v)
	return v
}

// hit counts one trigger of a limit.
func (m *metrics) hit(limit string) { m.limits.WithLabelValues(limit).Inc() }

// tokenBucket is a classic token bucket: rate tokens per second up to burst. Not safe for concurrent use: each
// bucket has one owner (an actor, or a reader goroutine).
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newTokenBucket(rate, burst float64, now time.Time) tokenBucket {
	return tokenBucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *tokenBucket) refill(now time.Time) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
	}
	b.last = now
}

// take removes n tokens if there are that many and reports whether it did.
func (b *tokenBucket) take(n float64, now time.Time) bool {
	b.refill(now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// debit removes n tokens, possibly going negative, and returns how long until the balance is back to zero.
func (b *tokenBucket) debit(n float64, now time.Time) time.Duration {
	b.refill(now)
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// full reports whether the bucket has refilled completely (the entry can be forgotten).
func (b *tokenBucket) full(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst
}

// sourceAddr is the address limits are keyed on: the IP, with IPv6 reduced to its /64 (one host usually owns a
// whole /64, so per-address limits on single IPv6 addresses would be free to evade).
func sourceAddr(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// ipState is what the listener remembers of one source address.
type ipState struct {
	conns    int         // open connections
	connects tokenBucket // connection attempts
	regs     tokenBucket // in-band registrations
	hasRegs  bool
	failures int // recent authentication failures (see authPenalty)
	lastFail time.Time
}

// idle reports whether the entry holds nothing worth keeping.
func (s *ipState) idle(now time.Time, failWindow time.Duration) bool {
	return s.conns == 0 && s.connects.full(now) && (!s.hasRegs || s.regs.full(now)) &&
		(s.failures == 0 || now.Sub(s.lastFail) > failWindow)
}

// Messages between conns and the listener for per-address limits.
type (
	// authFailed: a conn's client gave wrong credentials; the listener answers authPenalty with the delay before
	// the conn may say so (per source address, so an attacker slows down itself, never a victim's account).
	authFailed  struct{ ip netip.Addr }
	authPenalty struct{ delay time.Duration }
	// registrationAllowed asks whether ip may register one more account now; answered with registrationVerdict.
	registrationAllowed struct{ ip netip.Addr }
	registrationVerdict struct{ ok bool }
	// pruneLimits: the listener's periodic clean-up of idle per-address entries.
	pruneLimits struct{}
)
