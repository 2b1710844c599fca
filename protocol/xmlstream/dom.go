package xmlstream

import (
	"strconv"
	"unsafe"
)

// Node is an element or a text node of a small DOM used for payloads (IQ
// queries, stream features, ...). It is built on demand, never on the
// routing path.
type Node struct {
	Name     Name
	Attrs    []Attr  // without xmlns / xmlns:* declarations
	Children []*Node // elements and text nodes in document order
	Text     string  // text nodes only (Name.Local == ""): unescaped character data
}

// Parse returns the element's tree with namespaces resolved; elements
// without their own xmlns inherit the stream's default namespace.
func (e *Element) Parse() (*Node, error) {
	ns := e.parentNS
	if !e.parentSet {
		// Built by hand rather than by a Decoder: an unprefixed root
		// without xmlns lives in Name.Space, so that is what it inherits.
		ns = e.Name.Space
	}
	return ParseNode(e.Raw, ns)
}

// ParseNode parses s, one element optionally surrounded by whitespace, with
// defaultNS as the default namespace in scope. It accepts exactly what the
// stream decoder accepts (same lexer, same checks) and reports *Error.
func ParseNode(s string, defaultNS string) (*Node, error) {
	// The lexer only reads its input, so it can scan the string's bytes in
	// place; every string in the tree is then a substring of s.
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	start := 0
	for start < len(b) && isWS(b[start]) {
		start++
	}
	if start == len(b) || b[start] != '<' {
		return nil, errf(CondNotWellFormed, "expected an element")
	}
	var v validator
	v.defNS = defaultNS
	switch v.element(b[start:]) {
	case stErr:
		return nil, v.lx.err
	case stMore:
		return nil, errf(CondNotWellFormed, "unexpected end of input")
	}
	end := start + v.n
	for i := end; i < len(b); i++ {
		if !isWS(b[i]) {
			return nil, errf(CondNotWellFormed, "content after the element")
		}
	}
	return build(s[start:end], &v.lx, defaultNS), nil
}

type scopeEntry struct{ prefix, uri string }

type buildFrame struct {
	n      *Node
	mark   int
	defNS  string
	nchild int
}

// build turns validated bytes into a tree. Validation already happened, so
// there are no error paths here.
func build(s string, lx *lexer, defaultNS string) *Node {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	lx.b, lx.pos, lx.err = b, 0, nil
	var scope []scopeEntry
	var stack []buildFrame
	var root *Node
	lookup := func(prefix string) string {
		for i := len(scope) - 1; i >= 0; i-- {
			if scope[i].prefix == prefix {
				return scope[i].uri
			}
		}
		return NSXML // only xml: can be undeclared in validated input
	}
	value := func(a *attrTok) string {
		if a.decode {
			return string(unescape(nil, b[a.val.s:a.val.e], true))
		}
		return s[a.val.s:a.val.e]
	}
	addText := func(t string) {
		if t == "" {
			return
		}
		p := stack[len(stack)-1].n
		if k := len(p.Children); k > 0 && p.Children[k-1].Name.Local == "" {
			p.Children[k-1].Text += t
			return
		}
		p.Children = append(p.Children, &Node{Text: t})
	}
	for lx.pos < len(b) {
		p := lx.pos
		if b[p] != '<' {
			lx.charData()
			t := s[lx.text.s:lx.text.e]
			if lx.decode {
				t = string(unescape(nil, b[lx.text.s:lx.text.e], false))
			}
			addText(t)
			continue
		}
		switch b[p+1] {
		case '/':
			lx.endTag()
			top := stack[len(stack)-1]
			scope = scope[:top.mark]
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return root
			}
		case '!':
			lx.markup()
			t := s[lx.text.s:lx.text.e]
			if lx.decode {
				t = string(normalizeCR(nil, b[lx.text.s:lx.text.e]))
			}
			addText(t)
		default:
			lx.startTag()
			n := &Node{}
			mark := len(scope)
			def := defaultNS
			if len(stack) > 0 {
				def = stack[len(stack)-1].defNS
			}
			nattrs := 0
			for i := range lx.attrs {
				a := &lx.attrs[i]
				switch {
				case a.colon < 0 && s[a.name.s:a.name.e] == "xmlns":
					def = value(a)
				case a.colon >= 0 && s[a.name.s:a.colon] == "xmlns":
					scope = append(scope, scopeEntry{s[a.colon+1 : a.name.e], value(a)})
				default:
					nattrs++
				}
			}
			if nattrs > 0 {
				n.Attrs = make([]Attr, 0, nattrs)
				for i := range lx.attrs {
					a := &lx.attrs[i]
					var name Name
					if a.colon < 0 {
						name.Local = s[a.name.s:a.name.e]
						if name.Local == "xmlns" {
							continue
						}
					} else {
						prefix := s[a.name.s:a.colon]
						if prefix == "xmlns" {
							continue
						}
						name = Name{lookup(prefix), s[a.colon+1 : a.name.e]}
					}
					n.Attrs = append(n.Attrs, Attr{Name: name, Value: value(a)})
				}
			}
			if lx.colon >= 0 {
				n.Name = Name{lookup(s[lx.name.s:lx.colon]), s[lx.colon+1 : lx.name.e]}
			} else {
				n.Name = Name{def, s[lx.name.s:lx.name.e]}
			}
			if len(stack) == 0 {
				root = n
			} else {
				par := stack[len(stack)-1].n
				par.Children = append(par.Children, n)
			}
			if lx.selfClose {
				scope = scope[:mark]
				if len(stack) == 0 {
					return root
				}
			} else {
				stack = append(stack, buildFrame{n: n, mark: mark, defNS: def})
			}
		}
	}
	return root
}

// NewNode returns an element node.
func NewNode(space, local string, attrs ...Attr) *Node {
	return &Node{Name: Name{space, local}, Attrs: attrs}
}

// Attr returns the value of the attribute local without namespace, "" if
// absent.
func (n *Node) Attr(local string) string {
	for i := range n.Attrs {
		if n.Attrs[i].Name.Space == "" && n.Attrs[i].Name.Local == local {
			return n.Attrs[i].Value
		}
	}
	return ""
}

// AttrNS returns the value of the attribute {space}local, "" if absent
// (e.g. AttrNS(NSXML, "lang") for xml:lang).
func (n *Node) AttrNS(space, local string) string {
	for i := range n.Attrs {
		if n.Attrs[i].Name.Space == space && n.Attrs[i].Name.Local == local {
			return n.Attrs[i].Value
		}
	}
	return ""
}

// SetAttr sets the attribute local (no namespace), replacing an existing one.
func (n *Node) SetAttr(local, value string) {
	for i := range n.Attrs {
		if n.Attrs[i].Name.Space == "" && n.Attrs[i].Name.Local == local {
			n.Attrs[i].Value = value
			return
		}
	}
	n.Attrs = append(n.Attrs, Attr{Name: Name{Local: local}, Value: value})
}

// Child returns the first child element named {space}local ("" space
// matches any namespace), nil if none.
func (n *Node) Child(space, local string) *Node {
	for _, c := range n.Children {
		if c.Name.Local == local && local != "" && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// ChildrenNamed returns the child elements named {space}local ("" space
// matches any namespace).
func (n *Node) ChildrenNamed(space, local string) []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Name.Local == local && local != "" && (space == "" || c.Name.Space == space) {
			out = append(out, c)
		}
	}
	return out
}

// FirstElement returns the first child element, nil if none.
func (n *Node) FirstElement() *Node {
	for _, c := range n.Children {
		if c.Name.Local != "" {
			return c
		}
	}
	return nil
}

// Elements returns the child elements.
func (n *Node) Elements() []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Name.Local != "" {
			out = append(out, c)
		}
	}
	return out
}

// TextContent returns the concatenated direct text children (for a text
// node, its text).
func (n *Node) TextContent() string {
	if n.Name.Local == "" {
		return n.Text
	}
	var out string
	for _, c := range n.Children {
		if c.Name.Local == "" {
			out += c.Text
		}
	}
	return out
}

// AddChild appends c and returns n, for chaining.
func (n *Node) AddChild(c *Node) *Node {
	n.Children = append(n.Children, c)
	return n
}

// AddText appends a text node and returns n, for chaining.
func (n *Node) AddText(s string) *Node {
	n.Children = append(n.Children, &Node{Text: s})
	return n
}

// AppendXML appends n serialised. An element gets xmlns='...' whenever its
// namespace differs from parentNS, so a stanza encoded with the stream's
// content namespace carries none on its root. Element names are never
// prefixed; namespaced attributes use xml: for the XML namespace and
// otherwise a prefix declared on the same element.
func (n *Node) AppendXML(dst []byte, parentNS string) []byte {
	if n.Name.Local == "" {
		return AppendEscapedText(dst, n.Text)
	}
	dst = append(dst, '<')
	dst = append(dst, n.Name.Local...)
	if n.Name.Space != parentNS {
		dst = append(dst, " xmlns='"...)
		dst = AppendEscapedAttr(dst, n.Name.Space)
		dst = append(dst, '\'')
	}
	gen := 0
	for i := range n.Attrs {
		a := &n.Attrs[i]
		dst = append(dst, ' ')
		switch a.Name.Space {
		case "":
			if a.Name.Local == "xmlns" {
				// The namespace is Name.Space; a stray attribute must not
				// produce a second, conflicting declaration.
				dst = dst[:len(dst)-1]
				continue
			}
		case NSXML:
			dst = append(dst, "xml:"...)
		default:
			prefix := "ns" + strconv.Itoa(gen)
			gen++
			dst = append(dst, "xmlns:"...)
			dst = append(dst, prefix...)
			dst = append(dst, "='"...)
			dst = AppendEscapedAttr(dst, a.Name.Space)
			dst = append(dst, "' "...)
			dst = append(dst, prefix...)
			dst = append(dst, ':')
		}
		dst = append(dst, a.Name.Local...)
		dst = append(dst, "='"...)
		dst = AppendEscapedAttr(dst, a.Value)
		dst = append(dst, '\'')
	}
	if len(n.Children) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	for _, c := range n.Children {
		dst = c.AppendXML(dst, n.Name.Space)
	}
	dst = append(dst, "</"...)
	dst = append(dst, n.Name.Local...)
	return append(dst, '>')
}

// String returns n serialised with parentNS "".
func (n *Node) String() string { return string(n.AppendXML(nil, "")) }
