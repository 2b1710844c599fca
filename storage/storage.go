// Package storage defines the persistence contract of xmppd: small interfaces
// that hide the database engine from the actors that own the data.
//
// The package speaks plain strings on purpose. Bare JIDs arrive as
// "local@domain", already prepared (RFC 7622 §3) by the caller, and stanzas
// arrive as serialised XML. Storage never parses either; it only stores them,
// so an engine cannot disagree with the protocol layer about what a JID or a
// stanza means.
//
// Every engine (storage/sqlite, storage/postgres) runs the same contract suite,
// storage/storagetest. Behaviour the interfaces leave open is pinned down there
// and in the method comments below:
//
//   - Times are kept with microsecond precision (what PostgreSQL's timestamptz
//     holds) and returned in UTC.
//   - Bare JIDs are compared and sorted bytewise, as Go compares strings.
//   - Roster versions are opaque, strictly increasing per owner, and never
//     reused for an owner, not even after the account is deleted and created
//     again (RFC 6121 §2.6.1: a version must identify one roster state, or a
//     client with a cached copy would miss changes).
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every engine; test for them with errors.Is, because an
// engine may wrap them with detail.
var (
	ErrNotFound = errors.New("storage: not found")
	ErrExists   = errors.New("storage: already exists")
	ErrLimit    = errors.New("storage: limit reached")
	// ErrInvalid reports an argument the caller should have rejected before
	// reaching storage (a bare JID without '@', a duplicate credential hash, an
	// unknown subscription state). It is a programming error, not a user error.
	ErrInvalid = errors.New("storage: invalid argument")
)

// Credential is one SCRAM salted credential (RFC 5802 §3): the password is
// never stored, only what the server needs to verify a proof.
type Credential struct {
	Hash       string // "SHA-1", "SHA-256", "SHA-512" (the SCRAM-<hash> suffix)
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// Accounts stores user accounts and their credentials.
type Accounts interface {
	// CreateAccount creates bare with creds (which may be empty, e.g. for an
	// account whose password is yet to be set). ErrExists if bare exists.
	CreateAccount(ctx context.Context, bare string, creds []Credential) error
	// Credentials returns the credentials in the order they were set.
	// ErrNotFound if the account does not exist.
	Credentials(ctx context.Context, bare string) ([]Credential, error)
	// SetCredentials replaces all credentials and, in the same transaction,
	// deletes the account's FAST tokens (a password change logs every token
	// out). ErrNotFound if no account.
	SetCredentials(ctx context.Context, bare string, creds []Credential) error
	// DeleteAccount deletes the account and, in the same transaction, the
	// user's roster, offline queue, last presence, KV data, PEP service (the
	// PubSub service named bare) and message archive with its preferences.
	// Other users' rosters that list bare are not
	// touched: telling those contacts (RFC 6121 §3.3 unsubscribed) is the
	// caller's job. ErrNotFound if absent.
	DeleteAccount(ctx context.Context, bare string) error
	// ListAccounts returns bare JIDs sorted bytewise; domain "" means all.
	ListAccounts(ctx context.Context, domain string) ([]string, error)
	// CountAccounts counts accounts of domain; "" means all domains.
	CountAccounts(ctx context.Context, domain string) (int, error)
}

// RosterItem is an RFC 6121 §2.1 roster item plus the server-side
// subscription state of RFC 6121 Appendix A.
type RosterItem struct {
	JID    string
	Name   string
	Groups []string // order is preserved; nil when there are none
	// Subscription is "none", "to", "from" or "both"; "" is stored as "none".
	Subscription string
	Ask          bool // pending out (ask='subscribe')
	PendingIn    bool // contact asked to subscribe to the owner, owner hasn't answered
	// PendingInStanza is the stored inbound subscribe stanza, redelivered when
	// the owner next comes online (RFC 6121 §3.1.3); "" if none.
	PendingInStanza string
	PreApproved     bool // RFC 6121 §3.4
}

// Rosters stores one roster per owner with a version (RFC 6121 §2.6).
type Rosters interface {
	// Roster returns the items sorted by JID and the current version. A roster
	// never written returns nil, 0, nil; a roster whose items were all deleted
	// returns nil and its (non-zero) current version.
	Roster(ctx context.Context, owner string) (items []RosterItem, version int64, err error)
	// PutRosterItem inserts or replaces the item for it.JID and bumps the
	// version, returning the new one.
	PutRosterItem(ctx context.Context, owner string, it RosterItem) (version int64, err error)
	// DeleteRosterItem removes jid and bumps the version. ErrNotFound (and no
	// version change) if there is no such item.
	DeleteRosterItem(ctx context.Context, owner, jid string) (version int64, err error)
}

// OfflineMessage is one stanza queued for an offline user (XEP-0160).
type OfflineMessage struct {
	ID     int64
	Stanza string
	Stamp  time.Time
}

// OfflineInput is one stanza to queue for an offline user.
type OfflineInput struct {
	Stanza string
	Stamp  time.Time
	// Key, when set, is the stanza's idempotency key (a cluster stanza that may arrive twice, actors/cluster.go):
	// the owner's queue holds at most one message with a given key.
	Key string
}

// Offline stores stanzas for users who are not online.
type Offline interface {
	// PushOffline appends; ErrLimit when the owner already has max messages
	// queued (max<=0: no limit). IDs increase strictly and are never reused,
	// so DeleteOffline(upToID) cannot remove a message pushed after the
	// caller read the queue.
	PushOffline(ctx context.Context, owner string, stanza string, stamp time.Time, max int) (id int64, err error)
	// PushOfflineBatch appends msgs in order in one transaction, so that one
	// durable commit covers them all (the user actor's group commit). It
	// stores them until the owner has max queued (max<=0: no limit) and
	// reports how many it stored: the rest hit the limit. On an error nothing
	// is stored. A message whose Key the owner's queue holds already is not
	// stored again but counts as stored (it is queued: a second arrival of
	// one message), and takes no room under max.
	PushOfflineBatch(ctx context.Context, owner string, msgs []OfflineInput, max int) (stored int, err error)
	// OfflineMessages returns the queue oldest first.
	OfflineMessages(ctx context.Context, owner string) ([]OfflineMessage, error)
	// OfflinePage returns the oldest messages whose stanzas add up to at most
	// maxBytes (at least one, if any), and whether more are queued: delivery
	// reads a long queue page by page without reading all of it each time.
	OfflinePage(ctx context.Context, owner string, maxBytes int) (msgs []OfflineMessage, more bool, err error)
	// DeleteOffline deletes the owner's messages with id <= upToID.
	DeleteOffline(ctx context.Context, owner string, upToID int64) error
	// DeleteOfflineIDs deletes the owner's messages with these ids; unknown ids, and other owners' messages, are
	// left alone. XEP-0386 Bind 2 clears the archived messages out of a queue whose other messages stay.
	DeleteOfflineIDs(ctx context.Context, owner string, ids []int64) error
	// CountOffline returns the queue length.
	CountOffline(ctx context.Context, owner string) (int, error)
}

// Presence keeps the last unavailable presence (and when) for probes
// (RFC 6121 §4.3.2) and XEP-0012 last activity.
type Presence interface {
	SetLastPresence(ctx context.Context, owner, stanza string, at time.Time) error
	// LastPresence returns ErrNotFound if none was ever set.
	LastPresence(ctx context.Context, owner string) (stanza string, at time.Time, err error)
}

// KV stores per-user XML blobs by (namespace, key): vCard (XEP-0054), private
// XML (XEP-0049), blocklist etc.
type KV interface {
	GetKV(ctx context.Context, owner, ns, key string) (string, error) // ErrNotFound
	PutKV(ctx context.Context, owner, ns, key, value string) error
	// PutKVIfAbsent stores value unless the key already has one, and returns the value stored: of several
	// writers racing (nodes of a cluster starting together on one database), every one gets the first's.
	PutKVIfAbsent(ctx context.Context, owner, ns, key, value string) (stored string, err error)
	DeleteKV(ctx context.Context, owner, ns, key string) error // no error if absent
	// ListKV returns the owner's keys in ns; an empty, non-nil map if none.
	ListKV(ctx context.Context, owner, ns string) (map[string]string, error)
}

// PubSubNode is one publish-subscribe node (XEP-0060) of a service: a user's
// PEP service (XEP-0163, service = the owner's bare JID) or a standalone
// service (service = its JID, "pubsub.example.org").
type PubSubNode struct {
	Node string
	// Config is the node configuration in the feature's own encoding;
	// storage keeps it as it is.
	Config  string
	Created time.Time
}

// PubSubItem is one published item.
type PubSubItem struct {
	ID        string
	Publisher string // the publisher's JID as the feature recorded it
	Payload   string // serialised XML, the <item/>'s child
	Published time.Time
}

// PubSubMember is one JID's affiliation with a node and its subscription
// (XEP-0060 §4.1, §4.2). A JID has at most one member row per node.
type PubSubMember struct {
	JID          string
	Affiliation  string // "" (none), "owner", "publisher", "member", "outcast", ...
	Subscription string // "" (none), "subscribed", "pending", "unconfigured"
	SubID        string
	// Options are the subscription options in the feature's own encoding.
	Options string
}

// PubSub stores publish-subscribe services: nodes, their items, their
// members. Items of a node are ordered by publication: publishing an id that
// exists replaces the item and makes it the newest.
type PubSub interface {
	// PubSubNodes returns the service's nodes ordered by name; empty, not
	// nil, if none.
	PubSubNodes(ctx context.Context, service string) ([]PubSubNode, error)
	// PubSubNode returns one node; ErrNotFound if absent.
	PubSubNode(ctx context.Context, service, node string) (PubSubNode, error)
	// PutPubSubNode creates the node or replaces its Config (Created is kept
	// from the first put).
	PutPubSubNode(ctx context.Context, service string, n PubSubNode) error
	// DeletePubSubNode deletes the node with its items and members; no error
	// if absent.
	DeletePubSubNode(ctx context.Context, service, node string) error
	// DeletePubSubService deletes every node of the service (an account
	// removed); no error if there is none.
	DeletePubSubService(ctx context.Context, service string) error
	// PublishPubSubItem stores it as the node's newest item, replacing an item
	// with the same ID, then deletes the oldest items beyond max (max<=0: no
	// limit), in one transaction. ErrNotFound if the node does not exist.
	PublishPubSubItem(ctx context.Context, service, node string, it PubSubItem, max int) error
	// PubSubItems returns at most max items (max<=0: all), newest first.
	PubSubItems(ctx context.Context, service, node string, max int) ([]PubSubItem, error)
	// PubSubItem returns one item; ErrNotFound if absent.
	PubSubItem(ctx context.Context, service, node, id string) (PubSubItem, error)
	// RetractPubSubItem deletes one item and reports whether it existed.
	RetractPubSubItem(ctx context.Context, service, node, id string) (bool, error)
	// PurgePubSubNode deletes every item of the node.
	PurgePubSubNode(ctx context.Context, service, node string) error
	// PubSubMembers returns the node's members ordered by JID.
	PubSubMembers(ctx context.Context, service, node string) ([]PubSubMember, error)
	// PutPubSubMember creates or replaces the member row of m.JID; a member
	// with neither affiliation nor subscription is deleted. ErrNotFound if the
	// node does not exist.
	PutPubSubMember(ctx context.Context, service, node string, m PubSubMember) error
}

// FastToken is one XEP-0484 FAST token of an account, bound to one client
// (the SASL2 user-agent id) and one mechanism. The token itself is never
// stored: Key is the HMAC key the HT mechanism verifies with (protocol/sasl
// HTKey, a SHA-256 digest of the token).
type FastToken struct {
	Account   string
	Client    string
	Key       []byte
	Mechanism string
	Expiry    time.Time
	// Count is the highest XEP-0484 §4.4 replay counter used with the token
	// (0: none yet).
	Count uint32
	// Pending: issued and not yet used. A client has at most one pending token
	// and one in use (XEP-0484 §6.1, the 'new' and 'current' slots).
	Pending bool
}

// FastTokens stores XEP-0484 tokens. A token dies with its account
// (DeleteAccount) and with any password change (SetCredentials).
type FastTokens interface {
	// FastTokens returns the client's tokens, the pending one first; empty, not
	// nil, if none. Expired tokens may be among them: the caller checks Expiry.
	FastTokens(ctx context.Context, account, client string) ([]FastToken, error)
	// PutFastToken stores t as its client's pending token, replacing a pending
	// one that was never used (XEP-0484 §4.5: the token in use stays valid until
	// the new one is used). t.Pending and t.Count are ignored. ErrNotFound if
	// the account does not exist.
	PutFastToken(ctx context.Context, t FastToken) error
	// UseFastToken records an authentication with the client's token whose key
	// is key. With count > 0 it must exceed the stored count, which it then
	// becomes; otherwise (a replay, §4.4) nothing changes and ok is false. A
	// pending token becomes the one in use, replacing the previous one (§4.5:
	// tokens issued earlier die once a later one is used). ok is false and
	// nothing changes when there is no such token.
	UseFastToken(ctx context.Context, account, client string, key []byte, count uint32) (ok bool, err error)
	// DeleteFastTokens deletes the client's tokens (XEP-0484 §4.6
	// invalidation); client "" deletes every token of the account. No error if
	// there are none.
	DeleteFastTokens(ctx context.Context, account, client string) error
}

// MUCRoom is one persistent multi-user chat room (XEP-0045) of a service: its
// localpart and its state (configuration, subject, …) as the MUC feature
// encodes it; storage does not look inside.
type MUCRoom struct {
	Room    string
	Config  string
	Created time.Time
}

// MUCAffiliation is one bare JID's affiliation with a room (owner, admin,
// member, outcast) and the nickname reserved for it ("" for none).
type MUCAffiliation struct {
	JID         string
	Affiliation string
	Nick        string
	Reason      string
}

// MUC stores the persistent rooms of multi-user chat services with their
// affiliations (XEP-0045 §§9–10). Temporary rooms are never stored.
type MUC interface {
	// MUCRooms returns the service's rooms ordered by name; empty, not nil,
	// when there are none.
	MUCRooms(ctx context.Context, service string) ([]MUCRoom, error)
	// MUCRoom returns one room; ErrNotFound if absent.
	MUCRoom(ctx context.Context, service, room string) (MUCRoom, error)
	// PutMUCRoom creates the room or replaces its Config (Created is kept
	// from the first put).
	PutMUCRoom(ctx context.Context, service string, r MUCRoom) error
	// DeleteMUCRoom deletes the room with its affiliations; no error if it
	// does not exist.
	DeleteMUCRoom(ctx context.Context, service, room string) error
	// MUCAffiliations returns the room's affiliations ordered by JID.
	MUCAffiliations(ctx context.Context, service, room string) ([]MUCAffiliation, error)
	// PutMUCAffiliation creates or replaces the row of a.JID; an affiliation
	// of "" or "none" without a nick deletes it. ErrNotFound if the room does
	// not exist.
	PutMUCAffiliation(ctx context.Context, service, room string, a MUCAffiliation) error
}

// ArchivedMessage is one message of a user's archive (XEP-0313).
type ArchivedMessage struct {
	// ID is the archive's id of the message (the XEP-0359 stanza-id), unique in the owner's archive and never
	// reused (XEP-0313 §7.2): chosen by the caller.
	ID string
	// With is the other party's JID as the caller wrote it (a full JID, or a bare one); WithBare its bare JID.
	With, WithBare string
	Stamp          time.Time
	Stanza         string
}

// ArchiveQuery selects messages of one archive. Every bound is optional (zero); the messages are ordered by
// (Stamp, insertion), which is the archive's chronological order.
type ArchiveQuery struct {
	// With: "" any; a bare JID matches WithBare, a full JID (with '/') matches With exactly (XEP-0313 §4.1.1).
	With string
	// Start and End bound Stamp, inclusive.
	Start, End time.Time
	// AfterIDs and BeforeIDs bound the result exclusively by message ids; the tightest of them applies. An id
	// not in the archive is ErrNotFound.
	AfterIDs, BeforeIDs []string
	// IDs, when not empty, keeps only these messages (unknown ones are ErrNotFound).
	IDs []string
	// Limit is the page size (<=0: no limit). Last takes the page from the end of the selection (the newest
	// Limit messages) instead of its start; a page is returned in chronological order either way.
	Limit int
	Last  bool
}

// ArchivePrefs are a user's XEP-0313 §6 archiving preferences.
type ArchivePrefs struct {
	Default       string // "always", "never", "roster"
	Always, Never []string
}

// Archive stores per-user message archives (XEP-0313).
type Archive interface {
	// AppendArchive adds m as the newest message of owner's archive. ErrExists if m.ID is in the archive (a
	// message delivered again keeps its first copy).
	AppendArchive(ctx context.Context, owner string, m ArchivedMessage) error
	// AppendArchiveBatch appends msgs in order in one transaction (one durable commit for a burst: the user
	// actor's group commit) and reports how many it stored: a message whose ID is in the archive already is
	// skipped. On an error nothing is stored.
	AppendArchiveBatch(ctx context.Context, owner string, msgs []ArchivedMessage) (stored int, err error)
	// QueryArchive returns one page of the selection and whether more of the selection lies beyond the page in
	// its direction (after it; before it with Last).
	QueryArchive(ctx context.Context, owner string, q ArchiveQuery) (page []ArchivedMessage, more bool, err error)
	// CountArchive counts the selection, ignoring Limit and Last.
	CountArchive(ctx context.Context, owner string, q ArchiveQuery) (int, error)
	// ArchivedIDs returns those of ids that are in owner's archive, in the order asked (no error for the others).
	ArchivedIDs(ctx context.Context, owner string, ids []string) ([]string, error)
	// ArchiveBounds returns the oldest and newest message; ErrNotFound if the archive is empty.
	ArchiveBounds(ctx context.Context, owner string) (first, last ArchivedMessage, err error)
	// DeleteArchiveBefore deletes the messages older than t and reports how many.
	DeleteArchiveBefore(ctx context.Context, owner string, t time.Time) (int, error)
	// TrimArchive deletes the oldest messages beyond keep and reports how many.
	TrimArchive(ctx context.Context, owner string, keep int) (int, error)
	// ArchivePrefs returns the stored preferences; ErrNotFound if the user never set any.
	ArchivePrefs(ctx context.Context, owner string) (ArchivePrefs, error)
	// SetArchivePrefs replaces them.
	SetArchivePrefs(ctx context.Context, owner string, p ArchivePrefs) error
}

// ---- XEP-0363 HTTP file upload ----

// UploadSlot is one upload slot (XEP-0363 §4) and, once its PUT completed, the file's metadata. The file's
// bytes are not in storage: the upload service keeps them in its directory, named by ID.
type UploadSlot struct {
	// ID is the file's id (random, chosen by the service; unique over all services).
	ID string
	// Service is the upload service's domain; Owner the requester's bare JID.
	Service, Owner string
	// Filename and ContentType are the sanitised values the GET URL and responses use; Size is in bytes.
	Filename, ContentType string
	Size                  int64
	// Created is when the slot was handed out, SlotExpires when its PUT URL stops being valid, Uploaded when
	// the PUT completed (zero until then).
	Created, SlotExpires, Uploaded time.Time
}

// UploadUsage is what one owner has of one service, for the quota and the daily limit.
type UploadUsage struct {
	// Total is the bytes of every slot the owner has (files and slots still waiting for their PUT); Oldest the
	// earliest Created among them (zero without any).
	Total  int64
	Oldest time.Time
	// Recent is the bytes of the slots created at or after the since asked for; OldestRecent the earliest
	// Created among those (zero without any).
	Recent       int64
	OldestRecent time.Time
}

// Uploads stores XEP-0363 slots and file metadata. The upload service actor is its only writer.
type Uploads interface {
	// CreateUploadSlot stores a new slot (Uploaded zero). ErrExists if the ID is taken.
	CreateUploadSlot(ctx context.Context, s UploadSlot) error
	// UploadSlot returns one slot; ErrNotFound if absent.
	UploadSlot(ctx context.Context, id string) (UploadSlot, error)
	// MarkUploaded records that the slot's PUT completed at at; ErrNotFound if absent, ErrExists if it was
	// already uploaded.
	MarkUploaded(ctx context.Context, id string, at time.Time) error
	// UploadUsage sums owner's slots at service (see UploadUsage); since bounds Recent.
	UploadUsage(ctx context.Context, service, owner string, since time.Time) (UploadUsage, error)
	// ExpiredUploads returns at most limit slots of service that are due for deletion: uploaded before
	// filesBefore, or never uploaded with SlotExpires before slotsBefore; oldest Created first.
	ExpiredUploads(ctx context.Context, service string, filesBefore, slotsBefore time.Time, limit int) ([]UploadSlot, error)
	// DeleteUpload deletes one slot; no error if it is absent.
	DeleteUpload(ctx context.Context, id string) error
}

// Store is everything an engine provides.
type Store interface {
	Accounts
	Rosters
	Offline
	Presence
	KV
	PubSub
	FastTokens
	MUC
	Archive
	Uploads
	Ping(ctx context.Context) error
	Close() error
}
