// Package caps is XEP-0115 entity capabilities, the server's side.
//
// The server's own caps (§6.3) go into the stream features after authentication, hashed from the same
// disco#info the server answers, and the server answers disco#info for its node#ver (§6.2). Clients' caps are
// learnt from their broadcast presence: a session that sees a <c/> asks the server-wide cache about its
// hash+ver (Session.CapsLookup); when the cache does not know them the session asks its own client for
// disco#info node#ver, verifies the answer per §5.4 and, when the hash matches, hands it to the cache
// (Session.CapsVerified). A ver is only ever cached verified, so one client cannot poison what others' caps mean.
package caps

import (
	"strconv"
	"strings"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const (
	// Node is the node of the server's own caps (§4: a URI identifying the software).
	Node = "https://github.com/xmppd/xmppd"
	// MaxQueries bounds the caps queries one session has in flight: a client announcing a new ver with every
	// presence gets asked about the first few only.
	MaxQueries = 4
)

// Feature is XEP-0115.
var Feature = &feature.Feature{
	Name: "caps",
	// The server's disco#info says it speaks caps (§9.1) when the feature is enabled.
	ServerVars:    []string{caps.NS},
	StreamFeature: streamFeature,
	DiscoNode:     discoNode,
	NewSession:    func(s feature.Session) any { return &session{s: s} },
}

func streamFeature(srv feature.Server) string {
	return "<c xmlns='" + caps.NS + "' hash='sha-1' node='" + Node + "' ver='" + attr(srv.CapsVer()) + "'/>"
}

// discoNode: §6.2: disco#info of the node#ver of our own caps answers like the plain query (with the node).
func discoNode(srv feature.Server, _, account jid.JID, node string, items bool) (string, bool) {
	if items || !account.IsZero() || node != Node+"#"+srv.CapsVer() {
		return "", false
	}
	return srv.DiscoInfo(node), true
}

// pending is a caps query the session sent to its client.
type pending struct{ hash, ver string }

// session is the feature's part of one session.
type session struct {
	s feature.Session
	// queries are the disco#info queries sent to the client and not answered yet, by stanza id.
	queries map[string]pending
	// seq numbers the query ids (unique within the session, which is all an IQ id needs: the answer comes back
	// on the same stream).
	seq uint64
}

// Outbound watches the client's broadcast presence for <c/> and consumes the client's answers to our queries.
func (p *session) Outbound(st *stanza.Routed) bool {
	switch st.Head.Name {
	case "presence":
		// Only broadcast available presence carries the caps meant for the server (§6.3); the namespace test
		// spares parsing every other presence.
		if st.To.IsZero() && st.Head.Type == "" && strings.Contains(st.Raw, caps.NS) {
			p.announced(st)
		}
	case "iq":
		if q, ok := p.queries[st.Head.ID]; ok && (st.Head.Type == "result" || st.Head.Type == "error") {
			delete(p.queries, st.Head.ID)
			if st.Head.Type == "result" {
				p.answered(st, q)
			}
			return false // our own query's answer: nobody else is waiting for it
		}
	}
	return true
}

func (p *session) announced(st *stanza.Routed) {
	n, err := st.Node()
	if err != nil {
		return
	}
	c := n.Child(caps.NS, "c")
	if c == nil || !caps.Supported(c.Attr("hash")) || c.Attr("ver") == "" || c.Attr("node") == "" {
		return // legacy caps without 'hash' cannot be verified (§5.4 step 1)
	}
	if len(p.queries) >= MaxQueries {
		return
	}
	p.s.CapsLookup(c.Attr("hash"), c.Attr("ver"), c.Attr("node"))
}

func (p *session) answered(st *stanza.Routed, q pending) {
	n, err := st.Node()
	if err != nil {
		return
	}
	info := n.Child(stanza.NSDiscoInf, "query")
	if info == nil || !caps.Verify(info, q.hash, q.ver) {
		p.s.Log().Debug().Str("ver", q.ver).Msg("caps answer does not match its hash; not cached")
		return
	}
	var feats []string
	for _, f := range info.ChildrenNamed(stanza.NSDiscoInf, "feature") {
		feats = append(feats, f.Attr("var"))
	}
	p.s.CapsVerified(q.hash, q.ver, feats)
}

// Handle gets the cache's CapsUnknown: ask the client (§6.3 "disco#info to the full JID with node#ver").
func (p *session) Handle(msg any) {
	switch m := msg.(type) {
	case feature.CapsUnknown:
		p.unknown(m)
	case *feature.CapsUnknown:
		p.unknown(*m)
	}
}

func (p *session) unknown(m feature.CapsUnknown) {
	if len(p.queries) >= MaxQueries {
		return
	}
	for _, q := range p.queries {
		if q.ver == m.Ver {
			return // already asked; one answer is enough
		}
	}
	p.seq++
	id := "caps" + strconv.FormatUint(p.seq, 10)
	if p.queries == nil {
		p.queries = map[string]pending{}
	}
	p.queries[id] = pending{hash: m.Hash, ver: m.Ver}
	full := p.s.Full()
	q := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + attr(m.Node+"#"+m.Ver) + "'/>"
	p.s.ToClient(stanza.Generate("iq", "get", full.DomainJID(), full, id, q))
}

func attr(s string) string { return string(xmlstream.AppendEscapedAttr(nil, s)) }
