package actors

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/xmppd/xmppd/config"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0115 entity capabilities.
//
// The server's own caps (§6.3) go into the stream features after authentication, hashed from the same
// disco#info the server answers. Clients' caps are learnt from their broadcast presence: a session that sees a
// <c/> with an unknown ver asks its own client for disco#info node#ver, verifies the answer per §5.4 and, when the
// hash matches, gives it to the caps actor, a server-wide cache keyed by hash+ver (for PEP's +notify, later). A
// ver is only ever cached verified, so one client cannot poison what others' caps mean.

const (
	nsCaps = "http://jabber.org/protocol/caps"
	// capsNode is the node of the server's own caps (XEP-0115 §4: a URI identifying the software).
	capsNode = "https://github.com/xmppd/xmppd"
	// maxCapsQueries bounds the caps queries one session has in flight: a client announcing a new ver with
	// every presence gets asked about the first few only.
	maxCapsQueries = 4
	// maxCapsEntries bounds the server-wide cache; beyond it new entries are not kept.
	maxCapsEntries = 10000
)

var featureCaps = &feature{
	name: "caps",
	streamFeature: func(e *env) string {
		return "<c xmlns='" + nsCaps + "' hash='sha-1' node='" + capsNode + "' ver='" + e.capsVer + "'/>"
	},
	sessionOut: capsSessionOut,
}

// serverCapsVer is the sha-1 verification string of the server's disco#info (§5.1).
func serverCapsVer(cfg *config.Config) string {
	n, err := xmlstream.ParseNode(serverDiscoInfo(cfg, ""), "")
	if err != nil {
		return ""
	}
	s, err := capsString(n)
	if err != nil {
		return ""
	}
	return capsHash("sha-1", s)
}

// capsHashFunc maps the IANA hash names of §5.1 step 9 to implementations ("" for unsupported ones; md5 is
// deliberately not accepted).
func capsHashFunc(name string) func() hash.Hash {
	switch name {
	case "sha-1":
		return sha1.New
	case "sha-224":
		return sha256.New224
	case "sha-256":
		return sha256.New
	case "sha-384":
		return sha512.New384
	case "sha-512":
		return sha512.New
	}
	return nil
}

func capsHash(algo, s string) string {
	f := capsHashFunc(algo)
	if f == nil {
		return ""
	}
	h := f()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

var errCapsIllFormed = errors.New("caps: ill-formed disco#info (XEP-0115 §5.4)")

// capsString builds the verification string of a disco#info <query/> (XEP-0115 §5.1) and applies the
// ill-formedness checks of §5.4 step 3: duplicate identities, duplicate features, two forms with one FORM_TYPE,
// or a FORM_TYPE with several different values make the answer unusable. Forms whose FORM_TYPE is absent or
// not hidden are ignored (§5.4 step 3.6).
func capsString(q *xmlstream.Node) (string, error) {
	type ident struct{ cat, typ, lang, name string }
	var ids []ident
	seenID := map[ident]bool{}
	var feats []string
	seenF := map[string]bool{}
	type form struct {
		typ    string
		fields [][]string // var, values...
	}
	var forms []form
	seenForm := map[string]bool{}
	for _, k := range q.Elements() {
		switch {
		case k.Name.Space == stanza.NSDiscoInf && k.Name.Local == "identity":
			id := ident{k.Attr("category"), k.Attr("type"), k.AttrNS(xmlstream.NSXML, "lang"), k.Attr("name")}
			if seenID[id] {
				return "", errCapsIllFormed
			}
			seenID[id] = true
			ids = append(ids, id)
		case k.Name.Space == stanza.NSDiscoInf && k.Name.Local == "feature":
			v := k.Attr("var")
			if seenF[v] {
				return "", errCapsIllFormed
			}
			seenF[v] = true
			feats = append(feats, v)
		case k.Name.Space == stanza.NSXData && k.Name.Local == "x":
			f := form{}
			hidden, has := false, false
			for _, fl := range k.ChildrenNamed(stanza.NSXData, "field") {
				var vals []string
				for _, v := range fl.ChildrenNamed(stanza.NSXData, "value") {
					vals = append(vals, v.TextContent())
				}
				if fl.Attr("var") == "FORM_TYPE" {
					for _, v := range vals[min(1, len(vals)):] {
						if v != vals[0] {
							return "", errCapsIllFormed
						}
					}
					if len(vals) > 0 {
						f.typ, has, hidden = vals[0], true, fl.Attr("type") == "hidden"
					}
					continue
				}
				sort.Strings(vals)
				f.fields = append(f.fields, append([]string{fl.Attr("var")}, vals...))
			}
			if !has || !hidden {
				continue
			}
			if seenForm[f.typ] {
				return "", errCapsIllFormed
			}
			seenForm[f.typ] = true
			sort.Slice(f.fields, func(i, j int) bool { return f.fields[i][0] < f.fields[j][0] })
			forms = append(forms, f)
		}
	}
	// §5.1 step 2: sort by category, then type, then xml:lang (byte order: "i;octet" collation).
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if a.cat != b.cat {
			return a.cat < b.cat
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if a.lang != b.lang {
			return a.lang < b.lang
		}
		return a.name < b.name
	})
	sort.Strings(feats)
	sort.Slice(forms, func(i, j int) bool { return forms[i].typ < forms[j].typ })
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id.cat + "/" + id.typ + "/" + id.lang + "/" + id.name + "<")
	}
	for _, f := range feats {
		b.WriteString(f + "<")
	}
	for _, f := range forms {
		b.WriteString(f.typ + "<")
		for _, fl := range f.fields {
			for _, v := range fl {
				b.WriteString(v + "<")
			}
		}
	}
	return b.String(), nil
}

// verifyCaps reports whether a disco#info answer hashes to ver with algo (XEP-0115 §5.4 steps 3-6).
func verifyCaps(q *xmlstream.Node, algo, ver string) bool {
	if capsHashFunc(algo) == nil {
		return false
	}
	s, err := capsString(q)
	if err != nil {
		return false
	}
	return capsHash(algo, s) == ver
}

// ---- the session's part ----

// capsPending is a caps query a session sent to its client.
type capsPending struct{ hash, ver string }

var capsQuerySeq atomic.Uint64

func capsSessionOut(s *session, ctx actor.Context, st *Stanza) bool {
	switch st.Head.Name {
	case "presence":
		if st.To.IsZero() && st.Head.Type == "" && strings.Contains(st.Raw, nsCaps) {
			s.capsAnnounced(ctx, st)
		}
	case "iq":
		if p, ok := s.capsQueries[st.Head.ID]; ok && (st.Head.Type == "result" || st.Head.Type == "error") {
			delete(s.capsQueries, st.Head.ID)
			if st.Head.Type == "result" {
				s.capsAnswered(ctx, st, p)
			}
			return false
		}
	}
	return true
}

func (s *session) capsAnnounced(ctx actor.Context, st *Stanza) {
	n, err := xmlstream.ParseNode(st.Raw, stanza.NSClient)
	if err != nil {
		return
	}
	c := n.Child(nsCaps, "c")
	if c == nil || capsHashFunc(c.Attr("hash")) == nil || c.Attr("ver") == "" || c.Attr("node") == "" {
		return // legacy caps without 'hash' cannot be verified (§5.4 step 1)
	}
	if len(s.capsQueries) >= maxCapsQueries || s.env.caps == nil {
		return
	}
	ctx.Request(s.env.caps, &capsLookup{hash: c.Attr("hash"), ver: c.Attr("ver"), node: c.Attr("node")})
}

func (s *session) capsAnswered(ctx actor.Context, st *Stanza, p capsPending) {
	n, err := xmlstream.ParseNode(st.Raw, stanza.NSClient)
	if err != nil {
		return
	}
	q := n.Child(stanza.NSDiscoInf, "query")
	if q == nil || !verifyCaps(q, p.hash, p.ver) {
		s.log.Debug().Str("ver", p.ver).Msg("caps answer does not match its hash; not cached")
		return
	}
	var feats []string
	for _, f := range q.ChildrenNamed(stanza.NSDiscoInf, "feature") {
		feats = append(feats, f.Attr("var"))
	}
	ctx.Send(s.env.caps, &capsVerified{hash: p.hash, ver: p.ver, features: feats})
}

// capsUnknown: the cache does not know hash+ver; the session asks its client (§6.3 "disco#info to the full JID
// with node#ver").
type capsUnknown struct{ hash, ver, node string }

func (m *capsUnknown) onSession(s *session, ctx actor.Context) {
	if len(s.capsQueries) >= maxCapsQueries {
		return
	}
	for _, p := range s.capsQueries {
		if p.ver == m.ver {
			return
		}
	}
	id := "caps" + strconv.FormatUint(capsQuerySeq.Add(1), 10)
	if s.capsQueries == nil {
		s.capsQueries = map[string]capsPending{}
	}
	s.capsQueries[id] = capsPending{hash: m.hash, ver: m.ver}
	q := "<query xmlns='" + stanza.NSDiscoInf + "' node='" + xmlAttr(m.node+"#"+m.ver) + "'/>"
	s.toClient(ctx, stanza.Build("iq", s.bare.Domain(), s.full.String(), "get", id, q))
}

// ---- the cache actor ----

type (
	capsLookup   struct{ hash, ver, node string }
	capsVerified struct {
		hash, ver string
		features  []string
	}
	// capsGet asks for the features of a verified ver (answered with capsFeatures; nil when unknown).
	capsGet      struct{ hash, ver string }
	capsFeatures struct{ features []string }
)

// capsCache is the server-wide verified caps cache: hash+ver → features. It owns the map; nothing else reads it.
type capsCache struct {
	known map[string][]string
}

func newCapsProps() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &capsCache{known: map[string][]string{}} })
}

func (c *capsCache) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *capsLookup:
		if _, ok := c.known[m.hash+" "+m.ver]; !ok && ctx.Sender() != nil {
			ctx.Respond(&capsUnknown{hash: m.hash, ver: m.ver, node: m.node})
		}
	case *capsVerified:
		if len(c.known) < maxCapsEntries {
			c.known[m.hash+" "+m.ver] = m.features
		}
	case *capsGet:
		ctx.Respond(&capsFeatures{features: c.known[m.hash+" "+m.ver]})
	}
}
