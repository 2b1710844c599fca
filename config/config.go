// Package config loads, defaults and validates the server configuration. Every key is documented, with its
// default, in the repository's config.toml.
package config

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"

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
	Features     FeaturesConfig     `toml:"features"`
	Contact      ContactConfig      `toml:"contact"`
	VCard        VCardConfig        `toml:"vcard"`
	PEP          PEPConfig          `toml:"pep"`
	SM           SMConfig           `toml:"stream_management"`
	SASL2        SASL2Config        `toml:"sasl2"`
	Fast         FastConfig         `toml:"fast"`
	PubSub       PubSubConfig       `toml:"pubsub"`
	Push         PushConfig         `toml:"push"`
	S2S          S2SConfig          `toml:"s2s"`
	MUC          MUCConfig          `toml:"muc"`
	MAM          MAMConfig          `toml:"mam"`
	Upload       UploadConfig       `toml:"upload"`
	Proxy65      Proxy65Config      `toml:"proxy65"`
	// ExternalServices are the XEP-0215 STUN/TURN servers ([[external_services]] tables).
	ExternalServices []ExternalService `toml:"external_services"`
	Roster           RosterConfig      `toml:"roster"`
	HTTP             HTTPConfig        `toml:"http"`
	Debug            DebugConfig       `toml:"debug"`
	Cluster          ClusterConfig     `toml:"cluster"`
	Log              LogConfig         `toml:"log"`
	// XEP-0114 external components (config/s2s.go): the top-level component_listen and [[components]].
	ComponentsConfig
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
	// Hardening (XEP-0205); see config.toml for each key.
	PreAuthMaxElements  int      `toml:"pre_auth_max_elements"`
	MaxConnections      int      `toml:"max_connections"`
	MaxConnectionsPerIP int      `toml:"max_connections_per_ip"`
	ConnectRatePerIP    float64  `toml:"connect_rate_per_ip"`
	ConnectBurstPerIP   int      `toml:"connect_burst_per_ip"`
	LimitsExempt        []string `toml:"limits_exempt"`
	ReadRate            int      `toml:"read_rate"`
	ReadBurst           int      `toml:"read_burst"`
}

// TLSConfig names the certificate; empty means a self-signed one generated into data_dir.
type TLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// PostQuantum offers the hybrid X25519MLKEM768 key exchange first (Go's default). false: X25519, then the
	// NIST curves only, as OpenSSL before 3.5 does; about a tenth of a first login's CPU cheaper (issue 17).
	PostQuantum bool `toml:"post_quantum"`
}

// StorageConfig selects the storage engine: "sqlite" (embedded, one node) or "postgres" (a shared PostgreSQL
// server, storage/postgres).
type StorageConfig struct {
	Driver string `toml:"driver"`
	// DSN is the SQLite file (empty: <data_dir>/xmppd.db) or the PostgreSQL connection string (required).
	DSN string `toml:"dsn"`
	// PoolSize is the most connections the PostgreSQL engine opens (per node); SQLite ignores it.
	PoolSize int `toml:"pool_size"`
}

// AuthConfig configures SASL.
type AuthConfig struct {
	ScramIterations     int  `toml:"scram_iterations"`
	AllowPlain          bool `toml:"allow_plain"`
	AllowPlainOverPlain bool `toml:"allow_plain_without_tls"`
	// MaxFailures credential failures end the stream with <policy-violation/> (RFC 6120 §6.4.5).
	MaxFailures int `toml:"max_failures"`
	// FailureDelay is the per-source-address slowdown: the n-th recent failure from one address is answered
	// after n×FailureDelay, at most FailureDelayMax.
	FailureDelay    Duration `toml:"failure_delay"`
	FailureDelayMax Duration `toml:"failure_delay_max"`
}

// RegistrationConfig configures XEP-0077 in-band registration.
type RegistrationConfig struct {
	Allow             bool     `toml:"allow"`
	MinPasswordLength int      `toml:"min_password_length"`
	MaxPerIP          int      `toml:"max_per_ip"`
	Period            Duration `toml:"period"`
	ReservedUsernames []string `toml:"reserved_usernames"`
}

// RosterConfig bounds what one user can make the server hold or send for them.
type RosterConfig struct {
	MaxItems     int `toml:"max_items"`
	MaxPendingIn int `toml:"max_pending_in"`
	// StrangerSubscribesPerMinute limits subscription requests to contacts that do not already share a
	// subscription with the user (the spam vector of XEP-0205 §7), with a burst of StrangerSubscribeBurst.
	StrangerSubscribesPerMinute float64 `toml:"stranger_subscribes_per_minute"`
	StrangerSubscribeBurst      int     `toml:"stranger_subscribe_burst"`
}

// FeaturesConfig turns features of the registry off.
type FeaturesConfig struct {
	// Disable names registry features to turn off (actors/features.go: "carbons", "csi", "blocking", ...).
	Disable []string `toml:"disable"`
}

// ContactConfig is the XEP-0157 contact addresses, advertised as XEP-0128 extended disco#info (URIs:
// mailto:, xmpp:, https:).
type ContactConfig struct {
	Abuse    []string `toml:"abuse"`
	Admin    []string `toml:"admin"`
	Feedback []string `toml:"feedback"`
	Sales    []string `toml:"sales"`
	Security []string `toml:"security"`
	Status   []string `toml:"status"`
	Support  []string `toml:"support"`
}

// PEPConfig bounds what one account may keep in its XEP-0163 personal eventing service.
type PEPConfig struct {
	MaxNodes     int `toml:"max_nodes"`
	MaxItems     int `toml:"max_items"`
	MaxItemBytes int `toml:"max_item_bytes"`
}

// SMConfig configures XEP-0198 stream management.
type SMConfig struct {
	Enabled bool `toml:"enabled"`
	// ResumeTimeout is the longest a session waits for its client to resume (the client may ask for less).
	ResumeTimeout Duration `toml:"resume_timeout"`
	// RequestEvery: the server asks for an ack (<r/>) once this many stanzas are unacknowledged, and
	// RequestInterval after the first unacknowledged one at the latest.
	RequestEvery    int      `toml:"request_every"`
	RequestInterval Duration `toml:"request_interval"`
	// MaxUnacked stanzas a session keeps for its client; beyond it the client is not acknowledging and the
	// session ends (resource-constraint), its unacknowledged messages delivered again by RFC 6121 §8.5.
	MaxUnacked int `toml:"max_unacked"`
}

// SASL2Config configures XEP-0388 extensible SASL, with XEP-0386 Bind 2 and the inline XEP-0198 negotiation.
type SASL2Config struct {
	Enabled bool `toml:"enabled"`
}

// FastConfig configures XEP-0484 FAST tokens (offered only with SASL2 and on TLS).
type FastConfig struct {
	Enabled bool `toml:"enabled"`
	// TokenLifetime is how long a token is valid from its issue; once less than half of it is left, a login
	// with the token gets a new one (rotation).
	TokenLifetime Duration `toml:"token_lifetime"`
}

// PubSubConfig configures the standalone XEP-0060 publish-subscribe service.
type PubSubConfig struct {
	// Host is the service's domain; "{domain}" stands for the first served domain; "" disables the service.
	Host string `toml:"host"`
	// Create is who may create nodes: "local" (accounts of a served domain), "admins" or "anyone".
	Create       string `toml:"create"`
	MaxNodes     int    `toml:"max_nodes"`
	MaxItems     int    `toml:"max_items"`
	MaxItemBytes int    `toml:"max_item_bytes"`
}

// PushConfig configures XEP-0357 push notifications (the feature is named "push" in [features] disable).
type PushConfig struct {
	// IncludeSender / IncludeBody put the last message's sender and body into the notification's summary. Both
	// go through the app server's operator and the phone platform's push service (XEP-0357 §9), so both are off
	// by default.
	IncludeSender bool `toml:"include_sender"`
	IncludeBody   bool `toml:"include_body"`
	// ImportantOnly: push only for messages a person would want to be woken for (a body, an encrypted payload,
	// a call proposal); false pushes for every message but errors.
	ImportantOnly bool `toml:"important_only"`
	// MaxRegistrations per account (each device enables its own).
	MaxRegistrations int `toml:"max_registrations"`
}

// DomainPlaceholder in a service host key stands for the first served domain.
const DomainPlaceholder = "{domain}"

// ServiceHost is the domain a service host key names: DomainPlaceholder replaced by the first served domain;
// "" stays "" (the service is off).
func (c *Config) ServiceHost(key string) string {
	if key == "" || len(c.Domains) == 0 {
		return ""
	}
	return strings.ReplaceAll(key, DomainPlaceholder, c.Domains[0])
}

// validateService checks a service host key (name is the key's name for the message): a domainpart of its own,
// not one of the served domains (those are the accounts' domains), and not taken by another service.
func (c *Config) validateService(name, key string, taken map[string]string) error {
	host := c.ServiceHost(key)
	if host == "" {
		return nil
	}
	j, err := jid.Parse(host)
	if err != nil || j.Local() != "" || j.Resource() != "" || j.Domain() != host {
		return fmt.Errorf("config: %s %q is not a valid (canonical) domainpart", name, host)
	}
	if c.Serves(host) {
		return fmt.Errorf("config: %s %q is one of the served domains", name, host)
	}
	if other, ok := taken[host]; ok {
		return fmt.Errorf("config: %s and %s both name %q", name, other, host)
	}
	taken[host] = name
	return nil
}

// validatePubSub checks the [pubsub] keys.
func (c *Config) validatePubSub() error {
	p := &c.PubSub
	switch p.Create {
	case "local", "admins", "anyone":
	default:
		return fmt.Errorf("config: pubsub.create must be \"local\", \"admins\" or \"anyone\"")
	}
	if p.MaxNodes < 1 || p.MaxItems < 1 || p.MaxItemBytes < 1 {
		return fmt.Errorf("config: pubsub.max_nodes, pubsub.max_items and pubsub.max_item_bytes must be positive")
	}
	taken := map[string]string{}
	if err := c.validateService("pubsub.host", p.Host, taken); err != nil {
		return err
	}
	if err := c.validateService("upload.host", c.Upload.Host, taken); err != nil {
		return err
	}
	return c.validateService("proxy65.host", c.Proxy65.Host, taken)
}

// UploadConfig configures the XEP-0363 HTTP file upload service. The service is on when enabled and it has an
// HTTP side: its own listener (listen) until the server has a shared public HTTP listener.
type UploadConfig struct {
	Enabled bool   `toml:"enabled"`
	Host    string `toml:"host"`
	// Listen is the upload's own HTTP listener ("" none); BaseURL the scheme://host[:port]/path prefix of the
	// PUT and GET URLs ("" = http://<listen>/upload).
	Listen  string `toml:"listen"`
	BaseURL string `toml:"base_url"`
	// Dir holds the files ("" = <data_dir>/upload); Secret signs the PUT URLs ("" = generated at first start
	// and kept in <data_dir>/upload.secret).
	Dir    string `toml:"dir"`
	Secret string `toml:"secret"`
	// MaxFileSize is the largest file in bytes; QuotaPerUser the bytes one account may have stored at once and
	// DailyLimit the bytes it may request in 24 hours (0: no limit).
	MaxFileSize  int64 `toml:"max_file_size"`
	QuotaPerUser int64 `toml:"quota_per_user"`
	DailyLimit   int64 `toml:"daily_limit"`
	// SlotLifetime is how long a PUT URL is valid; ExpireAfter how long a file is kept (0: forever);
	// SweepInterval how often expired files are deleted.
	SlotLifetime  Duration `toml:"slot_lifetime"`
	ExpireAfter   Duration `toml:"expire_after"`
	SweepInterval Duration `toml:"sweep_interval"`
}

// UploadDir is where uploaded files are kept.
func (c *Config) UploadDir() string {
	if c.Upload.Dir != "" {
		return c.Upload.Dir
	}
	return filepath.Join(c.DataDir, "upload")
}

// Proxy65Config configures the XEP-0065 SOCKS5 bytestreams proxy. It is on when host and listen are set.
type Proxy65Config struct {
	Host   string `toml:"host"`
	Listen string `toml:"listen"`
	// Address is the host clients connect to, advertised in <streamhost host/> ("" = listen's host, or the
	// first domain when listen has none).
	Address string `toml:"address"`
	// MaxBytes caps one transfer (both directions together); Timeout bounds a transfer's whole life and
	// IdleTimeout a connection with no bytes moving (also how long a connected party waits for activation).
	MaxBytes    int64    `toml:"max_bytes"`
	Timeout     Duration `toml:"timeout"`
	IdleTimeout Duration `toml:"idle_timeout"`
}

// ExternalService is one XEP-0215 service (a STUN or TURN server).
type ExternalService struct {
	// Type is stun, stuns, turn or turns (XEP-0215 §4, the IANA URI schemes); Transport udp, tcp or "".
	Type      string `toml:"type"`
	Host      string `toml:"host"`
	Port      int    `toml:"port"`
	Transport string `toml:"transport"`
	Name      string `toml:"name"`
	// Secret is a TURN server's shared secret (coturn's static-auth-secret with use-auth-secret): the server
	// hands out time-limited credentials derived from it, valid for TTL (default 24h).
	Secret string   `toml:"secret"`
	TTL    Duration `toml:"ttl"`
}

// validateWeb checks [upload], [proxy65] and [[external_services]].
func (c *Config) validateWeb() error {
	u := &c.Upload
	if u.MaxFileSize < 1 || u.QuotaPerUser < 0 || u.DailyLimit < 0 {
		return fmt.Errorf("config: upload.max_file_size must be positive, upload.quota_per_user and upload.daily_limit not negative")
	}
	if u.SlotLifetime.Duration <= 0 || u.ExpireAfter.Duration < 0 || u.SweepInterval.Duration <= 0 {
		return fmt.Errorf("config: upload.slot_lifetime and upload.sweep_interval must be positive, upload.expire_after not negative")
	}
	if u.BaseURL != "" {
		p, err := url.Parse(u.BaseURL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return fmt.Errorf("config: upload.base_url %q must be an http(s) URL without query", u.BaseURL)
		}
	}
	if u.Listen != "" {
		if _, _, err := net.SplitHostPort(u.Listen); err != nil {
			return fmt.Errorf("config: upload.listen: %v", err)
		}
	}
	p := &c.Proxy65
	if p.Listen != "" {
		if _, _, err := net.SplitHostPort(p.Listen); err != nil {
			return fmt.Errorf("config: proxy65.listen: %v", err)
		}
	}
	if p.MaxBytes < 1 || p.Timeout.Duration <= 0 || p.IdleTimeout.Duration <= 0 {
		return fmt.Errorf("config: proxy65.max_bytes, proxy65.timeout and proxy65.idle_timeout must be positive")
	}
	for i := range c.ExternalServices {
		s := &c.ExternalServices[i]
		switch s.Type {
		case "stun", "stuns", "turn", "turns":
		default:
			return fmt.Errorf("config: external_services[%d]: type must be stun, stuns, turn or turns", i)
		}
		switch s.Transport {
		case "", "udp", "tcp":
		default:
			return fmt.Errorf("config: external_services[%d]: transport must be udp or tcp", i)
		}
		if s.Host == "" || s.Port < 0 || s.Port > 65535 {
			return fmt.Errorf("config: external_services[%d]: host is required and port must be 0..65535", i)
		}
		if s.Secret != "" && s.Type != "turn" && s.Type != "turns" {
			return fmt.Errorf("config: external_services[%d]: a secret is for TURN servers only", i)
		}
		if s.TTL.Duration < 0 {
			return fmt.Errorf("config: external_services[%d]: ttl must not be negative", i)
		}
		if s.TTL.Duration == 0 {
			s.TTL.Duration = 24 * time.Hour
		}
	}
	return nil
}

// MUCConfig configures the XEP-0045 multi-user chat service.
type MUCConfig struct {
	// Host is the service's domain; "{domain}" stands for the first served domain; "" disables the service.
	Host string `toml:"host"`
	// Create is who may create rooms: "local" (accounts of a served domain), "admins" or "anyone".
	Create string `toml:"create"`
	// Limits (each counted in xmppd_limit_hits_total when it refuses something).
	MaxRoomsPerUser   int     `toml:"max_rooms_per_user"`
	MaxOccupants      int     `toml:"max_occupants"`
	MessagesPerSecond float64 `toml:"messages_per_second"`
	MessageBurst      int     `toml:"message_burst"`
	MaxNickLength     int     `toml:"max_nick_length"`
	HistorySize       int     `toml:"history_size"`
	// Defaults is the configuration of a new room (the owner's form starts from it).
	Defaults MUCRoomDefaults `toml:"defaults"`
}

// MUCRoomDefaults is the configuration a new room starts with (XEP-0045 §10.1.2 instant rooms keep it).
type MUCRoomDefaults struct {
	Public        bool   `toml:"public"`
	Persistent    bool   `toml:"persistent"`
	MembersOnly   bool   `toml:"members_only"`
	Moderated     bool   `toml:"moderated"`
	WhoIs         string `toml:"whois"`
	MaxUsers      int    `toml:"max_users"`
	ChangeSubject bool   `toml:"change_subject"`
	AllowInvites  bool   `toml:"allow_invites"`
	AllowPM       string `toml:"allow_pm"`
	History       int    `toml:"history"`
	// Archive: the room keeps an XEP-0313 archive of its groupchat messages (muc#roomconfig_enablearchiving).
	Archive bool `toml:"archive"`
}

// validateMUC checks the [muc] keys; the host must differ from the other services'.
func (c *Config) validateMUC() error {
	m := &c.MUC
	switch m.Create {
	case "local", "admins", "anyone":
	default:
		return fmt.Errorf("config: muc.create must be \"local\", \"admins\" or \"anyone\"")
	}
	if m.MaxRoomsPerUser < 1 || m.MaxOccupants < 1 || m.MessagesPerSecond <= 0 || m.MessageBurst < 1 || m.MaxNickLength < 1 || m.HistorySize < 0 {
		return fmt.Errorf("config: muc.max_rooms_per_user, max_occupants, messages_per_second, message_burst and max_nick_length must be positive, history_size not negative")
	}
	d := &m.Defaults
	switch d.WhoIs {
	case "moderators", "anyone":
	default:
		return fmt.Errorf("config: muc.defaults.whois must be \"moderators\" or \"anyone\"")
	}
	switch d.AllowPM {
	case "anyone", "participants", "moderators", "none":
	default:
		return fmt.Errorf("config: muc.defaults.allow_pm must be \"anyone\", \"participants\", \"moderators\" or \"none\"")
	}
	if d.MaxUsers < 0 || d.History < 0 {
		return fmt.Errorf("config: muc.defaults.max_users and history must not be negative")
	}
	taken := map[string]string{}
	if h := c.ServiceHost(c.PubSub.Host); h != "" {
		taken[h] = "pubsub.host"
	}
	return c.validateService("muc.host", m.Host, taken)
}

// MAMConfig configures the accounts' XEP-0313 message archives.
type MAMConfig struct {
	Enabled bool `toml:"enabled"`
	// Default is the archiving preference of a user who never set one: "always", "roster" or "never".
	Default string `toml:"default"`
	// RetentionDays: messages older than this are deleted (0: kept until the quota drops them).
	RetentionDays int `toml:"retention_days"`
	// MaxMessages a user's archive keeps; the oldest go first (0: no limit).
	MaxMessages int `toml:"max_messages"`
	// MaxPage is the most messages one query returns (a larger RSM <max/> is lowered to it).
	MaxPage int `toml:"max_page"`
}

// validateMAM checks the [mam] keys.
func (c *Config) validateMAM() error {
	m := &c.MAM
	switch m.Default {
	case "always", "roster", "never":
	default:
		return fmt.Errorf("config: mam.default must be \"always\", \"roster\" or \"never\"")
	}
	if m.RetentionDays < 0 || m.MaxMessages < 0 || m.MaxPage < 1 {
		return fmt.Errorf("config: mam.retention_days and mam.max_messages must not be negative, mam.max_page must be positive")
	}
	return nil
}

// VCardConfig configures XEP-0054 vcard-temp.
type VCardConfig struct {
	MaxSize int    `toml:"max_size"` // bytes of one stored vCard
	Access  string `toml:"access"`   // who may read another user's vCard: "everyone" or "contacts"
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
func Default() Config {
	return Config{
		Domains: []string{"localhost"},
		DataDir: "data",
		TLS:     TLSConfig{PostQuantum: true},
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

			PreAuthMaxElements:  32,
			MaxConnections:      50000,
			MaxConnectionsPerIP: 100,
			ConnectRatePerIP:    10,
			ConnectBurstPerIP:   50,
			LimitsExempt:        []string{"127.0.0.0/8", "::1/128"},
			ReadRate:            262144,
			ReadBurst:           1 << 20,
		},
		Storage: StorageConfig{Driver: "sqlite", PoolSize: 8},
		Cluster: defaultCluster(),
		Auth: AuthConfig{ScramIterations: 10000, AllowPlain: true, MaxFailures: 3,
			FailureDelay: Duration{time.Second}, FailureDelayMax: Duration{10 * time.Second}},
		Registration: RegistrationConfig{MinPasswordLength: 8, MaxPerIP: 5, Period: Duration{time.Hour},
			ReservedUsernames: []string{"admin", "administrator", "root", "hostmaster", "postmaster", "webmaster",
				"abuse", "security", "support", "noreply", "xmpp", "info"}},
		Offline: OfflineConfig{MaxMessages: 1000},
		VCard:   VCardConfig{MaxSize: 65536, Access: "everyone"},
		PEP:     PEPConfig{MaxNodes: 1000, MaxItems: 1000, MaxItemBytes: 262144},
		SM: SMConfig{Enabled: true, ResumeTimeout: Duration{5 * time.Minute}, RequestEvery: 5,
			RequestInterval: Duration{30 * time.Second}, MaxUnacked: 1000},
		SASL2: SASL2Config{Enabled: true},
		Fast:  FastConfig{Enabled: true, TokenLifetime: Duration{30 * 24 * time.Hour}},
		PubSub: PubSubConfig{Host: "pubsub." + DomainPlaceholder, Create: "local", MaxNodes: 10000, MaxItems: 1000,
			MaxItemBytes: 262144},
		Push: PushConfig{ImportantOnly: true, MaxRegistrations: 10},
		S2S:  defaultS2S(),
		MUC: MUCConfig{Host: "conference." + DomainPlaceholder, Create: "local", MaxRoomsPerUser: 100,
			MaxOccupants: 1000, MessagesPerSecond: 5, MessageBurst: 20, MaxNickLength: 64, HistorySize: 50,
			Defaults: MUCRoomDefaults{Public: true, WhoIs: "moderators", ChangeSubject: true, AllowPM: "anyone",
				History: 20, Archive: true}},
		MAM: MAMConfig{Enabled: true, Default: "always", RetentionDays: 0, MaxMessages: 100000, MaxPage: 100},
		Upload: UploadConfig{Enabled: true, Host: "upload." + DomainPlaceholder, MaxFileSize: 100 << 20,
			QuotaPerUser: 1 << 30, DailyLimit: 1 << 30, SlotLifetime: Duration{5 * time.Minute},
			ExpireAfter: Duration{30 * 24 * time.Hour}, SweepInterval: Duration{time.Minute}},
		Proxy65: Proxy65Config{Host: "proxy." + DomainPlaceholder, Listen: ":7777", MaxBytes: 1 << 30,
			Timeout: Duration{time.Hour}, IdleTimeout: Duration{time.Minute}},
		// Empty, not nil: what config.toml's "= []" decodes to.
		Features: FeaturesConfig{Disable: []string{}},
		Contact: ContactConfig{Abuse: []string{}, Admin: []string{}, Feedback: []string{}, Sales: []string{},
			Security: []string{}, Status: []string{}, Support: []string{}},
		Roster: RosterConfig{MaxItems: 1000, MaxPendingIn: 100, StrangerSubscribesPerMinute: 10,
			StrangerSubscribeBurst: 30},
		HTTP:  defaultHTTP(),
		Debug: DebugConfig{Listen: "127.0.0.1:5280"},
		Log:   LogConfig{Level: "info", Format: "console"},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are an error: a typo must not silently fall back to
// a default.
func Load(path string) (Config, error) {
	cfg := Default()
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
	if c.PEP.MaxNodes < 1 || c.PEP.MaxItems < 1 || c.PEP.MaxItemBytes < 1 {
		return fmt.Errorf("config: pep.max_nodes, pep.max_items and pep.max_item_bytes must be positive")
	}
	if err := c.validateVCard(); err != nil {
		return err
	}
	if c.SM.ResumeTimeout.Duration < 0 || c.SM.RequestEvery < 1 || c.SM.RequestInterval.Duration <= 0 || c.SM.MaxUnacked < 1 {
		return fmt.Errorf("config: stream_management: resume_timeout must not be negative; request_every, request_interval and max_unacked must be positive")
	}
	if c.Fast.TokenLifetime.Duration < time.Second {
		return fmt.Errorf("config: fast.token_lifetime must be at least a second")
	}
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
	if c.Push.MaxRegistrations < 1 {
		return fmt.Errorf("config: push.max_registrations must be positive")
	}
	if err := c.validatePubSub(); err != nil {
		return err
	}
	if err := c.validateS2S(); err != nil {
		return err
	}
	if err := c.validateMUC(); err != nil {
		return err
	}
	if err := c.validateMAM(); err != nil {
		return err
	}
	if err := c.validateWeb(); err != nil {
		return err
	}
	if err := c.validateHTTP(); err != nil {
		return err
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
	if err := c.validateLimits(); err != nil {
		return err
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
	case "postgres":
		if c.Storage.DSN == "" {
			return fmt.Errorf("config: storage.dsn is required with storage.driver = \"postgres\"")
		}
	default:
		return fmt.Errorf("config: storage.driver %q is not supported (sqlite, postgres)", c.Storage.Driver)
	}
	if c.Storage.PoolSize < 1 {
		return fmt.Errorf("config: storage.pool_size must be at least 1")
	}
	if err := c.validateCluster(); err != nil {
		return err
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

// DBPath is the SQLite file (driver "sqlite").
func (c *Config) DBPath() string {
	if c.Storage.DSN != "" {
		return c.Storage.DSN
	}
	return filepath.Join(c.DataDir, "xmppd.db")
}

// validateLimits checks the hardening keys. Negative values are always a mistake; 0 disables the limits whose
// documentation says so.
func (c *Config) validateLimits() error {
	cc := &c.C2S
	for _, v := range []struct {
		key string
		n   float64
	}{
		{"c2s.pre_auth_max_elements", float64(cc.PreAuthMaxElements)}, {"c2s.max_connections", float64(cc.MaxConnections)},
		{"c2s.max_connections_per_ip", float64(cc.MaxConnectionsPerIP)}, {"c2s.connect_rate_per_ip", cc.ConnectRatePerIP},
		{"c2s.connect_burst_per_ip", float64(cc.ConnectBurstPerIP)}, {"c2s.read_rate", float64(cc.ReadRate)},
		{"c2s.read_burst", float64(cc.ReadBurst)}, {"auth.max_failures", float64(c.Auth.MaxFailures)},
		{"registration.max_per_ip", float64(c.Registration.MaxPerIP)}, {"roster.max_items", float64(c.Roster.MaxItems)},
		{"roster.max_pending_in", float64(c.Roster.MaxPendingIn)},
		{"roster.stranger_subscribes_per_minute", c.Roster.StrangerSubscribesPerMinute},
		{"roster.stranger_subscribe_burst", float64(c.Roster.StrangerSubscribeBurst)},
	} {
		if v.n < 0 || v.n != v.n {
			return fmt.Errorf("config: %s must not be negative", v.key)
		}
	}
	if cc.NegotiationTimeout.Duration <= 0 || cc.IdleTimeout.Duration <= 0 {
		return fmt.Errorf("config: c2s.negotiation_timeout and c2s.idle_timeout must be positive")
	}
	if c.Auth.FailureDelay.Duration < 0 || c.Auth.FailureDelayMax.Duration < c.Auth.FailureDelay.Duration {
		return fmt.Errorf("config: auth.failure_delay must be >= 0 and auth.failure_delay_max >= auth.failure_delay")
	}
	if c.Auth.MaxFailures == 0 || c.Auth.MaxFailures > 10 {
		// RFC 6120 §6.4.5: a configurable but reasonable number of retries.
		return fmt.Errorf("config: auth.max_failures must be from 1 to 10 (RFC 6120 §6.4.5)")
	}
	if c.Registration.MaxPerIP > 0 && c.Registration.Period.Duration <= 0 {
		return fmt.Errorf("config: registration.period must be positive")
	}
	if cc.ConnectRatePerIP > 0 && cc.ConnectBurstPerIP < 1 {
		return fmt.Errorf("config: c2s.connect_burst_per_ip must be at least 1 when connect_rate_per_ip is set")
	}
	if _, err := ParseExempt(cc.LimitsExempt); err != nil {
		return fmt.Errorf("config: c2s.limits_exempt: %v", err)
	}
	if cc.ReadRate > 0 && cc.ReadBurst < cc.MaxStanzaSize {
		// The largest stanza must fit the bucket, or a client sending one would never get it through.
		cc.ReadBurst = cc.MaxStanzaSize
	}
	for i, u := range c.Registration.ReservedUsernames {
		c.Registration.ReservedUsernames[i] = strings.ToLower(u)
	}
	return nil
}

// validateVCard checks the [vcard] keys.
func (c *Config) validateVCard() error {
	switch c.VCard.Access {
	case "everyone", "contacts":
	default:
		return fmt.Errorf("config: vcard.access must be \"everyone\" or \"contacts\"")
	}
	if c.VCard.MaxSize < 0 {
		return fmt.Errorf("config: vcard.max_size must not be negative")
	}
	return nil
}

// ExemptSet is the parsed c2s.limits_exempt.
type ExemptSet []netip.Prefix

// ParseExempt parses a list of addresses and prefixes.
func ParseExempt(list []string) (ExemptSet, error) {
	var out ExemptSet
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, err
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Contains reports whether a is exempt.
func (e ExemptSet) Contains(a netip.Addr) bool {
	for _, p := range e {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// NewLogger builds the zerolog logger the [log] keys ask for.
func NewLogger(cfg LogConfig, w io.Writer) zerolog.Logger {
	if w == nil {
		w = os.Stderr
	}
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	lvl, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
