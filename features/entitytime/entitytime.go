// Package entitytime is XEP-0202 entity time of the server. The server runs in UTC as far as clients are
// concerned (tzo +00:00); the XEP-0082 profile with millisecond precision.
package entitytime

import (
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// NS is XEP-0202's namespace.
const NS = "urn:xmpp:time"

// Feature is XEP-0202 (named "time" in [features] disable).
var Feature = &feature.Feature{
	Name:       "time",
	ServerVars: []string{NS},
	IQs: []feature.IQRoute{{
		Name: xmlstream.Name{Space: NS, Local: "time"},
		Server: func(q *feature.IQ) {
			if !q.IsGet() {
				q.Fail(stanza.NewError(stanza.BadRequest))
				return
			}
			q.Result(Payload(time.Now()))
		},
	}},
}

// Payload is the <time/> answer for now (§3).
func Payload(now time.Time) string {
	return "<time xmlns='" + NS + "'><tzo>+00:00</tzo><utc>" + now.UTC().Format("2006-01-02T15:04:05.000Z") + "</utc></time>"
}
