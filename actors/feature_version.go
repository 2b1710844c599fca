package actors

import (
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// featureVersion: XEP-0092 software version of the server. Requests to accounts are not answered on the
// user's behalf (a client answers for itself at its full JID).
var featureVersion = &feature{
	name:       "version",
	serverVars: []string{stanza.NSVersion},
	iqs: []iqRoute{{
		name: xmlstream.Name{Space: stanza.NSVersion, Local: "query"},
		server: func(q *iqReq) {
			if !q.isGet() {
				q.fail(stanza.NewError(stanza.BadRequest))
				return
			}
			q.result("<query xmlns='" + stanza.NSVersion + "'><name>xmppd</name><version>" + xmlText(Version) + "</version></query>")
		},
	}},
}
