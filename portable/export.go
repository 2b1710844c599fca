package portable

import (
	"context"
	"io"
	"sort"
	"strings"
	"time"

	pie "github.com/xmppd/xmppd/protocol/portable"

	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

// Export writes the accounts of domain ("" for all) with their data to w. Each account is read on its own (one
// consistent state per storage call, not one snapshot of the whole server): export from a stopped server, or
// accept that what changes during the export may or may not be in it.
func Export(ctx context.Context, st storage.Store, w io.Writer, domain string) (*Summary, error) {
	list, err := st.ListAccounts(ctx, domain)
	if err != nil {
		return nil, err
	}
	// Users of one host must be consecutive: sort by domain, then by bare JID.
	sort.SliceStable(list, func(i, j int) bool {
		di, dj := list[i][strings.LastIndexByte(list[i], '@')+1:], list[j][strings.LastIndexByte(list[j], '@')+1:]
		if di != dj {
			return di < dj
		}
		return list[i] < list[j]
	})
	s := &Summary{}
	e := pie.NewEncoder(w)
	for _, bare := range list {
		u, err := exportUser(ctx, st, bare, s)
		if err != nil {
			return s, err
		}
		if err := e.Encode(u); err != nil {
			return s, err
		}
		s.Users++
	}
	return s, e.Close()
}

func exportUser(ctx context.Context, st storage.Store, bare string, s *Summary) (*pie.User, error) {
	at := strings.LastIndexByte(bare, '@')
	u := &pie.User{Name: bare[:at], Host: bare[at+1:]}
	creds, err := st.Credentials(ctx, bare)
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		u.SCRAM = append(u.SCRAM, pie.SCRAM{Mechanism: "SCRAM-" + c.Hash, Iterations: c.Iterations, Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
	}
	items, _, err := st.Roster(ctx, bare)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		u.Roster = append(u.Roster, pie.RosterItem{JID: it.JID, Name: it.Name, Subscription: orNone(it.Subscription), Ask: it.Ask, Approved: it.PreApproved, Groups: it.Groups})
	}
	s.RosterItems += len(items)
	kv := func(ns string) (map[string]string, []string, error) {
		m, err := st.ListKV(ctx, bare, ns)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return m, keys, err
	}
	pend, keys, err := kv(KVPendingIn)
	if err != nil {
		return nil, err
	}
	_ = pend
	u.Pending = keys
	s.Pending += len(keys)
	if v, err := st.GetKV(ctx, bare, KVVCard, ""); err == nil && v != "" {
		u.VCard = v
		s.VCards++
	}
	priv, keys, err := kv(KVPrivate)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		u.Private = append(u.Private, priv[k])
	}
	s.Private += len(keys)
	_, keys, err = kv(KVBlocking)
	if err != nil {
		return nil, err
	}
	u.Blocked = keys
	s.Blocked += len(keys)
	q, err := st.OfflineMessages(ctx, bare)
	if err != nil {
		return nil, err
	}
	for _, m := range q {
		n, err := xmlstream.ParseNode(m.Stanza, pie.NSClient)
		if err != nil {
			s.skip(bare + ": an offline message that does not parse")
			continue
		}
		// XEP-0227 § Offline Messages: the time it was stored, as XEP-0203 delayed delivery from the server.
		n.AddChild(xmlstream.NewNode(pie.NSDelay, "delay",
			xmlstream.Attr{Name: xmlstream.Name{Local: "from"}, Value: u.Host},
			xmlstream.Attr{Name: xmlstream.Name{Local: "stamp"}, Value: m.Stamp.UTC().Format(time.RFC3339Nano)}))
		u.Offline = append(u.Offline, n.String())
	}
	s.Offline += len(q)
	nodes, err := st.PubSubNodes(ctx, bare)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		cfg, err := pubsub.Decode(n.Config, pubsub.DefaultPEP())
		if err != nil {
			s.skip(bare + ": PEP node " + n.Node + " has an unreadable configuration; exported with the defaults")
			cfg = pubsub.DefaultPEP()
		}
		p := pie.PEPNode{Node: n.Node, Form: submitForm(cfg)}
		its, err := st.PubSubItems(ctx, bare, n.Node, 0)
		if err != nil {
			return nil, err
		}
		for i := len(its) - 1; i >= 0; i-- { // oldest first
			p.Items = append(p.Items, pie.PEPItem{ID: its[i].ID, Payload: its[i].Payload})
		}
		ms, err := st.PubSubMembers(ctx, bare, n.Node)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			p.Members = append(p.Members, pie.PEPMember{JID: m.JID, Affiliation: m.Affiliation, Subscription: m.Subscription})
		}
		u.PEP = append(u.PEP, p)
		s.PEPNodes++
		s.PEPItems += len(p.Items)
		s.PEPMembers += len(p.Members)
	}
	return u, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// submitForm is the node configuration as a submitted XEP-0004 form of the node_config FORM_TYPE.
func submitForm(c pubsub.Config) string {
	x, err := xmlstream.ParseNode(c.Form(pubsub.NSNodeConfig, pubsub.Limit{MaxItems: 1 << 30}, nil), "")
	if err != nil {
		return ""
	}
	x.SetAttr("type", "submit")
	// A submitted form carries values only (XEP-0004 §3.3): drop labels, types and options.
	for _, f := range x.ChildrenNamed(dataform.NS, "field") {
		f.Attrs = keep(f.Attrs, "var")
		var vals []*xmlstream.Node
		for _, c := range f.Children {
			if c.Name.Space == dataform.NS && c.Name.Local == "value" {
				vals = append(vals, c)
			}
		}
		f.Children = vals
	}
	var kept []*xmlstream.Node
	for _, c := range x.Children {
		if c.Name.Local != "" && c.Name.Local != "title" && c.Name.Local != "instructions" {
			kept = append(kept, c)
		}
	}
	x.Children = kept
	return x.String()
}

func keep(as []xmlstream.Attr, names ...string) []xmlstream.Attr {
	var out []xmlstream.Attr
	for _, a := range as {
		for _, n := range names {
			if a.Name.Space == "" && a.Name.Local == n {
				out = append(out, a)
			}
		}
	}
	return out
}
