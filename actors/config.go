package actors

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/xmppd/xmppd/protocol/jid"
)

// Config is the whole server configuration. Every key is documented, with its default, in the repository's
// config.toml; DefaultConfig returns those defaults, so running with no file at all is the embedded default.
type Config struct {
	Domains      []string           `toml:"domains"`
	DataDir      string             `toml:"data_dir"`
	Admins       []string           `toml:"admins"`
	C2S          C2SConfig          `toml:"c2s"`
	TLS          TLSConfig          `toml:"tls"`
	Storage      StorageConfig      `toml:"storage"`
	Auth         AuthConfig         `toml:"auth"`
	Registration RegistrationConfig `toml:"registration"`
	Offline      OfflineConfig      `toml:"offline"`
	Debug        DebugConfig        `toml:"debug"`
	Log          LogConfig          `toml:"log"`
}

// C2SConfig configures client-to-server listeners and streams.
type C2SConfig struct {
	Listen             string   `toml:"listen"`
	DirectTLSListen    string   `toml:"direct_tls_listen"`
	RequireEncryption  bool     `toml:"require_encryption"`
	MaxStanzaSize      int      `toml:"max_stanza_size"`
	PreAuthStanzaSize  int      `toml:"pre_auth_stanza_size"`
	NegotiationTimeout Duration `toml:"negotiation_timeout"`
	IdleTimeout        Duration `toml:"idle_timeout"`
	WriteQueueBytes    int      `toml:"write_queue_bytes"`
	MaxSessionsPerUser int      `toml:"max_sessions_per_user"`
}

// TLSConfig names the certificate; empty means a self-signed one generated into data_dir.
type TLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// StorageConfig selects the storage engine.
type StorageConfig struct {
	Driver string `toml:"driver"`
	DSN    string `toml:"dsn"`
}

// AuthConfig configures SASL.
type AuthConfig struct {
	ScramIterations     int  `toml:"scram_iterations"`
	AllowPlain          bool `toml:"allow_plain"`
	AllowPlainOverPlain bool `toml:"allow_plain_without_tls"`
}

// RegistrationConfig configures XEP-0077 in-band registration.
type RegistrationConfig struct {
	Allow             bool `toml:"allow"`
	MinPasswordLength int  `toml:"min_password_length"`
}

// OfflineConfig bounds the per-user offline message queue.
type OfflineConfig struct {
	MaxMessages int `toml:"max_messages"`
}

// DebugConfig configures the debug HTTP listener.
type DebugConfig struct {
	Listen string `toml:"listen"`
	Token  string `toml:"token"`
}

// LogConfig configures zerolog.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Duration is a time.Duration written as "30s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig is the embedded default: domain localhost, data in ./data, everything else as config.toml says.
func DefaultConfig() Config {
	return Config{
		Domains: []string{"localhost"},
		DataDir: "data",
		C2S: C2SConfig{
			Listen:             ":5222",
			DirectTLSListen:    ":5223",
			RequireEncryption:  true,
			MaxStanzaSize:      262144,
			PreAuthStanzaSize:  8192,
			NegotiationTimeout: Duration{30 * time.Second},
			IdleTimeout:        Duration{5 * time.Minute},
			WriteQueueBytes:    1 << 20,
			MaxSessionsPerUser: 10,
		},
		Storage:      StorageConfig{Driver: "sqlite"},
		Auth:         AuthConfig{ScramIterations: 10000, AllowPlain: true},
		Registration: RegistrationConfig{MinPasswordLength: 8},
		Offline:      OfflineConfig{MaxMessages: 1000},
		Debug:        DebugConfig{Listen: "127.0.0.1:5280"},
		Log:          LogConfig{Level: "info", Format: "console"},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are an error: a typo must not silently fall back to
// a default.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, cfg.Validate()
	}
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	if !filepath.IsAbs(cfg.DataDir) {
		// A relative data_dir is relative to the working directory, as the default "data" is; say so here so
		// every later path is computed once.
		wd, err := os.Getwd()
		if err == nil {
			cfg.DataDir = filepath.Join(wd, cfg.DataDir)
		}
	}
	return cfg, cfg.Validate()
}

// Validate checks the values and normalises the domains (RFC 7622 §3.2).
func (c *Config) Validate() error {
	if len(c.Domains) == 0 {
		return fmt.Errorf("config: domains must list at least one domain")
	}
	for i, d := range c.Domains {
		j, err := jid.Parse(d)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("config: domain %q is not a valid domainpart", d)
		}
		c.Domains[i] = j.Domain()
	}
	for _, a := range c.Admins {
		if _, err := jid.Parse(a); err != nil {
			return fmt.Errorf("config: admin %q: %v", a, err)
		}
	}
	if c.C2S.MaxStanzaSize < 4096 {
		return fmt.Errorf("config: c2s.max_stanza_size must be at least 4096 (RFC 6120 §13.12 says 10000)")
	}
	if c.C2S.PreAuthStanzaSize <= 0 || c.C2S.PreAuthStanzaSize > c.C2S.MaxStanzaSize {
		c.C2S.PreAuthStanzaSize = min(8192, c.C2S.MaxStanzaSize)
	}
	if c.C2S.WriteQueueBytes < c.C2S.MaxStanzaSize {
		return fmt.Errorf("config: c2s.write_queue_bytes must be at least c2s.max_stanza_size")
	}
	if c.Auth.ScramIterations < 4096 {
		// RFC 7677 §4: at least 4096 iterations.
		return fmt.Errorf("config: auth.scram_iterations must be at least 4096 (RFC 7677 §4)")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("config: tls.cert_file and tls.key_file go together")
	}
	switch c.Storage.Driver {
	case "sqlite":
	default:
		return fmt.Errorf("config: storage.driver %q is not supported (sqlite)", c.Storage.Driver)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level must be debug, info, warn or error")
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		return fmt.Errorf("config: log.format must be console or json")
	}
	if c.Debug.Listen != "" {
		host, _, err := net.SplitHostPort(c.Debug.Listen)
		if err != nil {
			return fmt.Errorf("config: debug.listen: %v", err)
		}
		ip := net.ParseIP(host)
		loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
		if !loopback && c.Debug.Token == "" {
			return fmt.Errorf("config: debug.listen %q is not a loopback address: set debug.token", c.Debug.Listen)
		}
	}
	return nil
}

// Serves reports whether domain is one of ours.
func (c *Config) Serves(domain string) bool {
	for _, d := range c.Domains {
		if d == domain {
			return true
		}
	}
	return false
}

// DBPath is the SQLite file.
func (c *Config) DBPath() string {
	if c.Storage.DSN != "" {
		return c.Storage.DSN
	}
	return filepath.Join(c.DataDir, "xmppd.db")
}
