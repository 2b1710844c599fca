// Package pep is XEP-0163 personal eventing: an XEP-0060 publish-subscribe service at every account's bare JID,
// on which clients keep OMEMO keys (XEP-0384), bookmarks (XEP-0402), avatars (XEP-0084), nicknames, moods and the
// like.
//
// The account's nodes belong to its user actor: the feature's user part owns them (configuration, members, the
// newest item) and reads the rest from storage.PubSub on demand. Notifications are messages from the bare JID,
// routed like any other, so RFC 6120 §10.1 order and the §8.5 delivery rules hold.
//
// Who is told (XEP-0163 §4.3): the available resources of contacts the access model admits whose XEP-0115 caps
// carry node+notify (learnt from the contacts' presence as it reaches the user actor, the features resolved
// through the server-wide caps cache, User.WatchCaps), the owner's own resources likewise, and explicit
// XEP-0060 subscribers. The last item goes to such a resource when it becomes available or its +notify appears
// (§4.3.2, send_last_published_item on_sub_and_presence), and to a new subscriber (on_sub).
package pep

import (
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Limits counted in xmppd_limit_hits_total ([pep] in config.toml).
const (
	LimitNodes     = "pep_max_nodes"
	LimitItemBytes = "pep_max_item_bytes"
)

// vars are the XEP-0060 §10 features this service implements, advertised on every account (XEP-0163 §6.1).
var vars = []string{
	pubsub.NS,
	pubsub.NS + "#access-open",
	pubsub.NS + "#access-presence",
	pubsub.NS + "#access-roster",
	pubsub.NS + "#access-whitelist",
	pubsub.NS + "#auto-create",
	pubsub.NS + "#auto-subscribe",
	pubsub.NS + "#config-node",
	pubsub.NS + "#config-node-max",
	pubsub.NS + "#create-and-configure",
	pubsub.NS + "#create-nodes",
	pubsub.NS + "#delete-items",
	pubsub.NS + "#delete-nodes",
	pubsub.NS + "#filtered-notifications",
	pubsub.NS + "#item-ids",
	pubsub.NS + "#last-published",
	pubsub.NS + "#manage-subscriptions",
	pubsub.NS + "#member-affiliation",
	pubsub.NS + "#modify-affiliations",
	pubsub.NS + "#outcast-affiliation",
	pubsub.NS + "#persistent-items",
	pubsub.NS + "#presence-notifications",
	pubsub.NS + "#presence-subscribe",
	pubsub.NS + "#publish",
	pubsub.NS + "#publish-options",
	pubsub.NS + "#publisher-affiliation",
	pubsub.NS + "#purge-nodes",
	pubsub.NS + "#retract-items",
	pubsub.NS + "#retrieve-affiliations",
	pubsub.NS + "#retrieve-default",
	pubsub.NS + "#retrieve-items",
	pubsub.NS + "#retrieve-subscriptions",
	pubsub.NS + "#subscribe",
	// XEP-0292 §3: vCard4 is kept in the PEP node urn:xmpp:vcard4 like any other PEP data (no conversion with
	// vcard-temp).
	"urn:xmpp:vcard4",
}

// Feature is XEP-0163 PEP.
var Feature = &feature.Feature{
	Name:              name,
	AccountVars:       vars,
	AccountIdentities: []string{"<identity category='pubsub' type='pep'/>"},
	Limits:            []string{LimitNodes, LimitItemBytes},
	IQs: []feature.IQRoute{
		{Name: xmlstream.Name{Space: pubsub.NS, Local: "pubsub"}, Account: userIQ},
		{Name: xmlstream.Name{Space: pubsub.NSOwner, Local: "pubsub"}, Account: ownerIQ},
	},
	NewUser: func(u feature.User) any { return newPart(u) },
}

// limits is what [pep] allows one account.
type limits struct {
	nodes, itemBytes int
	items            pubsub.Limit
}

func limitsOf(cfg *config.Config) limits {
	return limits{nodes: cfg.PEP.MaxNodes, itemBytes: cfg.PEP.MaxItemBytes, items: pubsub.Limit{MaxItems: cfg.PEP.MaxItems}}
}
