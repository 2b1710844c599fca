// Package portable moves user data between storage and XEP-0227 files: `xmppd export` and `xmppd import`.
//
// Covered: accounts (SCRAM credentials as they are; a plaintext password turned into SCRAM keys for every hash
// xmppd offers, never stored), rosters (groups, subscription, ask, pre-approval), pending inbound subscription
// requests, vCards (vcard-temp), private XML (XEP-0049), blocklists (XEP-0191), offline messages and PEP nodes
// (configuration, items, affiliations and subscriptions). Not covered yet: MAM archives and MUC rooms (their
// storage is being built), and XEP-0016 privacy lists (xmppd has none; reported as skipped).
//
// Import is all or nothing by default: a first pass reads and checks the whole file (streaming, one user in
// memory at a time) and nothing is written if anything is wrong; the second pass writes. With ContinueOnError
// the users that fail are skipped and reported, the others imported. Import is idempotent: what storage already
// holds is compared and left alone, so a second run of the same file writes nothing.
package portable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	pie "github.com/xmppd/xmppd/protocol/portable"

	"golang.org/x/text/secure/precis"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/sasl"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// KV namespaces of the features whose data is carried (the features own them; these must stay equal to
// features/vcard, features/privatexml, features/blocklist and actors' pending-in, which the round-trip test
// checks through a live server).
const (
	KVVCard     = "urn:xmppd:vcard"
	KVPrivate   = "urn:xmppd:private"
	KVBlocking  = "urn:xmppd:blocking"
	KVPendingIn = "urn:xmppd:pending-in"
)

// Options adjust an import.
type Options struct {
	DryRun          bool
	ContinueOnError bool
	// Serves tells whether a domain is one of ours; users of other hosts are refused (or skipped).
	Serves func(domain string) bool
	// Iterations is the PBKDF2 count for credentials derived from plaintext passwords.
	Iterations int
	Limits     pie.Limits
	Now        func() time.Time // the stamp of offline messages without one; default time.Now
}

// Summary counts what an import or export did.
type Summary struct {
	Users           int // users read
	Accounts        int // accounts created
	Credentials     int // accounts whose credentials were written (created or carried)
	AccountsKept    int // accounts that existed with the same credentials
	RosterItems     int
	Pending         int
	VCards          int
	Private         int
	Blocked         int
	Offline         int
	PEPNodes        int
	PEPItems        int
	PEPMembers      int
	Unchanged       int      // items already present and equal
	Skipped         []string // what was not imported and why
	Failed          []string // users refused (ContinueOnError)
	PlainPasswords  int      // plaintext passwords turned into SCRAM keys
	SCRAMOnlyHashes []string // hashes some users have credentials for only (they log in with those mechanisms)
}

// String is the summary for the operator.
func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "users: %d (accounts created %d, kept %d, credentials written %d, plaintext passwords hashed %d)\n",
		s.Users, s.Accounts, s.AccountsKept, s.Credentials, s.PlainPasswords)
	fmt.Fprintf(&b, "roster items %d, pending subscription requests %d, vCards %d, private XML %d, blocked JIDs %d, offline messages %d\n",
		s.RosterItems, s.Pending, s.VCards, s.Private, s.Blocked, s.Offline)
	fmt.Fprintf(&b, "PEP nodes %d, items %d, members %d; already present and unchanged: %d\n", s.PEPNodes, s.PEPItems, s.PEPMembers, s.Unchanged)
	if len(s.SCRAMOnlyHashes) > 0 {
		fmt.Fprintf(&b, "note: some accounts have credentials only for %s: they log in with those SCRAM mechanisms until they change their password\n", strings.Join(s.SCRAMOnlyHashes, ", "))
	}
	for _, k := range s.Skipped {
		fmt.Fprintf(&b, "skipped: %s\n", k)
	}
	for _, f := range s.Failed {
		fmt.Fprintf(&b, "failed: %s\n", f)
	}
	return b.String()
}

func (s *Summary) skip(what string) {
	s.Skipped = append(s.Skipped, what)
}

// OpenFile is the pie.Opener for files on disk: an include is resolved relative to the including file's
// directory and must stay inside the directory of the main file (no absolute paths, no "..").
func OpenFile(root string) pie.Opener {
	root = filepath.Clean(root)
	return func(base, href string) (string, io.ReadCloser, error) {
		if filepath.IsAbs(href) || strings.Contains(href, "://") {
			return "", nil, errors.New("only relative hrefs are allowed")
		}
		name := filepath.Join(filepath.Dir(base), filepath.FromSlash(href))
		rel, err := filepath.Rel(root, name)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", nil, errors.New("the file is outside the directory of the imported file")
		}
		f, err := os.Open(name)
		if err != nil {
			return "", nil, err
		}
		return name, f, nil
	}
}

// files reads the documents at paths one after the other, as one stream of users.
type files struct {
	paths []string
	lim   pie.Limits
	d     *pie.Decoder
	f     *os.File
	// Skipped gathers the decoders' Skipped.
	Skipped []string
}

func (fs *files) Next() (*pie.User, error) {
	for {
		if fs.d == nil {
			if len(fs.paths) == 0 {
				return nil, io.EOF
			}
			f, err := os.Open(fs.paths[0])
			if err != nil {
				return nil, err
			}
			fs.f, fs.d = f, pie.NewDecoder(f, fs.paths[0], OpenFile(filepath.Dir(fs.paths[0])), fs.lim)
			fs.paths = fs.paths[1:]
		}
		u, err := fs.d.Next()
		if err == io.EOF {
			fs.Skipped = append(fs.Skipped, fs.d.Skipped...)
			fs.Close()
			continue
		}
		return u, err
	}
}

func (fs *files) Close() {
	if fs.d != nil {
		fs.d.Close()
		fs.f.Close()
		fs.d, fs.f = nil, nil
	}
}

func decoder(paths []string, lim pie.Limits) (*files, func(), error) {
	fs := &files{paths: append([]string(nil), paths...), lim: lim}
	return fs, fs.Close, nil
}

// Import reads the XEP-0227 files at paths (with their XIncludes) into store, as one import: all of them are
// checked before anything is written. (Prosody's XEP-0227 storage writes one file per user.)
func Import(ctx context.Context, store storage.Store, paths []string, o Options) (*Summary, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	// Pass 1: read and check everything; nothing is written.
	bad := map[string]bool{} // "file:line" of refused users
	var problems []string
	d, done, err := decoder(paths, o.Limits)
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for {
		u, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *pie.Error
			if errors.As(err, &pe) && pe.User != "" && o.ContinueOnError {
				bad[fmt.Sprintf("%s:%d", pe.File, pe.UserLine)] = true
				problems = append(problems, err.Error())
				continue
			}
			done()
			return nil, err
		}
		where := fmt.Sprintf("%s:%d", u.File, u.Line)
		if reason := check(u, o); reason == "" {
			if prev, dup := seen[u.Bare()]; dup {
				reason = "user " + u.Bare() + " appears twice (first at " + prev + ")"
			} else {
				seen[u.Bare()] = where
			}
			if reason != "" {
				problems, bad[where] = append(problems, where+": "+reason), true
			}
		} else {
			problems, bad[where] = append(problems, where+": "+reason), true
		}
	}
	done()
	if len(problems) > 0 && !o.ContinueOnError {
		return nil, fmt.Errorf("the file is refused, nothing was imported:\n  %s", strings.Join(problems, "\n  "))
	}
	// Pass 2: write (or, with DryRun, count what would be written).
	s := &Summary{Failed: problems}
	d, done, err = decoder(paths, o.Limits)
	if err != nil {
		return nil, err
	}
	defer done()
	onlyHashes := map[string]bool{}
	for {
		u, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *pie.Error
			if errors.As(err, &pe) && pe.User != "" && o.ContinueOnError {
				continue
			}
			return s, err
		}
		if bad[fmt.Sprintf("%s:%d", u.File, u.Line)] {
			continue
		}
		s.Users++
		if err := importUser(ctx, store, u, o, s, onlyHashes); err != nil {
			return s, fmt.Errorf("%s:%d: user %s: %w", u.File, u.Line, u.Bare(), err)
		}
		for _, k := range u.Skipped {
			s.skip(u.Bare() + ": " + k + " (not understood)")
		}
	}
	for _, k := range d.Skipped {
		s.skip(k + " (outside any user, not understood)")
	}
	for h := range onlyHashes {
		s.SCRAMOnlyHashes = append(s.SCRAMOnlyHashes, h)
	}
	sort.Strings(s.SCRAMOnlyHashes)
	return s, nil
}

// check is what pass 1 refuses beyond the file's syntax.
func check(u *pie.User, o Options) string {
	if o.Serves != nil && !o.Serves(u.Host) {
		return "host " + u.Host + " is not served by this server (add it to domains)"
	}
	if u.Password == "" && len(u.SCRAM) == 0 {
		return "user " + u.Bare() + " has neither a password nor SCRAM credentials"
	}
	if u.Password != "" {
		// What sasl would refuse when deriving the keys in pass two (RFC 8265 §4.2), checked without the PBKDF2 cost.
		if _, err := precis.OpaqueString.String(u.Password); err != nil {
			return "user " + u.Bare() + ": the password cannot be used: " + err.Error()
		}
	}
	return ""
}

func credsFrom(u *pie.User, iterations int, s *Summary) ([]storage.Credential, error) {
	if u.Password != "" {
		s.PlainPasswords++
		return accounts.StoredCredentials(u.Password, iterations)
	}
	out := make([]storage.Credential, 0, len(u.SCRAM))
	for _, c := range u.SCRAM {
		out = append(out, storage.Credential{Hash: strings.TrimPrefix(c.Mechanism, "SCRAM-"), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
	}
	return out, nil
}

// sameCredentials: the stored credentials already match the file's (the same keys, or the file's password
// verifies against every stored key).
func sameCredentials(stored []storage.Credential, u *pie.User) bool {
	if len(stored) == 0 {
		return false
	}
	if u.Password != "" {
		for _, c := range stored {
			if !sasl.VerifyPassword(toSASL(c), u.Password) {
				return false
			}
		}
		return true
	}
	if len(stored) != len(u.SCRAM) {
		return false
	}
	for i, c := range u.SCRAM {
		st := stored[i]
		if "SCRAM-"+st.Hash != c.Mechanism || st.Iterations != c.Iterations || string(st.Salt) != string(c.Salt) ||
			string(st.StoredKey) != string(c.StoredKey) || string(st.ServerKey) != string(c.ServerKey) {
			return false
		}
	}
	return true
}

func toSASL(c storage.Credential) sasl.Credentials {
	out := sasl.Credentials{Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	for _, h := range sasl.Hashes {
		if h.String() == c.Hash {
			out.Hash = h
		}
	}
	return out
}

func importUser(ctx context.Context, st storage.Store, u *pie.User, o Options, s *Summary, onlyHashes map[string]bool) error {
	bare := u.Bare()
	stored, err := st.Credentials(ctx, bare)
	exists := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if u.Password == "" {
		have := map[string]bool{}
		for _, c := range u.SCRAM {
			have[strings.TrimPrefix(c.Mechanism, "SCRAM-")] = true
		}
		for _, h := range sasl.Hashes {
			if !have[h.String()] {
				for k := range have {
					onlyHashes["SCRAM-"+k] = true
				}
				break
			}
		}
	}
	switch {
	case exists && sameCredentials(stored, u):
		s.AccountsKept++
	default:
		creds, err := credsFrom(u, o.Iterations, s)
		if err != nil {
			return err
		}
		if !o.DryRun {
			if exists {
				err = st.SetCredentials(ctx, bare, creds)
			} else {
				err = st.CreateAccount(ctx, bare, creds)
			}
			if err != nil {
				return err
			}
		}
		if !exists {
			s.Accounts++
		}
		s.Credentials++
	}
	if err := importRoster(ctx, st, u, o, s, exists); err != nil {
		return err
	}
	put := func(ns, key, value string, count *int) error {
		if exists {
			cur, err := st.GetKV(ctx, bare, ns, key)
			if err == nil && cur == value {
				s.Unchanged++
				return nil
			}
		}
		*count++
		if o.DryRun {
			return nil
		}
		return st.PutKV(ctx, bare, ns, key, value)
	}
	if u.VCard != "" {
		if err := put(KVVCard, "", u.VCard, &s.VCards); err != nil {
			return err
		}
	}
	for _, p := range u.Private {
		n, err := xmlstream.ParseNode(p, "")
		if err != nil {
			return err
		}
		if err := put(KVPrivate, n.Name.Space+" "+n.Name.Local, p, &s.Private); err != nil {
			return err
		}
	}
	for _, b := range u.Blocked {
		if err := put(KVBlocking, b, "", &s.Blocked); err != nil {
			return err
		}
	}
	for _, p := range u.Pending {
		raw := "<presence from='" + attr(p) + "' to='" + attr(bare) + "' type='subscribe'/>"
		if exists {
			if _, err := st.GetKV(ctx, bare, KVPendingIn, p); err == nil {
				s.Unchanged++
				continue
			}
		}
		if err := put(KVPendingIn, p, raw, &s.Pending); err != nil {
			return err
		}
	}
	if err := importOffline(ctx, st, u, o, s, exists); err != nil {
		return err
	}
	return importPEP(ctx, st, u, o, s, exists)
}

func attr(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }

func importRoster(ctx context.Context, st storage.Store, u *pie.User, o Options, s *Summary, exists bool) error {
	cur := map[string]storage.RosterItem{}
	if exists {
		items, _, err := st.Roster(ctx, u.Bare())
		if err != nil {
			return err
		}
		for _, it := range items {
			cur[it.JID] = it
		}
	}
	for _, ri := range u.Roster {
		if ri.JID == u.Bare() {
			s.skip(u.Bare() + ": roster item for the user's own JID")
			continue
		}
		it := storage.RosterItem{JID: ri.JID, Name: ri.Name, Groups: ri.Groups, Subscription: ri.Subscription, Ask: ri.Ask, PreApproved: ri.Approved}
		if len(it.Groups) == 0 {
			it.Groups = nil
		}
		if old, ok := cur[ri.JID]; ok {
			if old.Name == it.Name && old.Subscription == it.Subscription && old.Ask == it.Ask && old.PreApproved == it.PreApproved && equalStrings(old.Groups, it.Groups) {
				s.Unchanged++
				continue
			}
			it.PendingIn, it.PendingInStanza = old.PendingIn, old.PendingInStanza
		}
		s.RosterItems++
		if o.DryRun {
			continue
		}
		if _, err := st.PutRosterItem(ctx, u.Bare(), it); err != nil {
			return err
		}
	}
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// importOffline queues the messages the file holds that the queue does not hold yet. A <delay/> the old server
// stamped (from its own domain) gives the time and is removed: xmppd adds its own on delivery (XEP-0160 §3).
func importOffline(ctx context.Context, st storage.Store, u *pie.User, o Options, s *Summary, exists bool) error {
	if len(u.Offline) == 0 {
		return nil
	}
	have := map[string]bool{}
	if exists {
		q, err := st.OfflineMessages(ctx, u.Bare())
		if err != nil {
			return err
		}
		for _, m := range q {
			have[m.Stanza] = true
		}
	}
	var in []storage.OfflineInput
	for _, m := range u.Offline {
		n, err := xmlstream.ParseNode(m, "")
		if err != nil {
			return err
		}
		stamp := time.Time{}
		kept := n.Children[:0]
		for _, c := range n.Children {
			if c.Name.Space == pie.NSDelay && c.Name.Local == "delay" && (c.Attr("from") == u.Host || c.Attr("from") == "") && stamp.IsZero() {
				if t, err := time.Parse(time.RFC3339Nano, c.Attr("stamp")); err == nil {
					stamp = t.UTC()
					continue
				}
			}
			kept = append(kept, c)
		}
		n.Children = kept
		if stamp.IsZero() {
			stamp = o.Now().UTC()
		}
		raw := string(n.AppendXML(nil, pie.NSClient))
		if have[raw] {
			s.Unchanged++
			continue
		}
		have[raw] = true
		in = append(in, storage.OfflineInput{Stanza: raw, Stamp: stamp})
	}
	s.Offline += len(in)
	if o.DryRun || len(in) == 0 {
		return nil
	}
	n, err := st.PushOfflineBatch(ctx, u.Bare(), in, 0)
	if err == nil && n != len(in) {
		err = fmt.Errorf("only %d of %d offline messages stored", n, len(in))
	}
	return err
}

func importPEP(ctx context.Context, st storage.Store, u *pie.User, o Options, s *Summary, exists bool) error {
	bare := u.Bare()
	for _, p := range u.PEP {
		cfg := pubsub.DefaultPEP()
		if p.Form != "" {
			x, err := xmlstream.ParseNode(p.Form, "")
			if err != nil {
				return err
			}
			f := dataform.Parse(x)
			// Field by field: a field this server does not know (another server's extension) is reported, not fatal.
			for _, v := range f.Vars {
				one := dataform.Form{Type: f.Type, FormType: f.FormType, Vars: []string{v}, Values: map[string][]string{v: f.Values[v]}}
				if err := cfg.Apply(one, pubsub.Limit{MaxItems: 1 << 30}); err != nil { // the server bounds max_items when it runs
					s.skip(fmt.Sprintf("%s: PEP node %s: configuration %v", bare, p.Node, err))
				}
			}
		}
		enc := cfg.Encode()
		old, err := st.PubSubNode(ctx, bare, p.Node)
		switch {
		case err == nil && old.Config == enc:
			s.Unchanged++
		case err == nil || errors.Is(err, storage.ErrNotFound):
			s.PEPNodes++
			if !o.DryRun {
				if err := st.PutPubSubNode(ctx, bare, storage.PubSubNode{Node: p.Node, Config: enc, Created: o.Now().UTC()}); err != nil {
					return err
				}
			}
		default:
			return err
		}
		nodeExists := err == nil
		for _, it := range p.Items {
			if nodeExists {
				if old, err := st.PubSubItem(ctx, bare, p.Node, it.ID); err == nil && old.Payload == it.Payload {
					s.Unchanged++
					continue
				}
			}
			s.PEPItems++
			if o.DryRun {
				continue
			}
			if err := st.PublishPubSubItem(ctx, bare, p.Node, storage.PubSubItem{ID: it.ID, Publisher: bare, Payload: it.Payload, Published: o.Now().UTC()}, 0); err != nil {
				return err
			}
		}
		var members []storage.PubSubMember
		if nodeExists {
			members, _ = st.PubSubMembers(ctx, bare, p.Node)
		}
	member:
		for _, m := range p.Members {
			for _, om := range members {
				if om.JID == m.JID && om.Affiliation == m.Affiliation && om.Subscription == m.Subscription {
					s.Unchanged++
					continue member
				}
			}
			s.PEPMembers++
			if o.DryRun {
				continue
			}
			if err := st.PutPubSubMember(ctx, bare, p.Node, storage.PubSubMember{JID: m.JID, Affiliation: m.Affiliation, Subscription: m.Subscription}); err != nil {
				return err
			}
		}
	}
	return nil
}
