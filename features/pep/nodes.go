package pep

import (
	"errors"
	"time"

	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/storage"
)

// The changes to the account's nodes, whoever asks for them: a client's request (iq.go) or a conversion
// (convert.go). Each is stored before anyone hears of it.

var errTooManyNodes = errors.New("too many PEP nodes (pep.max_nodes)")

// createNode creates a node with cfg, within the quota. The nodes must be loaded.
func (p *part) createNode(name string, cfg pubsub.Config) (*node, error) {
	if len(p.nodes) >= p.lim.nodes {
		p.u.Server().LimitHit(LimitNodes)
		return nil, errTooManyNodes
	}
	n := &node{name: name, cfg: cfg, created: time.Now().UTC().Truncate(time.Microsecond), detail: true,
		members: map[string]storage.PubSubMember{}}
	if err := p.u.Server().Store().PutPubSubNode(bg, p.service(), storage.PubSubNode{Node: name, Config: cfg.Encode(), Created: n.created}); err != nil {
		return nil, err
	}
	p.nodes[name] = n
	return n, nil
}

// put stores it as n's newest item (n's details loaded).
func (p *part) put(n *node, it storage.PubSubItem) error {
	if err := p.u.Server().Store().PublishPubSubItem(bg, p.service(), n.name, it, n.cfg.EffectiveMax(p.lim.items)); err != nil {
		return err
	}
	n.last = &it
	return nil
}

// remove retracts the items ids of n and returns those that existed.
func (p *part) remove(n *node, ids []string) ([]string, error) {
	var gone []string
	st := p.u.Server().Store()
	for _, id := range ids {
		ok, err := st.RetractPubSubItem(bg, p.service(), n.name, id)
		if err != nil {
			return gone, err
		}
		if ok {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		n.detail = false // the newest item may have gone
		if err := p.details(n); err != nil {
			return gone, err
		}
	}
	return gone, nil
}
