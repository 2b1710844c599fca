// Package caps is XEP-0115 entity capabilities as pure functions: the verification string of a disco#info
// answer (§5.1) with the ill-formedness checks of §5.4, and its hash. It keeps no state.
package caps

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"sort"
	"strings"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is the XEP-0115 namespace (of <c/> and of the disco#info feature).
const NS = "http://jabber.org/protocol/caps"

// ErrIllFormed: the disco#info answer breaks one of the rules of §5.4 step 3 and cannot be used.
var ErrIllFormed = errors.New("caps: ill-formed disco#info (XEP-0115 §5.4)")

// hashFunc maps the IANA hash names of §5.1 step 9 to implementations (nil for unsupported ones; md5 is
// deliberately not accepted: §5.4 step 1 lets a receiver refuse hashes it does not trust).
func hashFunc(algo string) func() hash.Hash {
	switch algo {
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

// Supported reports whether algo (an IANA hash name, as in the 'hash' attribute) can be verified.
func Supported(algo string) bool { return hashFunc(algo) != nil }

// Hash is the base64 of algo over s (§5.1 steps 9-10), or "" when algo is not supported.
func Hash(algo, s string) string {
	f := hashFunc(algo)
	if f == nil {
		return ""
	}
	h := f()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// String builds the verification string of a disco#info <query/> (§5.1) and applies the ill-formedness checks
// of §5.4 step 3: duplicate identities, duplicate features, two forms with one FORM_TYPE, or a FORM_TYPE with
// several different values make the answer unusable (ErrIllFormed). Forms whose FORM_TYPE is absent or not
// hidden are ignored (§5.4 step 3.6).
func String(q *xmlstream.Node) (string, error) {
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
				return "", ErrIllFormed
			}
			seenID[id] = true
			ids = append(ids, id)
		case k.Name.Space == stanza.NSDiscoInf && k.Name.Local == "feature":
			v := k.Attr("var")
			if seenF[v] {
				return "", ErrIllFormed
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
							return "", ErrIllFormed
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
				return "", ErrIllFormed
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

// Verify reports whether a disco#info answer hashes to ver with algo (§5.4 steps 3-6). An unsupported algo or
// an ill-formed answer never verifies.
func Verify(q *xmlstream.Node, algo, ver string) bool {
	if !Supported(algo) {
		return false
	}
	s, err := String(q)
	if err != nil {
		return false
	}
	return Hash(algo, s) == ver
}

// ServerVer is the sha-1 verification string (§5.1) of a serialised disco#info <query/>, as the server
// advertises it in its stream features (§6.3); "" when discoInfo does not parse or is ill-formed.
func ServerVer(discoInfo string) string {
	n, err := xmlstream.ParseNode(discoInfo, "")
	if err != nil {
		return ""
	}
	s, err := String(n)
	if err != nil {
		return ""
	}
	return Hash("sha-1", s)
}
