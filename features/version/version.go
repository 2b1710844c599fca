// Package version is XEP-0092 software version of the server. Requests to accounts are not answered on the
// user's behalf (a client answers for itself at its full JID), so there is only a server route.
package version

import (
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Feature is XEP-0092.
var Feature = &feature.Feature{
	Name:       "version",
	ServerVars: []string{stanza.NSVersion},
	IQs: []feature.IQRoute{{
		Name:   xmlstream.Name{Space: stanza.NSVersion, Local: "query"},
		Server: answer,
	}},
}

// answer: §2: name and version; <os/> is optional and left out (it tells an attacker more than a client).
func answer(q *feature.IQ) {
	if !q.IsGet() {
		q.Fail(stanza.NewError(stanza.BadRequest))
		return
	}
	q.Result("<query xmlns='" + stanza.NSVersion + "'><name>xmppd</name><version>" +
		string(xmlstream.AppendEscapedText(nil, q.Session.Server().Version())) + "</version></query>")
}
