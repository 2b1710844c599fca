// Package disco is XEP-0030 service discovery, answered by the server for itself and on behalf of accounts.
//
// The server's disco#info is built by the host from every enabled feature (Server.DiscoInfo); any other node of
// the server (our own XEP-0115 node#ver, the XEP-0050 commands nodes) belongs to the feature that claims it
// through Feature.DiscoNode, and a node nobody claims is item-not-found. The server's disco#items lists nothing.
//
// A bare account JID answers disco#info with <identity category='account' type='registered'/> (XEP-0030 §3.1) to
// the user and to contacts with a presence subscription, and service-unavailable to everyone else, the same
// answer as for a missing account, so that the account's existence is not revealed (RFC 6121 §8.5.1).
//
// disco#items to a bare account JID lists what the account's features list for the requester (XEP-0163: the PEP
// nodes the requester may read, User.AccountItems), and is otherwise an empty result (XEP-0030 §8), whether or not
// the account exists or the requester shares its presence: a uniform answer reveals nothing. A node is answered
// by the feature that owns it for this requester at this account (the XEP-0050 commands an admin finds at the
// admin's own bare JID).
//
// XEP-0128 extended information carries the XEP-0157 contact addresses of [contact] in the configuration.
package disco

import (
	"strings"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/jid"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NSServerInfo is the XEP-0157 FORM_TYPE.
const NSServerInfo = "http://jabber.org/network/serverinfo"

// Feature is XEP-0030 (with XEP-0128 / XEP-0157 extended information).
var Feature = &feature.Feature{
	Name:        "disco",
	ServerVars:  []string{stanza.NSDiscoInf, stanza.NSDiscoIt},
	AccountVars: []string{stanza.NSDiscoInf, stanza.NSDiscoIt},
	ExtendedInfo: func(cfg *config.Config) string {
		return ContactForm(cfg.Contact)
	},
	IQs: []feature.IQRoute{
		{
			Name:    xmlstream.Name{Space: stanza.NSDiscoInf, Local: "query"},
			Server:  serverInfo,
			Account: accountInfo,
		},
		{
			Name:    xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"},
			Server:  serverItems,
			Account: accountItems,
			// XEP-0030 §8: the same empty answer whether the account exists or not.
			Anyone: true,
		},
	},
}

func serverInfo(q *feature.IQ) {
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	srv := q.Session.Server()
	node := q.Payload.Attr("node")
	if node == "" {
		q.Result(srv.DiscoInfo(""))
		return
	}
	// The caps feature answers our own node#ver (XEP-0115 §6.2), the adhoc feature its command nodes.
	if info, ok := srv.DiscoNode(q.Session.Full(), jid.JID{}, node, false); ok {
		q.Result(info)
		return
	}
	q.Fail(stanza.NewError(stanza.ItemNotFound))
}

func serverItems(q *feature.IQ) {
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	node := q.Payload.Attr("node")
	if node == "" {
		q.Result(ServiceItems(q.Session.Server().Services()))
		return
	}
	if items, ok := q.Session.Server().DiscoNode(q.Session.Full(), jid.JID{}, node, true); ok {
		q.Result(items)
		return
	}
	q.Fail(stanza.NewError(stanza.ItemNotFound))
}

func accountInfo(a *feature.AccountIQ) {
	if !a.IsGet() || !a.Subscriber() {
		a.Fail(stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	srv := a.User.Server()
	node := a.Payload.Attr("node")
	if node == "" {
		a.Result(srv.AccountDiscoInfo())
		return
	}
	if info, ok := srv.DiscoNode(a.St.From, a.User.Bare(), node, false); ok {
		a.Result(info)
		return
	}
	a.Fail(stanza.NewError(stanza.ItemNotFound))
}

func accountItems(a *feature.AccountIQ) {
	if !a.IsGet() {
		a.Fail(stanza.NewError(stanza.ServiceUnavailable))
		return
	}
	node := a.Payload.Attr("node")
	if node != "" {
		if items, ok := a.User.Server().DiscoNode(a.St.From, a.User.Bare(), node, true); ok {
			a.Result(items)
			return
		}
	} else if a.User.Exists() {
		if items := a.User.AccountItems(a.St.From); items != "" {
			a.Result("<query xmlns='" + stanza.NSDiscoIt + "'>" + items + "</query>")
			return
		}
	}
	a.Result(EmptyItems(node))
}

// ServiceItems is the server's disco#items: one <item/> per service (XEP-0030 §4.1).
func ServiceItems(list []feature.ServiceRef) string {
	if len(list) == 0 {
		return EmptyItems("")
	}
	b := []byte("<query xmlns='" + stanza.NSDiscoIt + "'>")
	for _, s := range list {
		b = append(b, "<item jid='"...)
		b = xmlstream.AppendEscapedAttr(b, s.JID.String())
		if s.Name != "" {
			b = append(b, "' name='"...)
			b = xmlstream.AppendEscapedAttr(b, s.Name)
		}
		b = append(b, "'/>"...)
	}
	return string(append(b, "</query>"...))
}

// EmptyItems is an empty disco#items result, for node ("" for none): XEP-0030 §4.1 echoes the node asked.
func EmptyItems(node string) string {
	if node == "" {
		return "<query xmlns='" + stanza.NSDiscoIt + "'/>"
	}
	return "<query xmlns='" + stanza.NSDiscoIt + "' node='" + string(xmlstream.AppendEscapedAttr(nil, node)) + "'/>"
}

// ContactForm is the XEP-0157 form, or "" when no address is configured.
func ContactForm(c config.ContactConfig) string {
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
			b.WriteString("<value>")
			b.Write(xmlstream.AppendEscapedText(nil, v))
			b.WriteString("</value>")
		}
		b.WriteString("</field>")
	}
	if b.Len() == 0 {
		return ""
	}
	return "<x xmlns='" + stanza.NSXData + "' type='result'><field var='FORM_TYPE' type='hidden'><value>" +
		NSServerInfo + "</value></field>" + b.String() + "</x>"
}
