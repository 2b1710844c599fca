package pep

import (
	"strings"
	"testing"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/avatar"
	"github.com/xmppd/xmppd/protocol/bookmarks"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

var _ feature.Listener = (*part)(nil)

// bm2 is an XEP-0402 publish with the publish-options XEP-0402 §5 prescribes.
func bm2(room, name string) string {
	return publishXML(bookmarks.NS, room, "<conference xmlns='"+bookmarks.NS+"' name='"+name+"'/>",
		options("pubsub#persist_items", "true", "pubsub#max_items", "max", "pubsub#send_last_published_item", "never",
			"pubsub#access_model", "whitelist"))
}

// announced returns, and forgets, the events of type E the part announced.
func announced[E any](f *fixture) []E {
	var out []E
	rest := f.u.Announced[:0]
	for _, ev := range f.u.Announced {
		if e, ok := ev.(E); ok {
			out = append(out, e)
		} else {
			rest = append(rest, ev)
		}
	}
	f.u.Announced = rest
	return out
}

func legacyRooms(t *testing.T, xml string) []string {
	t.Helper()
	l, ok := parseLegacy(xml)
	if !ok {
		t.Fatalf("not a legacy <storage/>: %s", xml)
	}
	var out []string
	for _, r := range l.Rooms {
		out = append(out, r.JID)
	}
	return out
}

// Bookmarks that only private XML had (stored before the conversion existed) are not overwritten by the first
// XEP-0402 publish: the part waits for private XML's answer, merges, and writes the union to both legacy forms.
func TestBookmarksMigrationMergesBeforeWriting(t *testing.T) {
	f := newFixture(t)
	f.own(t, "set", bm2("new@muc.example", "New")).result(t, "publish")
	asks := announced[feature.ReadPrivate](f)
	if len(asks) != 1 || asks[0].Space != bookmarks.NSLegacy || asks[0].By != name {
		t.Fatalf("asked private XML %+v, want one ReadPrivate of storage:bookmarks", asks)
	}
	if st := announced[feature.StorePrivate](f); len(st) != 0 {
		t.Fatalf("wrote private XML before knowing what it holds: %+v", st)
	}
	old := "<storage xmlns='storage:bookmarks'><conference jid='old@muc.example' name='Old' autojoin='true'/><url url='u' name='n'/></storage>"
	f.p.Heard(feature.PrivateRead{Space: bookmarks.NSLegacy, Local: "storage", Element: old, By: name})
	st := announced[feature.StorePrivate](f)
	if len(st) != 1 {
		t.Fatalf("StorePrivate %d times, want once", len(st))
	}
	if got := legacyRooms(t, st[0].Element); strings.Join(got, " ") != "new@muc.example old@muc.example" && strings.Join(got, " ") != "old@muc.example new@muc.example" {
		t.Fatalf("private XML gets rooms %v, want both", got)
	}
	if !strings.Contains(st[0].Element, "<url") {
		t.Fatalf("the <url/> was lost: %s", st[0].Element)
	}
	items := f.p.bookmarks2()
	if len(items) != 2 {
		t.Fatalf("bookmarks:1 has %+v, want new and old", items)
	}
	// The legacy PEP node mirrors private XML, whitelist only (XEP-0411 §6).
	leg := f.p.nodes[bookmarks.NSLegacy]
	if leg == nil || leg.last == nil || leg.last.Payload != st[0].Element || leg.cfg.AccessModel != pubsub.AccessWhitelist {
		t.Fatalf("legacy PEP node %+v", leg)
	}
	if f.p.nodes[bookmarks.NS].cfg.AccessModel != pubsub.AccessWhitelist {
		t.Fatal("the bookmarks:1 node the conversion created is not whitelist")
	}
}

// A legacy client's private XML write reaches the XEP-0402 node as the difference; the part never converts its own
// writes back (By), and an unchanged room is not republished.
func TestBookmarksFromPrivate(t *testing.T) {
	f := newFixture(t)
	f.own(t, "set", bm2("keep@muc.example", "Keep")).result(t, "publish")
	f.own(t, "set", bm2("drop@muc.example", "Drop")).result(t, "publish")
	f.p.Heard(feature.PrivateRead{Space: bookmarks.NSLegacy, Local: "storage", By: name}) // private XML had none
	announced[feature.StorePrivate](f)
	f.u.Routed = nil
	xml := "<storage xmlns='storage:bookmarks'><conference jid='keep@muc.example' name='Keep'/><conference jid='add@muc.example'/></storage>"
	f.p.Heard(feature.PrivateChanged{Space: bookmarks.NSLegacy, Local: "storage", Element: xml, By: name})
	if got := len(f.p.bookmarks2()); got != 2 {
		t.Fatalf("its own write was converted back: %d items", got)
	}
	f.p.Heard(feature.PrivateChanged{Space: bookmarks.NSLegacy, Local: "storage", Element: xml})
	var ids []string
	for _, b := range f.p.bookmarks2() {
		ids = append(ids, b.JID)
	}
	if strings.Join(ids, " ") != "keep@muc.example add@muc.example" {
		t.Fatalf("bookmarks:1 = %v, want keep (untouched) and add", ids)
	}
	if st := announced[feature.StorePrivate](f); len(st) != 0 {
		t.Fatalf("wrote back to private XML what came from there: %+v", st)
	}
	if leg := f.p.nodes[bookmarks.NSLegacy]; leg == nil || leg.last.Payload != xml {
		t.Fatal("the legacy PEP node does not mirror private XML")
	}
}

// A legacy PEP node that others may read is not written into (XEP-0411 §6).
func TestBookmarksNotIntoAnOpenNode(t *testing.T) {
	f := newFixture(t)
	f.own(t, "set", ps("<publish node='storage:bookmarks'><item id='current'><storage xmlns='storage:bookmarks'/></item></publish>")+
		"").result(t, "legacy publish with the default (presence) access")
	announced[feature.StorePrivate](f)
	before := f.p.nodes[bookmarks.NSLegacy].last.Payload
	f.p.Heard(feature.PrivateChanged{Space: bookmarks.NSLegacy, Local: "storage",
		Element: "<storage xmlns='storage:bookmarks'><conference jid='secret@muc.example'><password>pw</password></conference></storage>"})
	if got := f.p.nodes[bookmarks.NSLegacy].last.Payload; got != before {
		t.Fatalf("a password went into a presence-access node: %s", got)
	}
}

// XEP-0398 §4.1: the image named by the metadata becomes the vCard's photo, only when it matches its id; empty
// metadata removes the photo.
func TestAvatarToVCard(t *testing.T) {
	f := newFixture(t)
	const img = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	h, size, _ := avatar.Hash(img)
	pub := func(node, id, payload string) {
		f.own(t, "set", ps("<publish node='"+node+"'><item id='"+id+"'>"+payload+"</item></publish>")).result(t, "publish "+node)
	}
	pub(avatar.NSData, h, avatar.DataPayload(img))
	pub(avatar.NSMetadata, h, avatar.MetadataPayload(avatar.Info{ID: h, Type: "image/png", Bytes: size}))
	got := announced[feature.SetVCardPhoto](f)
	if len(got) != 1 || got[0].BinVal != img || got[0].Type != "image/png" || got[0].By != name {
		t.Fatalf("SetVCardPhoto = %+v", got)
	}
	pub(avatar.NSData, strings.Repeat("0", 40), avatar.DataPayload(img)) // data under a wrong id
	pub(avatar.NSMetadata, "bad", avatar.MetadataPayload(avatar.Info{ID: strings.Repeat("0", 40), Type: "image/png", Bytes: size}))
	if got := announced[feature.SetVCardPhoto](f); len(got) != 0 {
		t.Fatalf("an image that does not match its id was copied: %+v", got)
	}
	pub(avatar.NSMetadata, "off", "<metadata xmlns='"+avatar.NSMetadata+"'/>")
	if got := announced[feature.SetVCardPhoto](f); len(got) != 1 || got[0].BinVal != "" {
		t.Fatalf("disabling the avatar: %+v, want one removal", got)
	}
}

// XEP-0398 §4.2: a vCard photo is published as data and metadata (notifying), once; the vCard the part itself
// caused is not converted back.
func TestVCardToAvatar(t *testing.T) {
	f := newFixture(t)
	const img = "R0lGODlhAQABAAAAACw="
	h, _, _ := avatar.Hash(img)
	card := "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/gif</TYPE><BINVAL>" + img + "</BINVAL></PHOTO></vCard>"
	f.p.Heard(feature.VCardChanged{VCard: card, By: name})
	if f.p.nodes[avatar.NSMetadata] != nil {
		t.Fatal("converted its own vCard write back")
	}
	f.p.Heard(feature.VCardChanged{VCard: card})
	m := f.p.nodes[avatar.NSMetadata]
	if m == nil || m.last == nil || m.last.ID != h || f.p.nodes[avatar.NSData].last.ID != h {
		t.Fatalf("metadata %+v", m)
	}
	n, _ := xmlstream.ParseNode(m.last.Payload, "")
	if info, ok, _ := avatar.Pick(n); !ok || info.Type != "image/gif" {
		t.Fatalf("metadata payload %s", m.last.Payload)
	}
	seq := m.last.Published
	f.p.Heard(feature.VCardChanged{VCard: card})
	if f.p.nodes[avatar.NSMetadata].last.Published != seq {
		t.Fatal("the same photo was published again")
	}
}
