package xmlstream

import "bytes"

var xmlNSBytes = []byte(NSXML)

// nsBind is one in-scope prefix declaration.
type nsBind struct {
	prefix []byte
	uri    []byte
	raw    span // where uri sits in the validated bytes; raw.s < 0 if uri was decoded
}

// hdrBind is a prefix declared on the stream header; elements may use it
// without declaring it themselves (e.g. db: in server-to-server streams).
type hdrBind struct {
	prefix string
	uri    string
}

type openElem struct {
	name   span
	nsMark int
}

// Head attributes the validator records for the root element.
const (
	headTo = iota
	headFrom
	headType
	headID
	headLang
	numHead
)

// Where the root element's namespace comes from.
const (
	spaceInherited = iota // stream default namespace
	spaceRaw              // rootInfo.spaceRaw inside the element bytes
	spaceDecoded          // rootInfo.spaceBytes (declaration needed unescaping)
	spaceHeader           // header binding rootInfo.spaceHdr
	spaceXML              // the xml: prefix
)

type rootInfo struct {
	name       span
	colon      int
	selfClose  bool
	tagEnd     int
	spaceKind  int
	spaceRaw   span
	spaceBytes []byte
	spaceHdr   int
	defDecl    int // index in attrs of the root's own xmlns='' declaration, -1 if none
	head       [numHead]attrTok
	headSet    uint8
}

// validator checks that bytes form one well-formed, namespace-well-formed,
// restricted-XML element. It is the single authority on what is acceptable;
// the framer only finds where an element ends.
type validator struct {
	lx    lexer
	stack []openElem
	ns    []nsBind

	// configuration
	hdr          []hdrBind
	hdrBytes     [][]byte // hdr[i].uri as bytes
	defNS        string   // default namespace the root inherits
	checkRestart bool     // report stRestart when the root is named streamSpace/streamLocal
	requireStart bool     // the root MUST be a stream header (an XML declaration preceded it)
	streamSpace  string
	streamLocal  string

	// results
	n          int // length of the element once stOK
	root       rootInfo
	hdrUsed    []bool // header bindings the element relies on
	anyHdrUsed bool
	dup        map[string]struct{}
}

func (v *validator) fail(cond, msg string) status {
	v.lx.err = errf(cond, msg)
	return stErr
}

// element validates b, which starts with '<'. stOK: b[:v.n] is one complete
// element. stMore: b is a valid prefix of one. stRestart: the root start tag
// (b[:v.root.tagEnd]) is a stream header restart.
func (v *validator) element(b []byte) status {
	lx := &v.lx
	lx.b, lx.pos, lx.err = b, 0, nil
	v.stack = v.stack[:0]
	v.ns = v.ns[:0]
	if v.anyHdrUsed {
		clear(v.hdrUsed)
		v.anyHdrUsed = false
	}
	for {
		p := lx.pos
		if p >= len(b) {
			return stMore
		}
		if b[p] != '<' {
			if len(v.stack) == 0 {
				return v.fail(CondNotWellFormed, "expected an element")
			}
			if st := lx.charData(); st != stOK {
				return st
			}
			continue
		}
		if p+1 >= len(b) {
			return stMore
		}
		switch b[p+1] {
		case '/':
			if len(v.stack) == 0 {
				return v.fail(CondNotWellFormed, "unexpected end tag")
			}
			if st := lx.endTag(); st != stOK {
				return st
			}
			top := v.stack[len(v.stack)-1]
			if !bytes.Equal(b[top.name.s:top.name.e], b[lx.name.s:lx.name.e]) {
				return v.fail(CondNotWellFormed, "mismatched end tag")
			}
			v.ns = v.ns[:top.nsMark]
			v.stack = v.stack[:len(v.stack)-1]
			if len(v.stack) == 0 {
				v.n = lx.pos
				return stOK
			}
		case '!', '?':
			if st := lx.markup(); st != stOK {
				return st
			}
			if len(v.stack) == 0 {
				return v.fail(CondNotWellFormed, "expected an element")
			}
		default:
			if st := lx.startTag(); st != stOK {
				return st
			}
			mark := len(v.ns)
			root := len(v.stack) == 0
			if st := v.startElem(root); st != stOK {
				return st
			}
			if lx.selfClose {
				v.ns = v.ns[:mark]
				if root {
					v.n = lx.pos
					return stOK
				}
			} else {
				v.stack = append(v.stack, openElem{name: lx.name, nsMark: mark})
			}
		}
	}
}

// lookup resolves a prefix through the declarations in scope, the implicit
// xml: binding, and the stream header's declarations.
func (v *validator) lookup(prefix []byte) (uri []byte, b *nsBind, hdr int, ok bool) {
	for i := len(v.ns) - 1; i >= 0; i-- {
		if bytes.Equal(v.ns[i].prefix, prefix) {
			return v.ns[i].uri, &v.ns[i], -1, true
		}
	}
	if string(prefix) == "xml" {
		return xmlNSBytes, nil, -1, true
	}
	for i := range v.hdr {
		if v.hdr[i].prefix == string(prefix) {
			if len(v.hdrUsed) != len(v.hdr) {
				v.hdrUsed = make([]bool, len(v.hdr))
			}
			v.hdrUsed[i] = true
			v.anyHdrUsed = true
			return v.hdrBytes[i], nil, i, true
		}
	}
	return nil, nil, -1, false
}

func (v *validator) attrValue(a *attrTok) ([]byte, span) {
	raw := v.lx.b[a.val.s:a.val.e]
	if !a.decode {
		return raw, a.val
	}
	return unescape(nil, raw, true), span{-1, -1}
}

// checkDecl applies the namespace constraints of Namespaces in XML §3.
func (v *validator) checkDecl(prefix, uri []byte) status {
	isXMLNS := string(uri) == NSXML
	switch {
	case prefix == nil: // default namespace
		if isXMLNS || string(uri) == nsXMLNS {
			return v.fail(CondNotWellFormed, "reserved namespace as default")
		}
	case string(prefix) == "xml":
		if !isXMLNS {
			return v.fail(CondNotWellFormed, "xml prefix bound to wrong namespace")
		}
	case string(prefix) == "xmlns":
		return v.fail(CondNotWellFormed, "xmlns prefix must not be declared")
	case len(uri) == 0:
		return v.fail(CondNotWellFormed, "prefix bound to empty namespace")
	case isXMLNS || string(uri) == nsXMLNS:
		return v.fail(CondNotWellFormed, "reserved namespace bound to a prefix")
	}
	return stOK
}

// startElem processes the start tag the lexer just read: pushes its
// declarations, rejects duplicate attributes and undeclared prefixes, and for
// the root records what the decoder needs to build an Element.
func (v *validator) startElem(root bool) status {
	lx := &v.lx
	b := lx.b
	attrs := lx.attrs
	defDecl := -1
	var defURI []byte
	var defRaw span
	prefixed := 0
	for i := range attrs {
		a := &attrs[i]
		if a.colon < 0 {
			if string(b[a.name.s:a.name.e]) == "xmlns" {
				defDecl = i
				defURI, defRaw = v.attrValue(a)
				if st := v.checkDecl(nil, defURI); st != stOK {
					return st
				}
			}
			continue
		}
		if string(b[a.name.s:a.colon]) != "xmlns" {
			prefixed++
			continue
		}
		uri, raw := v.attrValue(a)
		prefix := b[a.colon+1 : a.name.e]
		if st := v.checkDecl(prefix, uri); st != stOK {
			return st
		}
		v.ns = append(v.ns, nsBind{prefix: prefix, uri: uri, raw: raw})
	}
	if st := v.checkDupNames(); st != stOK {
		return st
	}

	// Element name.
	var space []byte
	var sb *nsBind
	hdr := -1
	if lx.colon >= 0 {
		prefix := b[lx.name.s:lx.colon]
		var ok bool
		space, sb, hdr, ok = v.lookup(prefix)
		if !ok || string(prefix) == "xmlns" {
			return v.fail(CondBadNamespacePrefix, "undeclared prefix '"+string(prefix)+"'")
		}
	}

	// Prefixed attributes: resolve and check for duplicates by expanded name.
	if prefixed > 0 {
		if st := v.checkPrefixedAttrs(prefixed); st != stOK {
			return st
		}
	}
	if !root {
		return stOK
	}

	ri := &v.root
	ri.name, ri.colon, ri.selfClose, ri.tagEnd = lx.name, lx.colon, lx.selfClose, lx.pos
	ri.defDecl = defDecl
	switch {
	case lx.colon < 0 && defDecl >= 0:
		space = defURI
		if defRaw.s >= 0 {
			ri.spaceKind, ri.spaceRaw = spaceRaw, defRaw
		} else {
			ri.spaceKind, ri.spaceBytes = spaceDecoded, defURI
		}
	case lx.colon < 0:
		ri.spaceKind = spaceInherited
		space = nil
	case hdr >= 0:
		ri.spaceKind, ri.spaceHdr = spaceHeader, hdr
	case sb == nil:
		ri.spaceKind = spaceXML
	case sb.raw.s >= 0:
		ri.spaceKind, ri.spaceRaw = spaceRaw, sb.raw
	default:
		ri.spaceKind, ri.spaceBytes = spaceDecoded, sb.uri
	}
	ri.headSet = 0
	for i := range attrs {
		a := &attrs[i]
		var k int
		if a.colon < 0 {
			switch string(b[a.name.s:a.name.e]) {
			case "to":
				k = headTo
			case "from":
				k = headFrom
			case "type":
				k = headType
			case "id":
				k = headID
			default:
				continue
			}
		} else if string(b[a.name.s:a.name.e]) == "xml:lang" {
			k = headLang
		} else {
			continue
		}
		ri.head[k] = *a
		ri.headSet |= 1 << k
	}

	if v.checkRestart || v.requireStart {
		local := b[lx.name.s:lx.name.e]
		if lx.colon >= 0 {
			local = b[lx.colon+1 : lx.name.e]
		}
		if space == nil && ri.spaceKind == spaceInherited {
			space = []byte(v.defNS)
		}
		if string(local) == v.streamLocal && string(space) == v.streamSpace {
			return stRestart
		}
		if v.requireStart {
			return v.fail(CondRestrictedXML, "processing instruction not allowed")
		}
	}
	return stOK
}

// checkDupNames enforces XML 1.0 WFC "Unique Att Spec" on the raw names.
func (v *validator) checkDupNames() status {
	b := v.lx.b
	attrs := v.lx.attrs
	if len(attrs) <= 16 {
		for i := 1; i < len(attrs); i++ {
			ni := b[attrs[i].name.s:attrs[i].name.e]
			for j := 0; j < i; j++ {
				if bytes.Equal(ni, b[attrs[j].name.s:attrs[j].name.e]) {
					return v.fail(CondNotWellFormed, "duplicate attribute")
				}
			}
		}
		return stOK
	}
	// Many attributes: a hostile peer could make the quadratic loop expensive.
	clear(v.dup)
	if v.dup == nil {
		v.dup = make(map[string]struct{}, len(attrs))
	}
	for i := range attrs {
		k := string(b[attrs[i].name.s:attrs[i].name.e])
		if _, ok := v.dup[k]; ok {
			return v.fail(CondNotWellFormed, "duplicate attribute")
		}
		v.dup[k] = struct{}{}
	}
	return stOK
}

// checkPrefixedAttrs resolves prefixed attributes and enforces Namespaces in
// XML §6.3 (no two attributes with the same expanded name).
func (v *validator) checkPrefixedAttrs(n int) status {
	b := v.lx.b
	attrs := v.lx.attrs
	type exp struct {
		uri   []byte
		local []byte
	}
	var small [8]exp
	seen := small[:0]
	if n > 16 {
		clear(v.dup)
		if v.dup == nil {
			v.dup = make(map[string]struct{}, n)
		}
	}
	for i := range attrs {
		a := &attrs[i]
		if a.colon < 0 {
			continue
		}
		prefix := b[a.name.s:a.colon]
		if string(prefix) == "xmlns" {
			continue
		}
		uri, _, _, ok := v.lookup(prefix)
		if !ok {
			return v.fail(CondBadNamespacePrefix, "undeclared prefix '"+string(prefix)+"'")
		}
		local := b[a.colon+1 : a.name.e]
		if n > 16 {
			k := string(uri) + "\x00" + string(local)
			if _, dup := v.dup[k]; dup {
				return v.fail(CondNotWellFormed, "duplicate attribute")
			}
			v.dup[k] = struct{}{}
			continue
		}
		for _, s := range seen {
			if bytes.Equal(s.local, local) && bytes.Equal(s.uri, uri) {
				return v.fail(CondNotWellFormed, "duplicate attribute")
			}
		}
		seen = append(seen, exp{uri, local})
	}
	return stOK
}
