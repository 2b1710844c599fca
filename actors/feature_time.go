package actors

import (
	"time"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// nsTime is XEP-0202 entity time.
const nsTime = "urn:xmpp:time"

// featureTime: XEP-0202 entity time of the server. The server runs in UTC as far as clients are concerned
// (tzo +00:00); XEP-0082 profile with millisecond precision.
var featureTime = &feature{
	name:       "time",
	serverVars: []string{nsTime},
	iqs: []iqRoute{{
		name: xmlstream.Name{Space: nsTime, Local: "time"},
		server: func(q *iqReq) {
			if !q.isGet() {
				q.fail(badRequest())
				return
			}
			q.result(timePayload(time.Now()))
		},
	}},
}

func timePayload(now time.Time) string {
	return "<time xmlns='" + nsTime + "'><tzo>+00:00</tzo><utc>" + now.UTC().Format("2006-01-02T15:04:05.000Z") + "</utc></time>"
}
