package stream

import (
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NSServer is the content namespace of server-to-server streams (RFC 6120 §4.8.2).
const NSServer = "jabber:server"

// nsDialback is XEP-0220's namespace, declared on every server stream header with the prefix db.
const nsDialback = "jabber:server:dialback"

// AppendServerHeader appends a server-to-server stream header (RFC 6120 §4.7, XEP-0220 §2.1): jabber:server as
// content namespace, the dialback prefix declared, version 1.0. id is omitted when "" (the initiating entity's
// header has none, §4.7.3).
func AppendServerHeader(b []byte, id, from, to string) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='"+NSServer+"' xmlns:stream='"+NS+"' xmlns:db='"+nsDialback+"'"...)
	if id != "" {
		b = append(b, " id='"...)
		b = xmlstream.AppendEscapedAttr(b, id)
		b = append(b, '\'')
	}
	b = append(b, " from='"...)
	b = xmlstream.AppendEscapedAttr(b, from)
	b = append(b, '\'')
	if to != "" {
		b = append(b, " to='"...)
		b = xmlstream.AppendEscapedAttr(b, to)
		b = append(b, '\'')
	}
	return append(b, " version='1.0'>"...)
}

// ServerHeader returns AppendServerHeader(nil, id, from, to) as a string.
func ServerHeader(id, from, to string) string { return string(AppendServerHeader(nil, id, from, to)) }

// CheckServerHeader is CheckHeader for a server-to-server stream (content namespace jabber:server). It also reads
// 'from' (RFC 6120 §4.7.1: the initiating server SHOULD include it; it names the domain that will authenticate):
// a 'from' that is not a domain JID is invalid-from (§4.9.3.9). from is "" when absent.
func CheckServerHeader(h *xmlstream.Header, served func(domain string) bool) (domain, from string, cond Condition, text string) {
	if h == nil {
		h = &xmlstream.Header{}
	}
	switch {
	case h.StreamNS != NS:
		return "", "", InvalidNamespace, "the stream namespace must be " + NS
	case h.Local != "stream":
		return "", "", InvalidNamespace, "the root element must be <stream>"
	case h.Prefix != Prefix:
		return "", "", BadNamespacePrefix, "the stream namespace prefix must be 'stream'"
	case h.DefaultNS != NSServer:
		return "", "", InvalidNamespace, "the content namespace must be " + NSServer
	case !versionOK(h.Version):
		return "", "", UnsupportedVersion, "xmppd speaks XMPP 1.0"
	case h.To == "":
		return "", "", HostUnknown, "the 'to' attribute is required"
	}
	d, err := jid.Parse(h.To)
	if err != nil || d.Local() != "" || d.Resource() != "" || served == nil || !served(d.Domain()) {
		return "", "", HostUnknown, "this server does not serve that domain"
	}
	if h.From != "" {
		f, err := jid.Parse(h.From)
		if err != nil || f.Local() != "" || f.Resource() != "" {
			return "", "", InvalidFrom, "'from' must be a domain"
		}
		from = f.Domain()
	}
	return d.Domain(), from, "", ""
}
