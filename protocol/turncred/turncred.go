// Package turncred derives time-limited TURN credentials from a secret shared with the TURN server: the "TURN
// REST API" scheme (draft-uberti-behave-turn-rest-00 §2.2) that coturn implements as use-auth-secret with
// static-auth-secret, and that XEP-0215 §3.2 hands to clients.
//
//	username = <expiry as Unix seconds>[:<user id>]
//	password = base64(HMAC-SHA1(secret, username))
//
// The TURN server recomputes the password from the username and rejects it once the timestamp has passed.
package turncred

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Password is base64(HMAC-SHA1(secret, username)) (standard encoding with padding, as coturn computes it).
func Password(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Credentials are a username and password valid until Expires.
type Credentials struct {
	Username, Password string
	Expires            time.Time
}

// New derives credentials for user ("" for none) valid for ttl from now (whole seconds).
func New(secret, user string, now time.Time, ttl time.Duration) Credentials {
	exp := now.Add(ttl).Truncate(time.Second)
	u := strconv.FormatInt(exp.Unix(), 10)
	if user != "" {
		u += ":" + user
	}
	return Credentials{Username: u, Password: Password(secret, u), Expires: exp}
}

// Errors of Verify.
var (
	ErrMalformed = errors.New("turncred: username has no expiry timestamp")
	ErrExpired   = errors.New("turncred: credentials expired")
	ErrPassword  = errors.New("turncred: wrong password")
)

// Verify checks credentials as the TURN server does: the username's timestamp not passed at now and the
// password its HMAC. It returns the user id part ("" when the username has none).
func Verify(secret, username, password string, now time.Time) (user string, err error) {
	ts, user, _ := strings.Cut(username, ":")
	if ts == "" || len(ts) > 19 || strings.TrimLeft(ts, "0123456789") != "" {
		return "", ErrMalformed
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", ErrMalformed
	}
	if !hmac.Equal([]byte(password), []byte(Password(secret, username))) {
		return "", ErrPassword
	}
	if now.Unix() >= exp {
		return "", ErrExpired
	}
	return user, nil
}
