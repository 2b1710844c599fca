package actors

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/storage"
)

// Operator-side account management, used by `xmppd user …` against the same storage a running server uses
// (SQLite serialises the writers of both processes).

// ParseAccount prepares a bare account JID and checks that its domain is served.
func ParseAccount(cfg *Config, s string) (jid.JID, error) {
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
func AddUser(ctx context.Context, cfg *Config, store storage.Store, account jid.JID, password string) error {
	if password == "" {
		return fmt.Errorf("the password must not be empty")
	}
	creds, err := storedCredentials(password, cfg.Auth.ScramIterations)
	if err != nil {
		return err
	}
	return store.CreateAccount(ctx, account.String(), creds)
}

// SetPassword replaces an account's credentials.
func SetPassword(ctx context.Context, cfg *Config, store storage.Store, account jid.JID, password string) error {
	if password == "" {
		return fmt.Errorf("the password must not be empty")
	}
	creds, err := storedCredentials(password, cfg.Auth.ScramIterations)
	if err != nil {
		return err
	}
	return store.SetCredentials(ctx, account.String(), creds)
}

// NewLogger builds the zerolog logger the configuration asks for.
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
