// Package ping is XEP-0199 XMPP ping: the server answers pings to itself and, for the requester's own account
// or a ping without 'to', on the session's behalf (§4 client-to-server ping), with an empty result.
package ping

import (
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// Feature is XEP-0199.
var Feature = &feature.Feature{
	Name:       "ping",
	ServerVars: []string{stanza.NSPing},
	IQs: []feature.IQRoute{{
		Name:    xmlstream.Name{Space: stanza.NSPing, Local: "ping"},
		Server:  pong,
		Session: pong,
	}},
}

// pong: §4: the answer is an empty result. The type is not checked (the old behaviour: a <ping/> in a set is
// answered the same, and RFC 6120 §8.2.3 leaves the choice to the server).
func pong(q *feature.IQ) { q.Result("") }
