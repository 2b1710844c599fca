package sasl

import (
	"slices"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, tc := range []Mechanism{
		{Name: "SCRAM-SHA-1", Hash: SHA1},
		{Name: "SCRAM-SHA-1-PLUS", Hash: SHA1, Plus: true},
		{Name: "SCRAM-SHA-256", Hash: SHA256},
		{Name: "SCRAM-SHA-256-PLUS", Hash: SHA256, Plus: true},
		{Name: "SCRAM-SHA-512", Hash: SHA512},
		{Name: "SCRAM-SHA-512-PLUS", Hash: SHA512, Plus: true},
		{Name: "PLAIN", Plain: true},
	} {
		m, ok := Lookup(tc.Name)
		if !ok || m != tc {
			t.Errorf("Lookup(%q) = %+v, %v", tc.Name, m, ok)
		}
	}
	for _, n := range []string{"", "plain", "SCRAM-SHA-384", "DIGEST-MD5", "ANONYMOUS", "EXTERNAL"} {
		if _, ok := Lookup(n); ok {
			t.Errorf("Lookup(%q) succeeded", n)
		}
	}
}

func TestOffered(t *testing.T) {
	for _, tc := range []struct {
		cb    []string
		plain bool
		want  []string
	}{
		{nil, false, []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}},
		{nil, true, []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}},
		{[]string{CBTLSExporter}, true, []string{"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS",
			"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}},
	} {
		if got := Offered(tc.cb, tc.plain); !slices.Equal(got, tc.want) {
			t.Errorf("Offered(%v, %v) = %v", tc.cb, tc.plain, got)
		}
	}
	for _, n := range Offered([]string{"x"}, true) {
		if _, ok := Lookup(n); !ok {
			t.Errorf("offered %q cannot be looked up", n)
		}
	}
}

func TestChannelBindingTypes(t *testing.T) {
	for _, tc := range []struct {
		cb   ChannelBinding
		want []string
	}{
		{ChannelBinding{}, nil},
		{ChannelBinding{Exporter: []byte{1}}, []string{CBTLSExporter}},
		{ChannelBinding{EndPoint: []byte{1}}, []string{CBTLSServerEndPoint}},
		{ChannelBinding{Exporter: []byte{1}, EndPoint: []byte{1}}, []string{CBTLSExporter, CBTLSServerEndPoint}},
		{ChannelBinding{Unique: []byte{1}}, []string{CBTLSUnique}},
		{ChannelBinding{Exporter: []byte{1}, Unique: []byte{1}, EndPoint: []byte{1}}, []string{CBTLSExporter, CBTLSUnique, CBTLSServerEndPoint}},
	} {
		if got := tc.cb.Types(); !slices.Equal(got, tc.want) {
			t.Errorf("Types() = %v, want %v", got, tc.want)
		}
	}
}
