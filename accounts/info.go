package accounts

import (
	"context"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Info is what the operator's `xmppd user list --json` and `xmppd user show` tell about an account, from storage.
type Info struct {
	JID string `json:"jid"`
	// Credentials are the SCRAM hashes the account can log in with (an account migrated from another server may
	// have SCRAM-SHA-1 only), with their iteration counts.
	Credentials     []CredentialInfo `json:"credentials"`
	RosterItems     int              `json:"roster_items"`
	PendingRequests int              `json:"pending_requests"`
	OfflineMessages int              `json:"offline_messages"`
	PEPNodes        int              `json:"pep_nodes"`
	// LastSeen is when the account's last session ended (its last unavailable presence, RFC 6121 §4.3.2); nil if
	// it never logged out since it was created or imported. xmppd keeps no separate last-login time.
	LastSeen *time.Time `json:"last_seen"`
}

// CredentialInfo names one stored credential, without any key material.
type CredentialInfo struct {
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
}

// pendingInNS is the user actor's KV namespace of unanswered subscription requests (actors/user.go).
const pendingInNS = "urn:xmppd:pending-in"

// AccountInfo reads Info for bare; storage.ErrNotFound if there is no such account.
func AccountInfo(ctx context.Context, store storage.Store, bare string) (Info, error) {
	in := Info{JID: bare, Credentials: []CredentialInfo{}}
	creds, err := store.Credentials(ctx, bare)
	if err != nil {
		return in, err
	}
	for _, c := range creds {
		in.Credentials = append(in.Credentials, CredentialInfo{Mechanism: "SCRAM-" + c.Hash, Iterations: c.Iterations})
	}
	items, _, err := store.Roster(ctx, bare)
	if err != nil {
		return in, err
	}
	in.RosterItems = len(items)
	pend, err := store.ListKV(ctx, bare, pendingInNS)
	if err != nil {
		return in, err
	}
	in.PendingRequests = len(pend)
	if in.OfflineMessages, err = store.CountOffline(ctx, bare); err != nil {
		return in, err
	}
	nodes, err := store.PubSubNodes(ctx, bare)
	if err != nil {
		return in, err
	}
	in.PEPNodes = len(nodes)
	if _, at, err := store.LastPresence(ctx, bare); err == nil {
		at = at.UTC()
		in.LastSeen = &at
	}
	return in, nil
}
