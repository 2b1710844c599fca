// Package avatar converts the user's avatar between its two homes: XEP-0084 (an image in the PEP node
// urn:xmpp:avatar:data, described by an item of urn:xmpp:avatar:metadata, both with the image's SHA-1 as item id)
// and XEP-0054/XEP-0153 (the vCard's PHOTO, announced by its SHA-1 in presence). XEP-0398 has the server keep
// them in step and put the hash in the user's presence on the user's behalf.
package avatar

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// NSData and NSMetadata are XEP-0084's nodes and payload namespaces.
	NSData     = "urn:xmpp:avatar:data"
	NSMetadata = "urn:xmpp:avatar:metadata"
	// NSUpdate is XEP-0153's presence extension.
	NSUpdate = "vcard-temp:x:update"
	// NSConversion is XEP-0398's disco feature.
	NSConversion = "urn:xmpp:pep-vcard-conversion:0"
	nsVCard      = "vcard-temp"
)

// Hash decodes base64 image data (a BINVAL may be folded over lines, so white space is ignored) and returns its
// SHA-1 in lower-case hex (XEP-0084 §4.2.1, XEP-0153 §4.3), with the decoded size.
func Hash(b64 string) (hash string, size int, ok bool) {
	data, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, b64))
	if err != nil || len(data) == 0 {
		return "", 0, false
	}
	sum := sha1.Sum(data)
	return hex.EncodeToString(sum[:]), len(data), true
}

func dropSpace(r rune) rune {
	if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
		return -1
	}
	return r
}

// Photo is the embedded image of a vCard (n: a vcard-temp <vCard/>): its TYPE and BINVAL. ok false without
// one (no PHOTO, or one that only points to a URL).
func Photo(n *xmlstream.Node) (typ, binval string, ok bool) {
	if n == nil {
		return "", "", false
	}
	p := n.Child(nsVCard, "PHOTO")
	if p == nil {
		return "", "", false
	}
	bv := p.Child(nsVCard, "BINVAL")
	if bv == nil || strings.TrimSpace(bv.TextContent()) == "" {
		return "", "", false
	}
	if t := p.Child(nsVCard, "TYPE"); t != nil {
		typ = strings.TrimSpace(t.TextContent())
	}
	return typ, strings.Map(dropSpace, bv.TextContent()), true
}

// WithPhoto is the vCard n (nil: an empty one) with its PHOTO replaced by the image typ/binval, or removed when
// binval is "". Everything else is kept in order; n itself is not changed.
func WithPhoto(n *xmlstream.Node, typ, binval string) string {
	out := xmlstream.NewNode(nsVCard, "vCard")
	if n != nil {
		out.Attrs = n.Attrs
		for _, c := range n.Children {
			if c.Name.Space == nsVCard && c.Name.Local == "PHOTO" {
				continue
			}
			out.Children = append(out.Children, c)
		}
	}
	if binval != "" {
		p := xmlstream.NewNode(nsVCard, "PHOTO")
		if typ != "" {
			p.AddChild(xmlstream.NewNode(nsVCard, "TYPE").AddText(typ))
		}
		p.AddChild(xmlstream.NewNode(nsVCard, "BINVAL").AddText(binval))
		out.AddChild(p)
	}
	return out.String()
}

// Info is the <info/> of an avatar metadata item that describes an image stored in the data node.
type Info struct {
	ID, Type string
	Bytes    int
}

// Pick reads a metadata payload: the <info/> without url (XEP-0398 §4.1: the one whose image is in the data
// node), ok false if none; disabled reports an empty <metadata/> (XEP-0084 §4.5: the avatar is switched off).
func Pick(n *xmlstream.Node) (info Info, ok, disabled bool) {
	if n == nil || n.Name.Space != NSMetadata || n.Name.Local != "metadata" {
		return Info{}, false, false
	}
	infos := n.ChildrenNamed(NSMetadata, "info")
	if len(infos) == 0 {
		return Info{}, false, true
	}
	for _, i := range infos {
		if i.Attr("url") != "" || i.Attr("id") == "" {
			continue
		}
		bytes, _ := strconv.Atoi(i.Attr("bytes"))
		return Info{ID: strings.ToLower(i.Attr("id")), Type: i.Attr("type"), Bytes: bytes}, true, false
	}
	return Info{}, false, false
}

// Data is the base64 image of a data payload (<data xmlns='urn:xmpp:avatar:data'/>), "" if it is none.
func Data(n *xmlstream.Node) string {
	if n == nil || n.Name.Space != NSData || n.Name.Local != "data" {
		return ""
	}
	return strings.Map(dropSpace, n.TextContent())
}

// DataPayload and MetadataPayload are the items XEP-0398 §4.2 publishes for a vCard photo (the item ids are
// the hash).
func DataPayload(binval string) string {
	return "<data xmlns='" + NSData + "'>" + binval + "</data>"
}

func MetadataPayload(i Info) string {
	b := []byte("<metadata xmlns='" + NSMetadata + "'><info id='")
	b = xmlstream.AppendEscapedAttr(b, i.ID)
	b = append(b, "' bytes='"...)
	b = strconv.AppendInt(b, int64(i.Bytes), 10)
	b = append(b, "' type='"...)
	b = xmlstream.AppendEscapedAttr(b, i.Type)
	return string(append(b, "'/></metadata>"...))
}

// Stamp puts hash in an available presence as XEP-0398 §5 says: a presence without vcard-temp:x:update gets
// <x><photo>hash</photo></x>; an empty <x/> (without <photo/>) is overwritten; a <photo/> the client put there
// itself, empty ("not ready") or not, is left alone. It returns st itself when nothing changes.
func Stamp(st *stanza.Routed, hash string) *stanza.Routed {
	if hash == "" || st.Head.Name != "presence" || st.Head.Type != "" {
		return st
	}
	x := "<x xmlns='" + NSUpdate + "'><photo>" + hash + "</photo></x>"
	if !strings.Contains(st.Raw, NSUpdate) {
		return changed(st, stanza.InsertChild(st.Raw, "presence", x))
	}
	n, err := st.Node()
	if err != nil {
		return st
	}
	xs := n.ChildrenNamed(NSUpdate, "x")
	for _, e := range xs {
		if e.Child(NSUpdate, "photo") != nil {
			return st
		}
	}
	kept := xmlstream.NewNode(n.Name.Space, n.Name.Local)
	kept.Attrs = n.Attrs
	for _, c := range n.Children {
		if c.Name.Space != NSUpdate || c.Name.Local != "x" {
			kept.Children = append(kept.Children, c)
		}
	}
	return changed(st, stanza.InsertChild(string(kept.AppendXML(nil, stanza.NSClient)), "presence", x))
}

func changed(st *stanza.Routed, raw string) *stanza.Routed {
	out := stanza.New(st.Head, st.From, st.To, raw)
	out.Accepted = st.Accepted
	return out
}
