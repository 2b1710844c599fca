package pubsub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

var bg = context.Background()

// Messages between the service part and the node parts.
type (
	// forward is a request about one node, handed to its node actor.
	forward struct{ st *stanza.Routed }
	// nodeGone: the node actor deleted its node (sent before it answers, so the service knows before anyone
	// can ask to create the name again).
	nodeGone struct{ name string }
)

// record is what storage keeps as a node's Config: the configuration and the creator, the node's first owner,
// in one row, so that a node never exists without its owner (§8.1: the creator is owner).
type record struct {
	pubsub.Config
	Creator string `json:"creator"`
}

func (r record) encode() string {
	b, _ := json.Marshal(r) // strings, ints and bools always marshal
	return string(b)
}

func decodeRecord(s string) (record, error) {
	r := record{Config: pubsub.DefaultService()}
	err := json.Unmarshal([]byte(s), &r)
	return r, err
}

// service is the service part: the directory of node names.
type service struct {
	h   feature.ServiceHost
	lim limits
	// nodes is nil until first needed.
	nodes map[string]bool
}

func newService(h feature.ServiceHost) *service {
	return &service{h: h, lim: limitsOf(h.Server().Config())}
}

func (s *service) name() string { return s.h.JID().String() }

func (s *service) load() error {
	if s.nodes != nil {
		return nil
	}
	list, err := s.h.Server().Store().PubSubNodes(bg, s.name())
	if err != nil {
		return err
	}
	s.nodes = make(map[string]bool, len(list))
	for _, n := range list {
		s.nodes[n.Node] = true
	}
	return nil
}

// Handle takes the node actors' news.
func (s *service) Handle(msg any) {
	if m, ok := msg.(nodeGone); ok && s.nodes != nil {
		delete(s.nodes, m.name)
	}
}

// Stanza (feature.ServiceStanza) handles everything addressed to the service's domain or a JID at it.
func (s *service) Stanza(st *stanza.Routed) {
	switch st.Head.Name {
	case "iq":
		if st.Head.Type == "get" || st.Head.Type == "set" {
			s.iq(st)
		}
	case "message":
		s.h.Bounce(st, stanza.NewError(stanza.ServiceUnavailable)) // never an error, or to an error
	}
}

func (s *service) fail(st *stanza.Routed, e stanza.Error) { s.h.Bounce(st, e) }
func (s *service) result(st *stanza.Routed, payload string) {
	s.h.Route(feature.Answered(st, payload))
}

func (s *service) internal(st *stanza.Routed, err error, what string) {
	s.h.Log().Error().Err(err).Msg("pubsub: " + what)
	s.fail(st, stanza.NewError(stanza.InternalServerError))
}

func (s *service) iq(st *stanza.Routed) {
	if st.To.Local() != "" || st.To.Resource() != "" {
		s.fail(st, stanza.NewError(stanza.ServiceUnavailable)) // nodes are not JIDs here (§5)
		return
	}
	n, err := st.Node()
	if err != nil {
		return
	}
	kids := n.Elements()
	if len(kids) != 1 {
		s.fail(st, stanza.NewError(stanza.BadRequest)) // RFC 6120 §8.2.3
		return
	}
	q := kids[0]
	if err := s.load(); err != nil {
		s.internal(st, err, "loading nodes")
		return
	}
	get := st.Head.Type == "get"
	switch q.Name {
	case xmlstream.Name{Space: stanza.NSDiscoInf, Local: "query"}:
		// The host answers disco#info without a node; with one it is the node's (§5.4).
		s.toNode(st, q.Attr("node"), true)
	case xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"}:
		if q.Attr("node") == "" && get {
			s.result(st, s.discoItems())
			return
		}
		s.toNode(st, q.Attr("node"), true)
	case xmlstream.Name{Space: pubsub.NS, Local: "pubsub"}:
		s.userIQ(st, q, get)
	case xmlstream.Name{Space: pubsub.NSOwner, Local: "pubsub"}:
		s.ownerIQ(st, q, get)
	default:
		s.fail(st, stanza.NewError(stanza.ServiceUnavailable))
	}
}

func (s *service) userIQ(st *stanza.Routed, q *xmlstream.Node, get bool) {
	act, extra := pubsub.Action(q, pubsub.NS)
	if act == nil {
		s.fail(st, stanza.NewError(stanza.BadRequest))
		return
	}
	node := act.Attr("node")
	switch {
	case act.Name.Local == "create" && !get:
		s.create(st, act, extra)
	case act.Name.Local == "default" && get:
		// §6.4: the default subscription options.
		s.result(st, "<pubsub xmlns='"+pubsub.NS+"'><default"+nodeAttr(node)+">"+pubsub.DefaultSubOptions().Form()+"</default></pubsub>")
	case (act.Name.Local == "subscriptions" || act.Name.Local == "affiliations") && get && node == "":
		s.own(st, act.Name.Local)
	default:
		s.toNode(st, node, false)
	}
}

func (s *service) ownerIQ(st *stanza.Routed, q *xmlstream.Node, get bool) {
	act, _ := pubsub.Action(q, pubsub.NSOwner)
	if act == nil {
		s.fail(st, stanza.NewError(stanza.BadRequest))
		return
	}
	if act.Name.Local == "default" && get {
		// §8.3: the default node configuration.
		s.result(st, "<pubsub xmlns='"+pubsub.NSOwner+"'><default>"+pubsub.DefaultService().Form(pubsub.NSNodeConfig, s.lim.items, nil)+"</default></pubsub>")
		return
	}
	s.toNode(st, act.Attr("node"), false)
}

// toNode hands the request to the node's actor, or answers for a node that does not exist.
func (s *service) toNode(st *stanza.Routed, node string, disco bool) {
	switch {
	case node == "" && disco:
		s.fail(st, stanza.NewError(stanza.ItemNotFound))
	case node == "":
		s.fail(st, pubsub.Error(stanza.BadRequest, "nodeid-required"))
	case !s.nodes[node]:
		s.fail(st, stanza.NewError(stanza.ItemNotFound)) // §6.1.3.12, §7.1.3.3 (no auto-create), …
	default:
		s.h.ToEntity(node, forward{st: st})
	}
}

// discoItems lists the nodes (§5.2: a service without collections lists every node at the top level).
func (s *service) discoItems() string {
	b := []byte("<query xmlns='" + stanza.NSDiscoIt + "'>")
	for _, name := range slices.Sorted(maps.Keys(s.nodes)) {
		b = append(b, "<item jid='"...)
		b = xmlstream.AppendEscapedAttr(b, s.name())
		b = append(b, "' node='"...)
		b = xmlstream.AppendEscapedAttr(b, name)
		b = append(b, "'/>"...)
	}
	return string(append(b, "</query>"...))
}

// ---- §8.1 create ----

// mayCreate applies [pubsub] create.
func (s *service) mayCreate(from jid.JID) bool {
	switch s.lim.create {
	case "anyone":
		return true
	case "admins":
		return s.h.Server().IsAdmin(from)
	}
	return s.h.Server().Config().Serves(from.Domain()) && from.Local() != ""
}

func (s *service) create(st *stanza.Routed, act, configure *xmlstream.Node) {
	if !s.mayCreate(st.From) {
		s.fail(st, stanza.NewError(stanza.Forbidden)) // §8.1.3.1
		return
	}
	name, instant := act.Attr("node"), act.Attr("node") == ""
	if instant {
		name = newID() // §8.1.2: an instant node gets a name of the service's choosing
	}
	if s.nodes[name] {
		s.fail(st, stanza.NewError(stanza.Conflict)) // §8.1.3.3
		return
	}
	if len(s.nodes) >= s.lim.nodes {
		s.h.Server().LimitHit(LimitNodes)
		s.fail(st, stanza.NewError(stanza.PolicyViolation).WithText("too many nodes (pubsub.max_nodes)"))
		return
	}
	cfg := pubsub.DefaultService()
	if configure != nil {
		// §8.1.3 create and configure: the form is applied before the node exists.
		if configure.Name.Local != "configure" {
			s.fail(st, stanza.NewError(stanza.BadRequest))
			return
		}
		f, ok := pubsub.SubmittedForm(configure, pubsub.NSNodeConfig)
		if !ok {
			s.fail(st, stanza.NewError(stanza.BadRequest))
			return
		}
		if f != nil {
			if e, bad := applyConfig(s.h.Server(), &cfg, *f, s.lim.items); bad {
				s.fail(st, e)
				return
			}
		}
	}
	rec := record{Config: cfg, Creator: st.From.Bare().String()}
	created := time.Now().UTC().Truncate(time.Microsecond)
	if err := s.h.Server().Store().PutPubSubNode(bg, s.name(), storage.PubSubNode{Node: name, Config: rec.encode(), Created: created}); err != nil {
		s.internal(st, err, "creating node "+name)
		return
	}
	s.nodes[name] = true
	if instant {
		s.result(st, "<pubsub xmlns='"+pubsub.NS+"'><create node='"+attrText(name)+"'/></pubsub>")
		return
	}
	s.result(st, "")
}

// applyConfig applies a submitted node configuration; bad true with the error to answer (§8.2.5.3: not-acceptable;
// collections are feature-not-implemented).
func applyConfig(srv feature.Server, cfg *pubsub.Config, f dataform.Form, l pubsub.Limit) (stanza.Error, bool) {
	if f.One("pubsub#node_type") == "collection" || f.Has("pubsub#collection") || f.Has("pubsub#children") {
		return pubsub.Unsupported("collections"), true
	}
	if f.Has("pubsub#node_type") {
		f = withoutField(f, "pubsub#node_type") // "leaf": what every node here is
	}
	if err := cfg.Apply(f, l); err != nil {
		if fe, ok := err.(*pubsub.FieldError); ok && fe.Field == "pubsub#max_items" {
			srv.LimitHit(LimitItems)
		}
		return stanza.NewError(stanza.NotAcceptable).WithText(err.Error()), true
	}
	return stanza.Error{}, false
}

func withoutField(f dataform.Form, v string) dataform.Form {
	f.Vars = slices.DeleteFunc(slices.Clone(f.Vars), func(x string) bool { return x == v })
	return f
}

// ---- §5.6 subscriptions, §5.7 affiliations over every node ----

// own lists the requester's subscriptions or affiliations in every node. The node actors own the members, and
// each stores a change before acknowledging it, so storage has every acknowledged subscription and affiliation.
func (s *service) own(st *stanza.Routed, what string) {
	store := s.h.Server().Store()
	list, err := store.PubSubNodes(bg, s.name())
	if err != nil {
		s.internal(st, err, "listing nodes")
		return
	}
	bare := st.From.Bare()
	var b []byte
	for _, n := range list {
		ms, err := store.PubSubMembers(bg, s.name(), n.Node)
		if err != nil {
			s.internal(st, err, "reading members of "+n.Node)
			return
		}
		if what == "subscriptions" {
			for _, m := range ms {
				if j, err := jid.Parse(m.JID); err == nil && j.Bare() == bare && m.Subscription != "" {
					b = append(b, pubsub.SubscriptionXML(n.Node, m.JID, m.Subscription, m.SubID)...)
				}
			}
			continue
		}
		rec, _ := decodeRecord(n.Config)
		if a := affiliationOf(rec.Creator, ms, bare); a != pubsub.None {
			b = append(b, "<affiliation node='"+attrText(n.Node)+"' affiliation='"+a+"'/>"...)
		}
	}
	s.result(st, "<pubsub xmlns='"+pubsub.NS+"'><"+what+">"+string(b)+"</"+what+"></pubsub>")
}

// affiliationOf is bare's affiliation given the node's creator and members.
func affiliationOf(creator string, ms []storage.PubSubMember, bare jid.JID) string {
	if creator == bare.String() {
		return pubsub.Owner
	}
	for _, m := range ms {
		if m.JID == bare.String() && m.Affiliation != "" {
			return m.Affiliation
		}
	}
	return pubsub.None
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func attrText(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }

func nodeAttr(node string) string {
	if node == "" {
		return ""
	}
	return " node='" + attrText(node) + "'"
}

// isTrue reads an XML Schema boolean attribute.
func isTrue(v string) bool { v = strings.TrimSpace(v); return v == "true" || v == "1" }
