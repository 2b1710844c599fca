package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/storage"
)

// Disabled accounts (XEP-0133 §4.3 disable-user, §4.4 reenable-user): an account that keeps its data but may not
// log in. The mark is a KV entry of the account itself (owner = the bare JID), so that deleting the account
// removes it in the same transaction as the rest of the account's data (storage.Accounts.DeleteAccount), and
// an account created again under the same name starts enabled.

const (
	// DisabledNamespace is the KV namespace of the mark.
	DisabledNamespace = "urn:xmppd:disabled"
	// disabledKey holds the reason (possibly empty) the account was disabled for.
	disabledKey = "reason"
)

// Disable marks an existing account as disabled, with a reason for the operator (it may be empty).
// storage.ErrNotFound if there is no such account. Disabling a disabled account replaces the reason.
func Disable(ctx context.Context, store storage.Store, bare jid.JID, reason string) error {
	b := bare.Bare().String()
	if _, err := store.Credentials(ctx, b); err != nil {
		return fmt.Errorf("disable %s: %w", b, err)
	}
	return store.PutKV(ctx, b, DisabledNamespace, disabledKey, reason)
}

// Enable lifts the mark; enabling an account that is not disabled (or does not exist) is no error.
func Enable(ctx context.Context, store storage.Store, bare jid.JID) error {
	return store.DeleteKV(ctx, bare.Bare().String(), DisabledNamespace, disabledKey)
}

// IsDisabled reports whether the account is disabled.
func IsDisabled(ctx context.Context, store storage.Store, bare jid.JID) (bool, error) {
	_, disabled, err := DisabledReason(ctx, store, bare)
	return disabled, err
}

// DisabledReason is IsDisabled with the reason given to Disable (for a log line, or the text of a refused login).
func DisabledReason(ctx context.Context, store storage.Store, bare jid.JID) (reason string, disabled bool, err error) {
	reason, err = store.GetKV(ctx, bare.Bare().String(), DisabledNamespace, disabledKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return reason, true, nil
}

// ListDisabled returns the disabled accounts of domain ("" for all), sorted like ListAccounts. It reads one KV
// entry per account, which is fine for an admin command but not for a hot path.
func ListDisabled(ctx context.Context, store storage.Store, domain string) ([]string, error) {
	all, err := store.ListAccounts(ctx, domain)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range all {
		if _, err := store.GetKV(ctx, a, DisabledNamespace, disabledKey); err == nil {
			out = append(out, a)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	return out, nil
}
