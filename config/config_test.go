package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The repository's config.toml documents every key with its default: loading it must give DefaultConfig.
func TestConfigTomlIsTheDefault(t *testing.T) {
	got, err := Load(filepath.Join("..", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	got.DataDir, want.DataDir = "", ""
	if len(got.Admins) == 0 && len(want.Admins) == 0 {
		got.Admins, want.Admins = nil, nil // admins = [] vs no admins
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.toml differs from DefaultConfig:\n got %+v\nwant %+v", got, want)
	}
}

func TestConfigLimitValidation(t *testing.T) {
	for _, tc := range []struct{ toml, err string }{
		{"[auth]\nmax_failures = 0\n", "auth.max_failures"},
		{"[auth]\nmax_failures = 11\n", "auth.max_failures"},
		{"[c2s]\nmax_connections_per_ip = -1\n", "must not be negative"},
		{"[c2s]\nlimits_exempt = [\"nonsense\"]\n", "limits_exempt"},
		{"[auth]\nfailure_delay = \"5s\"\nfailure_delay_max = \"1s\"\n", "failure_delay_max"},
		{"[registration]\nperiod = \"0s\"\n", "registration.period"},
		{"[c2s]\nconnect_burst_per_ip = 0\n", "connect_burst_per_ip"},
		{"[c2s]\nidle_timeout = \"0s\"\n", "idle_timeout"},
		{"[pubsub]\ncreate = \"everyone\"\n", "pubsub.create"},
		{"[fast]\ntoken_lifetime = \"0s\"\n", "fast.token_lifetime"},
		{"[pubsub]\nmax_items = 0\n", "pubsub.max_nodes"},
		{"[pubsub]\nhost = \"{domain}\"\n", "served domains"},
		{"[pubsub]\nhost = \"user@pubsub.localhost\"\n", "domainpart"},
		{"[pubsub]\nhost = \"PubSub.localhost\"\n", "canonical"},
		{"[muc]\ncreate = \"everyone\"\n", "muc.create"},
		{"[muc]\nmax_nick_length = 0\n", "max_nick_length"},
		{"[muc]\nmessages_per_second = 0.0\n", "messages_per_second"},
		{"[muc]\nhost = \"pubsub.{domain}\"\n", "both name"},
		{"[muc]\nhost = \"{domain}\"\n", "served domains"},
		{"[muc.defaults]\nwhois = \"nobody\"\n", "muc.defaults.whois"},
		{"[muc.defaults]\nallow_pm = \"all\"\n", "muc.defaults.allow_pm"},
		{"[mam]\ndefault = \"sometimes\"\n", "mam.default"},
		{"[mam]\nmax_page = 0\n", "mam.max_page"},
		{"[mam]\nretention_days = -1\n", "mam.retention_days"},
		{"[storage]\ndriver = \"postgres\"\n", "storage.dsn is required"},
		{"[storage]\ndriver = \"postgres\"\ndsn = \"host=db\"\npool_size = 0\n", "storage.pool_size"},
		{"[storage]\ndriver = \"mysql\"\n", "sqlite, postgres"},
	} {
		_, err := Load(writeTemp(t, tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err = %v, want one mentioning %s", tc.toml, err, tc.err)
		}
	}
	cfg, err := Load(writeTemp(t, "[c2s]\nmax_stanza_size = 2000000\nwrite_queue_bytes = 2000000\nlimits_exempt = [\"10.0.0.1\", \"2001:db8::/32\"]\n[registration]\nreserved_usernames = [\"Boss\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.C2S.ReadBurst != 2000000 {
		t.Errorf("read_burst = %d, want it raised to max_stanza_size", cfg.C2S.ReadBurst)
	}
	if cfg.Registration.ReservedUsernames[0] != "boss" {
		t.Errorf("reserved usernames are not lower-cased: %v", cfg.Registration.ReservedUsernames)
	}
}

func writeTemp(t testing.TB, s string) string {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzLoadConfig: any file either loads into a configuration that passes Validate again (idempotent) or is
// refused with an error; never a panic.
func FuzzLoad(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("..", "config.toml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("domains = [\"example.org\"]\n[c2s]\nmax_connections_per_ip = 3\nlimits_exempt = []\n")
	f.Add("[auth]\nfailure_delay = \"100ms\"\nfailure_delay_max = \"1h\"\n")
	f.Add("[c2s]\nread_rate = 1\nread_burst = 0\n")
	f.Add("[debug]\nlisten = \"0.0.0.0:5280\"\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("a loaded config fails Validate again: %v", err)
		}
		if len(cfg.Domains) == 0 || cfg.C2S.PreAuthStanzaSize <= 0 || cfg.C2S.PreAuthStanzaSize > cfg.C2S.MaxStanzaSize {
			t.Fatalf("invariants broken: %+v", cfg.C2S)
		}
		if cfg.C2S.ReadRate > 0 && cfg.C2S.ReadBurst < cfg.C2S.MaxStanzaSize {
			t.Fatalf("read_burst %d below max_stanza_size %d", cfg.C2S.ReadBurst, cfg.C2S.MaxStanzaSize)
		}
	})
}

func TestServiceHost(t *testing.T) {
	cfg, err := Load(writeTemp(t, "domains = [\"example.org\", \"example.net\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.ServiceHost(cfg.PubSub.Host); h != "pubsub.example.org" {
		t.Errorf("default pubsub host = %q, want pubsub.example.org (the first domain)", h)
	}
	if h := cfg.ServiceHost(cfg.MUC.Host); h != "conference.example.org" {
		t.Errorf("default muc host = %q, want conference.example.org", h)
	}
	cfg, err = Load(writeTemp(t, "[pubsub]\nhost = \"\"\n"))
	if err != nil || cfg.ServiceHost(cfg.PubSub.Host) != "" {
		t.Errorf("host = \"\": %q, %v; want the service off", cfg.ServiceHost(cfg.PubSub.Host), err)
	}
	cfg, err = Load(writeTemp(t, "[pubsub]\nhost = \"events.example.com\"\n"))
	if err != nil || cfg.ServiceHost(cfg.PubSub.Host) != "events.example.com" {
		t.Errorf("explicit host: %q, %v", cfg.ServiceHost(cfg.PubSub.Host), err)
	}
}
