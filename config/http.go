package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// HTTPConfig is the public HTTP(S) listener ([http]): XEP-0156 host-meta, RFC 7395 WebSocket at /xmpp-websocket,
// XEP-0124/XEP-0206 BOSH at /http-bind, and what other packages mount on it. It is separate from [debug].
type HTTPConfig struct {
	// Listen is host:port; "" disables the listener (and with it every HTTP endpoint).
	Listen string `toml:"listen"`
	// TLS serves HTTPS with the c2s certificate ([tls]). Plain HTTP is allowed only on a loopback address, or
	// when trusted_proxies is set (a TLS-terminating proxy in front).
	TLS bool `toml:"tls"`
	// TrustedProxies are addresses or prefixes whose X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host are
	// believed. Requests over plain HTTP from anyone else (loopback excepted) are refused.
	TrustedProxies []string `toml:"trusted_proxies"`
	// PublicURL is the base URL clients reach us at ("https://chat.example.com"), used in host-meta; "" derives
	// it from each request (Host, and the X-Forwarded-* headers of a trusted proxy).
	PublicURL string `toml:"public_url"`
	// Origins are the browser origins allowed on the WebSocket and BOSH endpoints (CORS), as host patterns
	// ("*.example.com") or "*" for any. XMPP authenticates with SASL inside the stream, not with cookies, so
	// any origin is safe by default.
	Origins []string `toml:"origins"`
	// WebSocketPing is the interval of WebSocket pings (RFC 6455 §5.5.2); a peer that does not answer within
	// the next interval is gone. 0 disables pings (c2s.idle_timeout still applies).
	WebSocketPing Duration `toml:"websocket_ping"`
	// BOSH (XEP-0124): the largest wait, inactivity and hold the server grants, and the request window.
	BOSHMaxWait       Duration `toml:"bosh_max_wait"`
	BOSHMaxInactivity Duration `toml:"bosh_max_inactivity"`
	BOSHMaxHold       int      `toml:"bosh_max_hold"`
	BOSHRequests      int      `toml:"bosh_requests"`
}

func defaultHTTP() HTTPConfig {
	return HTTPConfig{
		Listen: ":5281", TLS: true, TrustedProxies: []string{}, Origins: []string{"*"},
		WebSocketPing: Duration{30 * time.Second},
		BOSHMaxWait:   Duration{60 * time.Second}, BOSHMaxInactivity: Duration{60 * time.Second},
		BOSHMaxHold: 1, BOSHRequests: 2,
	}
}

func (c *Config) validateHTTP() error {
	h := &c.HTTP
	if _, err := ParseExempt(h.TrustedProxies); err != nil {
		return fmt.Errorf("config: http.trusted_proxies: %v", err)
	}
	if h.PublicURL != "" {
		u, err := url.Parse(h.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("config: http.public_url must be an http or https URL with a host")
		}
		h.PublicURL = strings.TrimSuffix(h.PublicURL, "/")
	}
	if h.WebSocketPing.Duration < 0 || h.BOSHMaxWait.Duration < time.Second || h.BOSHMaxInactivity.Duration < 10*time.Second ||
		h.BOSHMaxHold < 1 || h.BOSHRequests < h.BOSHMaxHold+1 {
		return fmt.Errorf("config: http: websocket_ping must not be negative, bosh_max_wait at least 1s, " +
			"bosh_max_inactivity at least 10s, bosh_max_hold at least 1 and bosh_requests above bosh_max_hold (XEP-0124 §7.1)")
	}
	if h.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(h.Listen)
	if err != nil {
		return fmt.Errorf("config: http.listen: %v", err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !h.TLS && !loopback && len(h.TrustedProxies) == 0 {
		return fmt.Errorf("config: http.listen %q without http.tls: plain HTTP only on loopback or behind http.trusted_proxies", h.Listen)
	}
	return nil
}
