// Package pubsub is a standalone XEP-0060 publish-subscribe service at a domain of its own ([pubsub] host,
// pubsub.<first domain> by default), listed in the server's disco#items.
//
// It runs on the host's service mechanism (feature.ServiceSpec): the service part, in the service actor, owns
// the directory of node names (loaded from storage.PubSub on first use, the service named by its domain) and
// answers what concerns the service as a whole — node creation (§8.1, instant nodes too), the default
// configuration (§8.3) and default subscription options (§6.4), disco#items of the service (§5.2), and the
// requester's subscriptions and affiliations over every node (§5.6, §5.7, read from storage, where every
// acknowledged change already is). Everything about one node goes to that node's entity actor (kind
// pubsub-node, keyed by the node name), which owns the node: configuration, members, the newest item, loaded
// from storage when it starts and stored before any request is acknowledged. The node actor answers and
// notifies itself; its messages go through the router like any other stanza, so subscribers get them under
// the RFC 6121 §8.5 rules and in the order the node sent them.
//
// What is implemented: leaf nodes; access models open and whitelist (presence and roster make no sense without
// an owner's roster, authorize needs a pending-approval workflow: configure refuses them with not-acceptable,
// and they are not offered); publish models publishers, subscribers and open; affiliations owner, publisher,
// member, none and outcast (the creator stays owner); subscriptions by bare or full JID, one per JID, with the
// pubsub#deliver subscription option; send_last_published_item on subscription. Collections answer
// feature-not-implemented with <unsupported feature='collections'/>; publishing to a node that does not exist is
// item-not-found (no auto-create, not advertised). Notifications are headline messages unless a node's
// pubsub#notification_type says normal: a headline to a user with no available resource is not stored (RFC 6121
// §8.5.2.1.2 and §8.5.2.2.1), a normal one goes to the offline queue. They carry no SHIM SubID header: a JID has at
// most one subscription per node here, so the header would say nothing.
package pubsub

import (
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/pubsub"
)

// Limits counted in xmppd_limit_hits_total ([pubsub] in config.toml).
const (
	LimitNodes     = "pubsub_max_nodes"
	LimitItems     = "pubsub_max_items"
	LimitItemBytes = "pubsub_max_item_bytes"
)

// EntityKind is the node actors' kind in /debug/actors.
const EntityKind = "pubsub-node"

// vars are the XEP-0060 §10 features the service implements (disco#info of the service JID).
var vars = []string{
	"http://jabber.org/protocol/disco#info",
	"http://jabber.org/protocol/disco#items",
	pubsub.NS,
	pubsub.NS + "#access-open",
	pubsub.NS + "#access-whitelist",
	pubsub.NS + "#config-node",
	pubsub.NS + "#config-node-max",
	pubsub.NS + "#create-and-configure",
	pubsub.NS + "#create-nodes",
	pubsub.NS + "#delete-items",
	pubsub.NS + "#delete-nodes",
	pubsub.NS + "#instant-nodes",
	pubsub.NS + "#item-ids",
	pubsub.NS + "#last-published",
	pubsub.NS + "#manage-subscriptions",
	pubsub.NS + "#member-affiliation",
	pubsub.NS + "#meta-data",
	pubsub.NS + "#modify-affiliations",
	pubsub.NS + "#outcast-affiliation",
	pubsub.NS + "#persistent-items",
	pubsub.NS + "#publish",
	pubsub.NS + "#publish-options",
	pubsub.NS + "#publisher-affiliation",
	pubsub.NS + "#purge-nodes",
	pubsub.NS + "#retract-items",
	pubsub.NS + "#retrieve-affiliations",
	pubsub.NS + "#retrieve-default",
	pubsub.NS + "#retrieve-default-sub",
	pubsub.NS + "#retrieve-items",
	pubsub.NS + "#retrieve-subscriptions",
	pubsub.NS + "#subscribe",
	pubsub.NS + "#subscription-options",
}

// Feature is the XEP-0060 service.
var Feature = &feature.Feature{
	Name:   "pubsub",
	Limits: []string{LimitNodes, LimitItems, LimitItemBytes},
	Service: &feature.ServiceSpec{
		Host:       func(cfg *config.Config) string { return cfg.ServiceHost(cfg.PubSub.Host) },
		Name:       "Publish-Subscribe",
		Identities: []string{"<identity category='pubsub' type='service' name='Publish-Subscribe'/>"},
		Vars:       vars,
		New:        func(h feature.ServiceHost) any { return newService(h) },
		EntityKind: EntityKind,
		NewEntity:  func(h feature.EntityHost, key string) any { return newNode(h, key) },
	},
}

// accessModels are the access models this service implements (§4.5).
var accessModels = []string{pubsub.AccessOpen, pubsub.AccessWhitelist}

// limits is what [pubsub] allows.
type limits struct {
	nodes, itemBytes int
	items            pubsub.Limit
	create           string
}

func limitsOf(cfg *config.Config) limits {
	return limits{nodes: cfg.PubSub.MaxNodes, itemBytes: cfg.PubSub.MaxItemBytes, create: cfg.PubSub.Create,
		items: pubsub.Limit{MaxItems: cfg.PubSub.MaxItems, AccessModels: accessModels}}
}
