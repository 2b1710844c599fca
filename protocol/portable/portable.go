// Package portable reads and writes the XEP-0227 portable import/export format: one <server-data/> document of
// <host/> elements, each of <user/> elements holding the account's credentials, roster, pending subscription
// requests, vCard, private XML, blocklist, offline messages and PEP nodes.
//
// The package is pure: it reads an io.Reader and writes an io.Writer, resolves XInclude through a function the
// caller gives, and never touches storage. Reading streams: a Decoder hands out one User at a time and holds only
// that user in memory, so a file of any size is read in bounded memory (Limits.MaxUser bounds one user).
//
// Hostile input is refused with the line and the reason (*Error): a DOCTYPE or any other directive (no entity of
// any kind beyond XML's five is ever expanded), processing instructions other than the XML declaration, a root or
// host or user in a wrong namespace, bad JIDs, bad base64, and a user bigger than Limits.MaxUser.
//
// Namespaces: XEP-0227 1.x uses urn:xmpp:pie:0 (what Prosody 0.12 and ejabberd 23.01 write); version 0.2 used
// http://www.xmpp.org/extensions/xep-0227.html#ns, which is read too. Besides the XEP's own data (§ Users,
// Rosters, Offline Messages, Private XML Storage, vCards; SCRAM credentials in urn:xmpp:pie:0#scram), the
// format carries, as Prosody does, pending subscription requests as <presence type='subscribe'/> children of
// <user/>, PEP node configuration in <pubsub xmlns='…#owner'/> and PEP items in <pubsub xmlns='…pubsub'/>, and
// the XEP-0191 blocklist as <blocklist xmlns='urn:xmpp:blocking'/>.
package portable

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Namespaces.
const (
	NS         = "urn:xmpp:pie:0"
	NSOld      = "http://www.xmpp.org/extensions/xep-0227.html#ns"
	NSSCRAM    = "urn:xmpp:pie:0#scram"
	NSXInclude = "http://www.w3.org/2001/XInclude"
	NSRoster   = "jabber:iq:roster"
	NSPrivate  = "jabber:iq:private"
	NSVCard    = "vcard-temp"
	NSClient   = "jabber:client"
	NSBlocking = "urn:xmpp:blocking"
	NSPubSub   = "http://jabber.org/protocol/pubsub"
	NSOwner    = "http://jabber.org/protocol/pubsub#owner"
	NSDelay    = "urn:xmpp:delay"
	NSData     = "jabber:x:data"
)

// User is one account with its data. Strings holding XML (VCard, Private, Offline, PEP payloads and forms) are
// serialised elements with their namespace declared on the outermost element.
type User struct {
	Host, Name string // the bare JID is Name@Host, both prepared (RFC 7622)
	File       string // the file the <user/> came from (XInclude) and its line
	Line       int

	Password string // the 'password' attribute; "" if absent
	SCRAM    []SCRAM

	Roster  []RosterItem
	Pending []string // bare JIDs that asked to subscribe and were not answered yet
	VCard   string
	Private []string
	Blocked []string // bare or full JIDs, prepared
	Offline []string // <message xmlns='jabber:client'/> stanzas, oldest first
	PEP     []PEPNode

	// Skipped names the elements the decoder did not understand ("{ns}local"), for the operator's summary
	// (XEP-0227 § File format: an importer SHOULD ignore unknown data and notify the operator).
	Skipped []string
}

// Bare is the user's bare JID.
func (u *User) Bare() string { return u.Name + "@" + u.Host }

// SCRAM is a <scram-credentials/> element: one RFC 5802 salted credential.
type SCRAM struct {
	Mechanism  string // "SCRAM-SHA-1", "SCRAM-SHA-256", ...
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// RosterItem is one <item/> of the roster (RFC 6121 §2.1.2).
type RosterItem struct {
	JID          string
	Name         string
	Subscription string // none, to, from, both
	Ask          bool   // ask='subscribe'
	Approved     bool   // approved='true' (RFC 6121 §3.4 pre-approval)
	Groups       []string
}

// PEPNode is one node of the user's PEP service (XEP-0163).
type PEPNode struct {
	Node string
	// Form is the node configuration as a jabber:x:data form (<x/>), "" if the file gave none.
	Form    string
	Items   []PEPItem // oldest first
	Members []PEPMember
}

// PEPItem is one published item.
type PEPItem struct {
	ID      string
	Payload string // the <item/>'s child element, "" for none
}

// PEPMember is one affiliation and/or subscription (XEP-0060 §8.9, §8.8).
type PEPMember struct {
	JID          string
	Affiliation  string
	Subscription string
}

// Error is a refused file: where and why.
type Error struct {
	File   string
	Line   int
	Reason string
	// User is set when the error concerns one user's data only (a bad roster JID, bad credentials): the
	// decoder skipped that user and the next call to Next goes on with the next one. UserLine is the line of its
	// <user/>.
	User     string
	UserLine int
}

func (e *Error) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Limits bound what one file may make the decoder hold.
type Limits struct {
	MaxUser     int // bytes of one <user/> (and of any run of bytes between users); default 64 MiB
	MaxDepth    int // element nesting; default 64
	MaxIncludes int // XInclude files in all; default 1,000,000
	MaxInclude  int // XInclude nesting; default 4
}

func (l Limits) withDefaults() Limits {
	if l.MaxUser <= 0 {
		l.MaxUser = 64 << 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	if l.MaxIncludes <= 0 {
		l.MaxIncludes = 1_000_000
	}
	if l.MaxInclude <= 0 {
		l.MaxInclude = 4
	}
	return l
}

// Opener opens the file an <xi:include href='…'/> names, relative to the including file's name (base). A nil
// Opener makes any include an error.
type Opener func(base, href string) (name string, r io.ReadCloser, err error)

// errTooBig is what the budget reader returns when a user is bigger than the limit.
var errTooBig = errors.New("too big")

// budget fails reads once more than left bytes were read since the last reset, so encoding/xml never buffers
// more than the limit (it reads ahead by 4 KiB at most).
type budget struct {
	r    io.Reader
	left int
	max  int
}

func (b *budget) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooBig
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= n
	return n, err
}

func (b *budget) reset() { b.left = b.max }

// file is one document being read (the main file or an included one).
type file struct {
	name   string
	d      *xml.Decoder
	b      *budget
	closer io.Closer
	// root is what the document's root must be: "server-data" for the main file, "host" or "user" (or either
	// for lenience) for included files.
	host   string // the host the included file is in ("" for the main file)
	depth  int    // where we are: 0 before root, 1 inside server-data, 2 inside host
	inHost string // the current host (prepared) while inside <host/>
	ns     string // the namespace of the root, which host and user must share
	root   bool   // the root was seen
	// rootIsUser/rootIsHost mark included documents whose root is a user or a host.
	rootKind string
}

// Decoder reads users from a XEP-0227 document.
type Decoder struct {
	lim      Limits
	open     Opener
	stack    []*file
	includes int
	err      error
	// Skipped names the elements outside any <user/> that were ignored ("{ns}local").
	Skipped []string
}

// NewDecoder reads the document r (named name in errors and as the base of includes).
func NewDecoder(r io.Reader, name string, open Opener, lim Limits) *Decoder {
	d := &Decoder{lim: lim.withDefaults(), open: open}
	d.push(r, nil, name, "")
	return d
}

func (d *Decoder) push(r io.Reader, c io.Closer, name, host string) {
	b := &budget{r: r, max: d.lim.MaxUser}
	b.reset()
	x := xml.NewDecoder(b)
	x.Strict = true
	x.Entity = nil // only XML's own five entities and character references
	x.CharsetReader = nil
	f := &file{name: name, d: x, b: b, closer: c, host: host}
	d.stack = append(d.stack, f)
}

// Close closes any included file still open.
func (d *Decoder) Close() {
	for _, f := range d.stack {
		if f.closer != nil {
			f.closer.Close()
		}
	}
	d.stack = nil
}

func (d *Decoder) fail(f *file, format string, a ...any) error {
	line, _ := f.d.InputPos()
	d.err = &Error{File: f.name, Line: line, Reason: fmt.Sprintf(format, a...)}
	return d.err
}

func (d *Decoder) readErr(f *file, err error) error {
	if errors.Is(err, errTooBig) {
		return d.fail(f, "a user (or the data between two users) is bigger than %d bytes", d.lim.MaxUser)
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		d.err = &Error{File: f.name, Line: se.Line, Reason: "malformed XML: " + se.Msg}
		return d.err
	}
	if err == io.EOF {
		return d.fail(f, "the document ends before its root element is closed")
	}
	return d.fail(f, "%v", err)
}

// token is the next token of f with the checks that hold everywhere in the document.
func (d *Decoder) token(f *file) (xml.Token, error) {
	t, err := f.d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case xml.Directive:
		return nil, d.fail(f, "a DOCTYPE or other <!…> declaration is not allowed (no DTD, no entities)")
	case xml.ProcInst:
		if t.Target != "xml" {
			return nil, d.fail(f, "processing instruction <?%s?> is not allowed", t.Target)
		}
		if enc := procInstParam(string(t.Inst), "encoding"); enc != "" && !strings.EqualFold(enc, "utf-8") {
			return nil, d.fail(f, "encoding %q is not supported (only UTF-8)", enc)
		}
	}
	return t, nil
}

// tokenErr is what a failed token read returns: the error already recorded by fail, or the read error placed in
// its file and line.
func (d *Decoder) tokenErr(f *file, err error) error {
	if d.err != nil {
		return d.err
	}
	return d.readErr(f, err)
}

func procInstParam(s, param string) string {
	i := strings.Index(s, param+"=")
	if i < 0 || len(s) < i+len(param)+2 {
		return ""
	}
	s = s[i+len(param)+1:]
	q := s[0]
	if q != '\'' && q != '"' {
		return ""
	}
	s = s[1:]
	if j := strings.IndexByte(s, q); j >= 0 {
		return s[:j]
	}
	return ""
}

func pieNS(ns string) bool { return ns == NS || ns == NSOld }

// Next returns the next user; io.EOF after the last. After an error every call returns it again.
func (d *Decoder) Next() (*User, error) {
	if d.err != nil {
		return nil, d.err
	}
	for len(d.stack) > 0 {
		f := d.stack[len(d.stack)-1]
		t, err := d.token(f)
		if err == io.EOF && f.root && f.depth == 0 {
			d.pop()
			continue
		}
		if err != nil {
			return nil, d.tokenErr(f, err)
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(strings.TrimSpace(string(t))) != 0 {
				return nil, d.fail(f, "unexpected text outside <user/>")
			}
		case xml.EndElement:
			f.depth--
			if f.depth == 1 && f.rootKind == "server-data" || f.depth == 0 && f.rootKind == "host" {
				f.inHost = ""
			}
		case xml.StartElement:
			u, err := d.start(f, t)
			if err != nil {
				return nil, err
			}
			if u != nil {
				return u, nil
			}
		}
	}
	return nil, io.EOF
}

func (d *Decoder) pop() {
	f := d.stack[len(d.stack)-1]
	if f.closer != nil {
		f.closer.Close()
	}
	d.stack = d.stack[:len(d.stack)-1]
}

// start handles an element outside <user/>: the root, a host, a user or an include.
func (d *Decoder) start(f *file, t xml.StartElement) (*User, error) {
	if t.Name.Space == NSXInclude && t.Name.Local == "include" {
		return nil, d.include(f, t)
	}
	if !f.root {
		f.root = true
		if !pieNS(t.Name.Space) {
			return nil, d.fail(f, "the root element is {%s}%s, not a XEP-0227 element in %s", t.Name.Space, t.Name.Local, NS)
		}
		f.ns = t.Name.Space
		switch {
		case t.Name.Local == "server-data" && f.host == "" && len(d.stack) == 1:
			f.rootKind = "server-data"
			f.depth = 1
			return nil, nil
		case t.Name.Local == "host" && len(d.stack) > 1:
			f.rootKind = "host"
			f.depth = 1
			return nil, d.enterHost(f, t)
		case t.Name.Local == "user" && f.host != "":
			f.rootKind = "user"
			f.inHost = f.host
			return d.user(f, t)
		}
		return nil, d.fail(f, "unexpected root element <%s/>", t.Name.Local)
	}
	if t.Name.Space != f.ns {
		if t.Name.Local == "host" || t.Name.Local == "user" || pieNS(t.Name.Space) {
			return nil, d.fail(f, "<%s/> in namespace %q where %q was expected", t.Name.Local, t.Name.Space, f.ns)
		}
		// XEP-0227 § File format: unknown namespaces are ignored, and the operator told.
		d.Skipped = append(d.Skipped, "{"+t.Name.Space+"}"+t.Name.Local)
		if err := f.d.Skip(); err != nil {
			return nil, d.readErr(f, err)
		}
		return nil, nil
	}
	switch {
	case t.Name.Local == "host" && f.rootKind == "server-data" && f.depth == 1:
		f.depth = 2
		return nil, d.enterHost(f, t)
	case t.Name.Local == "user" && f.inHost != "" && (f.rootKind == "server-data" && f.depth == 2 || f.rootKind == "host" && f.depth == 1):
		return d.user(f, t)
	}
	return nil, d.fail(f, "unexpected element <%s/> here", t.Name.Local)
}

func attr(t xml.StartElement, local string) (string, bool) {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

func (d *Decoder) enterHost(f *file, t xml.StartElement) error {
	v, _ := attr(t, "jid")
	j, err := jid.Parse(v)
	if err != nil || j.Local() != "" || j.Resource() != "" {
		return d.fail(f, "<host jid=%q/> is not a domain JID", v)
	}
	if f.host != "" && j.Domain() != f.host {
		return d.fail(f, "included <host jid=%q/> is not the host %q that includes it", v, f.host)
	}
	f.inHost = j.Domain()
	return nil
}

func (d *Decoder) include(f *file, t xml.StartElement) error {
	href, _ := attr(t, "href")
	if p, ok := attr(t, "parse"); ok && p != "xml" {
		return d.fail(f, "xi:include parse=%q is not supported", p)
	}
	if _, ok := attr(t, "xpointer"); ok {
		return d.fail(f, "xi:include with xpointer is not supported")
	}
	if href == "" {
		return d.fail(f, "xi:include without href")
	}
	if d.open == nil {
		return d.fail(f, "xi:include href=%q: includes are not allowed here", href)
	}
	if len(d.stack) > d.lim.MaxInclude {
		return d.fail(f, "xi:include nested deeper than %d", d.lim.MaxInclude)
	}
	if d.includes++; d.includes > d.lim.MaxIncludes {
		return d.fail(f, "more than %d xi:include files", d.lim.MaxIncludes)
	}
	// The include element itself must be empty; skip to its end.
	if err := f.d.Skip(); err != nil {
		return d.readErr(f, err)
	}
	host := f.inHost
	if host == "" && f.rootKind != "server-data" {
		return d.fail(f, "xi:include outside <server-data/> or <host/>")
	}
	name, r, err := d.open(f.name, href)
	if err != nil {
		return d.fail(f, "xi:include href=%q: %v", href, err)
	}
	// An include under <server-data/> (host "") must hold a <host/>, one under <host/> a <user/>.
	d.push(r, r, name, host)
	return nil
}

// user reads one <user/> element completely.
func (d *Decoder) user(f *file, t xml.StartElement) (*User, error) {
	line, _ := f.d.InputPos()
	f.b.reset()
	name, _ := attr(t, "name")
	j, err := jid.New(name, f.inHost, "")
	if err != nil || name == "" {
		e := &Error{File: f.name, Line: line, Reason: fmt.Sprintf("<user name=%q/> is not a valid localpart: %v", name, err), User: name + "@" + f.inHost, UserLine: line}
		if err := f.d.Skip(); err != nil {
			return nil, d.readErr(f, err)
		}
		return nil, e
	}
	u := &User{Host: j.Domain(), Name: j.Local(), File: f.name, Line: line}
	u.Password, _ = attr(t, "password")
	for {
		tok, err := d.token(f)
		if err != nil {
			return nil, d.tokenErr(f, err)
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return u, nil
		case xml.CharData:
			if len(strings.TrimSpace(string(tok))) != 0 {
				return nil, d.fail(f, "unexpected text in <user/>")
			}
		case xml.StartElement:
			n, err := d.tree(f, tok, 1)
			if err != nil {
				return nil, err
			}
			if err := d.child(f, u, n); err != nil {
				if err := f.d.Skip(); err != nil { // the rest of this user
					return nil, d.readErr(f, err)
				}
				return nil, err
			}
		}
	}
}

// tree reads the element started by t into a Node (namespaces resolved).
func (d *Decoder) tree(f *file, t xml.StartElement, depth int) (*xmlstream.Node, error) {
	if depth > d.lim.MaxDepth {
		return nil, d.fail(f, "elements nested deeper than %d", d.lim.MaxDepth)
	}
	n := xmlstream.NewNode(t.Name.Space, t.Name.Local)
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		n.Attrs = append(n.Attrs, xmlstream.Attr{Name: xmlstream.Name{Space: a.Name.Space, Local: a.Name.Local}, Value: a.Value})
	}
	for {
		tok, err := d.token(f)
		if err != nil {
			return nil, d.tokenErr(f, err)
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return n, nil
		case xml.CharData:
			n.AddText(string(tok))
		case xml.StartElement:
			c, err := d.tree(f, tok, depth+1)
			if err != nil {
				return nil, err
			}
			n.AddChild(c)
		}
	}
}

// child interprets one child element of <user/>.
func (d *Decoder) child(f *file, u *User, n *xmlstream.Node) error {
	bad := func(format string, a ...any) error {
		line, _ := f.d.InputPos()
		return &Error{File: f.name, Line: line, Reason: fmt.Sprintf("user %s: "+format, append([]any{u.Bare()}, a...)...), User: u.Bare(), UserLine: u.Line}
	}
	switch {
	case n.Name.Space == NSSCRAM && n.Name.Local == "scram-credentials":
		c, err := parseSCRAM(n)
		if err != nil {
			return bad("%v", err)
		}
		u.SCRAM = append(u.SCRAM, c)
	case n.Name.Space == NSRoster && n.Name.Local == "query":
		for _, it := range n.ChildrenNamed(NSRoster, "item") {
			ri, err := parseRosterItem(it)
			if err != nil {
				return bad("%v", err)
			}
			u.Roster = append(u.Roster, ri)
		}
	case n.Name.Local == "presence" && (n.Name.Space == NSClient || pieNS(n.Name.Space)):
		if n.Attr("type") != "subscribe" {
			u.Skipped = append(u.Skipped, "presence type="+n.Attr("type"))
			return nil
		}
		j, err := bareJID(n.Attr("from"))
		if err != nil {
			return bad("pending subscription from %q: %v", n.Attr("from"), err)
		}
		u.Pending = append(u.Pending, j)
	case n.Name.Space == NSVCard && n.Name.Local == "vCard":
		u.VCard = n.String()
	case n.Name.Space == NSPrivate && n.Name.Local == "query":
		for _, c := range n.Elements() {
			if c.Name.Space == "" || strings.HasPrefix(c.Name.Space, "jabber:") {
				// XEP-0049 §3: elements in no namespace or in jabber:* are not private data.
				return bad("private XML element <%s xmlns=%q/> is not allowed (XEP-0049)", c.Name.Local, c.Name.Space)
			}
			u.Private = append(u.Private, c.String())
		}
	case n.Name.Space == NSBlocking && (n.Name.Local == "blocklist" || n.Name.Local == "block"):
		for _, it := range n.ChildrenNamed(NSBlocking, "item") {
			j, err := jid.Parse(it.Attr("jid"))
			if err != nil {
				return bad("blocked JID %q: %v", it.Attr("jid"), err)
			}
			u.Blocked = append(u.Blocked, j.String())
		}
	case n.Name.Local == "offline-messages" && (pieNS(n.Name.Space) || n.Name.Space == ""):
		for _, m := range n.Elements() {
			if m.Name.Local != "message" || m.Name.Space != NSClient && !pieNS(m.Name.Space) && m.Name.Space != "" {
				return bad("offline-messages holds <%s xmlns=%q/>, not a jabber:client message", m.Name.Local, m.Name.Space)
			}
			setNS(m, m.Name.Space, NSClient)
			u.Offline = append(u.Offline, m.String())
		}
	case n.Name.Space == NSOwner && n.Name.Local == "pubsub":
		return d.pepOwner(u, n, bad)
	case n.Name.Space == NSPubSub && n.Name.Local == "pubsub":
		for _, items := range n.ChildrenNamed(NSPubSub, "items") {
			p := pepNode(u, items.Attr("node"))
			if p == nil {
				return bad("PEP <items/> without a node")
			}
			for _, it := range items.ChildrenNamed(NSPubSub, "item") {
				item := PEPItem{ID: it.Attr("id")}
				if item.ID == "" {
					return bad("PEP item without id in node %q", p.Node)
				}
				if pl := it.FirstElement(); pl != nil {
					item.Payload = pl.String()
				}
				p.Items = append(p.Items, item)
			}
		}
	default:
		u.Skipped = append(u.Skipped, "{"+n.Name.Space+"}"+n.Name.Local)
	}
	return nil
}

// setNS moves an element from namespace from (and its descendants in from) to to: the XEP's <message/> is in
// jabber:client, but some exporters leave it in the file's default namespace.
func setNS(n *xmlstream.Node, from, to string) {
	if n.Name.Space != from {
		return
	}
	n.Name.Space = to
	for _, c := range n.Elements() {
		setNS(c, from, to)
	}
}

func pepNode(u *User, name string) *PEPNode {
	if name == "" {
		return nil
	}
	for i := range u.PEP {
		if u.PEP[i].Node == name {
			return &u.PEP[i]
		}
	}
	u.PEP = append(u.PEP, PEPNode{Node: name})
	return &u.PEP[len(u.PEP)-1]
}

func (d *Decoder) pepOwner(u *User, n *xmlstream.Node, bad func(string, ...any) error) error {
	for _, c := range n.Elements() {
		p := pepNode(u, c.Attr("node"))
		if p == nil {
			return bad("PEP <%s/> without a node", c.Name.Local)
		}
		switch c.Name.Local {
		case "configure":
			if x := c.Child(NSData, "x"); x != nil {
				p.Form = x.String()
			}
		case "affiliations":
			for _, a := range c.ChildrenNamed(NSOwner, "affiliation") {
				j, err := jid.Parse(a.Attr("jid"))
				if err != nil {
					return bad("PEP affiliation JID %q: %v", a.Attr("jid"), err)
				}
				p.member(j.String()).Affiliation = a.Attr("affiliation")
			}
		case "subscriptions":
			for _, s := range c.ChildrenNamed(NSOwner, "subscription") {
				j, err := jid.Parse(s.Attr("jid"))
				if err != nil {
					return bad("PEP subscription JID %q: %v", s.Attr("jid"), err)
				}
				state := s.Attr("subscription")
				if state == "" {
					state = s.Attr("subscribed") // Prosody 0.12 writes subscribed='subscribed'
				}
				p.member(j.String()).Subscription = state
			}
		default:
			u.Skipped = append(u.Skipped, "pubsub#owner "+c.Name.Local)
		}
	}
	return nil
}

func (p *PEPNode) member(j string) *PEPMember {
	for i := range p.Members {
		if p.Members[i].JID == j {
			return &p.Members[i]
		}
	}
	p.Members = append(p.Members, PEPMember{JID: j})
	return &p.Members[len(p.Members)-1]
}

func bareJID(s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", err
	}
	if j.Resource() != "" {
		return "", errors.New("not a bare JID")
	}
	return j.String(), nil
}

var subscriptions = map[string]bool{"": true, "none": true, "to": true, "from": true, "both": true}

func parseRosterItem(it *xmlstream.Node) (RosterItem, error) {
	j, err := bareJID(it.Attr("jid"))
	if err != nil {
		return RosterItem{}, fmt.Errorf("roster item jid %q: %v", it.Attr("jid"), err)
	}
	ri := RosterItem{JID: j, Name: it.Attr("name"), Subscription: it.Attr("subscription")}
	if !subscriptions[ri.Subscription] {
		return RosterItem{}, fmt.Errorf("roster item %s: subscription %q", j, ri.Subscription)
	}
	if ri.Subscription == "" {
		ri.Subscription = "none"
	}
	switch it.Attr("ask") {
	case "", "unsubscribe":
	case "subscribe":
		ri.Ask = true
	default:
		return RosterItem{}, fmt.Errorf("roster item %s: ask %q", j, it.Attr("ask"))
	}
	ri.Approved = it.Attr("approved") == "true" || it.Attr("approved") == "1"
	for _, g := range it.ChildrenNamed(NSRoster, "group") {
		ri.Groups = append(ri.Groups, g.TextContent())
	}
	return ri, nil
}

// hashSize is the digest length of the SCRAM mechanisms we know.
var hashSize = map[string]int{"SCRAM-SHA-1": 20, "SCRAM-SHA-256": 32, "SCRAM-SHA-512": 64}

func parseSCRAM(n *xmlstream.Node) (SCRAM, error) {
	c := SCRAM{Mechanism: strings.TrimSuffix(n.Attr("mechanism"), "-PLUS")}
	size, ok := hashSize[c.Mechanism]
	if !ok {
		return c, fmt.Errorf("scram-credentials mechanism %q is not supported", n.Attr("mechanism"))
	}
	text := func(local string) string {
		if e := n.Child(NSSCRAM, local); e != nil {
			return strings.TrimSpace(e.TextContent())
		}
		return ""
	}
	it, err := strconv.Atoi(text("iter-count"))
	if err != nil || it < 1 || it > 10_000_000 {
		return c, fmt.Errorf("scram-credentials iter-count %q", text("iter-count"))
	}
	c.Iterations = it
	var bad error
	dec := func(local string) []byte {
		b, err := base64.StdEncoding.DecodeString(text(local))
		if err != nil || len(b) == 0 {
			bad = fmt.Errorf("scram-credentials %s is not base64", local)
		}
		return b
	}
	c.Salt, c.StoredKey, c.ServerKey = dec("salt"), dec("stored-key"), dec("server-key")
	if bad != nil {
		return c, bad
	}
	if len(c.StoredKey) != size || len(c.ServerKey) != size {
		// ejabberd 23.01 writes its database's base64 text base64-encoded once more (keys and salt alike).
		// The keys' length tells: decode once more when that gives keys of the hash's size.
		sk, err1 := base64.StdEncoding.DecodeString(string(c.StoredKey))
		vk, err2 := base64.StdEncoding.DecodeString(string(c.ServerKey))
		salt, err3 := base64.StdEncoding.DecodeString(string(c.Salt))
		if err1 != nil || err2 != nil || err3 != nil || len(sk) != size || len(vk) != size || len(salt) == 0 {
			return c, fmt.Errorf("scram-credentials keys are %d and %d bytes, not %d", len(c.StoredKey), len(c.ServerKey), size)
		}
		c.StoredKey, c.ServerKey, c.Salt = sk, vk, salt
	}
	return c, nil
}
