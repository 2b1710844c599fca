// Package accounts creates accounts and changes their credentials: the operator's CLI, in-band registration
// (XEP-0077) and the admin commands (XEP-0133) all go through it. Credentials are stored only as SCRAM keys.
package accounts

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/storage"
)

// Operator-side account management, used by `xmppd user …` against the same storage a running server uses
// (SQLite serialises the writers of both processes).

// ParseAccount prepares a bare account JID and checks that its domain is served.
func ParseAccount(cfg *config.Config, s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%q is not a valid JID: %v", s, err)
	}
	if j.Local() == "" || j.Resource() != "" {
		return jid.JID{}, fmt.Errorf("%q is not a bare account JID (user@domain)", s)
	}
	if !cfg.Serves(j.Domain()) {
		return jid.JID{}, fmt.Errorf("domain %q is not served (domains = %v)", j.Domain(), cfg.Domains)
	}
	return j, nil
}

// AddUser creates an account with SCRAM credentials for every supported hash.
func AddUser(ctx context.Context, cfg *config.Config, store storage.Store, account jid.JID, password string) error {
	if password == "" {
		return fmt.Errorf("the password must not be empty")
	}
	creds, err := StoredCredentials(password, cfg.Auth.ScramIterations)
	if err != nil {
		return err
	}
	return store.CreateAccount(ctx, account.String(), creds)
}

// SetPassword replaces an account's credentials.
func SetPassword(ctx context.Context, cfg *config.Config, store storage.Store, account jid.JID, password string) error {
	if password == "" {
		return fmt.Errorf("the password must not be empty")
	}
	creds, err := StoredCredentials(password, cfg.Auth.ScramIterations)
	if err != nil {
		return err
	}
	return store.SetCredentials(ctx, account.String(), creds)
}

// StoredCredentials derives SCRAM credentials for every hash we offer (so enabling a mechanism later never locks
// anyone out) in the storage form.
func StoredCredentials(password string, iterations int) ([]storage.Credential, error) {
	creds, err := sasl.NewCredentials(password, iterations, rand.Reader)
	if err != nil {
		return nil, err
	}
	out := make([]storage.Credential, len(creds))
	for i, c := range creds {
		out[i] = storage.Credential{Hash: c.Hash.String(), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	return out, nil
}

// PasswordRule is the text that tells a user why a password was refused (XEP-0077 registration and password
// change answer not-acceptable with it).
func PasswordRule(minLength int) string {
	return "the password must be at least " + strconv.Itoa(max(minLength, 1)) + " characters long"
}
