// Package web is xmppd's public HTTP(S) listener ([http] in the configuration): one server that other packages
// mount their handlers on (the WebSocket and BOSH transports of package actors, HTTP upload, …), with the policy
// every endpoint shares:
//
//   - TLS with the c2s certificate, or plain HTTP only from loopback and from trusted proxies;
//   - X-Forwarded-For / -Proto / -Host believed only from http.trusted_proxies (Client);
//   - XEP-0156 host-meta naming the alternative connection methods that were mounted (hostmeta.go);
//   - a request counter per mounted endpoint in /metrics.
//
// It holds no XMPP state: handlers that need the actor tree talk to it by messages (see actors/conn_ws.go).
// Mount is safe to call before or after Serve (http.ServeMux synchronises its own table).
package web

import (
	"context"
	"crypto/tls"
	"errors"
	stdlog "log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
)

// Server is the public HTTP listener.
type Server struct {
	cfg      config.HTTPConfig
	log      zerolog.Logger
	ln       net.Listener
	srv      *http.Server
	mux      *http.ServeMux
	trusted  config.ExemptSet
	links    []link // host-meta links, set before Serve
	requests *prometheus.CounterVec
}

// New binds cfg.Listen. tlsConf (the c2s certificate's configuration) is used when cfg.TLS is set; reg receives
// the endpoint's metrics.
func New(cfg config.HTTPConfig, tlsConf *tls.Config, log zerolog.Logger, reg prometheus.Registerer) (*Server, error) {
	trusted, err := config.ParseExempt(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log.With().Str("component", "http").Logger(), ln: ln, mux: http.NewServeMux(), trusted: trusted}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xmppd_http_requests_total",
		Help: "Requests to the public HTTP listener, by endpoint (the mounted path; refused: plain HTTP from an untrusted address; other: no endpoint)."},
		[]string{"endpoint"})
	if reg != nil {
		if err := reg.Register(s.requests); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}
	s.requests.WithLabelValues("refused")
	s.requests.WithLabelValues("other")
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.WithLabelValues("other").Inc()
		http.NotFound(w, r)
	}))
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		// net/http's own complaints (TLS handshake errors of scanners, …) go to our log, at debug level.
		ErrorLog: stdlog.New(debugWriter{s.log}, "", 0)}
	if cfg.TLS {
		tc := tlsConf.Clone()
		tc.NextProtos = []string{"http/1.1"} // WebSocket (RFC 6455) upgrades need HTTP/1.1
		s.srv.TLSConfig = tc
		s.ln = tls.NewListener(ln, tc)
	}
	s.Mount("/.well-known/host-meta", http.HandlerFunc(s.hostMeta))
	s.Mount("/.well-known/host-meta.json", http.HandlerFunc(s.hostMeta))
	return s, nil
}

// Mount serves h at pattern (http.ServeMux syntax) and counts its requests under the label pattern.
func (s *Server) Mount(pattern string, h http.Handler) {
	c := s.requests.WithLabelValues(pattern)
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Inc()
		h.ServeHTTP(w, r)
	}))
}

// Serve runs the server in the background until Close.
func (s *Server) Serve() {
	go func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("http server")
		}
	}()
	s.log.Info().Str("listen", s.ln.Addr().String()).Bool("tls", s.cfg.TLS).Msg("http listening")
}

// Close stops accepting and closes idle connections; requests in progress (a BOSH long poll) get up to timeout.
// Hijacked connections (WebSocket) belong to their handlers, which the caller ends.
func (s *Server) Close(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Client is what the server believes about a request's origin.
type Client struct {
	// Addr is the client's address: the peer's, or the one a trusted proxy reports (X-Forwarded-For).
	Addr netip.Addr
	// Secure: the request reached us over TLS, or a trusted proxy says it reached it over TLS, or it comes from
	// loopback (a local client or a local proxy: nobody can listen in).
	Secure bool
	// TLS is our own TLS connection's state (nil behind a proxy or over plain HTTP); channel bindings use it.
	TLS *tls.ConnectionState
	// Scheme and Host are how the client addressed us ("https", "chat.example.com").
	Scheme, Host string
	// Proxied: Addr, Scheme or Host came from a trusted proxy's headers.
	Proxied bool
}

type clientKey struct{}

// ClientOf returns the request's Client (every request reaching a mounted handler has one).
func ClientOf(r *http.Request) Client {
	c, _ := r.Context().Value(clientKey{}).(Client)
	return c
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	c, ok := s.client(r)
	if !ok {
		s.requests.WithLabelValues("refused").Inc()
		http.Error(w, "plain HTTP is accepted only from loopback or a trusted proxy; use https", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, c)))
}

// client applies http.trusted_proxies. ok is false for plain HTTP from an address that is neither loopback nor
// a trusted proxy.
func (s *Server) client(r *http.Request) (Client, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return Client{}, false
	}
	peer := ap.Addr().Unmap()
	c := Client{Addr: peer, TLS: r.TLS, Host: r.Host, Scheme: "http", Secure: r.TLS != nil || peer.IsLoopback()}
	if r.TLS != nil {
		c.Scheme = "https"
	}
	trusted := s.trusted.Contains(peer)
	if r.TLS == nil && !peer.IsLoopback() && !trusted {
		return c, false
	}
	if !trusted {
		return c, true
	}
	// The nearest untrusted hop of X-Forwarded-For is the client (proxies append; what is left of a trusted
	// hop may be forged by the client).
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			a = a.Unmap()
			c.Addr, c.Proxied = a, true
			if !s.trusted.Contains(a) {
				break
			}
		}
	}
	if p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p == "https" || p == "http" {
		c.Scheme, c.Proxied = p, true
		c.Secure = p == "https" || peer.IsLoopback() && c.Addr.IsLoopback()
	}
	if h := strings.TrimSpace(r.Header.Get("X-Forwarded-Host")); h != "" && !strings.ContainsAny(h, "/ \\@") {
		c.Host, c.Proxied = h, true
	}
	return c, true
}

// BaseURL is the URL clients reach this server at: http.public_url, or what the request says.
func (s *Server) BaseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	c := ClientOf(r)
	return c.Scheme + "://" + c.Host
}

// debugWriter turns net/http's error log lines into debug-level log events.
type debugWriter struct{ l zerolog.Logger }

func (d debugWriter) Write(p []byte) (int, error) {
	d.l.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
