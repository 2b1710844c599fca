package storage

import (
	"errors"
	"reflect"
	"testing"
)

func TestAccountDomain(t *testing.T) {
	for _, tc := range []struct {
		bare, domain string
		ok           bool
	}{
		{"juliet@example.com", "example.com", true},
		{"ju@liet@example.com", "liet@example.com", true}, // split at the first '@'; JID preparation rejects this earlier
		{"juliet@例え.jp", "例え.jp", true},
		{"example.com", "", false},
		{"@example.com", "", false},
		{"juliet@", "", false},
		{"juliet@example.com/balcony", "", false},
		{"", "", false},
	} {
		d, err := AccountDomain(tc.bare)
		if tc.ok != (err == nil) || d != tc.domain {
			t.Errorf("AccountDomain(%q) = %q, %v; want %q, ok=%v", tc.bare, d, err, tc.domain, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("AccountDomain(%q) error %v is not ErrInvalid", tc.bare, err)
		}
	}
}

func TestCheckCredentials(t *testing.T) {
	ok := Credential{Hash: "SHA-1", Iterations: 4096}
	ok2 := Credential{Hash: "SHA-256", Iterations: 4096}
	for _, tc := range []struct {
		name  string
		creds []Credential
		valid bool
	}{
		{"none", nil, true},
		{"two hashes", []Credential{ok, ok2}, true},
		{"duplicate", []Credential{ok, ok2, ok}, false},
		{"empty hash", []Credential{{Iterations: 1}}, false},
		{"zero iterations", []Credential{{Hash: "SHA-1"}}, false},
		{"negative iterations", []Credential{{Hash: "SHA-1", Iterations: -1}}, false},
	} {
		err := CheckCredentials(tc.creds)
		if tc.valid != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: CheckCredentials = %v, want valid=%v", tc.name, err, tc.valid)
		}
	}
}

func TestNormalizeRosterItem(t *testing.T) {
	for _, tc := range []struct {
		in, want RosterItem
		valid    bool
	}{
		{RosterItem{JID: "a@b"}, RosterItem{JID: "a@b", Subscription: "none"}, true},
		{RosterItem{JID: "a@b", Subscription: "both", Groups: []string{}}, RosterItem{JID: "a@b", Subscription: "both"}, true},
		{RosterItem{JID: "a@b", Subscription: "to", Groups: []string{"x"}}, RosterItem{JID: "a@b", Subscription: "to", Groups: []string{"x"}}, true},
		{RosterItem{JID: "a@b", Subscription: "remove"}, RosterItem{}, false},
		{RosterItem{Subscription: "none"}, RosterItem{}, false},
	} {
		got, err := NormalizeRosterItem(tc.in)
		if tc.valid != (err == nil) {
			t.Errorf("NormalizeRosterItem(%+v) error %v, want valid=%v", tc.in, err, tc.valid)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("NormalizeRosterItem(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
