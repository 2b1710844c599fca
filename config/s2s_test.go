package config

import (
	"strings"
	"testing"
)

func TestS2SValidation(t *testing.T) {
	for _, tc := range []struct{ toml, err string }{
		{"[s2s]\nlisten = \"nonsense\"\n", "s2s.listen"},
		{"[s2s]\nconnect_timeout = \"0s\"\n", "s2s.connect_timeout"},
		{"[s2s]\nmax_queue = 0\n", "max_queue"},
		{"[s2s.routes]\n\"a@b.example\" = \"127.0.0.1:5269\"\n", "not a domain"},
		{"[s2s.routes]\n\"b.example\" = \"127.0.0.1\"\n", "s2s.routes"},
		{"[s2s.routes]\n\"localhost\" = \"127.0.0.1:5269\"\n", "served here"},
	} {
		_, err := Load(writeTemp(t, tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err = %v, want one mentioning %s", tc.toml, err, tc.err)
		}
	}
	cfg, err := Load(writeTemp(t, "[s2s]\nlisten = \":5269\"\n[s2s.routes]\n\"B.Example\" = \"127.0.0.1:15269\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Federates() || cfg.S2S.Routes["b.example"] != "127.0.0.1:15269" {
		t.Errorf("federates %v, routes %v (want the canonical domain)", cfg.Federates(), cfg.S2S.Routes)
	}
	if d := Default(); d.Federates() {
		t.Error("the embedded default federates: it must open no s2s port")
	}
}
