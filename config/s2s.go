package config

import (
	"fmt"
	"net"
	"time"

	"github.com/xmppd/xmppd/protocol/jid"
)

// S2SConfig configures federation (RFC 6120 server-to-server streams, XEP-0220 dialback). Federation is on when
// Listen is set: the listener is what peers connect back to for dialback verification, so outgoing streams
// without it could not authenticate by dialback either.
type S2SConfig struct {
	// Listen is the incoming server-to-server address (":5269"); "" turns federation off, and stanzas to
	// foreign domains are answered with <remote-server-not-found/>.
	Listen string `toml:"listen"`
	// SecureAuth requires a verified certificate from every peer: SASL EXTERNAL, or dialback over TLS whose
	// certificate verified. false accepts dialback over unverified TLS (Prosody's default).
	SecureAuth bool `toml:"secure_auth"`
	// RequireEncryption refuses streams without TLS, both ways.
	RequireEncryption bool `toml:"require_encryption"`
	// AllowDialback: false leaves only SASL EXTERNAL.
	AllowDialback bool `toml:"allow_dialback"`
	// CAFile: PEM certificates trusted for peers' certificates; "" is the system roots.
	CAFile string `toml:"ca_file"`
	// DialbackSecret is the XEP-0185 key secret; "" generates one into data_dir/s2s-dialback.secret.
	DialbackSecret string `toml:"dialback_secret"`
	// ConnectTimeout: a stanza waiting this long for an authenticated stream is bounced.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// IdleTimeout closes an outgoing stream with nothing sent or received for this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// Keepalive is the interval of whitespace keepalives on outgoing streams (RFC 6120 §4.6.1).
	Keepalive Duration `toml:"keepalive"`
	// MaxQueue is how many stanzas one remote domain may have waiting for its stream; more are bounced.
	MaxQueue int `toml:"max_queue"`
	// Allow, when not empty, lists the only remote domains federated with; Deny lists domains never federated
	// with (both ways: their streams are refused, stanzas to them bounce with <remote-server-not-found/>).
	Allow []string `toml:"allow"`
	Deny  []string `toml:"deny"`
	// MaxIncoming bounds concurrent incoming server connections (0: no limit).
	MaxIncoming int `toml:"max_incoming"`
	// Routes maps a remote domain to host:port, bypassing DNS (tests, private networks).
	Routes map[string]string `toml:"routes"`
	// StreamManagement: XEP-0198 acknowledgements on s2s streams authenticated by SASL EXTERNAL, both ways
	// (offered to peers, enabled towards peers that offer it, with resumption between servers that allow it), so
	// that stanzas on a stream that breaks are resent on the next one instead of lost.
	StreamManagement bool `toml:"stream_management"`
}

func defaultS2S() S2SConfig {
	return S2SConfig{
		AllowDialback: true, RequireEncryption: true,
		ConnectTimeout: Duration{30 * time.Second}, IdleTimeout: Duration{10 * time.Minute},
		Keepalive: Duration{time.Minute}, MaxQueue: 1000, Routes: map[string]string{},
		Allow: []string{}, Deny: []string{}, MaxIncoming: 1000, StreamManagement: true,
	}
}

// FederatesWith reports whether the allow/deny lists let domain federate.
func (c *Config) FederatesWith(domain string) bool {
	for _, d := range c.S2S.Deny {
		if d == domain {
			return false
		}
	}
	if len(c.S2S.Allow) == 0 {
		return true
	}
	for _, d := range c.S2S.Allow {
		if d == domain {
			return true
		}
	}
	return false
}

// Federates reports whether server-to-server streams are enabled.
func (c *Config) Federates() bool { return c.S2S.Listen != "" }

// ComponentsConfig is embedded in Config: its keys are top-level ones.
type ComponentsConfig struct {
	// ComponentListen is the XEP-0114 listener; "" disables.
	ComponentListen string            `toml:"component_listen"`
	Components      []ComponentConfig `toml:"components"`
}

// ComponentConfig is one XEP-0114 external component: the domain it serves and the handshake secret.
type ComponentConfig struct {
	Domain string `toml:"domain"`
	Secret string `toml:"secret"`
}

// Component returns the component configured for domain, or nil.
func (c *Config) Component(domain string) *ComponentConfig {
	for i := range c.Components {
		if c.Components[i].Domain == domain {
			return &c.Components[i]
		}
	}
	return nil
}

func (c *Config) validateComponents() error {
	if len(c.Components) > 0 && c.ComponentListen == "" {
		return fmt.Errorf("config: components need component_listen")
	}
	if c.ComponentListen != "" {
		if _, _, err := net.SplitHostPort(c.ComponentListen); err != nil {
			return fmt.Errorf("config: component_listen: %v", err)
		}
	}
	seen := map[string]bool{}
	for i := range c.Components {
		cc := &c.Components[i]
		j, err := jid.Parse(cc.Domain)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("config: component domain %q is not a domainpart", cc.Domain)
		}
		cc.Domain = j.Domain()
		if c.Serves(cc.Domain) || seen[cc.Domain] {
			return fmt.Errorf("config: component domain %q is served here or listed twice", cc.Domain)
		}
		seen[cc.Domain] = true
		if cc.Secret == "" {
			return fmt.Errorf("config: component %q needs a secret", cc.Domain)
		}
	}
	return nil
}

func (c *Config) validateS2S() error {
	if err := c.validateComponents(); err != nil {
		return err
	}
	s := &c.S2S
	if s.ConnectTimeout.Duration <= 0 || s.IdleTimeout.Duration <= 0 || s.Keepalive.Duration <= 0 || s.MaxQueue < 1 {
		return fmt.Errorf("config: s2s.connect_timeout, idle_timeout, keepalive and max_queue must be positive")
	}
	if s.Listen != "" {
		if _, _, err := net.SplitHostPort(s.Listen); err != nil {
			return fmt.Errorf("config: s2s.listen: %v", err)
		}
	}
	if s.MaxIncoming < 0 {
		return fmt.Errorf("config: s2s.max_incoming must not be negative")
	}
	for _, list := range [][]string{s.Allow, s.Deny} {
		for i, d := range list {
			j, err := jid.Parse(d)
			if err != nil || j.Local() != "" || j.Resource() != "" {
				return fmt.Errorf("config: s2s.allow/deny: %q is not a domain", d)
			}
			list[i] = j.Domain()
		}
	}
	routes := make(map[string]string, len(s.Routes))
	for d, hp := range s.Routes {
		j, err := jid.Parse(d)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("config: s2s.routes: %q is not a domain", d)
		}
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return fmt.Errorf("config: s2s.routes %q: %v", d, err)
		}
		if c.Serves(j.Domain()) {
			return fmt.Errorf("config: s2s.routes: %q is served here", d)
		}
		routes[j.Domain()] = hp // canonical, as the 'to' of stanzas is
	}
	s.Routes = routes
	return nil
}
