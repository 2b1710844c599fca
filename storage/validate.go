package storage

import (
	"fmt"
	"strings"
)

// The checks below are shared by all engines so that they reject exactly the
// same arguments; the contract suite relies on that.

// AccountDomain returns the domain part of a bare JID "local@domain". It
// splits at the first '@' because a localpart cannot contain one
// (RFC 7622 §3.3.1). ErrInvalid if either part is empty or there is a
// resource.
func AccountDomain(bare string) (string, error) {
	local, domain, ok := strings.Cut(bare, "@")
	if !ok || local == "" || domain == "" || strings.ContainsRune(domain, '/') {
		return "", fmt.Errorf("%w: %q is not a bare JID local@domain", ErrInvalid, bare)
	}
	return domain, nil
}

// CheckCredentials rejects credential sets a SCRAM mechanism could not use
// unambiguously: an empty hash name, a hash listed twice (which one would the
// server pick?), or a non-positive iteration count (RFC 5802 §5.1 requires i).
func CheckCredentials(creds []Credential) error {
	for i, c := range creds {
		if c.Hash == "" {
			return fmt.Errorf("%w: credential %d has no hash name", ErrInvalid, i)
		}
		if c.Iterations <= 0 {
			return fmt.Errorf("%w: credential %s has iteration count %d", ErrInvalid, c.Hash, c.Iterations)
		}
		for _, d := range creds[:i] {
			if d.Hash == c.Hash {
				return fmt.Errorf("%w: credential %s listed twice", ErrInvalid, c.Hash)
			}
		}
	}
	return nil
}

// NormalizeRosterItem returns it with Subscription "" replaced by "none", or
// ErrInvalid for an empty JID or a subscription state that RFC 6121 §2.1.2.5
// does not define.
func NormalizeRosterItem(it RosterItem) (RosterItem, error) {
	if it.JID == "" {
		return it, fmt.Errorf("%w: roster item without JID", ErrInvalid)
	}
	switch it.Subscription {
	case "":
		it.Subscription = "none"
	case "none", "to", "from", "both":
	default:
		return it, fmt.Errorf("%w: subscription %q", ErrInvalid, it.Subscription)
	}
	if len(it.Groups) == 0 {
		it.Groups = nil
	}
	return it, nil
}
