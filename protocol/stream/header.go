package stream

import (
	"strings"

	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// CheckHeader applies to a received stream header h the checks a receiving entity makes before it accepts the
// stream, in this order:
//
//   - the stream element is in the stream namespace (RFC 6120 §4.8.1), else invalid-namespace (§4.9.3.10);
//   - its local name is "stream" (§4.8.1), else invalid-namespace;
//   - its prefix is "stream" (§4.8.5 and the example of §4.9.3.2), else bad-namespace-prefix (§4.9.3.2);
//   - the content namespace is jabber:client (§4.8.2), else invalid-namespace;
//   - the version is 1.x (§4.7.5): a missing one means a pre-1.0 entity, which is not served; else
//     unsupported-version (§4.9.3.25);
//   - 'to' (§4.7.2) is present and is a domain JID (no localpart, no resourcepart) that served reports as one of
//     ours, else host-unknown (§4.9.3.6);
//   - when restart is not "" the header restarts the stream of that domain (after SASL, RFC 6120 §6.4.6) and
//     'to' must name the same domain, else host-unknown.
//
// On success it returns the domain the stream is for (canonical, as jid.Parse gives it) and an empty condition.
// Otherwise domain is "" and cond and text are the stream error to send, text being a human-readable reason fit
// for the error's <text/>. Either way the caller answers with its own header first (RFC 6120 §4.9.1.2). A nil h
// is treated as an empty header and a nil served as serving no domain.
func CheckHeader(h *xmlstream.Header, served func(domain string) bool, restart string) (domain string, cond Condition, text string) {
	if h == nil {
		h = &xmlstream.Header{}
	}
	switch {
	case h.StreamNS != NS:
		return "", InvalidNamespace, "the stream namespace must be " + NS
	case h.Local != "stream":
		return "", InvalidNamespace, "the root element must be <stream>"
	case h.Prefix != Prefix:
		return "", BadNamespacePrefix, "the stream namespace prefix must be 'stream'"
	case h.DefaultNS != NSClient:
		return "", InvalidNamespace, "the content namespace must be " + NSClient
	case !versionOK(h.Version):
		return "", UnsupportedVersion, "xmppd speaks XMPP 1.0"
	case h.To == "":
		return "", HostUnknown, "the 'to' attribute is required"
	}
	d, err := jid.Parse(h.To)
	if err != nil || d.Local() != "" || d.Resource() != "" || served == nil || !served(d.Domain()) {
		return "", HostUnknown, "this server does not serve that domain"
	}
	if restart != "" && d.Domain() != restart {
		return "", HostUnknown, "the domain changed at the stream restart"
	}
	return d.Domain(), "", ""
}

// versionOK: RFC 6120 §4.7.5. A missing version means pre-1.0, which we do not serve; 1.x is fine.
func versionOK(v string) bool {
	major, _, ok := strings.Cut(v, ".")
	return ok && major == "1"
}

// ResponseTo is the 'to' of the response header to h: the initiating entity's 'from' when it is a valid JID, in
// its canonical form, else "" (RFC 6120 §4.7.1, §4.7.2). A nil h gives "".
func ResponseTo(h *xmlstream.Header) string {
	if h == nil || h.From == "" {
		return ""
	}
	f, err := jid.Parse(h.From)
	if err != nil {
		return ""
	}
	return f.String()
}

// AppendHeader appends the response stream header (RFC 6120 §4.7) to b: an XML declaration, then <stream:stream>
// with jabber:client as content namespace, the stream namespace on the prefix "stream", the given id and from,
// 'to' when it is not "", version 1.0 and xml:lang 'en'. The attribute values are escaped.
func AppendHeader(b []byte, id, from, to string) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='"+NSClient+"' xmlns:stream='"+NS+"' id='"...)
	b = xmlstream.AppendEscapedAttr(b, id)
	b = append(b, "' from='"...)
	b = xmlstream.AppendEscapedAttr(b, from)
	b = append(b, '\'')
	if to != "" {
		b = append(b, " to='"...)
		b = xmlstream.AppendEscapedAttr(b, to)
		b = append(b, '\'')
	}
	return append(b, " version='1.0' xml:lang='en'>"...)
}

// Header returns AppendHeader(nil, id, from, to) as a string.
func Header(id, from, to string) string {
	return string(AppendHeader(make([]byte, 0, 192+len(id)+len(from)+len(to)), id, from, to))
}

// Features returns the <stream:features> element (RFC 6120 §4.3.2) with children, already serialised, inside in
// order. With no children it is <stream:features></stream:features>.
func Features(children ...string) string {
	n := len("<stream:features></stream:features>")
	for _, c := range children {
		n += len(c)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString("<stream:features>")
	for _, c := range children {
		b.WriteString(c)
	}
	b.WriteString("</stream:features>")
	return b.String()
}
