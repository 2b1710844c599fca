package web

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
)

func newTestServer(t *testing.T, trusted ...string) *Server {
	t.Helper()
	cfg := config.Default().HTTP
	cfg.Listen, cfg.TLS, cfg.TrustedProxies = "127.0.0.1:0", false, trusted
	s, err := New(cfg, &tls.Config{}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	s.Mount("/who", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := ClientOf(r)
		io.WriteString(w, c.Addr.String()+" "+c.Scheme+" "+c.Host+" "+map[bool]string{true: "secure", false: "plain"}[c.Secure])
	}))
	s.Advertise(RelWebSocket, "/ws")
	return s
}

func do(s *Server, remote string, hdr map[string]string, path string) (int, string, http.Header) {
	r := httptest.NewRequest(http.MethodGet, "http://chat.example"+path, nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.serve(w, r)
	return w.Code, w.Body.String(), w.Header()
}

// Plain HTTP only from loopback and trusted proxies; forwarded headers only from trusted proxies.
func TestClientPolicy(t *testing.T) {
	s := newTestServer(t, "10.0.0.0/8")
	xff := map[string]string{"X-Forwarded-For": "203.0.113.7, 10.1.1.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "xmpp.example"}
	for _, tc := range []struct {
		remote string
		hdr    map[string]string
		code   int
		body   string
	}{
		{"127.0.0.1:5000", nil, 200, "127.0.0.1 http chat.example secure"},
		{"[::1]:5000", nil, 200, "::1 http chat.example secure"},
		{"198.51.100.1:5000", nil, 403, ""},
		{"198.51.100.1:5000", xff, 403, ""},                                  // an untrusted client cannot claim a proxy's headers
		{"10.2.2.2:5000", xff, 200, "203.0.113.7 https xmpp.example secure"}, // the nearest untrusted hop
		{"10.2.2.2:5000", nil, 200, "10.2.2.2 http chat.example plain"},      // a trusted proxy that does not say https
		{"127.0.0.1:5000", xff, 200, "127.0.0.1 http chat.example secure"},   // loopback is not a trusted proxy here
	} {
		code, body, _ := do(s, tc.remote, tc.hdr, "/who")
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s %v: %d %q, want %d %q", tc.remote, tc.hdr, code, body, tc.code, tc.body)
		}
	}
}

func TestHostMetaUsesPublicURL(t *testing.T) {
	s := newTestServer(t)
	code, body, h := do(s, "127.0.0.1:1", nil, "/.well-known/host-meta.json")
	if code != 200 || !strings.Contains(body, `"href":"ws://chat.example/ws"`) || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("%d %s %v", code, body, h)
	}
	s.cfg.PublicURL = "https://xmpp.example.com"
	_, body, _ = do(s, "127.0.0.1:1", nil, "/.well-known/host-meta")
	if !strings.Contains(body, "href='wss://xmpp.example.com/ws'") {
		t.Errorf("with public_url: %s", body)
	}
}

func TestHTTPConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*config.Config)
		fail bool
	}{
		{func(c *config.Config) {}, false},
		{func(c *config.Config) { c.HTTP.TLS = false }, true}, // ":5281" is not loopback
		{func(c *config.Config) { c.HTTP.TLS = false; c.HTTP.Listen = "127.0.0.1:5281" }, false},
		{func(c *config.Config) { c.HTTP.TLS = false; c.HTTP.TrustedProxies = []string{"10.0.0.1"} }, false},
		{func(c *config.Config) { c.HTTP.TrustedProxies = []string{"nonsense"} }, true},
		{func(c *config.Config) { c.HTTP.PublicURL = "ftp://x" }, true},
		{func(c *config.Config) { c.HTTP.BOSHRequests = 1 }, true},
		{func(c *config.Config) { c.HTTP.Listen = ""; c.HTTP.TLS = false }, false},
	} {
		c := config.Default()
		tc.mod(&c)
		if err := c.Validate(); (err != nil) != tc.fail {
			t.Errorf("%+v: %v", c.HTTP, err)
		}
	}
}
