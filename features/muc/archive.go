package muc

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xmppd/xmppd/features/mam/mamquery"
	"github.com/xmppd/xmppd/protocol/jid"
	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The room archive (XEP-0313 §3.3.2 "MUC archives", §6.1.2 "MUC Archives"): a room with
// muc#roomconfig_enablearchiving keeps every groupchat message with a body and every subject change it accepted,
// once (not per copy), in storage.Archive under the room's bare JID. Private messages are never archived. The
// live copies carry the archive id as <stanza-id by='room@service'/> (XEP-0359; one the sender wrote claiming
// the room is removed first, §3.3).
//
// A stored message is the groupchat stanza without 'to' (§6.1.2: the forwarded stanza has no 'to' and is from
// the occupant JID), without any <x xmlns='muc#user'/> the sender wrote (§8.4 spoofing), and ends with the
// room's own <x xmlns='muc#user'><item jid='real full JID'/></x>, which is cut off for every reader who may not
// see real JIDs (semi-anonymous rooms: everyone but moderators, owners and admins). With is the occupant JID
// (room@service/nick), WithBare the room's JID: a query's 'with' is an occupant JID (§4.1.1: "an item in a MUC
// archive matches if the publisher of the item matches the JID") or the room's own JID (every message); a real
// JID is feature-not-implemented (filtering by it would reveal to a visitor of a semi-anonymous room who spoke).
//
// Who may query (§6.1.2: "the right to enter it at the time of the query"): in a members-only room members,
// admins and owners; in an open room anyone not banned; a password-protected room its affiliated users and its
// occupants (nobody else has shown the password). Everyone else gets <forbidden/> (§9.1).
//
// The room writes what it archived before it sends the copies (part.go). Destroying the room (and a temporary
// room's end) deletes its archive, as Prosody (mod_muc_mam, muc-room-destroyed) and ejabberd (mod_mam
// remove_room) do; turning archiving off keeps what was archived, unreadable until it is turned on again.

// realJIDOpen starts the room's own muc#user element at the end of an archived stanza.
const realJIDOpen = "<x xmlns='" + NSUser + "'><item jid='"

// archiveID is a fresh archive id: 96 random bits, never reused (XEP-0313 §7.2).
func archiveID() string {
	var b [12]byte
	_, _ = randRead(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// archiveMessage queues one accepted groupchat message of o (payload: its children without muc#user, with the
// occupant-id) for the archive and returns its id.
func (r *room) archiveMessage(o *occupant, id, payload string, sender jid.JID) string {
	aid := archiveID()
	from := r.nickJID(o.nick)
	b := make([]byte, 0, 200+len(payload))
	b = append(b, "<message xmlns='"+stanza.NSClient+"' from='"...)
	b = xmlstream.AppendEscapedAttr(b, from.String())
	b = append(b, "' type='groupchat'"...)
	if id != "" {
		b = append(b, " id='"...)
		b = xmlstream.AppendEscapedAttr(b, id)
		b = append(b, '\'')
	}
	b = append(b, '>')
	b = append(b, payload...)
	b = append(b, wire.StanzaID(aid, r.jid.String())...)
	b = append(b, realJIDOpen...)
	b = xmlstream.AppendEscapedAttr(b, sender.String())
	b = append(b, "'/></x></message>"...)
	r.archived = append(r.archived, storage.ArchivedMessage{ID: aid, With: from.String(), WithBare: r.jid.String(),
		Stamp: r.now.UTC(), Stanza: string(b)})
	return aid
}

// withoutRealJID is an archived stanza without the room's real-JID element (for readers who may not see it).
func withoutRealJID(s string) string {
	if i := strings.LastIndex(s, realJIDOpen); i >= 0 && strings.HasSuffix(s, "'/></x></message>") {
		return s[:i] + "</message>"
	}
	return s
}

// mamAccess says whether from may read the archive (the right to enter, §6.1.2) and see real JIDs in it.
func (r *room) mamAccess(from jid.JID) (ok, seesJIDs bool) {
	bare := from.Bare().String()
	aff := r.affOf(bare)
	var occ *occupant
	for _, o := range r.list {
		if o.bare == bare {
			occ = o
			if o.role == Moderator {
				break
			}
		}
	}
	switch {
	case aff == Outcast:
		return false, false
	case r.st.Conf.MembersOnly && rank(aff) < rank(Member):
		return false, false
	case r.st.Conf.Password != "" && rank(aff) < rank(Member) && occ == nil:
		return false, false
	}
	return true, r.st.Conf.WhoIs == "anyone" || rank(aff) >= rank(Admin) || (occ != nil && occ.role == Moderator)
}

// mam answers the archive's IQs: the query form (get), a query (set, §4) and the metadata (§5).
func (r *room) mam(st *stanza.Routed, q *xmlstream.Node, get bool) {
	if !r.st.Conf.Archive {
		r.fail(st, stanza.NewError(stanza.FeatureNotImplemented).WithText("this room keeps no archive (muc#roomconfig_enablearchiving)"))
		return
	}
	ok, sees := r.mamAccess(st.From)
	if !ok {
		r.fail(st, stanza.NewError(stanza.Forbidden).WithText("only those who may enter the room may read its archive"))
		return
	}
	store, owner := r.srv.Store(), r.jid.String()
	if q.Name.Local == "metadata" {
		if !get {
			r.fail(st, stanza.NewError(stanza.BadRequest).WithText("metadata is read with a get"))
			return
		}
		first, last, err := store.ArchiveBounds(context.Background(), owner)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			r.result(st, wire.Metadata(nil, nil))
		case err != nil:
			r.mamFail(st, err)
		default:
			r.result(st, wire.Metadata(&wire.Bound{ID: first.ID, Stamp: first.Stamp}, &wire.Bound{ID: last.ID, Stamp: last.Stamp}))
		}
		return
	}
	if get {
		r.result(st, wire.QueryForm())
		return
	}
	req, err := wire.ParseQuery(q)
	if err != nil {
		r.mamFail(st, err)
		return
	}
	sel := mamquery.Selection(req)
	if w := req.With; !w.IsZero() {
		switch {
		case w.Bare() == r.jid && w.Resource() == "":
			sel.With = "" // the room itself: every message
		case w.Bare() == r.jid:
			// an occupant JID: sel.With matches it exactly
		default:
			r.fail(st, stanza.NewError(stanza.FeatureNotImplemented).WithText("in a room archive, with is an occupant JID (room@service/nick)"))
			return
		}
	}
	pg, err := mamquery.Run(context.Background(), store, owner, req, sel, r.lim.mamPage)
	if err != nil {
		r.mamFail(st, err)
		return
	}
	for _, m := range pg.Messages {
		s := m.Stanza
		if !sees {
			s = withoutRealJID(s)
		}
		r.send("message", "", "", st.From, r.nextID(), wire.ResultNS(req.NS, req.QueryID, m.ID, m.Stamp, s))
	}
	r.result(st, pg.Fin.String())
}

func (r *room) mamFail(st *stanza.Routed, err error) {
	e, _ := mamquery.Refusal(err) // an internal error is internal-server-error; the part logs nothing of it
	r.fail(st, e)
}

// historyFromArchive emits to o's resource to the history of an archiving room (§7.2.15) from its archive: the newest groupchat
// messages with a body (subject changes are not history: the subject follows it), at most maxStanzas and
// maxChars (-1: any), after since (zero: any). false when the archive could not be read (the caller falls back
// to the in-memory buffer).
func (r *room) historyFromArchive(o *occupant, to jid.JID, maxStanzas, maxChars int, since time.Time) bool {
	if maxStanzas <= 0 {
		return true
	}
	sel := storage.ArchiveQuery{Limit: maxStanzas, Last: true}
	if !since.IsZero() {
		sel.Start = since.Add(time.Microsecond) // the history is what came after since
	}
	sees := r.seesJID(o)
	var picked []*stanza.Routed
	chars := 0
	for round := 0; round < 8 && len(picked) < maxStanzas; round++ {
		page, more, err := r.srv.Store().QueryArchive(context.Background(), r.jid.String(), sel)
		if err != nil {
			return false
		}
		for i := len(page) - 1; i >= 0 && len(picked) < maxStanzas; i-- {
			m := r.historyCopy(page[i], to, sees)
			if m == nil {
				continue
			}
			chars += utf8.RuneCountInString(m.Raw)
			if maxChars >= 0 && chars > maxChars {
				more = false
				break
			}
			picked = append(picked, m)
		}
		if !more || len(page) == 0 {
			break
		}
		sel.BeforeIDs = []string{page[0].ID}
	}
	for i := len(picked) - 1; i >= 0; i-- {
		r.emit(picked[i])
	}
	return true
}

// historyCopy is archived message m as history for resource to (with its delay), nil for a subject change.
func (r *room) historyCopy(m storage.ArchivedMessage, to jid.JID, sees bool) *stanza.Routed {
	n, err := xmlstream.ParseNode(m.Stanza, stanza.NSClient)
	if err != nil || n.Child("", "body") == nil {
		return nil
	}
	from, err := jid.Parse(n.Attr("from"))
	if err != nil {
		return nil
	}
	var b []byte
	for _, c := range n.Children {
		if c.Name.Local == "" || (!sees && c.Name.Space == NSUser) {
			continue
		}
		b = c.AppendXML(b, stanza.NSClient)
	}
	b = append(b, stanza.Delay(r.jid.String(), m.Stamp.UTC().Format("2006-01-02T15:04:05.000000Z"), "")...)
	return stanza.Generate("message", "groupchat", from, to, n.Attr("id"), string(b))
}
