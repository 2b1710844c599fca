package turncred

import (
	"errors"
	"testing"
	"time"
)

func TestPasswordKnownAnswer(t *testing.T) {
	// RFC 2202 §3 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?") =
	// effcdf6ae5eb2fa2d27416d5f184df9c259a7c79, here base64-encoded.
	if got := Password("Jefe", "what do ya want for nothing?"); got != "7/zfauXrL6LSdBbV8YTfnCWafHk=" {
		t.Fatalf("Password = %s", got)
	}
}

func TestNewVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 500)
	c := New("s3cret", "alice@localhost", now, time.Hour)
	if c.Username != "1700003600:alice@localhost" || !c.Expires.Equal(time.Unix(1_700_003_600, 0)) {
		t.Fatalf("New = %+v", c)
	}
	anon := New("s3cret", "", now, time.Minute)
	cases := []struct {
		name, secret, user, pass string
		at                       time.Time
		wantUser                 string
		err                      error
	}{
		{"ok", "s3cret", c.Username, c.Password, now, "alice@localhost", nil},
		{"no user part", "s3cret", anon.Username, anon.Password, now, "", nil},
		{"expired", "s3cret", c.Username, c.Password, c.Expires, "", ErrExpired},
		{"other secret", "other", c.Username, c.Password, now, "", ErrPassword},
		{"username changed", "s3cret", "1800000000:alice@localhost", c.Password, now, "", ErrPassword},
		{"no timestamp", "s3cret", "alice", c.Password, now, "", ErrMalformed},
		{"negative", "s3cret", "-1:alice", c.Password, now, "", ErrMalformed},
		{"empty", "s3cret", "", "", now, "", ErrMalformed},
	}
	for _, tc := range cases {
		u, err := Verify(tc.secret, tc.user, tc.pass, tc.at)
		if !errors.Is(err, tc.err) || u != tc.wantUser {
			t.Errorf("%s: Verify = %q, %v; want %q, %v", tc.name, u, err, tc.wantUser, tc.err)
		}
	}
}
