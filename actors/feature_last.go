package actors

import (
	"context"
	"strconv"
	"time"

	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// nsLast is XEP-0012 last activity.
const nsLast = "jabber:iq:last"

// featureLast: XEP-0012. To the server: seconds since it started (§5). To an account: the server answers on the
// user's behalf (§4) from the user actor's lastSeen: 0 while a resource is online, else seconds since the last
// logout with the status of the last unavailable presence; only the user and contacts allowed to see the user's
// presence may ask (others get forbidden, §4 and §8).
var featureLast = &feature{
	name:        "last",
	serverVars:  []string{nsLast},
	accountVars: []string{nsLast},
	iqs: []iqRoute{{
		name: xmlstream.Name{Space: nsLast, Local: "query"},
		server: func(q *iqReq) {
			if !q.isGet() {
				q.fail(badRequest())
				return
			}
			secs := int64(time.Since(q.s.env.started) / time.Second)
			q.result("<query xmlns='" + nsLast + "' seconds='" + strconv.FormatInt(secs, 10) + "'/>")
		},
		account: func(a *accountReq) {
			if !a.isGet() {
				a.fail(badRequest())
				return
			}
			if !a.subscriber() {
				a.fail(stanza.NewError(stanza.Forbidden))
				return
			}
			for _, rs := range a.r.resources {
				if rs.available {
					a.result("<query xmlns='" + nsLast + "' seconds='0'/>")
					return
				}
			}
			if a.r.lastSeen.IsZero() {
				a.fail(stanza.NewError(stanza.ItemNotFound))
				return
			}
			secs := int64(time.Since(a.r.lastSeen) / time.Second)
			last := a.r.lastPresence // not yet flushed to storage
			if last == "" {
				last, _, _ = a.r.env.store.LastPresence(context.Background(), a.r.bare.String())
			}
			status := xmlText(presenceStatus(last))
			a.result("<query xmlns='" + nsLast + "' seconds='" + strconv.FormatInt(secs, 10) + "'>" + status + "</query>")
		},
	}},
}

func badRequest() stanza.Error { return stanza.NewError(stanza.BadRequest) }

// presenceStatus extracts <status/> of a presence stanza ("" if none or unparsable).
func presenceStatus(raw string) string {
	n, err := xmlstream.ParseNode(raw, stanza.NSClient)
	if err != nil {
		return ""
	}
	if st := n.Child(stanza.NSClient, "status"); st != nil {
		return st.TextContent()
	}
	return ""
}
