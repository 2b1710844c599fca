package actors

import (
	"strings"

	"github.com/xmppd/xmppd/config"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0030 service discovery. The server's disco#info is built from the registry (every enabled feature's
// serverVars and extended info); a bare account JID is answered by its user actor on the user's behalf with
// <identity category='account' type='registered'/> (XEP-0030 §3.1) to the user and to contacts with a presence
// subscription, service-unavailable to everyone else so that the account's existence is not revealed (the same
// answer as for a missing account, RFC 6121 §8.5.1). Requests to full JIDs are routed to the client.
//
// XEP-0128 extended information carries the XEP-0157 contact addresses of [contact] in the configuration.

// nsServerInfo is the XEP-0157 FORM_TYPE.
const nsServerInfo = "http://jabber.org/network/serverinfo"

var featureDisco = &feature{
	name:        "disco",
	serverVars:  []string{stanza.NSDiscoInf, stanza.NSDiscoIt},
	accountVars: []string{stanza.NSDiscoInf, stanza.NSDiscoIt},
	extendedInfo: func(cfg *config.Config) string {
		return contactForm(cfg.Contact)
	},
	iqs: []iqRoute{
		{
			name: xmlstream.Name{Space: stanza.NSDiscoInf, Local: "query"},
			server: func(q *iqReq) {
				if !q.isGet() {
					q.fail(stanza.NewError(stanza.BadRequest))
					return
				}
				node := q.q.Attr("node")
				switch {
				case node == "":
					q.result(serverDiscoInfo(&q.s.env.cfg, ""))
				case node == capsNode+"#"+q.s.env.capsVer:
					// XEP-0115 §6.2: the node#ver of our own caps answers like the plain query.
					q.result(serverDiscoInfo(&q.s.env.cfg, node))
				default:
					if info, ok := commandNodeInfo(q, node); ok {
						q.result(info)
						return
					}
					q.fail(stanza.NewError(stanza.ItemNotFound))
				}
			},
			account: func(a *accountReq) {
				if !a.isGet() || !a.subscriber() {
					a.fail(stanza.NewError(stanza.ServiceUnavailable))
					return
				}
				if a.q.Attr("node") != "" {
					a.fail(stanza.NewError(stanza.ItemNotFound))
					return
				}
				a.result(accountDiscoInfo(&a.r.env.cfg))
			},
		},
		{
			name: xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"},
			server: func(q *iqReq) {
				if !q.isGet() {
					q.fail(stanza.NewError(stanza.BadRequest))
					return
				}
				node := q.q.Attr("node")
				if node == "" {
					q.result("<query xmlns='" + stanza.NSDiscoIt + "'/>")
					return
				}
				if items, ok := commandItems(q, node); ok {
					q.result(items)
					return
				}
				q.fail(stanza.NewError(stanza.ItemNotFound))
			},
			account: func(a *accountReq) {
				if !a.isGet() || !a.subscriber() {
					a.fail(stanza.NewError(stanza.ServiceUnavailable))
					return
				}
				a.result("<query xmlns='" + stanza.NSDiscoIt + "'/>")
			},
		},
	},
}

// contactForm is the XEP-0157 form, or "" when no address is configured.
func contactForm(c config.ContactConfig) string {
	fields := []struct {
		v    string
		vals []string
	}{
		{"abuse-addresses", c.Abuse}, {"admin-addresses", c.Admin}, {"feedback-addresses", c.Feedback},
		{"sales-addresses", c.Sales}, {"security-addresses", c.Security}, {"status-addresses", c.Status},
		{"support-addresses", c.Support},
	}
	var b strings.Builder
	for _, f := range fields {
		if len(f.vals) == 0 {
			continue
		}
		b.WriteString("<field var='" + f.v + "'>")
		for _, v := range f.vals {
			b.WriteString("<value>" + xmlText(v) + "</value>")
		}
		b.WriteString("</field>")
	}
	if b.Len() == 0 {
		return ""
	}
	return "<x xmlns='" + stanza.NSXData + "' type='result'><field var='FORM_TYPE' type='hidden'><value>" +
		nsServerInfo + "</value></field>" + b.String() + "</x>"
}
