// Package dataform is XEP-0004 data forms: reading a submitted form and writing forms and results. It works on
// the xmlstream DOM and knows nothing of what a form is for; XEP-0068 FORM_TYPE is the one field it treats
// specially.
package dataform

import (
	"strings"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is the jabber:x:data namespace.
const NS = "jabber:x:data"

// Form is a form as submitted (or a result read back): its type, FORM_TYPE and the values of every other field.
type Form struct {
	Type     string // form, submit, cancel, result
	FormType string // the hidden FORM_TYPE field (XEP-0068), "" if none
	// Vars are the field vars in document order, without FORM_TYPE; Values the values of each.
	Vars   []string
	Values map[string][]string
}

// Parse reads x, a <x xmlns='jabber:x:data'/> element. Fields without var are ignored (XEP-0004 §3.2: only fixed
// fields may lack one); a repeated var keeps the values of its first occurrence.
func Parse(x *xmlstream.Node) Form {
	f := Form{Type: x.Attr("type"), Values: map[string][]string{}}
	for _, fl := range x.ChildrenNamed(NS, "field") {
		v := fl.Attr("var")
		if v == "" {
			continue
		}
		if _, dup := f.Values[v]; dup || (v == "FORM_TYPE" && f.FormType != "") {
			continue
		}
		var vals []string
		for _, val := range fl.ChildrenNamed(NS, "value") {
			vals = append(vals, val.TextContent())
		}
		if v == "FORM_TYPE" {
			if len(vals) > 0 {
				f.FormType = vals[0]
			}
			continue
		}
		f.Vars = append(f.Vars, v)
		if vals == nil {
			vals = []string{}
		}
		f.Values[v] = vals
	}
	return f
}

// Find returns the first data form child of parent, or nil.
func Find(parent *xmlstream.Node) *xmlstream.Node {
	if parent == nil {
		return nil
	}
	return parent.Child(NS, "x")
}

// Has reports whether the form carries var.
func (f Form) Has(v string) bool { _, ok := f.Values[v]; return ok }

// One is the first value of var, "" if none.
func (f Form) One(v string) string {
	if vals := f.Values[v]; len(vals) > 0 {
		return vals[0]
	}
	return ""
}

// Bool reads a boolean field (XEP-0004 §3.3: "1"/"true" and "0"/"false"); ok false when absent or not a boolean.
func (f Form) Bool(v string) (val, ok bool) {
	switch f.One(v) {
	case "1", "true":
		return true, f.Has(v)
	case "0", "false":
		return false, f.Has(v)
	}
	return false, false
}

// Builder writes a form. Field methods append one field each; String closes it.
type Builder struct {
	b strings.Builder
}

// New starts a form of type typ (form, result, submit) with FORM_TYPE formType ("" for none).
func New(typ, formType string) *Builder {
	bd := &Builder{}
	bd.b.WriteString("<x xmlns='" + NS + "' type='" + typ + "'>")
	if formType != "" {
		bd.b.WriteString("<field var='FORM_TYPE' type='hidden'><value>")
		bd.b.Write(xmlstream.AppendEscapedText(nil, formType))
		bd.b.WriteString("</value></field>")
	}
	return bd
}

// Title adds a <title/>.
func (bd *Builder) Title(t string) *Builder {
	bd.b.WriteString("<title>")
	bd.b.Write(xmlstream.AppendEscapedText(nil, t))
	bd.b.WriteString("</title>")
	return bd
}

// Field adds a field of type typ ("" to leave it out, as results may) with label ("" for none) and values.
func (bd *Builder) Field(v, typ, label string, values ...string) *Builder {
	return bd.FieldOptions(v, typ, label, nil, values...)
}

// FieldOptions is Field with <option/>s (list-single, list-multi).
func (bd *Builder) FieldOptions(v, typ, label string, options []string, values ...string) *Builder {
	bd.b.WriteString("<field var='")
	bd.b.Write(xmlstream.AppendEscapedAttr(nil, v))
	bd.b.WriteString("'")
	if typ != "" {
		bd.b.WriteString(" type='" + typ + "'")
	}
	if label != "" {
		bd.b.WriteString(" label='")
		bd.b.Write(xmlstream.AppendEscapedAttr(nil, label))
		bd.b.WriteString("'")
	}
	bd.b.WriteString(">")
	for _, o := range options {
		bd.b.WriteString("<option><value>")
		bd.b.Write(xmlstream.AppendEscapedText(nil, o))
		bd.b.WriteString("</value></option>")
	}
	for _, val := range values {
		bd.b.WriteString("<value>")
		bd.b.Write(xmlstream.AppendEscapedText(nil, val))
		bd.b.WriteString("</value>")
	}
	bd.b.WriteString("</field>")
	return bd
}

// Bool adds a boolean field.
func (bd *Builder) Bool(v, label string, val bool) *Builder {
	s := "0"
	if val {
		s = "1"
	}
	return bd.Field(v, "boolean", label, s)
}

// String closes the form and returns it.
func (bd *Builder) String() string { return bd.b.String() + "</x>" }
