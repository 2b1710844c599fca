// Package bookmarks converts group-chat bookmarks between their two forms: XEP-0048's one <storage/> element
// (kept in XEP-0049 private XML, or as the single item of the PEP node storage:bookmarks) and XEP-0402's one PEP
// item per room (node urn:xmpp:bookmarks:1, item id = the room's JID). The server keeps both in step (XEP-0411,
// XEP-0402 §5.3), so that an old client and a new one see the same rooms.
package bookmarks

import (
	"slices"
	"strings"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NS is XEP-0402's node and payload namespace.
	NS = "urn:xmpp:bookmarks:1"
	// NSLegacy is XEP-0048's namespace: the <storage/> element and the legacy PEP node's name.
	NSLegacy = "storage:bookmarks"
	// NSConversion is XEP-0411's disco feature; NSCompat and NSCompatPEP are XEP-0402 §5.3's (conversion with
	// private XML, and with the legacy PEP node).
	NSConversion = "urn:xmpp:bookmarks-conversion:0"
	NSCompat     = NS + "#compat"
	NSCompatPEP  = NS + "#compat-pep"
)

// Bookmark is one room as both forms know it. Extensions is XEP-0402 §3.3's <extensions/> element, serialised
// ("" for none): the legacy form cannot carry it, so a conversion from the legacy form keeps the one already
// stored for the room.
type Bookmark struct {
	JID        string
	Name       string
	Autojoin   bool
	Nick       string
	Password   string
	Extensions string
}

// Legacy is a parsed XEP-0048 <storage/>: its rooms, and what else it holds (<url/> elements, other clients'
// extensions) serialised in order, carried over untouched when the rooms change.
type Legacy struct {
	Rooms []Bookmark
	Other []string
}

// ParseLegacy reads a <storage xmlns='storage:bookmarks'/> element. Conferences without a valid room JID are
// dropped (they cannot become XEP-0402 items, whose id is the JID); a later duplicate of a room replaces the
// earlier one.
func ParseLegacy(n *xmlstream.Node) (Legacy, bool) {
	if n == nil || n.Name.Space != NSLegacy || n.Name.Local != "storage" {
		return Legacy{}, false
	}
	var l Legacy
	for _, c := range n.Elements() {
		if c.Name.Space != NSLegacy || c.Name.Local != "conference" {
			l.Other = append(l.Other, c.String())
			continue
		}
		room, ok := roomJID(c.Attr("jid"))
		if !ok {
			continue
		}
		b := Bookmark{JID: room, Name: c.Attr("name"), Autojoin: isTrue(c.Attr("autojoin"))}
		if x := c.Child(NSLegacy, "nick"); x != nil {
			b.Nick = x.TextContent()
		}
		if x := c.Child(NSLegacy, "password"); x != nil {
			b.Password = x.TextContent()
		}
		if i := slices.IndexFunc(l.Rooms, func(o Bookmark) bool { return o.JID == room }); i >= 0 {
			l.Rooms[i] = b
		} else {
			l.Rooms = append(l.Rooms, b)
		}
	}
	return l, true
}

// String is the <storage/> element.
func (l Legacy) String() string {
	var b []byte
	b = append(b, "<storage xmlns='"+NSLegacy+"'>"...)
	for _, r := range l.Rooms {
		b = append(b, "<conference jid='"...)
		b = xmlstream.AppendEscapedAttr(b, r.JID)
		b = append(b, '\'')
		b = r.appendContent(b)
		b = append(b, "</conference>"...)
	}
	for _, o := range l.Other {
		b = append(b, o...)
	}
	return string(append(b, "</storage>"...))
}

// ParseItem reads one XEP-0402 item: id is the room's JID, payload its <conference/>.
func ParseItem(id string, payload *xmlstream.Node) (Bookmark, bool) {
	room, ok := roomJID(id)
	if !ok || payload == nil || payload.Name.Space != NS || payload.Name.Local != "conference" {
		return Bookmark{}, false
	}
	b := Bookmark{JID: room, Name: payload.Attr("name"), Autojoin: isTrue(payload.Attr("autojoin"))}
	if x := payload.Child(NS, "nick"); x != nil {
		b.Nick = x.TextContent()
	}
	if x := payload.Child(NS, "password"); x != nil {
		b.Password = x.TextContent()
	}
	if x := payload.Child(NS, "extensions"); x != nil {
		b.Extensions = x.String()
	}
	return b, true
}

// Item is the XEP-0402 payload of b (the item's id is b.JID).
func (b Bookmark) Item() string {
	out := b.appendContent([]byte("<conference xmlns='" + NS + "'"))
	out = append(out, b.Extensions...)
	return string(append(out, "</conference>"...))
}

// appendContent appends what both forms' <conference/> say alike: the name and autojoin attributes (closing the
// start tag), then <nick/> and <password/>.
func (b Bookmark) appendContent(out []byte) []byte {
	if b.Name != "" {
		out = append(out, " name='"...)
		out = xmlstream.AppendEscapedAttr(out, b.Name)
		out = append(out, '\'')
	}
	if b.Autojoin {
		out = append(out, " autojoin='true'"...)
	}
	out = append(out, '>')
	out = appendText(out, "nick", b.Nick)
	return appendText(out, "password", b.Password)
}

// Same reports whether a and b say the same of a room in the legacy form's terms (extensions aside).
func Same(a, b Bookmark) bool {
	a.Extensions, b.Extensions = "", ""
	return a == b
}

func roomJID(s string) (string, bool) {
	j, err := jid.Parse(s)
	if err != nil || j.Local() == "" || j.Resource() != "" {
		return "", false
	}
	return j.String(), true
}

// isTrue reads an xs:boolean (XEP-0048 and XEP-0402 both say autojoin is one).
func isTrue(s string) bool {
	s = strings.TrimSpace(s)
	return s == "true" || s == "1"
}

func appendText(b []byte, name, text string) []byte {
	if text == "" {
		return b
	}
	b = append(b, "<"+name+">"...)
	b = xmlstream.AppendEscapedText(b, text)
	return append(b, "</"+name+">"...)
}
