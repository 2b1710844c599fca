// Package mam is XEP-0313 Message Archive Management on the wire: reading a query (its XEP-0004 form, its
// XEP-0059 result set management and <flip-page/>) and preferences, writing results, <fin/>, the query form,
// preferences and archive metadata; and the archiving rules that depend on a message only: which messages a user
// archive keeps (XEP-0313 §7.1.1 with the XEP-0334 hints) and the XEP-0359 stanza-id. Pure: no storage, no state.
package mam

import (
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces.
const (
	NS = "urn:xmpp:mam:2"
	// NS1 is the previous version (XEP-0313 0.4–0.5.1; 0.6 bumped it to mam:2), still what some clients ask in: the same query, results,
	// <fin/> in the IQ result and preferences, in its own namespace; its form has no extended fields (those came
	// with urn:xmpp:mam:2#extended) and the archive metadata (§5) is mam:2 only.
	NS1 = "urn:xmpp:mam:1"
	// NS0 is XEP-0313 0.3 (2014-08-14), which ejabberd, Prosody and Openfire served and older clients still ask
	// in: the query form (FORM_TYPE urn:xmpp:mam:0, no extended fields), <result queryid id/> with <forwarded/>
	// and preferences as in mam:1, but the end of a query is 0.3's "sentinel message instead of iq reply": the IQ
	// result is empty and sent first, then the results, then a <message/> holding <fin queryid complete/> with
	// the RSM <set/>. 0.4 (2015-09-21) "switch[ed] the sentinel message back to the iq result" and bumped the
	// namespace to mam:1. There is no metadata in it.
	NS0        = "urn:xmpp:mam:0"
	NSExtended = "urn:xmpp:mam:2#extended"
	NSSID      = "urn:xmpp:sid:0"                 // XEP-0359
	NSRSM      = "http://jabber.org/protocol/rsm" // XEP-0059
	NSHints    = "urn:xmpp:hints"                 // XEP-0334
)

// Error is a query or preferences request the server refuses, with the stanza error to answer.
type Error struct {
	Condition stanza.Condition
	Text      string
}

func (e *Error) Error() string { return "mam: " + string(e.Condition) + ": " + e.Text }

// Stanza is the stanza error.
func (e *Error) Stanza() stanza.Error { return stanza.NewError(e.Condition).WithText(e.Text) }

func fail(c stanza.Condition, text string) *Error { return &Error{Condition: c, Text: text} }

// RSM is the XEP-0059 <set/> of a request.
type RSM struct {
	// Max is the requested page size, -1 when not given.
	Max int
	// After / Before are the UIDs to page from; HasBefore with Before "" asks for the last page (§2.5).
	After               string
	Before              string
	HasAfter, HasBefore bool
}

// Served reports whether ns is a version of the protocol answered here (NS, NS1 or NS0).
func Served(ns string) bool { return ns == NS || ns == NS1 || ns == NS0 }

// FinInMessage reports whether a query in ns ends with <fin/> in a message of its own after an empty IQ result
// sent before the results (mam:0, XEP-0313 0.3), rather than with <fin/> in the IQ result after them.
func FinInMessage(ns string) bool { return ns == NS0 }

// Query is a parsed <query xmlns='urn:xmpp:mam:2'/> (or mam:1, mam:0).
type Query struct {
	// NS is the query's namespace: the results, <fin/> and form answer in it.
	NS      string
	QueryID string
	// With filters by the other party (zero: any), §4.1.1: a bare JID matches every resource of it.
	With jid.JID
	// Start and End bound the time (zero: unbounded), inclusive (§4.1.2).
	Start, End time.Time
	// AfterID, BeforeID and IDs are the extended fields (§4.1.3).
	AfterID, BeforeID string
	IDs               []string
	RSM               RSM
	// Flip: <flip-page/>, the page is sent newest first (§4.3.4).
	Flip bool
}

// ParseQuery reads a query. Errors follow XEP-0313: an unknown field is feature-not-implemented (§4.1.5), as is
// an RSM <index/> (this server does not jump to an offset); anything malformed is bad-request.
func ParseQuery(q *xmlstream.Node) (Query, error) {
	out := Query{NS: q.Name.Space, QueryID: q.Attr("queryid"), RSM: RSM{Max: -1}}
	if !Served(out.NS) {
		out.NS = NS
	}
	if x := dataform.Find(q); x != nil {
		if err := out.readForm(dataform.Parse(x)); err != nil {
			return Query{}, err
		}
	}
	if set := q.Child(NSRSM, "set"); set != nil {
		r, err := ParseRSM(set)
		if err != nil {
			return Query{}, err
		}
		out.RSM = r
	}
	out.Flip = q.Child(out.NS, "flip-page") != nil
	return out, nil
}

func (out *Query) readForm(f dataform.Form) error {
	if f.Type != "submit" && f.Type != "" {
		return fail(stanza.BadRequest, "the query form must be of type submit")
	}
	if f.FormType != "" && f.FormType != out.NS {
		return fail(stanza.BadRequest, "the query form's FORM_TYPE must be "+out.NS)
	}
	for _, v := range f.Vars {
		vals := f.Values[v]
		if out.NS != NS && (v == "ids" || v == "after-id" || v == "before-id") {
			// §4.1.5: a field the form of this version does not have (the extended ones are mam:2's).
			return fail(stanza.FeatureNotImplemented, "the field "+v+" is urn:xmpp:mam:2#extended")
		}
		if v == "ids" {
			for _, id := range vals {
				if id != "" {
					out.IDs = append(out.IDs, id)
				}
			}
			continue
		}
		if len(vals) > 1 {
			return fail(stanza.BadRequest, "the field "+v+" has more than one value")
		}
		val := strings.TrimSpace(f.One(v))
		switch v {
		case "with":
			if val == "" {
				continue
			}
			j, err := jid.Parse(val)
			if err != nil {
				return fail(stanza.BadRequest, "with is not a JID")
			}
			out.With = j
		case "start", "end":
			if val == "" {
				continue
			}
			t, err := ParseTime(val)
			if err != nil {
				return fail(stanza.BadRequest, v+" is not an XEP-0082 date and time")
			}
			if v == "start" {
				out.Start = t
			} else {
				out.End = t
			}
		case "after-id":
			out.AfterID = val
		case "before-id":
			out.BeforeID = val
		default:
			return fail(stanza.FeatureNotImplemented, "unknown field "+v)
		}
	}
	return nil
}

// ParseRSM reads a request's <set xmlns='http://jabber.org/protocol/rsm'/>.
func ParseRSM(set *xmlstream.Node) (RSM, error) {
	r := RSM{Max: -1}
	if m := set.Child(NSRSM, "max"); m != nil {
		n, err := strconv.Atoi(strings.TrimSpace(m.TextContent()))
		if err != nil || n < 0 {
			return r, fail(stanza.BadRequest, "max is not a non-negative integer")
		}
		r.Max = n
	}
	if set.Child(NSRSM, "index") != nil {
		return r, fail(stanza.FeatureNotImplemented, "paging by index is not supported")
	}
	if a := set.Child(NSRSM, "after"); a != nil {
		r.After, r.HasAfter = a.TextContent(), true
		if r.After == "" {
			return r, fail(stanza.BadRequest, "after is empty")
		}
	}
	if b := set.Child(NSRSM, "before"); b != nil {
		r.Before, r.HasBefore = b.TextContent(), true
	}
	if r.HasAfter && r.HasBefore {
		// XEP-0313 §4.3.2: RSM does not define both at once; before-id/after-id in the form do that.
		return r, fail(stanza.BadRequest, "before and after together")
	}
	return r, nil
}

// ParseTime reads an XEP-0082 DateTime (a time zone is required; fractions of a second are allowed).
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// FormatTime writes an XEP-0082 DateTime in UTC with microseconds (what the archive keeps, so a stamp a client
// got back selects exactly that message as a start or end).
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// QueryForm is the answer to a query of type get (§4.1.5): the form with every field the server supports.
func QueryForm() string { return QueryFormNS(NS) }

// QueryFormNS is QueryForm in namespace ns (NS, NS1 or NS0; only mam:2's form has the extended fields).
func QueryFormNS(ns string) string {
	basic := "<query xmlns='" + ns + "'><x xmlns='" + dataform.NS + "' type='form'>" +
		"<field var='FORM_TYPE' type='hidden'><value>" + ns + "</value></field>" +
		"<field var='with' type='jid-single'/>" +
		"<field var='start' type='text-single'/>" +
		"<field var='end' type='text-single'/>"
	if ns != NS {
		return basic + "</x></query>"
	}
	return basic +
		"<field var='before-id' type='text-single'/>" +
		"<field var='after-id' type='text-single'/>" +
		"<field var='ids' type='list-multi'><validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:string'><open/></validate></field>" +
		"</x></query>"
}

// Result is the <result/> payload of one result message (§4.2): the archived message (serialised with its own
// xmlns='jabber:client') forwarded (XEP-0297) with the time it was archived (XEP-0203).
func Result(queryID, id string, stamp time.Time, archived string) string {
	return ResultNS(NS, queryID, id, stamp, archived)
}

// ResultNS is Result in namespace ns.
func ResultNS(ns, queryID, id string, stamp time.Time, archived string) string {
	b := make([]byte, 0, 200+len(archived))
	b = append(b, "<result xmlns='"...)
	b = append(b, ns...)
	b = append(b, '\'')
	if queryID != "" {
		b = attr(b, "queryid", queryID)
	}
	b = attr(b, "id", id)
	b = append(b, "><forwarded xmlns='"+stanza.NSForward+"'><delay xmlns='"+stanza.NSDelay+"'"...)
	b = attr(b, "stamp", FormatTime(stamp))
	b = append(b, "/>"...)
	b = append(b, archived...)
	return string(append(b, "</forwarded></result>"...))
}

// Fin is what the IQ result of a query says about the page.
type Fin struct {
	// Complete: the page reaches the end of the selection in the direction of paging (§4.3.2).
	Complete bool
	// First and Last are the UIDs of the page's first and last message ("" for an empty page).
	First, Last string
	// Count is the size of the whole selection (RSM <count/>), -1 to leave it out.
	Count int
	// NS is the namespace of the query answered ("": NS).
	NS string
	// QueryID is the query's queryid, written in mam:0 only: its <fin/> travels in a message of its own, which
	// the client matches to its query by it (mam:1 and mam:2 match the IQ result by its id).
	QueryID string
}

// String is the <fin/> element.
func (f Fin) String() string {
	b := make([]byte, 0, 160)
	ns := f.NS
	if ns == "" {
		ns = NS
	}
	b = append(b, "<fin xmlns='"...)
	b = append(b, ns...)
	b = append(b, '\'')
	if ns == NS0 && f.QueryID != "" {
		b = attr(b, "queryid", f.QueryID)
	}
	if f.Complete {
		b = append(b, " complete='true'"...)
	}
	b = append(b, "><set xmlns='"+NSRSM+"'>"...)
	if f.First != "" {
		b = append(b, "<first>"...)
		b = xmlstream.AppendEscapedText(b, f.First)
		b = append(b, "</first><last>"...)
		b = xmlstream.AppendEscapedText(b, f.Last)
		b = append(b, "</last>"...)
	}
	if f.Count >= 0 {
		b = append(b, "<count>"...)
		b = strconv.AppendInt(b, int64(f.Count), 10)
		b = append(b, "</count>"...)
	}
	return string(append(b, "</set></fin>"...))
}

// Bound is one end of an archive for <metadata/>.
type Bound struct {
	ID    string
	Stamp time.Time
}

// Metadata is the answer to <metadata/> (§5): the first and last message, or an empty element for an empty
// archive (nil).
func Metadata(first, last *Bound) string {
	if first == nil || last == nil {
		return "<metadata xmlns='" + NS + "'/>"
	}
	b := []byte("<metadata xmlns='" + NS + "'><start")
	b = attr(b, "id", first.ID)
	b = attr(b, "timestamp", FormatTime(first.Stamp))
	b = append(b, "/><end"...)
	b = attr(b, "id", last.ID)
	b = attr(b, "timestamp", FormatTime(last.Stamp))
	return string(append(b, "/></metadata>"...))
}

// Defaults of the preferences (§6.1).
const (
	Always = "always"
	Never  = "never"
	Roster = "roster"
)

// Prefs are the archiving preferences (§6.1): the default and the JIDs always and never archived.
type Prefs struct {
	Default       string
	Always, Never []string
	// NS is the namespace String writes ("": NS); ParsePrefs sets it to the request's.
	NS string
}

// ParsePrefs reads <prefs/> of a set: default is required and one of always, never, roster; the JIDs are
// prepared (RFC 7622) and kept once each.
func ParsePrefs(p *xmlstream.Node) (Prefs, error) {
	out := Prefs{Default: p.Attr("default"), NS: p.Name.Space}
	if !Served(out.NS) {
		out.NS = NS
	}
	switch out.Default {
	case Always, Never, Roster:
	default:
		return Prefs{}, fail(stanza.BadRequest, "default must be always, never or roster")
	}
	read := func(local string) ([]string, error) {
		var list []string
		seen := map[string]bool{}
		for _, l := range p.ChildrenNamed(out.NS, local) {
			for _, j := range l.ChildrenNamed(out.NS, "jid") {
				parsed, err := jid.Parse(strings.TrimSpace(j.TextContent()))
				if err != nil {
					return nil, fail(stanza.JIDMalformed, "not a JID in "+local)
				}
				if s := parsed.String(); !seen[s] {
					seen[s] = true
					list = append(list, s)
				}
			}
		}
		return list, nil
	}
	var err error
	if out.Always, err = read("always"); err != nil {
		return Prefs{}, err
	}
	if out.Never, err = read("never"); err != nil {
		return Prefs{}, err
	}
	return out, nil
}

// String is the <prefs/> element (§6.1: <always/> and <never/> are present even when empty).
func (p Prefs) String() string {
	ns := p.NS
	if ns == "" {
		ns = NS
	}
	b := []byte("<prefs xmlns='" + ns + "'")
	b = attr(b, "default", p.Default)
	b = append(b, '>')
	for _, l := range []struct {
		name string
		jids []string
	}{{"always", p.Always}, {"never", p.Never}} {
		if len(l.jids) == 0 {
			b = append(b, "<"+l.name+"/>"...)
			continue
		}
		b = append(b, "<"+l.name+">"...)
		for _, j := range l.jids {
			b = append(b, "<jid>"...)
			b = xmlstream.AppendEscapedText(b, j)
			b = append(b, "</jid>"...)
		}
		b = append(b, "</"+l.name+">"...)
	}
	return string(append(b, "</prefs>"...))
}

// Archives says whether the preferences archive a message with the other party with (§6.1): a JID listed
// under never, then always (bare or full, as listed), decides; otherwise the default, where roster asks
// inRoster.
func (p Prefs) Archives(with jid.JID, inRoster func(jid.JID) bool) bool {
	bare, full := with.Bare().String(), with.String()
	for _, j := range p.Never {
		if j == bare || j == full {
			return false
		}
	}
	for _, j := range p.Always {
		if j == bare || j == full {
			return true
		}
	}
	switch p.Default {
	case Always:
		return true
	case Roster:
		return inRoster(with.Bare())
	}
	return false
}

// Archivable decides whether a user archive keeps message n of type typ (XEP-0313 §7.1.1): type chat or normal
// (or none, which is normal) with a <body/>; never errors, groupchat (not kept here) or headline. The XEP-0334
// hints override it: <no-store/> and <no-permanent-store/> keep a message out (an archive is permanent storage),
// <store/> keeps a chat or normal message that has no body. A message that is a carbon or a MAM result of its own
// (forwarded copies) has no body of its own and stays out.
func Archivable(n *xmlstream.Node, typ string) bool {
	if !ArchivableType(typ) {
		return false
	}
	body, store := false, false
	for _, k := range n.Elements() {
		switch {
		case k.Name.Space == stanza.NSClient && k.Name.Local == "body":
			body = true
		case k.Name.Space == NSHints && (k.Name.Local == "no-store" || k.Name.Local == "no-permanent-store"):
			return false
		case k.Name.Space == NSHints && k.Name.Local == "store":
			store = true
		case k.Name.Space == stanza.NSCarbons, Served(k.Name.Space) && k.Name.Local == "result":
			return false
		}
	}
	return body || store
}

// ArchivableType reports whether messages of type typ may be archived at all (what Archivable checks first).
func ArchivableType(typ string) bool {
	switch typ {
	case "", "normal", "chat":
		return true
	}
	return false
}

// StanzaID is the XEP-0359 <stanza-id/> an archiving entity by adds to a message.
func StanzaID(id, by string) string {
	b := []byte("<stanza-id xmlns='" + NSSID + "'")
	b = attr(b, "id", id)
	b = attr(b, "by", by)
	return string(append(b, "/>"...))
}

// StanzaIDBy returns the id of n's <stanza-id/> set by by, "" if none.
func StanzaIDBy(n *xmlstream.Node, by string) string {
	for _, k := range n.ChildrenNamed(NSSID, "stanza-id") {
		if k.Attr("by") == by {
			return k.Attr("id")
		}
	}
	return ""
}

// MayClaimStanzaIDBy reports, from the bytes raw of a stanza and without parsing them, whether it may hold a
// <stanza-id/> whose 'by' is by (one WithoutStanzaIDs removes): false only when it certainly holds none. Such an
// element has its name in the bytes, and an attribute whose name ends in "by" (a name is never written with
// references) with, between its quotes, by itself or something written with a reference (an '&'): by is a bare
// JID, whose characters never need escaping. One pass over the attributes named …by, which are rare (a room's
// groupchat copy has the room's stanza-id: its value is the room's JID), spares the archive hook a parse of
// every copy of a fan-out.
func MayClaimStanzaIDBy(raw, by string) bool {
	if by == "" {
		return strings.Contains(raw, "stanza-id") // an absent 'by' reads as "" too
	}
	for i := 0; ; {
		k := strings.Index(raw[i:], "by")
		if k < 0 {
			return false
		}
		i += k + 2
		j := skipSpace(raw, i)
		if j == len(raw) || raw[j] != '=' {
			continue
		}
		j = skipSpace(raw, j+1)
		if j == len(raw) || (raw[j] != '\'' && raw[j] != '"') {
			return strings.Contains(raw, "stanza-id") // not an attribute as we know it: be careful
		}
		end := strings.IndexByte(raw[j+1:], raw[j])
		if end < 0 {
			return strings.Contains(raw, "stanza-id")
		}
		if v := raw[j+1 : j+1+end]; (v == by || strings.IndexByte(v, '&') >= 0) && strings.Contains(raw, "stanza-id") {
			return true
		}
		i = j + 1 + end
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// WithoutStanzaIDs returns n without the <stanza-id/> children claiming to be by by (XEP-0359 §3.3: an
// archiving entity removes those a sender forged), or n itself when it has none. n is not changed.
func WithoutStanzaIDs(n *xmlstream.Node, by string) *xmlstream.Node {
	if !hasStanzaIDBy(n, by) {
		return n
	}
	c := *n
	c.Children = make([]*xmlstream.Node, 0, len(n.Children))
	for _, k := range n.Children {
		if k.Name.Space == NSSID && k.Name.Local == "stanza-id" && k.Attr("by") == by {
			continue
		}
		c.Children = append(c.Children, k)
	}
	return &c
}

func hasStanzaIDBy(n *xmlstream.Node, by string) bool {
	for _, k := range n.ChildrenNamed(NSSID, "stanza-id") {
		if k.Attr("by") == by {
			return true
		}
	}
	return false
}

func attr(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, "='"...)
	b = xmlstream.AppendEscapedAttr(b, value)
	return append(b, '\'')
}
