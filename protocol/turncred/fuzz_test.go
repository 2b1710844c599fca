package turncred

import (
	"testing"
	"time"
)

// FuzzVerify: Verify never panics, accepts only what New could have made, and New's output always verifies.
func FuzzVerify(f *testing.F) {
	f.Add("secret", "1700003600:alice@localhost", "x", int64(3600))
	f.Add("", "", "", int64(0))
	f.Add("k", "99999999999999999999:u", "=", int64(-5))
	f.Fuzz(func(t *testing.T, secret, username, password string, ttl int64) {
		now := time.Unix(1_700_000_000, 0)
		if _, err := Verify(secret, username, password, now); err == nil && password != Password(secret, username) {
			t.Fatalf("accepted a wrong password for %q", username)
		}
		if ttl > 0 && ttl < 1<<32 {
			c := New(secret, "u", now, time.Duration(ttl)*time.Second)
			if u, err := Verify(secret, c.Username, c.Password, now); err != nil || u != "u" {
				t.Fatalf("New's credentials do not verify: %v", err)
			}
		}
	})
}
