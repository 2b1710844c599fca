package portable

import (
	"bufio"
	"encoding/base64"
	"io"
	"strconv"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Encoder writes a XEP-0227 document in the urn:xmpp:pie:0 form, one user at a time: users of one host must be
// encoded one after another (a change of host closes the <host/> element).
type Encoder struct {
	w    *bufio.Writer
	host string
	err  error
	b    []byte
}

// NewEncoder starts the document on w.
func NewEncoder(w io.Writer) *Encoder {
	e := &Encoder{w: bufio.NewWriterSize(w, 64<<10)}
	e.str("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='" + NS + "'>\n")
	return e
}

func (e *Encoder) str(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *Encoder) attr(name, v string) {
	e.b = append(e.b[:0], ' ')
	e.b = append(e.b, name...)
	e.b = append(e.b, "='"...)
	e.b = xmlstream.AppendEscapedAttr(e.b, v)
	e.b = append(e.b, '\'')
	e.str(string(e.b))
}

func (e *Encoder) text(v string) { e.str(string(xmlstream.AppendEscapedText(nil, v))) }

// Encode writes one user.
func (e *Encoder) Encode(u *User) error {
	if u.Host != e.host {
		if e.host != "" {
			e.str("  </host>\n")
		}
		e.host = u.Host
		e.str("  <host")
		e.attr("jid", u.Host)
		e.str(">\n")
	}
	e.str("    <user")
	e.attr("name", u.Name)
	if u.Password != "" {
		e.attr("password", u.Password)
	}
	e.str(">\n")
	for _, c := range u.SCRAM {
		e.str("      <scram-credentials xmlns='" + NSSCRAM + "'")
		e.attr("mechanism", c.Mechanism)
		e.str("><iter-count>" + strconv.Itoa(c.Iterations) + "</iter-count><salt>" + base64.StdEncoding.EncodeToString(c.Salt) +
			"</salt><server-key>" + base64.StdEncoding.EncodeToString(c.ServerKey) + "</server-key><stored-key>" +
			base64.StdEncoding.EncodeToString(c.StoredKey) + "</stored-key></scram-credentials>\n")
	}
	if len(u.Roster) > 0 {
		e.str("      <query xmlns='" + NSRoster + "'>")
		for _, it := range u.Roster {
			e.str("<item")
			e.attr("jid", it.JID)
			if it.Name != "" {
				e.attr("name", it.Name)
			}
			e.attr("subscription", it.Subscription)
			if it.Ask {
				e.attr("ask", "subscribe")
			}
			if it.Approved {
				e.attr("approved", "true")
			}
			if len(it.Groups) == 0 {
				e.str("/>")
				continue
			}
			e.str(">")
			for _, g := range it.Groups {
				e.str("<group>")
				e.text(g)
				e.str("</group>")
			}
			e.str("</item>")
		}
		e.str("</query>\n")
	}
	for _, p := range u.Pending {
		e.str("      <presence xmlns='" + NSClient + "' type='subscribe'")
		e.attr("from", p)
		e.str("/>\n")
	}
	if u.VCard != "" {
		e.str("      " + u.VCard + "\n")
	}
	if len(u.Private) > 0 {
		e.str("      <query xmlns='" + NSPrivate + "'>")
		for _, p := range u.Private {
			e.str(p)
		}
		e.str("</query>\n")
	}
	if len(u.Blocked) > 0 {
		e.str("      <blocklist xmlns='" + NSBlocking + "'>")
		for _, j := range u.Blocked {
			e.str("<item")
			e.attr("jid", j)
			e.str("/>")
		}
		e.str("</blocklist>\n")
	}
	if len(u.Offline) > 0 {
		e.str("      <offline-messages>")
		for _, m := range u.Offline {
			e.str(m)
		}
		e.str("</offline-messages>\n")
	}
	if len(u.PEP) > 0 {
		e.str("      <pubsub xmlns='" + NSOwner + "'>")
		for _, p := range u.PEP {
			e.str("<configure")
			e.attr("node", p.Node)
			e.str(">" + p.Form + "</configure>")
			e.members(p.Node, "affiliation", p.Members, func(m PEPMember) string { return m.Affiliation })
			e.members(p.Node, "subscription", p.Members, func(m PEPMember) string { return m.Subscription })
		}
		e.str("</pubsub>\n      <pubsub xmlns='" + NSPubSub + "'>")
		for _, p := range u.PEP {
			e.str("<items")
			e.attr("node", p.Node)
			e.str(">")
			for _, it := range p.Items {
				e.str("<item")
				e.attr("id", it.ID)
				e.str(">" + it.Payload + "</item>")
			}
			e.str("</items>")
		}
		e.str("</pubsub>\n")
	}
	e.str("    </user>\n")
	return e.err
}

// Close ends the document and flushes it.
func (e *Encoder) Close() error {
	if e.host != "" {
		e.str("  </host>\n")
	}
	e.str("</server-data>\n")
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}

// members writes <kinds node><kind jid kind=value/>…</kinds> for the members with a value for kind, or nothing
// when none has one (XEP-0060 §8.8 affiliations, §8.9 subscriptions).
func (e *Encoder) members(node, kind string, ms []PEPMember, value func(PEPMember) string) {
	opened := false
	for _, m := range ms {
		v := value(m)
		if v == "" {
			continue
		}
		if !opened {
			e.str("<" + kind + "s")
			e.attr("node", node)
			e.str(">")
			opened = true
		}
		e.str("<" + kind)
		e.attr("jid", m.JID)
		e.attr(kind, v)
		e.str("/>")
	}
	if opened {
		e.str("</" + kind + "s>")
	}
}
