package pep

import (
	"errors"
	"slices"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/avatar"
	"github.com/xmppd/xmppd/protocol/bookmarks"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// The conversions between PEP and the older forms of the same data, which other features own (they talk through
// the user actor's events, feature/events.go):
//   - bookmarks (XEP-0411, XEP-0402 §5.3): the XEP-0402 node urn:xmpp:bookmarks:1 (one item per room), the
//     XEP-0048 <storage/> in private XML (feature "private"), and the same <storage/> as the item 'current' of
//     the PEP node storage:bookmarks. A client's change to any of the three is written to the other two;
//   - the avatar (XEP-0398): an XEP-0084 avatar published here becomes the vCard's photo (feature "vcard"), and
//     a photo set in the vCard is published here.
//
// Each is a feature of its own in the registry (so that it is advertised, and can be disabled, on its own),
// working only when PEP and the other form's owner are enabled too. The work is done here, by the owner of the
// PEP nodes.

// BookmarksConversion is XEP-0411 and XEP-0402 §5.3 (#compat with private XML, #compat-pep with the legacy PEP
// node).
var BookmarksConversion = &feature.Feature{
	Name:        bookmarksConversion,
	Enabled:     func(cfg *config.Config) bool { return enabled(cfg, name, privateFeature) },
	AccountVars: []string{bookmarks.NSConversion, bookmarks.NSCompat, bookmarks.NSCompatPEP},
}

// AvatarConversion is XEP-0398.
var AvatarConversion = &feature.Feature{
	Name:        avatarConversion,
	Enabled:     func(cfg *config.Config) bool { return enabled(cfg, name, vcardFeature) },
	AccountVars: []string{avatar.NSConversion},
}

// The names of the features: this package's, and those of the features that own the other forms
// (features/privatexml, features/vcard).
const (
	name                = "pep"
	bookmarksConversion = "bookmarks-conversion"
	avatarConversion    = "avatar-conversion"
	privateFeature      = "private"
	vcardFeature        = "vcard"
)

func enabled(cfg *config.Config, names ...string) bool {
	for _, n := range names {
		if slices.Contains(cfg.Features.Disable, n) {
			return false
		}
	}
	return true
}

// conversions is what the part converts, decided once from the configuration.
type conversions struct {
	bookmarks, avatar bool
	// legacyKnown: private XML's <storage/> has been read (or written) since the part started, so the legacy
	// PEP node, when it exists, mirrors it. legacyPending: XEP-0402 bookmarks changed before that; they are
	// written to the legacy forms once the answer is in (never before: that would overwrite rooms that only
	// the legacy form had).
	legacyKnown, legacyAsked, legacyPending bool
}

func conversionsOf(cfg *config.Config) conversions {
	return conversions{
		bookmarks: enabled(cfg, name, bookmarksConversion, privateFeature),
		avatar:    enabled(cfg, name, avatarConversion, vcardFeature),
	}
}

// bookmarksConfig and legacyConfig are the configurations of nodes the conversion creates: XEP-0402 §5's for
// bookmarks, and for both the owner-only access XEP-0411 §6 requires of what comes from private storage.
func bookmarksConfig() pubsub.Config {
	c := legacyConfig()
	c.MaxItems = pubsub.MaxItemsMax
	c.SendLastPublished = pubsub.SendNever
	return c
}

func legacyConfig() pubsub.Config {
	c := pubsub.DefaultPEP()
	c.AccessModel = pubsub.AccessWhitelist
	return c
}

// askLegacy asks private XML for the legacy bookmarks once (loadNodes): XEP-0411 §5 wants bookmarks stored
// there before the conversion existed to reach PEP before a PEP-only client reads them.
func (p *part) askLegacy() {
	if !p.conv.bookmarks || p.conv.legacyAsked || p.nodes[bookmarks.NSLegacy] != nil {
		if p.nodes[bookmarks.NSLegacy] != nil {
			p.conv.legacyKnown = true
		}
		return
	}
	p.conv.legacyAsked = true
	p.u.Announce(feature.ReadPrivate{Space: bookmarks.NSLegacy, Local: "storage", By: name})
}

// clientChanged runs after a client's request changed n (published, retracted, purged, deleted).
func (p *part) clientChanged(n *node) {
	live := p.nodes[n.name] == n
	switch {
	case n.name == bookmarks.NS && p.conv.bookmarks:
		if !p.conv.legacyKnown {
			p.conv.legacyPending = true // askLegacy's answer is on its way
			return
		}
		p.writeLegacy(p.bookmarks2(), p.legacyOther())
	case n.name == bookmarks.NSLegacy && p.conv.bookmarks && live && n.last != nil:
		p.legacyChanged(n.last.Payload, false)
	case n.name == avatar.NSMetadata && p.conv.avatar && live && n.last != nil:
		p.avatarPublished(n.last.Payload)
	}
}

// Heard (feature.Listener): the other forms changed, or private XML answered askLegacy.
func (p *part) Heard(ev any) {
	switch e := ev.(type) {
	case feature.PrivateChanged:
		if e.By == name || !p.conv.bookmarks || e.Space != bookmarks.NSLegacy || e.Local != "storage" {
			return
		}
		if p.loaded() {
			p.legacyChanged(e.Element, true)
		}
	case feature.PrivateRead:
		if e.By != name || e.Space != bookmarks.NSLegacy || !p.loaded() {
			return
		}
		p.conv.legacyKnown = true
		if l, ok := parseLegacy(e.Element); ok && (len(l.Rooms) > 0 || len(l.Other) > 0) {
			p.importLegacy(l)
		} else if p.conv.legacyPending {
			p.writeLegacy(p.bookmarks2(), nil)
		}
		p.conv.legacyPending = false
	case feature.VCardChanged:
		if e.By != name && p.conv.avatar && p.loaded() {
			p.vcardChanged(e.VCard)
		}
	}
}

// loaded loads the nodes, logging a failure.
func (p *part) loaded() bool {
	if err := p.loadNodes(); err != nil {
		p.u.Log().Error().Err(err).Msg("pep: loading nodes")
		return false
	}
	return true
}

func parseLegacy(xml string) (bookmarks.Legacy, bool) {
	if xml == "" {
		return bookmarks.Legacy{}, false
	}
	n, err := xmlstream.ParseNode(xml, "")
	if err != nil {
		return bookmarks.Legacy{}, false
	}
	return bookmarks.ParseLegacy(n)
}

// ---- bookmarks ----

// bookmarks2 are the rooms of the XEP-0402 node, oldest first.
func (p *part) bookmarks2() []bookmarks.Bookmark {
	if p.nodes[bookmarks.NS] == nil {
		return nil
	}
	items, err := p.u.Server().Store().PubSubItems(bg, p.service(), bookmarks.NS, 0)
	if err != nil {
		p.u.Log().Error().Err(err).Msg("pep: reading bookmarks")
		return nil
	}
	out := make([]bookmarks.Bookmark, 0, len(items))
	for i := len(items) - 1; i >= 0; i-- {
		n, err := xmlstream.ParseNode(items[i].Payload, "")
		if err != nil {
			continue
		}
		if b, ok := bookmarks.ParseItem(items[i].ID, n); ok {
			out = append(out, b)
		}
	}
	return out
}

// legacyOther is what the legacy form holds besides rooms (<url/> and others' extensions), from the legacy PEP
// node, which mirrors private XML.
func (p *part) legacyOther() []string {
	n := p.nodes[bookmarks.NSLegacy]
	if n == nil || p.details(n) != nil || n.last == nil {
		return nil
	}
	l, _ := parseLegacy(n.last.Payload)
	return l.Other
}

// writeLegacy writes rooms (and other) as the legacy <storage/> to private XML and the legacy PEP node.
func (p *part) writeLegacy(rooms []bookmarks.Bookmark, other []string) {
	xml := bookmarks.Legacy{Rooms: rooms, Other: other}.String()
	if n := p.nodes[bookmarks.NSLegacy]; n != nil && p.details(n) == nil && n.last != nil && n.last.Payload == xml {
		return
	}
	p.u.Announce(feature.StorePrivate{Element: xml, By: name})
	p.publishOwn(bookmarks.NSLegacy, legacyConfig(), "current", xml)
	p.conv.legacyKnown = true
}

// legacyChanged: a client stored the legacy <storage/> (in private XML when fromPrivate, else in the legacy PEP
// node). The XEP-0402 node gets the difference and the other legacy place the same element.
func (p *part) legacyChanged(xml string, fromPrivate bool) {
	l, ok := parseLegacy(xml)
	if !ok {
		return
	}
	p.conv.legacyKnown = true
	cur := p.bookmarks2()
	for _, room := range l.Rooms {
		i := slices.IndexFunc(cur, func(b bookmarks.Bookmark) bool { return b.JID == room.JID })
		if i >= 0 {
			if bookmarks.Same(cur[i], room) {
				continue
			}
			room.Extensions = cur[i].Extensions // §3.3: the legacy form cannot carry them; keep them
		}
		p.publishOwn(bookmarks.NS, bookmarksConfig(), room.JID, room.Item())
	}
	var gone []string
	for _, b := range cur {
		if !slices.ContainsFunc(l.Rooms, func(r bookmarks.Bookmark) bool { return r.JID == b.JID }) {
			gone = append(gone, b.JID)
		}
	}
	p.retractOwn(bookmarks.NS, gone)
	if fromPrivate {
		p.publishOwn(bookmarks.NSLegacy, legacyConfig(), "current", xml)
	} else {
		p.u.Announce(feature.StorePrivate{Element: xml, By: name})
	}
}

// importLegacy brings rooms that only private XML had into the XEP-0402 node (a room both have keeps its
// XEP-0402 form), then writes the union back to the legacy forms.
func (p *part) importLegacy(l bookmarks.Legacy) {
	cur := p.bookmarks2()
	for _, room := range l.Rooms {
		if !slices.ContainsFunc(cur, func(b bookmarks.Bookmark) bool { return b.JID == room.JID }) {
			p.publishOwn(bookmarks.NS, bookmarksConfig(), room.JID, room.Item())
		}
	}
	p.writeLegacy(p.bookmarks2(), l.Other)
}

// ---- avatars ----

// avatarPublished: XEP-0398 §4.1, the image the new metadata names (the info without url, in the data node)
// becomes the vCard's photo; empty metadata (the avatar switched off, XEP-0084 §4.5) removes it.
func (p *part) avatarPublished(payload string) {
	n, err := xmlstream.ParseNode(payload, "")
	if err != nil {
		return
	}
	info, ok, off := avatar.Pick(n)
	if off {
		p.u.Announce(feature.SetVCardPhoto{By: name})
		return
	}
	if !ok || p.nodes[avatar.NSData] == nil {
		return
	}
	it, err := p.u.Server().Store().PubSubItem(bg, p.service(), avatar.NSData, info.ID)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			p.u.Log().Error().Err(err).Msg("pep: reading the avatar data")
		}
		return
	}
	dn, err := xmlstream.ParseNode(it.Payload, "")
	if err != nil {
		return
	}
	data := avatar.Data(dn)
	if h, _, ok := avatar.Hash(data); !ok || h != info.ID {
		// §4.1: "SHOULD verify that the SHA-1 hash of the image matches the id".
		p.u.Log().Warn().Str("id", info.ID).Msg("pep: the avatar's data does not match its id; not copied to the vCard")
		return
	}
	p.u.Announce(feature.SetVCardPhoto{Type: info.Type, BinVal: data, By: name})
}

// vcardChanged: XEP-0398 §4.2, a photo set in the vCard is published as data, then as metadata (which
// notifies), unless it is the avatar already.
func (p *part) vcardChanged(vcard string) {
	n, err := xmlstream.ParseNode(vcard, "")
	if err != nil {
		return
	}
	typ, data, ok := avatar.Photo(n)
	if !ok {
		return
	}
	h, size, ok := avatar.Hash(data)
	if !ok {
		return
	}
	if m := p.nodes[avatar.NSMetadata]; m != nil && p.details(m) == nil && m.last != nil {
		if mn, err := xmlstream.ParseNode(m.last.Payload, ""); err == nil {
			if cur, ok, _ := avatar.Pick(mn); ok && cur.ID == h {
				return
			}
		}
	}
	item := avatar.DataPayload(data)
	if len(item) > p.lim.itemBytes {
		p.u.Server().LimitHit(LimitItemBytes)
		p.u.Log().Warn().Int("bytes", len(item)).Msg("pep: the vCard photo is larger than a PEP item may be; not published")
		return
	}
	if typ == "" {
		typ = "image/png" // XEP-0084 §4.2.1 requires a type; the vCard did not say
	}
	if p.publishOwn(avatar.NSData, pubsub.DefaultPEP(), h, item) {
		p.publishOwn(avatar.NSMetadata, pubsub.DefaultPEP(), h, avatar.MetadataPayload(avatar.Info{ID: h, Type: typ, Bytes: size}))
	}
}

// ---- publishing on the owner's behalf ----

// publishOwn publishes payload as item id of node name on the owner's behalf, creating the node with cfg if
// needed, and notifies like a client's publish. A node that exists with another access model than cfg's
// whitelist is left alone (XEP-0411 §6: what the user alone may read must not become readable by others).
func (p *part) publishOwn(name string, cfg pubsub.Config, id, payload string) bool {
	if !p.loaded() {
		return false
	}
	n := p.nodes[name]
	var err error
	if n == nil {
		if n, err = p.createNode(name, cfg); err != nil {
			p.u.Log().Error().Err(err).Str("node", name).Msg("pep: creating a node for a conversion")
			return false
		}
	} else if err = p.details(n); err != nil {
		p.u.Log().Error().Err(err).Str("node", name).Msg("pep: loading node")
		return false
	}
	if cfg.AccessModel == pubsub.AccessWhitelist && n.cfg.AccessModel != pubsub.AccessWhitelist {
		p.u.Log().Warn().Str("node", name).Str("access_model", n.cfg.AccessModel).Msg("pep: not converting into a node others may read")
		return false
	}
	it := storage.PubSubItem{ID: id, Publisher: p.service(), Payload: payload, Published: time.Now().UTC().Truncate(time.Microsecond)}
	if err := p.put(n, it); err != nil {
		p.u.Log().Error().Err(err).Str("node", name).Msg("pep: publishing a conversion")
		return false
	}
	p.notify(n, pubsub.ItemsEvent(name, []pubsub.Item{itemOf(it)}, n.cfg.DeliverPayloads))
	return true
}

// retractOwn retracts ids from node name on the owner's behalf, with a retract notification.
func (p *part) retractOwn(name string, ids []string) {
	n := p.nodes[name]
	if n == nil || len(ids) == 0 {
		return
	}
	gone, err := p.remove(n, ids)
	if err != nil {
		p.u.Log().Error().Err(err).Str("node", name).Msg("pep: retracting a conversion")
	}
	if len(gone) > 0 && n.cfg.NotifyRetract {
		p.notify(n, pubsub.RetractEvent(name, gone...))
	}
}
