package pep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// part is the PEP service of one account, in its user actor.
type part struct {
	u   feature.User
	lim limits
	// nodes: nil until first needed (loadNodes); most user actors never touch PEP.
	nodes map[string]*node
	// peers are the available resources the user actor has seen presence from: the contacts' (in the roster)
	// and the owner's own. capsKey is their "hash ver" ("" without caps).
	peers map[string]*peer
	// interests maps a caps "hash ver" to the nodes it asks +notify for, once the cache told (CapsKnown).
	interests map[string][]string
	watching  map[string]bool
	// capsAsked: our own XEP-0115 queries to remote contacts' resources, by IQ id → "hash ver" (remoteCaps).
	capsAsked map[string]string
	conv      conversions // convert.go
}

type node struct {
	name    string
	cfg     pubsub.Config
	created time.Time
	// members (by JID) and last (the newest item, nil if none) are loaded once, with the node's details.
	detail  bool
	members map[string]storage.PubSubMember
	last    *storage.PubSubItem
}

type peer struct {
	full    jid.JID
	capsKey string
	// told: the last items were sent for this capsKey (§4.3.2 happens once per availability, not per update).
	told bool
}

func newPart(u feature.User) *part {
	return &part{u: u, lim: limitsOf(u.Server().Config()), peers: map[string]*peer{}, interests: map[string][]string{},
		watching: map[string]bool{}, capsAsked: map[string]string{}, conv: conversionsOf(u.Server().Config())}
}

var bg = context.Background()

func (p *part) service() string { return p.u.Bare().String() }

// loadNodes reads the account's nodes once.
func (p *part) loadNodes() error {
	if p.nodes != nil {
		return nil
	}
	list, err := p.u.Server().Store().PubSubNodes(bg, p.service())
	if err != nil {
		return err
	}
	p.nodes = make(map[string]*node, len(list))
	for _, n := range list {
		cfg, err := pubsub.Decode(n.Config, pubsub.DefaultPEP())
		if err != nil {
			p.u.Log().Warn().Err(err).Str("node", n.Node).Msg("pep: unreadable node configuration; using the default")
		}
		p.nodes[n.Node] = &node{name: n.Node, cfg: cfg, created: n.Created}
	}
	p.askLegacy()
	return nil
}

// details loads the node's members and newest item once.
func (p *part) details(n *node) error {
	if n.detail {
		return nil
	}
	st := p.u.Server().Store()
	ms, err := st.PubSubMembers(bg, p.service(), n.name)
	if err != nil {
		return err
	}
	items, err := st.PubSubItems(bg, p.service(), n.name, 1)
	if err != nil {
		return err
	}
	n.members = make(map[string]storage.PubSubMember, len(ms))
	for _, m := range ms {
		n.members[m.JID] = m
	}
	n.last = nil
	if len(items) > 0 {
		n.last = &items[0]
	}
	n.detail = true
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---- who may do what (XEP-0060 §4.5, §6.1.3, §6.5.9) ----

// affiliation of j with n: the owner is owner; otherwise what the member list says.
func (p *part) affiliation(n *node, j jid.JID) string {
	if j.Bare() == p.u.Bare() {
		return pubsub.Owner
	}
	if m, ok := n.members[j.Bare().String()]; ok && m.Affiliation != "" {
		return m.Affiliation
	}
	return pubsub.None
}

// access reports whether j may subscribe to and read n; when not, the error XEP-0060 §6.1.3 / §6.5.9 names.
// details(n) must have been loaded.
func (p *part) access(n *node, j jid.JID, roster map[jid.JID][]string) (bool, stanza.Error) {
	switch p.affiliation(n, j) {
	case pubsub.Owner, pubsub.Publisher, pubsub.Member:
		return true, stanza.Error{}
	case pubsub.Outcast:
		return false, stanza.NewError(stanza.Forbidden)
	}
	switch n.cfg.AccessModel {
	case pubsub.AccessOpen:
		return true, stanza.Error{}
	case pubsub.AccessPresence:
		if p.u.MaySeePresence(j) {
			return true, stanza.Error{}
		}
		return false, pubsub.Error(stanza.NotAuthorized, "presence-subscription-required")
	case pubsub.AccessRoster:
		if roster == nil {
			roster = p.rosterGroups()
		}
		if groups, ok := roster[j.Bare()]; ok {
			for _, g := range groups {
				if slices.Contains(n.cfg.RosterGroups, g) {
					return true, stanza.Error{}
				}
			}
		}
		return false, pubsub.Error(stanza.NotAuthorized, "not-in-roster-group")
	case pubsub.AccessAuthorize:
		return false, pubsub.Error(stanza.NotAuthorized, "pending-subscription")
	}
	return false, pubsub.Error(stanza.NotAllowed, "closed-node") // whitelist
}

// rosterGroups maps each contact to its groups (roster access, computed once per fan-out).
func (p *part) rosterGroups() map[jid.JID][]string {
	out := map[jid.JID][]string{}
	for _, it := range p.u.Roster() {
		if j, err := jid.Parse(it.JID); err == nil {
			out[j] = it.Groups
		}
	}
	return out
}

// ---- presence: who is there, and what they want to hear about ----

// Inbound (feature.UserInbound) watches presence from contacts' resources; it never consumes.
func (p *part) Inbound(st *stanza.Routed) bool {
	if st.Head.Name == "iq" && len(p.capsAsked) > 0 && st.To.Resource() == "" {
		if key, ok := p.capsAsked[st.Head.ID]; ok && (st.Head.Type == "result" || st.Head.Type == "error") {
			delete(p.capsAsked, st.Head.ID)
			p.remoteCapsAnswer(key, st)
			return false // the answer to our own query
		}
	}
	if st.Head.Name != "presence" || st.From.Resource() == "" || st.From.Bare() == p.u.Bare() {
		return true
	}
	switch st.Head.Type {
	case "":
		if p.u.Subscription(st.From) == "" {
			return true // only the roster's contacts: a stranger's presence must not grow our state
		}
		p.seen(st.From, st)
	case "unavailable", "error":
		delete(p.peers, st.From.String())
	}
	return true
}

// PresenceChanged (feature.PresenceChanged): the owner's own resources count as peers too.
func (p *part) PresenceChanged(r feature.Resource, _ bool) {
	if !r.Available || r.Presence == nil {
		delete(p.peers, r.Full.String())
		return
	}
	p.seen(r.Full, r.Presence)
}

// Dropped (feature.Dropped): a session of the owner is gone.
func (p *part) Dropped(r feature.Resource) { delete(p.peers, r.Full.String()) }

// seen records available presence from full; on a new availability or new caps, the last items follow once the
// caps are known.
func (p *part) seen(full jid.JID, st *stanza.Routed) {
	key := capsKey(st)
	pr := p.peers[full.String()]
	if pr == nil {
		pr = &peer{full: full}
		p.peers[full.String()] = pr
	} else if pr.capsKey == key {
		return // a presence update: §4.3.2 is for becoming available
	}
	pr.capsKey, pr.told = key, false
	if key == "" {
		return
	}
	if _, ok := p.interests[key]; ok {
		p.tellLast(pr)
		return
	}
	if !p.watching[key] {
		p.watching[key] = true
		hash, ver, _ := strings.Cut(key, " ")
		p.u.WatchCaps(hash, ver)
		// A contact on another server: only its own server's sessions verify its caps. In a cluster, a
		// contact of this domain may have its session on another node, whose cache verifies them: ask too.
		cfg := p.u.Server().Config()
		if d := full.Domain(); d != p.u.Bare().Domain() && !cfg.Serves(d) || cfg.Cluster.Enabled {
			p.askRemoteCaps(full, st, key)
		}
	}
}

// maxCapsAsked bounds the caps queries one user actor has in flight to remote resources.
const maxCapsAsked = 32

// askRemoteCaps: a contact's resource on another server (or on another node of the cluster) announced caps the
// cache does not know yet, and no session here will ever verify them (only a client's own server asks it). The user part asks the resource
// itself, as XEP-0115 §6.3 has any entity do (disco#info to the full JID with node#ver), and trusts the answer
// only if it hashes to ver (§5.4); the features it verified serve this user's +notify (not the server-wide
// cache: they were not verified by a session of the client).
func (p *part) askRemoteCaps(full jid.JID, st *stanza.Routed, key string) {
	if len(p.capsAsked) >= maxCapsAsked {
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	c := n.Child(caps.NS, "c")
	if c == nil || c.Attr("node") == "" {
		return
	}
	_, ver, _ := strings.Cut(key, " ")
	id := p.u.NextID("caps")
	p.capsAsked[id] = key
	q := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + string(xmlstream.AppendEscapedAttr(nil, c.Attr("node")+"#"+ver)) + "'/>"
	p.u.Route(stanza.Generate("iq", "get", p.u.Bare(), full, id, q))
}

// remoteCapsAnswer takes the answer to askRemoteCaps; one that fails (an error, or features that do not hash to
// ver) lets the next availability with these caps ask again.
func (p *part) remoteCapsAnswer(key string, st *stanza.Routed) {
	hash, ver, _ := strings.Cut(key, " ")
	var info *xmlstream.Node
	if n, err := st.Node(); err == nil && st.Head.Type == "result" {
		info = n.Child(stanza.NSDiscoInf, "query")
	}
	if info == nil || !caps.Verify(info, hash, ver) {
		delete(p.watching, key)
		return
	}
	var feats []string
	for _, f := range info.ChildrenNamed(stanza.NSDiscoInf, "feature") {
		feats = append(feats, f.Attr("var"))
	}
	if _, ok := p.interests[key]; !ok {
		p.Handle(feature.CapsKnown{Hash: hash, Ver: ver, Features: feats})
	}
}

// capsKey is the "hash ver" of the XEP-0115 <c/> in a presence, "" if none (legacy caps without hash included:
// they cannot be verified, §5.4).
func capsKey(st *stanza.Routed) string {
	if !strings.Contains(st.Raw, caps.NS) {
		return ""
	}
	n, err := st.Node()
	if err != nil {
		return ""
	}
	c := n.Child(caps.NS, "c")
	if c == nil || !caps.Supported(c.Attr("hash")) || c.Attr("ver") == "" {
		return ""
	}
	return c.Attr("hash") + " " + c.Attr("ver")
}

// Handle takes the caps cache's answers.
func (p *part) Handle(msg any) {
	m, ok := msg.(feature.CapsKnown)
	if !ok {
		return
	}
	key := m.Hash + " " + m.Ver
	delete(p.watching, key)
	p.interests[key] = pubsub.Interests(m.Features)
	for _, pr := range p.peers {
		if pr.capsKey == key && !pr.told {
			p.tellLast(pr)
		}
	}
}

// wants reports whether the peer asked +notify for node.
func (p *part) wants(pr *peer, node string) bool {
	return pr.capsKey != "" && slices.Contains(p.interests[pr.capsKey], node)
}

// tellLast sends the peer the newest item of every node it wants and may read (XEP-0163 §4.3.2).
func (p *part) tellLast(pr *peer) {
	pr.told = true
	want := p.interests[pr.capsKey]
	if len(want) == 0 {
		return
	}
	if err := p.loadNodes(); err != nil {
		p.u.Log().Error().Err(err).Msg("pep: loading nodes")
		return
	}
	for _, name := range want {
		n := p.nodes[name]
		if n == nil || n.cfg.SendLastPublished != pubsub.SendOnSubAndPresence || !n.cfg.DeliverNotifications {
			continue
		}
		if err := p.details(n); err != nil {
			p.u.Log().Error().Err(err).Str("node", name).Msg("pep: loading node")
			continue
		}
		if n.last == nil {
			continue
		}
		if ok, _ := p.access(n, pr.full, nil); !ok {
			continue
		}
		p.sendLast(n, pr.full)
	}
}

func (p *part) sendLast(n *node, to jid.JID) {
	ev := pubsub.ItemsEvent(n.name, []pubsub.Item{itemOf(*n.last)}, n.cfg.DeliverPayloads)
	ev += stanza.Delay(p.u.Bare().String(), n.last.Published.UTC().Format("2006-01-02T15:04:05.000000Z"), "")
	p.u.Route(stanza.Generate("message", n.cfg.NotificationType, p.u.Bare(), to, p.u.NextID("pep"), ev))
}

func itemOf(it storage.PubSubItem) pubsub.Item {
	return pubsub.Item{ID: it.ID, Publisher: it.Publisher, Payload: it.Payload}
}

// ---- notifications (XEP-0060 §7.1.2, XEP-0163 §4.3.1) ----

// notify sends event (an <event/> payload) about n to everyone who is to hear of it. filtered: only to
// presence-based recipients that asked +notify (item events); node deletion and purge go to every interested
// resource too.
func (p *part) notify(n *node, event string) {
	if !n.cfg.DeliverNotifications {
		return
	}
	var roster map[jid.JID][]string
	if n.cfg.AccessModel == pubsub.AccessRoster {
		roster = p.rosterGroups()
	}
	targets := make([]jid.JID, 0, len(p.peers)+len(n.members))
	// member: the subscribers among the targets, so that no peer is told twice: a bare JID stands for all its
	// resources, a full JID for that one. (A set, not a search of targets: that was quadratic in the contacts.)
	member := map[jid.JID]bool{}
	for _, m := range n.members {
		if m.Subscription != pubsub.Subscribed {
			continue
		}
		j, err := jid.Parse(m.JID)
		if err != nil {
			continue
		}
		if ok, _ := p.access(n, j, roster); !ok {
			continue
		}
		targets = append(targets, j)
		member[j] = true
	}
	for _, pr := range p.peers {
		if !p.wants(pr, n.name) || member[pr.full.Bare()] || member[pr.full] {
			continue
		}
		if ok, _ := p.access(n, pr.full, roster); !ok { // the owner's own resources always pass
			continue
		}
		targets = append(targets, pr.full)
	}
	if len(targets) == 0 {
		return
	}
	msg := stanza.Generate("message", n.cfg.NotificationType, p.u.Bare(), targets[0], p.u.NextID("pep"), event)
	p.u.Route(msg)
	for _, t := range targets[1:] {
		p.u.Route(msg.Retarget(t))
	}
}

// AccountItems (feature.ItemsProvider): disco#items of the bare JID lists the nodes the requester may read
// (XEP-0060 §5.2).
func (p *part) AccountItems(requester jid.JID) string {
	if err := p.loadNodes(); err != nil {
		p.u.Log().Error().Err(err).Msg("pep: loading nodes")
		return ""
	}
	var b []byte
	for _, name := range slices.Sorted(maps.Keys(p.nodes)) {
		n := p.nodes[name]
		if err := p.details(n); err != nil {
			continue
		}
		if ok, _ := p.access(n, requester, nil); !ok {
			continue
		}
		b = append(b, "<item jid='"...)
		b = append(b, attrText(p.service())...)
		b = append(b, "' node='"...)
		b = append(b, attrText(name)...)
		b = append(b, "'/>"...)
	}
	return string(b)
}
